# Checkpoint stores a user can write (issue 14, items 6, 9 and 14;
# docs/checkpoint.md "Who can change what"), attacked for real by an
# ordinary user on the cluster: every check fails if the attack works.
# Needs what t_80_checkpoint.sh needs, root (to write a test policy and
# read the results) and users U1, U2. Takes about 4 minutes.
#
#  1. --vm-checkpoint-dir below a prefix a policy allows, but the user's
#     directory there is a symlink to a root-only place: refused, nothing
#     written there.
#  2. The user's own store: after a kept checkpoint, the user swaps the
#     job's directory for one of their own with a manifest they wrote,
#     an unlisted output linked to /etc/shadow and a FIFO: --vm-restore
#     is refused without reading it, no line of /etc/shadow reaches the
#     output, vmmd answers meanwhile.
#  3. The user turns the job's directory into a link to root's files
#     before the job's end removes its checkpoints: they stay.
#  4. A policy's checkpoint: {"enforce": false} stops vmenvctl checkpoint.
#
# Written for the cluster; run it with test/integration/run (it has not
# been run yet).
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
	skip "t_82: needs root"
	exit 0
fi
BASE=/var/tmp/it-ckpt-$$
d=$(workdir "$U1" ckstore)
d2=$(workdir "$U2" ckstore)
cd "$d" || exit 1

cat >counter.sh <<'JOB'
#!/bin/sh
cd /
i=0
while [ $i -lt 120 ]; do
	echo "count $i"
	i=$((i + 1))
	sleep 1
done
JOB
cp counter.sh "$d2/counter.sh"
chown "$U1": counter.sh
chown "$U2": "$d2/counter.sh"

# The scratch area a test policy allows (root's, as /scratch would be),
# a directory of U1's in it, and a root-only place outside it.
mkdir -p "$BASE/scratch" "$BASE/outside"
chmod 0755 "$BASE" "$BASE/scratch"
chmod 0700 "$BASE/outside"
mkdir -p "$BASE/scratch/u1"
chown "$U1": "$BASE/scratch/u1"

POLDIR=$(vmmd --check-config --config /etc/vmenv/vmmd.conf 2>/dev/null | sed -n 's/^policy_dir = //p')
POLDIR=${POLDIR:-/etc/vmenv/policies.d}
policy_hup() {
	local n
	for n in /run/vmenv-cluster/vmmd*.pid; do kill -HUP "$(cat "$n")" 2>/dev/null; done
	sleep 1
}
mkdir -p "$POLDIR"
printf '{"name": "it-ckstore", "checkpoint_dir": {"allow": ["%s/scratch"]}}\n' \
	"$BASE" >"$POLDIR/82-it-ckstore.json"
printf '{"name": "it-nockpt", "match": {"user": "%s"}, "checkpoint": {"enforce": false}}\n' \
	"$U2" >"$POLDIR/82-it-nockpt.json"
policy_hup

# --- 1. a symlink out of the allowed prefix ---------------------------------
as "$U1" ln -s "$BASE/outside" "$BASE/scratch/u1/ck"
j=$(as "$U1" sbatch --parsable -w "$NODE" --vm-env=tiny -t 10 --vm-checkpoint \
	--vm-checkpoint-dir="$BASE/scratch/u1/ck" -o "$d/s.out" counter.sh)
if wait_guest_ready "$j" 120; then
	out=$(vmenvctl checkpoint "$j" 2>&1)
	check_contains "a symlinked store is refused" "$out" "(a symlink on the way)"
	check_eq "... and nothing is written behind the link" "" "$(ls -A "$BASE/outside")"
else
	fail "the job with a symlinked store did not start ($(job_field "$j" Reason))"
fi
scancel "$j"
wait_job "$j" 60 >/dev/null
as "$U1" rm -f "$BASE/scratch/u1/ck"

# --- 2. a forged checkpoint in the user's own store ---------------------------
STORE=$BASE/scratch/u1/store
as "$U1" mkdir "$STORE"
j=$(as "$U1" sbatch --parsable -w "$NODE" --vm-env=tiny -t 10 --vm-checkpoint \
	--vm-checkpoint-keep=yes --vm-checkpoint-dir="$STORE" -o "$d/k.out" counter.sh)
