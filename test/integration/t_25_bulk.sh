# Bulk ports (docs/design.md §9): a step's stdout is a virtio port of its
# own; bytes exact, stderr apart, exit status after the output, a process
# that left the group does not hold the step, VMENV_EXEC_RELAY=1 asks for
# the agent's relay. With session_restarts = yes (the default) a step
# uses a port only when its task asks (VMENV_EXEC_BULK=1): a port's stream
# cannot outlive a vmmd restart (docs/restart.md). Needs vmmd with
# bulk_ports > 0 (the default) and a tiny image whose agent knows bulk
# ports.
. "$(dirname "$0")/lib.sh"
d=$(workdir "$U1" bulk)
cd "$d"

out=$(as "$U1" srun --vm-env=tiny readlink /proc/self/fd/1 2>&1)
check_contains "by default a step's stdout in the guest is a pipe to the agent (it outlives a vmmd restart)" "$out" "pipe:"
B="env VMENV_EXEC_BULK=1"
out=$(as "$U1" $B srun --vm-env=tiny readlink /proc/self/fd/1 2>&1)
check_contains "VMENV_EXEC_BULK=1: a step's stdout in the guest is a virtio port" "$out" "/dev/vport"
out=$(as "$U1" env VMENV_EXEC_BULK=1 VMENV_EXEC_RELAY=1 srun --vm-env=tiny readlink /proc/self/fd/1 2>&1)
check_contains "VMENV_EXEC_RELAY=1: a pipe to the agent instead" "$out" "pipe:"

out=$(as "$U1" $B salloc -Q --vm-env=tiny sh -c \
	'srun sh -c "head -c 67108864 /dev/urandom >/tmp/r; sha256sum </tmp/r"
	 srun cat /tmp/r | sha256sum' 2>"$d/salloc.err")
first=$(printf '%s\n' "$out" | sed -n 1p | cut -d' ' -f1)
second=$(printf '%s\n' "$out" | sed -n 2p | cut -d' ' -f1)
check "64 MiB of stdout arrive exact (sha256 ${first:0:12})" \
	test -n "$first" -a "$first" = "$second"

out=$(as "$U1" $B srun -Q --vm-env=tiny sh -c 'echo out; echo err >&2; exit 4' 2>"$d/err")
rc=$?
check_eq "stdout apart from stderr" "out" "$out"
# srun's own lines (queued, the task's exit code) are not the task's.
check_eq "stderr apart from stdout" "err" "$(grep -v '^srun: ' "$d/err")"
check_eq "exit status after the output" 4 "$rc"

# In one allocation, so the guest's boot is not in the time.
cat >"$d/linger.sh" <<'SH'
#!/bin/sh
srun -Q true
t0=$(date +%s)
srun sh -c 'setsid sh -c "sleep 12; echo late" & echo early'
t1=$(date +%s)
echo "took $((t1 - t0))"
sleep 13
srun echo next
SH
chmod 755 "$d/linger.sh"
out=$(as "$U1" $B salloc -Q --vm-env=tiny "$d/linger.sh" 2>&1)
check_eq "a process that left the step's group is not waited for, its late output goes nowhere" \
	"early" "$(printf '%s\n' "$out" | sed -n 1p)"
took=$(printf '%s\n' "$out" | sed -n 's/^took //p')
# Not waited for: well under the 12 s the process lingers (a loaded CI
# machine took 4 s for the step itself).
check "... and the step ends at once (${took:-?} s)" test "${took:-99}" -lt 9
check_eq "the next step's output is whole" "next" "$(printf '%s\n' "$out" | sed -n 3p)"
out=$(as "$U1" $B srun -Q --vm-env=tiny sh -c '(sleep 1; echo bg) & echo fg' 2>&1)
check_eq "a background child in the group is waited for" "$(printf 'fg\nbg')" "$out"
cd / && rm -rf "$d"
