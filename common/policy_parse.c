/* SPDX-License-Identifier: MIT */
/* One policy file, JSON to struct policy: the only policy code that knows
 * JSON (json-c). Strict: unknown keys, wrong types, values out of range and
 * rules that contradict each other within the file are errors naming the
 * file and the field. */
#include "policy_priv.h"

#include "cleanup.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Deep enough for the format, shallow enough that hostile input cannot
 * make the tokenizer recurse far. */
#define MAX_DEPTH	8
#define MAX_DESCRIPTION 1024

/* Specificity weight of each match key: a user beats any combination of
 * the others, and so on down. */
static const unsigned key_weight[POLICY_NKEYS] = {
    [POLICY_USER] = 16, [POLICY_GROUP] = 8,	[POLICY_ACCOUNT] = 4,
    [POLICY_QOS] = 2,	[POLICY_PARTITION] = 1,
};

struct pctx {
	const char *file;
	char *err;
	size_t errlen;
	struct policy *p;
};

static int perr(struct pctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int perr(struct pctx *c, const char *path, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (c->err && c->errlen)
		snprintf(c->err, c->errlen, "%s: %s%s%s", c->file,
			 path ? path : "", path ? ": " : "", why);
	return -EINVAL;
}

static void json_putp(struct json_object **o)
{
	if (*o)
		json_object_put(*o);
}
#define _cleanup_json_ __attribute__((cleanup(json_putp)))

static const char *type_name(struct json_object *v)
{
	return json_type_to_name(json_object_get_type(v));
}

/* A string without NUL or control characters, shorter than max. */
static const char *get_text(struct json_object *v, size_t max)
{
	const char *s;

	if (!json_object_is_type(v, json_type_string))
		return NULL;
	s = json_object_get_string(v);
	if (strlen(s) != (size_t)json_object_get_string_len(v) ||
	    strlen(s) >= max)
		return NULL;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return NULL;
	return s;
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= VMSPEC_MAX_POLICY)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
			return false;
	return true;
}

/* check says whether one entry is acceptable (NULL: any text). */
typedef bool (*entry_ok_f)(const char *s);

/* A string or an array of strings into *ret (each under max bytes). */
static int get_patterns(struct pctx *c, const char *path, struct json_object *v,
			bool single_ok, entry_ok_f check, const char *what,
			struct policy_patterns *ret)
{
	size_t n = 1;
	bool arr = json_object_is_type(v, json_type_array);

	if (!arr && !(single_ok && json_object_is_type(v, json_type_string)))
		return perr(c, path, "must be %s, not %s",
			    single_ok ? "a string or an array of strings"
				      : "an array of strings",
			    type_name(v));
	if (arr)
		n = json_object_array_length(v);
	if (n > POLICY_MAX_PATTERNS || (single_ok && n == 0))
		return perr(c, path, "%zu entries (1..%d)", n,
			    POLICY_MAX_PATTERNS);
	ret->v = calloc(n ? n : 1, sizeof(*ret->v));
	if (!ret->v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct json_object *e =
		    arr ? json_object_array_get_idx(v, i) : v;
		const char *s = get_text(e, POLICY_MAX_PATTERN);
		char safe[64];

		if (!s || !*s)
			return perr(
			    c, path,
			    "entry %zu must be a non-empty string of at "
			    "most %d printable bytes",
			    i, POLICY_MAX_PATTERN - 1);
		if (check && !check(s))
			return perr(c, path, "'%s' is not %s",
				    printable(s, safe, sizeof(safe)), what);
		ret->v[i] = strdup(s);
		if (!ret->v[i])
			return -ENOMEM;
		ret->n++;
	}
	return 0;
}

static int parse_match(struct pctx *c, struct json_object *o)
{
	char path[64];

	if (!json_object_is_type(o, json_type_object))
		return perr(c, "match", "must be an object, not %s",
			    type_name(o));
	json_object_object_foreach(o, key, val)
	{
		int k, r;

		for (k = 0; k < POLICY_NKEYS; k++)
			if (strcmp(policy_key_names[k], key) == 0)
				break;
		if (k == POLICY_NKEYS) {
			char safe[40];
			return perr(c, "match",
				    "unknown key '%s' (known: partition, "
				    "account, user, group, qos)",
				    printable(key, safe, sizeof(safe)));
		}
		snprintf(path, sizeof(path), "match.%s", key);
		r = get_patterns(c, path, val, true, NULL, NULL,
				 &c->p->match[k]);
		if (r < 0)
			return r;
		c->p->specificity += key_weight[k];
	}
	return 0;
}

