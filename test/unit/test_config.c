// SPDX-License-Identifier: MIT
/*
 * Unit tests for vmmd/vmmdconf.c: the defaults (built from the same
 * build-time directories as vmmd), the "key = value" syntax, an error naming
 * file:line and the key for every bad line, %n expansion, node names that
 * must not reach a path, and config_dump.
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
#include <unistd.h>

#include "cleanup.h"
/* By path: "config.h" alone is autoconf's, found first on -I. */
#include "../../vmmd/vmmdconf.h"

/* Every key, as an operator would write it. */
static const char *const all_keys[] = {
    "node_name",
    "socket",
    "run_dir",
    "console_dir",
    "catalog",
    "libvirt_uri",
    "domain_type",
    "slurm_user",
    "keep_console_logs",
    "console_linger_s",
    "log_level",
    "boot_timeout_s",
    "default_mem_mib",
    "mem_headroom_mib",
    "max_vcpus",
    "max_clients",
    "max_clients_per_uid",
    "reserved_clients",
    "max_request_kib_per_uid",
    "client_request_timeout_s",
    "reconcile_interval_s",
    "policy_dir",
    "sysfs_root",
    "proc_root",
    "gres_conf",
    "housekeeping_cpus",
    "mem_limit",
    "ib_pfs",
    "max_ib_vfs",
    "ib_guid_prefix",
    "ib_guid_node_id",
    "image_cache",
    "image_cache_max_mib",
    "allow_user_images",
    "qemu_img",
    "fetch_proxy",
    "fetch_user",
    "fetch_helper",
    "catalog_refresh_s",
    "image_prepare_timeout_s",
    "fetch_connect_timeout_s",
    "fetch_low_speed_time_s",
    "fetch_low_speed_bps",
    "fetch_retries",
    "fetch_retry_delay_ms",
    "guest_net",
    "net_tunnel",
    "net_vxlan_port",
    "net_nodes_file",
    "net_mtu",
    "job_key_file",
    "checkpoint_dir",
    "checkpoint_probe_mib",
    "checkpoint_requery_s",
    "checkpoint_files",
    "checkpoint_standin_device",
    "checkpoint_retention_s",
    "evacuate_drain_reason",
    "checkpoint_keep_max",
    "checkpoint_keep_max_mib",
    "overlay_keep_max",
    "overlay_keep_max_mib",
    "overlay_keep_total_mib",
    "overlay_retention_s",
    "warm_start",
    "warm_user",
    "warm_templates_max",
    "bulk_ports",
    "session_restarts",
};

static void defaults(struct vmmd_config *c)
{
	config_defaults(c, "n1");
}

static void parse_ok(struct vmmd_config *c, const char *text)
{
	char err[512] = "";

	if (config_parse(c, text, "t.conf", err, sizeof(err)) != 0)
		fail_msg("%s", err);
}

/* config_dump into a string (caller frees). */
static char *dump(const struct vmmd_config *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	config_dump(c, f);
	assert_int_equal(fclose(f), 0);
	return buf;
}

/* --- defaults ----------------------------------------------------------- */

static void test_defaults(void **state)
{
	struct vmmd_config c;
	char err[512] = "";

	defaults(&c);
	assert_string_equal(c.node_name, "n1");
	/* Before expansion the paths hold %n. */
	assert_string_equal(c.socket_path, VMENV_RUNDIR "/%n/vmmd.sock");
	assert_int_equal(config_expand(&c, err, sizeof(err)), 0);
	assert_string_equal(c.socket_path, VMENV_RUNDIR "/n1/vmmd.sock");
	assert_string_equal(c.run_dir, VMENV_RUNDIR "/n1");
	assert_string_equal(c.console_dir, VMENV_LOGDIR "/n1");
	assert_string_equal(c.catalog, VMENV_SYSCONFDIR "/catalog.json");
	assert_string_equal(c.policy_dir, VMENV_SYSCONFDIR "/policies.d");
	assert_string_equal(c.libvirt_uri, "qemu:///system");
	assert_string_equal(c.domain_type, "auto");
	assert_string_equal(c.slurm_user, "slurm");
	assert_string_equal(c.keep_console_logs, "failed");
	assert_string_equal(c.log_level, "info");
	assert_int_equal(c.boot_timeout_s, 120);
	assert_int_equal(c.default_mem_mib, 512);
	/* Measured by bench/qemu-mem; docs/placement.md. */
	assert_int_equal(c.mem_headroom_mib, 128);
	assert_int_equal(c.max_vcpus, 255);
	assert_int_equal(c.max_clients, 1024);
	assert_int_equal(c.max_clients_per_uid, 64);
	assert_int_equal(c.reserved_clients, 32);
	assert_int_equal(c.max_request_kib_per_uid, 16384);
	assert_int_equal(c.client_request_timeout_s, 5);
	assert_int_equal(c.reconcile_interval_s, 60);
	assert_string_equal(c.sysfs_root, "/sys");
	assert_string_equal(c.proc_root, "/proc");
	assert_string_equal(c.gres_conf, "/etc/slurm/gres.conf");
	assert_string_equal(c.housekeeping_cpus, "");
	assert_string_equal(c.mem_limit, "auto");
	assert_string_equal(c.ib_pfs, "");
	assert_int_equal(c.max_ib_vfs, 8);
	assert_string_equal(c.ib_guid_prefix, "");
	assert_int_equal(c.ib_guid_node_id, 0);
}

