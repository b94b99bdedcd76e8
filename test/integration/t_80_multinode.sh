# Multi-node VM jobs on the 3-node cluster (partition "multi"): a guest on
# every node, the batch script in the first node's, srun steps in the
# guest of their own node, peers and a private network inside the guests,
# a failing node failing the whole job, nothing left on any node.
. "$(dirname "$0")/lib.sh"
NODES=$(sinfo -h -p multi -N -o %N | sort -u | tr '\n' ' ')
set -- $NODES
if [ $# -lt 3 ]; then
	skip "multi-node: partition multi has $# nodes, needs 3"
	exit 0
fi
N1=$1 N2=$2 N3=$3

run_dir_of() { echo "/run/vmenv/$1"; }

# No domain or run directory of the job on any node.
none_anywhere() { # jobid
	local n i left
	for ((i = 0; i < 60; i++)); do
		left=""
		for n in $NODES; do
			$VIRSH list --name | grep -qx "vmenv-$n-$1" && left+=" domain:$n"
			[ -e "$(run_dir_of "$n")/jobs/$1" ] && left+=" dir:$n"
		done
		[ -z "$left" ] && return 0
		sleep 0.25
	done
	echo "# leftovers of job $1:$left" >&2
	return 1
}

domains_of() { # jobid
	$VIRSH list --name | grep -E -- "-$1\$" | sort | tr '\n' ' '
}

d=$(workdir "$U1" multi)
cd "$d"

# --- batch job on 3 nodes ------------------------------------------------
cat >batch.sh <<'JOB'
#!/bin/sh
echo "batch in $(hostname) $(grep -c QEMU /proc/cpuinfo)"
echo "nodefile: $(cat "$VMENV_NODEFILE" 2>/dev/null | tr '\n' ' ')"
echo "node $VMENV_NODEID of $VMENV_NNODES"
for p in $(cat "$VMENV_NODEFILE"); do
	vmenv-rsh "$p" 'echo "rsh to $(hostname) as $(id -un)"' 2>&1
done
sleep 4
echo done > batch.marker
exit 3
JOB
chown "$U1": batch.sh
t0=$(date +%s)
j=$(as "$U1" sbatch --parsable -p multi -N3 --vm-env=tiny -o "$d/b.out" batch.sh)
seen=""
for _ in $(seq 240); do
	[ -e batch.marker ] && break
	[ -z "$seen" ] && grep -q "^batch in" b.out 2>/dev/null && seen=$(domains_of "$j")
	sleep 0.5
done
st=$(wait_job "$j" 120)
t1=$(date +%s)
out=$(cat b.out)
check_eq "a 3-node VM batch job ends with the script's exit code" "FAILED 3:0" "$st $(job_field "$j" ExitCode)"
check_contains "the batch script ran in the first node's guest" "$out" "batch in $N1 1"
check_eq "while it ran, each node had its guest" \
	"$(printf '%s\n' "vmenv-$N1-$j" "vmenv-$N2-$j" "vmenv-$N3-$j" | sort | tr '\n' ' ')" "$seen"
check_contains "the guest finds its peers in \$VMENV_NODEFILE" "$out" "nodefile: $N1 $N2 $N3 "
check_contains "... and its own index" "$out" "node 0 of 3"
for n in $NODES; do
	check_contains "vmenv-rsh reaches $n's guest, as the job's user" "$out" "rsh to $n as $U1"
done
check "nothing of the job is left on any node (took $((t1 - t0)) s)" none_anywhere "$j"

# --- MPI across the guests of a job (debian12: Open MPI, mpi4py) ----------
cat >mpi.sh <<'JOB'
#!/bin/sh
mpirun --oversubscribe --hostfile "$VMENV_NODEFILE" --map-by node -np 3 \
	python3 -c '
from mpi4py import MPI
import socket
c = MPI.COMM_WORLD
s = c.allreduce(c.rank + 1)
print("rank %d of %d on %s sum %d" % (c.rank, c.size, socket.gethostname(), s))
' | sort
JOB
chown "$U1": mpi.sh
j=$(as "$U1" sbatch --parsable -p multi -N3 --vm-env=debian12 -o "$d/mpi.out" mpi.sh)
st=$(wait_job "$j" 300)
out=$(cat mpi.out)
check_eq "a 3-node MPI job in debian12 guests completes" COMPLETED "$st"
check_eq "... one line per rank, each from its own node's guest, allreduce right" \
	"rank 0 of 3 on $N1 sum 6
rank 1 of 3 on $N2 sum 6
rank 2 of 3 on $N3 sum 6" "$(grep '^rank' mpi.out)"
[ "$st" = COMPLETED ] || printf '%s\n' "$out" | tail -20 | sed 's/^/#   /'
check "... and left nothing on any node" none_anywhere "$j"

# --- srun -N3 from a batch script on the host ----------------------------
cat >host.sh <<'JOB'
#!/bin/sh
echo "host batch in $(hostname)"
srun -N3 --ntasks-per-node=1 --vm-env=tiny sh -c 'echo "task $SLURM_PROCID in $(hostname) $(grep -c QEMU /proc/cpuinfo)"' | sort
JOB
chown "$U1": host.sh
j=$(as "$U1" sbatch --parsable -p multi -N3 -o "$d/h.out" host.sh)
st=$(wait_job "$j" 120)
out=$(cat h.out)
check_eq "a host batch script's srun -N3 --vm-env completes" COMPLETED "$st"
check_contains "... the script itself ran on the host" "$out" "host batch in $(hostname -s)"
check_contains "... task 0 ran in $N1's guest" "$out" "task 0 in $N1 1"
check_contains "... task 1 ran in $N2's guest" "$out" "task 1 in $N2 1"
check_contains "... task 2 ran in $N3's guest" "$out" "task 2 in $N3 1"
check "... and left nothing on any node" none_anywhere "$j"

# --- isolation: two jobs' guests do not see each other -------------------
# Job A (3 nodes) listens on its third guest (10.77.0.3) until the test is
# done probing, and reaches it itself before and after job B's probe. Job B
# (2 nodes: its guests are .1 and .2) listens on its own .2 the same way:
# it must reach its own .2 (the positive control over the same path: the
# same nc, port and private network) and must not reach A's .3.
cat >listen.sh <<'JOB'
#!/bin/sh
vmenv-rsh "$(sed -n 3p "$VMENV_NODEFILE")" \
	'while :; do nc -l -p 7123 >/dev/null; done' >/dev/null 2>&1 &
rpid=$!
sleep 3
if echo x | nc -w 3 10.77.0.3 7123; then echo self-reached; else echo self-not-reached; fi
echo ready > listen.marker
i=0
while [ ! -e probed.flag ] && [ $i -lt 240 ]; do sleep 1; i=$((i + 1)); done
if echo x | nc -w 3 10.77.0.3 7123; then echo self-reached-after; else echo self-not-reached-after; fi
kill $rpid
JOB
cat >probe.sh <<'JOB'
#!/bin/sh
vmenv-rsh "$(sed -n 2p "$VMENV_NODEFILE")" \
	'while :; do nc -l -p 7123 >/dev/null; done' >/dev/null 2>&1 &
rpid=$!
sleep 3
if echo x | nc -w 3 10.77.0.2 7123; then echo own-reached; else echo own-not-reached; fi
if echo x | nc -w 3 10.77.0.3 7123; then echo other-reached; else echo other-not-reached; fi
kill $rpid
JOB
chown "$U1": listen.sh probe.sh
ja=$(as "$U1" sbatch --parsable -p multi -N3 --vm-env=tiny -o "$d/a.out" listen.sh)
for _ in $(seq 240); do [ -e listen.marker ] && break; sleep 0.5; done
check "a job's guests reach each other on the private network" grep -qx self-reached a.out
jb=$(as "$U1" sbatch --parsable -p multi -N2 -w "$N1,$N2" --vm-env=tiny -o "$d/p.out" probe.sh)
wait_job "$jb" 120 >/dev/null
check "job B's guests reach each other the same way (nc to its own .2)" grep -qx own-reached p.out
check "... but not job A's listening guest (A's .3)" grep -qx other-not-reached p.out
touch probed.flag
check_eq "job A completes" COMPLETED "$(wait_job "$ja" 60)"
check "... its listener was up all along (A reaches it after B's probe)" grep -qx self-reached-after a.out
sed 's/^/#   A: /' a.out
sed 's/^/#   B: /' p.out
scancel "$ja" "$jb" 2>/dev/null
check "... and both jobs left nothing (A)" none_anywhere "$ja"
check "... (B)" none_anywhere "$jb"

# --- a node whose guest cannot start fails the whole job ------------------
pid3=/run/vmenv-cluster/vmmd-$N3.pid
kill "$(cat "$pid3")"
for _ in $(seq 50); do vmenvctl --node "$N3" status >/dev/null 2>&1 || break; sleep 0.1; done
cat >fail.sh <<'JOB'
#!/bin/sh
echo not-reached
JOB
chown "$U1": fail.sh
t0=$(date +%s)
j=$(as "$U1" sbatch --parsable -p multi -N3 --vm-env=tiny -o "$d/f.out" fail.sh)
st=$(wait_job "$j" 120)
t1=$(date +%s)
out=$(cat f.out)
check_eq "a job with a node whose vmmd is down fails" FAILED "$st"
check "... within 60 s (took $((t1 - t0)) s)" test $((t1 - t0)) -lt 60
check_contains "... naming that node and its socket" "$out" \
	"cannot reach vmmd on node $N3 at /run/vmenv/$N3/vmmd.sock"
check "... and the script never ran" sh -c "! grep -q not-reached '$d/f.out'"
check "... the other nodes' guests are gone" none_anywhere "$j"
"$(dirname "$0")/../../contrib/cluster/vmenv-cluster" up >/dev/null 2>&1
check "vmmd on $N3 is back" sh -c "vmenvctl --node $N3 status >/dev/null"

# --- scancel of a running multi-node job ----------------------------------
cat >long.sh <<'JOB'
#!/bin/sh
echo started
sleep 600
JOB
chown "$U1": long.sh
j=$(as "$U1" sbatch --parsable -p multi -N3 --vm-env=tiny -o "$d/l.out" long.sh)
for _ in $(seq 240); do grep -q started l.out 2>/dev/null && break; sleep 0.5; done
check "a long 3-node job started" grep -q started l.out
scancel "$j"
st=$(wait_job "$j" 30)
check_eq "scancel ends it CANCELLED" CANCELLED "$st"
check "... leaving nothing on any node" none_anywhere "$j"

# --- walltime expiry of a multi-node job -----------------------------------
j=$(as "$U1" sbatch --parsable -p multi -N3 -t 1 --vm-env=tiny -o "$d/t.out" long.sh)
st=$(wait_job "$j" 200)
check_eq "walltime expiry ends a 3-node job TIMEOUT" TIMEOUT "$st"
check "... leaving nothing on any node" none_anywhere "$j"

cd / && rm -rf "$d"
