# One user holding many idle connections to vmmd (issue 14, finding 5):
# vmmd keeps at most max_clients_per_uid of them, root's vmenvctl status
# and another user's job are served meanwhile, and the idle connections
# are closed after client_request_timeout_s.
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
VMMD_CONF=${VMMD_CONF:-/etc/vmenv/vmmd.conf}
VMMD=$(command -v vmmd || echo /usr/local/sbin/vmmd)
conf() { "$VMMD" --config "$VMMD_CONF" --check-config 2>/dev/null | awk -v k="$1" '$1 == k {print $3}'; }
PER_UID=$(conf max_clients_per_uid)
TIMEOUT=$(conf client_request_timeout_s)
MAX=$(conf max_clients)
if [ -z "$PER_UID" ] || [ -z "$TIMEOUT" ]; then
	fail "vmmd --check-config shows no per-uid client limits (max_clients_per_uid)"
	exit 1
fi
d=$(workdir "$U2" climits)
go=$(mktemp -u /tmp/t42-go.XXXXXX)
out=$(mktemp)
chmod 644 "$out"
trap 'rm -f "$go" "$out"' EXIT

# More connections than max_clients, all from one user.
N=$((MAX + 50))
as "$U1" perl "$here/hold.pl" "$SOCK" "$N" 1 $((TIMEOUT + 3)) "$go" >"$out" &
holder=$!
sleep 2
check "root's vmenvctl status is served meanwhile" vmenvctl status
j=$(cd "$d" && as "$U2" sbatch --parsable --vm-env=tiny -o "$d/o.out" --wrap "echo served")
st=$(wait_job "$j" 180)
check_eq "another user's job runs meanwhile" COMPLETED "$st"
check_contains "... with its output" "$(cat "$d/o.out" 2>/dev/null)" served
touch "$go"
wait "$holder"
read -r _ opened _ open1 _ open2 <"$out"
echo "# $U1 opened $opened connections; open after 1 s: $open1; after $((TIMEOUT + 3)) s: $open2"
check "vmmd keeps at most $PER_UID of them ($open1)" test "${open1:-999999}" -le "$PER_UID"
check "... and closes the idle ones after ${TIMEOUT} s ($open2 left)" test "${open2:-1}" -eq 0
check "vmmd is up" vmmd_up
