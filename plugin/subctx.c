/* SPDX-License-Identifier: MIT */
/*
 * Who submits, and where to: the policy context on the submit side.
 *
 * SPANK tells a plugin in sbatch/salloc/srun nothing about the job's
 * partition, account or QOS, so they are found where Slurm itself takes
 * them from, in Slurm's order: the command line (read from
 * /proc/self/cmdline), then SBATCH_/SALLOC_/SLURM_ variables, then the
 * script's #SBATCH lines; a partition not given at all is the cluster's
 * default partition (asked of slurmctld). Inside an existing allocation
 * (srun in a job) the job's own SLURM_JOB_* variables say it. An account
 * or QOS nobody gave stays unknown here (Slurm picks the user's default
 * later), so policies matching on them are applied by the nodes only.
 *
 * This is for a good message before anything is queued; it may miss what
 * Slurm decides later. The node enforces with what slurmctld says.
 */
#include "subctx.h"

#include "cleanup.h"

#include <ctype.h>
#include <grp.h>
#include <pwd.h>
#include <slurm/slurm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Short options of sbatch/salloc/srun that take no argument (or only an
 * attached optional one); every other letter takes one. */
static const char noarg_short[] = "hHIkKlOQsuvVXZE";

/* Long options that never take the next word as their argument: no
 * argument, or an optional one that must be attached with '='. */
static const char *const noarg_long[] = {
    "help",
    "usage",
    "hold",
    "immediate",
    "no-kill",
    "kill-on-bad-exit",
    "label",
    "overcommit",
    "quiet",
    "oversubscribe",
    "share",
    "unbuffered",
    "verbose",
    "version",
    "disable-status",
    "no-allocate",
    "contiguous",
    "exclusive",
    "test-only",
    "parsable",
    "pty",
    "requeue",
    "no-requeue",
    "reboot",
    "spread-job",
    "use-min-nodes",
    "bell",
    "no-bell",
    "no-shell",
    "x11",
    "multi-prog",
    "preserve-env",
    "exact",
    "overlap",
    "whole",
    "quit-on-interrupt",
    "send-libs",
    "propagate",
    "get-user-env",
    "ignore-pbs",
    "nice",
    "kill-command",
    "vm-checkpoint",
    "vm-requeue",
    "vm-gpus",
    "vm-keep-overlay",
    "vm-warm-start",
};

static bool long_takes_arg(const char *name, size_t n, bool is_sbatch)
{
	/* sbatch --wait is a flag; srun's --wait takes seconds. */
	if (n == 4 && strncmp(name, "wait", 4) == 0)
		return !is_sbatch;
	for (size_t i = 0; i < ARRAY_SIZE(noarg_long); i++)
		if (strlen(noarg_long[i]) == n &&
		    strncmp(noarg_long[i], name, n) == 0)
			return false;
	return true;
}

static bool short_takes_arg(char c, bool is_sbatch)
{
	/* sbatch -W is --wait; srun's -W takes seconds. */
	if (c == 'W')
		return !is_sbatch;
	return !strchr(noarg_short, c);
}

static void take(char *dst, size_t len, const char *v)
{
	if (!*dst && v)
		snprintf(dst, len, "%s", v);
}

/* What a short or long option means to us. */
static void keep(struct subctx_args *a, char key, const char *v)
{
	if (key == 'p')
		take(a->partition, sizeof(a->partition), v);
	else if (key == 'A')
		take(a->account, sizeof(a->account), v);
	else if (key == 'q')
		take(a->qos, sizeof(a->qos), v);
}

static char long_key(const char *name, size_t n)
{
	static const struct {
		const char *name;
		char key;
	} k[] = {{"partition", 'p'}, {"account", 'A'}, {"qos", 'q'}};

	for (size_t i = 0; i < ARRAY_SIZE(k); i++)
		if (strlen(k[i].name) == n && strncmp(k[i].name, name, n) == 0)
			return k[i].key;
	return 0;
}

/* One word starting with "--"; returns how many words it used. */
static int scan_long(struct subctx_args *a, int argc, char **argv, int i,
		     bool is_sbatch)
{
	const char *name = argv[i] + 2, *eq = strchr(name, '=');
	size_t n = eq ? (size_t)(eq - name) : strlen(name);
	const char *v = eq ? eq + 1 : NULL;
	int used = 1;

	if (!eq && long_takes_arg(name, n, is_sbatch) && i + 1 < argc) {
		v = argv[i + 1];
		used = 2;
	}
	keep(a, long_key(name, n), v);
	return used;
}

/* One word of short options ("-p", "-pdebug", "-vN2"). */
static int scan_short(struct subctx_args *a, int argc, char **argv, int i,
		      bool is_sbatch)
{
	for (const char *c = argv[i] + 1; *c; c++) {
		if (!short_takes_arg(*c, is_sbatch))
			continue;
		if (c[1]) {
			keep(a, *c, c + 1);
			return 1;
		}
		if (i + 1 < argc) {
			keep(a, *c, argv[i + 1]);
			return 2;
		}
		return 1;
	}
	return 1;
}

