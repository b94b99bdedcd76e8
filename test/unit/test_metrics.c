// SPDX-License-Identifier: MIT
/*
 * Unit tests for vmmd/metrics_fmt.c and vmmd/metrics.c: the counting, and
 * the text exposition format as Prometheus reads it. Every sample belongs to a family announced by
 * HELP and TYPE before it, names match Prometheus' rule, counters end in
 * _total, label values are escaped, and the numbers are the counters'.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "metrics.h"

struct family {
	char name[128];
	char type[256];
	bool help;
};

/* The family a sample name belongs to: itself, or without a summary's
 * _sum/_count suffix. */
static const struct family *family_of(const struct family *f, size_t n,
				      const char *sample)
{
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(f[i].name);

		if (strncmp(sample, f[i].name, l) != 0)
			continue;
		if (!sample[l] || (strcmp(f[i].type, "summary") == 0 &&
				   (!strcmp(sample + l, "_sum") ||
				    !strcmp(sample + l, "_count"))))
			return &f[i];
	}
	return NULL;
}

static void check_comment(char *line, struct family *fams, size_t *n)
{
	char kind[8], name[128], rest[256];

	assert_int_equal(
	    sscanf(line, "# %7s %127s %255[^\n]", kind, name, rest), 3);
	assert_true(metrics_valid_name(name));
	if (strcmp(kind, "HELP") == 0) {
		/* A family is announced once: HELP first, then TYPE. */
		assert_null(family_of(fams, *n, name));
		snprintf(fams[*n].name, sizeof(fams[*n].name), "%s", name);
		fams[(*n)++].help = true;
		return;
	}
	assert_string_equal(kind, "TYPE");
	assert_true(*n > 0);
	assert_string_equal(fams[*n - 1].name, name);
	assert_true(!strcmp(rest, "counter") || !strcmp(rest, "gauge") ||
		    !strcmp(rest, "summary"));
	snprintf(fams[*n - 1].type, sizeof(fams[*n - 1].type), "%s", rest);
	if (!strcmp(rest, "counter"))
		assert_non_null(strstr(name, "_total"));
}

/* name{labels} value: the name valid and announced, labels quoted with
 * only \\, \" and \n escapes, the value a number. */
static void check_sample(const char *line, const struct family *fams, size_t n)
{
	char name[128];
	size_t len = strcspn(line, "{ ");
	const char *p = line + len;
	char *end;

	assert_true(len > 0 && len < sizeof(name));
	memcpy(name, line, len);
	name[len] = '\0';
	assert_true(metrics_valid_name(name));
	assert_non_null(family_of(fams, n, name));
	assert_string_not_equal(family_of(fams, n, name)->type, "");
	if (*p == '{') {
		for (p++; *p != '}'; p++) {
			assert_true(*p != '\0');
			if (*p != '"')
				continue;
			for (p++; *p != '"'; p++) {
				assert_true(*p != '\0' && *p != '\n');
				if (*p == '\\') {
					p++;
					assert_non_null(strchr("\\\"n", *p));
				}
			}
		}
		p++;
	}
	assert_int_equal(*p, ' ');
	strtod(p + 1, &end);
	assert_true(end > p + 1);
	assert_int_equal(*end, '\0');
}

/* The whole text, line by line. */
static void check_format(char *text)
{
	struct family fams[64] = {{.name = ""}};
	size_t n = 0, samples = 0;

	assert_true(strlen(text) > 0);
	assert_int_equal(text[strlen(text) - 1], '\n');
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#') {
			check_comment(line, fams, &n);
		} else {
			check_sample(line, fams, n);
			samples++;
		}
	}
	assert_true(samples >= n);
}

static void test_format_valid(void **state)
{
	struct metrics m = {.job_starts = 7, .cache_hits = 3};
	struct metrics_snapshot s = {
	    .node = "n1", .m = &m, .guests_running = 2, .cache_bytes = 1234};
	_cleanup_free_ char *text = NULL;
	size_t len;

	(void)state;
	m.failures[METRICS_FAIL_BOOT_TIMEOUT] = 5;
	metrics_observe(&m.boot_s, 1.5);
	metrics_observe(&m.boot_s, 2.25);
	assert_int_equal(metrics_format(&s, &text, &len), 0);
	assert_int_equal(strlen(text), len);
	assert_contains(text, "vmenv_job_starts_total{node=\"n1\"} 7\n");
	assert_contains(text, "vmenv_guests_running{node=\"n1\"} 2\n");
	assert_contains(text, "vmenv_job_failures_total{node=\"n1\",reason="
			      "\"boot_timeout\"} 5\n");
	assert_contains(text, "vmenv_guest_boot_seconds_sum{node=\"n1\"} "
			      "3.750000\n");
	assert_contains(text,
			"vmenv_guest_boot_seconds_count{node=\"n1\"} 2\n");
	assert_contains(text, "vmenv_image_cache_bytes{node=\"n1\"} 1234\n");
	assert_contains(text, "vmenv_image_cache_hits_total{node=\"n1\"} 3\n");
	assert_contains(text, "# TYPE vmenv_checkpoint_seconds summary\n");
	check_format(text);
}

