// SPDX-License-Identifier: MIT
/*
 * Unit tests for vmmd/domxml.c: golden files in test/data/domxml/ (run with
 * VMENV_REGENERATE=1 to rewrite them after an intended change, then review
 * the diff), the kvm/qemu and share variants, escaping checked by parsing
 * the result back with xmllint, libvirt's own schema (virt-xml-validate),
 * and refusal of incomplete specs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "domxml.h"
#include "util.h"

#define XMLLINT		  "/usr/bin/xmllint"
#define VIRT_XML_VALIDATE "virt-xml-validate"
#define SPECIAL		  "/tmp/a&b<c>'d\""

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("XML does not contain '%s':\n%s", needle, hay);
}

static void assert_lacks(const char *hay, const char *needle)
{
	if (strstr(hay, needle))
		fail_msg("XML contains '%s':\n%s", needle, hay);
}

static struct dom_spec base_spec(void)
{
	return (struct dom_spec){
	    .name = "vmenv-n1-42",
	    .type = "qemu",
	    .job_id = 42,
	    .node = "n1",
	    .uid = 1000,
	    .gid = 1001,
	    .vcpus = 2,
	    .mem_mib = 960,
	    .kernel = "/run/vmenv/n1/jobs/42/boot/vmlinuz",
	    .initrd = "/run/vmenv/n1/jobs/42/boot/initrd.img",
	    .cmdline = "console=ttyS0 quiet",
	    .console_log = "/var/log/vmenv/n1/job-42.log",
	    .agent_sock = "/run/vmenv/n1/jobs/42/q/agent.sock",
	    .share_dir = "/home/alice/work",
	    .share_tag = "vmenv.workdir",
	};
}

static char *build(const struct dom_spec *s)
{
	char *xml = NULL;

	assert_int_equal(domxml_build(s, &xml), 0);
	assert_non_null(xml);
	return xml;
}

/* Writes xml to a new temp file; path must be a mkstemp template. */
static void write_temp(char *path, const char *xml)
{
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write_full(fd, xml, strlen(xml)), 0);
	close(fd);
}

/* Runs argv (no shell), stdout into out; the exit code, or -1. */
static int run(const char *const *argv, char *out, size_t outlen)
{
	int pfd[2], status;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pfd[1], STDOUT_FILENO);
		execvp(argv[0], (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	close(pfd[1]);
	while (out && got + 1 < outlen &&
	       (n = read(pfd[0], out + got, outlen - got - 1)) > 0)
		got += (size_t)n;
	if (out)
		out[got] = '\0';
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Is prog on PATH (as execvp would find it)? */
static bool have_prog(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[VMENV_MAX_PATH];

	if (prog[0] == '/')
		return access(prog, X_OK) == 0;
	if (!path)
		path = "/usr/bin:/bin";
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, p, prog);
		if (access(buf, X_OK) == 0)
			return true;
		p += n + (p[n] == ':');
	}
	return false;
}

/* --- golden files ------------------------------------------------------- */

static void spec_kvm(struct dom_spec *s)
{
	s->type = "kvm";
}

static void spec_noshare(struct dom_spec *s)
{
	s->share_dir = NULL;
	s->share_tag = NULL;
}

static const struct {
	const char *file;
	void (*adjust)(struct dom_spec *s);
} goldens[] = {
    {"basic.xml", NULL},
    {"kvm.xml", spec_kvm},
    {"noshare.xml", spec_noshare},
};

static void golden_path(char *buf, size_t len, const char *file)
{
	assert_int_equal(
	    str_printf(buf, len, "%s/domxml/%s", TEST_DATADIR, file), 0);
}

/* Names the first line that differs, which says more than two dumps. */
static void compare_lines(const char *file, const char *want, const char *got)
{
	const char *w = want, *g = got;
	unsigned line = 1;

	for (; *w && *w == *g; w++, g++)
		if (*w == '\n') {
			line++;
			want = w + 1;
			got = g + 1;
		}
	if (*w || *g)
		fail_msg("%s:%u differs (VMENV_REGENERATE=1 rewrites the "
			 "goldens)\nwant: %.*s\ngot:  %.*s",
			 file, line, (int)strcspn(want, "\n"), want,
			 (int)strcspn(got, "\n"), got);
}

