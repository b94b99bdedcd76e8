/* SPDX-License-Identifier: MIT */
/* The spec's fields: their table, values, text form, origins, and the guest
 * memory arithmetic. The user's options are in vmspec_opt.c. */
#include "vmspec.h"

#include "cleanup.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const hugepages_names[] = {"none", "2M", "1G", NULL};
static const char *const emulator_names[] = {"job", "housekeeping", NULL};
static const char *const ckpt_files_names[] = {"node", "served", "9p", NULL};

#define MEMBER(m)                          \
	offsetof(struct vmspec_values, m), \
	    sizeof(((struct vmspec_values *)0)->m)

static const struct vmspec_field_info fields[VMSPEC_NFIELDS] = {
    [VMSPEC_IMAGE] = {"image", VMSPEC_K_STR, MEMBER(image), 0, NULL, "vm-env",
		      false},
    [VMSPEC_IMAGE_PATHS] = {"image_paths", VMSPEC_K_BOOL, MEMBER(image_paths),
			    0, NULL, NULL, false},
    [VMSPEC_CHECKPOINT] = {"checkpoint", VMSPEC_K_BOOL, MEMBER(checkpoint), 0,
			   NULL, "vm-checkpoint", false},
    [VMSPEC_CHECKPOINT_LEAD_S] = {"checkpoint_lead_s", VMSPEC_K_U32,
				  MEMBER(checkpoint_lead_s), 7 * 86400, NULL,
				  "vm-checkpoint-lead", false},
    [VMSPEC_CHECKPOINT_DIR] = {"checkpoint_dir", VMSPEC_K_PATH,
			       MEMBER(checkpoint_dir), 0, NULL,
			       "vm-checkpoint-dir", true},
    [VMSPEC_REQUEUE] = {"requeue", VMSPEC_K_BOOL, MEMBER(requeue), 0, NULL,
			"vm-requeue", false},
    [VMSPEC_CHECKPOINT_KEEP] = {"checkpoint_keep", VMSPEC_K_BOOL,
				MEMBER(checkpoint_keep), 0, NULL,
				"vm-checkpoint-keep", false},
    [VMSPEC_RESTORE_FROM] = {"restore_from", VMSPEC_K_U32, MEMBER(restore_from),
			     VMSPEC_MAX_JOB_ID, NULL, "vm-restore", false},
    [VMSPEC_HUGEPAGES] = {"hugepages", VMSPEC_K_ENUM, MEMBER(hugepages), 0,
			  hugepages_names, "vm-hugepages", false},
    [VMSPEC_MEM_HEADROOM_PCT] = {"mem_headroom_pct", VMSPEC_K_U32,
				 MEMBER(mem_headroom_pct), 90, NULL,
				 "vm-mem-headroom", false},
    [VMSPEC_MEM_HEADROOM_MIB] = {"mem_headroom_mib", VMSPEC_K_U32,
				 MEMBER(mem_headroom_mib), 1u << 20, NULL,
				 "vm-mem-headroom", false},
    [VMSPEC_IB_VFS] = {"ib_vfs", VMSPEC_K_U32, MEMBER(ib_vfs), 64, NULL,
		       "vm-ib", false},
    [VMSPEC_GPUS] = {"gpus", VMSPEC_K_BOOL, MEMBER(gpus), 0, NULL, "vm-gpus",
		     false},
    [VMSPEC_MOUNTS] = {"mounts", VMSPEC_K_MOUNTS, MEMBER(mounts),
		       VMSPEC_MAX_MOUNTS, NULL, "vm-mount", true},
    [VMSPEC_KEEP_OVERLAY] = {"keep_overlay", VMSPEC_K_BOOL,
			     MEMBER(keep_overlay), 0, NULL, "vm-keep-overlay",
			     false},
    [VMSPEC_CPU_MODEL] = {"cpu_model", VMSPEC_K_STR, MEMBER(cpu_model), 0, NULL,
			  "vm-cpu-model", false},
    [VMSPEC_EMULATOR_THREADS] = {"emulator_threads", VMSPEC_K_ENUM,
				 MEMBER(emulator_threads), 0, emulator_names,
				 "vm-emulator-threads", false},
    [VMSPEC_CHECKPOINT_FILES] = {"checkpoint_files", VMSPEC_K_ENUM,
				 MEMBER(checkpoint_files), 0, ckpt_files_names,
				 "vm-checkpoint-files", false},
    [VMSPEC_WARM_START] = {"warm_start", VMSPEC_K_BOOL, MEMBER(warm_start), 0,
			   NULL, "vm-warm-start", false},
};

