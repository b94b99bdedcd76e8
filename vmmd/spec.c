/* SPDX-License-Identifier: MIT */
#include "spec.h"

#include "cleanup.h"
#include "jobrec.h"
#include "log.h"
#include "policy.h"
#include "vmmd.h"

#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* --- the policy set --------------------------------------------------------
 */

static void log_policy_error(void *data, const char *msg)
{
	(void)data;
	log_err("policy: %s", msg);
}

int spec_policies_load(struct vmmd *d)
{
	const char *dir = d->cfg.policy_dir;
	struct policy_set *fresh = NULL;
	char err[PROTO_MAX_ERROR] = "";
	struct stat st;
	int r = policy_set_load(dir, true, log_policy_error, NULL, &fresh, err,
				sizeof(err));

	if (r < 0) {
		snprintf(d->policy_error, sizeof(d->policy_error), "%s",
			 *err ? err : strerror(-r));
		if (d->policies)
			log_err("policy: %s refused; keeping the last good set "
				"(%zu policies)",
				dir, policy_set_count(d->policies));
		else
			log_err("policy: %s refused and no good set loaded "
				"before: every VM job is refused until the "
				"files are fixed",
				dir);
		return r;
	}
	policy_set_free(d->policies);
	d->policies = fresh;
	d->policy_error[0] = '\0';
	if (stat(dir, &st) < 0)
		log_notice("policy: %s does not exist: no site policies", dir);
	else
		log_notice("policy: %zu policies from %s",
			   policy_set_count(fresh), dir);
	return 0;
}

void spec_policies_free(struct vmmd *d)
{
	policy_set_free(d->policies);
	d->policies = NULL;
}

/* --- one job ---------------------------------------------------------------
 */

static int parse_request(const struct job *j, const struct proto_start *req,
			 struct vmspec_request *r, char *err, size_t errlen)
{
	char why[512];

	if (vmspec_request_set(r, VMSPEC_OPT_ENV, req->image, why,
			       sizeof(why)) < 0)
		return err_set(err, errlen, -EINVAL, "job %u: %s", j->id, why);
	for (int o = 0; o < VMSPEC_NOPTS; o++) {
		if (o == VMSPEC_OPT_ENV || !req->opts[o])
			continue;
		if (vmspec_request_set(r, o, req->opts[o], why, sizeof(why)) <
		    0)
			return err_set(err, errlen, -EINVAL, "job %u: %s",
				       j->id, why);
	}
	return 0;
}

struct names {
	char buf[ARRAY_SIZE(((struct job *)0)->groups)][64];
	const char *v[ARRAY_SIZE(((struct job *)0)->groups)];
};

/* The job's groups by name (by number when this node has no name). */
static size_t group_names(const struct job *j, struct names *n)
{
	char buf[16384];
	size_t k = 0;

	for (uint32_t i = 0; i < j->ngroups && k < ARRAY_SIZE(n->v); i++) {
		struct group gr, *grp = NULL;

		if (getgrgid_r(j->groups[i], &gr, buf, sizeof(buf), &grp) ==
			0 &&
		    grp)
			snprintf(n->buf[k], sizeof(n->buf[k]), "%s",
				 gr.gr_name);
		else
			snprintf(n->buf[k], sizeof(n->buf[k]), "%u",
				 (unsigned)j->groups[i]);
		n->v[k] = n->buf[k];
		k++;
	}
	return k;
}

int spec_resolve(struct job *j, const struct proto_start *req,
		 const struct slurmjob_info *si, char *err, size_t errlen)
{
	struct vmmd *d = j->d;
	_cleanup_free_ struct vmspec_request *r = calloc(1, sizeof(*r));
	_cleanup_free_ struct vmspec *base = malloc(sizeof(*base));
	_cleanup_free_ struct names *groups = malloc(sizeof(*groups));
	struct policy_ctx ctx = {
	    .user = j->user,
	    .partition = si->partition,
	    .account = si->account,
	    .qos = si->qos,
	};
	char why[1024], matches[512];
	int rc;

	if (!r || !base || !groups)
		return err_set(err, errlen, -ENOMEM, "job %u: out of memory",
			       j->id);
	if (!d->policies)
		return err_set(
		    err, errlen, -EPERM,
		    "job %u: the site policies on node %s do not load "
		    "(%s); VM jobs are refused until they are fixed",
		    j->id, d->cfg.node_name, d->policy_error);
	if ((rc = parse_request(j, req, r, err, errlen)) < 0)
		return rc;
	ctx.ngroups = group_names(j, groups);
	ctx.groups = groups->v;
	vmspec_defaults(base);
	base->v.mem_headroom_mib = d->cfg.mem_headroom_mib;
	rc = policy_resolve(d->policies, &ctx, r, base, &j->spec, why,
			    sizeof(why));
	if (rc == POLICY_REFUSED)
		return err_set(err, errlen, -EPERM,
			       "job %u: refused by site policy on node %s: %s",
			       j->id, d->cfg.node_name, why);
	if (rc < 0)
		return err_set(err, errlen, rc,
			       "job %u: cannot apply site policies: %s", j->id,
			       strerror(-rc));
	policy_set_matches(d->policies, &ctx, matches, sizeof(matches));
	log_info("job %u: user %s partition '%s' account '%s' qos '%s': "
		 "policies %s",
		 j->id, j->user, si->partition, si->account, si->qos, matches);
	return 0;
}

