# Site policies through the real cluster: refusals by sbatch, srun and
# salloc before anything is queued; a refused request smuggled past the
# submit side fails on the node with the reason and no guest is created;
# an enforced field is visible inside the guest; a bad policy file loosens
# nothing.
#
# The policies go into a directory the tests own, never a site's: test/all
# sets policy_dir in vmmd.conf, and contrib/cluster/vmenv-cluster gives the
# plugin the same directory (policies= in plugstack.conf).
. "$(dirname "$0")/lib.sh"
PIDFILE=/run/vmenv-cluster/vmmd.pid
VMMD_LOG=/var/log/vmenv-cluster/vmmd.log
VMMD=$(command -v vmmd || echo /usr/local/sbin/vmmd)
POLDIR=$("$VMMD" --check-config --config /etc/vmenv/vmmd.conf 2>/dev/null | sed -n 's/^policy_dir = //p')
PLUGDIR=$(sed -n 's/^[^#].* policies=\([^ ]*\).*/\1/p' /etc/slurm/plugstack.conf.d/vmenv.conf)
case "$POLDIR" in
"" | /etc/*)
	skip "policy tests need a test policy directory: policy_dir in vmmd.conf is '$POLDIR' (test/all sets one)"
	exit 0
	;;
esac
if [ "$POLDIR" != "$PLUGDIR" ]; then
	skip "vmmd reads policies from '$POLDIR' but the plugin from '$PLUGDIR'"
	exit 0
fi

d=$(workdir "$U1" policy)
cd "$d" || exit 1
mkdir -p "$POLDIR"
rm -f "$POLDIR"/*.json

# Only vmenv-u1 in partition debug is ruled; everyone else runs as before.
cat >"$POLDIR/50-it.json" <<'JSON'
{
  "name": "it-u1",
  "description": "integration test t_60_policy",
  "match": {"user": "vmenv-u1", "partition": "debug"},
  "user_may_set": ["image", "gpus", "hugepages", "ib_vfs", "mounts"],
  "image": {"allow": ["tiny*"]},
  "hugepages": {"enforce": "none"},
  "mem_headroom_pct": {"enforce": 50},
  "ib_vfs": {"max": 0},
  "mounts": {"allow": ["/home:ro"]}
}
JSON
chmod 0644 "$POLDIR/50-it.json"
check "vmenvctl policy check accepts the test policy" vmenvctl policy check "$POLDIR"
check "vmmd loads it on SIGHUP" reload "policies:    1 from $POLDIR"
out=$(vmenvctl policy explain --policies "$POLDIR" --user "$U1" --partition debug -- --vm-env=tiny)
check_contains "policy explain shows the enforced headroom and its source" "$out" \
	"mem_headroom_pct   50                       enforced by policy 'it-u1' (50-it.json)"

# --- refused before anything is queued --------------------------------------
# Jobs of earlier tests may still be ending: compare ids, not counts.
before=$(squeue -h -u "$U1" -o %i | sort)
why="refused by site policy in partition 'debug'"
out=$(as "$U1" sbatch --vm-env=tiny --vm-hugepages=2M --wrap true 2>&1)
rc=$?
check "sbatch refuses a value contradicting an enforced one (rc $rc)" test "$rc" -ne 0
check_contains "... naming the field, the policy and its file" "$out" \
	"$why: hugepages: '2M' contradicts 'none' enforced by policy 'it-u1' (50-it.json)"
out=$(as "$U1" srun --vm-env=tiny --vm-ib=1 true 2>&1)
rc=$?
check "srun refuses a value over a maximum (rc $rc)" test "$rc" -ne 0
check_contains "... with the maximum" "$out" \
	"$why: ib_vfs: 1 is above the maximum 0 of policy 'it-u1' (50-it.json)"
out=$(as "$U1" salloc --vm-env=tiny --vm-keep-overlay true 2>&1)
rc=$?
check "salloc refuses a field users may not set (rc $rc)" test "$rc" -ne 0
check_contains "... saying what users may set" "$out" \
	"$why: keep_overlay: users may not choose it under policy 'it-u1' (50-it.json), which lets users choose only: image, hugepages, ib_vfs, gpus, mounts"
out=$(as "$U1" sbatch --vm-env=test-noagent --wrap true 2>&1)
check_contains "an image outside the allowed patterns is refused" "$out" \
	"$why: image: 'test-noagent' is not allowed by policy 'it-u1' (50-it.json); allowed: tiny*"
out=$(SBATCH_VM_MOUNT=/etc:/mnt/etc runuser -u "$U1" --preserve-environment -- \
	sbatch --vm-env=tiny --wrap true 2>&1)
check_contains "SBATCH_VM_MOUNT is checked like --vm-mount" "$out" \
	"$why: mounts: '/etc:/mnt/etc:rw' is not allowed by policy 'it-u1' (50-it.json); allowed: /home:ro"
printf '#!/bin/sh\n#SBATCH --vm-env=tiny\n#SBATCH --vm-hugepages=1G\ntrue\n' >directive.sh
chown "$U1": directive.sh
out=$(as "$U1" sbatch directive.sh 2>&1)
check_contains "#SBATCH --vm-hugepages is checked too" "$out" \
	"$why: hugepages: '1G' contradicts 'none'"
out=$(as "$U1" sbatch --vm-hugepages=2M --wrap true 2>&1)
check_contains "a --vm-* option without --vm-env is refused" "$out" \
	"--vm-hugepages needs --vm-env=IMAGE"
out=$(as "$U1" sbatch --vm-env=tiny --vm-ib=lots --wrap true 2>&1)
check_contains "a malformed value is refused with the option" "$out" \
	"--vm-ib: 'lots' is not a number in 0..64"
check_eq "nothing was queued" "" \
	"$(comm -13 <(printf '%s\n' "$before") <(squeue -h -u "$U1" -o %i | sort) | grep . || true)"
out=$(as "$U2" sbatch --test-only --vm-env=tiny --vm-hugepages=2M --wrap true 2>&1)
rc=$?
check "the policy does not touch another user (rc $rc)" test "$rc" -eq 0

# --- smuggled past the submit side ---------------------------------------------
# Users run sbatch with whatever configuration they like: here their own
# plugstack.conf whose plugin reads no policies, and the value in the
# plugin's environment variable. The node must refuse the job anyway.
tmp=$(as "$U1" mktemp -d)
grep -v '^PlugStackConfig' /etc/slurm/slurm.conf >"$tmp/slurm.conf"
echo "PlugStackConfig=$tmp/plugstack.conf" >>"$tmp/slurm.conf"
sed -n 's/^\(required\|optional\) \([^ ]*\).*/\1 \2/p' /etc/slurm/plugstack.conf.d/vmenv.conf |
	sed "s|\$| policies=$tmp/no-policies|" >"$tmp/plugstack.conf"
