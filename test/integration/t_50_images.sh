# Images through the node's cache, on the live cluster: a disk image
# fetched from a loopback nginx this test starts, booted through the job's
# own qcow2 overlay; one download for several jobs; a tampered image fails
# its job naming the image; nothing of a job is left (overlay, lease); the
# cached base stays root's; vmmd stays up. The test adds its images to
# /etc/vmenv/catalog.json and puts the file back when it ends.
here=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/vmenv-t50-XXXXXX)
. "$here/../images/lib.sh"
. "$here/lib.sh"
CATALOG=/etc/vmenv/catalog.json
VMMD=${VMMD:-$(command -v vmmd)}
CACHE=$("$VMMD" --config /etc/vmenv/vmmd.conf --check-config 2>/dev/null | sed -n 's/^image_cache = //p')
CACHE=${CACHE:-/var/cache/vmenv}

cp -p "$CATALOG" "$T/catalog.orig"
restore() {
	cp -p "$T/catalog.orig" "$CATALOG.t50" && mv "$CATALOG.t50" "$CATALOG"
	nginx_kill
	rm -rf "$T"
}
trap restore EXIT

# --- the images: tiny's kernel and initrd, a 64 MiB qcow2 disk -------------
mkdir -p "$T/www"
cp /var/lib/vmenv/images/tiny/vmlinuz /var/lib/vmenv/images/tiny/initrd.img "$T/www/"
qemu-img create -q -f qcow2 "$T/www/disk.qcow2" 64M
# A distinct disk per run, so the first job really downloads: 4 KiB of
# random bytes (a pattern byte gave 200 variants, and a machine's cache,
# which outlives runs, already held this run's disk once).
head -c 4096 /dev/urandom >"$T/uniq"
qemu-io -f qcow2 -c "write -P 0x5a 0 64k" -c "write -s $T/uniq 64k 4k" \
	"$T/www/disk.qcow2" >/dev/null
cp "$T/www/disk.qcow2" "$T/www/bad.qcow2"
if ! nginx_start; then
	fail "nginx for the test images did not start"
	exit 0
fi
URL=http://127.0.0.1:$PORT
DISK_SHA=$(sha "$T/www/disk.qcow2")
perl -MJSON::PP -e '
	my ($cat, $url, $www, $bad_sha, $cmdline) = @ARGV;
	my $c = do { local $/; open my $f, "<", $cat or die; decode_json(<$f>) };
	sub file { my ($n, %x) = @_; my $p = "$www/$n";
		my $s = `sha256sum $p`; $s =~ s/\s.*//s;
		return {source => "$url/$n", sha256 => $s, size => -s $p, %x} }
	my %v = (version => "1", boot => "disk-kernel", cmdline => $cmdline,
		 kernel => file("vmlinuz"), initrd => file("initrd.img"));
	push @{$c->{images}}, {name => "imgtest", aliases => ["imgtest-alias"],
		labels => {os => "busybox"}, min_mem_mib => 128,
		versions => [{%v, disk => file("disk.qcow2", format => "qcow2")}]};
	# Same size, another checksum: what a tampered mirror serves.
	push @{$c->{images}}, {name => "imgtest-bad",
		versions => [{%v, disk => file("bad.qcow2", format => "qcow2",
					       sha256 => $bad_sha)}]};
	open my $o, ">", "$cat.t50" or die; print $o JSON::PP->new->pretty->encode($c);
' "$CATALOG" "$URL" "$T/www" "$(printf 'bad%.0s' 1 | sha256sum | cut -d' ' -f1)" \
	"$(cat /var/lib/vmenv/images/tiny/cmdline)" &&
	mv "$CATALOG.t50" "$CATALOG"
check "the test images are in the catalog" grep -q imgtest-bad "$CATALOG"

d=$(workdir "$U1" images)
cd "$d"

# --- a disk image, fetched once, booted through an overlay ---------------------
j=$(as "$U1" sbatch --parsable --vm-env=imgtest -o "$d/img.out" \
	--wrap "cat /sys/block/vda/size; sleep 30")
if wait_guest_ready "$j" 180; then
	pass "a job boots the disk image"
	ov=$RUN_DIR/jobs/$j/disk/overlay.qcow2
	check "the job has its own overlay" test -f "$ov"
	check_contains "... backed by the cached base" "$(qemu-img info -U "$ov" 2>&1)" \
		"backing file: $CACHE/sha256/$DISK_SHA"
	check "... and holds a lease on it" test -e "$CACHE/leases/$DISK_SHA/$NODE.$j"
	check_contains "vmenvctl image list shows it cached and used" \
		"$(vmenvctl image list | grep '^imgtest:1')" "cached"
	check_eq "the cached base is root's, 0644, while the guest runs" \
		"0:0 644" "$(stat -c '%u:%g %a' "$CACHE/sha256/$DISK_SHA")"
else
	fail "the guest of job $j (imgtest) did not become ready"
	vmenvctl list | sed 's/^/#   /'
fi
# The script may not have printed yet when the guest is ready.
for _ in $(seq 60); do grep -q . img.out 2>/dev/null && break; sleep 0.5; done
scancel "$j"
wait_job "$j" 60 >/dev/null
check_contains "the guest saw the 64 MiB disk" "$(cat img.out)" "131072"
check "job $j left nothing (domain, directory, overlay)" no_leftovers "$j"
check "... nor its lease" test ! -e "$CACHE/leases/$DISK_SHA/$NODE.$j"
check_eq "the base is still root's, 0644, after the job" \
	"0:0 644" "$(stat -c '%u:%g %a' "$CACHE/sha256/$DISK_SHA")"

# --- more jobs: no second download ---------------------------------------------
out=$(cd / && as "$U1" srun --vm-env=imgtest-alias:1 cat /sys/block/vda/size 2>&1)
check_contains "srun with an alias and a version boots it too" "$out" "131072"
j1=$(as "$U1" sbatch --parsable --vm-env=imgtest.img -o "$d/a.out" --wrap "cat /sys/block/vda/size")
check_eq "sbatch --vm-env=imgtest.img completes" COMPLETED "$(wait_job "$j1" 240)"
check_eq "one GET of the disk for all these jobs" 1 "$(gets /disk.qcow2)"

# --- a tampered image ------------------------------------------------------------
j=$(as "$U1" sbatch --parsable --vm-env=imgtest-bad -o "$d/bad.out" --wrap "echo hi")
check_eq "a tampered image fails the job" FAILED "$(wait_job "$j" 120)"
check_contains "... naming the image and why" "$(cat bad.out)" \
	"image 'imgtest-bad:1' disk: sha256 mismatch"
check_eq "... with vmenv's exit code" "125:0" "$(job_field "$j" ExitCode)"
check "... not cached under its name" test ! -e "$CACHE/sha256/$(printf 'bad%.0s' 1 | sha256sum | cut -d' ' -f1)"
check "no partial file in the cache" no_partials
check "job $j left nothing" no_leftovers "$j"
check "vmmd still up" vmmd_up

# --- the next good job still works ------------------------------------------------
out=$(cd / && as "$U1" srun --vm-env=imgtest cat /sys/block/vda/size 2>&1)
check_contains "the next job after the failure works" "$out" "131072"
