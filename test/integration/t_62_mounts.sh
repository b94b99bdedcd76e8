# --vm-mount through the real cluster (issue 20): a policy-enforced
# read-only tree (/apps, as a site mounts its software stack) is in every
# guest and cannot be written, not even by the guest's root after a
# remount; a user's mount is writable and what the guest writes is the
# user's on the host; a mount whose source is missing, or a link that
# leads out of what the policy allows, fails the job at start naming the
# mount and leaving nothing; a mount goes on across a checkpoint and a
# restore.
#
# The policies go into the tests' policy directory (test/all sets
# policy_dir), and only node 1's vmmd is told to reload them.
. "$(dirname "$0")/lib.sh"
PIDFILE=/run/vmenv-cluster/vmmd.pid
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

rm -f "$POLDIR/62-mounts.json"
check "without the policy vmmd reports none" reload "policies:    0 from $POLDIR"
cd / && rm -rf "$d" "$T"