static int parse_user_may_set(struct pctx *c, struct json_object *v)
{
	struct policy_patterns names = {0};
	int r = get_patterns(c, "user_may_set", v, false, NULL, NULL, &names);

	for (size_t i = 0; r == 0 && i < names.n; i++) {
		int f = vmspec_field_by_name(names.v[i]);
		char safe[40];

		if (f < 0 || !vmspec_field(f)->option)
			r = perr(c, "user_may_set",
				 "'%s' is not a field users can set",
				 printable(names.v[i], safe, sizeof(safe)));
		else
			c->p->user_may_set |= POLICY_BIT(f);
	}
	c->p->has_user_may_set = true;
	policy_patterns_free(&names);
	return r;
}

/* --- field rules ------------------------------------------------------ */

static bool prefix_ok(const char *s)
{
	return valid_abs_path(s) && !strpbrk(s, ":,") &&
	       (s[1] == '\0' || s[strlen(s) - 1] != '/');
}

/* "PREFIX" or "PREFIX:ro" */
static bool mount_prefix_ok(const char *s)
{
	const char *colon = strchr(s, ':');
	char buf[POLICY_MAX_PATTERN];

	if (!colon)
		return prefix_ok(s);
	if (strcmp(colon, ":ro") != 0)
		return false;
	snprintf(buf, sizeof(buf), "%.*s", (int)(colon - s), s);
	return prefix_ok(buf);
}

static int allow_bool(struct pctx *c, const char *path, int f,
		      struct json_object *v)
{
	size_t n;

	if (!json_object_is_type(v, json_type_array))
		return perr(c, path, "must be an array of booleans, not %s",
			    type_name(v));
	n = json_object_array_length(v);
	if (n > 2)
		return perr(c, path, "%zu entries (at most true and false)", n);
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);

		if (!json_object_is_type(e, json_type_boolean))
			return perr(c, path, "entry %zu must be a boolean", i);
		c->p->allow_mask[f] |= 1u
				       << (json_object_get_boolean(e) ? 1 : 0);
	}
	return 0;
}

static int allow_enum(struct pctx *c, const char *path, int f,
		      struct json_object *v)
{
	struct policy_patterns names = {0};
	int r = get_patterns(c, path, v, false, NULL, NULL, &names);

	for (size_t i = 0; r == 0 && i < names.n; i++) {
		struct vmspec_values tmp = {0};
		char why[256];

		r = vmspec_parse_field(&tmp, f, names.v[i], why, sizeof(why));
		if (r < 0)
			r = perr(c, path, "%s", why);
		else
			c->p->allow_mask[f] |= 1u << vmspec_get_num(&tmp, f);
	}
	policy_patterns_free(&names);
	return r;
}

static int parse_allow(struct pctx *c, const char *path, int f,
		       struct json_object *v)
{
	const struct vmspec_field_info *fi = vmspec_field(f);

	if (!fi->option)
		return perr(c, path,
			    "'%s' is a policy-only switch: use default or "
			    "enforce",
			    fi->name);
	switch (fi->kind) {
	case VMSPEC_K_BOOL:
		return allow_bool(c, path, f, v);
	case VMSPEC_K_ENUM:
		return allow_enum(c, path, f, v);
	case VMSPEC_K_STR:
		return get_patterns(c, path, v, false, NULL, NULL,
				    &c->p->allow[f]);
	case VMSPEC_K_PATH:
		return get_patterns(c, path, v, false, prefix_ok,
				    "a clean absolute path", &c->p->allow[f]);
	case VMSPEC_K_MOUNTS:
		return get_patterns(c, path, v, false, mount_prefix_ok,
				    "a clean absolute path, optionally "
				    "followed by ':ro'",
				    &c->p->allow[f]);
	case VMSPEC_K_U32:
		break;
	}
	return perr(c, path, "not for numbers: use min and max");
}

