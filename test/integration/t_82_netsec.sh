# A multi-node job's private network against a local user of the node
# (issue 14, finding 7). While vmenv-u1's 3-node job runs, vmenv-u2 on the
# host tries what worked before: joining the job's old multicast group
# (239.192/10 + job id, port 7700) to read it, a packet socket, sending into
# the segment through the job's bridge and a guest's tap (SO_BINDTODEVICE
# needs no privilege), reaching the rsh port. The guest counts the frames
# its NIC receives meanwhile. Then the test's own sniffer (root) records a
# vmenv-rsh exchange on the bridge, and the job replays it from its first
# guest to the second: it must be refused and its command not run again.
# Positive controls: the job's guests reach each other, vmenv-rsh works,
# the NIC's counter sees the job's own traffic. Nothing of the network
# (bridge, taps) may be left after the job, nor after every vmmd was killed
# while a job ran (reconcile removes it when they are back).
#
# Run as root on the cluster: test/integration/run t_82
. "$(dirname "$0")/lib.sh"
# A copy vmenv-u2 can read wherever the tree is.
adir=$(mktemp -d /tmp/vmenv-netattack.XXXXXX)
chmod 0755 "$adir"
install -m 0644 "$(dirname "$0")/netattack.pl" "$adir/netattack.pl"
ATTACK=$adir/netattack.pl
trap 'rm -rf "$adir"' EXIT
NODES=$(sinfo -h -p multi -N -o %N | sort -u | tr '\n' ' ')
set -- $NODES
if [ $# -lt 3 ]; then
	skip "network security: partition multi has $# nodes, needs 3"
	exit 0
fi
bridge_of() { printf 'vmj%08x' "$1"; }
tap_of() { printf 'vmj%08x%04x' "$1" "$2"; }
old_group_of() { # the group the multicast segment of job $1 used
	local g=$(($1 & 0x3fffff))
	echo "239.$((192 + (g >> 16))).$(((g >> 8) & 255)).$((g & 255))"
}
links_of() { ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep "^$(bridge_of "$1")" | tr '\n' ' '; }
no_links() { # jobid [seconds]
	local i
	for ((i = 0; i < ${2:-40} * 4; i++)); do
		[ -z "$(links_of "$1")" ] && return 0
		sleep 0.25
	done
	echo "# left on the host: $(links_of "$1")" >&2
	return 1
}
wait_file() { # path seconds
	local i
	for ((i = 0; i < $2 * 2; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.5
	done
	return 1
}
as_u2() { as "$U2" perl "$ATTACK" "$@"; }

d=$(workdir "$U1" netsec)
cd "$d"

# The job: counts its NIC's frames while u2 attacks (attack.rx), then
# while its own node 2 sends it 3 MB (own.rx); a vmenv-rsh call the test
# records; the replay of that recording; vmenv-rsh to every node.
cat >job.sh <<'JOB'
#!/bin/sh
rx() { cat /sys/class/net/e*/statistics/rx_packets | head -1; }
wait_for() { i=0; while [ ! -e "$1" ] && [ $i -lt 240 ]; do sleep 0.5; i=$((i + 1)); done; }
node2=$(sed -n 2p "$VMENV_NODEFILE")
cp /run/vmenv/job-token token.copy
touch started
wait_for attack.go
a=$(rx); sleep 8; b=$(rx); echo $((b - a)) >attack.rx
touch attack.done
a=$(rx); vmenv-rsh "$node2" 'head -c 3000000 /dev/zero' >/dev/null; b=$(rx)
echo $((b - a)) >own.rx
wait_for capturing
vmenv-rsh "$node2" "echo ran >>$PWD/replay.marker"
wait_for captured
# stdin stays open a while: busybox nc ends at its EOF, before the answer.
{ cat capture.bin; sleep 4; } | nc -w 6 10.77.0.2 7022 >replay.out 2>&1
for p in $(cat "$VMENV_NODEFILE"); do
	vmenv-rsh "$p" 'echo "rsh to $(hostname) as $(id -un)"' 2>&1
done >rsh.out
sleep 2
echo done >job.done
JOB
chown "$U1": job.sh
j=$(as "$U1" sbatch --parsable -p multi -N3 --vm-env=tiny -o "$d/j.out" job.sh)
br=$(bridge_of "$j")
if ! wait_file started 240; then
	fail "the 3-node job started (no 'started' from its script)"
	scancel "$j"
	exit 0
fi
check "the job's guests are on its bridge $br (3 taps)" \
	test "$(ip -o link show master "$br" | grep -c " $br[0-9a-f]\{4\}")" = 3

# --- a local user against the segment -------------------------------------
check_eq "vmenv-u2 cannot open a packet socket to sniff" \
	"refused Operation not permitted" "$(as_u2 sniff)"
(as_u2 mcast "$(old_group_of "$j")" 7700 12 >mcast.out) &
mc=$!
touch attack.go
# Into the segment while the first guest counts: broadcasts through the
# bridge and through the first guest's tap, unicast to its rsh port.
for ((i = 0; i < 30; i++)); do
	[ -e attack.done ] && break
	as_u2 inject "$br" 255.255.255.255 9 200
	as_u2 inject "$(tap_of "$j" 0)" 255.255.255.255 9 200
	as_u2 inject "$br" 10.77.0.1 7022 200
	sleep 0.3
done >inject.out 2>&1
wait "$mc"
check_eq "vmenv-u2's sends through the bridge and a tap are all refused" \
	"$(wc -l <inject.out)" "$(grep -c '^refused Operation not permitted' inject.out)"
check "... ($(wc -l <inject.out) attempts)" test "$(wc -l <inject.out)" -ge 6
wait_file attack.done 60
rx=$(cat attack.rx 2>/dev/null)
check "... and none reached the first guest's NIC in 8 s (frames: ${rx:-?})" \
	test "${rx:-999}" -lt 20
# (A host without a multicast route refuses the join itself.)
m=$(cat mcast.out)
check "the job's old multicast group ($(old_group_of "$j"):7700) carries nothing to vmenv-u2 ($m)" \
	test "$m" = "received 0" -o "${m%% *}" = refused
r=$(as_u2 tcp 10.77.0.1 7022 "$br")
check "vmenv-u2 cannot reach a guest's rsh port through the bridge ($r)" \
	test "${r%% *}" = refused
# By route: the host has none into the job's network (a connect to the
# address proves nothing here: a sandbox's egress may answer any address).
rt=$(ip route get 10.77.0.1 2>&1)
check "... nor by route (the host's route: ${rt%%$'\n'*})" sh -c "! printf '%s' \"\$1\" | grep -q 'dev vmj'" _ "$rt"

# --- a recorded rsh exchange, replayed ------------------------------------
wait_file own.rx 60
own=$(cat own.rx 2>/dev/null)
check "the NIC's count sees the job's own traffic (frames: ${own:-?})" \
	test "${own:-0}" -gt 20
# On the second guest's tap: what is sent to it (a bridge device sees only
# what it floods).
perl "$ATTACK" capture "$(tap_of "$j" 1)" 7022 10 "$d/capture.bin" >capture.out &
cap=$!
sleep 1
touch capturing
wait "$cap"
chown "$U1": capture.bin
touch captured
check "the test's sniffer recorded the vmenv-rsh exchange ($(cat capture.out))" \
	test "$(stat -c %s capture.bin)" -gt 44
check "... in which the job's token is nowhere" \
	sh -c "! grep -qF \"\$(cat '$d/token.copy')\" '$d/capture.bin'"
wait_file job.done 120
check "its replay from the job's first guest is refused (wrong job token)" \
	grep -qa "wrong job token" replay.out
check_eq "... and its command ran once, for the real exchange" \
	"ran" "$(cat replay.marker 2>/dev/null)"
for n in $NODES; do
	check_contains "vmenv-rsh still reaches $n's guest" "$(cat rsh.out)" \
		"rsh to $n as $U1"
done
st=$(wait_job "$j" 120)
check_eq "the job completed" COMPLETED "$st"
[ "$st" = COMPLETED ] || sed 's/^/#   /' j.out | tail -20
check "nothing of its network is left on the host" no_links "$j"

# --- every vmmd killed while a job runs: reconcile removes its network ----
cat >long.sh <<'JOB'
#!/bin/sh
echo started
sleep 600
JOB
chown "$U1": long.sh
j=$(as "$U1" sbatch --parsable -p multi -N3 --vm-env=tiny -o "$d/l.out" long.sh)
for _ in $(seq 240); do grep -q started l.out 2>/dev/null && break; sleep 0.5; done
check "a long 3-node job runs on its bridge" test -n "$(links_of "$j")"
# (node 1's vmmd keeps the plain pid file name: contrib/cluster)
for n in $NODES; do
	pf=/run/vmenv-cluster/vmmd-$n.pid
	[ -e "$pf" ] || pf=/run/vmenv-cluster/vmmd.pid
	kill -KILL "$(cat "$pf")" 2>/dev/null
done
scancel "$j"
wait_job "$j" 60 >/dev/null
sleep 2
check "with every vmmd dead, its bridge is still there" test -n "$(links_of "$j")"
"$(dirname "$0")/../../contrib/cluster/vmenv-cluster" up >/dev/null 2>&1
for n in $NODES; do
	check "vmmd on $n is back" sh -c "vmenvctl --node $n status >/dev/null"
done
# At start each vmmd reconciles: the guests go, then the bridge.
check "after the restart, reconcile removed the job's guests and network" \
	no_links "$j" 120

cd / && rm -rf "$d"
