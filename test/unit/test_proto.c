// SPDX-License-Identifier: MIT
/*
 * Unit tests for common/proto.c: request and reply round trips, every
 * refusal of the request decoder (each error must name the field), and the
 * transport (framing, fd passing, size caps, EOF, fd limits) over a
 * socketpair.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "proto.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ALLOC_HOOKS 1
/* The ASan runtime's allocator hooks (no header declares them): they let a
 * test see the largest allocation the receiver made. */
int __sanitizer_install_malloc_and_free_hooks(
    void (*malloc_hook)(const volatile void *, size_t),
    void (*free_hook)(const volatile void *));

static size_t largest_alloc;

static void note_malloc(const volatile void *p, size_t n)
{
	if (n > largest_alloc)
		largest_alloc = n;
}

static void note_free(const volatile void *p)
{
}
#endif

/* --- helpers ------------------------------------------------------------ */

static void assert_strv_equal(char *const *a, size_t an, char *const *b,
			      size_t bn)
{
	assert_int_equal(an, bn);
	for (size_t i = 0; i < an; i++)
		assert_string_equal(a[i], b[i]);
	assert_null(a[an]);
	assert_null(b[bn]);
}

/* Entries in /proc/self/fd: equal before and after means nothing leaked. */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* A socketpair whose receiving end [1] is non-blocking, as in vmmd. */
static void xsocketpair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	assert_int_equal(fd_set_nonblock(sv[1], true), 0);
}

/* Feeds until the receiver reports something other than "need more";
 * the sender has written everything already. */
static int feed_all(struct proto_rx *rx, int fd)
{
	int r;

	for (int i = 0; i < 1000; i++) {
		r = proto_rx_feed(rx, fd);
		if (r != 0)
			return r;
	}
	return 0;
}

static void put_hdr(uint8_t h[4], uint32_t len)
{
	h[0] = (uint8_t)(len >> 24);
	h[1] = (uint8_t)(len >> 16);
	h[2] = (uint8_t)(len >> 8);
	h[3] = (uint8_t)len;
}

