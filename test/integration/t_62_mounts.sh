# timeout: 1200 (the checkpoint sections: a requeue waits ~2 min; served mounts add an on-demand checkpoint and a job)
# --vm-mount through the real cluster (issue 20): a policy-enforced
# read-only tree (/apps, as a site mounts its software stack) is in every
# guest and cannot be written, not even by the guest's root after a
# remount; a user's mount is writable and what the guest writes is the
# user's on the host; a mount whose source is missing, or a link that
# leads out of what the policy allows, fails the job at start naming the
# mount and leaving nothing; a mount goes on across a checkpoint and a
# restore. A checkpointing job's mounts are served like its working
# directory (checkpoint_files = served, the default): each by a vmenv-9p
# of its own, as the job's user (the guest shows the port's 9p mount), a
# file held open on one survives an on-demand checkpoint, and a ":ro" one
# refuses writes even after the guest's root remounts it read-write
# (test-rootmount, from mkimages: a root job cannot have served files).
#
# The policies go into the tests' policy directory (test/all sets
# policy_dir), and only node 1's vmmd is told to reload them.
. "$(dirname "$0")/lib.sh"
PIDFILE=/run/vmenv-cluster/vmmd.pid
STORE=${CKPT_STORE:-/var/lib/vmenv/checkpoints}
VMMD=$(command -v vmmd)
POLDIR=$("$VMMD" --check-config --config /etc/vmenv/vmmd.conf 2>/dev/null | sed -n 's/^policy_dir = //p')
case "$POLDIR" in
"" | /etc/*)
	fail "the mount tests need the tests' policy directory: policy_dir in vmmd.conf is '$POLDIR' (test/all sets one)"
	exit 1
	;;
esac

T=/srv/vmenv-t62
rm -rf "$T"
mkdir -p "$T/apps/bin" "$T/u1" "$T/rootjob"
echo "apps-v1" >"$T/apps/VERSION"
chmod -R a+rX "$T"
chown "$U1:" "$T/u1"
ln -s /etc "$T/u1/escape"
chown -h "$U1:" "$T/u1/escape"
d=$(workdir "$U1" mounts)
cd "$d" || exit 1

cat >"$POLDIR/62-mounts.json" <<JSON
{
  "name": "t62-mounts",
  "description": "integration test t_62_mounts",
  "match": {"partition": "debug"},
  "mounts": {"allow": ["$T/u1", "$T/rootjob", "$T/apps:ro"],
             "enforce": ["$T/apps:/apps:ro"]}
}
JSON
chmod 0644 "$POLDIR/62-mounts.json"
check "vmmd loads the mount policy" reload "policies:    1 from $POLDIR"

# --- the enforced read-only tree -------------------------------------------
out=$(as "$U1" srun -t 5 --vm-env=tiny sh -c 'cat /apps/VERSION; cat /proc/mounts;
	echo x >/apps/new 2>&1 && echo WROTE || echo write-refused' 2>&1)
check_contains "the enforced /apps is in the guest" "$out" "apps-v1"
check_contains "... as a 9p mount of its own tag" "$out" "vmenv.m0 /apps 9p"
check_contains "... and the user cannot write it" "$out" "write-refused"
check "... nothing appeared on the host" test ! -e "$T/apps/new"

# The guest's root remounts it read-write: QEMU still refuses the write.
rd=$(mktemp -d /tmp/t62-root.XXXXXX)
out=$(cd "$rd" && srun -t 5 --vm-env=tiny sh -c \
	'mount -o remount,rw /apps && echo remounted; echo x >/apps/root-new && echo WROTE || echo write-refused' 2>&1)
check_contains "the guest's root can remount /apps read-write" "$out" "remounted"
check_contains "... but its write is refused by the host" "$out" "write-refused"
check "... nothing appeared on the host" test ! -e "$T/apps/root-new"
rm -rf "$rd"

# --- a user's writable mount -----------------------------------------------
out=$(as "$U1" srun -t 5 --vm-env=tiny --vm-mount="$T/u1:/data" sh -c \
	'echo from-guest >/data/out.txt && id -u && ls /data' 2>&1)
check_contains "the user's mount is in the guest and writable" "$out" "out.txt"
check_eq "... what the guest wrote is on the host" "from-guest" "$(cat "$T/u1/out.txt" 2>/dev/null)"
check_eq "... owned by the user" "$U1" "$(stat -c %U "$T/u1/out.txt" 2>/dev/null)"

# --- refusals ------------------------------------------------------------------
j=$(as "$U1" sbatch --parsable -t 5 --vm-env=tiny --vm-mount="$T/u1/missing:/data" \
	-o "$d/missing.out" --wrap "echo ran")
check_eq "a missing source fails the job" FAILED "$(wait_job "$j" 120)"
check_contains "... naming the job, the mount and why" "$(cat missing.out)" \
	"job $j: mount '$T/u1/missing:/data': no such directory"
check "... the command never ran" sh -c "! grep -qx ran '$d/missing.out'"
check "job $j left nothing" no_leftovers "$j"

j=$(as "$U1" sbatch --parsable -t 5 --vm-env=tiny --vm-mount="$T/u1/escape:/data" \
	-o "$d/escape.out" --wrap "ls /data")
check_eq "a link out of the allowed prefix fails the job" FAILED "$(wait_job "$j" 120)"
check_contains "... naming where it leads" "$(cat escape.out)" \
	"the source leads to /etc through a symbolic link"
check "... /etc was never listed" sh -c "! grep -qx passwd '$d/escape.out'"
check "job $j left nothing" no_leftovers "$j"

chmod 0700 "$T/rootjob"
j=$(as "$U1" sbatch --parsable -t 5 --vm-env=tiny --vm-mount="$T/rootjob:/data" \
	-o "$d/unreadable.out" --wrap "ls /data")
check_eq "a source the user may not read fails the job" FAILED "$(wait_job "$j" 120)"
check_contains "... and says so" "$(cat unreadable.out)" "the job's user may not read it"
check "job $j left nothing" no_leftovers "$j"
check "vmmd still up" vmmd_up

# --- across a checkpoint and a restore -------------------------------------------
# The job writes a line to the mount every second; it is saved, requeued,
# restored, and goes on writing to the same host file.
cat >"$d/ckpt.sh" <<'SH'
#!/bin/sh
cd / # a virtio-9p working directory held as cwd would refuse the save
i=0
while [ $i -lt 40 ]; do echo "line $i" >>/data/ticks; i=$((i + 1)); sleep 1; done
cat /apps/VERSION
SH
chmod 755 "$d/ckpt.sh"
rm -f "$T/u1/ticks"
j=$(as "$U1" sbatch --parsable -w "$NODE" -t 10 --vm-env=tiny --vm-checkpoint --vm-checkpoint-files=9p \
	--vm-mount="$T/u1:/data" -o "$d/ckpt.out" "$d/ckpt.sh")
if wait_guest_ready "$j" 120; then
	sleep 4
	# The checkpoint needs the mounts idle: the loop holds no file open
	# between its writes, so a retry finds a moment.
	ok=
	for _ in 1 2 3 4 5; do
		if vmenvctl checkpoint "$j" >"$d/ckpt.req" 2>&1; then ok=1; break; fi
		sleep 1
	done
	check "the job with a mount is checkpointed" test -n "$ok"
	[ -n "$ok" ] || sed 's/^/#   /' "$d/ckpt.req"
	scontrol requeue "$j" 2>/dev/null
	check_eq "after requeue and restore it runs to its end" COMPLETED "$(wait_job "$j" 300)"
	check_contains "... still seeing /apps" "$(cat "$d/ckpt.out")" "apps-v1"
	check_eq "... and every line reached the host file once" 40 \
		"$(sort -u "$T/u1/ticks" 2>/dev/null | grep -c '^line ')"
	check "job $j left nothing" no_leftovers "$j"
else
	fail "job $j's guest with a mount did not become ready"
fi

# --- served mounts: a checkpointing job's, like its working directory --------
# The job holds a file open for reading and one for writing on its mount
# across an on-demand checkpoint (save, and the job goes on), which a busy
# virtio-9p mount would refuse; then it goes on reading and writing them.
printf 'line1\nline2\n' >"$T/u1/in.txt"
rm -f "$T/u1/go" "$T/u1/out.txt"
chown "$U1:" "$T/u1/in.txt"
cat >"$d/held.sh" <<'SH'
#!/bin/sh
grep -E ' /(data|apps) ' /proc/mounts
exec 3</data/in.txt 4>>/data/out.txt
read -r a <&3
echo "read before: $a"
echo w1 >&4
echo opened
while [ ! -e /data/go ]; do sleep 0.5; done
read -r b <&3
echo "read after: $b"
echo w2 >&4
exec 3<&- 4>&-
if echo x >/apps/new 2>/dev/null; then echo apps-WROTE; else echo apps-write-refused; fi
SH
chmod 755 "$d/held.sh"
# The servers of job $1's mount of $2 (vmenv-9p --root $2 on a mount's
# socket, files.m<i>.sock in the job's q/): "PID ARGS" lines.
lacks() { ! grep -Eq -- "$2" <<<"$1"; } # text pattern
no_server() { ! pgrep -f -- "vmenv-9p --root $1 " >/dev/null; }
mount_servers() { pgrep -a -f -- "vmenv-9p --root $2 --connect [^ ]*/jobs/$1/q/files\.m[0-9]+\.sock( |$)"; }
j=$(as "$U1" sbatch --parsable -w "$NODE" -t 10 --vm-env=tiny --vm-checkpoint \
	--vm-mount="$T/u1:/data" -o "$d/held.out" "$d/held.sh")
