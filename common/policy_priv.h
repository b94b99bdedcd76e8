/* SPDX-License-Identifier: MIT */
/* What a parsed policy holds: shared by policy_parse.c (which fills it)
 * and policy.c (which matches and merges). Nobody else looks inside. */
#ifndef VMENV_POLICY_PRIV_H
#define VMENV_POLICY_PRIV_H

#include "policy.h"

#include <stdint.h>

enum policy_key {
	POLICY_PARTITION,
	POLICY_ACCOUNT,
	POLICY_USER,
	POLICY_GROUP,
	POLICY_QOS,
	POLICY_NKEYS
};

enum policy_rule {
	POLICY_ALLOW,
	POLICY_DEFAULT,
	POLICY_ENFORCE,
	POLICY_MAX,
	POLICY_MIN,
	POLICY_NRULES
};

struct policy_patterns {
	size_t n;
	char **v;
};

struct policy {
	char name[VMSPEC_MAX_POLICY];
	char file[VMSPEC_MAX_FILE];
	unsigned specificity;
	struct policy_patterns match[POLICY_NKEYS];
	bool has_user_may_set;
	bool clears_user_may_set;	 /* "user_may_set": null */
	uint32_t user_may_set;		 /* bit per field */
	uint32_t has[POLICY_NRULES];	 /* bit per field: rule given */
	uint32_t cleared[POLICY_NRULES]; /* bit per field: rule is null */
	/* Allocated when the policy has a default / enforced value. */
	struct vmspec_values *dflt;
	struct vmspec_values *enforce;
	uint32_t max[VMSPEC_NFIELDS];
	uint32_t min[VMSPEC_NFIELDS];
	/* allow: a bit per value for BOOL/ENUM (bit 0 = no/first name);
	 * patterns or prefixes for STR/PATH/MOUNTS. */
	uint32_t allow_mask[VMSPEC_NFIELDS];
	struct policy_patterns allow[VMSPEC_NFIELDS];
};

extern const char *const policy_key_names[POLICY_NKEYS];
extern const char *const policy_rule_names[POLICY_NRULES];
/* Frees a pattern list's entries and empties it (policy_core.c). */
void policy_patterns_free(struct policy_patterns *p);

#define POLICY_BIT(f) (1u << (f))

/* policy_parse with error messages naming display (the path as the admin
 * gave it) while the policy records file (its base name). */
int policy_parse_as(const char *text, size_t len, const char *file,
		    const char *display, struct policy **ret, char *err,
		    size_t errlen);
/* Does p's allow rule for field f admit v's value? */
bool policy_allows(const struct policy *p, int f,
		   const struct vmspec_values *v);

#endif
