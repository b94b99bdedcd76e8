/* SPDX-License-Identifier: MIT */
/*
 * Catalog parsing and validation. Every value is checked for type, length,
 * characters and (for sources) shape here, so nothing downstream sees a
 * string it has to distrust. Errors name the image (index, and name once
 * known), the version and the field.
 */
#include "catalog.h"

#include "cleanup.h"

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pctx {
	char *err;
	size_t errlen;
	char where[200]; /* "image 3 ('debian12') version 0 ('2025.1')" */
	const char *base;
	struct catalog *c;
};

static int pfail(struct pctx *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int pfail(struct pctx *p, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->where[0])
		snprintf(p->err, p->errlen, "%s: %s", p->where, msg);
	else
		snprintf(p->err, p->errlen, "%s", msg);
	return -EINVAL;
}

static bool text_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static const char *safe_key(const char *key, char *buf, size_t len)
{
	return printable(key, buf, len);
}

/* A JSON string that is a whole C string: json-c keeps what follows a
 * \u0000, and reading the value as a C string would silently cut it. */
static int get_text(struct pctx *p, struct json_object *v, const char *key,
		    char *dst, size_t size)
{
	const char *s;

	if (!json_object_is_type(v, json_type_string))
		return pfail(p, "'%s' must be a string", key);
	s = json_object_get_string(v);
	if ((size_t)json_object_get_string_len(v) != strlen(s))
		return pfail(p, "invalid '%s': contains a NUL byte", key);
	if (strlen(s) >= size || !text_ok(s))
		return pfail(p, "invalid '%s'", key);
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

static bool valid_name(const char *s)
{
	return valid_image_ref(s) && !strchr(s, ':');
}

static int get_name(struct pctx *p, struct json_object *v, const char *key,
		    char *dst, size_t size)
{
	int r = get_text(p, v, key, dst, size);

	if (r < 0)
		return r;
	if (strchr(dst, ':'))
		return pfail(p, "':' in name or version ('%s')", key);
	return valid_name(dst) ? 0 : pfail(p, "invalid '%s'", key);
}

/* NAME:VERSION must fit where a reference is kept (catalog_resolve, the
 * start request's image, a job's): a longer one could never be named. */
static int check_ref_len(struct pctx *p, const struct catalog_image *img)
{
	if (strlen(img->name) + 1 + strlen(img->version) < VMENV_MAX_IMAGE_NAME)
		return 0;
	return pfail(p, "name and version longer than %d characters together",
		     VMENV_MAX_IMAGE_NAME - 1);
}

static int get_u64(struct pctx *p, struct json_object *v, const char *key,
		   uint64_t max, uint64_t *ret)
{
	int64_t n = json_object_get_int64(v);

	if (!json_object_is_type(v, json_type_int) || n < 0 ||
	    (uint64_t)n > max)
		return pfail(p, "'%s' must be an integer in 0..%llu", key,
			     (unsigned long long)max);
	*ret = (uint64_t)n;
	return 0;
}

static int get_mem(struct pctx *p, struct json_object *v, uint32_t *ret)
{
	uint64_t n = 0;
	int r = get_u64(p, v, "min_mem_mib", 1u << 30, &n);

	if (r == 0)
		*ret = (uint32_t)n;
	return r;
}

/* --- keys allowed in each object ----------------------------------------- */

static int check_keys(struct pctx *p, struct json_object *o,
		      const char *const *allowed, const char *what)
{
	json_object_object_foreach(o, key, val)
	{
		bool ok = false;
		char safe[40];

		(void)val;
		for (const char *const *a = allowed; *a; a++)
			ok |= strcmp(*a, key) == 0;
		if (!ok)
			return pfail(p, "unknown field '%s'%s%s",
				     safe_key(key, safe, sizeof(safe)),
				     what ? " in " : "", what ? what : "");
	}
	return 0;
}

static int need(struct pctx *p, struct json_object *o, const char *key,
		const char *in, struct json_object **ret)
{
	if (json_object_object_get_ex(o, key, ret))
		return 0;
	if (in)
		return pfail(p, "missing '%s' in '%s'", key, in);
	return pfail(p, "missing '%s'", key);
}

/* --- sources --------------------------------------------------------------- */

bool catalog_valid_sha256(const char *hex)
{
	size_t i;

	for (i = 0; hex[i]; i++)
		if (!isxdigit((unsigned char)hex[i]))
			return false;
	return i == 64;
}

/* Characters a path may hold in a catalog: safe in a URL, a file name and
 * a log line without quoting or encoding. */
static bool path_chars_ok(const char *s)
{
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._+~/-", *s))
			return false;
	return true;
}

static bool rel_path_ok(const char *s)
{
	char abs[CATALOG_MAX_URL + 2];

	if (!*s || s[0] == '/' || !path_chars_ok(s))
		return false;
	if (str_printf(abs, sizeof(abs), "/%s", s) < 0)
		return false;
	return valid_abs_path(abs);
}

/* URL characters outside [A-Za-z0-9] that may appear in a source: no
 * quotes, spaces, backslashes or brackets. */
static bool url_chars_ok(const char *s)
{
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) &&
		    !strchr("-._~:/?[]@!$&'()*+,;=%", *s))
			return false;
	return true;
}

