/* SPDX-License-Identifier: MIT */
/*
 * vmenvctl policy check [FILE|DIR]
 * vmenvctl policy explain [--policies PATH] --user U [--partition P]
 *          [--account A] [--qos Q] [--group G]... [--mem MIB] -- OPTIONS
 *
 * check validates like a compiler ("FILE: FIELD: reason" on stderr, exit
 * 1). explain merges the user's options (as given to sbatch) with the
 * policies and prints every field of the effective spec with its origin,
 * or the refusal (exit 1). Both read the files themselves: no vmmd needed.
 */
#include "vmenvctl.h"

#include "cleanup.h"
#include "policy.h"
#include "util.h"
#include "vmspec.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char default_dir[] = VMENV_SYSCONFDIR "/policies.d";

static void print_error(void *data, const char *msg)
{
	(void)data;
	fprintf(stderr, "%s\n", msg);
}

/* vmmd reads a missing site policy directory as "no site policies", and
 * so does vmenvctl for its default one; a path the admin names must exist. */
static int load_policies(const char *path, struct policy_set **s, char *err,
			 size_t errlen)
{
	return policy_set_load(path, path == default_dir, print_error, NULL, s,
			       err, errlen);
}

static int cmd_check(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : default_dir;
	struct policy_set *s = NULL;
	char err[1024], desc[16384];
	int r;

	if (argc > 2) {
		fprintf(stderr, "usage: vmenvctl policy check [FILE|DIR]\n");
		return 2;
	}
	r = load_policies(path, &s, err, sizeof(err));
	if (r < 0) {
		if (r != -EINVAL && r != -ENOENT)
			fprintf(stderr, "vmenvctl: %s: %s\n", path,
				strerror(-r));
		return 1;
	}
	policy_set_describe(s, desc, sizeof(desc));
	printf("%s: %zu %s, all valid\n%s", path, policy_set_count(s),
	       policy_set_count(s) == 1 ? "policy" : "policies", desc);
	policy_set_free(s);
	return 0;
}

struct explain {
	const char *policies;
	const char *user;
	const char *partition;
	const char *account;
	const char *qos;
	const char *groups[POLICY_MAX_GROUPS];
	size_t ngroups;
	char *owned[POLICY_MAX_GROUPS];
	uint64_t mem_mib;
};

/* Without --group, the user's groups as this host knows them, like the
 * node does. */
static void user_groups(struct explain *x)
{
	struct passwd *pw = getpwnam(x->user);
	gid_t gids[POLICY_MAX_GROUPS];
	int n = (int)ARRAY_SIZE(gids);

	if (!pw || getgrouplist(x->user, pw->pw_gid, gids, &n) < 0)
		return;
	for (int i = 0; i < n && x->ngroups < ARRAY_SIZE(x->groups); i++) {
		struct group *g = getgrgid(gids[i]);
		char *name = g ? strdup(g->gr_name) : NULL;

		if (!name)
			continue;
		x->owned[x->ngroups] = name;
		x->groups[x->ngroups++] = name;
	}
}

static int explain_args(int argc, char **argv, struct explain *x)
{
	static const struct option lo[] = {
	    {"policies", required_argument, NULL, 'P'},
	    {"user", required_argument, NULL, 'u'},
	    {"partition", required_argument, NULL, 'p'},
	    {"account", required_argument, NULL, 'A'},
	    {"qos", required_argument, NULL, 'q'},
	    {"group", required_argument, NULL, 'g'},
	    {"mem", required_argument, NULL, 'm'},
	    {0},
	};
	uint32_t mem;
	int o;

	optind = 1;
	while ((o = getopt_long(argc, argv, "+P:u:p:A:q:g:m:", lo, NULL)) !=
	       -1) {
		switch (o) {
		case 'P':
			x->policies = optarg;
			break;
		case 'u':
			x->user = optarg;
			break;
		case 'p':
			x->partition = optarg;
			break;
		case 'A':
			x->account = optarg;
			break;
		case 'q':
			x->qos = optarg;
			break;
		case 'g':
			if (x->ngroups == ARRAY_SIZE(x->groups))
				return -E2BIG;
			x->groups[x->ngroups++] = optarg;
			break;
		case 'm':
			if (parse_u32(optarg, &mem) < 0)
				return -EINVAL;
			x->mem_mib = mem;
			break;
		default:
			return -EINVAL;
		}
	}
	return x->user ? optind : -EINVAL;
}