/* sendmsg of some bytes with some fds attached (SCM_RIGHTS). */
static void send_with_fds(int fd, const void *buf, size_t len, const int *fds,
			  size_t nfds)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 16)];
	} cm;
	struct iovec iov = {(void *)(uintptr_t)buf, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	assert_true(nfds <= 16);
	if (nfds) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		/* The first header sits at the start of the buffer. */
		struct cmsghdr *c = &cm.h;
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	assert_int_equal(sendmsg(fd, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

/* --- request round trips ------------------------------------------------ */

static const char *const tricky_argv[] = {
    "/bin/sh",
    "-c",
    "echo 'single' \"double\" `tick` $HOME \\back",
    "",
    "with space",
    "line1\nline2\ttab",
    "UTF-8: gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x90\xa7",
    "{\"json\":[1,2]}",
    NULL,
};
static const char *const tricky_env[] = {
    "EMPTY=",  "SPACES=a b  c",	      "QUOTES=\"'\"",
    "NL=a\nb", "U=\xc3\xa9t\xc3\xa9", "=novar",
    NULL,
};
static const char *const one_argv[] = {"true", NULL};
static const char *const no_env[] = {NULL};

struct req_case {
	const char *what;
	enum proto_op op;
	uint32_t job, uid, gid;
	const char *image;
	int signo;
	const char *const *argv, *const *env;
	const char *cwd;
	bool want_stdin, merge_stderr, script, relay;
	const char *reason;
};

static const struct req_case req_cases[] = {
    {"start", PROTO_OP_START, 42, 1000, 100, "tiny"},
    {"start versioned", PROTO_OP_START, 7, 0, 0, "debian12:2024.1"},
    {"start max ids", PROTO_OP_START, UINT32_MAX, UINT32_MAX, UINT32_MAX, "a"},
    {"stop", PROTO_OP_STOP, 42},
    {"stop job 0", PROTO_OP_STOP, 0},
    {"status", PROTO_OP_STATUS},
    {"list", PROTO_OP_LIST},
    {"signal 1", PROTO_OP_SIGNAL, .signo = 1},
    {"signal 64", PROTO_OP_SIGNAL, .signo = 64},
    {"exec tricky", PROTO_OP_EXEC, 42, .argv = tricky_argv, .env = tricky_env,
     .cwd = "/home/u/dir with space/\xc3\xa9", .want_stdin = true,
     .merge_stderr = true},
    {"exec minimal", PROTO_OP_EXEC, 1, .argv = one_argv, .env = no_env,
     .cwd = "/"},
    {"exec script", PROTO_OP_EXEC, 9, .argv = one_argv, .env = tricky_env,
     .cwd = "/tmp", .script = true},
    {"exec relay", PROTO_OP_EXEC, 9, .argv = one_argv, .env = no_env,
     .cwd = "/", .relay = true},
    {"evacuate", PROTO_OP_EVACUATE, .reason = "evacuate: fan 3 (rack 12)"},
};

static void build_request(const struct req_case *c, struct proto_request *r)
{
	memset(r, 0, sizeof(*r));
	r->op = c->op;
	r->job_id = c->job;
	r->signo = c->signo;
	if (c->reason)
		snprintf(r->reason, sizeof(r->reason), "%s", c->reason);
	if (c->op == PROTO_OP_START) {
		r->start.job_id = c->job;
		r->start.uid = c->uid;
		r->start.gid = c->gid;
		snprintf(r->start.image, sizeof(r->start.image), "%s",
			 c->image);
	}
	if (c->op == PROTO_OP_EXEC) {
		r->exec.job_id = c->job;
		r->exec.argv = xstrv(c->argv, &r->exec.argc);
		r->exec.envp = xstrv(c->env, &r->exec.envc);
		r->exec.cwd = strdup(c->cwd);
		r->exec.want_stdin = c->want_stdin;
		r->exec.merge_stderr = c->merge_stderr;
		r->exec.script = c->script;
		r->exec.relay = c->relay;
	}
}

static void assert_request_equal(const struct proto_request *a,
				 const struct proto_request *b)
{
	assert_int_equal(a->op, b->op);
	assert_int_equal(a->job_id, b->job_id);
	assert_int_equal(a->signo, b->signo);
	assert_int_equal(a->start.job_id, b->start.job_id);
	assert_int_equal(a->start.uid, b->start.uid);
	assert_int_equal(a->start.gid, b->start.gid);
	assert_string_equal(a->start.image, b->start.image);
	assert_string_equal(a->reason, b->reason);
	if (a->op != PROTO_OP_EXEC)
		return;
	assert_int_equal(a->exec.job_id, b->exec.job_id);
	assert_int_equal(a->exec.want_stdin, b->exec.want_stdin);
	assert_int_equal(a->exec.merge_stderr, b->exec.merge_stderr);
	assert_int_equal(a->exec.script, b->exec.script);
	assert_int_equal(a->exec.relay, b->exec.relay);
	assert_string_equal(a->exec.cwd, b->exec.cwd);
	assert_strv_equal(a->exec.argv, a->exec.argc, b->exec.argv,
			  b->exec.argc);
	assert_strv_equal(a->exec.envp, a->exec.envc, b->exec.envp,
			  b->exec.envc);
}

static void test_request_roundtrip(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(req_cases); i++) {
		struct proto_request in, out;
		_cleanup_free_ char *json = NULL;
		char err[PROTO_MAX_ERROR] = "";
		size_t len;

		print_message("case: %s\n", req_cases[i].what);
		build_request(&req_cases[i], &in);
		assert_int_equal(proto_request_encode(&in, &json, &len), 0);
		assert_int_equal(strlen(json), len);
		assert_int_equal(
		    proto_request_decode(json, len, &out, err, sizeof(err)), 0);
		assert_request_equal(&in, &out);
		proto_request_clear(&in);
		proto_request_clear(&out);
	}
}

/* The decoder does not need a terminating NUL: it honours the length. */
static void test_request_decode_uses_length(void **state)
{
	const char text[] = "{\"op\":\"stop\",\"job\":5}GARBAGE";
	struct proto_request r;
	char err[PROTO_MAX_ERROR];

	assert_int_equal(
	    proto_request_decode(text, strlen(text) - 7, &r, err, sizeof(err)),
	    0);
	assert_int_equal(r.op, PROTO_OP_STOP);
	assert_int_equal(r.job_id, 5);
	proto_request_clear(&r);
}

static void test_request_encode_bad_op(void **state)
{
	struct proto_request r = {.op = (enum proto_op)99};
	char *json = NULL;
	size_t len;

	assert_int_equal(proto_request_encode(&r, &json, &len), -EINVAL);
	assert_null(json);
	assert_string_equal(proto_op_name((enum proto_op)99), "unknown");
	assert_string_equal(proto_op_name(PROTO_OP_EXEC), "exec");
}

/* --- request refusals --------------------------------------------------- */

#define EXEC_OK_TAIL "\"env\":[],\"cwd\":\"/\""

static const struct {
	const char *what;
	const char *json;
	const char *want; /* the error must contain this (the field) */
} bad_requests[] = {
    {"empty input", "", "not valid JSON"},
    {"not JSON", "hello", "not valid JSON"},
    {"truncated", "{\"op\":\"stop\",\"job\":", "not valid JSON"},
    {"JSON array", "[{\"op\":\"status\"}]", "not a single JSON object"},
    {"JSON string", "\"status\"", "not a single JSON object"},
    {"two objects", "{\"op\":\"status\"}{\"op\":\"status\"}",
     "not a single JSON object"},
    {"trailing garbage", "{\"op\":\"status\"}xyz", "not a single JSON object"},
    {"no op", "{\"job\":1}", "missing field 'op'"},
    {"op not a string", "{\"op\":5}", "field 'op' must be a string"},
    {"unknown op", "{\"op\":\"reboot\"}", "unknown op 'reboot'"},
    {"op with NUL", "{\"op\":\"sto\\u0000p\",\"job\":1}", "'op'"},
    {"image in stop", "{\"op\":\"stop\",\"job\":1,\"image\":\"tiny\"}",
     "unknown field 'image' for op 'stop'"},
    {"key in status", "{\"op\":\"status\",\"verbose\":true}",
     "unknown field 'verbose' for op 'status'"},
    {"argv in signal", "{\"op\":\"signal\",\"signal\":9,\"argv\":[]}",
     "unknown field 'argv' for op 'signal'"},
    {"signal in exec",
     "{\"op\":\"exec\",\"job\":1,\"argv\":[\"x\"]," EXEC_OK_TAIL
     ",\"signal\":9}",
     "unknown field 'signal' for op 'exec'"},
    {"control char in key", "{\"op\":\"status\",\"a\\u0001b\":1}",
     "unknown field 'a?b'"},
    {"job a string", "{\"op\":\"stop\",\"job\":\"42\"}",
     "field 'job' must be an integer"},
    {"job a float", "{\"op\":\"stop\",\"job\":4.5}",
     "field 'job' must be an integer"},
    {"job a bool", "{\"op\":\"stop\",\"job\":true}",
     "field 'job' must be an integer"},
    {"job null", "{\"op\":\"stop\",\"job\":null}", "'job'"},
    {"job negative", "{\"op\":\"stop\",\"job\":-1}",
     "field 'job' out of range"},
    {"job 2^32", "{\"op\":\"stop\",\"job\":4294967296}",
     "field 'job' out of range"},
    {"job 2^64-1", "{\"op\":\"stop\",\"job\":18446744073709551615}", "'job'"},
    {"job huge", "{\"op\":\"stop\",\"job\":123456789012345678901234567890}",
     "'job'"},
    {"job missing", "{\"op\":\"stop\"}", "missing field 'job'"},
    {"start uid negative",
     "{\"op\":\"start\",\"job\":1,\"uid\":-5,\"gid\":0,\"image\":\"t\"}",
     "field 'uid' out of range"},
    {"start gid missing",
     "{\"op\":\"start\",\"job\":1,\"uid\":0,\"image\":\"t\"}",
     "missing field 'gid'"},
    {"start image a number",
     "{\"op\":\"start\",\"job\":1,\"uid\":0,\"gid\":0,\"image\":7}",
     "field 'image' must be a string"},
    {"start image with NUL",
     "{\"op\":\"start\",\"job\":1,\"uid\":0,\"gid\":0,"
     "\"image\":\"ti\\u0000ny\"}",
     "field 'image' too long or has NUL"},
#define START_HEAD \
	"{\"op\":\"start\",\"job\":1,\"uid\":0,\"gid\":0,\"image\":\"t\","
    {"start request unknown option",
     START_HEAD "\"request\":{\"vm-nope\":\"1\"}}",
     "unknown option 'vm-nope' in 'request'"},
    {"start request with vm-env", START_HEAD "\"request\":{\"vm-env\":\"x\"}}",
     "unknown option 'vm-env' in 'request'"},
    {"start request not an object", START_HEAD "\"request\":[\"vm-ib\"]}",
     "field 'request' must be an object"},
    {"start request number", START_HEAD "\"request\":{\"vm-ib\":2}}",
     "option 'vm-ib' must be a string"},
    {"start request NUL", START_HEAD "\"request\":{\"vm-ib\":\"2\\u0000x\"}}",
     "option 'vm-ib' too long or has NUL"},
    {"start request in stop", "{\"op\":\"stop\",\"job\":1,\"request\":{}}",
     "unknown field 'request' for op 'stop'"},
    {"signal 0", "{\"op\":\"signal\",\"signal\":0}", "signal 0 out of range"},
    {"signal 65", "{\"op\":\"signal\",\"signal\":65}",
     "signal 65 out of range"},
    {"signal negative", "{\"op\":\"signal\",\"signal\":-9}",
     "field 'signal' out of range"},
    {"signal a name", "{\"op\":\"signal\",\"signal\":\"TERM\"}",
     "field 'signal' must be an integer"},
    {"exec argv missing", "{\"op\":\"exec\",\"job\":1," EXEC_OK_TAIL "}",
     "missing field 'argv'"},
    {"exec argv empty",
     "{\"op\":\"exec\",\"job\":1,\"argv\":[]," EXEC_OK_TAIL "}",
     "field 'argv' has 0 entries"},
    {"exec argv a string",
     "{\"op\":\"exec\",\"job\":1,\"argv\":\"ls\"," EXEC_OK_TAIL "}",
     "field 'argv' must be an array"},
    {"exec argv entry a number",
     "{\"op\":\"exec\",\"job\":1,\"argv\":[\"ls\",1]," EXEC_OK_TAIL "}",
     "field 'argv' entry 1 must be a string"},
    {"exec argv entry with NUL",
     "{\"op\":\"exec\",\"job\":1,\"argv\":[\"l\\u0000s\"]," EXEC_OK_TAIL "}",
     "field 'argv' entry 0"},
    {"exec env missing",
     "{\"op\":\"exec\",\"job\":1,\"argv\":[\"x\"],\"cwd\":\"/\"}",
     "missing field 'env'"},
    {"exec env entry with NUL",
     "{\"op\":\"exec\",\"job\":1,\"argv\":[\"x\"],"
     "\"env\":[\"A=1\",\"B=\\u0000\"],\"cwd\":\"/\"}",
     "field 'env' entry 1"},
    {"exec env entry null",
     "{\"op\":\"exec\",\"job\":1,\"argv\":[\"x\"],"
     "\"env\":[null],\"cwd\":\"/\"}",
     "field 'env' entry 0"},
    {"exec cwd missing",
     "{\"op\":\"exec\",\"job\":1,\"argv\":[\"x\"],\"env\":[]}",
     "missing field 'cwd'"},
    {"exec cwd relative",
     "{\"op\":\"exec\",\"job\":1,\"argv\":[\"x\"],\"env\":[],"
     "\"cwd\":\"home/u\"}",
     "cwd"},
    {"exec cwd empty",
     "{\"op\":\"exec\",\"job\":1,\"argv\":[\"x\"],\"env\":[],"
     "\"cwd\":\"\"}",
     "cwd"},
    {"exec cwd with ..",
     "{\"op\":\"exec\",\"job\":1,\"argv\":[\"x\"],\"env\":[],"
     "\"cwd\":\"/home/../etc\"}",
     "cwd"},
    {"exec cwd ending in ..",
     "{\"op\":\"exec\",\"job\":1,\"argv\":[\"x\"],\"env\":[],"
     "\"cwd\":\"/home/..\"}",
     "cwd"},
    {"exec cwd with //",
     "{\"op\":\"exec\",\"job\":1,\"argv\":[\"x\"],\"env\":[],"
     "\"cwd\":\"/home//u\"}",
     "cwd"},
    {"exec cwd with newline",
     "{\"op\":\"exec\",\"job\":1,\"argv\":[\"x\"],\"env\":[],"
     "\"cwd\":\"/tmp/a\\nb\"}",
     "cwd"},
    {"exec cwd with NUL",
     "{\"op\":\"exec\",\"job\":1,\"argv\":[\"x\"],\"env\":[],"
     "\"cwd\":\"/tmp\\u0000/x\"}",
     "field 'cwd' too long or has NUL"},
    {"exec cwd a number",
     "{\"op\":\"exec\",\"job\":1,\"argv\":[\"x\"],\"env\":[],\"cwd\":1}",
     "field 'cwd' must be a string"},
    {"exec stdin not a bool",
     "{\"op\":\"exec\",\"job\":1,\"argv\":[\"x\"]," EXEC_OK_TAIL
     ",\"stdin\":1}",
     "field 'stdin' must be a boolean"},
    {"exec merge_stderr a string",
     "{\"op\":\"exec\",\"job\":1,\"argv\":[\"x\"]," EXEC_OK_TAIL
     ",\"merge_stderr\":\"yes\"}",
     "field 'merge_stderr' must be a boolean"},
    {"exec script null",
     "{\"op\":\"exec\",\"job\":1,\"argv\":[\"x\"]," EXEC_OK_TAIL
     ",\"script\":null}",
     "field 'script' must be a boolean"},
    {"evacuate without a reason", "{\"op\":\"evacuate\"}",
     "missing field 'reason'"},
    {"evacuate with an empty reason", "{\"op\":\"evacuate\",\"reason\":\"\"}",
     "the reason is empty"},
    {"evacuate with a newline in the reason",
     "{\"op\":\"evacuate\",\"reason\":\"a\\nb\"}",
     "the reason has a byte 0x0a: printable ASCII only"},
    {"evacuate with a reason beyond 160 bytes",
     "{\"op\":\"evacuate\",\"reason\":\""
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789"
     "012345678901234567890\"}",
     "field 'reason' too long"},
    {"evacuate with a job", "{\"op\":\"evacuate\",\"reason\":\"x\",\"job\":1}",
     "job"},
    {"exec relay a number",
     "{\"op\":\"exec\",\"job\":1,\"argv\":[\"x\"]," EXEC_OK_TAIL
     ",\"relay\":1}",
     "field 'relay' must be a boolean"},
    {"warm with a path for an image",
     "{\"op\":\"warm\",\"image\":\"/etc/shadow\",\"vcpus\":1,"
     "\"mem\":0}",
     "not an image name"},
    {"warm with .. for an image",
     "{\"op\":\"warm\",\"image\":\"..\",\"vcpus\":1,\"mem\":0}",
     "not an image name"},
    {"warm with a space in the image",
     "{\"op\":\"warm\",\"image\":\"ti ny\",\"vcpus\":1,\"mem\":0}",
     "not an image name"},
    {"warm without vcpus", "{\"op\":\"warm\",\"image\":\"tiny\",\"mem\":0}",
     "missing field 'vcpus'"},
    {"warm with negative memory",
     "{\"op\":\"warm\",\"image\":\"tiny\",\"vcpus\":1,\"mem\":-1}",
     "field 'mem' out of range"},
    {"warm with a job",
     "{\"op\":\"warm\",\"image\":\"tiny\",\"vcpus\":1,\"mem\":0,"
     "\"job\":1}",
     "unknown field 'job'"},
};

/* vmenvctl image warm's request: every field through the wire. */
static void test_warm_roundtrip(void **state)
{
	struct proto_request in = {.op = PROTO_OP_WARM}, out;
	_cleanup_free_ char *json = NULL;
	char err[PROTO_MAX_ERROR] = "";
	size_t len;

	(void)state;
	snprintf(in.warm.image, sizeof(in.warm.image), "debian12:2024.1");
	in.warm.vcpus = 4;
	in.warm.mem_mib = UINT32_MAX;
	in.warm.checkpoint = true;
	in.warm.query = true;
	assert_int_equal(proto_request_encode(&in, &json, &len), 0);
	assert_int_equal(
	    proto_request_decode(json, len, &out, err, sizeof(err)), 0);
	assert_int_equal(out.op, PROTO_OP_WARM);
	assert_string_equal(out.warm.image, "debian12:2024.1");
	assert_int_equal(out.warm.vcpus, 4);
	assert_int_equal(out.warm.mem_mib, UINT32_MAX);
	assert_true(out.warm.checkpoint);
	assert_true(out.warm.query);
	proto_request_clear(&out);
}

static void test_request_refusals(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(bad_requests); i++) {
		struct proto_request r;
		char err[PROTO_MAX_ERROR] = "";
		const char *json = bad_requests[i].json;

		print_message("case: %s\n", bad_requests[i].what);
		assert_int_equal(proto_request_decode(json, strlen(json), &r,
						      err, sizeof(err)),
				 -EBADMSG);
		assert_contains(err, bad_requests[i].want);
	}
}

/* Error texts quote the input only in a bounded, sanitised form. */
static void test_request_error_bounded(void **state)
{
	char json[2048], key[1500];
	char err[PROTO_MAX_ERROR] = "";
	struct proto_request r;

	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	snprintf(json, sizeof(json), "{\"op\":\"status\",\"%s\":1}", key);
	assert_int_equal(
	    proto_request_decode(json, strlen(json), &r, err, sizeof(err)),
	    -EBADMSG);
	assert_contains(err, "unknown field 'kkkk");
	assert_true(strlen(err) < 120);
	/* A NULL error buffer is allowed. */
	assert_int_equal(proto_request_decode("x", 1, &r, NULL, 0), -EBADMSG);
}

/* The user's options travel as written, bounded; vmmd judges them. */
static void test_start_options(void **state)
{
	struct proto_request in = {.op = PROTO_OP_START, .job_id = 3}, out;
	_cleanup_free_ char *json = NULL, *big = NULL;
	char err[PROTO_MAX_ERROR] = "";
	size_t len;

	in.start.job_id = 3;
	snprintf(in.start.image, sizeof(in.start.image), "tiny");
	in.start.opts[VMSPEC_OPT_HUGEPAGES] = strdup("not-checked-here");
	in.start.opts[VMSPEC_OPT_MOUNT] = strdup("/a:/b:ro,/c:/\"d\"");
	in.start.opts[VMSPEC_OPT_GPUS] = strdup("");
	assert_int_equal(proto_request_encode(&in, &json, &len), 0);
	assert_int_equal(
	    proto_request_decode(json, len, &out, err, sizeof(err)), 0);
	for (int i = 0; i < VMSPEC_NOPTS; i++) {
		if (!in.start.opts[i]) {
			assert_null(out.start.opts[i]);
			continue;
		}
		assert_non_null(out.start.opts[i]);
		assert_string_equal(in.start.opts[i], out.start.opts[i]);
	}
	proto_request_clear(&out);
	/* No options: no "request" at all (an old vmmd accepts it). */
	proto_request_clear(&in);
	in = (struct proto_request){.op = PROTO_OP_START};
	free(json);
	assert_int_equal(proto_request_encode(&in, &json, &len), 0);
	assert_null(strstr(json, "request"));
	/* An option value is bounded. */
	big = malloc(VMSPEC_MAX_OPTARG + 256);
	assert_non_null(big);
	snprintf(big, 256, START_HEAD "\"request\":{\"vm-ib\":\"");
	len = strlen(big);
	assert_true(len < 200);
	memset(big + len, '1', VMSPEC_MAX_OPTARG);
	snprintf(big + len + VMSPEC_MAX_OPTARG, 8, "\"}}");
	assert_int_equal(
	    proto_request_decode(big, strlen(big), &out, err, sizeof(err)),
	    -EBADMSG);
	assert_contains(err, "option 'vm-ib' too long");
}

static void test_request_oversized_text(void **state)
{
	size_t len = PROTO_MAX_MSG + 1;
	_cleanup_free_ char *big = malloc(len);
	char err[PROTO_MAX_ERROR] = "";
	struct proto_request r;

	assert_non_null(big);
	memset(big, ' ', len);
	assert_int_equal(proto_request_decode(big, len, &r, err, sizeof(err)),
			 -EBADMSG);
	assert_contains(err, "exceeds");
}

/* --- reply round trips -------------------------------------------------- */

static void assert_reply_equal(const struct proto_reply *a,
			       const struct proto_reply *b)
{
	assert_int_equal(a->kind, b->kind);
	assert_string_equal(a->error, b->error);
	assert_int_equal(a->exit_signaled, b->exit_signaled);
	assert_int_equal(a->exit_value, b->exit_value);
	assert_string_equal(a->progress.image, b->progress.image);
	assert_int_equal(a->progress.done, b->progress.done);
	assert_int_equal(a->progress.total, b->progress.total);
	assert_int_equal(a->progress.bps, b->progress.bps);
	assert_int_equal(a->progress.elapsed_ms, b->progress.elapsed_ms);
	assert_int_equal(a->progress.ready, b->progress.ready);
	assert_int_equal(a->has_status, b->has_status);
	assert_string_equal(a->status.node, b->status.node);
	assert_string_equal(a->status.version, b->status.version);
	assert_string_equal(a->status.domain_type, b->status.domain_type);
	assert_string_equal(a->status.libvirt_uri, b->status.libvirt_uri);
	assert_int_equal(a->status.jobs, b->status.jobs);
	assert_int_equal(a->status.uptime_s, b->status.uptime_s);
	assert_string_equal(a->status.policy_dir, b->status.policy_dir);
	assert_int_equal(a->status.policies, b->status.policies);
	assert_int_equal(a->status.policy_loaded, b->status.policy_loaded);
	assert_string_equal(a->status.policy_error, b->status.policy_error);
	assert_int_equal(a->has_jobs, b->has_jobs);
	assert_int_equal(a->njobs, b->njobs);
	for (size_t i = 0; i < a->njobs; i++) {
		const struct proto_job_info *x = &a->jobs[i], *y = &b->jobs[i];

		assert_int_equal(x->job_id, y->job_id);
		assert_int_equal(x->uid, y->uid);
		assert_int_equal(x->vcpus, y->vcpus);
		assert_int_equal(x->mem_mib, y->mem_mib);
		assert_int_equal(x->sessions, y->sessions);
		assert_string_equal(x->image, y->image);
		assert_string_equal(x->state, y->state);
		assert_string_equal(x->domain, y->domain);
		assert_string_equal(x->console, y->console);
		assert_string_equal(x->error, y->error);
	}
}

static struct proto_job_info sample_jobs[] = {
    {42, 1000, "tiny:1", "ready", "vmenv-n1-42", "/var/log/vmenv/job-42.log", 2,
     960, 3, ""},
    {UINT32_MAX, 0, "debian12", "failed", "vmenv-n1-4294967295", "/x", 1, 64, 0,
     "job 4294967295: guest did not \"boot\"\n\xc3\xa9"},
};

static void test_reply_roundtrip(void **state)
{
	static const struct proto_reply cases[] = {
	    {.kind = PROTO_REPLY_OK},
	    {.kind = PROTO_REPLY_ERROR,
	     .error = "job 42: image 'z\"e\\pto' not in catalog\n\xe2\x82\xac"},
	    {.kind = PROTO_REPLY_ERROR, .error = ""},
	    {.kind = PROTO_EV_STARTED},
	    {.kind = PROTO_EV_EXIT, .exit_value = 7},
	    {.kind = PROTO_EV_EXIT, .exit_value = 0},
	    {.kind = PROTO_EV_EXIT, .exit_value = 255},
	    {.kind = PROTO_EV_EXIT, .exit_signaled = true, .exit_value = 9},
	    {.kind = PROTO_EV_ERROR, .error = "did not become ready"},
	    {.kind = PROTO_EV_PROGRESS,
	     .progress = {"debian12:2025.1", UINT64_C(114294784),
			  UINT64_C(327155712), 8 << 20, 14000, false}},
	    {.kind = PROTO_EV_PROGRESS,
	     .progress = {"tiny", UINT64_C(1) << 40, UINT64_C(1) << 40, 0,
			  UINT32_MAX + UINT64_C(1), true}},
	    {.kind = PROTO_REPLY_OK,
	     .has_status = true,
	     .status = {"node-1", "0.1.0", "kvm", "qemu:///system", 3,
			UINT64_C(1) << 40, "/etc/vmenv/policies.d", true, 4,
			"x.json: ib_vfs.max: must be an integer"}},
	    {.kind = PROTO_REPLY_OK,
	     .has_jobs = true,
	     .njobs = ARRAY_SIZE(sample_jobs),
	     .jobs = sample_jobs},
	    {.kind = PROTO_REPLY_OK, .has_jobs = true, .njobs = 0},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct proto_reply out;
		_cleanup_free_ char *json = NULL;
		char err[PROTO_MAX_ERROR] = "";
		size_t len;

		print_message("reply case %zu\n", i);
		assert_int_equal(proto_reply_encode(&cases[i], &json, &len), 0);
		assert_int_equal(
		    proto_reply_decode(json, len, &out, err, sizeof(err)), 0);
		assert_reply_equal(&cases[i], &out);
		proto_reply_clear(&out);
	}
}

static void test_reply_refusals(void **state)
{
	static const struct {
		const char *json, *want;
	} cases[] = {
	    {"nope", "not valid JSON"},
	    {"[true]", "not a single JSON object"},
	    {"{\"ok\":true} {}", "not a single JSON object"},
	    {"{\"event\":\"exploded\"}", "unknown event"},
	    {"{}", "unknown event"},
	    {"{\"event\":\"exit\"}", "exit event without code"},
	    {"{\"event\":\"progress\",\"done\":5}",
	     "progress event without total"},
	    {"{\"event\":\"progress\",\"total\":\"5\"}",
	     "progress event without total"},
	    {"{\"ok\":true,\"jobs\":[1]}", "malformed job list"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct proto_reply r;
		char err[PROTO_MAX_ERROR] = "";

		assert_int_equal(proto_reply_decode(cases[i].json,
						    strlen(cases[i].json), &r,
						    err, sizeof(err)),
				 -EBADMSG);
		assert_contains(err, cases[i].want);
	}
}

/* --- transport ---------------------------------------------------------- */

static void test_send_and_feed(void **state)
{
	int sv[2];
	struct proto_rx rx;
	const char msg[] = "{\"op\":\"status\"}";

	xsocketpair(sv);
	proto_rx_init(&rx);
	assert_int_equal(proto_rx_feed(&rx, sv[1]), 0); /* nothing yet */
	assert_int_equal(proto_send(sv[0], msg, strlen(msg), NULL, 0), 0);
	assert_int_equal(proto_send(sv[0], "{}", 2, NULL, 0), 0);
	assert_int_equal(feed_all(&rx, sv[1]), 1);
	assert_int_equal(rx.got, strlen(msg));
	assert_string_equal(rx.buf, msg);
	assert_int_equal(rx.nfds, 0);
	/* The next message is read only after a reset, and separately. */
	proto_rx_reset(&rx);
	assert_int_equal(feed_all(&rx, sv[1]), 1);
	assert_string_equal(rx.buf, "{}");
	proto_rx_reset(&rx);
	/* An empty message is a message. */
	assert_int_equal(proto_send(sv[0], "", 0, NULL, 0), 0);
	assert_int_equal(feed_all(&rx, sv[1]), 1);
	assert_int_equal(rx.got, 0);
	assert_string_equal(rx.buf, "");
	proto_rx_reset(&rx);
	close(sv[0]);
	close(sv[1]);
}

static void test_fd_passing(void **state)
{
	char path[] = "/tmp/vmenv-proto-XXXXXX";
	int sv[2], fds[3], before;
	struct proto_rx rx;
	struct stat a, b;

	fds[0] = mkstemp(path);
	assert_true(fds[0] >= 0);
	unlink(path);
	fds[1] = open("/dev/null", O_WRONLY | O_CLOEXEC);
	fds[2] = dup(STDERR_FILENO);
	assert_true(fds[1] >= 0 && fds[2] >= 0);
	assert_int_equal(write(fds[0], "abc", 3), 3);
	xsocketpair(sv);
	before = count_fds();
	proto_rx_init(&rx);

	assert_int_equal(proto_send(sv[0], "{}", 2, fds, 3), 0);
	assert_int_equal(feed_all(&rx, sv[1]), 1);
	assert_int_equal(rx.nfds, 3);
	assert_int_equal(count_fds(), before + 3);
	for (int i = 0; i < 3; i++) {
		assert_int_not_equal(rx.fds[i], fds[i]);
		assert_int_equal(fstat(fds[i], &a), 0);
		assert_int_equal(fstat(rx.fds[i], &b), 0);
		assert_int_equal(a.st_dev, b.st_dev);
		assert_int_equal(a.st_ino, b.st_ino);
		/* Received fds are close-on-exec: nothing leaks into
		 * children vmmd might spawn. */
		assert_true(fcntl(rx.fds[i], F_GETFD) & FD_CLOEXEC);
	}
	/* Same open file description: the offset is shared. */
	assert_int_equal(lseek(rx.fds[0], 0, SEEK_CUR), 3);
	proto_rx_reset(&rx);
	assert_int_equal(count_fds(), before);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	close(sv[0]);
	close(sv[1]);
}

/* A message (with fds on its first byte) arriving one byte per write. */
static void test_one_byte_writes(void **state)
{
	const char body[] = "{\"op\":\"exec\",\"x\":\"\xc3\xa9\"}";
	uint8_t wire[4 + sizeof(body)];
	size_t len = strlen(body), total = 4 + len;
	int sv[2], fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	struct proto_rx rx;

	put_hdr(wire, (uint32_t)len);
	memcpy(wire + 4, body, len);
	xsocketpair(sv);
	proto_rx_init(&rx);
	send_with_fds(sv[0], wire, 1, &fd, 1);
	assert_int_equal(proto_rx_feed(&rx, sv[1]), 0);
	for (size_t i = 1; i < total; i++) {
		assert_int_equal(write(sv[0], wire + i, 1), 1);
		assert_int_equal(proto_rx_feed(&rx, sv[1]), i + 1 == total);
	}
	assert_int_equal(rx.got, len);
	assert_memory_equal(rx.buf, body, len);
	assert_int_equal(rx.buf[len], '\0');
	assert_int_equal(rx.nfds, 1);
	proto_rx_reset(&rx);
	close(fd);
	close(sv[0]);
	close(sv[1]);
}

static void check_oversized(uint32_t len)
{
	uint8_t hdr[4];
	int sv[2];
	struct proto_rx rx;

	put_hdr(hdr, len);
	xsocketpair(sv);
	proto_rx_init(&rx);
	assert_int_equal(write(sv[0], hdr, 4), 4);
#ifdef HAVE_ALLOC_HOOKS
	largest_alloc = 0;
	__sanitizer_install_malloc_and_free_hooks(note_malloc, note_free);
#endif
	assert_int_equal(feed_all(&rx, sv[1]), -EMSGSIZE);
#ifdef HAVE_ALLOC_HOOKS
	__sanitizer_install_malloc_and_free_hooks(NULL, NULL);
	assert_true(largest_alloc < PROTO_MAX_MSG);
#endif
	/* Nothing was allocated for the body. */
	assert_null(rx.buf);
	assert_int_equal(rx.got, 0);
	proto_rx_reset(&rx);
	close(sv[0]);
	close(sv[1]);
}

static void test_oversized_length(void **state)
{
	check_oversized(PROTO_MAX_MSG + 1);
	check_oversized(UINT32_MAX);
}

/* A receiver's own cap (vmmd: what the peer's uid may still buffer, or an
 * exec connection's small messages) refuses a longer length before any
 * allocation, takes one that fits, and stays through a reset. */
static void test_rx_own_cap(void **state)
{
	static const struct {
		uint32_t len;
		int want;
	} cases[] = {{100, 1}, {101, -EMSGSIZE}, {PROTO_MAX_MSG, -EMSGSIZE}};
	char body[100];

	memset(body, ' ', sizeof(body));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct proto_rx rx;
		uint8_t hdr[4];
		int sv[2];

		xsocketpair(sv);
		proto_rx_init(&rx);
		rx.max = 100;
		proto_rx_reset(&rx);
		assert_int_equal(rx.max, 100);
		put_hdr(hdr, cases[i].len);
		assert_int_equal(write(sv[0], hdr, 4), 4);
		if (cases[i].len <= sizeof(body))
			assert_int_equal(write(sv[0], body, cases[i].len),
					 (ssize_t)cases[i].len);
		assert_int_equal(feed_all(&rx, sv[1]), cases[i].want);
		if (cases[i].want < 0) {
			assert_null(rx.buf);
			assert_int_equal(rx.need, cases[i].len);
		}
		proto_rx_reset(&rx);
		close(sv[0]);
		close(sv[1]);
	}
}

/* The largest message allowed does get through (sent from a child, since
 * it exceeds the socket buffer). */
static void test_max_size_accepted(void **state)
{
	int sv[2], status;
	struct proto_rx rx;
	pid_t pid;

	xsocketpair(sv);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *big = malloc(PROTO_MAX_MSG);

		if (!big)
			_exit(2);
		memset(big, 'x', PROTO_MAX_MSG);
		_exit(proto_send(sv[0], big, PROTO_MAX_MSG, NULL, 0) == 0 ? 0
									  : 1);
	}
	close(sv[0]);
	proto_rx_init(&rx);
	assert_int_equal(fd_set_nonblock(sv[1], false), 0);
	assert_int_equal(proto_rx_feed(&rx, sv[1]), 1);
	assert_int_equal(rx.got, PROTO_MAX_MSG);
	assert_int_equal(rx.buf[PROTO_MAX_MSG - 1], 'x');
	proto_rx_reset(&rx);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(sv[1]);
}

