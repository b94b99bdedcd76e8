# The guest cannot use more CPU or memory than it was given, with the
# mechanisms vmmd uses and without Slurm: a transient libvirt domain
# (bench-limits-*, never vmenv-*) pinned to one host CPU with a strict NUMA
# cell and a memory hard limit of guest RAM + vmmd's headroom (set on the
# paused domain, as mem_limit=live does, or in the XML where libvirtd may
# raise RLIMIT_MEMLOCK). The tiny image's busybox shell runs as init on the
# serial console; a memory hog in the guest must die in the guest, QEMU's
# cgroup must stay under the limit, and no QEMU thread may leave the CPU.
# loglevel=1: the kernel's own console lines (a late "tsc: Refined
# clocksource", the OOM killer's report) once came between the shell's
# answers and were read as them.
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
TINY=${TINY:-/var/lib/vmenv/images/tiny}
VMMD_CONF=${VMMD_CONF:-/etc/vmenv/vmmd.conf}
VMMD=$(command -v vmmd || echo /usr/local/sbin/vmmd)
if ! $VIRSH uri >/dev/null 2>&1 || [ ! -r "$TINY/vmlinuz" ]; then
	skip "needs libvirtd (qemu:///system) and the tiny image"
	exit 0
fi
# vmmd's headroom (HEADROOM= overrides it, to try another value).
HEADROOM=${HEADROOM:-$("$VMMD" --config "$VMMD_CONF" --check-config 2>/dev/null | awk '$1 == "mem_headroom_mib" {print $3}')}
HEADROOM=${HEADROOM:-128}
GUEST_MIB=384
LIMIT_MIB=$((GUEST_MIB + HEADROOM))
CPU=$(($(nproc) - 1))
dom=bench-limits-$$
tmp=$(mktemp -d)
chmod 755 "$tmp"
trap '$VIRSH destroy "$dom" >/dev/null 2>&1; rm -rf "$tmp"' EXIT
cp "$TINY/vmlinuz" "$TINY/initrd.img" "$tmp/"

# CAP_SYS_RESOURCE (bit 24): can libvirtd raise RLIMIT_MEMLOCK to the limit?
live=1
(($(printf '%d' "0x$(awk '/^CapEff:/ {print $2}' /proc/self/status)") >> 24 & 1)) && live=0
memtune=""
[ $live = 0 ] && memtune="<memtune><hard_limit unit='MiB'>$LIMIT_MIB</hard_limit></memtune>"

cat >"$tmp/dom.xml" <<XML
<domain type='qemu'>
  <name>$dom</name>
  <memory unit='MiB'>$GUEST_MIB</memory>
  <vcpu placement='static'>1</vcpu>
  <cputune><vcpupin vcpu='0' cpuset='$CPU'/><emulatorpin cpuset='$CPU'/></cputune>
  $memtune
  <numatune><memory mode='strict' nodeset='0'/><memnode cellid='0' mode='strict' nodeset='0'/></numatune>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$tmp/vmlinuz</kernel><initrd>$tmp/initrd.img</initrd>
    <cmdline>console=ttyS0 loglevel=1 rdinit=/bin/sh</cmdline></os>
  <features><acpi/></features>
  <cpu><topology sockets='1' dies='1' cores='1' threads='1'/>
    <numa><cell id='0' cpus='0' memory='$GUEST_MIB' unit='MiB'/></numa></cpu>
  <on_poweroff>destroy</on_poweroff>
  <seclabel type='static' model='dac' relabel='no'><label>+0:+0</label></seclabel>
  <devices>
    <serial type='unix'><source mode='bind' path='$tmp/console.sock'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>
XML

if [ $live = 1 ]; then
	$VIRSH create "$tmp/dom.xml" --paused >/dev/null &&
		$VIRSH memtune "$dom" --hard-limit $((LIMIT_MIB * 1024)) --live &&
		$VIRSH resume "$dom" >/dev/null
else
	$VIRSH create "$tmp/dom.xml" >/dev/null
