# Warm start through the real cluster (issue 19, docs/warmstart.md): a job
# that asks (--vm-warm-start) and finds no template boots, and once its
# guest is up the node makes the template of its image and shape, holding
# nothing of that job; the next jobs of that shape restore it and become
# themselves (user, working directory, hostname), each with its own random
# state (boot_id, /dev/urandom, the kernel's UUIDs: the agent reseeds the
# kernel's generator with the host's bytes); vmenvctl list says how each
# guest started; a damaged template makes the job boot and is made again;
# nothing is left behind.
. "$(dirname "$0")/lib.sh"
VMMD_CONF=${VMMD_CONF:-/etc/vmenv/vmmd.conf}
VMMD=$(command -v vmmd || echo /usr/local/sbin/vmmd)
conf() { "$VMMD" --config "$VMMD_CONF" --check-config 2>/dev/null | awk -v k="$1" '$1 == k {print $3}'; }
CACHE=$(conf image_cache)
TDIR=$CACHE/templates
if [ "$(conf warm_start)" != yes ]; then
	skip "warm_start is not yes in $VMMD_CONF"
	exit 0
fi

d=$(workdir "$U1" warm)
cd "$d" || exit 1
# What the job shows of itself: where it runs, who, and its random state.
cat >show.sh <<JOB
#!/bin/sh
$WHERE_CMD
echo "boot_id: \$(cat /proc/sys/kernel/random/boot_id)"
echo "urandom: \$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
echo "uuid: \$(cat /proc/sys/kernel/random/uuid)"
echo "user: \$(id -un) in \$(pwd) on \$(hostname)"
echo "\$SLURM_JOB_ID" >"mark-\$SLURM_JOB_ID"
sleep \${1:-0}
JOB
chmod 755 show.sh
chown "$U1:" show.sh

# Runs show.sh as batch() does and waits for its end: sets J (its id), S
# (how its guest started) and O (its output).
batch_done() { # extra-options sleep
	J=$(batch "$1" "$2")
	wait_guest_ready "$J" 120
	S=$(started_of "$J")
	wait_job "$J" 120 >/dev/null
	O=$(cat "out-$J" 2>/dev/null)
}
# The templates made (not one being made: .make-NODE/save).
templates() { find "$TDIR" -mindepth 2 -maxdepth 2 -path "$TDIR/[0-9a-f]*/save" 2>/dev/null; }
started_of() { # jobid [node]: the "started:" of its vmenvctl list entry
	vmenvctl --node "${2:-$NODE}" list | awk -v j="$1" '$1 == j {f=1; next} f && /started:/ {sub(/^ *started: /, ""); print; exit} f && /^[0-9]/ {exit}'
}
field() { printf '%s\n' "$1" | awk -v k="$2:" '$1 == k {print $2; exit}'; }
# Two jobs' outputs of show.sh: their random state differs.
check_differ() { # what output-a output-b
	local k va vb
	for k in boot_id urandom uuid; do
		va=$(field "$2" "$k")
		vb=$(field "$3" "$k")
		check "$1 differ in $k ($va, $vb)" \
			sh -c "[ -n '$va' ] && [ -n '$vb' ] && [ '$va' != '$vb' ]"
	done
}
# Runs show.sh in a batch job on node 1 (sleeping $2 s), waits for its
# end; prints its id.
batch() { # extra-options sleep
	local id
	# shellcheck disable=SC2086 # the options are words
	id=$(as "$U1" sbatch --parsable -w "$NODE" -t 5 --vm-env=tiny $1 -o "out-%j" ./show.sh "$2") || return 1
	echo "$id"
}

# The template store starts empty, so the first job finds none.
rm -rf "${TDIR:?}"/[0-9a-f]*