static int get_u32(struct pctx *c, const char *path, int f,
		   struct json_object *v, uint32_t *ret)
{
	uint32_t limit = vmspec_field(f)->limit;
	int64_t n;

	if (!json_object_is_type(v, json_type_int))
		return perr(c, path, "must be an integer, not %s",
			    type_name(v));
	n = json_object_get_int64(v);
	/* json-c saturates what does not fit in 64 bits: never quote the
	 * saturated number back as if the admin had written it. */
	if (n == INT64_MAX)
		return perr(c, path, "too large (0..%u)", limit);
	if (n < 0 || n > limit)
		return perr(c, path, "%lld is out of range 0..%u", (long long)n,
			    limit);
	*ret = (uint32_t)n;
	return 0;
}

static int value_mounts(struct pctx *c, const char *path, int f,
			struct json_object *v, struct vmspec_values *dst)
{
	struct policy_patterns items = {0};
	char joined[VMSPEC_MAX_MOUNTS * (2 * VMSPEC_MAX_MOUNT_PATH + 8)];
	char why[512];
	int r = get_patterns(c, path, v, false, NULL, NULL, &items);

	joined[0] = '\0';
	for (size_t i = 0; r == 0 && i < items.n; i++) {
		if (strchr(items.v[i], ',') || i >= VMSPEC_MAX_MOUNTS) {
			r = perr(c, path,
				 "entry %zu: one SRC:DST[:ro] each, "
				 "at most %d",
				 i, VMSPEC_MAX_MOUNTS);
			break;
		}
		size_t used = strlen(joined);
		snprintf(joined + used, sizeof(joined) - used, "%s%s",
			 i ? "," : "", items.v[i]);
	}
	if (r == 0 && items.n == 0)
		snprintf(joined, sizeof(joined), "none");
	if (r == 0 && vmspec_parse_field(dst, f, joined, why, sizeof(why)) < 0)
		r = perr(c, path, "%s", why);
	policy_patterns_free(&items);
	return r;
}

/* A default or enforced value into dst. */
static int parse_value(struct pctx *c, const char *path, int f,
		       struct json_object *v, struct vmspec_values *dst)
{
	const struct vmspec_field_info *fi = vmspec_field(f);
	char why[512];
	uint32_t n;
	int r;

	switch (fi->kind) {
	case VMSPEC_K_BOOL:
		if (!json_object_is_type(v, json_type_boolean))
			return perr(c, path, "must be true or false, not %s",
				    type_name(v));
		vmspec_set_num(dst, f, json_object_get_boolean(v));
		return 0;
	case VMSPEC_K_U32:
		if ((r = get_u32(c, path, f, v, &n)) < 0)
			return r;
		vmspec_set_num(dst, f, n);
		return 0;
	case VMSPEC_K_MOUNTS:
		return value_mounts(c, path, f, v, dst);
	case VMSPEC_K_ENUM:
	case VMSPEC_K_STR:
	case VMSPEC_K_PATH:
		break;
	}
	const char *s = get_text(v, VMSPEC_MAX_IMAGE);
	if (!s)
		return perr(c, path, "must be a string of printable bytes");
	if (vmspec_parse_field(dst, f, s, why, sizeof(why)) < 0)
		return perr(c, path, "%s", why);
	return 0;
}

static struct vmspec_values **value_slot(struct policy *p, int rule)
{
	return rule == POLICY_DEFAULT ? &p->dflt : &p->enforce;
}

