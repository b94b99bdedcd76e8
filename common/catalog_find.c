/* SPDX-License-Identifier: MIT */
/*
 * Name resolution in a parsed catalog: what a user writes (--vm-env=NAME,
 * NAME:VERSION, an alias, NAME.img) to one image version. The rules are in
 * catalog.h and docs/images.md; test/unit/test_catalog.c has a table.
 */
#include "catalog.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int rfail(char *err, size_t errlen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int rfail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return r;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

static bool has_name(const struct catalog *c, const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->images[i].name, name) == 0)
			return true;
	return false;
}

static const char *alias_target(const struct catalog *c, const char *alias)
{
	for (size_t i = 0; i < c->naliases; i++)
		if (strcmp(c->aliases[i].alias, alias) == 0)
			return c->aliases[i].name;
	return NULL;
}

/* The image name a written NAME stands for, or NULL. */
static const char *canonical_name(const struct catalog *c, char *name,
				  bool versioned)
{
	size_t len = strlen(name);
	const char *target;

	if (has_name(c, name))
		return name;
	if ((target = alias_target(c, name)))
		return target;
	/* "zeptoos.img" is how users write a file name; it has no version. */
	if (versioned || len <= 4 || strcmp(name + len - 4, ".img") != 0)
		return NULL;
	name[len - 4] = '\0';
	if (has_name(c, name))
		return name;
	return alias_target(c, name);
}

static void list_versions(const struct catalog *c, const char *name, char *buf,
			  size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < c->n; i++) {
		int n;

		if (strcmp(c->images[i].name, name) != 0)
			continue;
		n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "",
			     c->images[i].version);
		if (n < 0 || (size_t)n >= len - used) {
			buf[used] = '\0';
			return;
		}
		used += (size_t)n;
	}
}

int catalog_resolve(const struct catalog *c, const char *ref,
		    const struct catalog_image **ret, char *err, size_t errlen)
{
	char name[VMENV_MAX_IMAGE_NAME], safe[VMENV_MAX_IMAGE_NAME];
	char versions[256];
	const char *version = NULL, *canon;
	char *colon;

	if (!ref || !valid_image_ref(ref) || strlen(ref) >= sizeof(name))
		return rfail(err, errlen, -EINVAL,
			     "invalid image name '%s': use NAME or "
			     "NAME:VERSION (letters, digits, '.', '_', '+', "
			     "'-')",
			     printable(ref ? ref : "", safe, sizeof(safe)));
	strcpy(name, ref);
	if ((colon = strchr(name, ':'))) {
		*colon = '\0';
		version = colon + 1;
	}
	canon = canonical_name(c, name, version != NULL);
	if (!canon)
		return rfail(err, errlen, -ENOENT,
			     "image '%s' is not in the catalog", ref);
	for (size_t i = 0; i < c->n; i++) {
		const struct catalog_image *img = &c->images[i];

		if (strcmp(img->name, canon) != 0)
			continue;
		if (version ? strcmp(img->version, version) == 0
			    : img->is_default) {
			*ret = img;
			return 0;
		}
	}
	list_versions(c, canon, versions, sizeof(versions));
	return rfail(err, errlen, -ENOENT,
		     "image '%s' has no version '%s' (versions: %s)", canon,
		     version ? version : "", versions);
}

const struct catalog_image *catalog_find(const struct catalog *c,
					 const char *ref)
{
	const struct catalog_image *img = NULL;

	return catalog_resolve(c, ref, &img, NULL, 0) == 0 ? img : NULL;
}

void catalog_names(const struct catalog *c, char *buf, size_t len)
{
	size_t used = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < c->n; i++) {
		bool dup = false;
		int n;

		for (size_t j = 0; j < i && !dup; j++)
			dup = strcmp(c->images[i].name, c->images[j].name) == 0;
		if (dup)
			continue;
		n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "",
			     c->images[i].name);
		if (n < 0 || (size_t)n >= len - used) {
			/* Never end in half a name: the user would be told
			 * about an image that does not exist. */
			buf[used] = '\0';
			break;
		}
		used += (size_t)n;
	}
	if (!c->n)
		snprintf(buf, len, "(none)");
}

void catalog_image_ref(const struct catalog_image *img, char *buf, size_t len)
{
	snprintf(buf, len, "%s:%s", img->name, img->version);
}

int catalog_boot_digest(const struct catalog_image *img, char *buf, size_t len)
{
	bool disk = catalog_file_present(&img->disk);
	int n;

	if (img->legacy || !catalog_file_present(&img->kernel) ||
	    !catalog_file_present(&img->initrd) || !img->kernel.sha256[0] ||
	    !img->initrd.sha256[0] || (disk && !img->disk.sha256[0]))
		return -ENOENT;
	n = snprintf(buf, len, "kernel %s initrd %s%s%s", img->kernel.sha256,
		     img->initrd.sha256, disk ? " disk " : "",
		     disk ? img->disk.sha256 : "");
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

bool catalog_file_present(const struct catalog_file *f)
{
	return f->source[0] != '\0';
}

bool catalog_file_local(const struct catalog_file *f)
{
	return f->source[0] == '/' && f->sha256[0] == '\0';
}

const char *catalog_boot_name(enum catalog_boot b)
{
	switch (b) {
	case CATALOG_BOOT_KERNEL:
		return "kernel";
	case CATALOG_BOOT_DISK:
		return "disk";
	case CATALOG_BOOT_DISK_KERNEL:
		return "disk-kernel";
	}
	return "?";
}

const char *catalog_format_name(enum catalog_disk_format f)
{
	switch (f) {
	case CATALOG_DISK_NONE:
		return "none";
	case CATALOG_DISK_QCOW2:
		return "qcow2";
	case CATALOG_DISK_RAW:
		return "raw";
	}
	return "?";
}
