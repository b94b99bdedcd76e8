# timeout: 1500
# Checkpoints of multi-node jobs (docs/checkpoint.md, "Multi-node jobs") on
# the 3-node cluster, whose vmmds share one checkpoint store: an MPI
# program in three debian12 guests is checkpointed on demand (it goes on),
# then before its time limit (requeued, restored on every node), and
# prints every iteration once, in order; a guest that refuses abandons
# the group and every node's guest goes on; evacuating one node of a job
# moves the whole job to other nodes, and one that Slurm will not requeue
# goes on on all of its nodes.
. "$(dirname "$0")/lib.sh"
NODES=$(sinfo -h -p multi -N -o %N | sort -u | tr '\n' ' ')
set -- $NODES
if [ $# -lt 3 ]; then
	skip "multi-node checkpoints: partition multi has $# nodes, needs 3"
	exit 0
fi
N1=$1 N2=$2 N3=$3
STORE=${CKPT_STORE:-/var/lib/vmenv/checkpoints}
LOGS=/var/log/vmenv-cluster

ctl() { # node args...
	local n=$1
	shift
	vmenvctl --socket "/run/vmenv/$n/vmmd.sock" "$@"
}
log_of() { # node
	if [ "$1" = "$N1" ]; then echo "$LOGS/vmmd.log"; else echo "$LOGS/vmmd-$1.log"; fi
}

# Nothing of the job on any node, nor in the store (its guests' checkpoints
# and the coordination files).
nothing_left() { # jobid
	local n i left
	for ((i = 0; i < 60; i++)); do
		left=""
		for n in $NODES; do
			$VIRSH list --all --name | grep -q -- "-$1\$" && left+=" domain:$n"
			[ -e "/run/vmenv/$n/jobs/$1" ] && left+=" dir:$n"
		done
		for p in "$STORE/$1" "$STORE/n1/$1" "$STORE/n2/$1" "$STORE/coord/$1"; do
			[ -e "$p" ] && left+=" $p"
		done
		[ -z "$left" ] && return 0
		sleep 0.5
	done
	echo "# leftovers of job $1:$left" >&2
	return 1
}

d=$(workdir "$U1" mckpt)
cd "$d"

# --- 1. an MPI job: on demand (goes on), then before its limit ----------
# The stand-in device (checkpoint_standin_device = yes, test/all): an
# emulated PCI device each guest has, unplugged before its save and
# plugged after its restore, as a passed-through VF would be.
cat >rng.sh <<'JOB'
#!/bin/sh
n=0
for p in /sys/bus/pci/devices/*; do
	case "$(cat "$p/vendor") $(cat "$p/device")" in
	"0x1af4 0x1005" | "0x1af4 0x1044") n=$((n + 1)) ;;
	esac
done
echo "$1 in $(hostname) rng $n"
JOB
cat >mpi.sh <<'JOB'
#!/bin/sh
echo "batch start in $(hostname)"
for p in $(cat "$VMENV_NODEFILE"); do
	vmenv-rsh "$p" "sh $PWD/rng.sh before"
done
mpirun --oversubscribe --hostfile "$VMENV_NODEFILE" --map-by node -np 3 \
	python3 -u -c '
import sys, time, socket
from mpi4py import MPI
c = MPI.COMM_WORLD
hosts = c.allgather(socket.gethostname())
if c.rank == 0:
    print("ranks on " + " ".join(hosts), flush=True)
for i in range(int(sys.argv[1])):
    s = c.allreduce(i * (c.rank + 1))
    if c.rank == 0:
        print("iter %d sum %d" % (i, s), flush=True)
    time.sleep(0.5)
' 260
echo "batch end $?"
# After the restore: the guests still hold one job token between them,
# and each has its device again.
for p in $(cat "$VMENV_NODEFILE"); do
	vmenv-rsh "$p" "sh $PWD/rng.sh after"
done
JOB
chown "$U1": mpi.sh rng.sh
t0=$(date +%s)
# The cluster's default memory (DefMemPerCPU=512: a 384 MiB guest, 128
# MiB headroom): the save's stream, in the page cache, is charged to the
# domain's cgroup, and QEMU was OOM-killed in its save until vmmd raised
# the limit for it (docs/checkpoint.md, "Multi-node jobs", Memory).
j=$(as "$U1" sbatch --parsable -p multi -N3 --vm-env=debian12 -t 3 \
	--vm-checkpoint --vm-requeue --vm-checkpoint-lead=50 -o "$d/mpi.out" mpi.sh)
for _ in $(seq 300); do
	grep -q "^iter 20 " mpi.out 2>/dev/null && break
	sleep 1
done
check "the MPI job runs its iterations (iter 20 after $(($(date +%s) - t0)) s)" \
	grep -q "^iter 20 " mpi.out

out=$(ctl "$N2" checkpoint "$j" 2>&1)
check_contains "vmenvctl checkpoint on a node other than the first is refused, naming why" \
	"$out" "its first node's vmmd checkpoints the job"

before=$(grep -c "^iter " mpi.out)
ts=$(date +%s%N)
out=$(ctl "$N1" checkpoint "$j" 2>&1)
te=$(date +%s%N)
check_contains "on demand: every node's guest is saved and the job goes on" "$out" \
	"checkpointed; the job goes on"
echo "# on-demand checkpoint of 3 debian12 guests, request to answer: $(((te - ts) / 1000000)) ms"
check "the group's outcome is complete, with a checkpoint of each node's guest" \
	grep -q "^complete 3 [0-9]* [0-9]* [0-9]*$" "$STORE/coord/$j/g1.outcome"
saved_after_held() { # node
	grep -E "job $j: (checkpoint group [0-9]+: every node's guest holds|saving the guest to)" "$(log_of "$1")" |
		sed -E -e "s/.*every node's guest holds.*/holds/" -e 's/.*saving the guest to.*/saving/' | tr '\n' ' '
}
for n in $NODES; do
	check_eq "on $n, the guest was saved only once every node's held" "holds saving " "$(saved_after_held "$n")"