static int parse_rule(struct pctx *c, int f, int rule, struct json_object *v)
{
	const struct vmspec_field_info *fi = vmspec_field(f);
	struct vmspec_values **slot;
	char path[64];

	snprintf(path, sizeof(path), "%s.%s", fi->name,
		 policy_rule_names[rule]);
	/* null: this rule no longer applies (set by a policy before). */
	if (json_object_is_type(v, json_type_null)) {
		c->p->cleared[rule] |= POLICY_BIT(f);
		return 0;
	}
	c->p->has[rule] |= POLICY_BIT(f);
	switch (rule) {
	case POLICY_ALLOW:
		return parse_allow(c, path, f, v);
	case POLICY_MAX:
	case POLICY_MIN:
		if (fi->kind != VMSPEC_K_U32 &&
		    !(fi->kind == VMSPEC_K_MOUNTS && rule == POLICY_MAX))
			return perr(c, path, "only for numbers%s",
				    rule == POLICY_MAX ? " and mounts" : "");
		return get_u32(c, path, f, v,
			       rule == POLICY_MAX ? &c->p->max[f]
						  : &c->p->min[f]);
	case POLICY_DEFAULT:
		if (f == VMSPEC_IMAGE)
			return perr(c, path,
				    "not for image: the user always names it "
				    "(--vm-env); use allow or enforce");
		break;
	}
	slot = value_slot(c->p, rule);
	if (!*slot && !(*slot = calloc(1, sizeof(**slot))))
		return -ENOMEM;
	return parse_value(c, path, f, v, *slot);
}

/* Rules of one policy must agree with each other. */
static int check_field(struct pctx *c, int f)
{
	const struct vmspec_field_info *fi = vmspec_field(f);
	const struct policy *p = c->p;
	uint32_t b = POLICY_BIT(f);

	if ((p->has[POLICY_DEFAULT] & b) && (p->has[POLICY_ENFORCE] & b))
		return perr(c, fi->name,
			    "both default and enforce (enforce always wins)");
	if ((p->has[POLICY_MAX] & b) && (p->has[POLICY_MIN] & b) &&
	    p->min[f] > p->max[f])
		return perr(c, fi->name, "min %u is above max %u", p->min[f],
			    p->max[f]);
	for (int rule = POLICY_DEFAULT; rule <= POLICY_ENFORCE; rule++) {
		const struct vmspec_values *v = *value_slot(c->p, rule);
		char path[64];

		if (!(p->has[rule] & b))
			continue;
		snprintf(path, sizeof(path), "%s.%s", fi->name,
			 policy_rule_names[rule]);
		/* Enforced mounts are the admin's own, not what users may
		 * add. */
		if ((p->has[POLICY_ALLOW] & b) && !policy_allows(p, f, v) &&
		    !(rule == POLICY_ENFORCE && fi->kind == VMSPEC_K_MOUNTS))
			return perr(c, path,
				    "not admitted by this policy's allow");
		if (fi->kind != VMSPEC_K_U32)
			continue;
		if ((p->has[POLICY_MAX] & b) &&
		    vmspec_get_num(v, f) > p->max[f])
			return perr(c, path, "%u is above this policy's max %u",
				    vmspec_get_num(v, f), p->max[f]);
		if ((p->has[POLICY_MIN] & b) &&
		    vmspec_get_num(v, f) < p->min[f])
			return perr(c, path, "%u is below this policy's min %u",
				    vmspec_get_num(v, f), p->min[f]);
	}
	return 0;
}

static int parse_field(struct pctx *c, int f, struct json_object *o)
{
	const char *name = vmspec_field(f)->name;
	int rules = 0, r;

	if (!json_object_is_type(o, json_type_object))
		return perr(c, name,
			    "must be an object of rules (allow, default, "
			    "enforce, max, min), not %s",
			    type_name(o));
	json_object_object_foreach(o, key, val)
	{
		int rule;

		for (rule = 0; rule < POLICY_NRULES; rule++)
			if (strcmp(policy_rule_names[rule], key) == 0)
				break;
		if (rule == POLICY_NRULES) {
			char safe[40];
			return perr(c, name,
				    "unknown rule '%s' (known: allow, default, "
				    "enforce, max, min)",
				    printable(key, safe, sizeof(safe)));
		}
		if ((r = parse_rule(c, f, rule, val)) < 0)
			return r;
		rules++;
	}
	if (!rules)
		return perr(c, name,
			    "no rule (allow, default, enforce, max, "
			    "min)");
	return check_field(c, f);
}

/* --- the document ------------------------------------------------------ */

