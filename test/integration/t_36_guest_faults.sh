# timeout: 600
# More of the fault matrix (issue 16), on the live cluster, each followed
# by lib.sh's leftover check of every node:
#   - the guest's kernel panics (vmenv's images boot with panic=-1: it
#     reboots, and on_reboot=destroy ends the domain): the job fails at
#     once, and its console log holds the panic;
#   - the file system of the job's disk overlay fills up (a 112 MiB tmpfs as
#     node 3's run_dir): QEMU pauses the guest on ENOSPC; vmmd fails the
#     job naming the full file system and destroys the paused guest,
#     instead of leaving it holding its CPUs until the time limit;
#   - scancel while a checkpoint is being restored (--vm-restore of a
#     kept checkpoint).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
STORE=${CKPT_STORE:-/var/lib/vmenv/checkpoints}
cluster="$here/../../contrib/cluster/vmenv-cluster"

d=$(workdir "$U1" gfaults)
cd "$d" || exit 1

guest_state() { vmenvctl ${2:+--node "$2"} list 2>/dev/null | awk -v j="$1" '$1 == j {print $4}'; }
wait_state() { # jobid timeout state [node]
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[ "$(guest_state "$1" "${4:-}")" = "$3" ] && return 0
		sleep 0.1
	done
	echo "#   job $1: state '$(guest_state "$1" "${4:-}")', never '$3'" >&2
	return 1
}

# --- the guest's kernel panics ------------------------------------------------
# A root job (the guest's root may write /proc/sysrq-trigger), from a
# directory of root's. Its output goes through the guest's agent (steps
# outlive vmmd restarts: docs/restart.md): what the command wrote in the
# very instant before the panic is still in the guest's pipe and goes
# with the guest, so it waits a second before panicking.
rd=$(mktemp -d /tmp/t36-root.XXXXXX)
out=$(cd "$rd" && timeout 120 srun -w "$NODE" -t 5 --vm-env=tiny sh -c \
	'echo before-panic; sleep 1; echo c >/proc/sysrq-trigger; echo after-panic' 2>&1)
rc=$?
j=$(sed -n 's/.*vmenv: job \([0-9]*\):.*/\1/p' <<<"$out" | head -1)
check_eq "a guest whose kernel panics: the step fails at once (exit 125)" 125 "$rc"
check_contains "... it ran until the panic" "$out" before-panic
check_eq "... and not past it" 0 "$(grep -c after-panic <<<"$out")"
check_contains "... the job's message names it and where to look" "$out" "see vmenvctl console $j"
check "... the console log holds the panic" sh -c "vmenvctl console '$j' 2>&1 | grep -q 'Kernel panic\|sysrq'"
check "... and leaves nothing on any node" node_clean "$j"
rm -rf "$rd"

# --- the overlay's file system fills up -----------------------------------------
N3=$(sinfo -h -p multi -N -o %N 2>/dev/null | sort -u | sed -n 3p)
if [ -z "$N3" ]; then
	skip "overlay full: partition multi has no third node"
else
	pidf=/run/vmenv-cluster/vmmd-$N3.pid
	rdir=/run/vmenv/$N3
	stop_vmmd3() {
		local p
		p=$(cat "$pidf" 2>/dev/null) || return 0
		kill -TERM "$p" 2>/dev/null
		for _ in $(seq 100); do [ -d "/proc/$p" ] || return 0; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
	}
	# vmmd of node 3 is stopped while its run_dir becomes a small tmpfs
	# (nothing of its own runs there: no job is on node 3). debian12's
	# boot files (71 MB) are copied there too: about 40 MiB are left for
	# the overlay.
	stop_vmmd3
	mount -t tmpfs -o size=112m,mode=0755 vmenv-t36 "$rdir"
	trap 'stop_vmmd3; umount "$rdir" 2>/dev/null; "$cluster" up >/dev/null 2>&1' EXIT
	"$cluster" up >/dev/null 2>&1
	check "node $N3's vmmd runs on a 112 MiB run_dir" sh -c "vmenvctl --node '$N3' status >/dev/null && findmnt -n '$rdir' | grep -q tmpfs"
	j=$(as "$U1" sbatch --parsable -p multi -w "$N3" -t 5 --vm-env=debian12 -o "$d/full.out" \
		--wrap 'echo started; dd if=/dev/zero of=/var/tmp/fill bs=1M count=200 conv=fsync 2>&1; echo wrote-all')
	st=$(wait_job "$j" 240)
	check "a guest that fills its overlay's file system: the job fails (state $st)" test "$st" = FAILED
	check_contains "... naming the disk error, the node and the full file system" "$(cat "$d/full.out" 2>/dev/null)" \
		"job $j: the guest's disk hit a write error on node $N3: no space left for its disk overlay"
	check "... its writes had started" grep -q '^started' "$d/full.out"
	check "... and did not complete" sh -c "! grep -q wrote-all '$d/full.out'"
	check "... vmmd on $N3 still serves" vmenvctl --node "$N3" status
	check "... and it leaves nothing on any node" node_clean "$j"
	check "... its overlay's space is free again" sh -c "[ \$(df --output=used -k '$rdir' | tail -1) -lt 4096 ]"
	stop_vmmd3
	umount "$rdir"
	trap - EXIT
	"$cluster" up >/dev/null 2>&1
	check "node $N3's vmmd is back on its run_dir" vmenvctl --node "$N3" status
fi

# --- scancel while a checkpoint is being restored --------------------------------
# A kept checkpoint of a job whose guest filled 200 MB of its memory (a
# restore long enough to be seen), restored by another job, cancelled
# while it restores.
j=$(as "$U1" sbatch --parsable -w "$NODE" -t 10 --vm-env=tiny --vm-checkpoint \
	--vm-checkpoint-keep=yes -o "$d/src.out" \
	--wrap 'cd /; head -c 200000000 /dev/urandom >/dev/shm/fill; echo filled; sleep 300')
check "job $j: its guest is ready" wait_guest_ready "$j" 120
for _ in $(seq 300); do grep -q filled "$d/src.out" 2>/dev/null && break; sleep 0.2; done
check "... it filled its memory" grep -q filled "$d/src.out"
check "... and is checkpointed on demand" as "$U1" vmenvctl checkpoint "$j"
scancel "$j"
wait_job "$j" 60 >/dev/null
check "its kept checkpoint is in the store" sh -c "ls '$STORE/$j'/*/manifest.json >/dev/null 2>&1"
r=$(as "$U1" sbatch --parsable -w "$NODE" -t 10 --vm-env=tiny --vm-checkpoint --vm-restore="$j" \
	-o "$d/restore.out" --wrap 'echo not-reached')
check "job $r restores it (state restoring)" wait_state "$r" 120 restoring
scancel "$r"
st=$(wait_job "$r" 60)
check "scancel during the restore: the job is cancelled (state $st)" test "$st" = CANCELLED
check "... and leaves nothing on any node" node_clean "$r"
check "... the kept checkpoint of job $j is still whole" sh -c "ls '$STORE/$j'/*/manifest.json >/dev/null 2>&1"
check "vmmd still serves" vmmd_up
rm -rf "${STORE:?}/$j"
