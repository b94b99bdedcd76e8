/* SPDX-License-Identifier: MIT */
/*
 * sbatch, salloc and srun: the --vm-env option, the environment variables
 * of every --vm-* option, and the whole request checked against the
 * catalog and the site's policies once all options are known. These
 * checks only give the user a good message before anything is queued;
 * vmmd re-checks everything on the node.
 */
#include "plugin.h"

#include "catalog.h"
#include "cleanup.h"
#include "log.h"
#include "policy.h"
#include "subctx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char *program_invocation_short_name;

int submit_init(spank_t sp)
{
	(void)sp;
	plugin_mirror_env(program_invocation_short_name);
	return 0;
}

static int check_catalog(const char *image)
{
	struct catalog cat;
	const struct catalog_image *img;
	char err[512], names[512];

	/* The user's own image: the policy decides (image_paths). */
	if (image[0] == '/')
		return 0;
	if (catalog_load(plugin_cfg.catalog, &cat, err, sizeof(err)) < 0) {
		/* A login node without the catalog defers to the nodes. */
		log_info("vmenv: %s; image '%s' will be checked on the nodes",
			 err, image);
		return 0;
	}
	img = catalog_find(&cat, image);
	if (!img) {
		catalog_names(&cat, names, sizeof(names));
		log_err(
		    "vmenv: image '%s' is not in the catalog (known images: "
		    "%s)",
		    image, names);
	}
	catalog_clear(&cat);
	return img ? 0 : -1;
}

int submit_opt_cb(int val, const char *optarg, int remote)
{
	char safe[VMENV_MAX_IMAGE_NAME];
	const char *v = optarg ? optarg : "";

	(void)val;
	if (remote) {
		plugin_remember_image(optarg);
		return 0;
	}
	plugin_remember_option(VMSPEC_OPT_ENV, optarg);
	if (strlen(v) >= VMENV_MAX_IMAGE_NAME ||
	    !(valid_image_ref(v) || (v[0] == '/' && valid_abs_path(v)))) {
		log_err("vmenv: invalid image name '%s': use NAME or "
			"NAME:VERSION (letters, digits, '.', '_', '+', '-'), "
			"or a clean absolute path shorter than %d bytes where "
			"the site allows your own images",
			printable(v, safe, sizeof(safe)), VMENV_MAX_IMAGE_NAME);
		return -1;
	}
	return check_catalog(v);
}

/* Options that configure a VM make no sense without one. */
static int check_orphans(void)
{
	for (int o = VMSPEC_OPT_ENV + 1; o < VMSPEC_NOPTS; o++) {
		if (!plugin_option_given(o))
			continue;
		log_err("vmenv: --%s needs --vm-env=IMAGE: it configures the "
			"job's virtual machine",
			vmspec_option(o)->name);
		return -1;
	}
	return 0;
}

static int build_request(struct vmspec_request *r)
{
	char err[512];

	for (int o = 0; o < VMSPEC_NOPTS; o++) {
		const char *v = plugin_option_given(o);

		if (v && vmspec_request_set(r, o, v, err, sizeof(err)) < 0) {
			log_err("vmenv: %s", err);
			return -1;
		}
	}
	return 0;
}

/* Every partition the job may run in must accept it ("-p a,b"). */
static int check_policies(const struct policy_set *s, struct subctx *c,
			  const struct vmspec_request *r)
{
	_cleanup_free_ struct vmspec *base = malloc(sizeof(*base));
	_cleanup_free_ struct vmspec *spec = malloc(sizeof(*spec));
	char parts[sizeof(c->args.partition)], why[1024], *save = NULL;
	const char *part;
	int rc;

	if (!base || !spec)
		return 0;
	vmspec_defaults(base);
	snprintf(parts, sizeof(parts), "%s", c->args.partition);
	part = strtok_r(parts, ",", &save);
	do {
		struct policy_ctx ctx = {
		    .user = c->user,
		    .partition = part,
		    .account = c->args.account,
		    .qos = c->args.qos,
		    .groups = c->groups,
		    .ngroups = c->ngroups,
		};

		rc = policy_resolve(s, &ctx, r, base, spec, why, sizeof(why));
		if (rc == POLICY_REFUSED) {
			log_err("vmenv: refused by site policy%s%s%s: %s",
				part ? " in partition '" : "", part ? part : "",
				part ? "'" : "", why);
			return -1;
		}
	} while (part && (part = strtok_r(NULL, ",", &save)));
	return 0;
}

int submit_post_opt(spank_t sp)
{
	const char *prog = program_invocation_short_name;
	const char *image = plugin_option_given(VMSPEC_OPT_ENV);
	_cleanup_free_ struct vmspec_request *r = NULL;
	static struct subctx c;
	struct policy_set *s = NULL;
	char err[1024] = "";
	int rc;

	(void)sp;
	if (!image || !*image)
		return check_orphans();
	r = calloc(1, sizeof(*r));
	if (!r || build_request(r) < 0)
		return r ? -1 : 0;
	if (policy_set_load(plugin_cfg.policies, true, NULL, NULL, &s, err,
			    sizeof(err)) < 0) {
		/* Broken policies on a login node: the nodes decide. */
		log_info("vmenv: policy: %s; the nodes will check the request",
			 err);
		return 0;
	}
	subctx_fill(&c, prog,
		    strcmp(prog, "srun") == 0 && getenv("SLURM_JOB_ID"));
	rc = check_policies(s, &c, r);
	policy_set_free(s);
	return rc;
}
