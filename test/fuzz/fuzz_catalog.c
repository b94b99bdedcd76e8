// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the image catalog (common/catalog.c,
 * catalog_find.c): the text vmmd and vmenvctl fetch from the catalog's URL
 * (the site's, but it comes over the network), and the image names users
 * write (--vm-env) looked up in it.
 *
 * Input: a catalog, optionally followed by a line "--" and one reference
 * a line ("debian12:2025.1", "tiny.img", a source or URL). The catalog is
 * parsed with a base URL as if fetched from one; every reference is
 * resolved, and goes through catalog_source_url and catalog_base_of as
 * a source and a catalog location. A parsed catalog must hold what
 * catalog.h promises: bounded names that resolve to themselves, one
 * default per name, absolute sources with their sha256.
 * Built and run by test/fuzz/run-catalog-fuzz.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"

#define MAX_LINES 16
#define BASE	  "https://images.example.org/vmenv/"

static volatile size_t sink;

static bool fits(const char *s, size_t size)
{
	return strnlen(s, size) < size;
}

static bool name_ok(const char *s, size_t size)
{
	return fits(s, size) && *s && valid_image_ref(s) && !strchr(s, ':');
}

static void check_file(const struct catalog_image *img,
		       const struct catalog_file *f)
{
	if (!fits(f->source, sizeof(f->source)) ||
	    !fits(f->sha256, sizeof(f->sha256)))
		abort();
	if (!catalog_file_present(f))
		return;
	if (img->legacy) {
		if (!catalog_file_local(f) || !valid_abs_path(f->source))
			abort();
		return;
	}
	if ((strncmp(f->source, "http://", 7) != 0 &&
	     strncmp(f->source, "https://", 8) != 0 &&
	     strncmp(f->source, "file:///", 8) != 0) ||
	    strlen(f->sha256) != 64 ||
	    strspn(f->sha256, "0123456789abcdef") != 64 || f->size == 0 ||
	    f->size > CATALOG_MAX_SIZE)
		abort();
}

static void check_image(const struct catalog *c, const struct catalog_image *i)
{
	const struct catalog_image *found;
	char ref[160];
	size_t defaults = 0;

	if (!name_ok(i->name, sizeof(i->name)) ||
	    !name_ok(i->version, sizeof(i->version)) ||
	    !fits(i->cmdline, sizeof(i->cmdline)) ||
	    !fits(i->description, sizeof(i->description)) ||
	    i->nlabels > CATALOG_MAX_LABELS || i->boot < CATALOG_BOOT_KERNEL ||
	    i->boot > CATALOG_BOOT_DISK_KERNEL)
		abort();
	for (size_t k = 0; k < i->nlabels; k++)
		if (!fits(i->labels[k].key, sizeof(i->labels[k].key)) ||
		    !fits(i->labels[k].value, sizeof(i->labels[k].value)))
			abort();
	check_file(i, &i->disk);
	check_file(i, &i->kernel);
	check_file(i, &i->initrd);
	/* NAME:VERSION is this entry; NAME is its name's one default. */
	catalog_image_ref(i, ref, sizeof(ref));
	if (catalog_find(c, ref) != i || !(found = catalog_find(c, i->name)) ||
	    !found->is_default || strcmp(found->name, i->name) != 0)
		abort();
	for (size_t k = 0; k < c->n; k++)
		defaults += c->images[k].is_default &&
			    strcmp(c->images[k].name, i->name) == 0;
	if (defaults != 1)
		abort();
}

static void check(const struct catalog *c)
{
	char names[512];

	if (c->n > CATALOG_MAX_IMAGES || c->naliases > CATALOG_MAX_IMAGES)
		abort();
	for (size_t i = 0; i < c->n; i++)
		check_image(c, &c->images[i]);
	for (size_t i = 0; i < c->naliases; i++) {
		const struct catalog_image *img =
		    catalog_find(c, c->aliases[i].alias);

		if (!name_ok(c->aliases[i].alias,
			     sizeof(c->aliases[i].alias)) ||
		    !img || strcmp(img->name, c->aliases[i].name) != 0)
			abort();
	}
	catalog_names(c, names, sizeof(names));
	if (!fits(names, sizeof(names)))
		abort();
}

/* A reference as a user's image name, as a source, as a catalog's
 * location. */
static void reference(const struct catalog *c, const char *line)
{
	const struct catalog_image *img = NULL;
	char err[512], url[CATALOG_MAX_URL], base[CATALOG_MAX_URL];

	if (catalog_resolve(c, line, &img, err, sizeof(err)) == 0) {
		if (!img || img < c->images || img >= c->images + c->n)
			abort();
	} else if (!fits(err, sizeof(err))) {
		abort();
	}
	if (catalog_source_url(BASE, line, url, sizeof(url)) == 0 &&
	    !fits(url, sizeof(url)))
		abort();
	if (catalog_base_of(line, base, sizeof(base)) == 0) {
		if (!fits(base, sizeof(base)) || !*base ||
		    base[strlen(base) - 1] != '/')
			abort();
		sink += catalog_source_url(base, "a/b.qcow2", url, sizeof(url));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *refs, *lines[MAX_LINES], err[512];
	char *cat = NULL;
	struct catalog c = {0};
	size_t len = size;
	int n = 0;

	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	if ((refs = strstr(text, "\n--\n"))) {
		len = (size_t)(refs - text);
		*refs = '\0';
		refs += 4;
		for (char *l = strtok(refs, "\n"); l && n < MAX_LINES;
		     l = strtok(NULL, "\n"))
			lines[n++] = l;
	}
	/* A copy of exactly the catalog: ASan sees a read past it. */
	if (!(cat = malloc(len ? len : 1)))
		abort();
	memcpy(cat, text, len);
	if (catalog_parse_base(cat, len, BASE, &c, err, sizeof(err)) == 0)
		check(&c);
	else if (!fits(err, sizeof(err)))
		abort();
	for (int i = 0; i < n; i++)
		reference(&c, lines[i]);
	catalog_clear(&c);
	free(cat);
	free(text);
	return 0;
}