static bool http_url_ok(const char *s)
{
	const char *host = strstr(s, "://") + 3;

	return url_chars_ok(s) && *host && *host != '/';
}

static int abs_source(const char *source, char *out, size_t outlen)
{
	if (strncmp(source, "http://", 7) == 0 ||
	    strncmp(source, "https://", 8) == 0) {
		if (!http_url_ok(source))
			return -EINVAL;
		return str_printf(out, outlen, "%s", source);
	}
	if (strncmp(source, "file://", 7) == 0) {
		if (!valid_abs_path(source + 7) || !path_chars_ok(source + 7))
			return -EINVAL;
		return str_printf(out, outlen, "%s", source);
	}
	if (source[0] == '/') {
		if (!valid_abs_path(source) || !path_chars_ok(source))
			return -EINVAL;
		return str_printf(out, outlen, "file://%s", source);
	}
	return 1; /* not absolute */
}

int catalog_source_url(const char *base, const char *source, char *out,
		       size_t outlen)
{
	char b[CATALOG_MAX_URL];
	int r;

	if (!source || strlen(source) >= CATALOG_MAX_URL)
		return -EINVAL;
	r = abs_source(source, out, outlen);
	if (r <= 0)
		return r;
	if (strchr(source, ':') || !rel_path_ok(source) || !base || !*base)
		return -EINVAL;
	/* The base itself must be an absolute URL naming a directory. */
	if (abs_source(base, b, sizeof(b)) != 0 || b[strlen(b) - 1] != '/')
		return -EINVAL;
	return str_printf(out, outlen, "%s%s", b, source);
}

int catalog_base_of(const char *path_or_url, char *out, size_t outlen)
{
	char url[CATALOG_MAX_URL];
	const char *path, *slash;
	int r = abs_source(path_or_url, url, sizeof(url));

	if (r != 0)
		return -EINVAL;
	/* The path part starts after "scheme://host". */
	path = strchr(strstr(url, "://") + 3, '/');
	if (!path)
		return str_printf(out, outlen, "%s/", url);
	slash = strrchr(path, '/');
	return str_printf(out, outlen, "%.*s", (int)(slash - url + 1), url);
}

/* --- one file of a version (disk, kernel, initrd) ------------------------- */

static int parse_format(struct pctx *p, struct json_object *v,
			enum catalog_disk_format *ret)
{
	char s[16];
	int r = get_text(p, v, "format", s, sizeof(s));

	if (r < 0)
		return r;
	if (strcmp(s, "qcow2") == 0)
		*ret = CATALOG_DISK_QCOW2;
	else if (strcmp(s, "raw") == 0)
		*ret = CATALOG_DISK_RAW;
	else
		return pfail(p, "'format' in 'disk' must be \"qcow2\" or "
				"\"raw\"");
	return 0;
}

static int parse_file(struct pctx *p, struct json_object *o, const char *what,
		      struct catalog_file *f, enum catalog_disk_format *fmt)
{
	static const char *const disk_keys[] = {"source", "sha256", "size",
						"format", NULL};
	static const char *const file_keys[] = {"source", "sha256", "size",
						NULL};
	struct json_object *v;
	char src[CATALOG_MAX_URL];
	int r;

