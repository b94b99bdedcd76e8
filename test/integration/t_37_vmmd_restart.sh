# timeout: 900
# vmmd killed (kill -9, as a crash or the OOM killer would) at each point
# of a job's life, then started again (issue 16's fault matrix): while the
# guest boots, while the job runs, while a requeued job's checkpoint is
# being restored. A running step goes on (vmenv-exec re-attaches:
# docs/restart.md); a case that cannot must end the job with a reason the
# user can read and leave nothing on any node (lib.sh leftovers_of), with
# the new vmmd serving the next job.
# A multi-node job whose non-batch node's vmmd restarts goes on untouched.
# A vmmd killed during a save is t_80_checkpoint's case 6.
. "$(dirname "$0")/lib.sh"
CLUSTER=$(dirname "$0")/../../contrib/cluster/vmenv-cluster
d=$(workdir "$U1" vmmdrestart)
cd "$d" || exit 1

guest_state() { vmenvctl list 2>/dev/null | awk -v j="$1" '$1 == j {print $4}'; }
wait_state() { # jobid timeout_s state
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[ "$(guest_state "$1")" = "$3" ] && return 0
		sleep 0.1
	done
	echo "#   job $1: state '$(guest_state "$1")', never '$3'" >&2
	return 1
}
# kill -9 node 1's vmmd and start it again as its service would.
restart_vmmd() {
	kill -KILL "$(cat /run/vmenv-cluster/vmmd.pid)"
	for _ in $(seq 50); do vmmd_up || break; sleep 0.1; done
	"$CLUSTER" up >/dev/null 2>&1
}
# The job's end: FAILED, within bounds, its output naming what happened.
ends_with_reason() { # jobid out-file what
	local st
	st=$(wait_job "$1" 120)
	check_eq "$3: job $1 ends FAILED" FAILED "$st"
	check_contains "... its output names the node whose vmmd went away" "$(cat "$2" 2>/dev/null)" \
		"job $1: lost the connection to vmmd on node $NODE (vmmd stopped or restarted"
	check "... and it left nothing on any node" node_clean "$1"
	check "... and vmmd serves" vmmd_up
	# The job's end reached the restarted vmmd (the plugin asks again
	# for a few seconds), not its next reconcile.
	check "... its end reached the restarted vmmd (no stop error)" \
		sh -c "! grep -q 'vmenv: stop: job $1' '$2'"
}

# --- while the guest boots ------------------------------------------------
j=$(as "$U1" sbatch --parsable --vm-env=tiny -o "$d/boot.out" --wrap "echo ran")
check "the job's guest boots" wait_state "$j" 60 booting
restart_vmmd
st=$(wait_job "$j" 120)
case "$st" in
COMPLETED) check_contains "during the boot: job $j completed, the restarted vmmd adopted the guest" \
	"$(cat boot.out)" "ran" ;;
*) ends_with_reason "$j" boot.out "during the boot" ;;
esac
check "job $j left nothing on any node" node_clean "$j"

# --- while the job runs -----------------------------------------------------
# The step goes on (docs/restart.md; t_85_restart has the byte counts).
j=$(as "$U1" sbatch --parsable --vm-env=tiny -o "$d/run.out" --wrap "echo started; sleep 8; echo went on; exit 4")
check "the job runs in its guest" sh -c "for i in \$(seq 120); do grep -q started '$d/run.out' 2>/dev/null && exit 0; sleep 1; done; exit 1"
restart_vmmd
st=$(wait_job "$j" 120)
check_eq "while the job runs: job $j goes on to its own end" "FAILED 4:0" "$st $(job_field "$j" ExitCode)"
check_contains "... its command went on after the restart" "$(cat run.out)" "went on"
check "... nothing of vmmd's restart in its output" sh -c "! grep -q vmenv '$d/run.out'"
check "job $j left nothing on any node" node_clean "$j"