# 1. The first job: no template, it boots; the template is made after.
tok=WARMSECRET$(date +%s%N)
cat >secret.sh <<JOB
#!/bin/sh
# A secret in the guest's memory (tmpfs) while the template is made.
echo "$tok" >/dev/shm/secret
$WHERE_CMD
sleep 20
JOB
chmod 755 secret.sh
chown "$U1:" secret.sh
j1=$(as "$U1" sbatch --parsable -w "$NODE" -t 5 --vm-env=tiny --vm-warm-start -o "out-%j" ./secret.sh)
wait_guest_ready "$j1" 120
# An attack: the job's own copies of its boot files are its user's while
# the guest runs (libvirt's relabelling). The user empties them before the
# template is made: a template booted from them would be the user's code in
# every other user's warm guest, or (as here) would never boot.
as "$U1" sh -c ": >'$RUN_DIR/jobs/$j1/boot/initrd.img'" 2>/dev/null
check "the user could empty the job's own boot copy (the attack is real)" \
	test ! -s "$RUN_DIR/jobs/$j1/boot/initrd.img"
s1=$(started_of "$j1")
check_contains "a job that finds no template boots: vmenvctl list says so" "$s1" "booted: no template yet"
for _ in $(seq 120); do [ -n "$(templates)" ] && break; sleep 1; done
t=$(templates | head -1)
check "the node made a template of tiny's shape once the guest was up (from the cache's boot files, not the user's emptied copy)" test -n "$t"
check_eq "... a file of root's only (0600)" "0 600" "$(stat -c '%u %a' "$t" 2>/dev/null)"
check_eq "... in a directory of root's only (0700)" "0 700" "$(stat -c '%u %a' "$(dirname "$t")" 2>/dev/null)"
check "... holding nothing of the job that was running (its secret is not in it)" \
	sh -c "! grep -aq '$tok' '$t'"
check "... and its guest is gone (no template domain runs)" \
	sh -c "! $VIRSH list --name | grep -q '^vmenv-tmpl-'"
# Its agent made the free memory zero before the save (the stream skips
# zero pages: a smaller template, a faster restore for every job).
zeroed=$(grep -ao 'template: [0-9]* MiB of free memory zeroed' "$(dirname "$t")/console.log" 2>/dev/null)
zeroed_mib=$(grep -o '[0-9]\+' <<<"$zeroed")
check "... its free memory was zeroed before the save (${zeroed:-no such line in its console log})" \
	test "${zeroed_mib:-0}" -gt 0
wait_job "$j1" 120 >/dev/null
o1=$(cat "out-$j1" 2>/dev/null)
check "the first job ran in a guest" ran_in_guest "$o1"

# 2. Two jobs from the template, at once.
ja=$(batch --vm-warm-start 8)
jb=$(batch --vm-warm-start 8)
wait_guest_ready "$ja" 120
sa=$(started_of "$ja")
# Its shape (vmenvctl list's VCPUS and MEM), for the template made ahead
# in case 7.
cpua=$(vmenvctl list | awk -v j="$ja" '$1 == j {print $5; exit}')
mema=$(vmenvctl list | awk -v j="$ja" '$1 == j {print $6; exit}')
wait_guest_ready "$jb" 120
sb=$(started_of "$jb")
wait_job "$ja" 120 >/dev/null
wait_job "$jb" 120 >/dev/null
oa=$(cat "out-$ja" 2>/dev/null)
ob=$(cat "out-$jb" 2>/dev/null)
check_eq "job $ja started from the template (vmenvctl list)" "warm" "$sa"
check_eq "job $jb started from the template (vmenvctl list)" "warm" "$sb"
check "job $ja ran in a guest" ran_in_guest "$oa"
check "job $jb ran in a guest" ran_in_guest "$ob"
check_contains "job $ja is its user's, in its working directory, on its node" "$oa" "user: $U1 in $d on $NODE"
check_eq "its file on the host is the user's" "$U1 $ja" "$(stat -c %U "mark-$ja" 2>/dev/null) $(cat "mark-$ja" 2>/dev/null)"
check_differ "two guests from one template" "$oa" "$ob"
check "... and neither guest's boot_id is the host's or the first job's" \
	sh -c "[ '$(field "$oa" boot_id)' != '$HOST_BOOT_ID' ] && [ '$(field "$oa" boot_id)' != '$(field "$o1" boot_id)' ]"
