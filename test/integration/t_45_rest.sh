# Jobs submitted through slurmrestd (the REST API, with curl): no SPANK
# option travels there, so --vm-env and the other --vm-* options come from
# SBATCH_VM_* in the job's environment. The script must run in the guest;
# a bad value or one the policy refuses fails the job on the node with the
# reason naming the value (slurmrestd runs no plugin: nothing checks
# before the node).
#
# Transport: the cluster's slurmrestd (`vmenv-cluster rest`, JWT, token
# from `scontrol token`) when it runs; otherwise a slurmrestd of our own
# as the user on a unix socket (rest_auth/local: needs only the slurmrestd
# package, nothing in slurm.conf).
. "$(dirname "$0")/lib.sh"
API=slurm/v0.0.38
REST_PORT=${VMENV_REST_PORT:-6830}
if ! command -v slurmrestd >/dev/null || ! command -v curl >/dev/null; then
	skip "REST tests need slurmrestd and curl (apt-get install slurmrestd curl)"
	exit 0
fi
d=$(workdir "$U1" rest)
cd "$d" || exit 1

own_pid=
cleanup() {
	[ -z "$own_pid" ] || kill "$own_pid" 2>/dev/null
	cd / && rm -rf "$d"
}
trap cleanup EXIT

token=
if [ -s /run/vmenv-cluster/slurmrestd.pid ] && kill -0 "$(cat /run/vmenv-cluster/slurmrestd.pid)" 2>/dev/null; then
	token=$(scontrol token username="$U1" lifespan=900 2>/dev/null | sed -n 's/^SLURM_JWT=//p')
fi
if [ -n "$token" ]; then
	echo "# through the cluster's slurmrestd on 127.0.0.1:$REST_PORT (JWT)"
	rest() { # method path [curl args...]
		local m=$1 p=$2; shift 2
		curl -sS -X "$m" -H "X-SLURM-USER-NAME: $U1" -H "X-SLURM-USER-TOKEN: $token" \
			"$@" "http://127.0.0.1:$REST_PORT/$p"
	}
else
	echo "# through a slurmrestd of $U1's own on a unix socket (rest_auth/local)"
	sock=$d/rest.sock
	# setpriv execs: the pid is slurmrestd's, to stop it at the end.
	setpriv --reuid="$U1" --regid="$(id -g "$U1")" --clear-groups \
		env -i PATH=/usr/bin:/bin /usr/sbin/slurmrestd -a rest_auth/local \
		-s openapi/v0.0.38 "unix:$sock" >"$d/slurmrestd.log" 2>&1 &
	own_pid=$!
	for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
	rest() { # method path [curl args...]
		local m=$1 p=$2; shift 2
		as "$U1" curl -sS -X "$m" --unix-socket "$sock" "$@" "http://localhost/$p"
	}
fi
check_contains "slurmrestd answers the user" "$(rest GET "$API/ping")" '"ping": "UP"'

# submit NAME SCRIPT ENV_JSON: prints the job id (empty when refused).
submit() {
	local body
	body=$(printf '{"script": %s, "job": {"name": "%s", "current_working_directory": "%s",
	  "standard_output": "%s/%s.out", "environment": %s}}' \
		"$(printf '%s' "$2" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')" \
		"$1" "$d" "$d" "$1" "$3")
	rest POST "$API/job/submit" -H 'Content-Type: application/json' --data-binary "$body" |
		python3 -c 'import json,sys; print(json.load(sys.stdin).get("job_id") or "")'
}
ENV_BASE='"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "'"$(home_of "$U1")"'"'

# What only the guest has: the tiny image's module list, and its kernel's
# command line from the catalog (the host has neither).
GUEST_CMDLINE=$(cat /var/lib/vmenv/images/tiny/cmdline)
SCRIPT='#!/bin/sh
test -f /etc/vmenv-modules && echo "image file: yes"
echo "cmdline: $(cat /proc/cmdline)"
echo "from REST: $GREETING"
echo done >rest-result.txt'
check "the host has no /etc/vmenv-modules (the proof below means the guest)" test ! -e /etc/vmenv-modules

j=$(submit vm "$SCRIPT" "{$ENV_BASE, \"SBATCH_VM_ENV\": \"tiny\", \"GREETING\": \"hello\"}")
check "slurmrestd queued the job with SBATCH_VM_ENV ($j)" test -n "$j"
j_plain=$(submit plain "$SCRIPT" "{$ENV_BASE, \"GREETING\": \"hello\"}")
j_bad=$(submit bad "$SCRIPT" "{$ENV_BASE, \"SBATCH_VM_ENV\": \"tiny\", \"SBATCH_VM_IB\": \"lots\"}")
j_img=$(submit img "$SCRIPT" "{$ENV_BASE, \"SBATCH_VM_ENV\": \"zepto-no-such\"}")
long=$(head -c 200 /dev/zero | tr '\0' a)
j_long=$(submit long "$SCRIPT" "{$ENV_BASE, \"SBATCH_VM_ENV\": \"$long\"}")

