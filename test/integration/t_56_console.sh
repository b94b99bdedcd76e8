# vmenvctl console JOBID [-f]: the job's owner and root read the guest's
# console log through vmmd (the file is root's); another user is refused
# by name; --follow ends by itself when the job's guest ends; the log is
# still readable after the job (console_linger_s, default 1 h); an
# unknown job is a clear error. The marker is the guest agent's own line
# on the serial console when it took the job's setup: only the guest
# writes it (the tiny image boots its kernel "quiet": no kernel banner). Jobs are pinned to this node (-w): vmenvctl asks its vmmd.
# Takes about a minute.
. "$(dirname "$0")/lib.sh"
MARK="vmenv-agent: setup done: host '$NODE', user '$U1'"
d=$(workdir "$U1" console)
cd "$d" || exit 1

j=$(as "$U1" sbatch --parsable -w "$NODE" --vm-env=tiny -o "$d/job.out" \
	--wrap "sleep 25")
check "the job runs" wait_running "$j" 120
check "its guest becomes ready" wait_guest_ready "$j" 180

out=$(as "$U1" vmenvctl console "$j" 2>&1)
check_contains "the owner reads the console of the running guest" "$out" "$MARK"
out=$(vmenvctl console "$j" 2>&1)
check_contains "root reads it too" "$out" "$MARK"
out=$(as "$U2" vmenvctl console "$j" 2>&1)
rc=$?
check_eq "another user is refused (exit 1)" 1 "$rc"
check_contains "... naming the job" "$out" "job $j: permission denied"
check "... and none of the guest's lines" test -z "$(printf '%s' "$out" | grep -F "$MARK")"

# --follow from now until the guest ends: it must end by itself (no
# timeout, exit 0) shortly after the job does.
as "$U1" timeout 150 vmenvctl console --follow "$j" >"$d/follow.out" 2>&1 &
fpid=$!
check_eq "the job completes" COMPLETED "$(wait_job "$j" 120)"
frc=124
for ((i = 0; i < 60; i++)); do
	if ! kill -0 "$fpid" 2>/dev/null; then
		wait "$fpid"
		frc=$?
		break
	fi
	sleep 0.5
done
check_eq "console --follow ends by itself when the guest ends (exit 0)" 0 "$frc"
check_contains "... having shown the guest's console" "$(cat "$d/follow.out")" "$MARK"
kill "$fpid" 2>/dev/null
check "no leftovers of $j" no_leftovers "$j"

# After the job: the log stays readable for its owner and root.
out=$(as "$U1" vmenvctl console "$j" 2>&1)
check_contains "after the job's end the owner still reads it" "$out" "$MARK"
out=$(vmenvctl console "$j" 2>&1)
check_contains "... and root" "$out" "$MARK"
out=$(as "$U2" vmenvctl console "$j" 2>&1)
check_contains "... another user is still refused" "$out" "job $j: permission denied"
check "the log file itself stays root's and closed to users" \
	test "$(as "$U1" cat "/var/log/vmenv/$NODE/job-$j.log" 2>/dev/null | wc -c)" = 0

# Errors.
out=$(as "$U1" vmenvctl console 999999 2>&1)
rc=$?
check_eq "an unknown job: exit 1" 1 "$rc"
check_contains "... with a clear error" "$out" "job 999999 has no console log on node $NODE"
out=$(as "$U1" vmenvctl console 12abc 2>&1)
rc=$?
check_eq "a bad job id: exit 2" 2 "$rc"
check_contains "... named" "$out" "'12abc' is not a job id"

# On a terminal the guest's bytes are escaped: no raw ESC reaches it.
if command -v script >/dev/null; then
	tty_out=$(as "$U1" script -qec "vmenvctl console $j" /dev/null 2>&1)
	check_contains "on a terminal the console still shows the guest's lines" "$tty_out" "$MARK"
	check "... without a raw escape character" \
		test -z "$(printf '%s' "$tty_out" | tr -d -c '\033')"
else
	skip "script(1) not installed: terminal escaping not checked here (test_ctlesc)"
fi
