# timeout: 600
# The fault matrix (issue 16): each fault a node can throw at a VM job,
# on the live cluster, then the leftover check of every node (lib.sh
# leftovers_of: no domain, QEMU process, job directory, image lease,
# vmenv-9p, checkpoint fragment; every vmmd answering).
#   - scancel while the job's image downloads
#   - the image server dies in the middle of a download
#   - scancel while the guest boots
#   - QEMU killed (as the OOM killer would): the job fails, naming it
#   - libvirtd restarted while the job runs: the job goes on
#   - scancel while a checkpoint is being saved
# Time limits, a guest that never boots, a full checkpoint store and
# scancel while running are t_30_cancel's, t_40_errors's and
# t_80_checkpoint's; a kernel panic, a full overlay and scancel during a
# restore t_36_guest_faults's.
here=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/vmenv-t35-XXXXXX)
. "$here/../images/lib.sh"
. "$here/lib.sh"
CATALOG=/etc/vmenv/catalog.json

cp -p "$CATALOG" "$T/catalog.orig"
restore() {
	cp -p "$T/catalog.orig" "$CATALOG.t35" && mv "$CATALOG.t35" "$CATALOG"
	nginx_kill
	rm -rf "$T"
}
trap restore EXIT

d=$(workdir "$U1" faults)
cd "$d" || exit 1

# The job's state in vmenvctl list (node 1), or "" when it has no guest.
guest_state() { vmenvctl list 2>/dev/null | awk -v j="$1" '$1 == j {print $4}'; }
# Waits up to $2 s (default 60) for the guest of job $1 to be in state $3.
wait_state() { # jobid timeout state
	local i
	for ((i = 0; i < ${2:-60} * 10; i++)); do
		[ "$(guest_state "$1")" = "$3" ] && return 0
		sleep 0.1
	done
	echo "#   job $1: state '$(guest_state "$1")', never '$3'" >&2
	return 1
}

# --- an image served slowly: tiny's kernel and initrd and a 24 MiB disk of
# random bytes, new each run (nothing cached), at 2 MiB/s -------------------
mkdir -p "$T/www"
cp /var/lib/vmenv/images/tiny/vmlinuz /var/lib/vmenv/images/tiny/initrd.img "$T/www/"
# shellcheck disable=SC2317 # called below
add_image() { # name: a fresh disk under that name, in the catalog
	head -c $((24 << 20)) /dev/urandom >"$T/rand"
	qemu-img create -q -f qcow2 "$T/www/$1.qcow2" 64M
	qemu-io -f qcow2 -c "write -s $T/rand 0 24M" "$T/www/$1.qcow2" >/dev/null
	perl -MJSON::PP -e '
		my ($cat, $url, $www, $cmdline, $name) = @ARGV;
		my $c = do { local $/; open my $f, "<", $cat or die; decode_json(<$f>) };
		sub file { my ($n, %x) = @_; my $p = "$www/$n";
			my $s = `sha256sum $p`; $s =~ s/\s.*//s;
			return {source => "$url/$n", sha256 => $s, size => -s $p, %x} }
		push @{$c->{images}}, {name => $name, min_mem_mib => 128,
			versions => [{version => "1", boot => "disk-kernel",
				      cmdline => $cmdline, kernel => file("vmlinuz"),
				      initrd => file("initrd.img"),
				      disk => file("$name.qcow2", format => "qcow2")}]};
		open my $o, ">", "$cat.t35" or die; print $o JSON::PP->new->pretty->encode($c);
	' "$CATALOG" "http://127.0.0.1:$PORT" "$T/www" \
		"$(cat /var/lib/vmenv/images/tiny/cmdline)" "$1" &&
		mv "$CATALOG.t35" "$CATALOG"
}
if ! RATE=2m nginx_start; then
	fail "nginx for the test images did not start"
	exit 0
fi
add_image faulta
add_image faultb
check "the test images are in the catalog" grep -q faultb "$CATALOG"

# --- scancel while the image downloads --------------------------------------
j=$(as "$U1" sbatch --parsable -w "$NODE" --vm-env=faulta -o "$d/a.out" --wrap "echo ran")
check "job $j: its guest is preparing (the download runs)" wait_state "$j" 30 preparing
scancel "$j"
check "scancel during the download: the job is cancelled" test "$(wait_job "$j" 60)" = CANCELLED
check "... and leaves nothing on any node" node_clean "$j"

# --- the image server dies in the middle of a download, then comes back ----
j=$(as "$U1" sbatch --parsable -w "$NODE" --vm-env=faultb -o "$d/b.out" --wrap "echo ran-after-server-death")
check "job $j: its guest is preparing" wait_state "$j" 30 preparing
sleep 2
nginx_kill
st=$(wait_job "$j" 180)
check "a download whose server died ends the job (state $st)" test "$st" = FAILED
check_contains "... with a message naming the image" "$(cat "$d/b.out" 2>/dev/null)" faultb
check "... and leaves nothing on any node" node_clean "$j"
RATE=0 nginx_start >/dev/null 2>&1
j=$(as "$U1" sbatch --parsable -w "$NODE" --vm-env=faultb -o "$d/b2.out" --wrap "echo ran-after-server-back")
st=$(wait_job "$j" 180)
check "the server back, the same image downloads and the next job runs (state $st)" \
	grep -q ran-after-server-back "$d/b2.out"