	if (!json_object_is_type(o, json_type_object))
		return pfail(p, "'%s' must be an object", what);
	if ((r = check_keys(p, o, fmt ? disk_keys : file_keys, what)) < 0 ||
	    (r = need(p, o, "source", what, &v)) < 0 ||
	    (r = get_text(p, v, "source", src, sizeof(src))) < 0)
		return r;
	r = catalog_source_url(p->base, src, f->source, sizeof(f->source));
	if (r < 0)
		return pfail(
		    p,
		    "invalid 'source' in '%s': want an http(s):// or "
		    "file:// URL, an absolute path, or a path relative "
		    "to the catalog (no '..')",
		    what);
	if ((r = need(p, o, "sha256", what, &v)) < 0 ||
	    (r = get_text(p, v, "sha256", f->sha256, sizeof(f->sha256))) < 0)
		return r;
	if (!catalog_valid_sha256(f->sha256))
		return pfail(p, "invalid 'sha256' in '%s': want 64 hex digits",
			     what);
	for (char *c = f->sha256; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if ((r = need(p, o, "size", what, &v)) < 0 ||
	    (r = get_u64(p, v, "size", CATALOG_MAX_SIZE, &f->size)) < 0)
		return r;
	if (f->size == 0)
		return pfail(p, "'size' in '%s' must not be 0", what);
	if (!fmt)
		return 0;
	if ((r = need(p, o, "format", what, &v)) < 0)
		return r;
	return parse_format(p, v, fmt);
}

/* --- one version of an image ---------------------------------------------- */

static int parse_boot(struct pctx *p, struct json_object *v,
		      enum catalog_boot *ret)
{
	char s[16];
	int r = get_text(p, v, "boot", s, sizeof(s));

	if (r < 0)
		return r;
	if (strcmp(s, "kernel") == 0)
		*ret = CATALOG_BOOT_KERNEL;
	else if (strcmp(s, "disk") == 0)
		*ret = CATALOG_BOOT_DISK;
	else if (strcmp(s, "disk-kernel") == 0)
		*ret = CATALOG_BOOT_DISK_KERNEL;
	else
		return pfail(p, "'boot' must be \"kernel\", \"disk\" or "
				"\"disk-kernel\"");
	return 0;
}

/* Which files each boot method needs (1), allows (0) or forbids (-1). */
static int boot_wants(enum catalog_boot b, const char *what)
{
	bool disk = strcmp(what, "disk") == 0;

	switch (b) {
	case CATALOG_BOOT_KERNEL:
		return disk ? -1 : 1;
	case CATALOG_BOOT_DISK:
		return disk ? 1 : -1;
	case CATALOG_BOOT_DISK_KERNEL:
		return 1;
	}
	return -1;
}

static int version_files(struct pctx *p, struct json_object *o,
			 struct catalog_image *img)
{
	static const char *const names[] = {"disk", "kernel", "initrd"};
	struct catalog_file *files[] = {&img->disk, &img->kernel, &img->initrd};
	struct json_object *v;
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		bool has = json_object_object_get_ex(o, names[i], &v);
		int want = boot_wants(img->boot, names[i]);

		if (has && want < 0)
			return pfail(p, "'%s' makes no sense with boot \"%s\"",
				     names[i], catalog_boot_name(img->boot));
		if (!has && want > 0)
			return pfail(p, "missing '%s' (boot \"%s\" needs it)",
				     names[i], catalog_boot_name(img->boot));
		if (has &&
		    (r = parse_file(p, v, names[i], files[i],
				    i == 0 ? &img->disk_format : NULL)) < 0)
			return r;
	}
	if (img->boot == CATALOG_BOOT_DISK &&
	    json_object_object_get_ex(o, "cmdline", NULL))
		return pfail(p, "'cmdline' makes no sense with boot \"disk\"");
	return 0;
}

static int parse_version(struct pctx *p, struct json_object *o,
			 struct catalog_image *img)
{
	static const char *const keys[] = {"version",	  "boot",   "disk",
					   "kernel",	  "initrd", "cmdline",
					   "min_mem_mib", NULL};
	struct json_object *v;
	int r;

