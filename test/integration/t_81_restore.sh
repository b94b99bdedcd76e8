# Checkpoint retention and --vm-restore=JOBID (docs/checkpoint.md,
# "Retention" and "Restoring another job's checkpoint"). Needs what
# t_80_checkpoint.sh needs (a checkpoint store, the tiny image with this
# branch's agent, policies that let users ask for --vm-checkpoint), and
# policies that let users set checkpoint_keep and restore_from. Takes
# about 5 minutes.
#
# Every job is pinned to this node (-w): vmenvctl talks to this node's vmmd
# and the store is this node's. The counter `cd /`s first (a process in the
# virtio-9p share refuses the checkpoint, t_80).
. "$(dirname "$0")/lib.sh"
STORE=${CKPT_STORE:-/var/lib/vmenv/checkpoints}
d=$(workdir "$U1" restore)
d2=$(workdir "$U2" restore)
cd "$d" || exit 1

cat >counter.sh <<'JOB'
#!/bin/sh
cd /
i=0
while [ $i -lt 60 ]; do
	echo "count $i"
	i=$((i + 1))
	sleep 1
done
exit 3
JOB
cp counter.sh "$d2/counter.sh"
chown "$U1": counter.sh
chown "$U2": "$d2/counter.sh"

has_ckpt() { ls "$STORE/$1"/*/manifest.json >/dev/null 2>&1; }
# Waits (the epilog runs after the job's end) until the store has no
# checkpoint of the job.
ckpt_gone() { # jobid
	for _ in $(seq 40); do has_ckpt "$1" || return 0; sleep 0.5; done
	return 1
}
domain_gone() { # name
	for _ in $(seq 40); do
		$VIRSH list --name | grep -qx "$1" || return 0
		sleep 0.25
	done
	return 1
}
last_count() { grep '^count ' "$1" 2>/dev/null | tail -1 | awk '{print $2}'; }
wait_count() { # file n
	for _ in $(seq 240); do
		[ "$(last_count "$1")" -ge "$2" ] 2>/dev/null && return 0
		sleep 0.5
	done
	return 1
}

# --- 1. kept: on demand, cancelled, the checkpoint outlives the job --------
j=$(as "$U1" sbatch --parsable -w "$NODE" --vm-env=tiny -t 10 --vm-checkpoint \
	--vm-checkpoint-keep=yes -o "$d/c.out" counter.sh)
check "the counter job's guest is ready" wait_guest_ready "$j" 120
check "it counts" wait_count c.out 5
out=$(vmenvctl checkpoint "$j" 2>&1)
check_contains "vmenvctl checkpoint saves and the job goes on" "$out" \
	"checkpointed; the job goes on"
check "the checkpoint is in the store" has_ckpt "$j"
scancel "$j"
wait_job "$j" 60 >/dev/null
sleep 3
check "kept (--vm-checkpoint-keep): it outlives the cancelled job" has_ckpt "$j"
check "the cancelled job left no guest or state" no_leftovers "$j"
seen=$(last_count c.out)

# --- 2. another user cannot restore it -------------------------------------
cd "$d2" || exit 1
jo=$(as "$U2" sbatch --parsable -w "$NODE" --vm-env=tiny -t 5 \
	--vm-restore="$j" -o "$d2/o.out" counter.sh)
wait_job "$jo" 120 >/dev/null
check_contains "another user's job fails at its start with the reason" \
	"$(cat "$d2/o.out" 2>/dev/null)" \
	"job $jo: --vm-restore=$j: job $j is another user's"
check_eq "... with vmenv's exit code" "125:0" "$(job_field "$jo" ExitCode)"
check "... and the checkpoint is untouched" has_ckpt "$j"
check "... and nothing of a guest is left" no_leftovers "$jo"
cd "$d" || exit 1

# --- 3. a new job goes on from it -------------------------------------------
j2=$(as "$U1" sbatch --parsable -w "$NODE" --vm-env=tiny -t 10 \
	--vm-restore="$j" -o "$d/r.out" counter.sh)
check "the restoring job's guest is ready" wait_guest_ready "$j2" 120
check "the restored guest runs under the saved name vmenv-$NODE-$j" \
	sh -c "$VIRSH list --name | grep -qx 'vmenv-$NODE-$j'"
st=$(wait_job "$j2" 180)
check_eq "the restored script ends with its own exit code (FAILED 3:0)" \
	"FAILED 3:0" "$st $(job_field "$j2" ExitCode)"
first=$(grep '^count ' r.out | head -1 | awk '{print $2}')
check "the counter goes on where the checkpoint was (first count ${first:-?}, old job got to ${seen:-?})" \
	test -n "$first" -a "${first:-0}" -gt 0 -a "${first:-0}" -le "$((seen + 1))"
check_eq "the new job's output holds each count once from there on, nothing of the old job's" \
	"$(seq "${first:-0}" 59)" "$(grep '^count ' r.out | awk '{print $2}')"
check "kept: the checkpoint stays after the restore" has_ckpt "$j"
check "the restoring job's guest (under the saved name) is gone" \
	domain_gone "vmenv-$NODE-$j"
check "... nor its own" no_leftovers "$j2"

# --- 4. bad ids -----------------------------------------------------------
out=$(as "$U1" sbatch --parsable -w "$NODE" --vm-env=tiny -t 5 \
	--vm-restore=abc counter.sh 2>&1)
check_contains "a malformed id is refused at submit" "$out" \
	"--vm-restore: 'abc' is not a job id"
jn=$(as "$U1" sbatch --parsable -w "$NODE" --vm-env=tiny -t 5 \
	--vm-restore=67000000 -o "$d/n.out" counter.sh)
wait_job "$jn" 120 >/dev/null
check_contains "a job id without a checkpoint fails at the start, naming the store" \
	"$(cat n.out 2>/dev/null)" \
	"job $jn: --vm-restore=67000000: no checkpoint of job 67000000 in $STORE"
check "... and leaves nothing" no_leftovers "$jn"

# --- 5. not kept: gone when the job ends ------------------------------------
j3=$(as "$U1" sbatch --parsable -w "$NODE" --vm-env=tiny -t 10 --vm-checkpoint \
	-o "$d/k.out" counter.sh)
check "the unkept job's guest is ready" wait_guest_ready "$j3" 120
check "it counts" wait_count k.out 3
vmenvctl checkpoint "$j3" >/dev/null 2>&1
check "its on-demand checkpoint stays while it runs" has_ckpt "$j3"
scancel "$j3"
wait_job "$j3" 60 >/dev/null
check "not kept: removed at the job's end" ckpt_gone "$j3"
j4=$(as "$U1" sbatch --parsable -w "$NODE" --vm-env=tiny -t 5 \
	--vm-restore="$j3" -o "$d/g.out" counter.sh)
wait_job "$j4" 120 >/dev/null
check_contains "restoring it fails: no checkpoint" "$(cat g.out 2>/dev/null)" \
	"job $j4: --vm-restore=$j3: no checkpoint of job $j3 in $STORE"

rm -rf "${STORE:?}/$j"
check "vmmd is up at the end" vmmd_up
cd / && rm -rf "$d" "$d2"
