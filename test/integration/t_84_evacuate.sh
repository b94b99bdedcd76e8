# timeout: 1200 (two moves; a requeued job is eligible again only after ~2 min)
# Evacuating a node (issue 18, item 3; docs/checkpoint.md "Evacuating a
# node"). On the three-node cluster, whose nodes share one checkpoint
# store:
#  1. vmenvctl evacuate NODE2 --reason ... --wait (root): node 2 is
#     drained in Slurm with the reason; its checkpointing job (which did
#     not ask for a requeue) is saved, requeued and goes on on another
#     node with no count lost or repeated; its job without checkpoints is
#     listed with the reason and stays; a user may not evacuate.
#  2. An admin drains node 2 in Slurm with "evacuate: ..." (vmmd.conf's
#     evacuate_drain_reason, set by test/all): vmmd evacuates it by
#     itself and the job goes on elsewhere.
# Each case: nothing of the job is left on any node, and node 2 holds no
# guest at the end.
. "$(dirname "$0")/lib.sh"
mapfile -t NODES < <(sinfo -h -p multi -N -o %N 2>/dev/null | sort -u)
if [ "${#NODES[@]}" -lt 3 ]; then
	skip "evacuate: partition multi has ${#NODES[@]} nodes, needs 3"
	exit 0
fi
N1=${NODES[0]}
N2=${NODES[1]}
N3=${NODES[2]}
resume_all() {
	scontrol update NodeName="$N1,$N2,$N3" State=RESUME >/dev/null 2>&1
	true
}
trap resume_all EXIT
d=$(workdir "$U1" evacuate)
cd "$d" || exit 1
counter_script counter.sh 60
chown "$U1": counter.sh

# The counter starts on node 2 but may run anywhere of multi after its
# requeue: the other nodes are drained only while it is placed.
start_on_n2() { # sbatch options...
	local j
	scontrol update NodeName="$N1,$N3" State=DRAIN Reason="t_84: placing a job on $N2"
	j=$(as "$U1" sbatch --parsable -p multi --vm-env=tiny "$@")
	wait_running "$j" 120 >/dev/null
	scontrol update NodeName="$N1,$N3" State=RESUME
	echo "$j"
}

# Waits for a requeued job to run again on a node other than node 2 and
# for that node's vmmd to say it restored it; prints the node.
wait_moved() { # jobid
	local j=$1 host i
	for ((i = 0; i < 300; i++)); do
		host=$(job_field "$j" BatchHost)
		if [ "$(job_field "$j" JobState)" = RUNNING ] && [ -n "$host" ] &&
			[ "$host" != "$N2" ] &&
			grep -qs "job $j: restored from checkpoint" /var/log/vmenv-cluster/vmmd*.log; then
			echo "$host"
			return 0
		fi
		sleep 1
	done
	echo "${host:-none}"
	return 1
}

counted_once() { # jobid output
	check_eq "job $1: every count 0..59 once, in order, across the move" \
		"$(seq 0 59)" "$(grep '^count ' "$2" | awk '{print $2}')"
	check_eq "job $1: the file it held open has every line once" \
		"$(seq 0 59 | sed 's/^/line /')" "$(cat "counter-$1.log" 2>&1)"
}

guests_on_n2() {
	vmenvctl --node "$N2" list 2>/dev/null | awk 'NR > 1 && $1 ~ /^[0-9]+$/' | wc -l
}