	if (!json_object_is_type(o, json_type_object))
		return pfail(p, "not an object");
	if ((r = need(p, o, "version", NULL, &v)) < 0 ||
	    (r = get_name(p, v, "version", img->version,
			  sizeof(img->version))) < 0 ||
	    (r = check_ref_len(p, img)) < 0)
		return r;
	snprintf(p->where + strlen(p->where),
		 sizeof(p->where) - strlen(p->where), " ('%s')", img->version);
	if ((r = check_keys(p, o, keys, NULL)) < 0 ||
	    (r = need(p, o, "boot", NULL, &v)) < 0 ||
	    (r = parse_boot(p, v, &img->boot)) < 0 ||
	    (r = version_files(p, o, img)) < 0)
		return r;
	if (json_object_object_get_ex(o, "cmdline", &v) &&
	    (r = get_text(p, v, "cmdline", img->cmdline,
			  sizeof(img->cmdline))) < 0)
		return r;
	if (json_object_object_get_ex(o, "min_mem_mib", &v) &&
	    (r = get_mem(p, v, &img->min_mem_mib)) < 0)
		return r;
	return 0;
}

/* --- image-level fields shared by its versions ---------------------------- */

static bool label_key_ok(const char *k)
{
	size_t n = strlen(k);

	if (n == 0 || n > 32)
		return false;
	for (; *k; k++)
		if (!islower((unsigned char)*k) &&
		    !isdigit((unsigned char)*k) && !strchr("_.-", *k))
			return false;
	return true;
}

static int parse_labels(struct pctx *p, struct json_object *o,
			struct catalog_image *img)
{
	if (!json_object_is_type(o, json_type_object))
		return pfail(p, "'labels' must be an object of strings");
	json_object_object_foreach(o, key, val)
	{
		struct catalog_label *l;
		char safe[40];

		if (img->nlabels >= CATALOG_MAX_LABELS)
			return pfail(p, "more than %d labels",
				     CATALOG_MAX_LABELS);
		if (!label_key_ok(key))
			return pfail(p,
				     "invalid label '%s' (want [a-z0-9_.-], "
				     "at most 32)",
				     safe_key(key, safe, sizeof(safe)));
		l = &img->labels[img->nlabels++];
		snprintf(l->key, sizeof(l->key), "%s", key);
		if (get_text(p, val, "labels", l->value, sizeof(l->value)) < 0)
			return pfail(p, "invalid value of label '%s'", key);
	}
	return 0;
}

static int add_alias(struct pctx *p, struct json_object *v, const char *name)
{
	struct catalog *c = p->c;
	struct catalog_alias *a;
	int r;

	if (c->naliases >= CATALOG_MAX_IMAGES)
		return pfail(p, "more than %d aliases", CATALOG_MAX_IMAGES);
	a = &c->aliases[c->naliases];
	if ((r = get_name(p, v, "aliases", a->alias, sizeof(a->alias))) < 0)
		return r;
	snprintf(a->name, sizeof(a->name), "%s", name);
	c->naliases++;
	return 0;
}

static int parse_aliases(struct pctx *p, struct json_object *arr,
			 const char *name)
{
	size_t n;
	int r;

	if (!json_object_is_type(arr, json_type_array))
		return pfail(p, "'aliases' must be an array of names");
	n = json_object_array_length(arr);
	if (n > CATALOG_MAX_ALIASES)
		return pfail(p, "more than %d aliases", CATALOG_MAX_ALIASES);
	for (size_t i = 0; i < n; i++)
		if ((r = add_alias(p, json_object_array_get_idx(arr, i),
				   name)) < 0)
			return r;
	return 0;
}

/* Fields every version inherits: name, description, labels, minimum
 * memory (a version may raise or lower it). */
static int parse_common(struct pctx *p, struct json_object *o,
			struct catalog_image *tmpl)
{
	struct json_object *v;
	int r;

