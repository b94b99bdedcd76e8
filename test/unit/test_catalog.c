// SPDX-License-Identifier: MIT
/*
 * Unit tests for common/catalog.c and catalog_find.c: the parsed result of
 * the golden catalogs in test/data/catalog/ (the first format, valid.json,
 * and the current one, valid_v2.json), name resolution (NAME, NAME:VERSION,
 * aliases, NAME.img, default versions) as a table, sources resolved against
 * the catalog's location, and a refusal naming the image and the field for
 * every malformed input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "cleanup.h"

#define DATA(f) TEST_DATADIR "/catalog/" f
#define HEX(c)	c c c c c c c c c c c c c c c c
#define SHA(c)	"\"" HEX(c c c c) "\""
#define SHA_A	SHA("a")

/* file:///.../test/data/catalog/ + rel, as the catalog resolves it. */
static const char *data_url(const char *rel)
{
	static char buf[1024];
	char *real = realpath(TEST_DATADIR "/catalog", NULL);

	assert_non_null(real);
	snprintf(buf, sizeof(buf), "file://%s/%s", real, rel);
	free(real);
	return buf;
}

static void load_ok(const char *path, struct catalog *c)
{
	char err[512] = "";

	if (catalog_load(path, c, err, sizeof(err)) != 0)
		fail_msg("%s: %s", path, err);
}

/* --- the first format ---------------------------------------------------- */

static const struct {
	const char *name, *version, *kernel, *initrd, *cmdline;
	uint32_t min_mem_mib;
	const char *description;
	bool is_default;
} want_legacy[] = {
    {"tiny", "1", "/var/lib/vmenv/images/tiny-1/vmlinuz",
     "/var/lib/vmenv/images/tiny-1/initrd.img", "console=ttyS0 quiet", 128,
     "BusyBox guest, first build", false},
    {"debian12", "2024.1", "/var/lib/vmenv/images/debian12/vmlinuz",
     "/var/lib/vmenv/images/debian12/initrd.img", "", 0, "", true},
    {"tiny", "2", "/var/lib/vmenv/images/tiny-2/vmlinuz",
     "/var/lib/vmenv/images/tiny-2/initrd.img",
     "console=ttyS0 \"quoted\" caf\xc3\xa9", 0,
     "BusyBox guest, \xc3\xa9"
     "dition 2",
     true},
};

static void test_valid_legacy(void **state)
{
	struct catalog c;

	load_ok(DATA("valid.json"), &c);
	assert_int_equal(c.n, ARRAY_SIZE(want_legacy));
	for (size_t i = 0; i < c.n; i++) {
		const struct catalog_image *g = &c.images[i];

		assert_string_equal(g->name, want_legacy[i].name);
		assert_string_equal(g->version, want_legacy[i].version);
		assert_string_equal(g->kernel.source, want_legacy[i].kernel);
		assert_string_equal(g->initrd.source, want_legacy[i].initrd);
		assert_string_equal(g->cmdline, want_legacy[i].cmdline);
		assert_int_equal(g->min_mem_mib, want_legacy[i].min_mem_mib);
		assert_string_equal(g->description, want_legacy[i].description);
		assert_int_equal(g->is_default, want_legacy[i].is_default);
		assert_true(g->legacy);
		assert_int_equal(g->boot, CATALOG_BOOT_KERNEL);
		assert_true(catalog_file_local(&g->kernel));
		assert_false(catalog_file_present(&g->disk));
	}
	catalog_clear(&c);
	assert_null(c.images);
	assert_int_equal(c.n, 0);
}

/* --- the current format ------------------------------------------------ */