ca=$(as "$U1" vmenvctl console "$ja" 2>&1)
check_contains "the guest's agent reseeded its kernel's generator with the host's bytes" "$ca" "random generator reseeded with 32 bytes"

# 3. A job that does not ask boots, and says so.
batch_done "" 5
jc=$J sc=$S
check_eq "a job without --vm-warm-start boots (vmenvctl list)" "booted" "$sc"

# 4. A damaged template: the job boots all the same, the template is made
# again from its guest.
t=$(templates | head -1)
printf 'LibvirtQemudPart' | dd of="$t" conv=notrunc status=none
batch_done --vm-warm-start 5
jd=$J sd=$S od=$O
check_eq "a damaged template: the job boots (vmenvctl list)" "booted: the template's restore failed" "$sd"
check "... and runs in its guest" ran_in_guest "$od"
check_eq "... and ends COMPLETED" COMPLETED "$(job_field "$jd" JobState)"
for _ in $(seq 120); do
	t=$(templates | head -1)
	[ -n "$t" ] && head -c 16 "$t" | grep -q LibvirtQemudSave && break
	sleep 1
done
check "... the template was made again" sh -c "head -c 16 '$t' | grep -q LibvirtQemudSave"

# 5. A checkpointing job started warm is saved on demand, requeued and
# restored like any other: its count goes on, every line once.
ntmpl=$(templates | wc -l)
jk0=$(as "$U1" sbatch --parsable -w "$NODE" -t 10 --vm-env=tiny --vm-checkpoint --vm-warm-start -o "out-%j" ./show.sh 1)
wait_job "$jk0" 120 >/dev/null
for _ in $(seq 120); do [ "$(templates | wc -l)" -gt "$ntmpl" ] && break; sleep 1; done
check "a checkpointing job's shape (its files port) gets a template of its own" \
	test "$(templates | wc -l)" -gt "$ntmpl"
counter_script ck.sh 40
chmod 755 ck.sh
chown "$U1:" ck.sh
jk=$(as "$U1" sbatch --parsable -w "$NODE" -t 10 --vm-env=tiny --vm-checkpoint --vm-warm-start -o "out-%j" ./ck.sh)
wait_guest_ready "$jk" 120
check_eq "the checkpointing job started from its template" "warm" "$(started_of "$jk")"
sleep 5
out=$(vmenvctl checkpoint "$jk" 2>&1)
check_contains "vmenvctl checkpoint saves the warm-started guest and the job goes on" "$out" "checkpointed; the job goes on"
scontrol requeue "$jk"
st=$(wait_job "$jk" 400)
ok=$(cat "out-$jk" 2>/dev/null)
check_eq "requeued, restored from its checkpoint, it counts to the end (exit 3)" "FAILED 3:0" "$st $(job_field "$jk" ExitCode)"
check_eq "... every count once, in order" "$(seq 0 39 | sed 's/^/count /')" "$(printf '%s\n' "$ok" | grep '^count ')"

