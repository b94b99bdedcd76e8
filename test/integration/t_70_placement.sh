# Slurm's allocation becomes the guest: the running QEMU's vCPU threads are
# pinned to the job's CPUs (read from /proc, not from the XML), QEMU's other
# threads stay on them too, the guest sees as many CPUs and the memory Slurm
# gave less QEMU's headroom, the domain's memory cgroup is limited to the
# allocation (a memory hog in the guest dies inside the guest, the host
# limit holds), and two concurrent one-CPU jobs get disjoint CPUs.
. "$(dirname "$0")/lib.sh"
d=$(workdir "$U1" placement)
cd "$d"
VMMD_CONF=${VMMD_CONF:-/etc/vmenv/vmmd.conf}
VMMD=$(command -v vmmd || echo /usr/local/sbin/vmmd)
HEADROOM=$("$VMMD" --config "$VMMD_CONF" --check-config 2>/dev/null | awk '$1 == "mem_headroom_mib" {print $3}')
HEADROOM=${HEADROOM:-128}
NCPU=$(nproc)

# "0-1,3" -> one number per line
expand() { tr ',' '\n' <<<"$1" | awk -F- 'NF == 1 {print $1} NF == 2 {for (i = $1; i <= $2; i++) print i}'; }
# numbers on stdin -> sorted, comma separated
join_sorted() { sort -n | paste -sd, -; }

