# Bad input and failures: a clear message naming the job and the value,
# bounded waits, nothing left behind, vmmd stays up.
. "$(dirname "$0")/lib.sh"
here=$(dirname "$0")
d=$(workdir "$U1" errors)
cd "$d"

# --- refused at submit ------------------------------------------------------
before=$(squeue -h -u "$U1" | wc -l)
for cmd in sbatch salloc srun; do
	case $cmd in
	sbatch) out=$(as "$U1" sbatch --vm-env=nope --wrap true 2>&1) ;;
	salloc) out=$(as "$U1" salloc --vm-env=nope true 2>&1) ;;
	srun) out=$(as "$U1" srun --vm-env=nope true 2>&1) ;;
	esac
	rc=$?
	check "$cmd refuses an unknown image (rc $rc)" test "$rc" -ne 0
	check_contains "$cmd names the image and the known images" "$out" \
		"image 'nope' is not in the catalog (known images: tiny"
done
out=$(as "$U1" sbatch --vm-env=../../etc/passwd --wrap true 2>&1)
check_contains "a path as image name is refused" "$out" "invalid image name '../../etc/passwd'"
check_eq "nothing was queued" "$before" "$(squeue -h -u "$U1" | wc -l)"

# --- vmmd not running ---------------------------------------------------------
kill "$(cat /run/vmenv-cluster/vmmd.pid)"
for _ in $(seq 50); do vmmd_up || break; sleep 0.1; done
t0=$(date +%s)
j=$(as "$U1" sbatch --parsable --vm-env=tiny -o "$d/down.out" --wrap "echo hi")
st=$(wait_job "$j" 60)
t1=$(date +%s)
check_eq "with vmmd down the job fails" FAILED "$st"
check "... within seconds ($((t1 - t0)) s)" test $((t1 - t0)) -lt 30
check_contains "... naming the node and the socket" "$(cat down.out)" \
	"cannot reach vmmd on node $NODE at $SOCK"
check_eq "... with vmenv's exit code" "125:0" "$(job_field "$j" ExitCode)"
/work/main/contrib/cluster/vmenv-cluster up >/dev/null 2>&1 ||
	"$(dirname "$0")/../../contrib/cluster/vmenv-cluster" up >/dev/null
check "vmmd is back" vmmd_up

# --- another user's guest ------------------------------------------------------
j=$(as "$U1" sbatch --parsable --vm-env=tiny -o /dev/null --wrap "sleep 300")
if wait_guest_ready "$j" 120; then
	out=$(cd / && runuser -u "$U2" -- env VMENV_ARGV0=/bin/true VMENV_SOCKET="$SOCK" \
		VMENV_BATCH=0 SLURM_JOB_ID="$j" SLURMD_NODENAME="$NODE" \
		"$VMENV_LIBEXEC/vmenv-exec" 2>&1)
	rc=$?
	check_eq "another user cannot exec in the guest (rc)" 125 "$rc"
	check_contains "... and is told why" "$out" "job $j: permission denied"
	# U2's list must work and leave the job out; U1's, the same way, shows it.
	listed() { [ "$1" -eq 0 ] && grep -q "^$j " <<<"$2"; }
	unlisted() { [ "$1" -eq 0 ] && ! grep -q "^$j " <<<"$2"; }
	l1=$(runuser -u "$U1" -- vmenvctl list 2>&1)
	rc1=$?
	l2=$(runuser -u "$U2" -- vmenvctl list 2>&1)
	rc2=$?
	check "its owner sees it in vmenvctl list (rc $rc1)" listed "$rc1" "$l1"
	check "... another user's vmenvctl list works (rc $rc2) and leaves it out" unlisted "$rc2" "$l2"
	out=$(runuser -u "$U2" -- perl "$here/poke.pl" "$SOCK" "json:{\"op\":\"stop\",\"job\":$j}")
	check_contains "... nor stop it" "$out" "permission denied"
	check "the guest still runs" sh -c "vmenvctl list | grep -q '^$j .* ready'"
else
	fail "guest of job $j did not become ready"
fi
scancel "$j"
wait_job "$j" 30 >/dev/null
check "job $j left nothing" no_leftovers "$j"

# --- malformed messages on vmmd's socket ---------------------------------------
out=$(as "$U1" perl "$here/poke.pl" "$SOCK" oversize)
check_eq "oversized message: connection closed" closed "$out"
check "vmmd still up" vmmd_up
out=$(as "$U1" perl "$here/poke.pl" "$SOCK" 'json:{"op":')
check_contains "truncated JSON: refused" "$out" "bad request: not valid JSON"
out=$(as "$U1" perl "$here/poke.pl" "$SOCK" 'json:{"op":"format-disk"}')
check_contains "unknown op: refused" "$out" "unknown op 'format-disk'"
out=$(as "$U1" perl "$here/poke.pl" "$SOCK" 'json:{"op":"status","x":1}')
check_contains "unknown field: refused" "$out" "unknown field 'x'"
out=$(as "$U1" perl "$here/poke.pl" "$SOCK" 'hex:0000')
check_eq "short header then EOF: closed" closed "$out"
check "vmmd still up after all that" vmmd_up

# --- guests that misbehave -----------------------------------------------------
j1=$(as "$U1" sbatch --parsable --vm-env=test-noagent -o "$d/noagent.out" --wrap "echo hi")
j2=$(as "$U1" sbatch --parsable --vm-env=test-garbage -o "$d/garbage.out" --wrap "echo hi")
check_eq "a guest that never becomes ready fails the job" FAILED "$(wait_job "$j1" 240)"
check_contains "... naming its console log" "$(cat noagent.out)" \
	"did not become ready within"
check_contains "... telling the user how to read it" "$(cat noagent.out)" "see vmenvctl console $j1"
check_contains "... which the user can, and it holds the guest's console" \
	"$(as "$U1" vmenvctl console "$j1" 2>&1)" "no agent in this image"
check_eq "a guest sending garbage fails its job" FAILED "$(wait_job "$j2" 240)"
check_contains "... with a reason" "$(cat garbage.out)" "malformed frame"
check "vmmd still up" vmmd_up
check "no leftovers of $j1" no_leftovers "$j1"
check "no leftovers of $j2" no_leftovers "$j2"

# --- root's checkpointing job --------------------------------------------------
# Served files need vmenv-9p, which never runs as root: the job fails at
# once with that reason (it used to wait for boot_timeout_s and blame the
# guest).
rd=$(mktemp -d /tmp/t40-root.XXXXXX)
t0=$SECONDS
rj=$(cd "$rd" && timeout 150 sbatch --parsable --wait -t 5 --vm-env=tiny --vm-checkpoint \
	--vm-checkpoint-files=served -o "$rd/out" --wrap "echo in-guest")
check_eq "root's job with served files fails" FAILED "$(wait_job "$rj" 30)"
check "... at once ($((SECONDS - t0)) s; the guest's boot_timeout_s is 120)" test $((SECONDS - t0)) -lt 45
check_contains "... naming the reason" "$(cat "$rd/out")" "job $rj: root's jobs cannot checkpoint with served files"
check "... the command never ran" sh -c "! grep -q in-guest '$rd/out'"
check "no leftovers of $rj" no_leftovers "$rj"
check "vmmd still up" vmmd_up
rm -rf "$rd"
cd / && rm -rf "$d"