# 6. Mounts in a warm-started guest (issue 20): the policy's enforced
# read-only tree and the user's writable mount, as in a booted guest.
VMMD_BIN=$(command -v vmmd)
POLDIR=$("$VMMD_BIN" --check-config --config /etc/vmenv/vmmd.conf 2>/dev/null | sed -n 's/^policy_dir = //p')
T=/srv/vmenv-t65
rm -rf "$T"
mkdir -p "$T/apps" "$T/u1"
echo "apps-warm" >"$T/apps/VERSION"
chmod -R a+rX "$T"
chown "$U1:" "$T/u1"
cat >"$POLDIR/65-warm-mounts.json" <<JSON
{
  "name": "t65-warm-mounts",
  "description": "integration test t_65_warm",
  "match": {"partition": "debug"},
  "mounts": {"allow": ["$T/u1", "$T/apps:ro"], "enforce": ["$T/apps:/apps:ro"]}
}
JSON
chmod 0644 "$POLDIR/65-warm-mounts.json"
npol=$(find "$POLDIR" -maxdepth 1 -name '*.json' | wc -l)
check "vmmd loads the mount policy" reload "policies:    $npol from $POLDIR"
cat >mnt.sh <<'JOB'
#!/bin/sh
cat /apps/VERSION
echo "from-warm" >"/u1/w-$SLURM_JOB_ID"
if echo x >/apps/new 2>/dev/null; then echo WROTE; else echo write-refused; fi
sleep 3
JOB
chmod 755 mnt.sh
chown "$U1:" mnt.sh
ntmpl=$(templates | wc -l)
jm0=$(as "$U1" sbatch --parsable -w "$NODE" -t 5 --vm-env=tiny --vm-warm-start --vm-mount="$T/u1:/u1" -o "out-%j" ./mnt.sh)
wait_job "$jm0" 120 >/dev/null
for _ in $(seq 120); do [ "$(templates | wc -l)" -gt "$ntmpl" ] && break; sleep 1; done
jm=$(as "$U1" sbatch --parsable -w "$NODE" -t 5 --vm-env=tiny --vm-warm-start --vm-mount="$T/u1:/u1" -o "out-%j" ./mnt.sh)
wait_guest_ready "$jm" 120
sm=$(started_of "$jm")
wait_job "$jm" 120 >/dev/null
om=$(cat "out-$jm" 2>/dev/null)
check_eq "a job with mounts started from its shape's template" "warm" "$sm"
check_contains "... the enforced /apps is in its guest" "$om" "apps-warm"
check_contains "... and not writable" "$om" "write-refused"
check "... nothing appeared in the host's tree" test ! -e "$T/apps/new"
check_eq "... its own mount is writable, the file the user's on the host" "$U1 from-warm" \
	"$(stat -c %U "$T/u1/w-$jm" 2>/dev/null) $(cat "$T/u1/w-$jm" 2>/dev/null)"
rm -f "$POLDIR/65-warm-mounts.json"
check "vmmd drops the mount policy" reload "policies:    $((npol - 1)) from $POLDIR"
rm -rf "$T"

# 7. A template made ahead of the jobs (vmenvctl image warm, root): the
# first job of that shape starts warm; no job boots to make it.
rm -rf "${TDIR:?}"/[0-9a-f]*
out=$(as "$U1" perl "$(dirname "$0")/poke.pl" "$SOCK" 'json:{"op":"warm","image":"tiny","vcpus":1,"mem":0}')
check_contains "the attack: a user asks vmmd itself for a template; it refuses (only root)" "$out" "only root may make templates"
check "... and nothing was made" test -z "$(templates)"
out=$(vmenvctl image warm tiny --cpus "$cpua" --mem "$mema" 2>&1)
v=vCPU
[ "$cpua" = 1 ] || v=vCPUs
check_contains "vmenvctl image warm makes tiny's template for job $ja's shape ($cpua $v, $mema MiB)" \
	"$out" "($cpua $v, $mema MiB, virtio-9p files): made, "
check_eq "... one template, a file of root's only" "1 0 600" "$(templates | wc -l) $(stat -c '%u %a' "$(templates | head -1)" 2>/dev/null)"
out=$(vmenvctl image warm tiny --cpus "$cpua" --mem "$mema" 2>&1)
check_contains "... asked again, it is already made" "$out" "): already made, "
batch_done --vm-warm-start 1
jw=$J sw=$S ow=$O
check_eq "the first job of that shape starts from it (vmenvctl list)" "warm" "$sw"
check "... and runs in its guest" ran_in_guest "$ow"
check_eq "... no other template was made" 1 "$(templates | wc -l)"
out=$(vmenvctl image warm tiny --mem 99999999 2>&1)
check_contains "a shape beyond the node's memory is refused with the value" "$out" "99999999 MiB exceed node $NODE's memory"
out=$(vmenvctl image warm no-such-image 2>&1)
check_contains "an unknown image is refused, naming it" "$out" "'no-such-image' is not in the catalog"
check_eq "... nothing was made for them" 1 "$(templates | wc -l)"