	if (json_object_object_get_ex(o, "description", &v) &&
	    (r = get_text(p, v, "description", tmpl->description,
			  sizeof(tmpl->description))) < 0)
		return r;
	if (json_object_object_get_ex(o, "labels", &v) &&
	    (r = parse_labels(p, v, tmpl)) < 0)
		return r;
	if (json_object_object_get_ex(o, "min_mem_mib", &v) &&
	    (r = get_mem(p, v, &tmpl->min_mem_mib)) < 0)
		return r;
	if (json_object_object_get_ex(o, "aliases", &v) &&
	    (r = parse_aliases(p, v, tmpl->name)) < 0)
		return r;
	return 0;
}

static int set_default(struct pctx *p, struct json_object *o,
		       struct catalog_image *first, size_t n)
{
	struct json_object *v;
	char def[65];
	int r;

	if (!json_object_object_get_ex(o, "default_version", &v)) {
		first[n - 1].is_default = true;
		return 0;
	}
	if ((r = get_name(p, v, "default_version", def, sizeof(def))) < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(first[i].version, def) == 0) {
			first[i].is_default = true;
			return 0;
		}
	}
	return pfail(p, "'default_version' '%s' is not one of its versions",
		     def);
}

static int parse_image_v2(struct pctx *p, struct json_object *o,
			  const char *name, size_t idx)
{
	static const char *const keys[] = {
	    "name",	   "aliases",	      "description", "labels",
	    "min_mem_mib", "default_version", "versions",    NULL};
	struct catalog_image tmpl = {0}, *first = &p->c->images[p->c->n];
	struct json_object *arr;
	size_t n, where_len;
	int r;

	snprintf(tmpl.name, sizeof(tmpl.name), "%s", name);
	tmpl.entry = idx;
	if ((r = check_keys(p, o, keys, NULL)) < 0 ||
	    (r = parse_common(p, o, &tmpl)) < 0 ||
	    (r = need(p, o, "versions", NULL, &arr)) < 0)
		return r;
	if (!json_object_is_type(arr, json_type_array) ||
	    (n = json_object_array_length(arr)) == 0)
		return pfail(p, "'versions' must be a non-empty array");
	where_len = strlen(p->where);
	for (size_t i = 0; i < n; i++) {
		struct catalog_image *img = &p->c->images[p->c->n];

		*img = tmpl;
		snprintf(p->where + where_len, sizeof(p->where) - where_len,
			 " version %zu", i);
		if ((r = parse_version(p, json_object_array_get_idx(arr, i),
				       img)) < 0)
			return r;
		p->c->n++;
	}
	p->where[where_len] = '\0';
	return set_default(p, o, first, n);
}

/* The first format: one entry per version, local files, no checksum. */
static int parse_image_legacy(struct pctx *p, struct json_object *o,
			      const char *name, size_t idx)
{
	static const char *const keys[] = {
	    "name",    "version",     "boot",	     "kernel", "initrd",
	    "cmdline", "min_mem_mib", "description", NULL};
	struct catalog_image *img = &p->c->images[p->c->n];
	struct json_object *v;
	char boot[16];
	int r;

	snprintf(img->name, sizeof(img->name), "%s", name);
	img->entry = idx;
	img->legacy = true;
	img->boot = CATALOG_BOOT_KERNEL;
	if ((r = check_keys(p, o, keys, NULL)) < 0 ||
	    (r = need(p, o, "version", NULL, &v)) < 0 ||
	    (r = get_name(p, v, "version", img->version,
			  sizeof(img->version))) < 0 ||
	    (r = check_ref_len(p, img)) < 0 ||
	    (r = need(p, o, "boot", NULL, &v)) < 0 ||
	    (r = get_text(p, v, "boot", boot, sizeof(boot))) < 0)
		return r;
	if (strcmp(boot, "kernel") != 0)
		return pfail(p, "boot method must be \"kernel\" in an entry "
				"with local 'kernel'/'initrd' paths (use "
				"'versions' for disk images)");
	static const char *const paths[] = {"kernel", "initrd"};
	struct catalog_file *files[] = {&img->kernel, &img->initrd};
	for (size_t i = 0; i < 2; i++) {
		if ((r = need(p, o, paths[i], NULL, &v)) < 0 ||
		    (r = get_text(p, v, paths[i], files[i]->source,
				  sizeof(files[i]->source))) < 0)
			return r;
		if (!valid_abs_path(files[i]->source))
			return pfail(p, "invalid '%s'", paths[i]);
	}
	if (json_object_object_get_ex(o, "cmdline", &v) &&
	    (r = get_text(p, v, "cmdline", img->cmdline,
			  sizeof(img->cmdline))) < 0)
		return r;
	if ((r = parse_common(p, o, img)) < 0)
		return r;
	p->c->n++;
	return 0;
}