static void test_send_refuses_limits(void **state)
{
	int sv[2], fds[PROTO_MAX_FDS + 1];

	xsocketpair(sv);
	for (int i = 0; i <= PROTO_MAX_FDS; i++)
		fds[i] = STDIN_FILENO;
	assert_int_equal(proto_send(sv[0], "x", PROTO_MAX_MSG + 1, NULL, 0),
			 -EMSGSIZE);
	assert_int_equal(proto_send(sv[0], "{}", 2, fds, PROTO_MAX_FDS + 1),
			 -EMSGSIZE);
	close(sv[0]);
	close(sv[1]);
}

static void test_eof_mid_message(void **state)
{
	static const struct {
		const char *what;
		size_t bytes; /* of "\0\0\0\x0a0123456789" sent before EOF */
	} cases[] = {
	    {"EOF before anything", 0},
	    {"EOF inside the header", 2},
	    {"EOF after the header", 4},
	    {"EOF inside the body", 7},
	};
	const char wire[] = "\0\0\0\x0a"
			    "0123456789";

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int sv[2];
		struct proto_rx rx;

		print_message("case: %s\n", cases[i].what);
		xsocketpair(sv);
		proto_rx_init(&rx);
		if (cases[i].bytes)
			assert_int_equal(write(sv[0], wire, cases[i].bytes),
					 (ssize_t)cases[i].bytes);
		assert_int_equal(proto_rx_feed(&rx, sv[1]), 0);
		close(sv[0]);
		assert_int_equal(feed_all(&rx, sv[1]), -ECONNRESET);
		proto_rx_reset(&rx);
		close(sv[1]);
	}
}