# 8. A multi-node job starts warm: each node restores the template of its
# guest's shape (a one-node guest's: the NIC is not in it) and plugs the
# job's own NIC; the guests reach each other on the job's network; a
# checkpoint on demand saves and restores both guests (the NIC where the
# restore expects it) and the job goes on, its network too.
set -- $(sinfo -h -p multi -N -o %N | sort -u)
MN="$1,$2"
cat >mn.sh <<'JOB'
#!/bin/sh
for p in $(cat "$VMENV_NODEFILE"); do
	vmenv-rsh "$p" 'echo "rsh to $(hostname) as $(id -un)"' 2>&1
done
i=0
while [ $i -lt ${1:-0} ]; do echo "count $i"; i=$((i + 1)); sleep 1; done
for p in $(cat "$VMENV_NODEFILE"); do
	vmenv-rsh "$p" 'echo "after: rsh to $(hostname)"' 2>&1
done
exit 3
JOB
chmod 755 mn.sh
chown "$U1:" mn.sh
mnbatch() { # args of mn.sh
	as "$U1" sbatch --parsable -p multi -N2 -w "$MN" -t 10 --vm-env=tiny --vm-warm-start \
		--vm-checkpoint -o "out-%j" ./mn.sh "$@"
}
# The first makes its shape's templates if none is there yet.
jn0=$(mnbatch 0)
wait_job "$jn0" 120 >/dev/null
for _ in $(seq 120); do ! ls -d "$TDIR"/.make-* >/dev/null 2>&1 && break; sleep 1; done
# The nodes' vmmds share this machine's store: each claims a key before
# making its template (here their guests' shapes differ: test_warm checks
# that a claimed key is left to its maker), and gives the claim back.
check "the makers gave their claims back" sh -c "! ls -a '$TDIR' | grep -q '^\.claim-'"
jn=$(mnbatch 20)
wait_guest_ready "$jn" 120 "$1"
wait_guest_ready "$jn" 120 "$2"
check_eq "a 2-node job's guests both start from the template (vmenvctl list on $1 and $2)" \
	"warm warm" "$(started_of "$jn" "$1") $(started_of "$jn" "$2")"
for _ in $(seq 60); do grep -q "^count 5" "out-$jn" 2>/dev/null && break; sleep 0.5; done
out=$(vmenvctl --node "$1" checkpoint "$jn" 2>&1)
check_contains "vmenvctl checkpoint saves both warm-started guests and the job goes on" "$out" "checkpointed; the job goes on"
st=$(wait_job "$jn" 180)
on=$(cat "out-$jn" 2>/dev/null)
check_eq "it ends with its script's exit code" "FAILED 3:0" "$st $(job_field "$jn" ExitCode)"
for n in "$1" "$2"; do
	check_contains "the job's network reached $n's guest from the first (the plugged NIC)" "$on" "rsh to $n as $U1"
	check_contains "... and again after the checkpoint's restore" "$on" "after: rsh to $n"
done
check_eq "... every count once, in order, across the checkpoint" \
	"$(seq 0 19 | sed 's/^/count /')" "$(printf '%s\n' "$on" | grep '^count ')"
set --

# 9. An image with a disk (debian12: its kernel, initramfs and root disk)
# starts warm: the template keeps the overlay its guest booted on, and a
# job's guest is restored over a copy of it, its own. The guest is then
# the job's as a booted one is: its user and directory, its own random
# state, its own root disk (what one job wrote there is not in the next
# one's), and an on-demand checkpoint saves and restores it with its disk.
debjobs=()
if grep -q '"name": *"debian12"' /etc/vmenv/catalog.json 2>/dev/null; then
	cat >deb.sh <<'JOB'