static int parse_top(struct pctx *c, const char *key, struct json_object *val)
{
	const char *s;
	char safe[40];
	int f;

	if (strcmp(key, "name") == 0) {
		if (!(s = get_text(val, VMSPEC_MAX_POLICY)) || !name_ok(s))
			return perr(c, "name",
				    "must be 1..%d letters, digits, '.', '_' "
				    "or '-'",
				    VMSPEC_MAX_POLICY - 1);
		snprintf(c->p->name, sizeof(c->p->name), "%s", s);
		return 0;
	}
	if (strcmp(key, "description") == 0)
		return get_text(val, MAX_DESCRIPTION)
			   ? 0
			   : perr(c, "description",
				  "must be a string of at most %d printable "
				  "bytes",
				  MAX_DESCRIPTION - 1);
	if (strcmp(key, "match") == 0)
		return parse_match(c, val);
	if (strcmp(key, "user_may_set") == 0 &&
	    json_object_is_type(val, json_type_null)) {
		c->p->clears_user_may_set = true;
		return 0;
	}
	if (strcmp(key, "user_may_set") == 0)
		return parse_user_may_set(c, val);
	if ((f = vmspec_field_by_name(key)) >= 0)
		return parse_field(c, f, val);
	return perr(c, NULL,
		    "unknown field '%s' (known: name, description, match, "
		    "user_may_set and the spec's fields, see docs/policy.md)",
		    printable(key, safe, sizeof(safe)));
}

/* "FILE:LINE:COL: not valid JSON: ..." */
static int syntax_error(struct pctx *c, const char *text, size_t end,
			const char *why)
{
	unsigned line = 1, col = 1;

	for (size_t i = 0; i < end; i++) {
		if (text[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	if (c->err && c->errlen)
		snprintf(c->err, c->errlen, "%s:%u:%u: not valid JSON: %s",
			 c->file, line, col, why);
	return -EINVAL;
}

static int tokenize(struct pctx *c, const char *text, size_t len,
		    struct json_object **ret)
{
	struct json_tokener *tok;
	enum json_tokener_error jerr;
	struct json_object *o;
	size_t end;

	if (len > POLICY_MAX_FILE)
		return perr(c, NULL, "larger than %d bytes", POLICY_MAX_FILE);
	if (memchr(text, '\0', len))
		return perr(c, NULL, "contains a NUL byte");
	tok = json_tokener_new_ex(MAX_DEPTH);
	if (!tok)
		return -ENOMEM;
	o = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (jerr == json_tokener_continue)
		return syntax_error(c, text, len, "unexpected end of file");
	if (!o || jerr != json_tokener_success) {
		json_object_put(o);
		return syntax_error(c, text, end,
				    json_tokener_error_desc(jerr));
	}
	for (size_t i = end; i < len; i++) {
		if (!isspace((unsigned char)text[i])) {
			json_object_put(o);
			return syntax_error(c, text, i,
					    "text after the policy object");
		}
	}
	*ret = o;
	return 0;
}

static void default_name(struct policy *p, const char *file)
{
	size_t n = strlen(file);

	if (n > 5 && strcmp(file + n - 5, ".json") == 0)
		n -= 5;
	snprintf(p->name, sizeof(p->name), "%.*s", (int)n, file);
}

int policy_parse(const char *text, size_t len, const char *file,
		 struct policy **ret, char *err, size_t errlen)
{
	return policy_parse_as(text, len, file, file, ret, err, errlen);
}

int policy_parse_as(const char *text, size_t len, const char *file,
		    const char *display, struct policy **ret, char *err,
		    size_t errlen)
{
	_cleanup_json_ struct json_object *root = NULL;
	struct pctx c = {.file = display, .err = err, .errlen = errlen};
	int r = tokenize(&c, text, len, &root);

	if (r < 0)
		return r;
	if (!json_object_is_type(root, json_type_object))
		return perr(&c, NULL, "must be a JSON object, not %s",
			    type_name(root));
	c.p = calloc(1, sizeof(*c.p));
	if (!c.p)
		return -ENOMEM;
	snprintf(c.p->file, sizeof(c.p->file), "%s", file);
	default_name(c.p, file);
	json_object_object_foreach(root, key, val)
	{
		if ((r = parse_top(&c, key, val)) < 0) {
			policy_free(c.p);
			return r;
		}
	}
	*ret = c.p;
	return 0;
}