static void test_valid_v2(void **state)
{
	struct catalog c;
	const struct catalog_image *d, *d2, *t;

	load_ok(DATA("valid_v2.json"), &c);
	assert_int_equal(c.n, 5);
	d = &c.images[0];
	d2 = &c.images[1];
	t = &c.images[2];
	assert_string_equal(d->name, "debian12");
	assert_string_equal(d->version, "2024.1");
	assert_int_equal(d->boot, CATALOG_BOOT_DISK_KERNEL);
	assert_int_equal(d->disk_format, CATALOG_DISK_QCOW2);
	/* Relative sources resolve against the catalog's directory. */
	assert_string_equal(d->disk.source,
			    data_url("debian12/2024.1/disk.qcow2"));
	assert_string_equal(d->kernel.source,
			    data_url("debian12/2024.1/vmlinuz"));
	assert_string_equal(d->initrd.source,
			    "https://mirror.example.org/vmenv/initrd.img");
	/* Hex digits are kept lowercase. */
	assert_string_equal(d->disk.sha256, HEX("aaaa"));
	assert_int_equal(d->disk.size, 1073741824);
	assert_string_equal(d->cmdline, "root=/dev/vda rw console=ttyS0");
	assert_int_equal(d->min_mem_mib, 512);
	assert_string_equal(d->description,
			    "Debian 12 with python3 and Open MPI");
	assert_int_equal(d->nlabels, 2);
	assert_string_equal(d->labels[0].key, "os");
	assert_string_equal(d->labels[0].value, "debian-12");
	assert_string_equal(d->labels[1].key, "runtime");
	assert_true(d->is_default);
	assert_false(d->legacy);
	assert_false(catalog_file_local(&d->disk));

	/* The second version inherits the image's fields, overrides memory. */
	assert_string_equal(d2->name, "debian12");
	assert_string_equal(d2->version, "2025.1");
	assert_int_equal(d2->boot, CATALOG_BOOT_DISK);
	assert_int_equal(d2->disk_format, CATALOG_DISK_RAW);
	assert_string_equal(d2->disk.source,
			    "file:///srv/images/debian12-2025.1.raw");
	assert_int_equal(d2->disk.size, 21474836480ull);
	assert_false(catalog_file_present(&d2->kernel));
	assert_int_equal(d2->min_mem_mib, 1024);
	assert_int_equal(d2->nlabels, 2);
	assert_false(d2->is_default);

	/* No default_version: the last listed one. */
	assert_string_equal(t->name, "tiny");
	assert_true(t->is_default);
	assert_string_equal(t->kernel.source,
			    "file:///var/lib/vmenv/images/tiny/vmlinuz");
	assert_string_equal(t->initrd.source, data_url("tiny/initrd.img"));
	assert_int_equal(t->boot, CATALOG_BOOT_KERNEL);

	assert_int_equal(c.naliases, 2);
	assert_string_equal(c.aliases[0].alias, "debian");
	assert_string_equal(c.aliases[0].name, "debian12");
	catalog_clear(&c);
}

static void test_base_url(void **state)
{
	struct catalog c;

	load_ok(DATA("base_url.json"), &c);
	assert_string_equal(c.images[0].disk.source,
			    "http://images.example.org:8080/vmenv/a/1.qcow2");
	catalog_clear(&c);
}

/* --- names ----------------------------------------------------------------- */

static void test_find_legacy(void **state)
{
	static const struct {
		const char *ref;
		int want; /* index in valid.json, -1 for not found */
	} cases[] = {
	    {"tiny", 2}, /* without a version the last entry wins */
	    {"tiny:1", 0},
	    {"tiny:2", 2},
	    {"tiny.img", 2},
	    {"debian12", 1},
	    {"debian12:2024.1", 1},
	    {"debian12.img", 1},
	    {"zepto", -1},
	    {"tiny:9", -1},
	    {"tiny:", -1},
	    {"", -1},
	    {":1", -1},
	    {"TINY", -1},
	    {"tin", -1},
	    {"tiny.img:1", -1},
	};
	struct catalog c;
	char longref[300];

	load_ok(DATA("valid.json"), &c);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct catalog_image *img =
		    catalog_find(&c, cases[i].ref);

		print_message("ref '%s'\n", cases[i].ref);
		if (cases[i].want < 0)
			assert_null(img);
		else
			assert_ptr_equal(img, &c.images[cases[i].want]);
	}
	assert_null(catalog_find(&c, NULL));
	memset(longref, 'a', sizeof(longref) - 1);
	longref[sizeof(longref) - 1] = '\0';
	assert_null(catalog_find(&c, longref));
	catalog_clear(&c);
}