check "... and leaves nothing on any node" node_clean "$j"

# --- scancel while the guest boots -------------------------------------------
j=$(as "$U1" sbatch --parsable -w "$NODE" --vm-env=tiny -o "$d/c.out" --wrap "echo ran")
check "job $j: its guest boots" wait_state "$j" 60 booting
scancel "$j"
check "scancel during the boot: the job is cancelled" test "$(wait_job "$j" 60)" = CANCELLED
check "... and leaves nothing on any node" node_clean "$j"

# --- QEMU killed while the job runs ------------------------------------------
j=$(as "$U1" sbatch --parsable -w "$NODE" --vm-env=tiny -o "$d/q.out" \
	--wrap "echo started; sleep 300; echo not-reached")
check "job $j: its guest is ready" wait_state "$j" 90 ready
for _ in $(seq 50); do grep -q started "$d/q.out" 2>/dev/null && break; sleep 0.2; done
qpid=$(pgrep -f "qemu-system.*guest=vmenv-$NODE-$j,")
check "its QEMU runs (pid ${qpid:-none})" test -n "$qpid"
kill -KILL $qpid
st=$(wait_job "$j" 60)
check "QEMU killed: the job fails at once (state $st)" test "$st" = FAILED
check_contains "... and its output says the guest went away" "$(cat "$d/q.out")" "job $j: the guest's agent channel closed"
check "... and leaves nothing on any node" node_clean "$j"

# --- libvirtd restarted while the job runs: the job goes on -----------------
j=$(as "$U1" sbatch --parsable -w "$NODE" --vm-env=tiny -o "$d/l.out" \
	--wrap 'for i in $(seq 1 40); do echo "line $i"; sleep 0.5; done; echo done-all')
check "job $j: its guest is ready" wait_state "$j" 90 ready
for _ in $(seq 50); do grep -q "line 3" "$d/l.out" 2>/dev/null && break; sleep 0.2; done
lpid=$(cat /run/libvirtd.pid)
kill -TERM "$lpid"
for _ in $(seq 100); do [ -d "/proc/$lpid" ] || break; sleep 0.1; done
check "libvirtd stopped" test ! -d "/proc/$lpid"
"$here/../../contrib/cluster/vmenv-cluster" libvirt >/dev/null 2>&1
check "libvirtd is back" $VIRSH version
st=$(wait_job "$j" 120)
check "the job went on through libvirtd's restart and completed (state $st)" test "$st" = COMPLETED
check "... every line of it is there, once" test "$(grep -c '^line ' "$d/l.out")" = 40
check "... to its end" grep -qx done-all "$d/l.out"
check "... and leaves nothing on any node" node_clean "$j"
j=$(as "$U1" sbatch --parsable -w "$NODE" --vm-env=tiny -o "$d/l2.out" --wrap "echo after-libvirtd")
st=$(wait_job "$j" 120)
check "a new job after libvirtd's restart runs (state $st)" grep -qx after-libvirtd "$d/l2.out"

# --- scancel while a checkpoint is being saved ------------------------------
j=$(as "$U1" sbatch --parsable -w "$NODE" --vm-env=tiny --vm-checkpoint -o "$d/s.out" \
	--wrap 'head -c 200000000 /dev/urandom > /dev/shm/fill; echo filled; sleep 300')
check "job $j: its guest is ready" wait_state "$j" 90 ready
for _ in $(seq 150); do grep -q filled "$d/s.out" 2>/dev/null && break; sleep 0.2; done
as "$U1" vmenvctl checkpoint "$j" >"$T/ck.out" 2>&1 &
ck=$!
check "the checkpoint is being saved (state saving)" wait_state "$j" 30 saving
scancel "$j"
wait "$ck"
check "scancel during the save: the job is cancelled" test "$(wait_job "$j" 60)" = CANCELLED
check "... and leaves nothing on any node, no checkpoint fragment" node_clean "$j"
check "vmmd still serves" vmmd_up

# --- the node "reboots" while a job runs: every daemon and guest stopped,
# /run cleared, daemons started again. Slurm ends (or requeues) the job,
# and nothing of it may survive on disk (the image cache's leases and the
# checkpoint store outlive /run). -------------------------------------------
j=$(as "$U1" sbatch --parsable -w "$NODE" --vm-env=tiny --no-requeue -o "$d/r.out" \
	--wrap "echo started; sleep 600")
check "job $j: its guest is ready" wait_state "$j" 90 ready
cluster="$here/../../contrib/cluster/vmenv-cluster"
"$cluster" reboot >/dev/null 2>&1
check "after the reboot, no guest of the cluster runs" sh -c '! pgrep -f "[q]emu-system.*guest=vmenv-"'
"$cluster" up >/dev/null 2>&1
check "the cluster is back" vmmd_up
st=$(wait_job "$j" 240)
check "Slurm ended the job the reboot killed (state $st)" \
	sh -c "[ '$st' = NODE_FAIL ] || [ '$st' = FAILED ] || [ '$st' = CANCELLED ]"
check "... and nothing of it is left on any node (leases included)" node_clean "$j"
j=$(as "$U1" sbatch --parsable -w "$NODE" --vm-env=tiny -o "$d/r2.out" --wrap "echo after-reboot")
st=$(wait_job "$j" 180)
check "a job after the reboot runs (state $st)" grep -qx after-reboot "$d/r2.out"
