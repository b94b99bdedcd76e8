// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the policy parser and the merge.
 *
 * Input: a policy file, optionally followed by a line "--" and user
 * options, one per line as given to sbatch ("--vm-ib=2"). The policy is
 * parsed; if it is valid it joins a fixed second policy in a set and the
 * options are merged with that set for a few jobs, one of which it
 * matches; the result is printed (into memory). Every option line also
 * goes through the option parser and every field parser on its own.
 * Built and run by test/fuzz/run-policy-fuzz.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "vmspec.h"

#define MAX_LINES 32

static const char fixed_policy[] =
    "{\"name\": \"fixed\", \"match\": {\"partition\": [\"p*\", \"q\"]},"
    " \"user_may_set\": [\"image\", \"gpus\", \"mounts\", \"ib_vfs\"],"
    " \"image\": {\"allow\": [\"tiny*\", \"/home/*\"]},"
    " \"image_paths\": {\"default\": true},"
    " \"hugepages\": {\"enforce\": \"2M\"}, \"ib_vfs\": {\"max\": 2},"
    " \"mem_headroom_pct\": {\"default\": 10, \"min\": 5, \"max\": 50},"
    " \"mounts\": {\"allow\": [\"/home\", \"/data:ro\"], \"max\": 3,"
    "  \"enforce\": [\"/sw:/apps:ro\"]}}";

static void exercise_option(const char *line)
{
	struct vmspec_request *r = calloc(1, sizeof(*r));
	struct vmspec_values *v = calloc(1, sizeof(*v));
	char err[512];
	char *arg = strdup(line);

	if (!r || !v || !arg)
		goto out;
	vmspec_request_from_argv(r, 1, &arg, err, sizeof(err));
	for (int f = 0; f < VMSPEC_NFIELDS; f++) {
		char text[4096];

		if (vmspec_parse_field(v, f, line, err, sizeof(err)) != 0)
			continue;
		/* What parses must print and parse back to the same. */
		vmspec_format_field(v, f, text, sizeof(text));
		struct vmspec_values *back = calloc(1, sizeof(*back));
		if (back &&
		    vmspec_parse_field(back, f, text, err, sizeof(err)) == 0 &&
		    !vmspec_field_equal(v, back, f))
			abort();
		free(back);
	}
out:
	free(r);
	free(v);
	free(arg);
}

static void merge(const struct policy_set *s, const struct vmspec_request *r)
{
	static const char *const groups[] = {"users", "g1"};
	static const struct policy_ctx ctxs[] = {
	    {"alice", "p1", "acct", "normal", groups, 2},
	    {"bob", "q", NULL, NULL, groups, 1},
	    {"carol", "other", "x", "high", NULL, 0},
	    {NULL, NULL, NULL, NULL, NULL, 0},
	};
	struct vmspec *base = malloc(sizeof(*base));
	struct vmspec *out = malloc(sizeof(*out));
	char why[1024], buf[4096];

	if (!base || !out)
		goto done;
	vmspec_defaults(base);
	for (size_t i = 0; i < sizeof(ctxs) / sizeof(ctxs[0]); i++) {
		char *text = NULL;

		policy_set_matches(s, &ctxs[i], buf, sizeof(buf));
		if (policy_resolve(s, &ctxs[i], r, base, out, why,
				   sizeof(why)) != 0)
			continue;
		if (vmspec_explain(out, &text) == 0)
			free(text);
		vmspec_guest_mem_mib(&out->v, 4096);
	}
	policy_set_describe(s, buf, sizeof(buf));
done:
	free(base);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *opts = NULL, *lines[MAX_LINES];
	struct vmspec_request *r = calloc(1, sizeof(*r));
	struct policy *p[2] = {NULL, NULL};
	struct policy_set *s = NULL;
	char err[1024];
	size_t len = size;
	int n = 0;

	if (!text || !r)
		goto out;
	memcpy(text, data, size);
	text[size] = '\0';
	if ((opts = strstr(text, "\n--\n"))) {
		len = (size_t)(opts - text);
		*opts = '\0';
		opts += 4;
		for (char *l = strtok(opts, "\n"); l && n < MAX_LINES;
		     l = strtok(NULL, "\n"))
			lines[n++] = l;
	}
	for (int i = 0; i < n; i++)
		exercise_option(lines[i]);
	vmspec_request_from_argv(r, n, lines, err, sizeof(err));
	if (policy_parse(text, len, "fuzz.json", &p[0], err, sizeof(err)) != 0)
		goto out;
	if (policy_parse(fixed_policy, strlen(fixed_policy), "fixed.json",
			 &p[1], err, sizeof(err)) != 0)
		abort();
	if (policy_set_new(p, 2, &s, err, sizeof(err)) == 0) {
		merge(s, r);
		policy_set_free(s);
	}
	p[0] = p[1] = NULL;
out:
	policy_free(p[0]);
	policy_free(p[1]);
	free(r);
	free(text);
	return 0;
}