fi
pid=$(pgrep -f "guest=$dom," | head -1)
check "the domain runs (QEMU pid $pid, limit $([ $live = 1 ] && echo 'set live' || echo 'in the XML'))" test -n "$pid"
[ -n "$pid" ] || exit 0

out=$(perl "$here/serial.pl" "$tmp/console.sock" 180 \
	'mkdir -p /proc /dev; mount -t proc proc /proc; mount -t devtmpfs dev /dev' \
	'nproc' \
	"awk '/^MemTotal:/ {print \$2}' /proc/meminfo" \
	'head -c 3000000000 /dev/zero | sort >/dev/null; echo hog=$?' \
	'echo alive' 2>&1)
lines=$(printf '%s\n' "$out" | grep -v '^$')
check_eq "the guest sees 1 CPU" 1 "$(sed -n 1p <<<"$lines")"
memtotal=$(sed -n 2p <<<"$lines")
mem_within() { [ -n "$memtotal" ] && [ "$memtotal" -le $((GUEST_MIB * 1024)) ]; }
check "the guest's MemTotal (${memtotal:-?} KiB) is within its $GUEST_MIB MiB" mem_within
hog=$(grep -o '^hog=[0-9]\+$' <<<"$lines")
hog_stopped() { [ -n "$hog" ] && [ "$hog" != hog=0 ]; }
check "a 3 GB memory hog in the guest is stopped in the guest (${hog:-no answer})" hog_stopped
check_eq "the guest lives on" alive "$(tail -1 <<<"$lines")"

sleep 1 # libvirt notices a dead QEMU asynchronously
if [ ! -d "/proc/$pid" ] || [ "$($VIRSH domstate "$dom" 2>/dev/null)" != running ]; then
	fail "QEMU survived the guest's memory hog (it did not: QEMU itself needs more than the $HEADROOM MiB headroom)"
	exit 0
fi
pass "QEMU survived the guest's memory hog"
cg=$(awk -F: '$2 == "memory" {print $3}' "/proc/$pid/cgroup")
if [ -n "$cg" ]; then
	limit=$(cat "/sys/fs/cgroup/memory$cg/memory.limit_in_bytes")
	peak=$(cat "/sys/fs/cgroup/memory$cg/memory.max_usage_in_bytes")
	check_eq "QEMU's memory cgroup is limited to guest + headroom ($LIMIT_MIB MiB)" \
		$((LIMIT_MIB * 1024 * 1024)) "$limit"
	check "QEMU's peak ($((${peak:-0} >> 20)) MiB) stayed within the limit" \
		test -n "$peak" -a "${peak:-0}" -gt 0 -a "${peak:-0}" -le "${limit:-0}"
else
	# cgroup v2: the first memory.max set above QEMU, and its peak there.
	cg=$(awk -F: '$1 == "0" {print $3}' "/proc/$pid/cgroup")
	limit="" peak=""
	while [ -n "$cg" ] && [ "$cg" != / ]; do
		limit=$(cat "/sys/fs/cgroup$cg/memory.max" 2>/dev/null)
		if [ -n "$limit" ] && [ "$limit" != max ]; then
			peak=$(cat "/sys/fs/cgroup$cg/memory.peak" 2>/dev/null)
			break
		fi
		limit=""
		cg=$(dirname "$cg")
	done
	check_eq "QEMU's memory cgroup is limited to guest + headroom ($LIMIT_MIB MiB)" \
		$((LIMIT_MIB * 1024 * 1024)) "$limit"
	peak_within() { [ -n "$peak" ] && [ -n "$limit" ] && [ "$peak" -gt 0 ] && [ "$peak" -le "$limit" ]; }
	check "QEMU's peak ($((${peak:-0} >> 20)) MiB) stayed within the limit" peak_within
fi
outside=$(for t in /proc/"$pid"/task/*; do
	c=$(awk '/^Cpus_allowed_list:/ {print $2}' "$t/status")
	[ "$c" = "$CPU" ] || echo "$(cat "$t/comm"):$c"
done | sort -u | paste -sd' ' -)
check_eq "every QEMU thread is confined to CPU $CPU" "" "$outside"
