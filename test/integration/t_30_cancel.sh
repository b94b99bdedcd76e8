# scancel and walltime expiry end a VM job quickly and leave nothing.
. "$(dirname "$0")/lib.sh"
d=$(workdir "$U1" cancel)
cd "$d"
# The command says when the SIGTERM reaches it (the trap runs at once:
# the shell waits for a background sleep). Were the signal lost, the job
# would sit in its sleep until SIGKILL and print nothing more.
cat >long.sh <<'JOB'
#!/bin/sh
trap 'echo got-TERM; exit 143' TERM
echo started
sleep 600 &
wait $!
echo not-reached
JOB
chown "$U1": long.sh

j=$(as "$U1" sbatch --parsable --vm-env=tiny -o "$d/c.out" long.sh)
jt=$(as "$U1" sbatch --parsable --vm-env=tiny -t 1 -o "$d/t.out" long.sh)
for _ in $(seq 240); do grep -q started c.out 2>/dev/null && break; sleep 0.5; done
check "the long job started in its guest" grep -q started c.out
t0=$(date +%s.%N)
scancel "$j"
st=$(wait_job "$j" 30)
t1=$(date +%s.%N)
check_eq "scancel ends the job CANCELLED" CANCELLED "$st"
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
check "... within 10 s (took ${secs}s)" awk -v s="$secs" 'BEGIN { exit !(s < 10) }'
# The task shim forwards SIGTERM to the guest: the job must not need
# Slurm's SIGKILL after KillWait (5 s in the test cluster).
check "... before KillWait: the guest got the SIGTERM (took ${secs}s)" \
	awk -v s="$secs" 'BEGIN { exit !(s < 4.5) }'
check "cancelled job left no guest or state" no_leftovers "$j"
# Slurm calls the job CANCELLED at once; the step's shim writes what the
# guest's trap printed as the step ends, moments later.
for _ in $(seq 20); do grep -qx got-TERM c.out && break; sleep 0.5; done
check "the command in the guest got the SIGTERM (its trap ran)" grep -qx got-TERM c.out
check "... and did not go on" sh -c "! grep -q not-reached c.out"

st=$(wait_job "$jt" 200)
check_eq "walltime expiry ends the job TIMEOUT" TIMEOUT "$st"
check "timed-out job left no guest or state" no_leftovers "$jt"
cd / && rm -rf "$d"