static int parse_image(struct pctx *p, struct json_object *o, size_t idx)
{
	struct json_object *v;
	char name[65];
	int r;

	snprintf(p->where, sizeof(p->where), "image %zu", idx);
	if (!json_object_is_type(o, json_type_object))
		return pfail(p, "not an object");
	if ((r = need(p, o, "name", NULL, &v)) < 0 ||
	    (r = get_name(p, v, "name", name, sizeof(name))) < 0)
		return r;
	snprintf(p->where, sizeof(p->where), "image %zu ('%s')", idx, name);
	if (json_object_object_get_ex(o, "versions", NULL))
		return parse_image_v2(p, o, name, idx);
	if (!json_object_object_get_ex(o, "version", NULL) &&
	    !json_object_object_get_ex(o, "kernel", NULL))
		return pfail(p, "missing 'versions'");
	return parse_image_legacy(p, o, name, idx);
}

/* --- whole-catalog rules ---------------------------------------------------- */

static size_t count_versions(struct json_object *arr)
{
	size_t n = 0, len = json_object_array_length(arr);

	for (size_t i = 0; i < len; i++) {
		struct json_object *o = json_object_array_get_idx(arr, i), *v;

		if (json_object_is_type(o, json_type_object) &&
		    json_object_object_get_ex(o, "versions", &v) &&
		    json_object_is_type(v, json_type_array))
			n += json_object_array_length(v);
		else
			n++;
	}
	return n;
}

static bool same_image(const struct catalog_image *a,
		       const struct catalog_image *b)
{
	return strcmp(a->name, b->name) == 0;
}

/* Names, versions and aliases each mean one thing. First-format entries
 * repeat their name once per version; a name in the new format appears
 * in one place only. */
static int check_unique(struct pctx *p)
{
	const struct catalog *c = p->c;

	p->where[0] = '\0';
	for (size_t i = 0; i < c->n; i++) {
		for (size_t k = i + 1; k < c->n; k++) {
			const struct catalog_image *a = &c->images[i],
						   *b = &c->images[k];
			if (!same_image(a, b))
				continue;
			if (strcmp(a->version, b->version) == 0)
				return pfail(p,
					     "image '%s' lists version "
					     "'%s' twice",
					     a->name, a->version);
			if ((!a->legacy || !b->legacy) && a->entry != b->entry)
				return pfail(p, "image '%s' is listed twice",
					     a->name);
		}
	}
	for (size_t i = 0; i < c->naliases; i++) {
		const char *al = c->aliases[i].alias;

		for (size_t k = 0; k < c->n; k++)
			if (strcmp(c->images[k].name, al) == 0)
				return pfail(p,
					     "alias '%s' of image '%s' is "
					     "also an image name",
					     al, c->aliases[i].name);
		for (size_t k = i + 1; k < c->naliases; k++)
			if (strcmp(c->aliases[k].alias, al) == 0)
				return pfail(p, "alias '%s' is given twice",
					     al);
	}
	return 0;
}

/* First-format entries: the last one of a name is its default. */
static void legacy_defaults(struct catalog *c)
{
	for (size_t i = 0; i < c->n; i++) {
		bool later = false;

		if (!c->images[i].legacy)
			continue;
		for (size_t k = i + 1; k < c->n; k++)
			later |= same_image(&c->images[i], &c->images[k]);
		c->images[i].is_default = !later;
	}
}

