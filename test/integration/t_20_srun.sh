# srun --vm-env: arguments passed exactly, stdin forwarded, exit status;
# salloc --vm-env then srun: steps share the job's one guest.
. "$(dirname "$0")/lib.sh"
GUEST_KERNEL=$(cat /var/lib/vmenv/images/tiny/kernel-version)
d=$(workdir "$U1" srun)
cd "$d"

out=$(printf 'line1\nline2\n' | as "$U1" srun --vm-env=tiny sh -c \
	'printf "[%s]" "$@"; echo; cat; uname -r; exit 5' argv0 "a b" '"q"' '' "x'y" '$HOME' 2>"$d/srun.err")
rc=$?
check_eq "srun's exit status is the command's" 5 "$rc"
check_eq "arguments and stdin reach the guest exactly" \
	"$(printf '[a b]["q"][][x'"'"'y][$HOME]\nline1\nline2\n%s' "$GUEST_KERNEL")" "$out"

out=$(as "$U1" srun --vm-env=tiny sh -c 'kill -TERM $$' 2>&1)
rc=$?
check "a command killed by a signal fails the step (rc $rc)" test "$rc" -ne 0

out=$(as "$U1" salloc --vm-env=tiny sh -c \
	'srun sh -c "echo shared > /tmp/marker; uname -r"; srun cat /tmp/marker' 2>/dev/null)
check_eq "salloc --vm-env: srun steps run in one shared guest" \
	"$(printf '%s\nshared' "$GUEST_KERNEL")" "$out"
cd / && rm -rf "$d"