/* More fds than PROTO_MAX_FDS: -EPROTO, and after the reset every fd the
 * receiver got is closed again. */
static void test_too_many_fds(void **state)
{
	static const struct {
		const char *what;
		size_t first, second; /* fds on the first and second chunk */
	} cases[] = {
	    {"one chunk", PROTO_MAX_FDS + 1, 0},
	    {"two chunks", PROTO_MAX_FDS, 1},
	    {"many", 12, 0},
	};
	const char wire[] = "\0\0\0\x02{}";

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int sv[2], fds[16], before;
		struct proto_rx rx;

		print_message("case: %s\n", cases[i].what);
		for (int k = 0; k < 16; k++)
			fds[k] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		xsocketpair(sv);
		before = count_fds();
		proto_rx_init(&rx);
		send_with_fds(sv[0], wire, 3, fds, cases[i].first);
		if (cases[i].second)
			send_with_fds(sv[0], wire + 3, 3, fds + 8,
				      cases[i].second);
		assert_int_equal(feed_all(&rx, sv[1]), -EPROTO);
		proto_rx_reset(&rx);
		close(sv[0]);
		close(sv[1]);
		/* In flight fds die with the socket. */
		assert_int_equal(count_fds(), before - 2);
		for (int k = 0; k < 16; k++)
			close(fds[k]);
	}
}

