/* SPDX-License-Identifier: MIT */
/* The user's --vm-* options: their table (the plugin registers exactly
 * these), and their parsing into a struct vmspec_request. */
#include "vmspec.h"

#include "cleanup.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const struct vmspec_option options[VMSPEC_NOPTS] = {
    [VMSPEC_OPT_ENV] = {"vm-env", "IMAGE[:VERSION]",
			"Run the job inside a virtual machine booted from "
			"IMAGE on every allocated node (an absolute path to "
			"your own image only where the site's policy allows "
			"it).",
			false},
    [VMSPEC_OPT_CHECKPOINT] = {"vm-checkpoint", "yes|no",
			       "Save the guest before the time limit so the "
			       "job can continue later.",
			       true},
    [VMSPEC_OPT_CHECKPOINT_LEAD] = {"vm-checkpoint-lead", "DURATION",
				    "How long before the time limit the "
				    "guest is saved: seconds, or a number "
				    "with s, m, h or d (10m).",
				    false},
    [VMSPEC_OPT_CHECKPOINT_DIR] = {"vm-checkpoint-dir", "PATH",
				   "Where the guest is saved (the site's "
				   "policy says which directories may be "
				   "used).",
				   false},
    [VMSPEC_OPT_REQUEUE] = {"vm-requeue", "yes|no",
			    "Requeue the job after its guest was saved, to "
			    "continue from the checkpoint.",
			    true},
    [VMSPEC_OPT_CHECKPOINT_KEEP] = {"vm-checkpoint-keep", "yes|no",
				    "Keep the job's newest checkpoint after "
				    "it was restored and after the job ended, "
				    "for a later --vm-restore (up to the "
				    "site's retention time).",
				    true},
    [VMSPEC_OPT_RESTORE] = {"vm-restore", "JOBID",
			    "Start from the kept checkpoint of an earlier "
			    "job of yours instead of booting: its guest goes "
			    "on in this job.",
			    false},
    [VMSPEC_OPT_HUGEPAGES] = {"vm-hugepages", "none|2M|1G",
			      "Back the guest's memory with preallocated huge "
			      "pages of this size.",
			      false},
    [VMSPEC_OPT_MEM_HEADROOM] = {"vm-mem-headroom", "PCT%|MIB[M|G][,...]",
				 "Part of the job's memory left to QEMU "
				 "itself: a percentage, an amount, or both "
				 "(the larger wins).",
				 false},
    [VMSPEC_OPT_IB] = {"vm-ib", "N",
		       "Number of InfiniBand virtual functions passed into "
		       "the guest.",
		       false},
    [VMSPEC_OPT_GPUS] = {"vm-gpus", "yes|no",
			 "Pass the GPUs Slurm allocated to the job into the "
			 "guest (default yes).",
			 true},
    [VMSPEC_OPT_MOUNT] = {"vm-mount", "SRC:DST[:ro][,...]|none",
			  "Show host directories in the guest (at DST, "
			  "read-only with :ro), with your rights on the "
			  "host; the site's policy says which ones may be "
			  "mounted.",
			  false},
    [VMSPEC_OPT_KEEP_OVERLAY] = {"vm-keep-overlay", "yes|no",
				 "Keep the guest's disk overlay after the job "
				 "ends.",
				 true},
    [VMSPEC_OPT_CPU_MODEL] = {"vm-cpu-model", "MODEL",
			      "Guest CPU: host-passthrough, host-model or a "
			      "QEMU CPU model name.",
			      false},
    [VMSPEC_OPT_EMULATOR_THREADS] = {"vm-emulator-threads", "job|housekeeping",
				     "Where QEMU's own threads run: on the "
				     "job's cores or the node's housekeeping "
				     "cores.",
				     false},
    [VMSPEC_OPT_CHECKPOINT_FILES] = {"vm-checkpoint-files", "served|9p",
				     "How a checkpointing job's working "
				     "directory reaches the guest: served "
				     "(open files survive a checkpoint) or 9p "
				     "(faster; the job must hold no file "
				     "there when it is saved).",
				     false},
    [VMSPEC_OPT_WARM_START] = {"vm-warm-start", "yes|no",
			       "Start the guest from a pre-booted template of "
			       "its image and shape where the node has one "
			       "(made on first use) instead of booting it.",
			       true},
};

