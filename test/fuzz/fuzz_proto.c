// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for vmmd's protocol (common/proto.c): what every local
 * user can send to vmmd's socket, and what vmmd answers to vmenv-exec and
 * vmenvctl. The first byte selects (modulo 3):
 *   0  a request: proto_request_decode, as vmmd's server.c and exec.c call
 *      it on a whole message
 *   1  a reply: proto_reply_decode, as vmenv-exec and vmenvctl call it
 *   2  a connection: the rest goes through a socketpair to proto_rx_feed
 *      (rx_stream below has the format), the framing with its length cap
 *      and its SCM_RIGHTS accounting; every whole message is decoded both
 *      ways
 * What decodes must be bounded and must encode and decode back to the
 * same; every fd proto_rx took must be close-on-exec and closed by
 * proto_rx_reset. Built and run by test/fuzz/run-proto-fuzz.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto.h"

/* The fds below this are the fuzzer's own; what proto_rx receives lands
 * among the lowest free ones. */
#define FD_SCAN	      256
#define MAX_CHUNK_FDS 7

static volatile size_t sink;

static bool fits(const char *s, size_t size)
{
	return s && strnlen(s, size) < size;
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* n strings and a NULL. */
static bool strv_ok(char *const *v, size_t n)
{
	if (!v || v[n])
		return false;
	for (size_t i = 0; i < n; i++)
		if (!v[i])
			return false;
	return true;
}

static bool same_strv(char *const *a, size_t na, char *const *b, size_t nb)
{
	if (na != nb || !strv_ok(a, na) || !strv_ok(b, nb))
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

/* --- requests -------------------------------------------------------------- */

static void check_request(const struct proto_request *q)
{
	const struct proto_exec *e = &q->exec;

	if (!fits(q->start.image, sizeof(q->start.image)) ||
	    q->start.opts[VMSPEC_OPT_ENV])
		abort();
	for (int i = 0; i < VMSPEC_NOPTS; i++)
		if (q->start.opts[i] &&
		    !fits(q->start.opts[i], VMSPEC_MAX_OPTARG))
			abort();
	if (q->op == PROTO_OP_SIGNAL && (q->signo < 1 || q->signo > 64))
		abort();
	if (q->op != PROTO_OP_EXEC)
		return;
	if (e->argc < 1 || !strv_ok(e->argv, e->argc) ||
	    !strv_ok(e->envp, e->envc) || !fits(e->cwd, VMENV_MAX_PATH) ||
	    !valid_abs_path(e->cwd) || e->job_id != q->job_id)
		abort();
}

static bool same_request(const struct proto_request *a,
			 const struct proto_request *b)
{
	const struct proto_exec *x = &a->exec, *y = &b->exec;

	for (int i = 0; i < VMSPEC_NOPTS; i++)
		if (!same_str(a->start.opts[i], b->start.opts[i]))
			return false;
	if (a->op == PROTO_OP_EXEC &&
	    (!same_strv(x->argv, x->argc, y->argv, y->argc) ||
	     !same_strv(x->envp, x->envc, y->envp, y->envc) ||
	     !same_str(x->cwd, y->cwd) || x->want_stdin != y->want_stdin ||
	     x->merge_stderr != y->merge_stderr || x->script != y->script ||
	     x->relay != y->relay || x->job_id != y->job_id))
		return false;
	return a->op == b->op && a->job_id == b->job_id &&
	       a->signo == b->signo && a->start.job_id == b->start.job_id &&
	       a->start.uid == b->start.uid && a->start.gid == b->start.gid &&
	       strcmp(a->start.image, b->start.image) == 0;
}

static void request(const char *buf, size_t len)
{
	struct proto_request q, back;
	char err[PROTO_MAX_ERROR], *text = NULL;
	size_t tlen;

	if (proto_request_decode(buf, len, &q, err, sizeof(err)) < 0) {
		sink += strlen(err);
		return;
	}
	check_request(&q);
	/* What vmmd took must be what a client would have sent for it. */
	if (proto_request_encode(&q, &text, &tlen) < 0 ||
	    proto_request_decode(text, tlen, &back, err, sizeof(err)) < 0 ||
	    !same_request(&q, &back))
		abort();
	proto_request_clear(&back);
	proto_request_clear(&q);
	free(text);
}

/* --- replies --------------------------------------------------------------- */

static void check_job(const struct proto_job_info *j)
{
	if (!fits(j->image, sizeof(j->image)) ||
	    !fits(j->state, sizeof(j->state)) ||
	    !fits(j->domain, sizeof(j->domain)) ||
	    !fits(j->console, sizeof(j->console)) ||
	    !fits(j->error, sizeof(j->error)))
		abort();
}

static void check_reply(const struct proto_reply *r)
{
	const struct proto_status *s = &r->status;

	if (!fits(r->error, sizeof(r->error)) ||
	    !fits(s->node, sizeof(s->node)) ||
	    !fits(s->version, sizeof(s->version)) ||
	    !fits(s->domain_type, sizeof(s->domain_type)) ||
	    !fits(s->libvirt_uri, sizeof(s->libvirt_uri)) ||
	    !fits(s->policy_dir, sizeof(s->policy_dir)) ||
	    !fits(s->policy_error, sizeof(s->policy_error)) ||
	    (r->has_jobs && !r->jobs) || (!r->has_jobs && r->njobs) ||
	    r->kind < PROTO_REPLY_OK || r->kind > PROTO_EV_CHECKPOINTED)
		abort();
	for (size_t i = 0; i < r->njobs; i++)
		check_job(&r->jobs[i]);
}

static bool same_status(const struct proto_status *a,
			const struct proto_status *b)
{
	return strcmp(a->node, b->node) == 0 &&
	       strcmp(a->version, b->version) == 0 &&
	       strcmp(a->domain_type, b->domain_type) == 0 &&
	       strcmp(a->libvirt_uri, b->libvirt_uri) == 0 &&
	       a->jobs == b->jobs && a->uptime_s == b->uptime_s &&
	       strcmp(a->policy_dir, b->policy_dir) == 0 &&
	       a->policy_loaded == b->policy_loaded &&
	       a->policies == b->policies &&
	       strcmp(a->policy_error, b->policy_error) == 0;
}

static bool same_job(const struct proto_job_info *a,
		     const struct proto_job_info *b)
{
	return a->job_id == b->job_id && a->uid == b->uid &&
	       strcmp(a->image, b->image) == 0 &&
	       strcmp(a->state, b->state) == 0 &&
	       strcmp(a->domain, b->domain) == 0 &&
	       strcmp(a->console, b->console) == 0 && a->vcpus == b->vcpus &&
	       a->mem_mib == b->mem_mib && a->sessions == b->sessions &&
	       strcmp(a->error, b->error) == 0 && a->ckpt_due == b->ckpt_due &&
	       a->ckpt_lead_s == b->ckpt_lead_s;
}

/* The decoder is lenient where the encoder never writes ("error" with
 * "ok":true): only what the encoder writes must come back. */
static bool same_reply(const struct proto_reply *a, const struct proto_reply *b)
{
	bool has_error = a->kind == PROTO_REPLY_ERROR ||
			 a->kind == PROTO_EV_ERROR ||
			 a->kind == PROTO_EV_CHECKPOINTED;
	bool has_exit =
	    a->kind == PROTO_EV_EXIT || a->kind == PROTO_EV_CHECKPOINTED;

	if (a->kind != b->kind || a->has_status != b->has_status ||
	    a->has_jobs != b->has_jobs || a->njobs != b->njobs ||
	    (has_error && strcmp(a->error, b->error) != 0) ||
	    (has_exit && a->exit_value != b->exit_value) ||
	    (a->kind == PROTO_EV_EXIT && a->exit_signaled != b->exit_signaled))
		return false;
	if (a->has_status && !same_status(&a->status, &b->status))
		return false;
	for (size_t i = 0; i < a->njobs; i++)
		if (!same_job(&a->jobs[i], &b->jobs[i]))
			return false;
	return true;
}

static void reply(const char *buf, size_t len)
{
	struct proto_reply r, back;
	char err[PROTO_MAX_ERROR], *text = NULL;
	size_t tlen;

	if (proto_reply_decode(buf, len, &r, err, sizeof(err)) < 0) {
		sink += strlen(err);
		return;
	}
	check_reply(&r);
	if (proto_reply_encode(&r, &text, &tlen) < 0 ||
	    proto_reply_decode(text, tlen, &back, err, sizeof(err)) < 0 ||
	    !same_reply(&r, &back))
		abort();
	proto_reply_clear(&back);
	proto_reply_clear(&r);
	free(text);
}

/* --- a connection ---------------------------------------------------------- */

/* The open fds below FD_SCAN, as a bit set. */
static void open_fds(uint64_t set[FD_SCAN / 64])
{
	memset(set, 0, FD_SCAN / 8);
	for (int fd = 0; fd < FD_SCAN; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			set[fd / 64] |= 1ull << (fd % 64);
}

/* A whole message, as vmmd takes it: its fds are open and close-on-exec
 * (vmmd's children must not inherit a user's fds). */
static void message(const struct proto_rx *rx)
{
	if (rx->got != rx->need || rx->buf[rx->got] != '\0' ||
	    rx->nfds > PROTO_MAX_FDS || (rx->max && rx->got > rx->max))
		abort();
	for (size_t i = 0; i < rx->nfds; i++)
		if (fcntl(rx->fds[i], F_GETFD) != FD_CLOEXEC)
			abort();
	request(rx->buf, rx->got);
	reply(rx->buf, rx->got);
}

/* Feeds what arrived: 0 when more is needed, <0 when vmmd would close
 * the connection. */
static int drain(struct proto_rx *rx, int fd)
{
	int r;

	while ((r = proto_rx_feed(rx, fd)) == 1) {
		message(rx);
		proto_rx_reset(rx);
	}
	if (r == -EMSGSIZE && rx->buf)
		abort(); /* the cap comes before the allocation */
	return r;
}

/* One sendmsg of len bytes with nfds copies of fd attached. */
static ssize_t send_chunk(int sock, const uint8_t *p, size_t len, int fd,
			  size_t nfds)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * MAX_CHUNK_FDS)];
	} cm;
	struct iovec iov = {(void *)(uintptr_t)p, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	int fds[MAX_CHUNK_FDS];

	if (nfds) {
		for (size_t i = 0; i < nfds; i++)
			fds[i] = fd;
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	return sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/*
 * The stream: a byte for rx->max (0: none, else that times 64: vmmd lowers
 * it to what the user may still buffer), then chunks of
 *   u8 ctl    bits 0-2: fds to attach (PROTO_MAX_FDS is 4), bit 3: let
 *             vmmd read what arrived before the next chunk
 *   u8 len    bytes that follow (cut short by the input's end)
 * The writer's end is closed at the end, as a client that goes away.
 */
static int rx_chunks(struct proto_rx *rx, int sv[2], int devnull,
		     const uint8_t *p, size_t n)
{
	int r = 0;

	while (n >= 2 && r >= 0) {
		uint8_t ctl = p[0];
		size_t len = p[1] < n - 2 ? p[1] : n - 2;
		size_t nfds = len ? ctl & 7u : 0;

		p += 2;
		n -= 2;
		/* A full socket buffer: vmmd reads, then the client goes
		 * on. */
		if (send_chunk(sv[0], p, len, devnull, nfds) < 0 &&
		    ((r = drain(rx, sv[1])) < 0 ||
		     send_chunk(sv[0], p, len, devnull, nfds) < 0))
			break;
		p += len;
		n -= len;
		if (ctl & 8u)
			r = drain(rx, sv[1]);
	}
	return r;
}

static void rx_stream(const uint8_t *p, size_t n, int devnull)
{
	uint64_t before[FD_SCAN / 64], after[FD_SCAN / 64];
	struct proto_rx rx;
	int sv[2];

	if (n < 1)
		return;
	open_fds(before);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	if (fcntl(sv[1], F_SETFL, O_NONBLOCK) < 0)
		abort();
	proto_rx_init(&rx);
	rx.max = (size_t)p[0] * 64;
	if (rx_chunks(&rx, sv, devnull, p + 1, n - 1) >= 0) {
		close(sv[0]);
		sv[0] = -1;
		while (drain(&rx, sv[1]) >= 0)
			;
	}
	proto_rx_reset(&rx);
	if (sv[0] >= 0)
		close(sv[0]);
	close(sv[1]);
	open_fds(after);
	if (memcmp(before, after, sizeof(before)) != 0)
		abort(); /* an fd of the client's stayed open */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int devnull = -1;

	if (devnull < 0 && (devnull = open("/dev/null", O_RDWR)) < 0)
		abort();
	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		request((const char *)data + 1, size - 1);
		break;
	case 1:
		reply((const char *)data + 1, size - 1);
		break;
	default:
		rx_stream(data + 1, size - 1, devnull);
		break;
	}
	return 0;
}
