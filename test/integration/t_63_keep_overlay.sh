# --vm-keep-overlay through the real cluster (issue 20): a job that asks
# for it leaves its qcow2 overlay in the node's root-only store at its
# end; its owner lists it and gets it with vmenvctl (a qcow2 backed by the
# cached base, holding what the guest wrote on its disk); another user is
# refused; a job that did not ask leaves nothing; rm removes it and its
# lease on the base; after overlay_retention_s the sweep removes it.
#
# Needs a guest with a disk: debian12 (tiny boots from its initramfs and
# has no overlay). The sweep part needs a small overlay_retention_s in
# vmmd.conf (test/all sets 90); vmmd reads it at start only.
. "$(dirname "$0")/lib.sh"
CATALOG=${VMENV_CATALOG:-/etc/vmenv/catalog.json}
if ! grep -q '"name": *"debian12"' "$CATALOG" 2>/dev/null; then
	skip "debian12 is not in $CATALOG (a guest with a disk; build it: contrib/setup debian12)"
	exit 0
fi
VMMD_CONF=${VMMD_CONF:-/etc/vmenv/vmmd.conf}
VMMD=$(command -v vmmd || echo /usr/local/sbin/vmmd)
conf() { "$VMMD" --config "$VMMD_CONF" --check-config 2>/dev/null | awk -v k="$1" '$1 == k {print $3}'; }
RETENTION=$(conf overlay_retention_s)
RECONCILE=$(conf reconcile_interval_s)
CACHE=$(conf image_cache)
STORE=$RUN_DIR/overlays
if [ -z "$RETENTION" ]; then
	fail "vmmd --check-config shows no overlay_retention_s (a vmmd without kept overlays)"
	exit 1
fi

d=$(workdir "$U1" keepovl)
cd "$d" || exit 1
tok=$(date +%s%N)
# The marker is put together in the guest: its bytes are in no command
# line or script, only in what the guest writes.
cat >disk.sh <<JOB
#!/bin/bash
m=OVLMARK
printf '%s-%s-end\n' "\$m" "$tok" >/var/tmp/ovl-marker
sync
cat /var/tmp/ovl-marker
JOB
chmod 755 disk.sh
chown "$U1:" disk.sh
MARK="OVLMARK-$tok-end"

kept_list() { # user: that user's vmenvctl overlay list
	as "$1" vmenvctl overlay list 2>&1
}
listed() { # user jobid
	kept_list "$1" | awk -v j="$2" '$1 == j {f=1} END {exit !f}'
}
wait_kept() { # jobid: vmmd keeps the overlay when the job ends on the node
	for _ in $(seq 60); do
		[ -e "$STORE/$1.qcow2" ] && [ -e "$STORE/$1.rec" ] && return 0
		sleep 0.5
	done
	return 1
}

# Both at once: the one without the option runs while the kept one is
# looked at (the retention is short in the tests' vmmd.conf).
j=$(as "$U1" sbatch --parsable -w "$NODE" -t 10 --vm-env=debian12 --vm-keep-overlay \
	-o "$d/keep.out" disk.sh)
j2=$(as "$U1" sbatch --parsable -w "$NODE" -t 10 --vm-env=debian12 \
	-o "$d/nokeep.out" disk.sh)

check_eq "a job with --vm-keep-overlay completes" COMPLETED "$(wait_job "$j" 400)"
check_contains "... its guest wrote the marker to its disk" "$(cat keep.out)" "$MARK"
check "... the overlay is kept in $STORE" wait_kept "$j"
check "job $j left no guest or job directory" no_leftovers "$j"
check_eq "the store is root's 0700" "root 700" "$(stat -c '%U %a' "$STORE" 2>/dev/null)"
check_eq "... the kept overlay root's 0600" "root 600" "$(stat -c '%U %a' "$STORE/$j.qcow2" 2>/dev/null)"
check_eq "... and its record root's 0600" "root 600" "$(stat -c '%U %a' "$STORE/$j.rec" 2>/dev/null)"
check "the owner's vmenvctl overlay list shows it" listed "$U1" "$j"
check "root's vmenvctl overlay list shows it" sh -c "vmenvctl overlay list | awk -v j=$j '\$1 == j {f=1} END {exit !f}'"
base=$(kept_list "$U1" | awk -v j="$j" '$1 == j {print $NF}')
hex=$(basename "$base")
check_eq "... backed by the cached base image" "$CACHE/sha256/$hex" "$base"
check "... which exists" test -f "$base"
check "... and is leased for the kept overlay" test -e "$CACHE/leases/$hex/$NODE.$j.overlay"
check "... while the job's own lease is gone" test ! -e "$CACHE/leases/$hex/$NODE.$j"

