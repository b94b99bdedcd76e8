/* SPDX-License-Identifier: MIT */
/* Which policies apply to a job, in which order, and the merge of the
 * user's request with them (the rules are in policy.h). Pure. */
#include "policy_priv.h"

#include "cleanup.h"
#include "util.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct policy_set {
	size_t n;
	struct policy **p; /* in the order they apply */
};

/* --- the set -------------------------------------------------------------
 */

static int by_order(const void *a, const void *b)
{
	const struct policy *x = *(struct policy *const *)a;
	const struct policy *y = *(struct policy *const *)b;

	if (x->specificity != y->specificity)
		return x->specificity < y->specificity ? -1 : 1;
	return strcmp(x->file, y->file);
}

int policy_set_new(struct policy **p, size_t n, struct policy_set **ret,
		   char *err, size_t errlen)
{
	struct policy_set *s = calloc(1, sizeof(*s));

	if (!s || !(s->p = calloc(n ? n : 1, sizeof(*s->p)))) {
		free(s);
		for (size_t i = 0; i < n; i++)
			policy_free(p[i]);
		return -ENOMEM;
	}
	if (n)
		memcpy(s->p, p, n * sizeof(*p));
	s->n = n;
	qsort(s->p, n, sizeof(*s->p), by_order);
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < i; j++) {
			if (strcmp(s->p[i]->name, s->p[j]->name) != 0)
				continue;
			snprintf(err, errlen,
				 "%s: name: policy '%s' is also the name of "
				 "%s",
				 s->p[i]->file, s->p[i]->name, s->p[j]->file);
			policy_set_free(s);
			return -EINVAL;
		}
	}
	*ret = s;
	return 0;
}

void policy_set_free(struct policy_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		policy_free(s->p[i]);
	free(s->p);
	free(s);
}

size_t policy_set_count(const struct policy_set *s)
{
	return s ? s->n : 0;
}

/* --- matching ------------------------------------------------------------
 */

static bool any_matches(const struct policy_patterns *p, const char *value)
{
	for (size_t i = 0; i < p->n; i++)
		if (fnmatch(p->v[i], value ? value : "", 0) == 0)
			return true;
	return false;
}

static const char *ctx_value(const struct policy_ctx *c, int k)
{
	switch (k) {
	case POLICY_PARTITION:
		return c->partition;
	case POLICY_ACCOUNT:
		return c->account;
	case POLICY_USER:
		return c->user;
	case POLICY_QOS:
		return c->qos;
	}
	return NULL;
}

static bool policy_matches(const struct policy *p, const struct policy_ctx *c)
{
	for (int k = 0; k < POLICY_NKEYS; k++) {
		bool ok = false;

		if (!p->match[k].n)
			continue;
		if (k != POLICY_GROUP) {
			ok = any_matches(&p->match[k], ctx_value(c, k));
		} else {
			for (size_t g = 0; g < c->ngroups && !ok; g++)
				ok = any_matches(&p->match[k], c->groups[g]);
			if (!c->ngroups)
				ok = any_matches(&p->match[k], "");
		}
		if (!ok)
			return false;
	}
	return true;
}