/* Without a node name the host's short name is used. */
static void test_default_node_is_hostname(void **state)
{
	struct vmmd_config c;
	char host[256] = "";

	assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
	host[strcspn(host, ".")] = '\0';
	config_defaults(&c, NULL);
	assert_string_equal(c.node_name, host);
	config_defaults(&c, "");
	assert_string_equal(c.node_name, host);
}

/* --- syntax ------------------------------------------------------------- */

static void test_parse_syntax(void **state)
{
	struct vmmd_config c;

	defaults(&c);
	parse_ok(&c, "# a comment\n"
		     "\n"
		     "   \t  \n"
		     "boot_timeout_s=30\n"
		     "  max_vcpus   =   8   # trailing comment\n"
		     "\tdomain_type\t=\tkvm\t\n"
		     "log_level = debug\r\n"
		     "libvirt_uri = qemu+ssh://root@host/system\n"
		     "slurm_user = \n"
		     "run_dir = /srv/vmenv run\n"
		     "# boot_timeout_s = 99\n"
		     "max_clients = 1");
	assert_int_equal(c.boot_timeout_s, 30);
	assert_int_equal(c.max_vcpus, 8);
	assert_string_equal(c.domain_type, "kvm");
	assert_string_equal(c.log_level, "debug");
	assert_string_equal(c.libvirt_uri, "qemu+ssh://root@host/system");
	assert_string_equal(c.slurm_user, "");
	assert_string_equal(c.run_dir, "/srv/vmenv run");
	assert_int_equal(c.max_clients, 1);
	/* Untouched keys keep their defaults. */
	assert_int_equal(c.default_mem_mib, 512);
	/* A later line wins. */
	parse_ok(&c, "max_vcpus = 2\nmax_vcpus = 4\n");
	assert_int_equal(c.max_vcpus, 4);
	/* Empty text is a valid (empty) file. */
	parse_ok(&c, "");
}

static void test_parse_limits(void **state)
{
#define U32(line, field, v)                                  \
	{                                                    \
		line, offsetof(struct vmmd_config, field), v \
	}
	static const struct {
		const char *line;
		size_t off; /* of the uint32_t in struct vmmd_config */
		uint32_t want;
	} cases[] = {
	    U32("boot_timeout_s = 1", boot_timeout_s, 1),
	    U32("boot_timeout_s = 3600", boot_timeout_s, 3600),
	    U32("mem_headroom_mib = 0", mem_headroom_mib, 0),
	    U32("max_vcpus = 1024", max_vcpus, 1024),
	    U32("reconcile_interval_s = 5", reconcile_interval_s, 5),
	    U32("default_mem_mib = 16777216", default_mem_mib, 16777216),
	};
#undef U32

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct vmmd_config c;
		uint32_t got;

		defaults(&c);
		parse_ok(&c, cases[i].line);
		memcpy(&got, (const char *)&c + cases[i].off, sizeof(got));
		assert_int_equal(got, cases[i].want);
	}
}

/* --- errors ------------------------------------------------------------- */

