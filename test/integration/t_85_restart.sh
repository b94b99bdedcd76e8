# timeout: 900
# Steps outlive vmmd restarts (issue 16 item 1, docs/restart.md): a batch
# job writes a numbered line every 100 ms to stdout and to stderr and
# echoes what it reads from stdin, while node 1's vmmd is killed with -9
# three times and stopped with SIGTERM twice (as systemd would for an
# upgrade), each time started again as its service would. The same step
# must go on: every line once, in order, every stdin line echoed once, a
# signal sent after the restarts reaches the command, and the job ends
# with the command's own exit code. A checkpoint scheduled before a restart
# still happens at its time. Then a vmmd restart before a step's
# command started (the task sends it again), and a forged re-attach (another
# user, a wrong token) is refused.
. "$(dirname "$0")/lib.sh"
CLUSTER=$(dirname "$0")/../../contrib/cluster/vmenv-cluster
d=$(workdir "$U1" restart)
cd "$d" || exit 1

# Stops node 1's vmmd (signal) and starts it again as its service would.
restart_vmmd() { # KILL|TERM
	local pid
	pid=$(cat /run/vmenv-cluster/vmmd.pid)
	kill -"$1" "$pid"
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	"$CLUSTER" up >/dev/null 2>&1
}
wait_line() { # file pattern
	for _ in $(seq 600); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	echo "#   '$2' never in $1" >&2
	return 1
}

cat >w.sh <<'JOB'
#!/bin/sh
trap 'echo "got USR1 at $i"; echo "written after the restarts at $i" >after.txt; exit 9' USR1
i=0
while [ $i -lt 400 ]; do
	echo "out $i"
	echo "err $i" >&2
	if read -r l; then echo "in $l"; fi
	i=$((i + 1))
	sleep 0.1
done
exit 3
JOB
seq 1 300 | sed 's/^/line /' >in.txt
chown "$U1": w.sh in.txt
j=$(as "$U1" sbatch --parsable --vm-env=tiny -i "$d/in.txt" -o "$d/o.out" -e "$d/e.out" w.sh)
n=0
for sig in KILL KILL TERM KILL TERM; do
	n=$((n + 40))
	check "job $j reaches 'out $n' (before vmmd's $sig)" wait_line o.out "^out $n\$"
	restart_vmmd "$sig"
	check "... vmmd is back after its $sig" vmmd_up
done
check "job $j goes on after five restarts ('out 250')" wait_line o.out "^out 250\$"
as "$U1" scancel --batch -s USR1 "$j"
st=$(wait_job "$j" 120)
check_eq "the signal sent after the restarts ended it with its code" "FAILED 9:0" "$st $(job_field "$j" ExitCode)"
# The trap runs between two rounds: $last rounds were done.
last=$(sed -n 's/^got USR1 at \([0-9]*\)$/\1/p' o.out)
check "... the command says it got USR1" test -n "$last"
last=${last:-1}
check_eq "stdout: every line once, in order" "$(seq 0 $((last - 1)) | sed 's/^/out /')" "$(grep '^out ' o.out)"
# (The guest's shell may also say that USR1 killed its sleep.)
check_eq "stderr: every line once, in order" "$(seq 0 $((last - 1)) | sed 's/^/err /')" "$(grep -v '^User defined signal' e.out)"
check_eq "stdin: every line read once, in order" "$(seq 1 "$last" | sed 's/^/in line /')" "$(grep '^in ' o.out)"
check "nothing of vmmd's restarts in the job's output" sh -c "! grep -q vmenv '$d/o.out' '$d/e.out'"
check_eq "the job's files still work: its file written after the restarts" \
	"written after the restarts at $last" "$(cat after.txt 2>/dev/null)"
check_eq "... belongs to the job's user on the host" "$U1" "$(stat -c %U after.txt 2>/dev/null)"
check "the vmmd log shows the step re-attached" \
	grep -q "job $j: session [0-9]* re-attached after the vmmd restart" /var/log/vmenv-cluster/vmmd.log
check "job $j left nothing on any node" node_clean "$j"

