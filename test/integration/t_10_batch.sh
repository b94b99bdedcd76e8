# sbatch --vm-env: output, exit code, working directory, identity; the
# #SBATCH directive and the environment variable; jobs without --vm-env.
. "$(dirname "$0")/lib.sh"
d=$(workdir "$U1" batch)
cd "$d"

cat >job.sh <<'JOB'
#!/bin/sh
echo out1
echo err1 >&2
printf 'out2 with  spaces\ttab\n'
echo err2 >&2
echo "uid=$(id -u) user=$(id -un) pwd=$(pwd)"
echo "where: $(cat /proc/sys/kernel/random/boot_id) $(cat /sys/class/dmi/id/sys_vendor 2>/dev/null)"
echo data >result.txt
exit 7
JOB
cat >directive.sh <<'JOB'
#!/bin/sh
#SBATCH --vm-env=tiny
echo "where: $(cat /proc/sys/kernel/random/boot_id) $(cat /sys/class/dmi/id/sys_vendor 2>/dev/null)"
JOB
cat >plain.sh <<'JOB'
#!/bin/sh
echo "where: $(cat /proc/sys/kernel/random/boot_id) $(cat /sys/class/dmi/id/sys_vendor 2>/dev/null)"
JOB
chown "$U1": ./*.sh

j_main=$(as "$U1" sbatch --parsable --vm-env=tiny -o "$d/main.out" job.sh)
j_split=$(as "$U1" sbatch --parsable --vm-env=tiny -o "$d/split.out" -e "$d/split.err" job.sh)
j_dir=$(as "$U1" sbatch --parsable -o "$d/directive.out" directive.sh)
j_env=$(SBATCH_VM_ENV=tiny runuser -u "$U1" --preserve-environment -- sbatch --parsable -o "$d/env.out" plain.sh)
j_plain=$(as "$U1" sbatch --parsable -o "$d/plain.out" plain.sh)

check_eq "batch job with exit 7 ends FAILED" FAILED "$(wait_job "$j_main" 240)"
check_eq "Slurm's exit code is the script's" "7:0" "$(job_field "$j_main" ExitCode)"
expected=$(printf 'out1\nerr1\nout2 with  spaces\ttab\nerr2\nuid=%s user=%s pwd=%s' \
	"$(id -u "$U1")" "$U1" "$d")
check_eq "stdout+stderr land in slurm output byte for byte, in order" "$expected" "$(sed '$d' main.out)"
check "the script ran in the guest (its own kernel, QEMU's DMI)" ran_in_guest "$(tail -1 main.out)"
check_eq "a file the job wrote is in the submit dir" "data" "$(cat result.txt 2>/dev/null)"
check_eq "... and belongs to the job's user on the host" "$U1" "$(stat -c %U result.txt 2>/dev/null)"

wait_job "$j_split" 240 >/dev/null
check_eq "-o gets stdout only" "$(printf 'out1\nout2 with  spaces\ttab\nuid=%s user=%s pwd=%s' \
	"$(id -u "$U1")" "$U1" "$d")" "$(sed '$d' split.out)"
check "... the last line from the guest" ran_in_guest "$(tail -1 split.out)"
check_eq "-e gets stderr only" "$(printf 'err1\nerr2')" "$(cat split.err)"

check_eq "#SBATCH --vm-env job completes" COMPLETED "$(wait_job "$j_dir" 240)"
check "#SBATCH --vm-env runs in the guest" ran_in_guest "$(cat directive.out)"
check_eq "SBATCH_VM_ENV job completes" COMPLETED "$(wait_job "$j_env" 240)"
check "SBATCH_VM_ENV runs in the guest" ran_in_guest "$(cat env.out)"

check_eq "a job without --vm-env completes" COMPLETED "$(wait_job "$j_plain" 60)"
check "a job without --vm-env runs on the host (the host's boot_id)" ran_on_host "$(cat plain.out)"

for j in "$j_main" "$j_split" "$j_dir" "$j_env"; do
	check "job $j left no guest or state behind" no_leftovers "$j"
done
cd / && rm -rf "$d"