const struct vmspec_field_info *vmspec_field(enum vmspec_field f)
{
	return (unsigned)f < VMSPEC_NFIELDS ? &fields[f] : NULL;
}

int vmspec_field_by_name(const char *name)
{
	for (int i = 0; i < VMSPEC_NFIELDS; i++)
		if (strcmp(fields[i].name, name) == 0)
			return i;
	return -1;
}

void vmspec_defaults(struct vmspec *ret)
{
	memset(ret, 0, sizeof(*ret));
	/* Enough for a TCG guest of a few hundred MiB to save itself. */
	ret->v.checkpoint_lead_s = 300;
	ret->v.hugepages = VMSPEC_HP_NONE;
	/* QEMU's own memory beside the guest's: ~80 MiB measured under TCG
	 * for 256 MiB to 4 GiB guests (bench/qemu-mem), plus a margin; the
	 * node's mem_headroom_mib overrides it. */
	ret->v.mem_headroom_mib = 128;
	/* A job that got GPUs from Slurm wants them in its guest. */
	ret->v.gpus = true;
	ret->v.emulator_threads = VMSPEC_EMU_JOB;
}

static void *member(struct vmspec_values *v, enum vmspec_field f)
{
	return (char *)v + fields[f].off;
}

static const void *cmember(const struct vmspec_values *v, enum vmspec_field f)
{
	return (const char *)v + fields[f].off;
}

uint32_t vmspec_get_num(const struct vmspec_values *v, enum vmspec_field f)
{
	switch (fields[f].kind) {
	case VMSPEC_K_BOOL:
		return *(const bool *)cmember(v, f);
	case VMSPEC_K_U32:
	case VMSPEC_K_ENUM:
		return *(const uint32_t *)cmember(v, f);
	case VMSPEC_K_MOUNTS:
		return v->mounts.n;
	case VMSPEC_K_STR:
	case VMSPEC_K_PATH:
		break;
	}
	return 0;
}

void vmspec_set_num(struct vmspec_values *v, enum vmspec_field f, uint32_t n)
{
	switch (fields[f].kind) {
	case VMSPEC_K_BOOL:
		*(bool *)member(v, f) = n != 0;
		break;
	case VMSPEC_K_U32:
	case VMSPEC_K_ENUM:
		*(uint32_t *)member(v, f) = n;
		break;
	case VMSPEC_K_MOUNTS:
		if (n < v->mounts.n)
			v->mounts.n = n;
		break;
	case VMSPEC_K_STR:
	case VMSPEC_K_PATH:
		break;
	}
}

const char *vmspec_get_str(const struct vmspec_values *v, enum vmspec_field f)
{
	if (fields[f].kind != VMSPEC_K_STR && fields[f].kind != VMSPEC_K_PATH)
		return "";
	return cmember(v, f);
}

void vmspec_copy_field(struct vmspec_values *dst,
		       const struct vmspec_values *src, enum vmspec_field f)
{
	memcpy(member(dst, f), cmember(src, f), fields[f].size);
}

static bool mount_equal(const struct vmspec_mount *a,
			const struct vmspec_mount *b)
{
	return strcmp(a->src, b->src) == 0 && strcmp(a->dst, b->dst) == 0 &&
	       a->ro == b->ro;
}