#!/bin/bash
echo "os: $(. /etc/os-release && echo "$ID-$VERSION_ID")"
echo "boot_id: $(cat /proc/sys/kernel/random/boot_id)"
echo "urandom: $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
echo "uuid: $(cat /proc/sys/kernel/random/uuid)"
echo "user: $(id -un) in $(pwd) on $(hostname)"
echo "before: $(cat /var/tmp/vmenv-mark 2>/dev/null || echo none)"
echo "$SLURM_JOB_ID" >/var/tmp/vmenv-mark
python3 -c 'print("py: %d" % (6 * 7))'
# A device plugged after the restore appears in the guest when its ACPI
# event is handled, shortly after; then it must get its driver.
for _ in $(seq 50); do grep -q . /sys/class/misc/hw_random/rng_available 2>/dev/null && break; sleep 0.2; done
echo "rng: $(cat /sys/class/misc/hw_random/rng_available 2>/dev/null || echo none)"
i=0
while [ $i -lt "${1:-0}" ]; do echo "count $i"; i=$((i + 1)); sleep 1; done
echo "after: $(cat /var/tmp/vmenv-mark)"
JOB
	chmod 755 deb.sh
	chown "$U1:" deb.sh
	debjob() { # count [options]
		# shellcheck disable=SC2086 # the options are words
		as "$U1" sbatch --parsable -w "$NODE" -t 10 --vm-env=debian12 --vm-warm-start $2 \
			-o "out-%j" ./deb.sh "$1"
	}
	disks() { find "$TDIR" -mindepth 2 -maxdepth 2 -path "$TDIR/[0-9a-f]*/disk.qcow2" 2>/dev/null; }
	jd0=$(debjob 0)
	wait_guest_ready "$jd0" 200
	check_contains "the first debian12 job finds no template and boots" "$(started_of "$jd0")" "booted: no template yet"
	wait_job "$jd0" 200 >/dev/null
	for _ in $(seq 200); do [ -n "$(disks)" ] && [ ! -d "$TDIR/.make-$NODE" ] && break; sleep 1; done
	td=$(disks | head -1)
	check "... then the node made debian12's template, with the overlay its guest booted on" test -n "$td"
	check_eq "... root's only (0600)" "0 600" "$(stat -c '%u %a' "$td" 2>/dev/null)"
	base=$(qemu-img info --output=json "$td" 2>/dev/null | sed -n 's/.*"full-backing-filename": "\(.*\)".*/\1/p')
	check "... over the cached base ($base), root's and read-only for the rest" \
		sh -c "[ \"\$(stat -c '%u %a' '$base' 2>/dev/null)\" = '0 644' ] && case '$base' in '$CACHE'/*) true ;; *) false ;; esac"
	jd1=$(debjob 3)
	jd2=$(debjob 3)
	wait_guest_ready "$jd1" 200
	cpud=$(vmenvctl list | awk -v j="$jd1" '$1 == j {print $5; exit}')
	memd=$(vmenvctl list | awk -v j="$jd1" '$1 == j {print $6; exit}')
	wait_guest_ready "$jd2" 200
	s1=$(started_of "$jd1") s2=$(started_of "$jd2")
	wait_job "$jd1" 200 >/dev/null
	wait_job "$jd2" 200 >/dev/null
	o1=$(cat "out-$jd1" 2>/dev/null) o2=$(cat "out-$jd2" 2>/dev/null)
	check_eq "two debian12 jobs start from the template (vmenvctl list)" "warm warm" "$s1 $s2"
	check_contains "job $jd1 ran in Debian 12 with python3" "$o1" "os: debian-12"
	check_contains "... python3 answered" "$o1" "py: 42"
	check_contains "... as its user, in its directory, on its node" "$o1" "user: $U1 in $d on $NODE"
	check_contains "job $jd2 ran too" "$o2" "user: $U1 in $d on $NODE"
	check_differ "two debian12 guests from one template" "$o1" "$o2"
	check_eq "each starts from the template's disk, not another job's (what each wrote to its root disk)" \
		"none none" "$(field "$o1" before) $(field "$o2" before)"
	# A checkpointing job's files are served (another port): its
	# template, made ahead for job $jd1's shape.
	out=$(vmenvctl image warm debian12 --cpus "$cpud" --mem "$memd" --checkpoint 2>&1)
	check_contains "vmenvctl image warm makes debian12's template for a checkpointing job of job $jd1's shape" \
		"$out" "MiB, served files): made, "
	jd3=$(debjob 20 --vm-checkpoint)
	wait_guest_ready "$jd3" 200
	s3=$(started_of "$jd3")
	for _ in $(seq 120); do grep -q "^count 5" "out-$jd3" 2>/dev/null && break; sleep 0.5; done
	out=$(vmenvctl checkpoint "$jd3" 2>&1)
	wait_job "$jd3" 200 >/dev/null
	o3=$(cat "out-$jd3" 2>/dev/null)
	check_eq "a checkpointing debian12 job starts warm too" "warm" "$s3"
	# The stand-in device of a checkpointing job (a virtio RNG) is plugged
	# after the restore: the agent loads its driver (the image has no
	# udev; its init loaded the drivers of the devices present at boot).
	check_contains "... the device plugged after its restore has its driver in the guest" "$o3" "rng: virtio_rng"
	check_contains "vmenvctl checkpoint saves it and the job goes on" "$out" "checkpointed; the job goes on"
	check_eq "... every count once, in order, across the checkpoint" \
		"$(seq 0 19 | sed 's/^/count /')" "$(printf '%s\n' "$o3" | grep '^count ')"
	check_eq "... and its root disk came back with it (what it wrote before)" "$jd3" "$(field "$o3" after)"
	debjobs=("$jd0" "$jd1" "$jd2" "$jd3")