/* The field each option sets (headroom sets two: see parse_headroom). */
static const enum vmspec_field option_field[VMSPEC_NOPTS] = {
    [VMSPEC_OPT_ENV] = VMSPEC_IMAGE,
    [VMSPEC_OPT_CHECKPOINT] = VMSPEC_CHECKPOINT,
    [VMSPEC_OPT_CHECKPOINT_LEAD] = VMSPEC_CHECKPOINT_LEAD_S,
    [VMSPEC_OPT_CHECKPOINT_DIR] = VMSPEC_CHECKPOINT_DIR,
    [VMSPEC_OPT_REQUEUE] = VMSPEC_REQUEUE,
    [VMSPEC_OPT_CHECKPOINT_KEEP] = VMSPEC_CHECKPOINT_KEEP,
    [VMSPEC_OPT_RESTORE] = VMSPEC_RESTORE_FROM,
    [VMSPEC_OPT_HUGEPAGES] = VMSPEC_HUGEPAGES,
    [VMSPEC_OPT_MEM_HEADROOM] = VMSPEC_MEM_HEADROOM_PCT,
    [VMSPEC_OPT_IB] = VMSPEC_IB_VFS,
    [VMSPEC_OPT_GPUS] = VMSPEC_GPUS,
    [VMSPEC_OPT_MOUNT] = VMSPEC_MOUNTS,
    [VMSPEC_OPT_KEEP_OVERLAY] = VMSPEC_KEEP_OVERLAY,
    [VMSPEC_OPT_CPU_MODEL] = VMSPEC_CPU_MODEL,
    [VMSPEC_OPT_EMULATOR_THREADS] = VMSPEC_EMULATOR_THREADS,
    [VMSPEC_OPT_CHECKPOINT_FILES] = VMSPEC_CHECKPOINT_FILES,
    [VMSPEC_OPT_WARM_START] = VMSPEC_WARM_START,
};

const struct vmspec_option *vmspec_option(enum vmspec_opt o)
{
	return (unsigned)o < VMSPEC_NOPTS ? &options[o] : NULL;
}

int vmspec_option_by_name(const char *name)
{
	for (int i = 0; i < VMSPEC_NOPTS; i++)
		if (strcmp(options[i].name, name) == 0)
			return i;
	return -1;
}