void subctx_scan_args(int argc, char **argv, bool is_sbatch,
		      struct subctx_args *a)
{
	for (int i = 0; i < argc;) {
		const char *w = argv[i];

		if (strcmp(w, "--") == 0 || w[0] != '-' || !w[1]) {
			/* The script or command: the rest is its own. */
			if (w[0] != '-' && !a->script[0])
				snprintf(a->script, sizeof(a->script), "%s", w);
			return;
		}
		i += w[1] == '-' ? scan_long(a, argc, argv, i, is_sbatch)
				 : scan_short(a, argc, argv, i, is_sbatch);
	}
}

void subctx_scan_script(const char *text, struct subctx_args *a)
{
	_cleanup_free_ char *copy = strdup(text);
	char *save = NULL, *line;

	if (!copy)
		return;
	for (line = strtok_r(copy, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *words[64], *wsave = NULL, *w;
		int n = 0;

		while (isspace((unsigned char)*line))
			line++;
		if (!*line)
			continue;
		/* sbatch stops reading directives at the first command. */
		if (line[0] != '#')
			return;
		if (strncmp(line, "#SBATCH", 7) != 0 ||
		    !isspace((unsigned char)line[7]))
			continue;
		for (w = strtok_r(line + 7, " \t\r", &wsave); w && n < 64;
		     w = strtok_r(NULL, " \t\r", &wsave)) {
			if (w[0] == '#')
				break;
			words[n++] = w;
		}
		subctx_scan_args(n, words, true, a);
	}
}

/* The process's own argv (without argv[0]), from /proc/self/cmdline. */
static int own_args(char **text, char ***ret, int *ret_n)
{
	size_t len;
	char **v;
	int n = 0;

	if (read_file_limited("/proc/self/cmdline", 1 << 20, text, &len) < 0)
		return -1;
	for (size_t i = 0; i < len; i++)
		n += (*text)[i] == '\0';
	v = calloc((size_t)n + 1, sizeof(*v));
	if (!v)
		return -1;
	n = 0;
	for (size_t i = 0; i < len; i += strlen(*text + i) + 1)
		v[n++] = *text + i;
	*ret = v;
	*ret_n = n;
	return 0;
}

static void from_env(char *dst, size_t len, const char *prog, const char *what)
{
	char name[64];
	const char *prefix = strcmp(prog, "sbatch") == 0   ? "SBATCH_"
			     : strcmp(prog, "salloc") == 0 ? "SALLOC_"
							   : "SLURM_";

	snprintf(name, sizeof(name), "%s%s", prefix, what);
	take(dst, len, getenv(name));
}

/* The cluster's default partition, from slurmctld. */
static void default_partition(char *dst, size_t len)
{
	partition_info_msg_t *msg = NULL;

	if (*dst || slurm_load_partitions((time_t)0, &msg, SHOW_ALL) != 0)
		return;
	for (uint32_t i = 0; i < msg->record_count; i++) {
		const partition_info_t *p = &msg->partition_array[i];

		if ((p->flags & PART_FLAG_DEFAULT) && p->name) {
			snprintf(dst, len, "%s", p->name);
			break;
		}
	}
	slurm_free_partition_info_msg(msg);
}

static void user_and_groups(struct subctx *c)
{
	struct passwd *pw = getpwuid(getuid());
	gid_t gids[POLICY_MAX_GROUPS];
	int n = getgroups((int)ARRAY_SIZE(gids) - 1, gids + 1);

	snprintf(c->user, sizeof(c->user), "%s", pw ? pw->pw_name : "");
	gids[0] = getgid();
	n = n < 0 ? 1 : n + 1;
	for (int i = 0; i < n && c->ngroups < ARRAY_SIZE(c->groups); i++) {
		struct group *g = getgrgid(gids[i]);

		if (g)
			snprintf(c->gnames[c->ngroups], sizeof(c->gnames[0]),
				 "%s", g->gr_name);
		else
			snprintf(c->gnames[c->ngroups], sizeof(c->gnames[0]),
				 "%u", (unsigned)gids[i]);
		c->groups[c->ngroups] = c->gnames[c->ngroups];
		c->ngroups++;
	}
}

static void from_script(struct subctx_args *a)
{
	_cleanup_free_ char *text = NULL;

	if (!a->script[0] ||
	    read_file_limited(a->script, 1 << 20, &text, NULL) < 0)
		return;
	subctx_scan_script(text, a);
}

void subctx_fill(struct subctx *c, const char *prog, bool in_job)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_free_ char **argv = NULL;
	bool is_sbatch = strcmp(prog, "sbatch") == 0;
	struct subctx_args *a = &c->args;
	int argc = 0;

	memset(c, 0, sizeof(*c));
	user_and_groups(c);
	if (in_job) {
		/* A step of an existing allocation: the job is known. */
		take(a->partition, sizeof(a->partition),
		     getenv("SLURM_JOB_PARTITION"));
		take(a->account, sizeof(a->account),
		     getenv("SLURM_JOB_ACCOUNT"));
		take(a->qos, sizeof(a->qos), getenv("SLURM_JOB_QOS"));
		return;
	}
	if (own_args(&text, &argv, &argc) == 0 && argc > 1)
		subctx_scan_args(argc - 1, argv + 1, is_sbatch, a);
	from_env(a->partition, sizeof(a->partition), prog, "PARTITION");
	from_env(a->account, sizeof(a->account), prog, "ACCOUNT");
	from_env(a->qos, sizeof(a->qos), prog, "QOS");
	if (is_sbatch)
		from_script(a);
	default_partition(a->partition, sizeof(a->partition));
}
