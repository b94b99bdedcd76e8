/* SPDX-License-Identifier: MIT */
#include "catalog.h"

#include "cleanup.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int cfail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int cfail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

enum field_kind { F_NAME, F_PATH, F_TEXT, F_U32, F_BOOT };

struct field {
	const char *key;
	enum field_kind kind;
	bool required;
	size_t off;
	size_t size;
};

#define FLD(k, kind, req, m)                                     \
	{                                                        \
		k, kind, req, offsetof(struct catalog_image, m), \
		    sizeof(((struct catalog_image *)0)->m)       \
	}

static const struct field fields[] = {
    FLD("name", F_NAME, true, name),
    FLD("version", F_NAME, true, version),
    {"boot", F_BOOT, true, 0, 0},
    FLD("kernel", F_PATH, true, kernel),
    FLD("initrd", F_PATH, true, initrd),
    FLD("cmdline", F_TEXT, false, cmdline),
    FLD("min_mem_mib", F_U32, false, min_mem_mib),
    FLD("description", F_TEXT, false, description),
};

static bool text_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static int set_field(const struct field *f, struct json_object *v,
		     struct catalog_image *img, size_t idx, char *err,
		     size_t errlen)
{
	char *dst = (char *)img + f->off;
	const char *s;

	if (f->kind == F_U32) {
		int64_t n = json_object_get_int64(v);

		if (!json_object_is_type(v, json_type_int) || n < 0 ||
		    n > 1024 * 1024 * 1024)
			return cfail(err, errlen,
				     "image %zu: '%s' must be an integer", idx,
				     f->key);
		*(uint32_t *)(void *)dst = (uint32_t)n;
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return cfail(err, errlen, "image %zu: '%s' must be a string",
			     idx, f->key);
	s = json_object_get_string(v);
	if (f->kind == F_BOOT)
		return strcmp(s, "kernel") == 0
			   ? 0
			   : cfail(err, errlen,
				   "image %zu: boot method must be "
				   "\"kernel\" (disk boot is not "
				   "supported yet)",
				   idx);
	if (strlen(s) >= f->size || !text_ok(s) ||
	    (f->kind == F_NAME && !valid_image_ref(s)) ||
	    (f->kind == F_PATH && !valid_abs_path(s)))
		return cfail(err, errlen, "image %zu: invalid '%s'", idx,
			     f->key);
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

static const struct field *field_by_key(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		if (strcmp(fields[i].key, key) == 0)
			return &fields[i];
	return NULL;
}

static int parse_image(struct json_object *o, struct catalog_image *img,
		       size_t idx, char *err, size_t errlen)
{
	int r;

	if (!json_object_is_type(o, json_type_object))
		return cfail(err, errlen, "image %zu: not an object", idx);
	json_object_object_foreach(o, key, val)
	{
		const struct field *f = field_by_key(key);
		char safe[40];

		if (!f)
			return cfail(err, errlen,
				     "image %zu: unknown field '%s'", idx,
				     printable(key, safe, sizeof(safe)));
		r = set_field(f, val, img, idx, err, errlen);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		if (fields[i].required &&
		    !json_object_object_get_ex(o, fields[i].key, NULL))
			return cfail(err, errlen, "image %zu: missing '%s'",
				     idx, fields[i].key);
	if (strchr(img->name, ':') || strchr(img->version, ':'))
		return cfail(err, errlen, "image %zu: ':' in name or version",
			     idx);
	return 0;
}

static int parse_root(struct json_object *root, struct catalog *c, char *err,
		      size_t errlen)
{
	struct json_object *arr;
	size_t n;

	if (!json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "images", &arr) ||
	    !json_object_is_type(arr, json_type_array))
		return cfail(err, errlen,
			     "top level must be {\"images\": [...]}");
	json_object_object_foreach(root, key, val)
	{
		(void)val;
		if (strcmp(key, "images") != 0)
			return cfail(err, errlen, "unknown top-level field");
	}
	n = json_object_array_length(arr);
	if (n > CATALOG_MAX_IMAGES)
		return cfail(err, errlen, "more than %d images",
			     CATALOG_MAX_IMAGES);
	c->images = calloc(n ? n : 1, sizeof(*c->images));
	if (!c->images)
		return -ENOMEM;
	c->n = n;
	for (size_t i = 0; i < n; i++) {
		int r = parse_image(json_object_array_get_idx(arr, i),
				    &c->images[i], i, err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

int catalog_parse(const char *text, size_t len, struct catalog *ret, char *err,
		  size_t errlen)
{
	struct json_tokener *tok = json_tokener_new();
	struct catalog c = {0};
	struct json_object *root;
	enum json_tokener_error jerr;
	int r;

	if (!tok)
		return -ENOMEM;
	root = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	json_tokener_free(tok);
	if (!root || jerr != json_tokener_success) {
		if (root)
			json_object_put(root);
		return cfail(err, errlen, "not valid JSON: %s",
			     json_tokener_error_desc(jerr));
	}
	r = parse_root(root, &c, err, errlen);
	json_object_put(root);
	if (r < 0) {
		catalog_clear(&c);
		return r;
	}
	*ret = c;
	return 0;
}

int catalog_load(const char *path, struct catalog *ret, char *err,
		 size_t errlen)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = read_file_limited(path, CATALOG_MAX_FILE, &text, &len);

	if (r < 0) {
		snprintf(err, errlen, "cannot read catalog %s: %s", path,
			 strerror(-r));
		return r;
	}
	return catalog_parse(text, len, ret, err, errlen);
}

void catalog_clear(struct catalog *c)
{
	free(c->images);
	c->images = NULL;
	c->n = 0;
}

const struct catalog_image *catalog_find(const struct catalog *c,
					 const char *ref)
{
	char name[VMENV_MAX_IMAGE_NAME];
	const char *version = NULL;
	const struct catalog_image *found = NULL;
	size_t len;
	char *colon;

	if (!ref || strlen(ref) >= sizeof(name))
		return NULL;
	strcpy(name, ref);
	if ((colon = strchr(name, ':'))) {
		*colon = '\0';
		version = colon + 1;
	}
	len = strlen(name);
	if (!version && len > 4 && strcmp(name + len - 4, ".img") == 0)
		name[len - 4] = '\0';
	for (size_t i = 0; i < c->n; i++) {
		if (strcmp(c->images[i].name, name) != 0)
			continue;
		if (!version || strcmp(c->images[i].version, version) == 0)
			found = &c->images[i];
	}
	return found;
}

void catalog_names(const struct catalog *c, char *buf, size_t len)
{
	size_t used = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < c->n; i++) {
		bool dup = false;

		for (size_t j = 0; j < i; j++)
			dup |=
			    strcmp(c->images[i].name, c->images[j].name) == 0;
		if (dup)
			continue;
		int n = snprintf(buf + used, len - used, "%s%s",
				 used ? ", " : "", c->images[i].name);
		if (n < 0 || (size_t)n >= len - used)
			break;
		used += (size_t)n;
	}
	if (!c->n)
		snprintf(buf, len, "(none)");
}
