// SPDX-License-Identifier: MIT
/*
 * What a parsed policy is made of, below both the parser
 * (policy_parse.c) and the resolution (policy.c), which each need it: the
 * names of its match keys and rules, and the freeing of one.
 */
#include "policy_priv.h"

#include <stdlib.h>

const char *const policy_key_names[POLICY_NKEYS] = {
    [POLICY_PARTITION] = "partition",
    [POLICY_ACCOUNT] = "account",
    [POLICY_USER] = "user",
    [POLICY_GROUP] = "group",
    [POLICY_QOS] = "qos",
};

const char *const policy_rule_names[POLICY_NRULES] = {
    [POLICY_ALLOW] = "allow",	  [POLICY_DEFAULT] = "default",
    [POLICY_ENFORCE] = "enforce", [POLICY_MAX] = "max",
    [POLICY_MIN] = "min",
};

void policy_patterns_free(struct policy_patterns *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i]);
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	for (int k = 0; k < POLICY_NKEYS; k++)
		policy_patterns_free(&p->match[k]);
	for (int f = 0; f < VMSPEC_NFIELDS; f++)
		policy_patterns_free(&p->allow[f]);
	free(p->dflt);
	free(p->enforce);
	free(p);
}