if [ -n "$j" ]; then
	check_eq "the REST job completes" COMPLETED "$(wait_job "$j" 240)"
	out=$(cat vm.out 2>/dev/null)
	check_contains "its script ran in the guest: the image's file is there" "$out" "image file: yes"
	check_contains "... and the guest kernel's command line" "$out" "cmdline: $GUEST_CMDLINE"
	check_contains "the job's REST environment reached the guest" "$out" "from REST: hello"
	check_eq "a file the job wrote is in its directory" done "$(cat rest-result.txt 2>/dev/null)"
	state=$(rest GET "$API/job/$j" | python3 -c 'import json,sys; print(json.load(sys.stdin)["jobs"][0]["job_state"])')
	check_eq "the REST API reports it COMPLETED too" COMPLETED "$state"
	check "job $j left no guest or state behind" no_leftovers "$j"
fi

check_eq "a REST job without SBATCH_VM_ENV completes" COMPLETED "$(wait_job "$j_plain" 60)"
check "... and runs on the host" sh -c "! grep -q 'image file: yes' '$d/plain.out'"

# --- refused on the node, with the value named --------------------------------
refused() { # jobid file message description
	check_eq "$4: the job fails" FAILED "$(wait_job "$1" 120)"
	check_eq "... with vmenv's exit code" "125:0" "$(job_field "$1" ExitCode)"
	check_contains "... naming the value in the job's output" "$(cat "$2" 2>/dev/null)" "$3"
	check "... and nothing of the script ran" sh -c "! grep -q 'from REST' '$2'"
	check "job $1 left nothing" no_leftovers "$1"
}
refused "$j_bad" bad.out "job $j_bad: --vm-ib: 'lots' is not a number in 0..64" "SBATCH_VM_IB=lots"
refused "$j_img" img.out "zepto-no-such" "an image not in the catalog"
refused "$j_long" long.out "job $j_long: SBATCH_VM_ENV='aaaa" "an image name longer than vmmd takes"
check_contains "... saying the limit" "$(cat long.out 2>/dev/null)" "...' is longer than 127 bytes"

# --- the site's policy binds REST jobs too -------------------------------------
VMMD=$(command -v vmmd || echo /usr/local/sbin/vmmd)
POLDIR=$("$VMMD" --check-config --config /etc/vmenv/vmmd.conf 2>/dev/null | sed -n 's/^policy_dir = //p')
case "$POLDIR" in
"" | /etc/*)
	skip "policy over REST needs a test policy directory: policy_dir in vmmd.conf is '$POLDIR' (test/all sets one)"
	exit 0
	;;
esac
mkdir -p "$POLDIR"
rm -f "$POLDIR"/*.json
cat >"$POLDIR/50-rest.json" <<'JSON'
{
  "name": "it-rest",
  "description": "integration test t_45_rest",
  "match": {"user": "vmenv-u1", "partition": "debug"},
  "user_may_set": ["image", "hugepages"],
  "image": {"allow": ["tiny*"]},
  "hugepages": {"enforce": "none"}
}
JSON
chmod 0644 "$POLDIR/50-rest.json"
check "vmmd loads the test policy" reload "policies:    1 from $POLDIR"
j=$(submit pol "$SCRIPT" "{$ENV_BASE, \"SBATCH_VM_ENV\": \"tiny\", \"SBATCH_VM_HUGEPAGES\": \"2M\"}")
check "slurmrestd queues what the policy refuses: nothing checks before the node ($j)" test -n "$j"
[ -z "$j" ] || refused "$j" pol.out \
	"job $j: refused by site policy on node $NODE: hugepages: '2M' contradicts 'none' enforced by policy 'it-rest' (50-rest.json)" \
	"SBATCH_VM_HUGEPAGES=2M against an enforced none"
j=$(submit polimg "$SCRIPT" "{$ENV_BASE, \"SLURM_VM_ENV\": \"test-noagent\"}")
[ -z "$j" ] || refused "$j" polimg.out \
	"image: 'test-noagent' is not allowed by policy 'it-rest' (50-rest.json); allowed: tiny*" \
	"SLURM_VM_ENV naming an image the policy does not allow"
rm -f "$POLDIR"/*.json
check "without the test policy vmmd reports none" reload "policies:    0 from $POLDIR"
