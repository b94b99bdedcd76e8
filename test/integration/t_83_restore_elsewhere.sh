# timeout: 900 (a requeued job is eligible again only after ~2 min)
# Restore on another node (issue 18, item 2; docs/checkpoint.md "The
# store"): the three simulated nodes share one checkpoint_dir, as nodes
# share a directory on a parallel file system. A job saved on node 2
# before its time limit and requeued, then pinned to node 3 while it is
# pending, is restored on node 3 and goes on: its counter loses and
# repeats no count, the file it holds open in its working directory too,
# and nothing of it is left on any node. The restored guest keeps node
# 2's domain name (libvirt's restore needs it) and is node 3's by its
# metadata.
. "$(dirname "$0")/lib.sh"
STORE=${CKPT_STORE:-/var/lib/vmenv/checkpoints}
mapfile -t NODES < <(sinfo -h -p multi -N -o %N 2>/dev/null | sort -u)
if [ "${#NODES[@]}" -lt 3 ]; then
	skip "restore elsewhere: partition multi has ${#NODES[@]} nodes, needs 3"
	exit 0
fi
N2=${NODES[1]}
N3=${NODES[2]}
d=$(workdir "$U1" elsewhere)
cd "$d" || exit 1

counter_script counter.sh 100
chown "$U1": counter.sh

j=$(as "$U1" sbatch --parsable -p multi -w "$N2" --vm-env=tiny -t 2 --vm-checkpoint \
	--vm-requeue --vm-checkpoint-lead=50 -o "$d/c.out" counter.sh)
check "the counter job runs on $N2" wait_running "$j" 120
check_eq "... its batch host is $N2" "$N2" "$(job_field "$j" BatchHost)"
for _ in $(seq 240); do
	[ "$(job_field "$j" Restarts)" -ge 1 ] 2>/dev/null && break
	sleep 1
done
check "it was checkpointed and requeued (Restarts >= 1)" test "$(job_field "$j" Restarts)" -ge 1
check "its checkpoint is in the shared store" sh -c "ls '$STORE/$j'/*/manifest.json >/dev/null 2>&1"
# Pending again: send it to node 3 (as an admin would, or as Slurm does
# when node 2 is down or busy).
scontrol update JobId="$j" NodeList="$N3"
check "the requeued job now asks for $N3" sh -c "scontrol show job '$j' | grep -q 'ReqNodeList=$N3'"
check "it runs again, on $N3" sh -c "for i in \$(seq 300); do
	[ \"\$(scontrol show job '$j' | sed -n 's/.* BatchHost=\\([^ ]*\\).*/\\1/p')\" = '$N3' ] &&
	scontrol show job '$j' | grep -q JobState=RUNNING && exit 0; sleep 1; done; exit 1"
for _ in $(seq 120); do
	grep -q "job $j: restored from checkpoint" /var/log/vmenv-cluster/vmmd-"$N3".log 2>/dev/null && break
	sleep 1
done
check "node $N3's vmmd restored node $N2's checkpoint" \
	grep -q "job $j: restored from checkpoint" /var/log/vmenv-cluster/vmmd-"$N3".log
st=$(wait_job "$j" 600)
check_eq "the job ends with its own exit code (FAILED 3:0)" "FAILED 3:0" "$st $(job_field "$j" ExitCode)"
counts=$(grep '^count ' c.out | awk '{print $2}')
check_eq "every count 0..99 once, in order, across the move" "$(seq 0 99)" "$counts"
check_eq "the file it held open has every line once" \
	"$(seq 0 99 | sed 's/^/line /')" "$(cat "counter-$j.log" 2>&1)"
check "the checkpoint was consumed" sh -c "! ls '$STORE/$j'/*/manifest.json 2>/dev/null"
check "job $j left nothing on any node" node_clean "$j"
cd / && rm -rf "$d"
