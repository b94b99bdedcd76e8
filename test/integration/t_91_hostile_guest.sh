# A hostile guest against root's vmmd (issue 14, findings 11 and 13): the
# test images test-forge and test-flood (mkimages) run their own "agent".
# Each check fails if the attack works; the guest's text reaching the log
# at all is the positive control for the escaping checks.
. "$(dirname "$0")/lib.sh"
LOG=${VMMD_LOG:-/var/log/vmenv-cluster/vmmd.log}
d=$(workdir "$U1" hostile)
cd "$d"

# --- 11: a HELLO made to forge vmmd's log -----------------------------------
before=$(wc -l <"$LOG")
j=$(as "$U1" sbatch --parsable --vm-env=test-forge -o "$d/forge.out" --wrap true)
st=$(wait_job "$j" 150)
check_eq "a guest forging its HELLO fails its job" FAILED "$st"
new=$(tail -n +"$((before + 1))" "$LOG")
check "control: the guest's text reached vmmd's log" grep -q "FORGED-BY-GUEST" <<<"$new"
check "no log line starts with the guest's text or priority" \
	sh -c '! printf "%s\n" "$1" | grep -Eq "^(<0>)?FORGED-BY-GUEST"' _ "$new"
check_contains "the newline and the escape come out escaped, in vmmd's own line" \
	"$new" 'agent up (x\n<0>FORGED-BY-GUEST\x1b[31m)'
check "no raw ESC byte reached the log" sh -c '! printf "%s" "$1" | grep -q "$(printf "\033")"' _ "$new"
check "vmmd still serves" vmmd_up
check "the forging guest left nothing" no_leftovers "$j"

# --- 13: frames for a session vmmd never opened, as fast as they go --------
j=$(as "$U1" sbatch --parsable --vm-env=test-flood -o "$d/flood.out" --wrap true)
st=$(wait_job "$j" 150)
check_eq "a flooding guest fails its job" FAILED "$st"
check_contains "... with the reason" "$(cat "$d/flood.out" 2>/dev/null)" "flooded vmmd"
check "vmmd still serves" vmmd_up
check "the flooding guest left nothing" no_leftovers "$j"