chmod a+r "$tmp"/*
j=$(as "$U1" env SLURM_CONF="$tmp/slurm.conf" \
	SLURM_SPANK__SLURM_SPANK_OPTION_vmenv_vm_hugepages=2M \
	sbatch --parsable --vm-env=tiny -o "$d/smuggled.out" --wrap "echo ran in a guest")
check "the user's own configuration lets sbatch queue it ($j)" test -n "$j"
if [ -n "$j" ]; then
	check_eq "the node fails the job" FAILED "$(wait_job "$j" 120)"
	check_eq "... with vmenv's exit code" "125:0" "$(job_field "$j" ExitCode)"
	check_contains "... and the reason in the job's output" "$(cat smuggled.out)" \
		"job $j: refused by site policy on node $NODE: hugepages: '2M' contradicts 'none' enforced by policy 'it-u1' (50-it.json)"
	check "... nothing of it ran" sh -c "! grep -q 'ran in a guest' '$d/smuggled.out'"
	check "... no guest was created (no console log)" test ! -e "/var/log/vmenv/$NODE/job-$j.log"
	check "... vmmd never started a domain for it" \
		sh -c "! grep -q 'job $j: guest vmenv-$NODE-$j starting' '$VMMD_LOG'"
	check "job $j left nothing" no_leftovers "$j"
fi
rm -rf "$tmp"

# --- enforced, and visible inside the guest -------------------------------------
j=$(as "$U1" sbatch --parsable --vm-env=tiny --mem=512 -o "$d/mem.out" \
	--wrap "grep MemTotal /proc/meminfo")
check_eq "a job under the policy runs" COMPLETED "$(wait_job "$j" 240)"
kib=$(awk '/^MemTotal:/ {print $2}' mem.out)
# 512 MiB allocated, half left to QEMU: 256 MiB of guest RAM, of which the
# kernel keeps some for itself. Without the policy it would be 448 MiB.
check "the guest has the enforced memory: MemTotal ${kib:-?} kB in (180, 256] MiB" \
	test "${kib:-0}" -gt $((180 * 1024)) -a "${kib:-0}" -le $((256 * 1024))
check "job $j left nothing" no_leftovers "$j"

# --- a bad file loosens nothing -----------------------------------------------
echo '{"hugepages": {"enforce": 2}}' >"$POLDIR/90-bad.json"
chmod 0644 "$POLDIR/90-bad.json"
out=$(vmenvctl policy check "$POLDIR" 2>&1)
rc=$?
check "policy check fails on the bad file (rc $rc)" test "$rc" -ne 0
check_contains "... like a compiler: file, field, reason" "$out" \
	"$POLDIR/90-bad.json: hugepages.enforce: must be a string"
check "vmmd refuses it and says so in its status" \
	reload "the last good set stays in force: $POLDIR/90-bad.json: hugepages.enforce"
check "... and in its log" grep -q "policy: $POLDIR refused; keeping the last good set (1 policies)" "$VMMD_LOG"
# The submit side cannot read the policies now and lets the node decide;
# the node still has the last good set.
j=$(as "$U1" sbatch --parsable --vm-env=tiny --vm-hugepages=2M -o "$d/bad.out" --wrap true 2>/dev/null)
if [ -n "$j" ]; then
	check_eq "a job the old rules refuse still fails" FAILED "$(wait_job "$j" 120)"
	check_contains "... for the old rules' reason" "$(cat bad.out)" \
		"hugepages: '2M' contradicts 'none' enforced by policy 'it-u1' (50-it.json)"
	check "job $j left nothing" no_leftovers "$j"
else
	fail "sbatch did not queue a job while the policies were unreadable"
fi

rm -f "$POLDIR"/*.json
check "without policies vmmd reports none" reload "policies:    0 from $POLDIR"
check "vmmd still up" vmmd_up

# --- a node without site policies --------------------------------------------
# vmmd reads a missing /etc/vmenv/policies.d as "no site policies"; so must
# vmenvctl (it used to fail: "No such file or directory").
moved=
if [ -e /etc/vmenv/policies.d ]; then mv /etc/vmenv/policies.d /etc/vmenv/policies.d.t60 && moved=1; fi
out=$(vmenvctl policy explain --user "$U1" -- --vm-env=tiny 2>&1)
check_eq "policy explain without /etc/vmenv/policies.d succeeds" 0 "$?"
check_contains "... and counts no policies" "$out" "/etc/vmenv/policies.d (0)"
check_contains "... and still explains the request" "$out" "tiny"
out=$(vmenvctl policy check 2>&1)
check_eq "policy check without it succeeds" 0 "$?"
out=$(vmenvctl policy check /etc/vmenv/no-such-policies 2>&1)
check "a directory the admin names must exist" test "$?" -ne 0
check_contains "... and says so" "$out" "/etc/vmenv/no-such-policies: No such file or directory"
[ -z "$moved" ] || mv /etc/vmenv/policies.d.t60 /etc/vmenv/policies.d
cd / && rm -rf "$d"