done
i=0
for n in $NODES; do
	part=$STORE
	[ $i -gt 0 ] && part=$STORE/n$i
	saved=$(virsh -q -c qemu:///system save-image-dumpxml "$part/$j/1/memory" 2>&1)
	rc=$?
	read_ok() { [ "$rc" -eq 0 ] && grep -q '<domain ' <<<"$saved"; }
	no_rng() { [ "$rc" -eq 0 ] && ! grep -q '<rng ' <<<"$saved"; }
	check "libvirt reads $n's saved image (rc $rc)" read_ok
	check "$n's saved guest has no stand-in device (unplugged before the save)" no_rng
	check "$n's restored guest has it again (plugged after the restore)" \
		sh -c "virsh -q -c qemu:///system dumpxml 'vmenv-$n-$j' | grep -q ua-vmenv-standin"
	i=$((i + 1))
done
for _ in $(seq 60); do
	[ "$(grep -c "^iter " mpi.out)" -gt $((before + 5)) ] && break
	sleep 1
done
check "... and the iterations go on after it" test "$(grep -c "^iter " mpi.out)" -gt $((before + 5))

# Before the time limit: saved on every node, requeued, restored.
for _ in $(seq 300); do
	[ "$(job_field "$j" Restarts)" -ge 1 ] 2>/dev/null && break
	sleep 1
done
check "before its time limit the job was checkpointed and requeued (Restarts >= 1)" \
	test "$(job_field "$j" Restarts)" -ge 1
st=$(wait_job "$j" 900)
t1=$(date +%s)
check_eq "the MPI job completes (after $((t1 - t0)) s)" "COMPLETED 0:0" "$st $(job_field "$j" ExitCode)"
check_eq "every iteration 0..259 once, in order, with the right allreduce" \
	"$(seq 0 259 | awk '{print "iter " $1 " sum " $1 * 6}')" "$(grep '^iter ' mpi.out)"
check_eq "the batch script started once and ended once (it went on, it did not start again)" \
	"1 1" "$(grep -c '^batch start' mpi.out) $(grep -c '^batch end 0' mpi.out)"
check_contains "its ranks ran on the three nodes' guests" "$(cat mpi.out)" "ranks on $N1 $N2 $N3"
for n in $NODES; do
	check_eq "on $n, each of the two checkpoints saved only once every node's guest held" \
		"holds saving holds saving " "$(saved_after_held "$n")"
	check_contains "$n's guest had the stand-in device before" "$(cat mpi.out)" "before in $n rng 1"
	check_contains "after the restores, vmenv-rsh reaches $n's guest, which has its device" \
		"$(cat mpi.out)" "after in $n rng 1"
done
for n in $NODES; do
	check "$n's guest was restored (not booted) and went on once every node's was back" \
		grep -q "job $j: checkpoint group [0-9]*: every node's guest is back" "$(log_of "$n")"
done
grep -E "job $j: (checkpoint [0-9]+ saved|guest restored|restored from)" "$LOGS"/vmmd*.log |
	sed 's/^/# /'
check "nothing of the job is left on any node or in the store" nothing_left "$j"

# --- 2. a guest that refuses abandons the group: every node goes on ------
# Node 2's guest keeps the working directory busy (a command's cwd there);
# with QEMU's virtio-9p (--vm-checkpoint-files=9p) its agent refuses the
# checkpoint, and the guests of nodes 1 and 3, already holding, go on.
cat >refuse.sh <<'JOB'
#!/bin/sh
W=$PWD
cd /
second=$(sed -n 2p "$VMENV_NODEFILE")
vmenv-rsh "$second" "cd $W && exec sleep 600" &
sleep 3
echo holding >"$W/holding"
while [ ! -e "$W/go" ]; do sleep 1; done
for p in $(cat "$VMENV_NODEFILE"); do
	vmenv-rsh "$p" 'echo "alive in $(hostname)"'
done
echo done
exit 0
JOB
chown "$U1": refuse.sh
j=$(as "$U1" sbatch --parsable -p multi -N3 --vm-env=tiny -t 10 --vm-checkpoint \
	--vm-checkpoint-files=9p -o "$d/refuse.out" refuse.sh)
for _ in $(seq 240); do [ -e holding ] && break; sleep 0.5; done
check "the refusing job runs, its second node's share busy" test -e holding
out=$(ctl "$N1" checkpoint "$j" 2>&1)
check_contains "the checkpoint is abandoned, naming the node whose guest refused" "$out" \
	"checkpoint group 1 abandoned: node $N2"
check_contains "... and its reason" "$out" "files open"
check "the group's outcome says so" grep -q "^abort $N2 " "$STORE/coord/$j/g1.outcome"
touch go
st=$(wait_job "$j" 180)
check_eq "every node's guest went on: the job completes" "COMPLETED 0:0" "$st $(job_field "$j" ExitCode)"
for n in $NODES; do
	check_contains "... $n's guest answers after the abandoned checkpoint" "$(cat refuse.out)" "alive in $n"
done
[ "$st" = COMPLETED ] || sed 's/^/#   /' refuse.out | tail -20
check "nothing of the refusing job is left" nothing_left "$j"

# --- 3. evacuating one node of a multi-node job moves the whole job -------
# A 2-node job on nodes 2 and 3, checkpointing but not --vm-requeue: node
# 3 (the job's second node) is evacuated; it asks the job's first node
# (through the store), which saves both guests and requeues the job; Slurm
# runs it on the two nodes left, each restoring the guest of its index.
counter_script counter.sh 60
chown "$U1": counter.sh
resume_all() {
	scontrol update NodeName="$N1,$N2,$N3" State=RESUME >/dev/null 2>&1
	true
}
trap resume_all EXIT
# Placed on nodes 2 and 3 while node 1 is drained (-w would pin the
# requeued job there too).
scontrol update NodeName="$N1" State=DRAIN Reason="t_86: placing a job on $N2,$N3"
j=$(as "$U1" sbatch --parsable -p multi -N2 --vm-env=tiny -t 10 \
	--vm-checkpoint -o "$d/ev.out" counter.sh)
wait_running "$j" 120 >/dev/null
scontrol update NodeName="$N1" State=RESUME
for _ in $(seq 240); do grep -q "^count 5" ev.out 2>/dev/null && break; sleep 0.5; done
check "the 2-node job counts on $N2 and $N3" grep -q "^count 5" ev.out
out=$(vmenvctl --node "$N3" evacuate --reason "t_86 ECC errors" --wait=300 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
check_contains "$N3's report: the job is saved" "$out" "job $j: saving"
check_contains "--wait: the job left $N3" "$out" "job $j: saved, requeued and gone from the node"
check_eq "vmenvctl evacuate exits 0: every job left" 0 "$rc"
check "the first node saved and requeued the job (Restarts >= 1)" test "$(job_field "$j" Restarts)" -ge 1
check "... logging the other node's evacuation" grep -qF "job $j: node $N3 (node 1 of the job, t_86 ECC errors) is evacuated: saving its 2 nodes" \
	"$(log_of "$N2")"
check_contains "the job's output says which node was evacuated and why" "$(cat ev.out)" \
	"job $j: node $N3 is evacuated (t_86 ECC errors): checkpointed, requeued"
for _ in $(seq 300); do
	[ "$(job_field "$j" JobState)" = RUNNING ] && [ "$(job_field "$j" Restarts)" -ge 1 ] && break
	sleep 1
done
nodes=$(scontrol show hostnames "$(job_field "$j" NodeList)" | tr '\n' ' ')
# Two nodes, none of them node 3 (an empty list, a job not running, fails).
moved_off() { [ "$(wc -w <<<"$nodes")" -eq 2 ] && ! grep -qw "$N3" <<<"$nodes"; }
check "the requeued job runs on two nodes without $N3 ($nodes)" moved_off
st=$(wait_job "$j" 300)
check_eq "the job ends with its own exit code (FAILED 3:0)" "FAILED 3:0" "$st $(job_field "$j" ExitCode)"
check_eq "every count 0..59 once, in order, across the move" \
	"$(seq 0 59)" "$(grep '^count ' ev.out | awk '{print $2}')"
check_eq "the file it held open has every line once" \
	"$(seq 0 59 | sed 's/^/line /')" "$(cat "counter-$j.log" 2>&1)"
for n in $nodes; do
	check "$n restored its guest of the job (not booted)" grep -q "job $j: restart 1 restores node [01]'s guest" "$(log_of "$n")"
done
check "nothing of the evacuated job is left" nothing_left "$j"
seen=$(wc -l <"$(log_of "$N3")")
resumed() { tail -n +$((seen + 1)) "$(log_of "$N3")" | grep -qs "is no longer drained in Slurm"; }
scontrol update NodeName="$N3" State=RESUME
for _ in $(seq 60); do resumed && break; sleep 1; done
check "vmmd of $N3 sees the node resumed: the evacuation is over" resumed

# --- 4. an evacuation Slurm will not requeue: the job goes on everywhere --
# The same 2-node job submitted with --no-requeue: node 3 is evacuated,
# both guests are saved, Slurm refuses the first node's requeue, and the
# first node says so in the store (g<G>.verdict): every node's guest comes
# back from what it just wrote and the job goes on on both nodes together
# (not on its first node alone, its other ranks ended), to its end.
counter_script counter4.sh 40
chown "$U1": counter4.sh
scontrol update NodeName="$N1" State=DRAIN Reason="t_86: placing a job on $N2,$N3"
j=$(as "$U1" sbatch --parsable -p multi -N2 --vm-env=tiny -t 10 --no-requeue \
	--vm-checkpoint -o "$d/nr.out" counter4.sh)
wait_running "$j" 120 >/dev/null
scontrol update NodeName="$N1" State=RESUME
for _ in $(seq 240); do grep -q "^count 5" nr.out 2>/dev/null && break; sleep 0.5; done
check "the 2-node --no-requeue job counts on $N2 and $N3" grep -q "^count 5" nr.out
seen2=$(wc -l <"$(log_of "$N2")")
seen3=$(wc -l <"$(log_of "$N3")")
out=$(vmenvctl --node "$N3" evacuate --reason "t_86 no requeue" --wait=300 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
check_contains "--wait: the job stays on $N3, saved but not requeued" "$out" \
	"job $j: stays on the node: job $j: saved, but not requeued"
check "vmenvctl evacuate exits non-zero: a job stayed" test "$rc" -ne 0
new_log() { tail -n +$(($2 + 1)) "$(log_of "$1")"; }
check "the first node logged Slurm's refusal: the job goes on there from the checkpoint" \
	grep -q "job $j: saved, but not requeued (.*): it goes on here from the checkpoint" <(new_log "$N2" "$seen2")
st=$(wait_job "$j" 300)
check_eq "the job ends with its own exit code, never requeued (FAILED 3:0, 0 restarts)" \
	"FAILED 3:0 0" "$st $(job_field "$j" ExitCode) $(job_field "$j" Restarts)"
# (--wait returns when the job stays, before the restores: looked at now.)
for n in "$N2:$seen2" "$N3:$seen3"; do
	check "${n%%:*} restored its guest of the job from what it just wrote" \
		grep -q "job $j: guest restored from " <(new_log "${n%%:*}" "${n#*:}")
done
check_eq "every count 0..39 once, in order, across the save" \
	"$(seq 0 39)" "$(grep '^count ' nr.out | awk '{print $2}')"
check_eq "the file it held open has every line once" \
	"$(seq 0 39 | sed 's/^/line /')" "$(cat "counter-$j.log" 2>&1)"
check "nothing of the job is left" nothing_left "$j"
scontrol update NodeName="$N3" State=RESUME
cd / && rm -rf "$d"