/* The rules of docs/images.md, "Names", one row each. */
static void test_resolve_v2(void **state)
{
	static const struct {
		const char *ref;
		int want; /* index in valid_v2.json */
		int err;
		const char *msg;
	} cases[] = {
	    /* default_version */
	    {"debian12", 0, 0, NULL},
	    {"debian12:2024.1", 0, 0, NULL},
	    {"debian12:2025.1", 1, 0, NULL},
	    /* aliases, with and without version, and with .img */
	    {"debian", 0, 0, NULL},
	    {"bookworm:2025.1", 1, 0, NULL},
	    {"bookworm.img", 0, 0, NULL},
	    {"debian12.img", 0, 0, NULL},
	    /* .img only without a version */
	    {"debian12.img:2024.1", -1, -ENOENT, "is not in the catalog"},
	    /* an image really called NAME.img wins over the suffix rule */
	    {"rocky9.img", 3, 0, NULL},
	    {"rocky9", 4, 0, NULL},
	    /* last version when there is no default_version */
	    {"tiny", 2, 0, NULL},
	    {"tiny.img", 2, 0, NULL},
	    /* unknown names and versions */
	    {"zepto", -1, -ENOENT, "image 'zepto' is not in the catalog"},
	    {"debian12:9", -1, -ENOENT,
	     "image 'debian12' has no version '9' (versions: 2024.1, 2025.1)"},
	    {"debian:9", -1, -ENOENT, "image 'debian12' has no version '9'"},
	    {"Debian12", -1, -ENOENT, "not in the catalog"},
	    /* what users must never get through */
	    {"../../etc/passwd", -1, -EINVAL, "invalid image name"},
	    {"/etc/passwd", -1, -EINVAL, "invalid image name '/etc/passwd'"},
	    {"debian 12", -1, -EINVAL, "invalid image name 'debian 12'"},
	    {"deb\nian", -1, -EINVAL, "invalid image name 'deb?ian'"},
	    {"deb\x1b[31mian", -1, -EINVAL, "invalid image name 'deb?[31mian'"},
	    {"a:b:c", -1, -EINVAL, "invalid image name"},
	    {"", -1, -EINVAL, "invalid image name ''"},
	};
	struct catalog c;

	load_ok(DATA("valid_v2.json"), &c);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct catalog_image *img = NULL;
		char err[512] = "";
		int r =
		    catalog_resolve(&c, cases[i].ref, &img, err, sizeof(err));

		print_message("ref '%s' -> %d %s\n", cases[i].ref, r, err);
		assert_int_equal(r, cases[i].err);
		if (cases[i].want >= 0)
			assert_ptr_equal(img, &c.images[cases[i].want]);
		if (cases[i].msg)
			assert_contains(err, cases[i].msg);
	}
	catalog_clear(&c);
}

static void test_names(void **state)
{
	struct catalog c;
	char buf[256];

	load_ok(DATA("valid.json"), &c);
	/* Each name once, in catalog order. */
	catalog_names(&c, buf, sizeof(buf));
	assert_string_equal(buf, "tiny, debian12");
	catalog_clear(&c);

	load_ok(DATA("valid_v2.json"), &c);
	catalog_names(&c, buf, sizeof(buf));
	assert_string_equal(buf, "debian12, tiny, rocky9.img, rocky9");
	catalog_clear(&c);

	load_ok(DATA("empty.json"), &c);
	assert_int_equal(c.n, 0);
	assert_null(catalog_find(&c, "tiny"));
	catalog_names(&c, buf, sizeof(buf));
	assert_string_equal(buf, "(none)");
	catalog_clear(&c);
}

/* A list cut short by the buffer must not end in half a name: the user
 * would be told about an image "deb" that does not exist. */
static void test_names_truncated(void **state)
{
	struct catalog c;
	char buf[9];

	load_ok(DATA("valid.json"), &c);
	catalog_names(&c, buf, sizeof(buf));
	catalog_clear(&c);
	assert_string_equal(buf, "tiny");
}

/* --- sources ----------------------------------------------------------- */