bool vmspec_field_equal(const struct vmspec_values *a,
			const struct vmspec_values *b, enum vmspec_field f)
{
	switch (fields[f].kind) {
	case VMSPEC_K_STR:
	case VMSPEC_K_PATH:
		return strcmp(vmspec_get_str(a, f), vmspec_get_str(b, f)) == 0;
	case VMSPEC_K_MOUNTS:
		if (a->mounts.n != b->mounts.n)
			return false;
		for (uint32_t i = 0; i < a->mounts.n; i++)
			if (!mount_equal(&a->mounts.m[i], &b->mounts.m[i]))
				return false;
		return true;
	case VMSPEC_K_BOOL:
	case VMSPEC_K_U32:
	case VMSPEC_K_ENUM:
		break;
	}
	return vmspec_get_num(a, f) == vmspec_get_num(b, f);
}

static int inval(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int inval(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Appends to buf as snprintf would, never past len. */
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

void vmspec_format_mount(const struct vmspec_mount *m, char *buf, size_t len)
{
	snprintf(buf, len, "%s:%s:%s", m->src, m->dst, m->ro ? "ro" : "rw");
}

void vmspec_format_field(const struct vmspec_values *v, enum vmspec_field f,
			 char *buf, size_t len)
{
	const struct vmspec_field_info *fi = &fields[f];
	char one[2 * VMSPEC_MAX_MOUNT_PATH + 8];

	if (!len)
		return;
	buf[0] = '\0';
	switch (fi->kind) {
	case VMSPEC_K_BOOL:
		snprintf(buf, len, "%s", vmspec_get_num(v, f) ? "yes" : "no");
		break;
	case VMSPEC_K_U32:
		snprintf(buf, len, "%u", vmspec_get_num(v, f));
		break;
	case VMSPEC_K_ENUM:
		snprintf(buf, len, "%s", fi->choices[vmspec_get_num(v, f)]);
		break;
	case VMSPEC_K_STR:
	case VMSPEC_K_PATH:
		snprintf(buf, len, "%s", vmspec_get_str(v, f));
		break;
	case VMSPEC_K_MOUNTS:
		if (!v->mounts.n)
			snprintf(buf, len, "none");
		for (uint32_t i = 0; i < v->mounts.n; i++) {
			vmspec_format_mount(&v->mounts.m[i], one, sizeof(one));
			append(buf, len, "%s%s", i ? "," : "", one);
		}
		break;
	}
}

static int parse_bool(const char *t, bool *ret)
{
	static const char *const yes[] = {"yes", "on", "true", "1"};
	static const char *const no[] = {"no", "off", "false", "0"};

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcasecmp(t, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcasecmp(t, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* Plain decimal, no sign, no spaces. */
static int parse_num(const char *t, uint32_t *ret)
{
	uint64_t n = 0;

	if (!*t || strlen(t) > 10)
		return -EINVAL;
	for (const char *p = t; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (n > UINT32_MAX)
		return -EINVAL;
	*ret = (uint32_t)n;
	return 0;
}

static void choices_list(const char *const *c, char *buf, size_t len)
{
	buf[0] = '\0';
	for (size_t i = 0; c[i]; i++)
		append(buf, len, "%s%s", i ? ", " : "", c[i]);
}

/* A clean absolute path that can sit in a ':'/','-separated list and in
 * the node's messages: no trailing '/', no ':' or ','. */
static bool clean_path(const char *p, size_t size)
{
	size_t n = strlen(p);

	return n < size && valid_abs_path(p) && !strpbrk(p, ":,") &&
	       (n == 1 || p[n - 1] != '/');
}

/* Guest paths a mount must never cover. */
static bool guest_reserved(const char *dst)
{
	static const char *const sys[] = {"/proc", "/sys", "/dev"};

	if (strcmp(dst, "/") == 0)
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(sys); i++) {
		size_t n = strlen(sys[i]);
		if (strncmp(dst, sys[i], n) == 0 &&
		    (dst[n] == '\0' || dst[n] == '/'))
			return true;
	}
	return false;
}

int vmspec_parse_mount(const char *text, struct vmspec_mount *ret, char *err,
		       size_t errlen)
{
	char buf[2 * VMSPEC_MAX_MOUNT_PATH + 8], safe[80];
	char *dst, *mode;

	printable(text, safe, sizeof(safe));
	if (strlen(text) >= sizeof(buf))
		return inval(err, errlen, "mount '%s' is too long", safe);
	strcpy(buf, text);
	dst = strchr(buf, ':');
	if (!dst)
		return inval(err, errlen, "mount '%s' is not SRC:DST[:ro|:rw]",
			     safe);
	*dst++ = '\0';
	mode = strchr(dst, ':');
	if (mode)
		*mode++ = '\0';
	memset(ret, 0, sizeof(*ret));
	if (mode && strcmp(mode, "ro") != 0 && strcmp(mode, "rw") != 0)
		return inval(err, errlen,
			     "mount '%s': mode must be 'ro' or 'rw'", safe);
	if (!clean_path(buf, sizeof(ret->src)) ||
	    !clean_path(dst, sizeof(ret->dst)))
		return inval(err, errlen,
			     "mount '%s': both paths must be clean absolute "
			     "paths (no '.', '..', '//', trailing '/', ':' "
			     "or ',')",
			     safe);
	if (guest_reserved(dst))
		return inval(err, errlen,
			     "mount '%s': the guest's %s cannot be covered",
			     safe, dst);
	strcpy(ret->src, buf);
	strcpy(ret->dst, dst);
	ret->ro = mode && strcmp(mode, "ro") == 0;
	return 0;
}

static int parse_mounts(struct vmspec_mounts *ret, const char *text, char *err,
			size_t errlen)
{
	struct vmspec_mounts m = {0};
	char *save = NULL, *item;
	_cleanup_free_ char *copy = strdup(text);

	if (!copy)
		return -ENOMEM;
	if (strcmp(text, "none") == 0) {
		*ret = m;
		return 0;
	}
	for (item = strtok_r(copy, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		int r;

		if (m.n == VMSPEC_MAX_MOUNTS)
			return inval(err, errlen, "more than %d mounts",
				     VMSPEC_MAX_MOUNTS);
		r = vmspec_parse_mount(item, &m.m[m.n], err, errlen);
		if (r < 0)
			return r;
		for (uint32_t i = 0; i < m.n; i++)
			if (strcmp(m.m[i].dst, m.m[m.n].dst) == 0)
				return inval(err, errlen,
					     "two mounts on %s in the guest",
					     m.m[i].dst);
		m.n++;
	}
	if (!m.n)
		return inval(err, errlen, "no mount given (use 'none')");
	*ret = m;
	return 0;
}

static bool cpu_model_ok(const char *t)
{
	size_t n = strlen(t);

	if (n == 0 || n >= VMSPEC_MAX_CPU_MODEL)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = t[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '+' || c == '-'))
			return false;
	}
	return true;
}

static int parse_str(struct vmspec_values *v, enum vmspec_field f,
		     const char *t, const char *safe, char *err, size_t errlen)
{
	bool ok;

	if (f == VMSPEC_IMAGE)
		ok = strlen(t) < VMSPEC_MAX_IMAGE &&
		     (valid_image_ref(t) || clean_path(t, VMSPEC_MAX_IMAGE));
	else if (f == VMSPEC_CPU_MODEL)
		ok = cpu_model_ok(t);
	else
		ok = clean_path(t, fields[f].size);
	if (!ok && fields[f].kind == VMSPEC_K_PATH)
		return inval(err, errlen,
			     "'%s' is not a clean absolute path (no '.', '..', "
			     "'//', trailing '/', ':' or ',')",
			     safe);
	if (!ok)
		return inval(err, errlen, "invalid %s '%s'", fields[f].name,
			     safe);
	snprintf(member(v, f), fields[f].size, "%s", t);
	return 0;
}

static int parse_enum(struct vmspec_values *v, enum vmspec_field f,
		      const char *t, const char *safe, char *err, size_t errlen)
{
	const char *const *c = fields[f].choices;
	char list[128];

	for (uint32_t i = 0; c[i]; i++) {
		if (strcasecmp(c[i], t) == 0) {
			vmspec_set_num(v, f, i);
			return 0;
		}
	}
	choices_list(c, list, sizeof(list));
	return inval(err, errlen, "'%s' is not one of: %s", safe, list);
}

int vmspec_parse_field(struct vmspec_values *v, enum vmspec_field f,
		       const char *text, char *err, size_t errlen)
{
	const struct vmspec_field_info *fi = vmspec_field(f);
	char safe[80];
	uint32_t n;
	bool b;

	if (!fi || !text)
		return inval(err, errlen, "no such field");
	printable(text, safe, sizeof(safe));
	switch (fi->kind) {
	case VMSPEC_K_BOOL:
		if (parse_bool(text, &b) < 0)
			return inval(err, errlen, "'%s' is not yes or no",
				     safe);
		vmspec_set_num(v, f, b);
		return 0;
	case VMSPEC_K_U32:
		if (parse_num(text, &n) < 0 || n > fi->limit)
			return inval(err, errlen,
				     "'%s' is not a number in 0..%u", safe,
				     fi->limit);
		vmspec_set_num(v, f, n);
		return 0;
	case VMSPEC_K_ENUM:
		return parse_enum(v, f, text, safe, err, errlen);
	case VMSPEC_K_STR:
	case VMSPEC_K_PATH:
		return parse_str(v, f, text, safe, err, errlen);
	case VMSPEC_K_MOUNTS:
		return parse_mounts(&v->mounts, text, err, errlen);
	}
	return -EINVAL;
}

void vmspec_format_src(const struct vmspec_src *s, char *buf, size_t len)
{
	static const char *const how[] = {
	    [VMSPEC_BUILTIN] = "built-in default",
	    [VMSPEC_DEFAULT] = "default of",
	    [VMSPEC_USER] = "user",
	    [VMSPEC_ENFORCED] = "enforced by",
	    [VMSPEC_CAP] = "limited by",
	};

	if (s->origin == VMSPEC_BUILTIN || s->origin == VMSPEC_USER)
		snprintf(buf, len, "%s", how[s->origin]);
	else
		snprintf(buf, len, "%s policy '%s' (%s)", how[s->origin],
			 s->policy, s->file);
}

/* A growing text buffer for the explain output. */
struct text {
	char *buf;
	size_t len, cap;
	int err;
};

static void text_add(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->err = -EINVAL;
			return;
		}
		if ((size_t)n < t->cap - t->len)
			break;
		char *nb = realloc(t->buf, t->cap * 2 + (size_t)n);
		if (!nb) {
			t->err = -ENOMEM;
			return;
		}
		t->buf = nb;
		t->cap = t->cap * 2 + (size_t)n;
	}
	t->len += (size_t)n;
}

int vmspec_explain(const struct vmspec *s, char **ret)
{
	struct text t = {.buf = malloc(1024), .cap = 1024};
	char val[VMSPEC_MAX_IMAGE + 16], src[256];

	if (!t.buf)
		return -ENOMEM;
	t.buf[0] = '\0';
	for (int f = 0; f < VMSPEC_NFIELDS; f++) {
		vmspec_format_src(&s->src[f], src, sizeof(src));
		if (f == VMSPEC_MOUNTS && s->v.mounts.n) {
			for (uint32_t i = 0; i < s->v.mounts.n; i++) {
				vmspec_format_mount(&s->v.mounts.m[i], val,
						    sizeof(val));
				vmspec_format_src(&s->mount_src[i], src,
						  sizeof(src));
				text_add(&t, "%-18s %-24s %s\n",
					 i ? "" : fields[f].name, val, src);
			}
			continue;
		}
		vmspec_format_field(&s->v, f, val, sizeof(val));
		if (!val[0])
			snprintf(val, sizeof(val), "(node default)");
		text_add(&t, "%-18s %-24s %s\n", fields[f].name, val, src);
	}
	if (t.err) {
		free(t.buf);
		return t.err;
	}
	*ret = t.buf;
	return 0;
}

uint32_t vmspec_guest_mem_mib(const struct vmspec_values *v, uint64_t alloc_mib)
{
	uint64_t pct = (alloc_mib * v->mem_headroom_pct + 99) / 100;
	uint64_t headroom =
	    pct > v->mem_headroom_mib ? pct : v->mem_headroom_mib;

	if (headroom >= alloc_mib)
		return 0;
	alloc_mib -= headroom;
	return alloc_mib > UINT32_MAX ? UINT32_MAX : (uint32_t)alloc_mib;
}
