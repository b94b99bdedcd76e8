# sbatch --vm-env=debian12: a python job and an MPI job run in the Debian 12
# guest (images/debian12), as the user, in the submit directory.
# Skipped unless the node's catalog has debian12 (contrib/setup debian12).
. "$(dirname "$0")/lib.sh"
CATALOG=${VMENV_CATALOG:-/etc/vmenv/catalog.json}
if ! grep -q '"name": *"debian12"' "$CATALOG" 2>/dev/null; then
	skip "debian12 is not in $CATALOG (build it: contrib/setup debian12)"
	exit 0
fi
d=$(workdir "$U1" debian12)
cd "$d"

cat >py.sh <<'JOB'
#!/bin/bash
. /etc/os-release
echo "os=$ID-$VERSION_ID"
python3 - <<'PY'
import os, sys
print("py=%d.%d" % sys.version_info[:2])
print("answer=%d" % (6 * 7))
print("uid=%d cwd=%s" % (os.getuid(), os.getcwd()))
open("py-result.txt", "w").write("from python\n")
PY
exit 3
JOB
cat >mpi.sh <<'JOB'
#!/bin/bash
# Each rank writes its line in one write(2): Open MPI forwards the ranks'
# output as it reads it, so pieces of lines of two ranks may interleave.
mpirun --oversubscribe -np 2 python3 -c '
import sys
from mpi4py import MPI
c = MPI.COMM_WORLD
s = c.allreduce(c.Get_rank() + 1)
sys.stdout.write("rank %d of %d sum %d\n" % (c.Get_rank(), c.Get_size(), s))
sys.stdout.flush()' | sort
JOB
chown "$U1": ./*.sh

j_py=$(as "$U1" sbatch --parsable --vm-env=debian12 -o "$d/py.out" py.sh)
j_mpi=$(as "$U1" sbatch --parsable --vm-env=debian12 -o "$d/mpi.out" mpi.sh)

check_eq "python job with exit 3 ends FAILED" FAILED "$(wait_job "$j_py" 400)"
check_eq "Slurm's exit code is the script's" "3:0" "$(job_field "$j_py" ExitCode)"
check_eq "the job ran in Debian 12 with python3, as the user, in the submit dir" \
	"$(printf 'os=debian-12\npy=3.11\nanswer=42\nuid=%s cwd=%s' "$(id -u "$U1")" "$d")" \
	"$(cat py.out)"
check_eq "a file python wrote is in the submit dir" "from python" "$(cat py-result.txt 2>/dev/null)"
check_eq "... and belongs to the user" "$U1" "$(stat -c %U py-result.txt 2>/dev/null)"

check_eq "MPI job completes" COMPLETED "$(wait_job "$j_mpi" 400)"
check_eq "mpirun runs 2 mpi4py ranks in the guest" \
	"$(printf 'rank 0 of 2 sum 3\nrank 1 of 2 sum 3')" "$(cat mpi.out)"

for j in "$j_py" "$j_mpi"; do
	check "job $j left no guest or state behind" no_leftovers "$j"
done
cd / && rm -rf "$d"