/* --- the spec on disk --------------------------------------------------------
 */

static const char *const origin_names[] = {
    [VMSPEC_BUILTIN] = "builtin", [VMSPEC_DEFAULT] = "default",
    [VMSPEC_USER] = "user",	  [VMSPEC_ENFORCED] = "enforced",
    [VMSPEC_CAP] = "cap",
};

static void add_line(FILE *f, const char *name, const char *value,
		     const struct vmspec_src *s)
{
	fprintf(f, "%s\t%s\t%s\t%s\t%s\n", name, value, origin_names[s->origin],
		s->policy, s->file);
}

int spec_save(const struct job *j)
{
	char path[VMENV_MAX_PATH + 16], value[VMSPEC_MAX_MOUNTS * 1100];
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int r;

	if (!f)
		return -errno;
	for (int i = 0; i < VMSPEC_NFIELDS; i++) {
		vmspec_format_field(&j->spec.v, i, value, sizeof(value));
		add_line(f, vmspec_field(i)->name, value, &j->spec.src[i]);
	}
	for (uint32_t i = 0; i < j->spec.v.mounts.n; i++) {
		snprintf(value, sizeof(value), "%u", i);
		add_line(f, "mount", value, &j->spec.mount_src[i]);
	}
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	snprintf(path, sizeof(path), "%s/spec", j->dir);
	r = write_file_atomic(path, buf, len, 0600);
	free(buf);
	return r;
}

static int parse_src(char *origin, char *policy, char *file,
		     struct vmspec_src *s)
{
	memset(s, 0, sizeof(*s));
	for (size_t o = 0; o < ARRAY_SIZE(origin_names); o++) {
		if (strcmp(origin_names[o], origin) != 0)
			continue;
		s->origin = (enum vmspec_origin)o;
		if (strlen(policy) >= sizeof(s->policy) ||
		    strlen(file) >= sizeof(s->file))
			return -EINVAL;
		strcpy(s->policy, policy);
		strcpy(s->file, file);
		return 0;
	}
	return -EINVAL;
}

static int load_line(struct job *j, char *line)
{
	char *tok[5], *p = line;
	uint32_t idx;
	int f;

	/* strsep, not strtok: policy and file are empty for some origins. */
	for (int n = 0; n < 5; n++)
		tok[n] = strsep(&p, "\t");
	if (!tok[4] || p)
		return -EINVAL;
	if (strcmp(tok[0], "mount") == 0)
		return parse_u32(tok[1], &idx) < 0 || idx >= j->spec.v.mounts.n
			   ? -EINVAL
			   : parse_src(tok[2], tok[3], tok[4],
				       &j->spec.mount_src[idx]);
	f = vmspec_field_by_name(tok[0]);
	if (f < 0)
		return -EINVAL;
	/* "" is the node's default (cpu_model, checkpoint_dir), which the
	 * defaults spec_load starts from hold already. */
	if (*tok[1] && vmspec_parse_field(&j->spec.v, f, tok[1], NULL, 0) < 0)
		return -EINVAL;
	return parse_src(tok[2], tok[3], tok[4], &j->spec.src[f]);
}

int spec_load(struct job *j)
{
	char path[VMENV_MAX_PATH + 16];
	_cleanup_free_ char *text = NULL;
	char *p, *line;
	int r;

	snprintf(path, sizeof(path), "%s/spec", j->dir);
	r = read_file_limited(path, 256 * 1024, &text, NULL);
	if (r < 0)
		return r;
	vmspec_defaults(&j->spec);
	for (p = text; (line = strsep(&p, "\n"));) {
		if (!*line)
			continue;
		if ((r = load_line(j, line)) < 0)
			return r;
	}
	return 0;
}