static const struct {
	const char *what;
	const char *text;
	const char *where; /* file:line */
	const char *want;  /* names the key */
} bad_configs[] = {
    {"unknown key", "# x\n\nfrobnicate = 1\n",
     "t.conf:3:", "unknown key 'frobnicate'"},
    {"key that differs in case", "Boot_Timeout_S = 5\n",
     "t.conf:1:", "unknown key 'Boot_Timeout_S'"},
    {"control char in key", "bad\x01key = 1\n",
     "t.conf:1:", "unknown key 'bad?key'"},
    {"bad integer", "max_vcpus = 4\nboot_timeout_s = abc\n",
     "t.conf:2:", "'boot_timeout_s' wants an integer in 1..3600"},
    {"integer with junk", "max_vcpus = 4x\n",
     "t.conf:1:", "'max_vcpus' wants an integer"},
    {"negative integer", "max_clients = -1\n",
     "t.conf:1:", "'max_clients' wants an integer"},
    {"hex integer", "max_clients = 0x10\n",
     "t.conf:1:", "'max_clients' wants an integer"},
    {"empty integer", "max_clients =\n",
     "t.conf:1:", "'max_clients' wants an integer"},
    {"below range", "boot_timeout_s = 0\n",
     "t.conf:1:", "'boot_timeout_s' wants an integer in 1..3600"},
    {"above range", "\n\n\n\nboot_timeout_s = 3601\n",
     "t.conf:5:", "'boot_timeout_s' wants an integer in 1..3600"},
    {"above u32", "max_vcpus = 4294967296\n",
     "t.conf:1:", "'max_vcpus' wants an integer"},
    {"bad enum", "domain_type = xen\n",
     "t.conf:1:", "'domain_type' must be one of: auto kvm qemu"},
    {"enum prefix", "keep_console_logs = fail\n",
     "t.conf:1:", "'keep_console_logs' must be one of"},
    {"enum two words", "log_level = info debug\n",
     "t.conf:1:", "'log_level' must be one of"},
    {"relative path", "run_dir = run/vmenv\n",
     "t.conf:1:", "'run_dir' must be an absolute path"},
    {"path with ..", "catalog = /etc/../tmp/c.json\n",
     "t.conf:1:", "'catalog' must be an absolute path"},
    {"path with //", "socket = /run//vmmd.sock\n",
     "t.conf:1:", "'socket' must be an absolute path"},
    {"empty path", "console_dir =\n",
     "t.conf:1:", "'console_dir' must be an absolute path"},
    {"value too long",
     "domain_type = auto\nnode_name = "
     "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
     "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\n",
     "t.conf:2:", "'node_name' is too long"},
    {"missing '='", "max_vcpus = 2\nboot_timeout_s 30\n",
     "t.conf:2:", "expected 'key = value'"},
};

static void test_parse_errors(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(bad_configs); i++) {
		struct vmmd_config c;
		char err[512] = "";

		print_message("case: %s\n", bad_configs[i].what);
		defaults(&c);
		assert_int_equal(config_parse(&c, bad_configs[i].text, "t.conf",
					      err, sizeof(err)),
				 -EINVAL);
		/* The location comes first, as compilers print it. */
		assert_int_equal(strncmp(err, bad_configs[i].where,
					 strlen(bad_configs[i].where)),
				 0);
		assert_contains(err, bad_configs[i].want);
	}
}

/* "boot_timeout_s 30": the message gives the line number but not the
 * text, so with a long file the operator has to go and look. */
static void test_missing_equals_names_key(void **state)
{
	struct vmmd_config c;
	char err[512] = "";

	defaults(&c);
	assert_int_equal(
	    config_parse(&c, "boot_timeout_s 30\n", "t.conf", err, sizeof(err)),
	    -EINVAL);
	assert_contains(err, "t.conf:1:");
	assert_contains(err, "'boot_timeout_s'");
}