if wait_guest_ready "$j" 120; then
	for _ in $(seq 120); do grep -q '^opened' "$d/held.out" 2>/dev/null && break; sleep 0.5; done
	out=$(cat "$d/held.out" 2>&1)
	check "a checkpointing job's mount is served: the guest mounts its port's 9p" \
		grep -Eq '^org\.vmenv\.files\.m[0-9]+ /data 9p ' <<<"$out"
	check "... the policy's /apps too" grep -Eq '^org\.vmenv\.files\.m[0-9]+ /apps 9p ' <<<"$out"
	check "... and no virtio-9p tag is mounted there" lacks "$out" '^vmenv\.m[0-9]+ '
	srv=$(mount_servers "$j" "$T/u1")
	check_eq "... by one vmenv-9p rooted at the mount's source" 1 "$(grep -c . <<<"$srv")"
	check_eq "... running as the job's user" "$U1" \
		"$(ps -o user= -p "$(awk 'NR == 1 {print $1}' <<<"$srv")" 2>/dev/null | tr -d ' ')"
	check "... not read-only" lacks "$srv" '--read-only'
	apps=$(mount_servers "$j" "$T/apps")
	check_contains "the read-only /apps has its own server, which refuses writes itself" \
		"$apps" "--read-only"
	out=$(vmenvctl checkpoint "$j" 2>&1)
	check_contains "the job holding files open on its served mount is checkpointed" \
		"$out" "checkpointed; the job goes on"
	m=$(ls "$STORE/$j"/*/manifest.json 2>/dev/null | tail -1)
	check "... each mount's server state is in the checkpoint under its own name" \
		sh -c "grep -q '\"files\"' '$m' && grep -q '\"files.m0\"' '$m' && grep -q '\"files.m1\"' '$m'"
	# On demand the guest is restored at once from what was saved: new
	# servers, from the states in the checkpoint.
	for _ in $(seq 20); do
		after=$(mount_servers "$j" "$T/u1")
		case "$after" in *--state-in*) break ;; esac
		sleep 0.5
	done
	check "... then served by a new vmenv-9p started from its saved state" \
		sh -c 'test -n "$2" && test "${1%% *}" != "${2%% *}" && case "$2" in *--state-in*) ;; *) exit 1 ;; esac' \
		_ "$srv" "$after"
	check_contains "... the read-only one too, read-only still" "$(mount_servers "$j" "$T/apps")" \
		"--read-only --state-in"
	as "$U1" touch "$T/u1/go"
	check_eq "... and the job runs to its end" COMPLETED "$(wait_job "$j" 120)"
	out=$(cat "$d/held.out" 2>&1)
	check_contains "the file held open on the mount is readable after the checkpoint" \
		"$out" "read after: line2"
	check_eq "... the one held open for writing got a line before and after it" \
		"$(printf 'w1\nw2')" "$(cat "$T/u1/out.txt" 2>&1)"
	check_eq "... owned by the user" "$U1" "$(stat -c %U "$T/u1/out.txt" 2>/dev/null)"
	check_contains "the served /apps refused the job's write" "$out" "apps-write-refused"
	check "... nothing appeared in /apps on the host" test ! -e "$T/apps/new"
	check "no vmenv-9p of the job's mounts is left" no_server "$T/u1"
	check "job $j left nothing" no_leftovers "$j"
else
	fail "job $j's checkpointing guest with a served mount did not become ready"
	scancel "$j" 2>/dev/null
fi
rm -f "$T/u1/go" "$T/u1/in.txt" "$T/u1/out.txt"

# The guest's root remounts a served ":ro" mount read-write: its server
# (--read-only) still refuses the write. Root's jobs cannot have served
# files (vmenv-9p never runs as root), so the guest's root is
# test-rootmount's helper, which remounts on the job's request.
j=$(as "$U1" sbatch --parsable -w "$NODE" -t 10 --vm-env=test-rootmount --vm-checkpoint \
	-o "$d/rootmount.out" --wrap 'grep " /apps " /proc/mounts
	echo /apps >/tmp/vmenv-remount
	i=0
	while [ ! -s /tmp/vmenv-remount.out ] && [ $i -lt 120 ]; do sleep 0.5; i=$((i + 1)); done
	cat /tmp/vmenv-remount.out')
check_eq "a checkpointing job on test-rootmount runs" COMPLETED "$(wait_job "$j" 150)"
out=$(cat "$d/rootmount.out" 2>&1)
check "... with /apps served" grep -Eq '^org\.vmenv\.files\.m[0-9]+ /apps 9p' <<<"$out"
check_contains "the guest's root can remount the served /apps read-write" "$out" "remounted"
check_contains "... but its write is refused by vmenv-9p" "$out" "write-refused"
check "... nothing appeared on the host" test ! -e "$T/apps/root-new"
check "job $j left nothing" no_leftovers "$j"

# --- every guest of a multi-node job ----------------------------------------------
# The same policy for partition "multi": every node's vmmd reloads it (each
# checks the spec again on its node), and each of the three guests has the
# enforced /apps and the user's mount, writing its own file there.
if [ "$(sinfo -h -p multi -N -o %N 2>/dev/null | sort -u | wc -l)" -ge 3 ]; then
	sed 's/"partition": "debug"/"partition": "multi"/; s/"t62-mounts"/"t62-mounts-multi"/' \
		"$POLDIR/62-mounts.json" >"$POLDIR/62-mounts-multi.json"
	chmod 0644 "$POLDIR/62-mounts-multi.json"
	for p in /run/vmenv-cluster/vmmd*.pid; do kill -HUP "$(cat "$p")"; done
	check "node 1's vmmd loads both policies" reload "policies:    2 from $POLDIR"
	sleep 1
	rm -f "$T"/u1/node.*
	out=$(as "$U1" srun -p multi -N3 -t 5 --vm-env=tiny --vm-mount="$T/u1:/data" sh -c \
		'cat /apps/VERSION; hostname >/data/node.$SLURM_NODEID' 2>&1)
	check_eq "a -N3 job: each guest reads the enforced /apps" 3 "$(grep -c '^apps-v1$' <<<"$out")"
	check_eq "... and each wrote its file to the user's mount" "node.0 node.1 node.2" \
		"$(cd "$T/u1" && echo node.*)"
	check_eq "... owned by the user" "$U1 $U1 $U1" "$(stat -c %U "$T"/u1/node.* 2>/dev/null | tr '\n' ' ' | sed 's/ $//')"
	rm -f "$POLDIR/62-mounts-multi.json"
	for p in /run/vmenv-cluster/vmmd-*.pid; do kill -HUP "$(cat "$p")"; done
else
	skip "mounts of a multi-node job: partition multi has fewer than 3 nodes"
fi

rm -f "$POLDIR/62-mounts.json"
check "without the policy vmmd reports none" reload "policies:    0 from $POLDIR"
cd / && rm -rf "$d" "$T"