# --- 1. vmenvctl evacuate ------------------------------------------------
a=$(start_on_n2 -t 10 --vm-checkpoint -o "$d/a.out" counter.sh)
b=$(start_on_n2 -w "$N2" -t 10 -o "$d/b.out" --wrap "sleep 600")
check_eq "job $a (checkpoints, no --vm-requeue) runs on $N2" "$N2" "$(job_field "$a" BatchHost)"
check_eq "job $b (no checkpoints) runs on $N2" "$N2" "$(job_field "$b" BatchHost)"
check "job $a's guest is up" wait_guest_ready "$a" 120 "$N2"
check "job $b's guest is up" wait_guest_ready "$b" 120 "$N2"
sleep 3
out=$(as "$U1" vmenvctl evacuate "$N2" --reason "t_84 fan failing" 2>&1)
check_contains "a user may not evacuate a node" "$out" "permission denied: only root may evacuate node $N2"
check "... and the node is not drained" sh -c "! scontrol show node '$N2' | grep -q 'State=[A-Z+]*DRAIN'"
out=$(vmenvctl evacuate "$N2" --reason "t_84 fan failing" --wait=300 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
check_contains "the report names the node and the reason" "$out" "node $N2: evacuating (t_84 fan failing): 1 job(s) saving"
check_contains "job $a is saved" "$out" "job $a: saving"
check_contains "job $b stays, with the reason" "$out" "job $b: stays: job $b: checkpoint refused: checkpoints are off for this job"
check_contains "--wait: job $a left the node" "$out" "job $a: saved, requeued and gone from the node"
check_contains "--wait: job $b is named as staying" "$out" "job $b: stays on the node"
check_eq "vmenvctl evacuate exits 1 while a job stays" 1 "$rc"
check_contains "Slurm drains $N2 with the reason, tagged" "$(scontrol show node "$N2")" "Reason=vmenv evacuate: t_84 fan failing"
check "job $b still runs" test "$(job_field "$b" JobState)" = RUNNING
scancel "$b"
check_eq "job $b ends cancelled" CANCELLED "$(wait_job "$b" 60)"
check "job $a was requeued (Restarts >= 1)" test "$(job_field "$a" Restarts)" -ge 1
host=$(wait_moved "$a")
check "job $a runs again, restored on another node ($host)" test "$host" != none -a "$host" != "$N2"
st=$(wait_job "$a" 300)
check_eq "job $a ends with its own exit code (FAILED 3:0)" "FAILED 3:0" "$st $(job_field "$a" ExitCode)"
counted_once "$a" a.out
check "job $a left nothing on any node" node_clean "$a"
check "job $b left nothing on any node" node_clean "$b"
check_eq "$N2 holds no guest" 0 "$(guests_on_n2)"

# --- 2. a drain with the site's reason -----------------------------------
# Resumed: vmmd ends the first evacuation (at its next reconcile, or when
# a job starts there), so the next job is not evacuated with its reason.
scontrol update NodeName="$N2" State=RESUME
c=$(start_on_n2 -t 10 --vm-checkpoint --vm-requeue -o "$d/c.out" counter.sh)
check_eq "job $c runs on $N2" "$N2" "$(job_field "$c" BatchHost)"
check "job $c's guest is up" wait_guest_ready "$c" 120 "$N2"
sleep 3
scontrol update NodeName="$N2" State=DRAIN Reason="evacuate: t_84 ECC errors"
for ((i = 0; i < 90; i++)); do
	[ "$(job_field "$c" Restarts)" -ge 1 ] 2>/dev/null && break
	sleep 1
done
check "vmmd of $N2 evacuated it by itself (job $c requeued)" test "$(job_field "$c" Restarts)" -ge 1
check "... and logged why" grep -qs "evacuate: node $N2 (evacuate: t_84 ECC errors), drained in Slurm" \
	"/var/log/vmenv-cluster/vmmd-$N2.log"
host=$(wait_moved "$c")
check "job $c runs again, restored on another node ($host)" test "$host" != none -a "$host" != "$N2"
st=$(wait_job "$c" 300)
check_eq "job $c ends with its own exit code (FAILED 3:0)" "FAILED 3:0" "$st $(job_field "$c" ExitCode)"
counted_once "$c" c.out
check "job $c left nothing on any node" node_clean "$c"
check_eq "$N2 holds no guest" 0 "$(guests_on_n2)"
scontrol update NodeName="$N2" State=RESUME
for ((i = 0; i < 60; i++)); do
	grep -qs "is no longer drained in Slurm: the evacuation (evacuate: t_84 ECC errors) is over" \
		"/var/log/vmenv-cluster/vmmd-$N2.log" && break
	sleep 1
done
check "vmmd of $N2 sees the node resumed: the evacuation is over" grep -qs \
	"is no longer drained in Slurm: the evacuation (evacuate: t_84 ECC errors) is over" \
	"/var/log/vmenv-cluster/vmmd-$N2.log"
cd / && rm -rf "$d"
