# Helpers for the integration tests: they drive the real cluster (sbatch,
# srun, salloc, scancel, scontrol, virsh) as ordinary users.
# Each test file sources this, calls the t_* helpers, and prints one line per
# check: "ok - ...", "not ok - ..." or "skip - ...".

U1=${U1:-vmenv-u1}
U2=${U2:-vmenv-u2}
NODE=$(hostname -s)
SOCK=/run/vmenv/$NODE/vmmd.sock
RUN_DIR=/run/vmenv/$NODE
VIRSH="virsh -q -c qemu:///system"
# vmenv's helper programs: the packages' (test/all installs them) or a
# developer's make install.
VMENV_LIBEXEC=/usr/libexec/vmenv
[ -x $VMENV_LIBEXEC/vmenv-exec ] || VMENV_LIBEXEC=/usr/local/libexec/vmenv

pass() { echo "ok - $*"; }
fail() { echo "not ok - $*"; }
skip() { echo "skip - $*"; }

check() { # description command...
	local d=$1; shift
	if "$@"; then pass "$d"; else fail "$d"; fi
}

check_eq() { # description expected actual
	if [ "$2" = "$3" ]; then
		pass "$1"
	else
		fail "$1"
		printf '#   expected: %q\n#   actual:   %q\n' "$2" "$3"
	fi
}

check_contains() { # description haystack needle
	if printf '%s' "$2" | grep -qF -- "$3"; then
		pass "$1"
	else
		fail "$1"
		printf '#   %q not in:\n' "$3"
		printf '%s\n' "$2" | head -20 | sed 's/^/#   /'
	fi
}

home_of() { getent passwd "$1" | cut -d: -f6; }

# A fresh directory owned by the user, to submit from.
workdir() { # user name
	local d
	d=$(home_of "$1")/it-$2-$$
	rm -rf "$d"
	runuser -u "$1" -- mkdir -p "$d"
	echo "$d"
}

as() { local u=$1; shift; runuser -u "$u" -- "$@"; }

job_field() { # jobid field
	scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}

# Waits for a job to end; prints its final state.
wait_job() { # jobid [timeout_s]
	local t=${2:-120} s=""
	for ((i = 0; i < t * 2; i++)); do
		s=$(job_field "$1" JobState)
		case "$s" in
		COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE) break ;;
		esac
		sleep 0.5
	done
	echo "$s"
}

wait_running() { # jobid [timeout_s]
	local t=${2:-60}
	for ((i = 0; i < t * 2; i++)); do
		[ "$(job_field "$1" JobState)" = RUNNING ] && return 0
		sleep 0.5
	done
	return 1
}

# Waits until the guest of the job is ready (vmenvctl list of the node,
# this host's by default).
wait_guest_ready() { # jobid [timeout_s] [node]
	local t=${2:-90} node=${3:-$NODE}
	for ((i = 0; i < t * 2; i++)); do
		vmenvctl --node "$node" list 2>/dev/null | awk -v j="$1" '$1 == j && $4 == "ready" {f=1} END {exit !f}' && return 0
		sleep 0.5
	done
	return 1
}

# Nothing of the job may remain on the node: no domain, no run dir.
no_leftovers() { # jobid
	local i
	for ((i = 0; i < 40; i++)); do
		if ! $VIRSH list --name | grep -qx "vmenv-$NODE-$1" &&
			[ ! -e "$RUN_DIR/jobs/$1" ]; then
			return 0
		fi
		sleep 0.25
	done
	echo "# leftovers of job $1:" >&2
	$VIRSH list --name | sed 's/^/#   /' >&2
	ls -la "$RUN_DIR/jobs/$1" 2>&1 | sed 's/^/#   /' >&2
	return 1
}

vmmd_up() { vmenvctl status >/dev/null 2>&1; }

# A batch script that counts to N-1, one a second, on stdout ("count i")
# and into a file it holds open in the working directory ("line i",
# counter-JOBID.log), then exits 3: across a checkpoint, a restore and a
# move, every count must come once and in order.
counter_script() { # file N
	cat >"$1" <<JOB
#!/bin/sh
exec 3>>"counter-\$SLURM_JOB_ID.log"
i=0
while [ \$i -lt $2 ]; do
	echo "count \$i"
	echo "line \$i" >&3
	i=\$((i + 1))
	sleep 1
done
exit 3
JOB
}