if wait_guest_ready "$j" 120; then
	out=$(vmenvctl checkpoint "$j" 2>&1)
	check_contains "a kept checkpoint in the user's store" "$out" "the job goes on"
	check_eq "... its directories are root's, 0700" "0 700 0 700" \
		"$(stat -c '%u %a' "$STORE/$j" "$STORE/$j/1" | tr '\n' ' ' | sed 's/ $//')"
else
	fail "the job keeping its checkpoint did not start"
fi
scancel "$j"
wait_job "$j" 60 >/dev/null
sleep 2
# The user renames vmmd's directory away (they may: it is in their
# directory) and puts their own in its place: a manifest they wrote (here
# the real one, which they could have written: it says nothing they do not
# know), the memory it names, an unlisted output linked to /etc/shadow and
# an unlisted disk.qcow2 that is a FIFO.
as "$U1" mv "$STORE/$j" "$STORE/$j.real"
as "$U1" mkdir -p "$STORE/$j/1"
cat "$STORE/$j.real/1/manifest.json" >"$STORE/$j/1/manifest.json"
cat "$STORE/$j.real/1/memory" >"$STORE/$j/1/memory"
chown -R "$U1": "$STORE/$j"
as "$U1" ln -s /etc/shadow "$STORE/$j/1/output"
as "$U1" mkfifo "$STORE/$j/1/disk.qcow2"
j2=$(as "$U1" sbatch --parsable -w "$NODE" --vm-env=tiny -t 10 --vm-restore="$j" \
	--vm-checkpoint-dir="$STORE" -o "$d/r.out" counter.sh)
st=$(wait_job "$j2" 120)
check "vmmd answers while the forged restore is looked at" vmmd_up
check_contains "the forged checkpoint is refused before it is read" "$(cat "$d/r.out")" \
	"is owned by uid $(id -u "$U1")"
check "... and no line of /etc/shadow reached the output" \
	sh -c "! grep -q '^root:' '$d/r.out'"
check "... nor the job's directory" sh -c "! grep -rqs '^root:' '$RUN_DIR/jobs/$j2'"

# --- 3. the job's directory a link to root's files at the job's end ---------
mkdir -p "$BASE/victim/1"
echo "keep me" >"$BASE/victim/1/precious"
echo "{}" >"$BASE/victim/1/manifest.json"
j=$(as "$U1" sbatch --parsable -w "$NODE" --vm-env=tiny -t 10 --vm-checkpoint \
	--vm-checkpoint-dir="$STORE" -o "$d/e.out" counter.sh)
if wait_guest_ready "$j" 120; then
	vmenvctl checkpoint "$j" >/dev/null 2>&1
	as "$U1" mv "$STORE/$j" "$STORE/$j.moved"
	as "$U1" ln -s "$BASE/victim" "$STORE/$j"
else
	fail "the job for the removal did not start"
fi
scancel "$j"
wait_job "$j" 60 >/dev/null
sleep 3 # the epilog removes the job's checkpoints (not kept)
check "removing the job's checkpoints left root's files behind the link alone" \
	test -e "$BASE/victim/1/precious" -a -e "$BASE/victim/1/manifest.json"

# --- 4. policy: checkpoint enforce false stops vmenvctl checkpoint -----------
cd "$d2" || exit 1
j=$(as "$U2" sbatch --parsable -w "$NODE" --vm-env=tiny -t 10 -o "$d2/p.out" counter.sh)
if wait_guest_ready "$j" 120; then
	out=$(as "$U2" vmenvctl checkpoint "$j" 2>&1)
	check_contains "an on-demand checkpoint is refused by the policy" "$out" \
		"policy 'it-nockpt' (82-it-nockpt.json) enforces checkpoint: no"
	check_eq "... and the job goes on" RUNNING "$(job_field "$j" JobState)"
else
	fail "the job under the no-checkpoint policy did not start"
fi
scancel "$j"
wait_job "$j" 60 >/dev/null

rm -f "$POLDIR/82-it-ckstore.json" "$POLDIR/82-it-nockpt.json"
policy_hup
rm -rf "$BASE"