int vmspec_option_env(enum vmspec_opt o, const char *prefix, char *buf,
		      size_t len)
{
	size_t n = strlen(prefix);
	const char *name = options[o].name;

	if (n + strlen(name) + 1 > len)
		return -ENAMETOOLONG;
	memcpy(buf, prefix, n);
	for (const char *p = name; *p; p++)
		buf[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
	buf[n] = '\0';
	return 0;
}

static int opt_fail(char *err, size_t errlen, enum vmspec_opt o,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int opt_fail(char *err, size_t errlen, enum vmspec_opt o,
		    const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (err && errlen)
		snprintf(err, errlen, "--%s: %s", options[o].name, why);
	return -EINVAL;
}

/* N, or N followed by s, m, h or d; in seconds. */
static int parse_duration(const char *t, uint64_t *ret)
{
	static const struct {
		char suffix;
		uint64_t mult;
	} units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
	char digits[16];
	size_t n = strlen(t);
	uint64_t mult = 1, v = 0;

	if (n == 0 || n >= sizeof(digits))
		return -EINVAL;
	memcpy(digits, t, n + 1);
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (tolower((unsigned char)digits[n - 1]) == units[i].suffix) {
			mult = units[i].mult;
			digits[--n] = '\0';
			break;
		}
	}
	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (digits[i] < '0' || digits[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(digits[i] - '0');
	}
	*ret = v * mult;
	return 0;
}

static int parse_lead(struct vmspec_request *r, const char *t, char *err,
		      size_t errlen)
{
	uint32_t limit = vmspec_field(VMSPEC_CHECKPOINT_LEAD_S)->limit;
	uint64_t s;
	char safe[40];

	if (parse_duration(t, &s) < 0 || s > limit)
		return opt_fail(err, errlen, VMSPEC_OPT_CHECKPOINT_LEAD,
				"'%s' is not a duration up to %u s (600, "
				"10m, 1h)",
				printable(t, safe, sizeof(safe)), limit);
	r->v.checkpoint_lead_s = (uint32_t)s;
	r->set[VMSPEC_CHECKPOINT_LEAD_S] = true;
	return 0;
}

/* A job id as squeue shows it for a plain job: 1..VMSPEC_MAX_JOB_ID. An
 * array task or a het job component has its own plain id (squeue %A). */
static int parse_restore(struct vmspec_request *r, const char *t, char *err,
			 size_t errlen)
{
	size_t len = strlen(t);
	uint64_t n = 0;
	char safe[40];

	if (strspn(t, "0123456789") == len && len <= 10)
		for (size_t i = 0; i < len; i++)
			n = n * 10 + (uint64_t)(t[i] - '0');
	if (len == 0 || len > 10 || n == 0 || n > VMSPEC_MAX_JOB_ID)
		return opt_fail(err, errlen, VMSPEC_OPT_RESTORE,
				"'%s' is not a job id (1..%u; an array task "
				"or het job part by its own id, squeue -o %%A)",
				printable(t, safe, sizeof(safe)),
				VMSPEC_MAX_JOB_ID);
	r->v.restore_from = (uint32_t)n;
	r->set[VMSPEC_RESTORE_FROM] = true;
	return 0;
}

/* One item of --vm-mem-headroom: "15%", "256", "256M", "1G", "1GiB". */
static int headroom_item(struct vmspec_request *r, const char *t)
{
	char digits[16];
	size_t n = strcspn(t, "%MGmg");
	const char *unit = t + n;
	uint64_t v = 0, mult = 1;
	bool pct = false;

	if (n == 0 || n >= sizeof(digits))
		return -EINVAL;
	memcpy(digits, t, n);
	digits[n] = '\0';
	if (strcmp(unit, "%") == 0)
		pct = true;
	else if (strcasecmp(unit, "G") == 0 || strcasecmp(unit, "GiB") == 0)
		mult = 1024;
	else if (*unit && strcasecmp(unit, "M") != 0 &&
		 strcasecmp(unit, "MiB") != 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (digits[i] < '0' || digits[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(digits[i] - '0');
	}
	v *= mult;
	enum vmspec_field f =
	    pct ? VMSPEC_MEM_HEADROOM_PCT : VMSPEC_MEM_HEADROOM_MIB;
	if (r->set[f] || v > vmspec_field(f)->limit)
		return -EINVAL;
	vmspec_set_num(&r->v, f, (uint32_t)v);
	r->set[f] = true;
	return 0;
}

static int parse_headroom(struct vmspec_request *r, const char *t, char *err,
			  size_t errlen)
{
	struct vmspec_request scratch = *r;
	_cleanup_free_ char *copy = strdup(t);
	char *save = NULL, safe[64];

	if (!copy)
		return -ENOMEM;
	scratch.set[VMSPEC_MEM_HEADROOM_PCT] = false;
	scratch.set[VMSPEC_MEM_HEADROOM_MIB] = false;
	for (char *item = strtok_r(copy, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		if (headroom_item(&scratch, item) < 0)
			return opt_fail(
			    err, errlen, VMSPEC_OPT_MEM_HEADROOM,
			    "'%s' is not PCT%% (0..%u) and/or MiB (256, 256M, "
			    "1G, up to %u MiB), each at most once",
			    printable(t, safe, sizeof(safe)),
			    vmspec_field(VMSPEC_MEM_HEADROOM_PCT)->limit,
			    vmspec_field(VMSPEC_MEM_HEADROOM_MIB)->limit);
	}
	if (!scratch.set[VMSPEC_MEM_HEADROOM_PCT] &&
	    !scratch.set[VMSPEC_MEM_HEADROOM_MIB])
		return opt_fail(err, errlen, VMSPEC_OPT_MEM_HEADROOM,
				"no value");
	*r = scratch;
	return 0;
}

int vmspec_request_set(struct vmspec_request *r, enum vmspec_opt o,
		       const char *value, char *err, size_t errlen)
{
	char why[512];
	enum vmspec_field f;
	int rc;

	if ((unsigned)o >= VMSPEC_NOPTS)
		return -EINVAL;
	if (!value || !*value) {
		if (!options[o].optional_arg)
			return opt_fail(err, errlen, o, "needs a value (%s)",
					options[o].arg);
		value = "yes";
	}
	if (strlen(value) >= VMSPEC_MAX_OPTARG)
		return opt_fail(err, errlen, o, "value longer than %d bytes",
				VMSPEC_MAX_OPTARG - 1);
	if (o == VMSPEC_OPT_CHECKPOINT_LEAD)
		return parse_lead(r, value, err, errlen);
	if (o == VMSPEC_OPT_MEM_HEADROOM)
		return parse_headroom(r, value, err, errlen);
	if (o == VMSPEC_OPT_RESTORE)
		return parse_restore(r, value, err, errlen);
	f = option_field[o];
	rc = vmspec_parse_field(&r->v, f, value, why, sizeof(why));
	if (rc < 0)
		return rc == -EINVAL ? opt_fail(err, errlen, o, "%s", why) : rc;
	r->set[f] = true;
	return 0;
}

static int one_arg(struct vmspec_request *r, int argc, char *const *argv,
		   int *i, char *err, size_t errlen)
{
	char name[64], safe[64];
	const char *a = argv[*i], *eq, *value = NULL;
	size_t n;
	int o;

	if (strncmp(a, "--", 2) != 0)
		goto unknown;
	eq = strchr(a, '=');
	n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
	if (n >= sizeof(name))
		goto unknown;
	memcpy(name, a + 2, n);
	name[n] = '\0';
	o = vmspec_option_by_name(name);
	if (o < 0)
		goto unknown;
	if (eq)
		value = eq + 1;
	else if (!options[o].optional_arg && *i + 1 < argc)
		value = argv[++*i];
	return vmspec_request_set(r, (enum vmspec_opt)o, value, err, errlen);
unknown:
	snprintf(err, errlen, "'%s' is not a vmenv option",
		 printable(a, safe, sizeof(safe)));
	return -EINVAL;
}

int vmspec_request_from_argv(struct vmspec_request *r, int argc,
			     char *const *argv, char *err, size_t errlen)
{
	for (int i = 0; i < argc; i++) {
		int rc = one_arg(r, argc, argv, &i, err, errlen);
		if (rc < 0)
			return rc;
	}
	return 0;
}