static int parse_root(struct pctx *p, struct json_object *root)
{
	static const char *const keys[] = {"images", "base_url", NULL};
	struct json_object *arr, *v;
	char given[CATALOG_MAX_URL], base[CATALOG_MAX_URL];
	size_t n, total;
	int r;

	if (!json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "images", &arr) ||
	    !json_object_is_type(arr, json_type_array))
		return pfail(p, "top level must be {\"images\": [...]}");
	if (check_keys(p, root, keys, NULL) < 0)
		return pfail(p, "unknown top-level field (allowed: images, "
				"base_url)");
	if (json_object_object_get_ex(root, "base_url", &v)) {
		if ((r = get_text(p, v, "base_url", given, sizeof(given) - 1)) <
		    0)
			return r;
		if (given[0] && given[strlen(given) - 1] != '/')
			strcat(given, "/");
		if (abs_source(given, base, sizeof(base)) != 0)
			return pfail(p, "invalid 'base_url': want an "
					"http(s):// or file:// URL");
		p->base = base;
	}
	n = json_object_array_length(arr);
	total = count_versions(arr);
	if (total > CATALOG_MAX_IMAGES)
		return pfail(p,
			     "more than %d images (versions count once "
			     "each)",
			     CATALOG_MAX_IMAGES);
	p->c->images = calloc(total ? total : 1, sizeof(*p->c->images));
	p->c->aliases = calloc(CATALOG_MAX_IMAGES, sizeof(*p->c->aliases));
	if (!p->c->images || !p->c->aliases)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if ((r = parse_image(p, json_object_array_get_idx(arr, i), i)) <
		    0)
			return r;
	legacy_defaults(p->c);
	return check_unique(p);
}

static unsigned line_of(const char *text, size_t end)
{
	unsigned line = 1;

	for (size_t i = 0; i < end; i++)
		line += text[i] == '\n';
	return line;
}

/* Only white space may follow the top-level value: a second object pasted
 * into the file must not be silently ignored. */
static bool only_space_after(struct json_tokener *tok, const char *text,
			     size_t len)
{
	size_t end = json_tokener_get_parse_end(tok);

	for (size_t i = end; i < len; i++)
		if (!isspace((unsigned char)text[i]))
			return false;
	return true;
}

int catalog_parse_base(const char *text, size_t len, const char *base,
		       struct catalog *ret, char *err, size_t errlen)
{
	struct json_tokener *tok;
	struct catalog c = {0};
	struct pctx p = {.err = err, .errlen = errlen, .base = base, .c = &c};
	struct json_object *root;
	enum json_tokener_error jerr;
	size_t end;
	bool trailing;
	int r;

	if (len > CATALOG_MAX_FILE || len > INT32_MAX)
		return pfail(&p, "catalog larger than %u bytes",
			     CATALOG_MAX_FILE);
	tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	root = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	trailing = root && !only_space_after(tok, text, len);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!root || jerr != json_tokener_success || trailing) {
		json_object_put(root);
		return pfail(&p, "not valid JSON at line %u: %s",
			     line_of(text, end),
			     trailing ? "text after the top-level object"
			     : jerr == json_tokener_continue
				 ? "unexpected end of the text"
				 : json_tokener_error_desc(jerr));
	}
	r = parse_root(&p, root);
	json_object_put(root);
	if (r < 0) {
		catalog_clear(&c);
		return r;
	}
	*ret = c;
	return 0;
}

int catalog_parse(const char *text, size_t len, struct catalog *ret, char *err,
		  size_t errlen)
{
	return catalog_parse_base(text, len, "", ret, err, errlen);
}

int catalog_load(const char *path, struct catalog *ret, char *err,
		 size_t errlen)
{
	_cleanup_free_ char *text = NULL;
	char base[CATALOG_MAX_URL] = "";
	_cleanup_free_ char *real = NULL;
	size_t len;
	int r = read_file_limited(path, CATALOG_MAX_FILE, &text, &len);

	if (r < 0) {
		snprintf(err, errlen, "cannot read catalog %s: %s", path,
			 strerror(-r));
		return r;
	}
	/* A directory that cannot be a base only matters to relative
	 * sources, which then fail with their own message. */
	real = realpath(path, NULL);
	if (catalog_base_of(real ? real : path, base, sizeof(base)) < 0)
		base[0] = '\0';
	return catalog_parse_base(text, len, base, ret, err, errlen);
}

void catalog_clear(struct catalog *c)
{
	free(c->images);
	free(c->aliases);
	c->images = NULL;
	c->aliases = NULL;
	c->n = 0;
	c->naliases = 0;
}