static void test_source_url(void **state)
{
	static const struct {
		const char *base, *src, *want; /* want NULL: refused */
	} cases[] = {
	    {"http://h/c/", "a/b.qcow2", "http://h/c/a/b.qcow2"},
	    {"file:///etc/vmenv/", "img/x", "file:///etc/vmenv/img/x"},
	    {"", "/srv/x.qcow2", "file:///srv/x.qcow2"},
	    {"", "https://h:8443/x?sig=ab%2F", "https://h:8443/x?sig=ab%2F"},
	    {"", "file:///srv/x", "file:///srv/x"},
	    {"", "a/b", NULL},		   /* relative without a base */
	    {"http://h/c", "a", NULL},	   /* the base names no directory */
	    {"http://h/c/", "../x", NULL}, /* out of the base */
	    {"http://h/c/", "a/../../x", NULL},
	    {"http://h/c/", "a//b", NULL},
	    {"http://h/c/", "./a", NULL},
	    {"http://h/c/", "a b", NULL},
	    {"http://h/c/", "a\nb", NULL},
	    {"", "/srv/../etc/passwd", NULL},
	    {"", "/srv/a b", NULL},
	    {"", "ftp://h/x", NULL},
	    {"", "http:///x", NULL},
	    {"", "http://h/a b", NULL},
	    {"", "http://h/a\"b", NULL},
	    {"", "file://relative/x", NULL},
	    {"", "file:///a/../b", NULL},
	    {"", "javascript:alert(1)", NULL},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char out[CATALOG_MAX_URL] = "";
		int r = catalog_source_url(cases[i].base, cases[i].src, out,
					   sizeof(out));

		print_message("'%s' + '%s' -> %d '%s'\n", cases[i].base,
			      cases[i].src, r, out);
		if (cases[i].want) {
			assert_int_equal(r, 0);
			assert_string_equal(out, cases[i].want);
		} else {
			assert_true(r < 0);
		}
	}
}

static void test_base_of(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"/etc/vmenv/catalog.json", "file:///etc/vmenv/"},
	    {"/catalog.json", "file:///"},
	    {"http://h/a/b/catalog.json", "http://h/a/b/"},
	    {"https://h:8443", "https://h:8443/"},
	    {"https://h/", "https://h/"},
	    {"relative/catalog.json", NULL},
	    {"/etc/vm env/catalog.json", NULL},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char out[CATALOG_MAX_URL] = "";
		int r = catalog_base_of(cases[i].in, out, sizeof(out));

		print_message("'%s' -> %d '%s'\n", cases[i].in, r, out);
		if (cases[i].want) {
			assert_int_equal(r, 0);
			assert_string_equal(out, cases[i].want);
		} else {
			assert_true(r < 0);
		}
	}
}

/* --- refusals ----------------------------------------------------------- */

static const struct {
	const char *file;
	const char *want[2]; /* the error names the image and the field */
} bad_files[] = {
    {"missing_kernel.json", {"image 1 ('nokernel')", "missing 'kernel'"}},
    {"unknown_field.json", {"image 0", "unknown field 'kernal'"}},
    {"relative_path.json", {"image 0", "invalid 'kernel'"}},
    {"dotdot_path.json", {"image 0", "invalid 'initrd'"}},
    {"name_traversal.json", {"image 0", "invalid 'name'"}},
    {"name_space.json", {"image 0", "invalid 'name'"}},
    {"name_control.json", {"image 0", "invalid 'name'"}},
    {"name_colon.json", {"image 0", "':' in name"}},
    {"version_number.json", {"image 0", "'version' must be a string"}},
    {"boot_disk.json", {"image 0", "boot method must be \"kernel\""}},
    {"cmdline_newline.json", {"image 0", "invalid 'cmdline'"}},
    {"min_mem_negative.json", {"image 0", "'min_mem_mib'"}},
    {"image_not_object.json", {"image 0", "not an object"}},
    {"not_json.json", {"not valid JSON"}},
    {"top_array.json", {"top level must be {\"images\": [...]}"}},
    {"images_not_array.json", {"top level must be"}},
    {"top_unknown.json", {"unknown top-level field"}},
    {"trailing_garbage.json", {"not valid JSON", "text after"}},
};

static void test_refusals(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(bad_files); i++) {
		char path[512], err[512] = "";
		struct catalog c = {0};

		print_message("file %s\n", bad_files[i].file);
		snprintf(path, sizeof(path), "%s/catalog/%s", TEST_DATADIR,
			 bad_files[i].file);
		assert_int_equal(catalog_load(path, &c, err, sizeof(err)),
				 -EINVAL);
		print_message("  -> %s\n", err);
		for (size_t k = 0; k < 2 && bad_files[i].want[k]; k++)
			assert_contains(err, bad_files[i].want[k]);
		/* Nothing is handed out on failure. */
		assert_null(c.images);
	}
}