# --- while a requeued job's checkpoint is restored ----------------------------
counter_script counter.sh 40
chown "$U1": counter.sh
j=$(as "$U1" sbatch --parsable --vm-env=tiny -t 2 --vm-checkpoint --vm-requeue \
	--vm-checkpoint-lead=100 -o "$d/c.out" counter.sh)
check "the counter job is saved and requeued" sh -c "for i in \$(seq 240); do
	[ \"\$(scontrol show job $j | sed -n 's/.*Restarts=\\([0-9]*\\).*/\\1/p')\" -ge 1 ] 2>/dev/null && exit 0; sleep 1; done; exit 1"
check "its restore begins" wait_state "$j" 300 restoring
restart_vmmd
st=$(wait_job "$j" 300)
if [ "$st $(job_field "$j" ExitCode)" = "FAILED 3:0" ]; then
	# The restore finished before vmmd went: the job went on to its end.
	check_eq "during the restore: job $j went on, every count once" \
		"$(seq 0 39)" "$(grep '^count ' c.out | awk '{print $2}')"
else
	check_eq "during the restore: job $j ends FAILED" FAILED "$st"
	check_contains "... its output names the node whose vmmd went away" "$(cat c.out)" \
		"job $j: lost the connection to vmmd on node $NODE (vmmd stopped or restarted"
fi
check "job $j left nothing on any node" node_clean "$j"
check "... and vmmd serves" vmmd_up

# --- node 2's vmmd, under a 3-node job ------------------------------------------
# The batch script runs in node 1's guest and reaches node 2's over the
# job's network (vmenv-rsh): node 2's vmmd is not on that path, so its
# restart must not be seen by the job at all; the restarted vmmd adopts
# node 2's guest and removes it at the job's end.
mapfile -t NODES < <(sinfo -h -p multi -N -o %N 2>/dev/null | sort -u)
if [ "${#NODES[@]}" -ge 3 ]; then
	N2=${NODES[1]}
	cat >ticks.sh <<'JOB'
#!/bin/sh
n2=$(sed -n 2p "$VMENV_NODEFILE")
i=0
while [ $i -lt 30 ]; do
	vmenv-rsh "$n2" "echo tick $i from \$(hostname)" 2>&1
	i=$((i + 1))
	sleep 1
done
exit 3
JOB
	chown "$U1": ticks.sh
	j=$(as "$U1" sbatch --parsable -p multi -N3 --vm-env=tiny -o "$d/ticks.out" ticks.sh)
	check "a 3-node job ticks through node 2's guest" sh -c \
		"for i in \$(seq 240); do grep -q 'tick 4 from' '$d/ticks.out' 2>/dev/null && exit 0; sleep 0.5; done; exit 1"
	kill -KILL "$(cat "/run/vmenv-cluster/vmmd-$N2.pid")"
	sleep 1
	"$CLUSTER" up >/dev/null 2>&1
	check "node $N2's vmmd is back and adopted the guest" sh -c \
		"vmenvctl --node '$N2' list | grep -q '^$j '"
	st=$(wait_job "$j" 240)
	check_eq "the job did not notice: its script's own exit code" "FAILED 3:0" "$st $(job_field "$j" ExitCode)"
	check_eq "every tick reached node $N2's guest once" \
		"$(seq 0 29 | sed "s/.*/tick & from $N2/")" "$(grep '^tick' ticks.out)"
	check "job $j left nothing on any node" node_clean "$j"
else
	skip "vmmd restart under a 3-node job: partition multi has ${#NODES[@]} nodes"
fi

# --- the next job runs ----------------------------------------------------------
j=$(as "$U1" sbatch --parsable --vm-env=tiny -o "$d/next.out" --wrap "echo next")
check_eq "a job after the restarts completes" COMPLETED "$(wait_job "$j" 120)"
check_contains "... in its guest" "$(cat next.out)" "next"
cd / && rm -rf "$d"
