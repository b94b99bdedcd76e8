# An image download a job waits for shows in the job's own output, on the
# live cluster: a 24 MiB disk served slowly (nginx at 2 MiB/s, so it
# lasts ~12 s) by a loopback nginx this test starts. The batch job's
# output file gets "fetching image ... %" lines, few of them (common/
# progress.h: at most one every 2 s), then one "ready" line, before the
# script's own output; a second job waiting for the same download gets
# its own lines; a job whose image is cached gets none. The test adds its
# image to /etc/vmenv/catalog.json and puts the file back when it ends.
here=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/vmenv-t51-XXXXXX)
. "$here/../images/lib.sh"
. "$here/lib.sh"
CATALOG=/etc/vmenv/catalog.json

cp -p "$CATALOG" "$T/catalog.orig"
restore() {
	cp -p "$T/catalog.orig" "$CATALOG.t51" && mv "$CATALOG.t51" "$CATALOG"
	nginx_kill
	rm -rf "$T"
}
trap restore EXIT

# --- the image: tiny's kernel and initrd, a qcow2 disk of 24 MiB of random
# bytes (new each run, so the first job really downloads it) -------------
mkdir -p "$T/www"
cp /var/lib/vmenv/images/tiny/vmlinuz /var/lib/vmenv/images/tiny/initrd.img "$T/www/"
head -c $((24 << 20)) /dev/urandom >"$T/rand"
qemu-img create -q -f qcow2 "$T/www/disk.qcow2" 64M
qemu-io -f qcow2 -c "write -s $T/rand 0 24M" "$T/www/disk.qcow2" >/dev/null
if ! RATE=2m nginx_start; then
	fail "nginx for the test image did not start"
	exit 0
fi
perl -MJSON::PP -e '
	my ($cat, $url, $www, $cmdline) = @ARGV;
	my $c = do { local $/; open my $f, "<", $cat or die; decode_json(<$f>) };
	sub file { my ($n, %x) = @_; my $p = "$www/$n";
		my $s = `sha256sum $p`; $s =~ s/\s.*//s;
		return {source => "$url/$n", sha256 => $s, size => -s $p, %x} }
	push @{$c->{images}}, {name => "progtest", min_mem_mib => 128,
		versions => [{version => "1", boot => "disk-kernel",
			      cmdline => $cmdline, kernel => file("vmlinuz"),
			      initrd => file("initrd.img"),
			      disk => file("disk.qcow2", format => "qcow2")}]};
	open my $o, ">", "$cat.t51" or die; print $o JSON::PP->new->pretty->encode($c);
' "$CATALOG" "http://127.0.0.1:$PORT" "$T/www" \
	"$(cat /var/lib/vmenv/images/tiny/cmdline)" &&
	mv "$CATALOG.t51" "$CATALOG"
check "the test image is in the catalog" grep -q progtest "$CATALOG"

d=$(workdir "$U1" progress)
cd "$d"

# Line number of the first line of file $1 matching the fixed string $2
# (0: none).
line_of() { grep -nF -- "$2" "$1" 2>/dev/null | head -1 | cut -d: -f1 | grep . || echo 0; }

# --- two jobs wait for one slow download -------------------------------------
j1=$(as "$U1" sbatch --parsable --vm-env=progtest -o "$d/p1.out" --wrap "echo script-ran")
j2=$(as "$U1" sbatch --parsable --vm-env=progtest -o "$d/p2.out" --wrap "echo script-ran")
# The second job shares the download only if it starts while it runs.
j2_early=0
wait_running "$j2" 6 && j2_early=1
check_eq "the first job completes" COMPLETED "$(wait_job "$j1" 300)"
check_eq "the second job completes" COMPLETED "$(wait_job "$j2" 300)"
check_eq "one GET of the disk for both jobs" 1 "$(gets /disk.qcow2)"

fetch=$(line_of p1.out "vmenv: job $j1: fetching image 'progtest:1' (")
ready=$(line_of p1.out "vmenv: job $j1: image 'progtest:1' ready (")
ran=$(line_of p1.out "script-ran")
check "the job's output shows the download ('fetching image ... %')" [ "$fetch" -gt 0 ]
check_contains "... with its size and how far" "$(sed -n "${fetch}p" p1.out)" " MiB): "
check "... and then that the image is ready" [ "$ready" -gt "$fetch" ]
check "... before the script's own output" [ "$ran" -gt "$ready" ]
check_contains "... saying how much in how long" "$(sed -n "${ready}p" p1.out)" "MiB in "
n=$(grep -c "fetching image 'progtest:1'" p1.out)
# ~12 s at most one line every 2 s: 7; slack for a slow machine's start.
check "... in few lines ($n, at most 10)" [ "$n" -ge 1 -a "$n" -le 10 ]
pcts=$(grep -o "fetching image 'progtest:1' ([^)]*): [0-9]*%" p1.out | sed 's/.*: //; s/%//')
check "... with percentages that only grow ($(echo $pcts))" \
	bash -c 'prev=-1; for p in $1; do [ "$p" -ge "$prev" ] || exit 1; prev=$p; done' _ "$pcts"
if [ "$j2_early" = 1 ]; then
	check "the second job waiting for the same download shows it too" \
		grep -qF "vmenv: job $j2: fetching image 'progtest:1'" p2.out
	check "... and the ready line" grep -qF "vmenv: job $j2: image 'progtest:1' ready" p2.out
else
	skip "the second job did not start within 6 s (the node was busy): not checked"
fi

# --- cached: nothing is said --------------------------------------------------------
out=$(cd / && as "$U1" srun --vm-env=progtest echo cached-ran 2>&1)
check_contains "a job with the image cached runs" "$out" "cached-ran"
check "... and shows no download" bash -c '! grep -qE "fetching image|ready \(" <<<"$1"' _ "$out"
check "vmmd still up" vmmd_up