/* Building blocks of the inline cases: one image "x" with the versions
 * given. */
#define CAT(versions) \
	"{\"images\":[{\"name\":\"x\",\"versions\":[" versions "]}]}"
#define DISK_F(extra)                                                       \
	"\"disk\":{\"source\":\"d.qcow2\",\"sha256\":" SHA_A ",\"size\":5," \
	"\"format\":\"qcow2\"" extra "}"
#define DISK	DISK_F("")
#define KERNEL	"\"kernel\":{\"source\":\"k\",\"sha256\":" SHA_A ",\"size\":5}"
#define INITRD	"\"initrd\":{\"source\":\"i\",\"sha256\":" SHA_A ",\"size\":5}"
#define V(body) "{\"version\":\"1\"," body "}"
/* Names of 64 characters, the longest: NAME:VERSION with both is 129. */
#define NAME64	  HEX("n") HEX("n") HEX("n") HEX("n")
#define VERSION64 HEX("1") HEX("1") HEX("1") HEX("1")
#define LEGACY(name, version)                                              \
	"{\"images\":[{\"name\":\"" name "\",\"version\":\"" version "\"," \
	"\"boot\":\"kernel\",\"kernel\":\"/k\",\"initrd\":\"/i\"}]}"

static void test_refusals_inline(void **state)
{
	static const struct {
		const char *what, *json, *want;
	} cases[] = {
	    {"empty text", "", "not valid JSON at line 1: unexpected end"},
	    {"truncated", "{\"images\":\n [", "not valid JSON at line 2"},
	    {"bad token", "{\"images\":\n\n [x]}",
	     "not valid JSON at line 3: unexpected character"},
	    {"two objects", "{\"images\":[]} {\"images\":[]}",
	     "text after the top-level object"},
	    {"name too long",
	     "{\"images\":[{\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"version\":\"1\","
	     "\"boot\":\"kernel\",\"kernel\":\"/k\",\"initrd\":\"/i\"}]}",
	     "image 0: invalid 'name'"},
	    {"min_mem_mib a string",
	     "{\"images\":[{\"name\":\"t\",\"version\":\"1\","
	     "\"boot\":\"kernel\",\"kernel\":\"/k\",\"initrd\":\"/i\","
	     "\"min_mem_mib\":\"128\"}]}",
	     "'min_mem_mib' must be an integer"},
	    {"boot missing (first format)",
	     "{\"images\":[{\"name\":\"t\",\"version\":\"1\","
	     "\"kernel\":\"/k\",\"initrd\":\"/i\"}]}",
	     "missing 'boot'"},
	    {"no versions", "{\"images\":[{\"name\":\"x\"}]}",
	     "image 0 ('x'): missing 'versions'"},
	    {"versions empty", CAT(""), "'versions' must be a non-empty array"},
	    {"version missing", CAT("{\"boot\":\"disk\"," DISK "}"),
	     "image 0 ('x') version 0: missing 'version'"},
	    {"boot missing", CAT(V(DISK)),
	     "image 0 ('x') version 0 ('1'): missing 'boot'"},
	    {"boot unknown", CAT(V("\"boot\":\"pxe\"," DISK)),
	     "'boot' must be \"kernel\", \"disk\" or \"disk-kernel\""},
	    {"disk missing", CAT(V("\"boot\":\"disk\"")),
	     "version 0 ('1'): missing 'disk' (boot \"disk\" needs it)"},
	    {"kernel with boot disk",
	     CAT(V("\"boot\":\"disk\"," DISK "," KERNEL)),
	     "'kernel' makes no sense with boot \"disk\""},
	    {"cmdline with boot disk",
	     CAT(V("\"boot\":\"disk\"," DISK ",\"cmdline\":\"x\"")),
	     "'cmdline' makes no sense"},
	    {"initrd missing", CAT(V("\"boot\":\"kernel\"," KERNEL)),
	     "missing 'initrd'"},
	    {"disk with boot kernel",
	     CAT(V("\"boot\":\"kernel\"," KERNEL "," INITRD "," DISK)),
	     "'disk' makes no sense with boot \"kernel\""},
	    {"sha256 missing",
	     CAT(V("\"boot\":\"disk\",\"disk\":{\"source\":\"d\",\"size\":5,"
		   "\"format\":\"raw\"}")),
	     "version 0 ('1'): missing 'sha256' in 'disk'"},
	    {"sha256 short",
	     CAT(V("\"boot\":\"disk\",\"disk\":{\"source\":\"d\",\"size\":5,"
		   "\"format\":\"raw\",\"sha256\":\"abc\"}")),
	     "invalid 'sha256' in 'disk'"},
	    {"sha256 not hex",
	     CAT(V("\"boot\":\"disk\",\"disk\":{\"source\":\"d\",\"size\":5,"
		   "\"format\":\"raw\",\"sha256\":" SHA("g") "}")),
	     "invalid 'sha256' in 'disk'"},
	    {"size missing",
	     CAT(V("\"boot\":\"disk\",\"disk\":{\"source\":\"d\","
		   "\"format\":\"raw\",\"sha256\":" SHA_A "}")),
	     "missing 'size' in 'disk'"},
	    {"size zero",
	     CAT(V("\"boot\":\"disk\",\"disk\":{\"source\":\"d\",\"size\":0,"
		   "\"format\":\"raw\",\"sha256\":" SHA_A "}")),
	     "'size' in 'disk' must not be 0"},
	    {"size negative",
	     CAT(V("\"boot\":\"disk\",\"disk\":{\"source\":\"d\",\"size\":-1,"
		   "\"format\":\"raw\",\"sha256\":" SHA_A "}")),
	     "'size' must be an integer"},
	    {"format missing",
	     CAT(V("\"boot\":\"disk\",\"disk\":{\"source\":\"d\",\"size\":5,"
		   "\"sha256\":" SHA_A "}")),
	     "missing 'format' in 'disk'"},
	    {"format unknown",
	     CAT(V("\"boot\":\"disk\",\"disk\":{\"source\":\"d\",\"size\":5,"
		   "\"format\":\"vmdk\",\"sha256\":" SHA_A "}")),
	     "'format' in 'disk' must be \"qcow2\" or \"raw\""},
	    {"format on a kernel",
	     CAT(V("\"boot\":\"kernel\"," INITRD ",\"kernel\":{\"source\":"
		   "\"k\",\"size\":5,\"format\":\"raw\",\"sha256\":" SHA_A
		   "}")),
	     "unknown field 'format' in kernel"},
	    {"unknown field in disk",
	     CAT(V("\"boot\":\"disk\"," DISK_F(",\"x\":1"))),
	     "unknown field 'x' in disk"},
	    {"unknown field in version",
	     CAT("{\"version\":\"1\",\"boot\":\"disk\"," DISK ",\"rootfs\":1}"),
	     "unknown field 'rootfs'"},
	    {"source traversal",
	     CAT(V(
		 "\"boot\":\"disk\",\"disk\":{\"source\":\"../../etc/shadow\","
		 "\"size\":5,\"format\":\"raw\",\"sha256\":" SHA_A "}")),
	     "invalid 'source' in 'disk'"},
	    {"source ftp",
	     CAT(V("\"boot\":\"disk\",\"disk\":{\"source\":\"ftp://h/d\","
		   "\"size\":5,\"format\":\"raw\",\"sha256\":" SHA_A "}")),
	     "invalid 'source' in 'disk'"},
	    {"source not a string",
	     CAT(V("\"boot\":\"disk\",\"disk\":{\"source\":5,"
		   "\"size\":5,\"format\":\"raw\",\"sha256\":" SHA_A "}")),
	     "'source' must be a string"},
	    {"disk not an object", CAT(V("\"boot\":\"disk\",\"disk\":\"d\"")),
	     "'disk' must be an object"},
	    {"version twice",
	     CAT(V("\"boot\":\"disk\"," DISK) "," V("\"boot\":\"disk\"," DISK)),
	     "image 'x' lists version '1' twice"},
	    {"name twice",
	     "{\"images\":[{\"name\":\"x\",\"versions\":[" V(
		 "\"boot\":\"disk\"," DISK) "]},{\"name\":\"x\",\"versions\":"
					    "[{\"version\":\"2\",\"boot\":"
					    "\"disk\"," DISK "}]}]}",
	     "image 'x' is listed twice"},
	    {"alias is a name",
	     "{\"images\":[{\"name\":\"x\",\"aliases\":[\"y\"],\"versions\":"
	     "[" V(
		 "\"boot\":\"disk\"," DISK) "]},{\"name\":\"y\",\"versions\":"
					    "[" V(
						"\"boot\":\"disk\"," DISK) "]}]"
									   "}",
	     "alias 'y' of image 'x' is also an image name"},
	    {"alias twice",
	     "{\"images\":[{\"name\":\"x\",\"aliases\":[\"y\",\"y\"],"
	     "\"versions\":[" V("\"boot\":\"disk\"," DISK) "]}]}",
	     "alias 'y' is given twice"},
	    {"alias invalid",
	     "{\"images\":[{\"name\":\"x\",\"aliases\":[\"../y\"],"
	     "\"versions\":[" V("\"boot\":\"disk\"," DISK) "]}]}",
	     "invalid 'aliases'"},
	    {"default_version unknown",
	     "{\"images\":[{\"name\":\"x\",\"default_version\":\"2\","
	     "\"versions\":[" V("\"boot\":\"disk\"," DISK) "]}]}",
	     "'default_version' '2' is not one of its versions"},
	    {"label key invalid",
	     "{\"images\":[{\"name\":\"x\",\"labels\":{\"OS\":\"d\"},"
	     "\"versions\":[" V("\"boot\":\"disk\"," DISK) "]}]}",
	     "invalid label 'OS'"},
	    {"label value not a string",
	     "{\"images\":[{\"name\":\"x\",\"labels\":{\"os\":1},"
	     "\"versions\":[" V("\"boot\":\"disk\"," DISK) "]}]}",
	     "invalid value of label 'os'"},
	    {"too many labels",
	     "{\"images\":[{\"name\":\"x\",\"labels\":{\"a\":\"\",\"b\":\"\","
	     "\"c\":\"\",\"d\":\"\",\"e\":\"\",\"f\":\"\",\"g\":\"\",\"h\":"
	     "\"\",\"i\":\"\"},\"versions\":[" V(
		 "\"boot\":\"disk\"," DISK) "]}]}",
	     "more than 8 labels"},
	    {"base_url not a URL", "{\"base_url\":\"images/\",\"images\":[]}",
	     "invalid 'base_url'"},
	    /* Found by fuzz_catalog: accepted, but a reference that long
	     * cannot be resolved (VMENV_MAX_IMAGE_NAME). */
	    {"name:version too long",
	     "{\"images\":[{\"name\":\"" NAME64 "\",\"versions\":["
	     "{\"version\":\"" VERSION64 "\",\"boot\":\"disk\"," DISK "}]}]}",
	     "name and version longer than 127 characters together"},
	    {"name:version too long (first format)", LEGACY(NAME64, VERSION64),
	     "name and version longer than 127 characters together"},
	    {"relative source without a base",
	     CAT(V("\"boot\":\"disk\"," DISK)), "invalid 'source' in 'disk'"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char err[512] = "";
		struct catalog c = {0};
		const char *base = strstr(cases[i].what, "without a base")
				       ? ""
				       : "http://h/c/";

		print_message("case: %s\n", cases[i].what);
		assert_int_equal(catalog_parse_base(cases[i].json,
						    strlen(cases[i].json), base,
						    &c, err, sizeof(err)),
				 -EINVAL);
		print_message("  -> %s\n", err);
		assert_contains(err, cases[i].want);
		assert_null(c.images);
	}
}

/* The longest NAME:VERSION the catalog takes (127 characters) resolves. */
static void test_longest_ref(void **state)
{
	const char *json =
	    LEGACY(NAME64, HEX("1") HEX("1") HEX("1") "11111111111111");
	char err[512] = "", ref[VMENV_MAX_IMAGE_NAME + 8];
	const struct catalog_image *img = NULL;
	struct catalog c = {0};

	assert_int_equal(
	    catalog_parse(json, strlen(json), &c, err, sizeof(err)), 0);
	catalog_image_ref(&c.images[0], ref, sizeof(ref));
	assert_int_equal(strlen(ref), VMENV_MAX_IMAGE_NAME - 1);
	assert_int_equal(catalog_resolve(&c, ref, &img, err, sizeof(err)), 0);
	assert_ptr_equal(img, &c.images[0]);
	catalog_clear(&c);
}

static void test_too_many_images(void **state)
{
	const char *one =
	    "{\"name\":\"t\",\"version\":\"1\",\"boot\":\"kernel\","
	    "\"kernel\":\"/k\",\"initrd\":\"/i\"}";
	size_t n = CATALOG_MAX_IMAGES + 1, len = 0;
	_cleanup_free_ char *text = malloc(n * (strlen(one) + 1) + 64);
	char err[512] = "";
	struct catalog c = {0};

	assert_non_null(text);
	len += (size_t)sprintf(text, "{\"images\":[");
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(text + len, "%s%s", i ? "," : "", one);
	len += (size_t)sprintf(text + len, "]}");
	assert_int_equal(catalog_parse(text, len, &c, err, sizeof(err)),
			 -EINVAL);
	assert_contains(err, "more than 1024 images");
	/* Exactly the limit passes the count (the same name and version
	 * 1024 times is then refused for its own reason). */
	memcpy(text + len - 2 - strlen(one) - 1, "]}", 3);
	len = strlen(text);
	assert_int_equal(catalog_parse(text, len, &c, err, sizeof(err)),
			 -EINVAL);
	assert_contains(err, "lists version '1' twice");
}

/* Versions count one each against the limit. */
static void test_too_many_versions(void **state)
{
	size_t n = CATALOG_MAX_IMAGES + 1, len = 0;
	_cleanup_free_ char *text = malloc(n * 256 + 64);
	char err[512] = "";
	struct catalog c = {0};

	assert_non_null(text);
	len += (size_t)sprintf(text, "{\"images\":[{\"name\":\"x\","
				     "\"versions\":[");
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(text + len,
				       "%s{\"version\":\"%zu\",\"boot\":"
				       "\"disk\"," DISK "}",
				       i ? "," : "", i);
	len += (size_t)sprintf(text + len, "]}]}");
	assert_int_equal(
	    catalog_parse_base(text, len, "http://h/", &c, err, sizeof(err)),
	    -EINVAL);
	assert_contains(err, "more than 1024 images");
}

static void test_load_missing_file(void **state)
{
	char err[512] = "";
	struct catalog c = {0};

	assert_int_equal(
	    catalog_load(DATA("no-such-file.json"), &c, err, sizeof(err)),
	    -ENOENT);
	assert_contains(err, "no-such-file.json");
	assert_null(c.images);
}

/* json-c keeps what follows a \u0000; reading the value as a C string
 * would silently drop it, so "ti\u0000ny" would become an image "ti". */
static void test_nul_in_string(void **state)
{
	static const struct {
		const char *json, *want;
	} cases[] = {
	    {"{\"images\":[{\"name\":\"ti\\u0000ny\",\"version\":\"1\","
	     "\"boot\":\"kernel\",\"kernel\":\"/k\",\"initrd\":\"/i\"}]}",
	     "invalid 'name': contains a NUL byte"},
	    {"{\"images\":[{\"name\":\"t\",\"version\":\"1\","
	     "\"boot\":\"kernel\",\"kernel\":\"/k\\u0000/../../x\","
	     "\"initrd\":\"/i\"}]}",
	     "invalid 'kernel': contains a NUL byte"},
	    {CAT(V("\"boot\":\"disk\",\"disk\":{\"source\":\"d\\u0000/../x\","
		   "\"size\":5,\"format\":\"raw\",\"sha256\":" SHA_A "}")),
	     "invalid 'source': contains a NUL byte"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char err[512] = "";
		struct catalog c = {0};

		assert_int_equal(
		    catalog_parse_base(cases[i].json, strlen(cases[i].json),
				       "http://h/", &c, err, sizeof(err)),
		    -EINVAL);
		assert_contains(err, cases[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_legacy),
	    cmocka_unit_test(test_valid_v2),
	    cmocka_unit_test(test_base_url),
	    cmocka_unit_test(test_find_legacy),
	    cmocka_unit_test(test_resolve_v2),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_names_truncated),
	    cmocka_unit_test(test_source_url),
	    cmocka_unit_test(test_base_of),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_refusals_inline),
	    cmocka_unit_test(test_longest_ref),
	    cmocka_unit_test(test_too_many_images),
	    cmocka_unit_test(test_too_many_versions),
	    cmocka_unit_test(test_load_missing_file),
	    cmocka_unit_test(test_nul_in_string),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