static void test_golden(void **state)
{
	const char *regen = getenv("VMENV_REGENERATE");

	for (size_t i = 0; i < ARRAY_SIZE(goldens); i++) {
		struct dom_spec s = base_spec();
		_cleanup_free_ char *xml = NULL, *want = NULL;
		char path[VMENV_MAX_PATH];

		if (goldens[i].adjust)
			goldens[i].adjust(&s);
		xml = build(&s);
		golden_path(path, sizeof(path), goldens[i].file);
		if (regen && strcmp(regen, "1") == 0) {
			assert_int_equal(
			    write_file_atomic(path, xml, strlen(xml), 0644), 0);
			print_message("regenerated %s\n", path);
			continue;
		}
		if (read_file_limited(path, 1 << 20, &want, NULL) < 0)
			fail_msg("cannot read %s", path);
		compare_lines(goldens[i].file, want, xml);
	}
}

static void test_golden_schema(void **state)
{
	if (!have_prog(VIRT_XML_VALIDATE)) {
		print_message("%s not installed\n", VIRT_XML_VALIDATE);
		skip();
	}
	for (size_t i = 0; i < ARRAY_SIZE(goldens); i++) {
		char path[VMENV_MAX_PATH];
		const char *argv[] = {VIRT_XML_VALIDATE, path, "domain", NULL};

		golden_path(path, sizeof(path), goldens[i].file);
		if (run(argv, NULL, 0) != 0)
			fail_msg("libvirt's schema refuses %s", path);
	}
}

/* --- variants ----------------------------------------------------------- */

static void test_kvm_vs_qemu(void **state)
{
	struct dom_spec s = base_spec();
	_cleanup_free_ char *qemu = NULL, *kvm = NULL, *other = NULL;

	qemu = build(&s);
	assert_contains(qemu, "<domain type='qemu'>");
	assert_lacks(qemu, "host-passthrough");
	assert_lacks(qemu, "<cpu");
	s.type = "kvm";
	kvm = build(&s);
	assert_contains(kvm, "<domain type='kvm'>");
	assert_contains(kvm, "<cpu mode='host-passthrough'/>");
	assert_lacks(kvm, "type='qemu'");
	/* Anything but "kvm" means emulation: never an unknown type. */
	s.type = "xen";
	other = build(&s);
	assert_contains(other, "<domain type='qemu'>");
	assert_lacks(other, "xen");
}

static void test_share(void **state)
{
	struct dom_spec s = base_spec();
	_cleanup_free_ char *with = NULL, *without = NULL;

	with = build(&s);
	assert_contains(with, "<filesystem type='mount' "
			      "accessmode='passthrough'>");
	assert_contains(with, "<source dir='/home/alice/work'/>");
	assert_contains(with, "<target dir='vmenv.workdir'/>");
	spec_noshare(&s);
	without = build(&s);
	assert_lacks(without, "<filesystem");
	assert_lacks(without, "/home/alice/work");
	/* The rest of the domain is unchanged. */
	assert_contains(without, "<channel type='unix'>");
}

static void test_values(void **state)
{
	struct dom_spec s = base_spec();
	_cleanup_free_ char *xml = NULL;

	s.uid = 4294967294u;
	s.gid = 0;
	s.vcpus = 255;
	s.mem_mib = 16777216;
	s.job_id = 4294967295u;
	xml = build(&s);
	assert_contains(xml, "<label>+4294967294:+0</label>");
	assert_contains(xml, "<vcpu placement='static'>255</vcpu>");
	assert_contains(xml, "<memory unit='MiB'>16777216</memory>");
	assert_contains(xml, "id='4294967295'");
	assert_contains(xml,
			"<target type='virtio' name='org.vmenv.agent.0'/>");
}

/* --- escaping ----------------------------------------------------------- */