/* Every reason is a sample, even at 0, and none is free text. */
static void test_every_reason(void **state)
{
	struct metrics m = {0};
	struct metrics_snapshot s = {.node = "n1", .m = &m};
	_cleanup_free_ char *text = NULL;
	char want[128];
	size_t len;

	(void)state;
	assert_int_equal(metrics_format(&s, &text, &len), 0);
	for (int r = METRICS_FAIL_NONE + 1; r < METRICS_FAIL_N; r++) {
		assert_true(metrics_valid_name(metrics_fail_name(r)));
		snprintf(want, sizeof(want),
			 "vmenv_job_failures_total{node=\"n1\",reason=\"%s\"} "
			 "0\n",
			 metrics_fail_name(r));
		assert_contains(text, want);
	}
	assert_null(strstr(text, "reason=\"none\""));
	assert_string_equal(metrics_fail_name(METRICS_FAIL_N + 3), "other");
}

/* A label value with a quote, a backslash and a newline stays one
 * sample on one line. */
static void test_label_escaped(void **state)
{
	struct metrics m = {0};
	struct metrics_snapshot s = {.node = "a\"b\\c\nd", .m = &m};
	_cleanup_free_ char *text = NULL;
	size_t len;

	(void)state;
	assert_int_equal(metrics_format(&s, &text, &len), 0);
	assert_contains(text,
			"vmenv_guests_running{node=\"a\\\"b\\\\c\\nd\"} 0\n");
	check_format(text);
}

static void test_valid_name(void **state)
{
	static const struct {
		const char *name;
		bool ok;
	} cases[] = {
	    {"vmenv_jobs", true}, {"_x:y9", true}, {"9x", false}, {"", false},
	    {"a-b", false},	  {"a b", false},  {"é", false},
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		assert_int_equal(metrics_valid_name(cases[i].name),
				 cases[i].ok);
}

/* A ready guest counts its times only when its milestones are in order
 * (a restored or adopted one has none of its own); a failure with no
 * reason, or one out of range, counts as other. */
static void test_counting(void **state)
{
	struct metrics m = {0};

	(void)state;
	metrics_count_ready(&m, 1000, 3000, 3500, 7500);
	assert_int_equal(m.prepare_s.count, 1);
	assert_true(m.prepare_s.sum == 2.0);
	assert_int_equal(m.boot_s.count, 1);
	assert_true(m.boot_s.sum == 4.0);
	metrics_count_ready(&m, 0, 3000, 3500, 7500);
	metrics_count_ready(&m, 1000, 3000, 3500, 3400);
	metrics_count_ready(&m, 4000, 3000, 3500, 7500);
	assert_int_equal(m.prepare_s.count, 1);
	assert_int_equal(m.boot_s.count, 1);

	metrics_count_failure(&m, METRICS_FAIL_AGENT);
	metrics_count_failure(&m, METRICS_FAIL_NONE);
	metrics_count_failure(&m, (enum metrics_fail)(METRICS_FAIL_N + 3));
	assert_int_equal(m.failures[METRICS_FAIL_AGENT], 1);
	assert_int_equal(m.failures[METRICS_FAIL_OTHER], 2);
	assert_int_equal(m.failures[METRICS_FAIL_NONE], 0);

	metrics_count_start(&m);
	metrics_count_cache(&m, true);
	metrics_count_cache(&m, false);
	metrics_count_cache(&m, false);
	metrics_count_ckpt(&m, 1500, 4096);
	assert_int_equal(m.job_starts, 1);
	assert_int_equal(m.cache_hits, 1);
	assert_int_equal(m.cache_misses, 2);
	assert_true(m.ckpt_s.sum == 1.5);
	assert_int_equal(m.ckpt_bytes.count, 1);
	assert_true(m.ckpt_bytes.sum == 4096.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_format_valid),
	    cmocka_unit_test(test_every_reason),
	    cmocka_unit_test(test_label_escaped),
	    cmocka_unit_test(test_valid_name),
	    cmocka_unit_test(test_counting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