static void print_job(const struct explain *x)
{
	printf("job:        user=%s partition=%s account=%s qos=%s groups=",
	       x->user, x->partition ? x->partition : "-",
	       x->account ? x->account : "-", x->qos ? x->qos : "-");
	for (size_t i = 0; i < x->ngroups; i++)
		printf("%s%s", i ? "," : "", x->groups[i]);
	printf("%s\n", x->ngroups ? "" : "-");
}

static int resolve_print(const struct policy_set *s, const struct explain *x,
			 const struct vmspec_request *req)
{
	const struct policy_ctx ctx = {
	    .user = x->user,
	    .partition = x->partition,
	    .account = x->account,
	    .qos = x->qos,
	    .groups = x->groups,
	    .ngroups = x->ngroups,
	};
	_cleanup_free_ struct vmspec *base = malloc(sizeof(*base));
	_cleanup_free_ struct vmspec *spec = malloc(sizeof(*spec));
	_cleanup_free_ char *text = NULL;
	char why[1024], matches[4096];
	int r;

	if (!base || !spec)
		return 1;
	vmspec_defaults(base);
	policy_set_matches(s, &ctx, matches, sizeof(matches));
	printf("policies:   %s (%zu)\n", x->policies, policy_set_count(s));
	print_job(x);
	printf("matching:   %s\n", matches);
	r = policy_resolve(s, &ctx, req, base, spec, why, sizeof(why));
	if (r == POLICY_REFUSED) {
		printf("refused:    %s\n", why);
		return 1;
	}
	if (r < 0 || vmspec_explain(spec, &text) < 0) {
		fprintf(stderr, "vmenvctl: %s\n",
			strerror(r < 0 ? -r : ENOMEM));
		return 1;
	}
	printf("\n%s", text);
	if (x->mem_mib)
		printf("\nguest memory for %llu MiB allocated: %u MiB\n",
		       (unsigned long long)x->mem_mib,
		       vmspec_guest_mem_mib(&spec->v, x->mem_mib));
	return 0;
}

static int cmd_explain(int argc, char **argv)
{
	struct explain x = {.policies = default_dir};
	_cleanup_free_ struct vmspec_request *req = calloc(1, sizeof(*req));
	struct policy_set *s = NULL;
	char err[1024];
	int i, r;

	if (!req)
		return 1;
	i = explain_args(argc, argv, &x);
	if (i < 0) {
		fprintf(stderr,
			"usage: vmenvctl policy explain [--policies PATH] "
			"--user U [--partition P]\n"
			"       [--account A] [--qos Q] [--group G]... [--mem "
			"MIB] -- --vm-env=IMAGE [--vm-...]\n");
		return 2;
	}
	if (!x.ngroups)
		user_groups(&x);
	r = vmspec_request_from_argv(req, argc - i, argv + i, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "vmenvctl: %s\n", err);
	/* Every problem of the policies is printed as it is found. */
	else if (load_policies(x.policies, &s, err, sizeof(err)) < 0)
		r = -EINVAL;
	else
		r = resolve_print(s, &x, req);
	r = r == 0 ? 0 : 1;
	policy_set_free(s);
	for (size_t g = 0; g < x.ngroups; g++)
		free(x.owned[g]);
	return r;
}

int vmenvctl_policy(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "check") == 0)
		return cmd_check(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "explain") == 0)
		return cmd_explain(argc - 1, argv + 1);
	fprintf(stderr,
		"usage: vmenvctl policy check [FILE|DIR]\n"
		"       vmenvctl policy explain --user U [--partition P] ... "
		"-- OPTIONS\n");
	return 2;
}
