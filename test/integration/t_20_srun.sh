# srun --vm-env: arguments passed exactly, stdin forwarded, exit status;
# salloc --vm-env then srun: steps share the job's one guest.
. "$(dirname "$0")/lib.sh"
d=$(workdir "$U1" srun)
cd "$d"

out=$(printf 'line1\nline2\n' | as "$U1" srun --vm-env=tiny sh -c \
	'printf "[%s]" "$@"; echo; cat; '"$WHERE_CMD"'; exit 5' argv0 "a b" '"q"' '' "x'y" '$HOME' 2>"$d/srun.err")
rc=$?
check_eq "srun's exit status is the command's" 5 "$rc"
check_eq "arguments and stdin reach the guest exactly" \
	"$(printf '[a b]["q"][][x'"'"'y][$HOME]\nline1\nline2')" "$(sed '$d' <<<"$out")"
check "... and ran there" ran_in_guest "$(tail -1 <<<"$out")"

# srun reports a task killed by signal N as exit status 128+N (143 for
# SIGTERM): any other failure (vmenv's 125, srun's 1) is not this.
out=$(as "$U1" srun --vm-env=tiny sh -c 'kill -TERM $$' 2>&1)
rc=$?
check_eq "a command killed by SIGTERM fails the step with 128+15" 143 "$rc"

# The first step says where it ran (where.sh, in the shared working
# directory: salloc's own shell runs on the host).
printf '%s\n' "$WHERE_CMD" >where.sh
chown "$U1": where.sh
out=$(as "$U1" salloc --vm-env=tiny sh -c \
	'srun sh -c "echo shared > /tmp/marker; sh ./where.sh"; srun sh -c "cat /tmp/marker; sh ./where.sh"' 2>/dev/null)
check_eq "salloc --vm-env: the second step sees the first's /tmp" shared "$(sed -n 2p <<<"$out")"
check "... both ran in a guest" ran_in_guest "$(sed -n 1p <<<"$out")"
check_eq "... the same guest (one boot_id)" "$(sed -n 1p <<<"$out")" "$(sed -n 3p <<<"$out")"
cd / && rm -rf "$d"