# --- a restart before the step's command started ------------------------------
j=$(as "$U1" sbatch --parsable --vm-env=tiny -o "$d/b.out" --wrap "echo ran once")
for _ in $(seq 600); do vmenvctl list 2>/dev/null | awk -v j="$j" '$1 == j' | grep -q booting && break; sleep 0.1; done
restart_vmmd KILL
st=$(wait_job "$j" 180)
check_eq "a restart while the guest boots: job $j completes" COMPLETED "$st"
check_eq "... its command ran once" "ran once" "$(cat b.out)"
check "job $j left nothing on any node" node_clean "$j"

# --- a checkpoint after a restart ------------------------------------------------
# The job's save is scheduled by its time limit; vmmd restarts before it:
# the adopted job is still saved at its time, requeued and restored, and
# its output file has every count once (the re-attached task gave the new
# vmmd its output file for the checkpoint's copy).
counter_script counter.sh 40
chown "$U1": counter.sh
j=$(as "$U1" sbatch --parsable --vm-env=tiny -t 2 --vm-checkpoint --vm-requeue \
	--vm-checkpoint-lead=100 -o "$d/c.out" counter.sh)
check "the counter job counts" wait_line c.out "^count 3\$"
restart_vmmd KILL
check "... after the restart it is still saved and requeued at its time" sh -c "for i in \$(seq 240); do
	[ \"\$(scontrol show job $j | sed -n 's/.*Restarts=\\([0-9]*\\).*/\\1/p')\" -ge 1 ] 2>/dev/null && exit 0; sleep 1; done; exit 1"
st=$(wait_job "$j" 300)
check_eq "... restored, it ends with its own code" "FAILED 3:0" "$st $(job_field "$j" ExitCode)"
check_eq "... every count once, in order" "$(seq 0 39)" "$(grep '^count ' c.out | awk '{print $2}')"
check "job $j left nothing on any node" node_clean "$j"

# --- forged re-attach ----------------------------------------------------------
# A session waits for its task after a restart; another user (and the
# owner with a wrong token) asks for it. reattach.py sends the request.
cat >hold.sh <<'JOB'
#!/bin/sh
i=0
while [ $i -lt 300 ]; do echo "tick $i"; i=$((i + 1)); sleep 0.2; done
JOB
chown "$U1": hold.sh
j=$(as "$U1" sbatch --parsable --vm-env=tiny -o "$d/h.out" hold.sh)
check "job $j ticks" wait_line h.out "^tick 3\$"
forge() { # user token
	as "$1" python3 - "$j" "$2" "$SOCK" <<'PY' 2>&1
import json, os, socket, struct, sys
job, token = int(sys.argv[1]), sys.argv[2]
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[3])
msg = json.dumps({"op": "reattach", "job": job, "session": 1, "token": token,
                  "out": 0, "err": 0, "stdin": False, "merge_stderr": True}).encode()
r, w = os.pipe()
fds = [os.open("/dev/null", os.O_RDONLY), w, w]
s.sendmsg([struct.pack(">I", len(msg)) + msg],
          [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("3i", *fds))])
n = struct.unpack(">I", s.recv(4))[0]
print(s.recv(n).decode())
PY
}
# Its task is stopped across a restart, so the session waits for it;
# then the attacks, then the task goes on.
task=$(pgrep -u "$U1" -x vmenv-exec | head -1)
check "the job's task (vmenv-exec) is found" test -n "$task"
kill -STOP "$task"
restart_vmmd KILL
out=$(forge "$U2" "$(printf '%064d' 0)")
check_contains "another user's re-attach is refused" "$out" "permission denied"
out=$(forge "$U1" "$(printf '%064d' 0)")
check_contains "the owner's re-attach without the token is refused" "$out" "permission denied"
kill -CONT "$task"
n=$(grep -c '^tick ' h.out)
check "... and the job's own task re-attaches: it ticks on" wait_line h.out "^tick $((n + 5))\$"
as "$U1" scancel "$j"
wait_job "$j" 120 >/dev/null
check "job $j left nothing on any node" node_clean "$j"
check "vmmd serves" vmmd_up