/* Every user-derived string, and where it lands (for xmllint --xpath). */
static const struct {
	const char *xpath;
	size_t off; /* of the const char * in struct dom_spec */
} escaped_fields[] = {
    {"string(/domain/os/kernel)", offsetof(struct dom_spec, kernel)},
    {"string(/domain/os/initrd)", offsetof(struct dom_spec, initrd)},
    {"string(/domain/os/cmdline)", offsetof(struct dom_spec, cmdline)},
    {"string(/domain/devices/serial/log/@file)",
     offsetof(struct dom_spec, console_log)},
    {"string(/domain/devices/channel/source/@path)",
     offsetof(struct dom_spec, agent_sock)},
    {"string(/domain/devices/filesystem/source/@dir)",
     offsetof(struct dom_spec, share_dir)},
    {"string(/domain/devices/filesystem/target/@dir)",
     offsetof(struct dom_spec, share_tag)},
    {"string(/domain/name)", offsetof(struct dom_spec, name)},
    {"string(/domain/metadata/*/@node)", offsetof(struct dom_spec, node)},
};

static struct dom_spec special_spec(void)
{
	struct dom_spec s = base_spec();

	for (size_t i = 0; i < ARRAY_SIZE(escaped_fields); i++)
		memcpy((char *)&s + escaped_fields[i].off,
		       &(const char *){SPECIAL}, sizeof(const char *));
	return s;
}

static void test_escaping(void **state)
{
	struct dom_spec s = special_spec();
	_cleanup_free_ char *xml = build(&s);

	assert_contains(xml, "/tmp/a&amp;b&lt;c&gt;&apos;d&quot;");
	assert_lacks(xml, "a&b");
	assert_lacks(xml, "<c>");
	assert_lacks(xml, "'d\"");
	/* Escaped once, not twice. */
	assert_lacks(xml, "&amp;amp;");
}

/* The real check: an XML parser reads back exactly the original strings. */
static void test_escaping_wellformed(void **state)
{
	struct dom_spec s = special_spec();
	_cleanup_free_ char *xml = build(&s);
	char path[] = "/tmp/vmenv-domxml-XXXXXX";

	if (access(XMLLINT, X_OK) != 0) {
		print_message("%s not installed\n", XMLLINT);
		skip();
	}
	write_temp(path, xml);
	{
		const char *argv[] = {XMLLINT, "--noout", path, NULL};
		int r = run(argv, NULL, 0);

		if (r != 0) {
			unlink(path);
			fail_msg("xmllint: not well-formed:\n%s", xml);
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(escaped_fields); i++) {
		const char *argv[] = {XMLLINT, "--xpath",
				      escaped_fields[i].xpath, path, NULL};
		char out[256];

		assert_int_equal(run(argv, out, sizeof(out)), 0);
		out[strcspn(out, "\n")] = '\0'; /* xmllint ends the line */
		if (strcmp(out, SPECIAL) != 0) {
			unlink(path);
			fail_msg("%s reads back as '%s'",
				 escaped_fields[i].xpath, out);
		}
	}
	unlink(path);
}

/* --- refusals ----------------------------------------------------------- */

static void test_missing_fields(void **state)
{
	static const struct {
		const char *what;
		size_t off; /* pointer to clear, or */
		int which;  /* 1 vcpus=0, 2 mem=0, 3 tag without dir */
	} cases[] = {
	    {"name", offsetof(struct dom_spec, name)},
	    {"type", offsetof(struct dom_spec, type)},
	    {"node", offsetof(struct dom_spec, node)},
	    {"kernel", offsetof(struct dom_spec, kernel)},
	    {"initrd", offsetof(struct dom_spec, initrd)},
	    {"cmdline", offsetof(struct dom_spec, cmdline)},
	    {"console_log", offsetof(struct dom_spec, console_log)},
	    {"agent_sock", offsetof(struct dom_spec, agent_sock)},
	    {"share_tag with a share_dir",
	     offsetof(struct dom_spec, share_tag)},
	    {"no vCPUs", 0, 1},
	    {"no memory", 0, 2},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct dom_spec s = base_spec();
		char *xml = NULL;

		print_message("case: %s\n", cases[i].what);
		if (cases[i].which == 1)
			s.vcpus = 0;
		else if (cases[i].which == 2)
			s.mem_mib = 0;
		else
			memset((char *)&s + cases[i].off, 0,
			       sizeof(const char *));
		assert_int_equal(domxml_build(&s, &xml), -EINVAL);
		assert_null(xml);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_golden),
	    cmocka_unit_test(test_golden_schema),
	    cmocka_unit_test(test_kvm_vs_qemu),
	    cmocka_unit_test(test_share),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_escaping),
	    cmocka_unit_test(test_escaping_wellformed),
	    cmocka_unit_test(test_missing_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
