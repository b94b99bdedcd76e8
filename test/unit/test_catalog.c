// SPDX-License-Identifier: MIT
/*
 * Unit tests for common/catalog.c against the golden inputs in
 * test/data/catalog/: the parsed result of a valid catalog, lookups by
 * NAME, NAME:VERSION and NAME.img, and a refusal naming the image and field
 * for every malformed file.
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

static void load_ok(const char *path, struct catalog *c)
{
	char err[512] = "";

	if (catalog_load(path, c, err, sizeof(err)) != 0)
		fail_msg("%s: %s", path, err);
}

/* --- the valid catalog -------------------------------------------------- */

static const struct catalog_image want_valid[] = {
    {"tiny", "1", "/var/lib/vmenv/images/tiny-1/vmlinuz",
     "/var/lib/vmenv/images/tiny-1/initrd.img", "console=ttyS0 quiet", 128,
     "BusyBox guest, first build"},
    {"debian12", "2024.1", "/var/lib/vmenv/images/debian12/vmlinuz",
     "/var/lib/vmenv/images/debian12/initrd.img", "", 0, ""},
    {"tiny", "2", "/var/lib/vmenv/images/tiny-2/vmlinuz",
     "/var/lib/vmenv/images/tiny-2/initrd.img",
     "console=ttyS0 \"quoted\" caf\xc3\xa9", 0,
     "BusyBox guest, \xc3\xa9"
     "dition 2"},
};

static void test_valid(void **state)
{
	struct catalog c;

	load_ok(DATA("valid.json"), &c);
	assert_int_equal(c.n, ARRAY_SIZE(want_valid));
	for (size_t i = 0; i < c.n; i++) {
		const struct catalog_image *g = &c.images[i],
					   *w = &want_valid[i];

		assert_string_equal(g->name, w->name);
		assert_string_equal(g->version, w->version);
		assert_string_equal(g->kernel, w->kernel);
		assert_string_equal(g->initrd, w->initrd);
		assert_string_equal(g->cmdline, w->cmdline);
		assert_int_equal(g->min_mem_mib, w->min_mem_mib);
		assert_string_equal(g->description, w->description);
	}
	catalog_clear(&c);
	assert_null(c.images);
	assert_int_equal(c.n, 0);
}

static void test_find(void **state)
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

static void test_names(void **state)
{
	struct catalog c;
	char buf[256];

	load_ok(DATA("valid.json"), &c);
	/* Each name once, in catalog order. */
	catalog_names(&c, buf, sizeof(buf));
	assert_string_equal(buf, "tiny, debian12");
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
	assert_true(strlen(buf) < sizeof(buf));
	assert_true(strncmp(buf, "tiny", 4) == 0);
	KNOWN_BUG(strcmp(buf, "tiny") == 0,
		  "catalog_names() leaves a partial name: '%s'\n", buf);
}

/* --- refusals ----------------------------------------------------------- */

static const struct {
	const char *file;
	const char *want[2]; /* the error names the image and the field */
} bad_files[] = {
    {"missing_kernel.json", {"image 1", "missing 'kernel'"}},
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
		for (size_t k = 0; k < 2 && bad_files[i].want[k]; k++)
			assert_contains(err, bad_files[i].want[k]);
		/* Nothing is handed out on failure. */
		assert_null(c.images);
	}
}

/* Bad input given as text: errors that need bytes a file cannot hold
 * portably, and limits. */
static void test_refusals_inline(void **state)
{
	static const struct {
		const char *what, *json, *want;
	} cases[] = {
	    {"empty text", "", "not valid JSON"},
	    {"truncated", "{\"images\": [", "not valid JSON"},
	    {"name too long",
	     "{\"images\":[{\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"version\":\"1\","
	     "\"boot\":\"kernel\",\"kernel\":\"/k\",\"initrd\":\"/i\"}]}",
	     "invalid 'name'"},
	    {"min_mem_mib a string",
	     "{\"images\":[{\"name\":\"t\",\"version\":\"1\","
	     "\"boot\":\"kernel\",\"kernel\":\"/k\",\"initrd\":\"/i\","
	     "\"min_mem_mib\":\"128\"}]}",
	     "'min_mem_mib' must be an integer"},
	    {"boot missing",
	     "{\"images\":[{\"name\":\"t\",\"version\":\"1\","
	     "\"kernel\":\"/k\",\"initrd\":\"/i\"}]}",
	     "missing 'boot'"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char err[512] = "";
		struct catalog c = {0};

		print_message("case: %s\n", cases[i].what);
		assert_int_equal(catalog_parse(cases[i].json,
					       strlen(cases[i].json), &c, err,
					       sizeof(err)),
				 -EINVAL);
		assert_contains(err, cases[i].want);
		assert_null(c.images);
	}
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
	/* Exactly the limit is fine. */
	memcpy(text + len - 2 - strlen(one) - 1, "]}", 3);
	len = strlen(text);
	assert_int_equal(catalog_parse(text, len, &c, err, sizeof(err)), 0);
	assert_int_equal(c.n, CATALOG_MAX_IMAGES);
	catalog_clear(&c);
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

/* The protocol refuses text after the object; the catalog must too, or a
 * second object pasted into the file is silently ignored. */
static void test_trailing_garbage(void **state)
{
	char err[512] = "";
	struct catalog c = {0};
	int r =
	    catalog_load(DATA("trailing_garbage.json"), &c, err, sizeof(err));

	catalog_clear(&c);
	KNOWN_BUG(r == -EINVAL,
		  "catalog_parse() accepts text after the top-level object\n");
}

/* json-c keeps what follows a \u0000; reading the value as a C string
 * silently drops it, so "ti\u0000ny" would become an image "ti". */
static void test_nul_in_string(void **state)
{
	static const char *const cases[] = {
	    "{\"images\":[{\"name\":\"ti\\u0000ny\",\"version\":\"1\","
	    "\"boot\":\"kernel\",\"kernel\":\"/k\",\"initrd\":\"/i\"}]}",
	    "{\"images\":[{\"name\":\"t\",\"version\":\"1\","
	    "\"boot\":\"kernel\",\"kernel\":\"/k\\u0000/../../x\","
	    "\"initrd\":\"/i\"}]}",
	};
	int r[ARRAY_SIZE(cases)];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char err[512] = "";
		struct catalog c = {0};

		r[i] = catalog_parse(cases[i], strlen(cases[i]), &c, err,
				     sizeof(err));
		if (r[i] == 0) {
			/* What it did accept is the truncated string. */
			assert_int_equal(c.n, 1);
			assert_true(strcmp(c.images[0].name, "ti") == 0 ||
				    strcmp(c.images[0].kernel, "/k") == 0);
		}
		catalog_clear(&c);
	}
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		KNOWN_BUG(r[i] == -EINVAL,
			  "catalog_parse() truncates a string at an embedded "
			  "NUL instead of refusing it (case %zu)\n",
			  i);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid),
	    cmocka_unit_test(test_find),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_names_truncated),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_refusals_inline),
	    cmocka_unit_test(test_too_many_images),
	    cmocka_unit_test(test_load_missing_file),
	    cmocka_unit_test(test_trailing_garbage),
	    cmocka_unit_test(test_nul_in_string),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
