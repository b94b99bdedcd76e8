# vmenvctl metrics: the node's numbers in Prometheus' text format. The
# format is checked line by line (and by Prometheus' promtool):
# every family has HELP and TYPE before its samples, names match
# ^[a-zA-Z_:][a-zA-Z0-9_:]*$, counters end in _total, values are numbers.
# One job started here raises vmenv_job_starts_total by 1 and leaves
# vmenv_guests_running at 0 once it ended. Anyone may read the numbers.
# Assumes no other VM job starts on this node meanwhile. Takes ~30 s.
. "$(dirname "$0")/lib.sh"
d=$(workdir "$U1" metrics)
cd "$d" || exit 1

# The value of a sample without labels other than node.
sample() { # text name
	printf '%s\n' "$1" | awk -v n="$2" '$1 ~ "^" n "\\{" {print $2; exit}'
}

# Exits 0 when the text is valid exposition format as vmenv writes it.
check_format() {
	printf '%s\n' "$1" | awk '
	function fam(s) { sub(/\{.*/, "", s); return s }
	/^# HELP / { if ($3 in help) bad = bad " dup-help:" $3; help[$3] = 1; next }
	/^# TYPE / { if (!($3 in help)) bad = bad " type-before-help:" $3
		     if ($4 !~ /^(counter|gauge|summary|histogram|untyped)$/) bad = bad " type:" $4
		     if ($4 == "counter" && $3 !~ /_total$/) bad = bad " counter-name:" $3
		     type[$3] = $4; next }
	/^#/ { next }
	/^$/ { next }
	{ name = fam($1)
	  if (name !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/) bad = bad " name:" name
	  base = name; sub(/_(sum|count|bucket)$/, "", base)
	  if (!(name in type) && !(base in type)) bad = bad " no-type:" name
	  if ($2 !~ /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/) bad = bad " value:" $0
	  if (NF != 2) bad = bad " fields:" $0
	  n++ }
	END { if (bad != "" || n == 0) { print "#  " bad; exit 1 } }'
}

before=$(as "$U1" vmenvctl metrics 2>&1)
check "an ordinary user may read the metrics" test -n "$(sample "$before" vmenv_job_starts_total)"
check "the text is valid exposition format" check_format "$before"
# Prometheus' own checker is the second judge (contrib/setup installs it).
check "promtool check metrics agrees" sh -c 'printf "%s\n" "$1" | promtool check metrics' _ "$before"
for m in vmenv_guests_running vmenv_job_starts_total vmenv_guest_prepare_seconds_sum \
	vmenv_guest_boot_seconds_count vmenv_checkpoint_seconds_count \
	vmenv_checkpoint_bytes_sum vmenv_image_cache_bytes vmenv_image_cache_hits_total \
	vmenv_image_cache_misses_total vmenv_vmmd_start_time_seconds; do
	check "$m is there" test -n "$(sample "$before" "$m")"
done
check_contains "failures by a fixed reason" "$before" \
	"vmenv_job_failures_total{node=\"$NODE\",reason=\"boot_timeout\"}"
check "no user or job in any label" test -z "$(printf '%s\n' "$before" | grep -E "$U1|uid=|job=")"

s0=$(sample "$before" vmenv_job_starts_total)
b0=$(sample "$before" vmenv_guest_boot_seconds_count)
j=$(as "$U1" sbatch --parsable -w "$NODE" --vm-env=tiny -o "$d/job.out" --wrap "true")
check_eq "the job completes" COMPLETED "$(wait_job "$j" 240)"
check "no leftovers of $j" no_leftovers "$j"
after=$(vmenvctl metrics 2>&1)
check_eq "vmenv_job_starts_total went up by 1" "$((s0 + 1))" "$(sample "$after" vmenv_job_starts_total)"
check_eq "vmenv_guests_running is back to 0" 0 "$(sample "$after" vmenv_guests_running)"
check_eq "one more boot time observed" "$((b0 + 1))" "$(sample "$after" vmenv_guest_boot_seconds_count)"
check "still valid exposition format" check_format "$after"