static void append(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t len, const char *fmt, ...)
{
	size_t used = strnlen(buf, len);
	va_list ap;

	if (used + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

void policy_set_matches(const struct policy_set *s, const struct policy_ctx *c,
			char *buf, size_t len)
{
	bool any = false;

	if (!len)
		return;
	buf[0] = '\0';
	for (size_t i = 0; s && i < s->n; i++) {
		if (!policy_matches(s->p[i], c))
			continue;
		append(buf, len, "%s%s (%s)", any ? ", " : "", s->p[i]->file,
		       s->p[i]->name);
		any = true;
	}
	if (!any)
		snprintf(buf, len, "(none)");
}

void policy_set_describe(const struct policy_set *s, char *buf, size_t len)
{
	if (!len)
		return;
	buf[0] = '\0';
	for (size_t i = 0; s && i < s->n; i++) {
		const struct policy *p = s->p[i];
		bool any = false;

		append(buf, len, "%s: policy '%s' (", p->file, p->name);
		for (int k = 0; k < POLICY_NKEYS; k++) {
			for (size_t j = 0; j < p->match[k].n; j++) {
				append(buf, len, "%s%s=%s", any ? " " : "",
				       policy_key_names[k], p->match[k].v[j]);
				any = true;
			}
		}
		append(buf, len, "%s)\n", any ? "" : "every job");
	}
}

/* --- allow -----------------------------------------------------------------
 */

/* p is at or below the first n bytes of prefix, at a component
 * boundary. */
static bool under_n(const char *p, const char *prefix, size_t n)
{
	if (n == 1 && prefix[0] == '/')
		return true;
	return strncmp(p, prefix, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

static bool under(const char *p, const char *prefix)
{
	return under_n(p, prefix, strlen(prefix));
}

/* An image reference matches as written and without a trailing ".img". */
static bool image_matches(const struct policy_patterns *pat, const char *img)
{
	char bare[VMSPEC_MAX_IMAGE];
	size_t n = strlen(img);

	if (any_matches(pat, img))
		return true;
	if (img[0] == '/' || n <= 4 || strcmp(img + n - 4, ".img") != 0 ||
	    strchr(img, ':'))
		return false;
	if (n >= sizeof(bare))
		return false;
	memcpy(bare, img, n - 4);
	bare[n - 4] = '\0';
	return any_matches(pat, bare);
}

static bool mount_allowed(const struct policy_patterns *pat,
			  const struct vmspec_mount *m)
{
	for (size_t i = 0; i < pat->n; i++) {
		const char *colon = strchr(pat->v[i], ':');
		size_t n =
		    colon ? (size_t)(colon - pat->v[i]) : strlen(pat->v[i]);

		/* "PREFIX:ro": only read-only mounts below PREFIX. */
		if (under_n(m->src, pat->v[i], n) && (!colon || m->ro))
			return true;
	}
	return false;
}

static bool mounts_allowed(const struct policy_patterns *pat,
			   const struct vmspec_mounts *ms, uint32_t *bad)
{
	for (uint32_t i = 0; i < ms->n; i++) {
		if (!mount_allowed(pat, &ms->m[i])) {
			if (bad)
				*bad = i;
			return false;
		}
	}
	return true;
}

/* Does p's allow rule for f admit v's value? For mounts, *bad is the
 * first mount it does not admit. */
static bool allows(const struct policy *p, int f, const struct vmspec_values *v,
		   uint32_t *bad)
{
	const struct policy_patterns *pat = &p->allow[f];

	switch (vmspec_field(f)->kind) {
	case VMSPEC_K_BOOL:
	case VMSPEC_K_ENUM:
		return p->allow_mask[f] & (1u << vmspec_get_num(v, f));
	case VMSPEC_K_STR:
		return f == VMSPEC_IMAGE
			   ? image_matches(pat, v->image)
			   : any_matches(pat, vmspec_get_str(v, f));
	case VMSPEC_K_PATH:
		for (size_t i = 0; i < pat->n; i++)
			if (under(vmspec_get_str(v, f), pat->v[i]))
				return true;
		return false;
	case VMSPEC_K_MOUNTS:
		return mounts_allowed(pat, &v->mounts, bad);
	case VMSPEC_K_U32:
		break;
	}
	return true;
}

bool policy_allows(const struct policy *p, int f, const struct vmspec_values *v)
{
	return allows(p, f, v, NULL);
}

static void allow_list(const struct policy *p, int f, char *buf, size_t len)
{
	const struct vmspec_field_info *fi = vmspec_field(f);
	bool any = false;

	buf[0] = '\0';
	if (fi->kind == VMSPEC_K_BOOL || fi->kind == VMSPEC_K_ENUM) {
		for (uint32_t i = 0; i < 32; i++) {
			const char *name = fi->kind == VMSPEC_K_BOOL
					       ? (i == 0   ? "no"
						  : i == 1 ? "yes"
							   : NULL)
					       : fi->choices[i];
			if (!name)
				break;
			if (p->allow_mask[f] & (1u << i)) {
				append(buf, len, "%s%s", any ? ", " : "", name);
				any = true;
			}
		}
	}
	for (size_t i = 0; i < p->allow[f].n; i++) {
		append(buf, len, "%s%s", any ? ", " : "", p->allow[f].v[i]);
		any = true;
	}
	if (!any)
		snprintf(buf, len, "nothing");
}

/* --- the merge -------------------------------------------------------------
 */

struct merge {
	const struct vmspec_request *req;
	const struct vmspec *base;
	struct vmspec *out;
	char *why;
	size_t whylen;
	/* For each field and rule, the policy whose rule applies. */
	const struct policy *eff[VMSPEC_NFIELDS][POLICY_NRULES];
	const struct policy *ums; /* user_may_set */
	struct vmspec_mounts user_mounts;
};

static int refuse(struct merge *m, int f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(struct merge *m, int f, const char *fmt, ...)
{
	char why[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(m->why, m->whylen, "%s: %s", vmspec_field(f)->name, why);
	return POLICY_REFUSED;
}

/* "policy 'prod' (10-prod.json)" */
static const char *pname(const struct policy *p, char *buf, size_t len)
{
	snprintf(buf, len, "policy '%s' (%s)", p->name, p->file);
	return buf;
}

static void set_src(struct vmspec_src *s, enum vmspec_origin o,
		    const struct policy *p)
{
	memset(s, 0, sizeof(*s));
	s->origin = o;
	if (p) {
		snprintf(s->policy, sizeof(s->policy), "%s", p->name);
		snprintf(s->file, sizeof(s->file), "%s", p->file);
	}
}

/* The value as a message quotes it: 'none', '/a:/b:ro', 600. */
static void quoted(const struct vmspec_values *v, int f, char *buf, size_t len)
{
	size_t n;

	if (vmspec_field(f)->kind == VMSPEC_K_U32) {
		vmspec_format_field(v, f, buf, len);
		return;
	}
	buf[0] = '\'';
	vmspec_format_field(v, f, buf + 1, len - 2);
	n = strlen(buf);
	buf[n] = '\'';
	buf[n + 1] = '\0';
}

static bool user_may_set(const struct merge *m, int f)
{
	return !m->ums || (m->ums->user_may_set & POLICY_BIT(f));
}

static int not_settable(struct merge *m, int f)
{
	char pn[256], list[512] = "";
	bool any = false;

	for (int i = 0; i < VMSPEC_NFIELDS; i++) {
		if (m->ums->user_may_set & POLICY_BIT(i)) {
			append(list, sizeof(list), "%s%s", any ? ", " : "",
			       vmspec_field(i)->name);
			any = true;
		}
	}
	return refuse(m, f,
		      "users may not choose it under %s, which lets users "
		      "choose only: %s",
		      pname(m->ums, pn, sizeof(pn)), any ? list : "nothing");
}

/* The user's value of a field (not mounts) against allow, max and min
 * (the enforced value was checked before). */
static int check_user(struct merge *m, int f)
{
	const struct policy *const *e = m->eff[f];
	const struct vmspec_values *u = &m->req->v;
	char pn[256], uv[VMSPEC_MAX_IMAGE + 16], list[1024];
	uint32_t n = vmspec_get_num(u, f);

	quoted(u, f, uv, sizeof(uv));
	if (e[POLICY_ALLOW] && !allows(e[POLICY_ALLOW], f, u, NULL)) {
		allow_list(e[POLICY_ALLOW], f, list, sizeof(list));
		return refuse(m, f, "%s is not allowed by %s; allowed: %s", uv,
			      pname(e[POLICY_ALLOW], pn, sizeof(pn)), list);
	}
	if (!e[POLICY_ALLOW] && vmspec_field(f)->closed)
		return refuse(m, f, "%s: no policy lets you choose it", uv);
	if (vmspec_field(f)->kind != VMSPEC_K_U32)
		return 0;
	if (e[POLICY_MAX] && n > e[POLICY_MAX]->max[f])
		return refuse(m, f, "%u is above the maximum %u of %s", n,
			      e[POLICY_MAX]->max[f],
			      pname(e[POLICY_MAX], pn, sizeof(pn)));
	if (e[POLICY_MIN] && n < e[POLICY_MIN]->min[f])
		return refuse(m, f, "%u is below the minimum %u of %s", n,
			      e[POLICY_MIN]->min[f],
			      pname(e[POLICY_MIN], pn, sizeof(pn)));
	return 0;
}

/* Numbers outside max/min that did not come from the user are capped. */
static void cap(struct merge *m, int f)
{
	const struct policy *const *e = m->eff[f];
	uint32_t n = vmspec_get_num(&m->out->v, f);

	if (vmspec_field(f)->kind != VMSPEC_K_U32)
		return;
	if (e[POLICY_MAX] && n > e[POLICY_MAX]->max[f]) {
		vmspec_set_num(&m->out->v, f, e[POLICY_MAX]->max[f]);
		set_src(&m->out->src[f], VMSPEC_CAP, e[POLICY_MAX]);
	}
	if (e[POLICY_MIN] && n < e[POLICY_MIN]->min[f]) {
		vmspec_set_num(&m->out->v, f, e[POLICY_MIN]->min[f]);
		set_src(&m->out->src[f], VMSPEC_CAP, e[POLICY_MIN]);
	}
}

/* A default (built-in or a policy's) must be allowed too; "" means the
 * node's own default and always is. */
static int check_default(struct merge *m, int f)
{
	const struct policy *a = m->eff[f][POLICY_ALLOW];
	enum vmspec_origin o = m->out->src[f].origin;
	char pn[256], v[VMSPEC_MAX_IMAGE + 16], src[256], list[1024];

	if (!a || (o != VMSPEC_BUILTIN && o != VMSPEC_DEFAULT))
		return 0;
	if ((vmspec_field(f)->kind == VMSPEC_K_STR ||
	     vmspec_field(f)->kind == VMSPEC_K_PATH) &&
	    !vmspec_get_str(&m->out->v, f)[0])
		return 0;
	if (allows(a, f, &m->out->v, NULL))
		return 0;
	quoted(&m->out->v, f, v, sizeof(v));
	vmspec_format_src(&m->out->src[f], src, sizeof(src));
	allow_list(a, f, list, sizeof(list));
	return refuse(m, f,
		      "the default %s (%s) is not allowed by %s; allowed: %s; "
		      "choose one with --%s",
		      v, src, pname(a, pn, sizeof(pn)), list,
		      vmspec_field(f)->option);
}

/* The enforced number after the caps, and the policy that capped it. */
static uint32_t enforced_num(const struct merge *m, int f,
			     const struct policy **capper)
{
	const struct policy *const *e = m->eff[f];
	uint32_t n = vmspec_get_num(e[POLICY_ENFORCE]->enforce, f);

	*capper = NULL;
	if (e[POLICY_MAX] && n > e[POLICY_MAX]->max[f]) {
		n = e[POLICY_MAX]->max[f];
		*capper = e[POLICY_MAX];
	}
	if (e[POLICY_MIN] && n < e[POLICY_MIN]->min[f]) {
		n = e[POLICY_MIN]->min[f];
		*capper = e[POLICY_MIN];
	}
	return n;
}

/* The user's value against the enforced one. Numbers are compared after
 * the caps: a user who asks for what the job gets contradicts nothing. */
static int check_enforced(struct merge *m, int f)
{
	const struct policy *ep = m->eff[f][POLICY_ENFORCE], *capper;
	char uv[VMSPEC_MAX_IMAGE + 16], ev[VMSPEC_MAX_IMAGE + 16];
	char pn[256], cn[256];
	uint32_t n;

	if (vmspec_field(f)->kind != VMSPEC_K_U32) {
		if (vmspec_field_equal(&m->req->v, ep->enforce, f))
			return 0;
		quoted(&m->req->v, f, uv, sizeof(uv));
		quoted(ep->enforce, f, ev, sizeof(ev));
		return refuse(m, f, "%s contradicts %s enforced by %s", uv, ev,
			      pname(ep, pn, sizeof(pn)));
	}
	n = enforced_num(m, f, &capper);
	if (vmspec_get_num(&m->req->v, f) == n)
		return 0;
	if (!capper)
		return refuse(m, f, "%u contradicts %u enforced by %s",
			      vmspec_get_num(&m->req->v, f), n,
			      pname(ep, pn, sizeof(pn)));
	return refuse(m, f,
		      "%u contradicts %u (%u enforced by %s, limited "
		      "by %s)",
		      vmspec_get_num(&m->req->v, f), n,
		      vmspec_get_num(ep->enforce, f), pname(ep, pn, sizeof(pn)),
		      pname(capper, cn, sizeof(cn)));
}

static int resolve_field(struct merge *m, int f)
{
	const struct policy *const *e = m->eff[f];
	const struct vmspec_field_info *fi = vmspec_field(f);
	struct vmspec_values *out = &m->out->v;
	int r;

	if (e[POLICY_DEFAULT]) {
		vmspec_copy_field(out, e[POLICY_DEFAULT]->dflt, f);
		set_src(&m->out->src[f], VMSPEC_DEFAULT, e[POLICY_DEFAULT]);
	}
	if (m->req->set[f]) {
		const struct vmspec_values *without =
		    e[POLICY_ENFORCE] ? e[POLICY_ENFORCE]->enforce : out;

		if (!fi->option)
			return refuse(m, f, "users cannot set it");
		/* A contradiction says most, whoever may set the field. */
		if (e[POLICY_ENFORCE] && (r = check_enforced(m, f)) != 0)
			return r;
		if (!user_may_set(m, f)) {
			/* Saying what the policy says anyway is fine. */
			if (!vmspec_field_equal(&m->req->v, without, f))
				return not_settable(m, f);
		} else if (!e[POLICY_ENFORCE]) {
			/* (Agreeing with an enforced value needs no more
			 * checks: the enforced value applies below.) */
			if ((r = check_user(m, f)) != 0)
				return r;
			vmspec_copy_field(out, &m->req->v, f);
			set_src(&m->out->src[f], VMSPEC_USER, NULL);
		}
	}
	if (e[POLICY_ENFORCE]) {
		vmspec_copy_field(out, e[POLICY_ENFORCE]->enforce, f);
		set_src(&m->out->src[f], VMSPEC_ENFORCED, e[POLICY_ENFORCE]);
	}
	cap(m, f);
	return check_default(m, f);
}

/* --- mounts ----------------------------------------------------------------
 */

static int find_dst(const struct vmspec_mounts *ms, const char *dst)
{
	for (uint32_t i = 0; i < ms->n; i++)
		if (strcmp(ms->m[i].dst, dst) == 0)
			return (int)i;
	return -1;
}

/* The user's mounts against the rules (enf: the enforced mounts). A user
 * mount identical to an enforced one is dropped: it asks for what the job
 * gets anyway. What remains is in m->user_mounts. */
static int check_user_mounts(struct merge *m, const struct vmspec_mounts *enf)
{
	const int f = VMSPEC_MOUNTS;
	const struct policy *const *e = m->eff[f];
	const struct vmspec_mounts *req = &m->req->v.mounts;
	struct vmspec_mounts *u = &m->user_mounts;
	char pn[256], one[2 * VMSPEC_MAX_MOUNT_PATH + 8], list[1024];
	uint32_t bad = 0;

	u->n = 0;
	for (uint32_t i = 0; i < req->n; i++) {
		int j = enf ? find_dst(enf, req->m[i].dst) : -1;

		if (j < 0) {
			u->m[u->n++] = req->m[i];
			continue;
		}
		if (strcmp(enf->m[j].src, req->m[i].src) == 0 &&
		    enf->m[j].ro == req->m[i].ro)
			continue;
		vmspec_format_mount(&req->m[i], one, sizeof(one));
		return refuse(m, f, "'%s' covers %s, where %s mounts %s", one,
			      req->m[i].dst,
			      pname(e[POLICY_ENFORCE], pn, sizeof(pn)),
			      enf->m[j].src);
	}
	if (e[POLICY_MAX] && u->n > e[POLICY_MAX]->max[f])
		return refuse(m, f, "%u mounts are more than the %u of %s",
			      u->n, e[POLICY_MAX]->max[f],
			      pname(e[POLICY_MAX], pn, sizeof(pn)));
	if (!u->n)
		return 0;
	if (!e[POLICY_ALLOW])
		return refuse(m, f,
			      "no policy lets you mount host directories");
	if (mounts_allowed(&e[POLICY_ALLOW]->allow[f], u, &bad))
		return 0;
	vmspec_format_mount(&u->m[bad], one, sizeof(one));
	allow_list(e[POLICY_ALLOW], f, list, sizeof(list));
	return refuse(m, f, "'%s' is not allowed by %s; allowed: %s", one,
		      pname(e[POLICY_ALLOW], pn, sizeof(pn)), list);
}

/* Which mounts besides the enforced ones, and where they come from. */
static int pick_mounts(struct merge *m, const struct vmspec_mounts *enf,
		       const struct vmspec_mounts **ret, struct vmspec_src *src)
{
	const int f = VMSPEC_MOUNTS;
	const struct policy *d = m->eff[f][POLICY_DEFAULT];
	const struct vmspec_mounts *dflt =
	    d ? &d->dflt->mounts : &m->base->v.mounts;
	int r;

	set_src(src, d ? VMSPEC_DEFAULT : VMSPEC_BUILTIN, d);
	*ret = dflt;
	if (m->req->set[f] && !user_may_set(m, f)) {
		if (!vmspec_field_equal(&m->req->v, d ? d->dflt : &m->base->v,
					f))
			return not_settable(m, f);
	} else if (m->req->set[f]) {
		if ((r = check_user_mounts(m, enf)) != 0)
			return r;
		set_src(src, VMSPEC_USER, NULL);
		*ret = &m->user_mounts;
		return 0;
	}
	m->out->v.mounts = *dflt;
	m->out->src[f] = *src;
	return check_default(m, f);
}

static int resolve_mounts(struct merge *m)
{
	const int f = VMSPEC_MOUNTS;
	const struct policy *ep = m->eff[f][POLICY_ENFORCE];
	const struct vmspec_mounts *enf = ep ? &ep->enforce->mounts : NULL;
	const struct vmspec_mounts *rest;
	struct vmspec_mounts *out = &m->out->v.mounts;
	struct vmspec_src rest_src;
	struct vmspec_mounts all = {0};
	int r = pick_mounts(m, enf, &rest, &rest_src);

	if (r != 0)
		return r;
	for (uint32_t i = 0; enf && i < enf->n; i++) {
		all.m[all.n] = enf->m[i];
		set_src(&m->out->mount_src[all.n++], VMSPEC_ENFORCED, ep);
	}
	for (uint32_t i = 0; i < rest->n; i++) {
		/* The enforced mount wins a guest path (a user's conflicting
		 * one was refused above). */
		if (find_dst(&all, rest->m[i].dst) >= 0)
			continue;
		if (all.n == VMSPEC_MAX_MOUNTS)
			return refuse(m, f, "more than %d mounts in all",
				      VMSPEC_MAX_MOUNTS);
		all.m[all.n] = rest->m[i];
		m->out->mount_src[all.n++] = rest_src;
	}
	*out = all;
	m->out->src[f] = rest_src;
	if (enf && enf->n && !rest->n)
		set_src(&m->out->src[f], VMSPEC_ENFORCED, ep);
	return 0;
}

/* --- the whole request -----------------------------------------------------
 */

static void collect(struct merge *m, const struct policy_set *s,
		    const struct policy_ctx *c)
{
	for (size_t i = 0; s && i < s->n; i++) {
		const struct policy *p = s->p[i];

		if (!policy_matches(p, c))
			continue;
		for (int f = 0; f < VMSPEC_NFIELDS; f++) {
			for (int r = 0; r < POLICY_NRULES; r++) {
				if (p->has[r] & POLICY_BIT(f))
					m->eff[f][r] = p;
				else if (p->cleared[r] & POLICY_BIT(f))
					m->eff[f][r] = NULL;
			}
		}
		if (p->has_user_may_set)
			m->ums = p;
		else if (p->clears_user_may_set)
			m->ums = NULL;
	}
}

static int check_image(struct merge *m)
{
	const struct vmspec_values *v = &m->out->v;
	char src[256], safe[80];

	if (!v->image[0])
		return refuse(m, VMSPEC_IMAGE, "no image given (--vm-env)");
	if (v->image[0] != '/' || v->image_paths)
		return 0;
	vmspec_format_src(&m->out->src[VMSPEC_IMAGE_PATHS], src, sizeof(src));
	return refuse(m, VMSPEC_IMAGE,
		      "'%s' is a path, and your own images are not allowed "
		      "here (image_paths: no, %s)",
		      printable(v->image, safe, sizeof(safe)), src);
}

int policy_resolve(const struct policy_set *s, const struct policy_ctx *ctx,
		   const struct vmspec_request *req, const struct vmspec *base,
		   struct vmspec *ret, char *why, size_t whylen)
{
	_cleanup_free_ struct merge *m = calloc(1, sizeof(*m));
	_cleanup_free_ struct vmspec *out = malloc(sizeof(*out));
	int r = 0;

	if (!m || !out)
		return -ENOMEM;
	*out = *base;
	*m = (struct merge){
	    .req = req, .base = base, .out = out, .why = why, .whylen = whylen};
	collect(m, s, ctx);
	for (int f = 0; f < VMSPEC_NFIELDS && r == 0; f++)
		r = f == VMSPEC_MOUNTS ? resolve_mounts(m)
				       : resolve_field(m, f);
	if (r == 0)
		r = check_image(m);
	if (r == 0)
		*ret = *out;
	return r;
}