/* A bad value leaves the config as it was before that line. */
static void test_parse_error_keeps_value(void **state)
{
	struct vmmd_config c;
	char err[512];

	defaults(&c);
	assert_int_equal(config_parse(&c, "boot_timeout_s = 9000\n", "t.conf",
				      err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(c.boot_timeout_s, 120);
	assert_int_equal(
	    config_parse(&c, "domain_type = xen\n", "t.conf", err, sizeof(err)),
	    -EINVAL);
	assert_string_equal(c.domain_type, "auto");
}

static void test_load(void **state)
{
	char path[] = "/tmp/vmenv-config-XXXXXX";
	const char text[] = "max_vcpus = 3\n# ok\nbogus = 1\n";
	struct vmmd_config c;
	char err[512] = "", want[600];
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	defaults(&c);
	assert_int_equal(config_load(&c, path, 0, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:3: unknown key 'bogus'", path);
	assert_string_equal(err, want);
	assert_int_equal(c.max_vcpus, 3); /* lines before the error applied */
	unlink(path);

	/* A missing file is fine only when optional. */
	defaults(&c);
	assert_int_equal(config_load(&c, path, 1, err, sizeof(err)), 0);
	assert_int_equal(c.max_vcpus, 255);
	assert_true(config_load(&c, path, 0, err, sizeof(err)) < 0);
	assert_contains(err, path);
}

/* --- expansion ---------------------------------------------------------- */

static void test_expand(void **state)
{
	struct vmmd_config c;
	char err[512] = "";

	config_defaults(&c, "node-7.a_b+c");
	parse_ok(&c, "run_dir = /srv/%n/run/%n\n"
		     "socket = /run/vmenv-%n.sock\n"
		     "console_dir = /var/log/100%/x\n"
		     "catalog = /etc/vmenv/catalog.json\n"
		     "libvirt_uri = qemu:///%n\n");
	assert_int_equal(config_expand(&c, err, sizeof(err)), 0);
	assert_string_equal(c.run_dir, "/srv/node-7.a_b+c/run/node-7.a_b+c");
	assert_string_equal(c.socket_path, "/run/vmenv-node-7.a_b+c.sock");
	assert_string_equal(c.console_dir, "/var/log/100%/x");
	assert_string_equal(c.catalog, "/etc/vmenv/catalog.json");
	/* Only paths are expanded. */
	assert_string_equal(c.libvirt_uri, "qemu:///%n");
}

static void test_expand_bad_node(void **state)
{
	static const char *const nodes[] = {
	    "a/b",
	    "../etc",
	    "a b",
	    "a:b",
	    ".hidden",
	    "-n",
	    "n\n1",
	    "n\t1",
	    "n;rm",
	    "n%n",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaa",
	};

	for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
		struct vmmd_config c;
		char err[512] = "";

		config_defaults(&c, nodes[i]);
		assert_int_equal(config_expand(&c, err, sizeof(err)), -EINVAL);
		assert_contains(err, "node name");
		/* Refused before any path was touched. */
		assert_string_equal(c.run_dir, VMENV_RUNDIR "/%n");
	}
}

/* A path that is only unclean after expansion, or too long. */
static void test_expand_bad_result(void **state)
{
	struct vmmd_config c;
	char err[512] = "", line[VMENV_MAX_PATH + 32];

	defaults(&c);
	parse_ok(&c, "run_dir = /srv/vmenv/..\n");
	assert_int_equal(config_expand(&c, err, sizeof(err)), -EINVAL);
	assert_contains(err, "'run_dir' is not a clean absolute path");

	config_defaults(&c, "n123456789");
	memset(line, 0, sizeof(line));
	strcpy(line, "console_dir = /");
	memset(line + strlen(line), 'x', VMENV_MAX_PATH - 8);
	strcat(line, "/%n");
	parse_ok(&c, line);
	assert_int_equal(config_expand(&c, err, sizeof(err)), -EINVAL);
	assert_contains(err, "'console_dir' too long after expansion");
}

/* --- dump --------------------------------------------------------------- */

static void test_dump(void **state)
{
	struct vmmd_config c, again;
	_cleanup_free_ char *text = NULL, *text2 = NULL;
	char want[256];
	size_t lines = 0;

	defaults(&c);
	parse_ok(&c, "max_vcpus = 7\ndomain_type = qemu\nrun_dir = /srv/%n\n");
	text = dump(&c);
	for (size_t i = 0; i < ARRAY_SIZE(all_keys); i++) {
		snprintf(want, sizeof(want), "%s = ", all_keys[i]);
		assert_contains(text, want);
	}
	for (const char *p = text; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, ARRAY_SIZE(all_keys));
	assert_contains(text, "max_vcpus = 7\n");
	assert_contains(text, "domain_type = qemu\n");
	assert_contains(text, "run_dir = /srv/%n\n");
	assert_contains(text, "boot_timeout_s = 120\n");
	/* What vmmd --check-config prints is itself a valid config file
	 * that yields the same settings. */
	config_defaults(&again, "other");
	parse_ok(&again, text);
	text2 = dump(&again);
	assert_string_equal(text, text2);
}

/* The image keys: the catalog may be a URL (not %n-checked as a path),
 * user images are off unless said otherwise. */
static void test_image_keys(void **state)
{
	static const struct {
		const char *line, *want;
	} bad[] = {
	    {"catalog = ftp://h/c.json", "'catalog' must be an absolute path"},
	    {"catalog = http:///c.json", "'catalog' is not a usable URL"},
	    {"catalog = http://h/a b.json", "'catalog' is not a usable URL"},
	    {"catalog = http://h/a\"b", "'catalog' is not a usable URL"},
	    {"catalog = c.json", "'catalog' must be an absolute path"},
	    {"allow_user_images = maybe", "'allow_user_images' must be one of"},
	    {"image_cache = cache", "'image_cache' must be an absolute path"},
	    {"image_cache_max_mib = 1",
	     "'image_cache_max_mib' wants an integer"},
	    {"fetch_proxy = http://a b", "'fetch_proxy' must not contain"},
	    {"fetch_connect_timeout_s = 0", "wants an integer in 1..600"},
	};
	struct vmmd_config c;
	char err[512] = "";

	defaults(&c);
	assert_string_equal(c.allow_user_images, "no");
	assert_string_equal(c.image_cache, VMENV_CACHEDIR);
	assert_string_equal(c.qemu_img, "/usr/bin/qemu-img");
	assert_false(config_catalog_is_url(&c));
	parse_ok(&c, "catalog = https://images.example.org/%n/catalog.json\n"
		     "fetch_proxy = http://proxy:3128\n");
	assert_int_equal(config_expand(&c, err, sizeof(err)), 0);
	assert_string_equal(c.catalog,
			    "https://images.example.org/n1/catalog.json");
	assert_true(config_catalog_is_url(&c));
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		defaults(&c);
		print_message("%s\n", bad[i].line);
		assert_int_equal(
		    config_parse(&c, bad[i].line, "t.conf", err, sizeof(err)),
		    -EINVAL);
		assert_contains(err, bad[i].want);
	}
}

/* A list key takes words separated by spaces; a string key is one word
 * (a proxy URL with a space in it is a typo). */
static void test_list_and_word_keys(void **state)
{
	struct vmmd_config c;
	char err[512] = "";

	defaults(&c);
	parse_ok(&c, "ib_pfs = 0000:3b:00.0 0000:af:00.0\n");
	assert_string_equal(c.ib_pfs, "0000:3b:00.0 0000:af:00.0");
	assert_int_equal(config_parse(&c, "ib_pfs = mlx5_0\x01\n", "t.conf",
				      err, sizeof(err)),
			 -EINVAL);
	assert_contains(err, "'ib_pfs' must not contain control characters");
	assert_int_equal(config_parse(&c, "housekeeping_cpus = 0 1\n", "t.conf",
				      err, sizeof(err)),
			 -EINVAL);
	assert_contains(err, "'housekeeping_cpus' must not contain spaces");
}

/* Every key in the dump can be set by the parser (no key is dump-only). */
static void test_every_key_settable(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(all_keys); i++) {
		struct vmmd_config c;
		char line[128], err[512] = "";

		defaults(&c);
		snprintf(line, sizeof(line), "%s = \x01\n", all_keys[i]);
		/* Known key: any failure is about the value, not the key. */
		if (config_parse(&c, line, "t.conf", err, sizeof(err)) < 0)
			assert_null(strstr(err, "unknown key"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_default_node_is_hostname),
	    cmocka_unit_test(test_parse_syntax),
	    cmocka_unit_test(test_parse_limits),
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_missing_equals_names_key),
	    cmocka_unit_test(test_parse_error_keeps_value),
	    cmocka_unit_test(test_load),
	    cmocka_unit_test(test_expand),
	    cmocka_unit_test(test_expand_bad_node),
	    cmocka_unit_test(test_expand_bad_result),
	    cmocka_unit_test(test_dump),
	    cmocka_unit_test(test_image_keys),
	    cmocka_unit_test(test_list_and_word_keys),
	    cmocka_unit_test(test_every_key_settable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