# Everything a job could leave on any node of the cluster, one line each
# (nothing: clean). The issue's list: libvirt domain, QEMU process, per-job
# directory, image lease, vmenv-9p process, checkpoint fragment, kept
# overlay; and each node's vmmd still answering.
leftovers_of() { # jobid
	local j=$1 n d
	$VIRSH list --all --name | grep -E "^vmenv-.*-$j\$" | sed 's/^/domain /'
	pgrep -af "qemu-system.*guest=vmenv-[^,]*-$j," | sed 's/^/qemu process /'
	for d in /run/vmenv/*/; do
		[ -e "$d/jobs/$j" ] && echo "job directory $d/jobs/$j"
		[ -e "$d/overlays/$j.qcow2" ] && echo "kept overlay $d/overlays/$j.qcow2"
	done
	find /var/cache/vmenv/leases -name "*.$j" 2>/dev/null | sed 's/^/image lease /'
	pgrep -af "vmenv-9p .*--state-out /run/vmenv/[^/]*/jobs/$j/" | sed 's/^/vmenv-9p /'
	# A checkpoint directory without its manifest is a fragment (a store
	# writes the manifest last).
	for d in /var/lib/vmenv/checkpoints/"$j"/*/; do
		[ -d "$d" ] && [ ! -e "$d/manifest.json" ] && echo "checkpoint fragment $d"
	done
	for n in $(sinfo -h -N -o %N | sort -u); do
		vmenvctl --node "$n" status >/dev/null 2>&1 || echo "vmmd of $n not answering"
	done
}

# Waits up to 30 s for leftovers_of to be empty; else prints them.
node_clean() { # jobid
	local left i
	for ((i = 0; i < 60; i++)); do
		left=$(leftovers_of "$1")
		[ -z "$left" ] && return 0
		sleep 0.5
	done
	printf '%s\n' "$left" | sed "s/^/#   leftover of job $1: /" >&2
	return 1
}

# Where a command ran. A job prints WHERE_CMD's line; ran_in_guest reads it.
# Only a guest has both: a kernel of its own (its boot_id differs from the
# host's, which every host process shares, containers included) and QEMU's
# SMBIOS (sys_vendor "QEMU"; vmmd sets no <sysinfo>). `uname -r` proves
# nothing: a Debian 12 host runs the same kernel package as the guest.
HOST_BOOT_ID=$(cat /proc/sys/kernel/random/boot_id)
# shellcheck disable=SC2016 # expanded in the job, not here
WHERE_CMD='echo "where: $(cat /proc/sys/kernel/random/boot_id) $(cat /sys/class/dmi/id/sys_vendor 2>/dev/null)"'
ran_in_guest() { # text holding the "where: " line
	local id vendor
	read -r _ id vendor < <(printf '%s\n' "$1" | grep -m1 '^where: ')
	if [ -n "${id:-}" ] && [ "$id" != "$HOST_BOOT_ID" ] && [ "${vendor:-}" = QEMU ]; then
		return 0
	fi
	printf '#   where: boot_id %q (host %s), sys_vendor %q\n' "${id:-}" "$HOST_BOOT_ID" "${vendor:-}"
	return 1
}
ran_on_host() { # text holding the "where: " line
	local id
	read -r _ id _ < <(printf '%s\n' "$1" | grep -m1 '^where: ')
	[ "${id:-}" = "$HOST_BOOT_ID" ]
}

# Node 1's vmmd re-reads its catalog and policies (SIGHUP); succeeds once
# vmenvctl status says $1 (within 5 s), else shows what it says.
reload() { # what vmenvctl status must then say
	kill -HUP "$(cat /run/vmenv-cluster/vmmd.pid)"
	for _ in $(seq 50); do
		vmenvctl status 2>/dev/null | grep -qF -- "$1" && return 0
		sleep 0.1
	done
	echo "# vmenvctl status never said: $1" >&2
	vmenvctl status | sed 's/^/#   /' >&2
	return 1
}
