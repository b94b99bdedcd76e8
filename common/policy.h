/* SPDX-License-Identifier: MIT */
/*
 * Site policies: the admins' mandatory rules, merged with a user's request
 * into the spec a node builds (docs/policy.md is the admin's manual).
 *
 * A policy is one JSON file in a directory (only "*.json" files count):
 *
 *   {"name": "prod", "description": "...",
 *    "match": {"partition": "prod", "account": ["phys*", "chem"]},
 *    "user_may_set": ["image", "gpus"],
 *    "image": {"allow": ["rocky9*", "zeptoos*"]},
 *    "hugepages": {"enforce": "2M"},
 *    "ib_vfs": {"max": 1}}
 *
 * match: partition, account, user, group, qos; each a glob pattern or a
 *   list of them (any may match); every key given must match; no "match"
 *   matches every job. group matches the job's group or any group of the
 *   user.
 * Per field (see vmspec.h for the fields): "allow" (patterns for image and
 *   cpu_model; path prefixes, "PREFIX" or "PREFIX:ro", for checkpoint_dir
 *   and mounts; values for yes/no and named fields), "default", "enforce",
 *   "max", "min" (numbers; for mounts "max" is how many a user may add).
 * user_may_set: the only fields a user may choose (absent: all).
 * A rule (or user_may_set) given as null removes what a policy before it
 * said: {"hugepages": {"enforce": null, "allow": ["2M", "1G"]}}.
 *
 * Order: matching policies are applied by increasing specificity (user 16,
 * group 8, account 4, qos 2, partition 1, summed over the keys "match"
 * gives), ties by file name; for each field, each rule (allow, default,
 * enforce, max, min, and user_may_set as a whole) comes from the last
 * policy in that order that states it. So a policy for one account can
 * loosen or tighten what the partition's policy says, and an admin can
 * read the outcome with `vmenvctl policy explain`.
 *
 * Merge, per field: built-in default < policy default < user's value <
 * enforced value, then max/min. A user value that contradicts an enforced
 * value, is not allowed, is outside max/min, or is not in user_may_set is
 * refused with the policy, its file and the field; never replaced. A
 * default or enforced value outside max/min is capped (origin VMSPEC_CAP).
 * A default that a policy does not allow is refused too (the user can then
 * choose an allowed value). Mounts: enforced mounts are always there,
 * then the user's (or the default) mounts; a user mount on an enforced
 * mount's guest path is refused.
 *
 * Loading is all or nothing: one bad file and the whole set is refused,
 * every error reported as "FILE: FIELD: reason" (JSON syntax errors as
 * "FILE:LINE:COL: ..."). Pure: no logging; json-c only in policy_parse.c.
 */
#ifndef VMENV_POLICY_H
#define VMENV_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "vmspec.h"

#define POLICY_MAX_FILES    256
#define POLICY_MAX_FILE	    (256 * 1024)
#define POLICY_MAX_PATTERNS 64
#define POLICY_MAX_PATTERN  256
#define POLICY_MAX_GROUPS   256

/* policy_resolve's answer when the request is refused. */
#define POLICY_REFUSED 1

struct policy;
struct policy_set;

/* Who and where: the job's identity as Slurm knows it. NULL or "" for
 * what is unknown; an unknown value only matches the pattern "*". */
struct policy_ctx {
	const char *user;
	const char *partition;
	const char *account;
	const char *qos;
	const char *const *groups; /* the job's group first */
	size_t ngroups;
};

/* Parses one policy. file is its base name (for provenance and messages).
 * 0, -EINVAL with "FILE: FIELD: reason" in err, -ENOMEM. */
int policy_parse(const char *text, size_t len, const char *file,
		 struct policy **ret, char *err, size_t errlen);
void policy_free(struct policy *p);

typedef void (*policy_error_f)(void *data, const char *msg);

/* path: a directory (every "*.json" in it) or one file. Each bad file is
 * reported to on_error (may be NULL) as "PATH/FILE: FIELD: reason"; the
 * first also lands in err. All or nothing: -EINVAL when any file is bad,
 * -ENOENT when path does not exist (missing_ok: an empty set instead).
 * *ret is freed with policy_set_free. */
int policy_set_load(const char *path, bool missing_ok, policy_error_f on_error,
		    void *data, struct policy_set **ret, char *err,
		    size_t errlen);
/* Builds a set from parsed policies (takes them; tests and the fuzzer).
 * -EINVAL when two share a name. */
int policy_set_new(struct policy **p, size_t n, struct policy_set **ret,
		   char *err, size_t errlen);
void policy_set_free(struct policy_set *s);
size_t policy_set_count(const struct policy_set *s);
/* "00-base.json (base), 10-prod.json (prod)": the policies matching ctx,
 * in the order they apply; "(none)" when none does. */
void policy_set_matches(const struct policy_set *s, const struct policy_ctx *c,
			char *buf, size_t len);
/* One line per policy: "10-prod.json: policy 'prod' (partition=prod)". */
void policy_set_describe(const struct policy_set *s, char *buf, size_t len);

/* Merges req into base (built-in defaults; vmspec_defaults, possibly with
 * node settings) under the policies of s that match ctx (s may be NULL:
 * no policies). 0 with *ret filled; POLICY_REFUSED with the reason in why
 * ("hugepages: 'none' contradicts '2M' enforced by policy 'prod'
 * (10-prod.json)"); -errno on failure. */
int policy_resolve(const struct policy_set *s, const struct policy_ctx *ctx,
		   const struct vmspec_request *req, const struct vmspec *base,
		   struct vmspec *ret, char *why, size_t whylen);

#endif
