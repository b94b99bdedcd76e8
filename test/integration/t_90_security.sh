# The root daemon's trust boundary (docs/security.md), attacked for real by
# an ordinary user with a running VM job: every check fails if the attack
# works. Each attack has a positive control, so a refusal for an unrelated
# reason (the job not running, the script broken) cannot pass as a defence.
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
d=$(workdir "$U1" sec)
cd "$d"
cat >hold.sh <<'JOB'
#!/bin/sh
echo started
sleep 300
JOB
chown "$U1": hold.sh
j=$(as "$U1" sbatch --parsable --vm-env=tiny -o "$d/h.out" hold.sh)
for _ in $(seq 240); do grep -q started h.out 2>/dev/null && break; sleep 0.5; done
check "the job holding a guest started" grep -q started h.out
jd=$RUN_DIR/jobs/$j

# --- 1, 4: nothing below the job directory but u/ is the user's ----------
check_eq "the job directory is root's, 755" "root 755" "$(stat -c '%U %a' "$jd")"
check_eq "q/ (QEMU's sockets) is root's, 700" "root 700" "$(stat -c '%U %a' "$jd/q")"
# (libvirt gives the user the files QEMU opens: the sockets in q/, the
# kernel and initrd; the directories that hold them stay root's.)
check_eq "no directory below the job's directory is the user's" "" \
	"$(find "$jd" -mindepth 1 -type d -not -user root -printf '%P ' 2>/dev/null)"
check "the user cannot create anything in the job's directory" \
	sh -c "! runuser -u $U1 -- mkdir '$jd/u' 2>/dev/null"
for sub in boot disk; do
	check_eq "$sub/ is root's" root "$(stat -c '%U' "$jd/$sub")"
done
check "libvirtd made the agent socket in q/ (root can see it)" test -S "$jd/q/agent.sock"
check "the user cannot list q/" sh -c "! runuser -u $U1 -- ls '$jd/q' 2>/dev/null"
check "the user cannot replace the agent socket with a link" \
	sh -c "! runuser -u $U1 -- ln -sfn /etc/shadow '$jd/q/agent.sock' 2>/dev/null"
check "the user cannot connect to their guest's agent channel" \
	sh -c "! runuser -u $U1 -- python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' '$jd/q/agent.sock' 2>/dev/null"
check "the user cannot put a link in boot/ or disk/" \
	sh -c "! runuser -u $U1 -- ln -s /etc/shadow '$jd/disk/x' 2>/dev/null && ! runuser -u $U1 -- ln -s /etc/shadow '$jd/boot/x' 2>/dev/null"
check_eq "/etc/shadow is still root's" root "$(stat -c %U /etc/shadow)"

# --- 3: root never opens a user's fd again with root's rights -------------
out=$(as "$U1" python3 "$here/sendfds.py" "$SOCK" "$j" pipe -- echo "control-$j")
check_contains "control: a client with ordinary pipes runs in the guest" "$out" "output: control-$j"

fifo=/run/vmenv-sec-fifo.$$
rm -f "$fifo"
mkfifo -m 0600 "$fifo"
( exec 3<>"$fifo"; timeout 15 cat <&3 >"$d/fifo.got" ) &
reader=$!
out=$(as "$U1" python3 "$here/sendfds.py" "$SOCK" "$j" opath-out "$fifo" -- echo "FORGED-$j")
check_contains "an O_PATH stdout (root's 0600 FIFO) is refused, naming the job" "$out" "job $j: exec needs"
sleep 2
kill "$reader" 2>/dev/null
wait "$reader" 2>/dev/null
check "nothing reached root's FIFO" sh -c "! grep -q FORGED '$d/fifo.got'"
rm -f "$fifo"

dmesg_before=$(dmesg 2>/dev/null | grep -c "KMSG-FORGED-$j")
out=$(as "$U1" python3 "$here/sendfds.py" "$SOCK" "$j" opath-out /dev/kmsg -- echo "<0>KMSG-FORGED-$j")
check_contains "an O_PATH stdout of /dev/kmsg is refused" "$out" "job $j: exec needs"
check_eq "no line was forged in the kernel log" "$dmesg_before" "$(dmesg 2>/dev/null | grep -c "KMSG-FORGED-$j")"
out=$(as "$U1" python3 "$here/sendfds.py" "$SOCK" "$j" opath-in /dev/kmsg -- head -c 300)
check_contains "an O_PATH stdin of /dev/kmsg is refused" "$out" "job $j: exec needs"
check "the kernel log did not reach the user" sh -c "! printf '%s' \"\$1\" | grep -q 'output: '" _ "$out"
out=$(as "$U1" python3 "$here/sendfds.py" "$SOCK" "$j" rdonly-out /etc/passwd -- echo x)
check_contains "a read-only fd as stdout is refused" "$out" "job $j: exec needs"

# --- 2: the job's removal never follows the user's swaps -------------------
canary=/var/lib/vmenv-sec-canary
rm -rf "$canary"
mkdir -p "$canary"
for i in $(seq 300); do : >"$canary/f$i"; done
# The attacker tries, over and over while vmmd removes the job's directory,
# to put a directory of theirs or a link to the canary anywhere in it (it
# worked in q/, which was theirs, before).
as "$U1" bash -c '
	jd=$1; c=$2
	while [ -d "$jd" ]; do
		for sub in "$jd" "$jd"/*/; do
			mkdir "$sub/d" 2>/dev/null && for i in 1 2 3; do : >"$sub/d/f$i"; done
			ln -sfn "$c" "$sub/l" 2>/dev/null
		done
	done' _ "$jd" "$canary" &
racer=$!
sleep 1
scancel "$j"
st=$(wait_job "$j" 60)
check_eq "the job ended CANCELLED" CANCELLED "$st"
sleep 1
kill "$racer" 2>/dev/null
wait "$racer" 2>/dev/null
check_eq "the canary directory root owns still has its 300 files" 300 "$(find "$canary" -type f | wc -l)"
check "the job left nothing" no_leftovers "$j"
check "vmmd still serves" vmmd_up
rm -rf "$canary"