# --- the owner gets it -------------------------------------------------------
out=$(as "$U1" sh -c "vmenvctl overlay get $j >'$d/got.qcow2'" 2>&1)
check "the owner's vmenvctl overlay get writes it" test -s "$d/got.qcow2"
check_eq "... owned by the owner (written by the client)" "$U1" "$(stat -c %U "$d/got.qcow2" 2>/dev/null)"
check_eq "... byte for byte the kept file" "$(sha256sum <"$STORE/$j.qcow2")" "$(sha256sum <"$d/got.qcow2")"
info=$(qemu-img info -U --output=json "$d/got.qcow2" 2>&1)
check_contains "... a qcow2 file" "$info" '"format": "qcow2"'
check_contains "... whose backing file is the cached base" "$info" "\"backing-filename\": \"$base\""
check "... qemu-img check finds it sound" qemu-img check -U -q "$d/got.qcow2"
# qcow2 stores a guest's data clusters as they are (no compression unless
# asked), so what the guest wrote is in the file itself...
check "... it holds the marker the guest wrote" grep -aqF "$MARK" "$d/got.qcow2"
# ... and in the disk it stands for, read through its backing file.
if qemu-img convert -U -O raw "$d/got.qcow2" "$d/got.raw" 2>/dev/null; then
	check "... as qemu-img reads the disk with its base" grep -aqF "$MARK" "$d/got.raw"
else
	fail "qemu-img convert of the kept overlay (with its base $base)"
fi
rm -f "$d/got.raw"
if command -v script >/dev/null; then
	out=$(as "$U1" script -qc "vmenvctl overlay get $j" /dev/null 2>&1 | tr -d '\r')
	check_contains "overlay get to a terminal is refused" "$out" "redirect it to a file"
fi

# --- another user ------------------------------------------------------------
out=$(as "$U2" sh -c "vmenvctl overlay get $j >/dev/null" 2>&1)
rc=$?
check "another user's overlay get fails" test "$rc" -ne 0
check_contains "... as if there were none" "$out" "job $j has no kept overlay of yours on node $NODE"
check "... and does not list it" sh -c "! runuser -u '$U2' -- vmenvctl overlay list | awk -v j=$j '\$1 == j {f=1} END {exit !f}'"
out=$(as "$U2" vmenvctl overlay rm "$j" 2>&1)
check_contains "... nor remove it" "$out" "job $j has no kept overlay of yours"
check "... it is still there" test -e "$STORE/$j.qcow2"
check "the user cannot enter the store" sh -c "! runuser -u '$U1' -- ls '$STORE' >/dev/null 2>&1"

# --- rm ----------------------------------------------------------------------
out=$(as "$U1" vmenvctl overlay rm "$j" 2>&1)
check_contains "the owner's overlay rm removes it" "$out" "job $j: kept overlay removed"
check "... the file and the record are gone" sh -c "test ! -e '$STORE/$j.qcow2' && test ! -e '$STORE/$j.rec'"
check "... and the lease on the base" test ! -e "$CACHE/leases/$hex/$NODE.$j.overlay"
check "... and it is no longer listed" sh -c "! vmenvctl overlay list | awk -v j=$j '\$1 == j {f=1} END {exit !f}'"

# --- a job without the option ----------------------------------------------------
check_eq "a job without --vm-keep-overlay completes" COMPLETED "$(wait_job "$j2" 400)"
check "job $j2 left nothing" no_leftovers "$j2"
check "... no kept overlay" test ! -e "$STORE/$j2.qcow2"
check "... no lease" sh -c "! ls '$CACHE'/leases/*/'$NODE.$j2.overlay' >/dev/null 2>&1"

# --- the sweep after overlay_retention_s -------------------------------------------
if [ "$RETENTION" -gt 300 ]; then
	skip "the sweep: overlay_retention_s is $RETENTION s (test/all sets 90 in vmmd.conf)"
else
	j3=$(as "$U1" sbatch --parsable -w "$NODE" -t 10 --vm-env=debian12 --vm-keep-overlay \
		-o "$d/sweep.out" disk.sh)
	check_eq "another kept job completes" COMPLETED "$(wait_job "$j3" 400)"
	check "... its overlay is kept" wait_kept "$j3"
	hex3=$(kept_list "$U1" | awk -v j="$j3" '$1 == j {print $NF}' | xargs -r basename)
	check "... with a lease" test -e "$CACHE/leases/$hex3/$NODE.$j3.overlay"
	gone=
	for _ in $(seq $((RETENTION + ${RECONCILE:-60} + 30))); do
		[ -e "$STORE/$j3.qcow2" ] || { gone=1; break; }
		sleep 1
	done
	check "after overlay_retention_s ($RETENTION s) and a reconcile it is swept" test -n "$gone"
	check "... its record too" test ! -e "$STORE/$j3.rec"
	check "... and its lease" test ! -e "$CACHE/leases/$hex3/$NODE.$j3.overlay"
	check "... and it is no longer listed" sh -c "! runuser -u '$U1' -- vmenvctl overlay list | awk -v j=$j3 '\$1 == j {f=1} END {exit !f}'"
fi

check "vmmd still up" vmmd_up
cd / && rm -rf "$d"