fi

# 10. A template whose image is no longer the catalog's (a new version
# replaced it, or it left) is removed at the next reconcile, not kept
# until it ages out; the templates of the catalog's images stay. A copy of
# a made template, saying it booted from files no catalog lists, stands in
# for the old version's.
t=$(templates | head -1)
if [ -n "$t" ]; then
	old=$TDIR/$(printf '%064d' 0)
	rm -rf "$old"
	cp -a "$(dirname "$t")" "$old"
	printf 'kernel %064d initrd %064d' 1 2 >"$old/boot"
	for _ in $(seq 60); do [ -d "$old" ] || break; sleep 1; done
	check "a template whose image left the catalog is removed at the next reconcile" test ! -d "$old"
	check_contains "... and vmmd's log says why" "$(cat /var/log/vmenv-cluster/vmmd*.log | grep -a "template 000000000000 removed")" \
		"its image is no longer in the catalog"
	check "... the catalog's images' templates stay" test -f "$t"
	check_eq "... each says what it booted from (the catalog's digests)" "kernel" \
		"$(cut -d' ' -f1 "$(dirname "$t")/boot" 2>/dev/null)"
fi

# Nothing left: guests, job directories, the per-job save images.
for j in "$j1" "$ja" "$jb" "$jc" "$jd" "$jk0" "$jk" "$jm0" "$jm" "$jw" "$jn0" "$jn" "${debjobs[@]}"; do
	check "nothing of job $j is left on any node" node_clean "$j"
done
check "no per-job save image is left in $TDIR" sh -c "! ls -a '$TDIR' | grep -q '^\.job-'"
check "no template guest is left" sh -c "! $VIRSH list --name | grep -q '^vmenv-tmpl-'"
check "vmmd still answers" vmmd_up