# Slurm's core indices on this node -> Linux CPUs, as vmmd maps them: cores
# in topology order (packages by first CPU, cores by first CPU); index k is
# every thread of the k-th core, or the k-th CPU when slurm.conf counts CPUs
# as cores.
slurm_to_linux() { # CPU_IDs
	local s c f cpu
	s=$(scontrol show node "$NODE" | tr ' ' '\n' | sed -n 's/^Sockets=//p')
	c=$(scontrol show node "$NODE" | tr ' ' '\n' | sed -n 's/^CoresPerSocket=//p')
	for f in /sys/devices/system/cpu/cpu[0-9]*/topology/core_id; do
		cpu=${f#/sys/devices/system/cpu/cpu}
		cpu=${cpu%%/*}
		grep -qx "$cpu" <<<"$(expand "$(cat /sys/devices/system/cpu/online)")" || continue
		echo "$(cat "${f%/core_id}/physical_package_id") $(cat "$f") $cpu"
	done | awk '
	{ pkg[NR] = $1; core[NR] = $2; cpu[NR] = $3
	  if (!($1 in pf) || $3 < pf[$1]) pf[$1] = $3
	  k = $1 "/" $2; if (!(k in cf) || $3 < cf[k]) cf[k] = $3 }
	END { for (i = 1; i <= NR; i++) print pf[pkg[i]], cf[pkg[i] "/" core[i]], cpu[i] }' |
		sort -n -k1,1 -k2,2 -k3,3 |
		awk -v want="$(expand "$1" | paste -sd, -)" -v slurm=$((s * c)) '
	{ n++; cpu[n] = $3; if (n == 1 || $2 != last) cores++; last = $2; ci[n] = cores - 1 }
	END {
		split(want, w, ","); for (i in w) wanted[w[i]] = 1
		for (i = 1; i <= n; i++) {
			k = (slurm == cores) ? ci[i] : i - 1
			if (k in wanted) print cpu[i]
		}
	}' | join_sorted
}

qemu_pid() { pgrep -f "guest=vmenv-$NODE-$1," | head -1; }

# "comm<TAB>cpus" for every thread of a process
threads() { # pid
	local t
	for t in /proc/"$1"/task/*; do
		printf '%s\t%s\n' "$(cat "$t/comm")" "$(awk '/^Cpus_allowed_list:/ {print $2}' "$t/status")"
	done
}

# vCPU threads are named "CPU N/TCG" (or /KVM)
vcpu_cpus() { threads "$1" | awk -F'\t' '$1 ~ /^CPU [0-9]+\// {print $2}'; }

# The memory cgroup limit (bytes) over a process, v1 or v2, from its own
# cgroup up to the first set limit.
mem_limit() { # pid
	local p f v
	p=$(awk -F: '$2 == "memory" {print $3}' "/proc/$1/cgroup")
	if [ -n "$p" ]; then
		f=/sys/fs/cgroup/memory$p/memory.limit_in_bytes
		cat "$f" 2>/dev/null
		return
	fi
	p=$(awk -F: '$1 == "0" {print $3}' "/proc/$1/cgroup")
	while [ -n "$p" ] && [ "$p" != / ]; do
		v=$(cat "/sys/fs/cgroup$p/memory.max" 2>/dev/null)
		[ -n "$v" ] && [ "$v" != max ] && { echo "$v"; return; }
		p=$(dirname "$p")
	done
}

mem_peak() { # pid
	local p
	p=$(awk -F: '$2 == "memory" {print $3}' "/proc/$1/cgroup")
	if [ -n "$p" ]; then
		cat "/sys/fs/cgroup/memory$p/memory.max_usage_in_bytes"
	else
		p=$(awk -F: '$1 == "0" {print $3}' "/proc/$1/cgroup")
		cat "/sys/fs/cgroup$(dirname "$p")/memory.peak"
	fi
}

# libvirt's own view of the pinning (not /proc, not the XML vmmd wrote):
# `virsh -q vcpupin` prints "vcpu cpus" lines, `virsh -q emulatorpin` the
# cpus (after "*:" in older versions): the last field either way.
virsh_vcpupin() { $VIRSH vcpupin "vmenv-$NODE-$1" | awk 'NF >= 2 {print $NF}'; }
virsh_emulatorpin() { $VIRSH emulatorpin "vmenv-$NODE-$1" | awk 'NF {print $NF}' | tail -1; }

wait_file() { # path seconds
	local i
	for ((i = 0; i < $2 * 4; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.25
	done
	return 1
}

# --- one job with every CPU of the node ------------------------------------
cat >all.sh <<'JOB'
#!/bin/sh
nproc >nproc.out
awk '/^MemTotal:/ {print $2}' /proc/meminfo >memtotal.out
touch ready.flag
i=0
while [ ! -e go.flag ] && [ $i -lt 240 ]; do sleep 1; i=$((i + 1)); done
# More than the guest's RAM (3000 MiB, one line): the guest's own OOM
# killer (or sort's failing allocation) must stop it.
head -c 3145728000 /dev/zero | sort >/dev/null 2>&1
echo "hog $?" >hog.out
echo alive >alive.out
# Keep the guest until the host side has read its cgroup.
i=0
while [ ! -e end.flag ] && [ $i -lt 120 ]; do sleep 1; i=$((i + 1)); done
JOB
chown "$U1": all.sh
MEM=1024
j=$(as "$U1" sbatch --parsable --vm-env=tiny -n "$NCPU" --mem=$MEM -o "$d/all.log" all.sh)
if ! wait_file "$d/ready.flag" 240; then
	fail "the job's guest came up (job $j: $(job_field "$j" JobState))"
	sed 's/^/#   /' "$d/all.log" 2>/dev/null
	scancel "$j"
	exit 0
fi
ids=$(scontrol show job -d "$j" | sed -n 's/.*CPU_IDs=\([^ ]*\).*/\1/p' | head -1)
want=$(slurm_to_linux "$ids")
pid=$(qemu_pid "$j")
check "QEMU of job $j runs (pid $pid)" test -n "$pid"
[ -n "$pid" ] || { scancel "$j"; exit 0; }
got=$(vcpu_cpus "$pid" | join_sorted)
check_eq "vCPU threads run on the job's CPUs (Slurm CPU_IDs=$ids)" "$want" "$got"
check "each vCPU thread is pinned to exactly one CPU" \
	test -z "$(vcpu_cpus "$pid" | grep '[-,]')"
check_eq "no two vCPUs share a CPU" "$(vcpu_cpus "$pid" | wc -l)" "$(vcpu_cpus "$pid" | sort -u | wc -l)"
# Second sources: Slurm's CPU count for the job, and libvirt's own view
# of the pinning (the kernel's, above, must agree with it).
check_eq "as many vCPU threads as Slurm's NumCPUs" "$(job_field "$j" NumCPUs)" "$(vcpu_cpus "$pid" | wc -l)"
check_eq "libvirt's vcpupin is the kernel's affinity of the vCPU threads" \
	"$got" "$(virsh_vcpupin "$j" | while read -r c; do expand "$c"; done | join_sorted)"
ep=$(virsh_emulatorpin "$j")
emu_inside() {
	local c
	[ -n "$ep" ] || return 1
	for c in $(expand "$ep"); do grep -qx "$c" <<<"$(expand "$want")" || return 1; done
}
check "libvirt's emulatorpin ($ep) is within the job's CPUs ($want)" emu_inside
outside=$(threads "$pid" | while IFS=$'\t' read -r comm cpus; do
	for c in $(expand "$cpus"); do
		grep -qx "$c" <<<"$(expand "$want")" || echo "$comm:$c"
	done
done | sort -u | paste -sd' ' -)
check_eq "no QEMU thread may run outside the job's CPUs" "" "$outside"
check_eq "nproc in the guest is the job's CPU count" "$(expand "$want" | wc -l)" "$(cat nproc.out)"
guest_mib=$((MEM - HEADROOM))
memtotal=$(cat memtotal.out 2>/dev/null)
mem_at_most() { [ -n "$memtotal" ] && [ "$memtotal" -le $((guest_mib * 1024)) ]; }
mem_at_least() { [ -n "$memtotal" ] && [ "$memtotal" -ge $((guest_mib * 1024 * 85 / 100)) ]; }
check "guest MemTotal (${memtotal:-?} KiB) is at most its RAM ($guest_mib MiB)" mem_at_most
check "... and not much less (kernel's own share < 15%)" mem_at_least
check_eq "the domain's memory cgroup is limited to the job's $MEM MiB" \
	$((MEM * 1024 * 1024)) "$(mem_limit "$pid")"
touch go.flag
wait_file "$d/alive.out" 180
check_eq "a memory hog in the guest dies in the guest; the guest lives on" alive "$(cat alive.out 2>/dev/null)"
peak=$(mem_peak "$pid")
# An unreadable peak (no such file) is a failure, never 0; a peak of 0
# would mean the counter measured nothing.
under_limit() { [ -n "$peak" ] && [ "$peak" -gt 0 ] && [ "$peak" -le $((MEM * 1024 * 1024)) ]; }
check "QEMU's memory never exceeded the limit (peak $((${peak:-0} >> 20)) MiB)" under_limit
touch end.flag
check_eq "the job completes" COMPLETED "$(wait_job "$j" 120)"
check "job $j left no guest behind" no_leftovers "$j"

# --- two one-CPU jobs at once -----------------------------------------------
if [ "$NCPU" -lt 2 ]; then
	skip "two one-CPU jobs need a node with 2 CPUs"
else
	cat >one.sh <<'JOB'
#!/bin/sh
touch "ready.$SLURM_JOB_ID"
i=0
while [ ! -e go2.flag ] && [ $i -lt 240 ]; do sleep 1; i=$((i + 1)); done
nproc >"nproc.$SLURM_JOB_ID"
JOB
	chown "$U1": one.sh
	a=$(as "$U1" sbatch --parsable --vm-env=tiny -n1 --mem=512 -o "$d/a.log" one.sh)
	b=$(as "$U1" sbatch --parsable --vm-env=tiny -n1 --mem=512 -o "$d/b.log" one.sh)
	if wait_file "$d/ready.$a" 240 && wait_file "$d/ready.$b" 240; then
		ca=$(vcpu_cpus "$(qemu_pid "$a")" | join_sorted)
		cb=$(vcpu_cpus "$(qemu_pid "$b")" | join_sorted)
		ia=$(scontrol show job -d "$a" | sed -n 's/.*CPU_IDs=\([^ ]*\).*/\1/p' | head -1)
		ib=$(scontrol show job -d "$b" | sed -n 's/.*CPU_IDs=\([^ ]*\).*/\1/p' | head -1)
		check_eq "job $a's vCPU is on its CPU (Slurm $ia)" "$(slurm_to_linux "$ia")" "$ca"
		check_eq "job $b's vCPU is on its CPU (Slurm $ib)" "$(slurm_to_linux "$ib")" "$cb"
		disjoint() {
			[ -n "$ca" ] && [ -n "$cb" ] &&
				[ -z "$(comm -12 <(expand "$ca" | sort) <(expand "$cb" | sort))" ]
		}
		check "the two jobs' CPUs are disjoint ($ca vs $cb)" disjoint
	else
		fail "both one-CPU guests came up ($(job_field "$a" JobState), $(job_field "$b" JobState))"
	fi
	touch go2.flag
	check_eq "job $a completes" COMPLETED "$(wait_job "$a" 120)"
	check_eq "job $b completes" COMPLETED "$(wait_job "$b" 120)"
	check_eq "each sees one CPU" "1 1" "$(cat "nproc.$a" "nproc.$b" 2>/dev/null | paste -sd' ' -)"
fi
cd / && rm -rf "$d"