static void test_recv_reply(void **state)
{
	struct proto_reply in = {.kind = PROTO_EV_EXIT, .exit_value = 3}, out;
	char err[PROTO_MAX_ERROR] = "";
	int sv[2];

	xsocketpair(sv);
	assert_int_equal(proto_recv_reply(sv[1], 50, &out, err, sizeof(err)),
			 -ETIMEDOUT);
	assert_int_equal(proto_send_reply(sv[0], &in), 0);
	assert_int_equal(proto_send(sv[0], "junk", 4, NULL, 0), 0);
	assert_int_equal(proto_recv_reply(sv[1], 1000, &out, err, sizeof(err)),
			 0);
	assert_reply_equal(&in, &out);
	assert_int_equal(proto_recv_reply(sv[1], 1000, &out, err, sizeof(err)),
			 -EBADMSG);
	assert_contains(err, "not valid JSON");
	close(sv[0]);
	assert_int_equal(proto_recv_reply(sv[1], 1000, &out, err, sizeof(err)),
			 -ECONNRESET);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_roundtrip),
	    cmocka_unit_test(test_request_decode_uses_length),
	    cmocka_unit_test(test_request_encode_bad_op),
	    cmocka_unit_test(test_request_refusals),
	    cmocka_unit_test(test_warm_roundtrip),
	    cmocka_unit_test(test_request_error_bounded),
	    cmocka_unit_test(test_start_options),
	    cmocka_unit_test(test_request_oversized_text),
	    cmocka_unit_test(test_reply_roundtrip),
	    cmocka_unit_test(test_reply_refusals),
	    cmocka_unit_test(test_send_and_feed),
	    cmocka_unit_test(test_fd_passing),
	    cmocka_unit_test(test_one_byte_writes),
	    cmocka_unit_test(test_oversized_length),
	    cmocka_unit_test(test_rx_own_cap),
	    cmocka_unit_test(test_max_size_accepted),
	    cmocka_unit_test(test_send_refuses_limits),
	    cmocka_unit_test(test_eof_mid_message),
	    cmocka_unit_test(test_too_many_fds),
	    cmocka_unit_test(test_recv_reply),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
