/* SPDX-License-Identifier: MIT */
#include "server.h"

#include "ckpt.h"
#include "cleanup.h"
#include "console.h"
#include "evacuate.h"
#include "exec.h"
#include "job.h"
#include "jobimage.h"
#include "log.h"
#include "metrics_collect.h"
#include "ovkeep.h"
#include "proto.h"
#include "warm.h"
#include "warmshape.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmmdconf.h"

/* At most one refusal a this often in the log: a flood of connections
 * must not become a flood of log lines. */
#define REFUSAL_LOG_MS 10000

struct client {
	struct client *next;
	struct vmmd *d;
	int fd;
	struct ucred cred;
	struct loop_watch *w;
	struct loop_timer *idle;
	struct proto_rx rx;
	uint64_t charged; /* request bytes charged to cred.uid */
};

static void client_free(struct client *c, bool close_fd)
{
	for (struct client **p = &c->d->clients; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	clientlimit_leave(&c->d->climit, c->cred.uid, c->charged);
	loop_del_fd(c->w);
	loop_cancel_timer(c->idle);
	proto_rx_reset(&c->rx);
	if (close_fd && c->fd >= 0)
		close(c->fd);
	free(c);
}

static void reply_error(struct client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void reply_error(struct client *c, const char *fmt, ...)
{
	struct proto_reply rep = {.kind = PROTO_REPLY_ERROR};
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rep.error, sizeof(rep.error), fmt, ap);
	va_end(ap);
	proto_send_reply(c->fd, &rep);
}

static void reply_ok(struct client *c)
{
	struct proto_reply rep = {.kind = PROTO_REPLY_OK};

	proto_send_reply(c->fd, &rep);
}

static bool is_admin(const struct client *c)
{
	return c->cred.uid == 0 || c->cred.uid == c->d->slurm_uid;
}

static void do_start(struct client *c, const struct proto_request *req)
{
	char err[PROTO_MAX_ERROR];

	/* Slurm placed a job here: the node may have been resumed since
	 * the last reconcile, and a new job must not be evacuated then. */
	if (c->d->evacuating)
		evacuate_watch_drain(c->d, false);
	if (job_start(c->d, &req->start, err, sizeof(err)) < 0)
		reply_error(c, "%s", err);
	else
		reply_ok(c);
}

static void fill_job_info(const struct job *j, struct proto_job_info *ji)
{
	ji->job_id = j->id;
	ji->uid = (uint32_t)j->uid;
	ji->vcpus = j->vcpus;
	ji->mem_mib = j->mem_mib;
	ji->sessions = exec_count(j);
	snprintf(ji->image, sizeof(ji->image), "%s", j->image);
	snprintf(ji->state, sizeof(ji->state), "%s", job_state_name(j->state));
	snprintf(ji->domain, sizeof(ji->domain), "%s", j->domain);
	snprintf(ji->console, sizeof(ji->console), "%s", j->console);
	snprintf(ji->error, sizeof(ji->error), "%s", j->error);
	/* Why it is still here on a node being evacuated. */
	if (!ji->error[0] && j->d->evacuating &&
	    ckpt_job_evacuate_failure(j)[0])
		snprintf(ji->error, sizeof(ji->error), "not evacuated: %s",
			 ckpt_job_evacuate_failure(j));
	ckpt_job_due(j, &ji->ckpt_due, &ji->ckpt_lead_s);
	snprintf(ji->started, sizeof(ji->started), "%s", warm_job_how(j));
}

static void do_list(struct client *c)
{
	struct proto_reply rep = {.kind = PROTO_REPLY_OK, .has_jobs = true};
	size_t n = 0;

	for (struct job *j = c->d->jobs; j; j = j->next)
		n++;
	rep.jobs = calloc(n ? n : 1, sizeof(*rep.jobs));
	if (!rep.jobs) {
		reply_error(c, "out of memory");
		return;
	}
	/* Users see their own jobs' guests only. */
	for (struct job *j = c->d->jobs; j; j = j->next)
		if (is_admin(c) || j->uid == c->cred.uid)
			fill_job_info(j, &rep.jobs[rep.njobs++]);
	/* Other users' job ids: for root, who evacuated the node. */
	if (c->cred.uid == 0) {
		rep.moved = c->d->evacuate_moved;
		rep.nmoved = c->d->evacuate_nmoved;
	}
	proto_send_reply(c->fd, &rep);
	free(rep.jobs);
}

static void do_status(struct client *c)
{
	struct proto_reply rep = {.kind = PROTO_REPLY_OK, .has_status = true};
	struct proto_status *s = &rep.status;
	struct vmmd *d = c->d;

	snprintf(s->node, sizeof(s->node), "%s", d->cfg.node_name);
	snprintf(s->version, sizeof(s->version), "%s", PACKAGE_VERSION);
	snprintf(s->domain_type, sizeof(s->domain_type), "%s", d->domain_type);
	snprintf(s->libvirt_uri, sizeof(s->libvirt_uri), "%s",
		 d->cfg.libvirt_uri);
	for (struct job *j = d->jobs; j; j = j->next)
		s->jobs++;
	s->uptime_s = (now_ms() - d->started_ms) / 1000;
	snprintf(s->policy_dir, sizeof(s->policy_dir), "%s", d->cfg.policy_dir);
	s->policy_loaded = d->policies != NULL;
	s->policies = (uint32_t)policy_set_count(d->policies);
	snprintf(s->policy_error, sizeof(s->policy_error), "%s",
		 d->policy_error);
	proto_send_reply(c->fd, &rep);
}

/* Hands the connection to an exec session. Returns true when the client
 * struct must be freed without closing its fd. */
static bool do_exec(struct client *c, struct proto_request *req)
{
	struct job *j = job_find(c->d, req->job_id);
	struct proto_progress p;
	bool have_p;

	if (!j) {
		reply_error(c,
			    "job %u has no guest on node %s (was --vm-env "
			    "given when the job was submitted?)",
			    req->job_id, c->d->cfg.node_name);
		return false;
	}
	/* Identity comes from the kernel, never from the message. */
	if (c->cred.uid != 0 && c->cred.uid != j->uid) {
		log_warn("uid %u (pid %d) refused exec into job %u of uid %u",
			 (unsigned)c->cred.uid, (int)c->cred.pid, j->id,
			 (unsigned)j->uid);
		reply_error(c,
			    "job %u: permission denied: the guest belongs "
			    "to another user",
			    j->id);
		return false;
	}
	if (j->state == JOB_FAILED) {
		reply_error(c, "%s", j->error);
		return false;
	}
	/* A task that waits for the image is shown how far it is. */
	have_p = j->state == JOB_PREPARING && jobimg_progress(j, &p);
	/* The session watches this fd from now on. */
	loop_del_fd(c->w);
	c->w = NULL;
	exec_begin(c->d, j, c->fd, c->cred.uid, req, c->rx.fds, c->rx.nfds,
		   have_p ? &p : NULL);
	/* exec_begin owns the fds now. */
	c->rx.nfds = 0;
	return true;
}

/* A step's task after a vmmd restart (docs/restart.md): exec_reattach.c
 * checks that the peer is the session's owner and knows its token. */
static bool do_reattach(struct client *c, struct proto_request *req)
{
	struct job *j = job_find(c->d, req->job_id);

	if (!j) {
		reply_error(c,
			    "job %u: lost the connection to vmmd on node %s "
			    "(vmmd stopped or restarted) and cannot re-attach: "
			    "the job's guest is gone from the node",
			    req->job_id, c->d->cfg.node_name);
		return false;
	}
	loop_del_fd(c->w);
	c->w = NULL;
	exec_reattach(j, c->fd, c->cred.uid, req, c->rx.fds, c->rx.nfds);
	c->rx.nfds = 0;
	return true;
}

/* vmenvctl checkpoint JOB: the job's owner or root; the connection waits
 * for the outcome (ckpt_answer, ckpt_job.c, answers and closes it). */
static bool do_checkpoint(struct client *c, const struct proto_request *req)
{
	struct job *j = job_find(c->d, req->job_id);
	char err[PROTO_MAX_ERROR];

	if (!j || (c->cred.uid != 0 && c->cred.uid != j->uid)) {
		reply_error(c, "job %u has no guest of yours on node %s",
			    req->job_id, c->d->cfg.node_name);
		return false;
	}
	loop_del_fd(c->w);
	c->w = NULL;
	if (ckpt_job_save(j, true, c->fd, err, sizeof(err)) < 0) {
		reply_error(c, "%s", err);
		return false;
	}
	log_notice("job %u: checkpoint asked by uid %u", j->id,
		   (unsigned)c->cred.uid);
	return true;
}

/* vmenvctl evacuate: root only (it drains the node in Slurm and moves
 * every user's jobs). */
static void do_evacuate(struct client *c, const struct proto_request *req)
{
	struct proto_reply rep = {.kind = PROTO_REPLY_OK};
	char err[PROTO_MAX_ERROR];

	if (c->cred.uid != 0) {
		reply_error(c,
			    "permission denied: only root may evacuate node %s",
			    c->d->cfg.node_name);
		return;
	}
	log_notice("evacuate: asked by pid %d: %s", (int)c->cred.pid,
		   req->reason);
	if (evacuate_node(c->d, req->reason, false, &rep.text, err,
			  sizeof(err)) < 0) {
		reply_error(c, "node %s not evacuated: %s", c->d->cfg.node_name,
			    err);
		return;
	}
	proto_send_reply(c->fd, &rep);
	free(rep.text);
}

/* vmenvctl image warm: root only (a template is a guest booted as
 * warm_user, in the node's cache, for every user's jobs). */
static void do_warm(struct client *c, const struct proto_request *req)
{
	struct proto_reply rep = {.kind = PROTO_REPLY_OK};
	const struct proto_warm *w = &req->warm;
	struct warm_shape sh = {.image = w->image,
				.vcpus = w->vcpus,
				.mem_mib = w->mem_mib,
				.checkpoint = w->checkpoint};
	char err[PROTO_MAX_ERROR];

	if (c->cred.uid != 0) {
		reply_error(c,
			    "permission denied: only root may make templates "
			    "on node %s",
			    c->d->cfg.node_name);
		return;
	}
	if (!w->query)
		log_notice(
		    "warm: asked by pid %d: image %s, %u vCPUs, %u MiB%s",
		    (int)c->cred.pid, w->image, w->vcpus, w->mem_mib,
		    w->checkpoint ? ", checkpointing" : "");
	if (warm_ahead(c->d, &sh, w->query, &rep.text, err, sizeof(err)) < 0) {
		reply_error(c, "image %s: no template on node %s: %s", w->image,
			    c->d->cfg.node_name, err);
		return;
	}
	proto_send_reply(c->fd, &rep);
	free(rep.text);
}

/* vmenvctl console JOB: the stream takes the connection (console.c). */
static bool do_console(struct client *c, const struct proto_request *req)
{
	char err[PROTO_MAX_ERROR];

	loop_del_fd(c->w);
	c->w = NULL;
	if (console_begin(c->d, c->fd, c->cred.uid, req->job_id, req->follow,
			  err, sizeof(err)) < 0) {
		reply_error(c, "%s", err);
		return false;
	}
	return true;
}

/* vmenvctl metrics: aggregate numbers only, for anyone (metrics_collect.h). */
static void do_metrics(struct client *c)
{
	struct proto_reply rep = {.kind = PROTO_REPLY_OK};
	size_t len;

	if (metrics_collect(c->d, &rep.text, &len) < 0) {
		reply_error(c, "out of memory");
		return;
	}
	proto_send_reply(c->fd, &rep);
	free(rep.text);
}

/* --- kept overlays (ovkeep.h): the asker is the peer's uid ------------- */

static void overlay_info(const struct vmmd *d, const struct ovkeep_rec *r,
			 struct proto_overlay_info *v)
{
	*v = (struct proto_overlay_info){
	    .job_id = r->job,
	    .uid = r->uid,
	    .bytes = r->bytes,
	    .created = r->created,
	    .expires = r->created + (int64_t)d->cfg.overlay_retention_s,
	};
	snprintf(v->node, sizeof(v->node), "%s", r->node);
	snprintf(v->image, sizeof(v->image), "%s", r->image);
	snprintf(v->base, sizeof(v->base), "%s", r->base);
}

static void do_overlay_list(struct client *c)
{
	struct proto_reply rep = {.kind = PROTO_REPLY_OK, .has_overlays = true};
	_cleanup_free_ struct ovkeep_rec *recs = NULL;
	size_t n = 0;
	int r = ovkeep_list_for(c->d, c->cred.uid, &recs, &n);

	if (r < 0 ||
	    !(rep.overlays = calloc(n ? n : 1, sizeof(*rep.overlays)))) {
		reply_error(c, "kept overlays of node %s: %s",
			    c->d->cfg.node_name, strerror(r < 0 ? -r : ENOMEM));
		return;
	}
	for (size_t i = 0; i < n; i++)
		overlay_info(c->d, &recs[i], &rep.overlays[rep.noverlays++]);
	proto_send_reply(c->fd, &rep);
	free(rep.overlays);
}

/* The file goes as an fd vmmd opened itself (root, O_NOFOLLOW from the
 * store's fd): the client never names a path. */
static void do_overlay_get(struct client *c, const struct proto_request *req)
{
	struct proto_reply rep = {.kind = PROTO_REPLY_OK, .has_overlays = true};
	struct proto_overlay_info v;
	struct ovkeep_rec r;
	char err[PROTO_MAX_ERROR];
	_cleanup_close_ int fd = ovkeep_open_for(c->d, c->cred.uid, req->job_id,
						 &r, err, sizeof(err));

	if (fd < 0) {
		reply_error(c, "%s", err);
		return;
	}
	overlay_info(c->d, &r, &v);
	rep.overlays = &v;
	rep.noverlays = 1;
	/* One small message on a socket the client has not been sent
	 * anything on yet: it never blocks (and would fail, not wait). */
	proto_send_reply_fd(c->fd, &rep, fd);
}

static void do_overlay_rm(struct client *c, const struct proto_request *req)
{
	char err[PROTO_MAX_ERROR];

	if (ovkeep_remove_for(c->d, c->cred.uid, req->job_id, err,
			      sizeof(err)) < 0)
		reply_error(c, "%s", err);
	else
		reply_ok(c);
}

static void handle(struct client *c)
{
	struct proto_request req;
	char err[256];
	bool handed = false;

	if (proto_request_decode(c->rx.buf, c->rx.got, &req, err, sizeof(err)) <
	    0) {
		log_warn("client uid %u pid %d: bad request: %s",
			 (unsigned)c->cred.uid, (int)c->cred.pid, err);
		reply_error(c, "bad request: %s", err);
		client_free(c, true);
		return;
	}
	if ((req.op == PROTO_OP_START || req.op == PROTO_OP_STOP ||
	     req.op == PROTO_OP_STEP_END) &&
	    !is_admin(c)) {
		reply_error(c,
			    "permission denied: only root and the Slurm user "
			    "may start or stop guests");
	} else if (req.op != PROTO_OP_EXEC && req.op != PROTO_OP_REATTACH &&
		   c->rx.nfds) {
		reply_error(c, "bad request: unexpected file descriptors");
	} else if (req.op == PROTO_OP_START) {
		do_start(c, &req);
	} else if (req.op == PROTO_OP_STOP) {
		job_stop_when_idle(c->d, req.job_id);
		reply_ok(c);
	} else if (req.op == PROTO_OP_STEP_END) {
		job_watch_end(c->d, req.job_id);
		reply_ok(c);
	} else if (req.op == PROTO_OP_STATUS) {
		do_status(c);
	} else if (req.op == PROTO_OP_LIST) {
		do_list(c);
	} else if (req.op == PROTO_OP_EXEC) {
		handed = do_exec(c, &req);
	} else if (req.op == PROTO_OP_REATTACH) {
		handed = do_reattach(c, &req);
	} else if (req.op == PROTO_OP_CHECKPOINT) {
		handed = do_checkpoint(c, &req);
	} else if (req.op == PROTO_OP_CONSOLE) {
		handed = do_console(c, &req);
	} else if (req.op == PROTO_OP_METRICS) {
		do_metrics(c);
	} else if (req.op == PROTO_OP_OVERLAY_LIST) {
		do_overlay_list(c);
	} else if (req.op == PROTO_OP_OVERLAY_GET) {
		do_overlay_get(c, &req);
	} else if (req.op == PROTO_OP_OVERLAY_RM) {
		do_overlay_rm(c, &req);
	} else if (req.op == PROTO_OP_EVACUATE) {
		do_evacuate(c, &req);
	} else if (req.op == PROTO_OP_WARM) {
		do_warm(c, &req);
	} else {
		reply_error(c, "bad request: '%s' outside an exec session",
			    proto_op_name(req.op));
	}
	proto_request_clear(&req);
	client_free(c, !handed);
}

/* A request longer than what its user may still have buffered. */
static void over_bytes(struct client *c)
{
	uint32_t kib = c->d->cfg.max_request_kib_per_uid;

	log_warn("client uid %u pid %d: a request of %zu bytes while this "
		 "user's requests already hold %llu of %u KiB; closing",
		 (unsigned)c->cred.uid, (int)c->cred.pid, c->rx.need,
		 (unsigned long long)(kib * 1024ull -
				      clientlimit_bytes_left(&c->d->climit,
							     c->cred.uid)),
		 kib);
	reply_error(c,
		    "vmmd: too many request bytes of uid %u being received "
		    "at once (max_request_kib_per_uid = %u)",
		    (unsigned)c->cred.uid, kib);
}

/* The request is read only as far as its user's byte budget goes: the
 * length is checked against it before anything is allocated. */
static int feed(struct client *c)
{
	uint64_t left = clientlimit_bytes_left(&c->d->climit, c->cred.uid);
	int r;

	/* -1: proto_rx allocates the terminating NUL too. (rx.max 0 would
	 * mean PROTO_MAX_MSG: a spent budget still takes 1 byte.) */
	if (left > PROTO_MAX_MSG)
		c->rx.max = PROTO_MAX_MSG;
	else if (left >= 2)
		c->rx.max = (size_t)left - 1;
	else
		c->rx.max = 1;
	r = proto_rx_feed(&c->rx, c->fd);
	if (c->rx.buf && !c->charged &&
	    clientlimit_charge(&c->d->climit, c->cred.uid, c->rx.need + 1) == 0)
		c->charged = c->rx.need + 1;
	return r;
}

static void client_io(void *data, uint32_t events)
{
	struct client *c = data;
	int r;

	(void)events;
	r = feed(c);
	if (r == 0)
		return;
	if (r == -EMSGSIZE && c->rx.need <= PROTO_MAX_MSG) {
		over_bytes(c);
	} else if (r == -EMSGSIZE || r == -EPROTO) {
		log_warn("client uid %u pid %d: %s; closing",
			 (unsigned)c->cred.uid, (int)c->cred.pid,
			 r == -EMSGSIZE ? "oversized message"
					: "too many file descriptors");
	}
	if (r < 0) {
		client_free(c, true);
		return;
	}
	loop_cancel_timer(c->idle);
	c->idle = NULL;
	handle(c);
}

static void client_idle(void *data)
{
	struct client *c = data;

	c->idle = NULL;
	log_warn("client uid %u pid %d sent no whole request in %u s; closing",
		 (unsigned)c->cred.uid, (int)c->cred.pid,
		 c->d->cfg.client_request_timeout_s);
	client_free(c, true);
}

/* A connection over its uid's limit (or over the shared one) is told why
 * and closed; the log says so at most every REFUSAL_LOG_MS. */
static void refuse(struct vmmd *d, int fd, const struct ucred *cred, int why)
{
	struct clientlimit *l = &d->climit;
	struct proto_reply rep = {.kind = PROTO_REPLY_ERROR};

	if (why == -EUSERS)
		snprintf(rep.error, sizeof(rep.error),
			 "vmmd: uid %u holds too many connections "
			 "(max_clients_per_uid = %u)",
			 (unsigned)cred->uid, d->cfg.max_clients_per_uid);
	else
		snprintf(rep.error, sizeof(rep.error),
			 "vmmd: too many connections (max_clients = %u)",
			 d->cfg.max_clients);
	/* The socket is new and empty: this never blocks. */
	proto_send_reply(fd, &rep);
	close(fd);
	if (l->logged_ms && now_ms() - l->logged_ms < REFUSAL_LOG_MS)
		return;
	log_warn("refused a connection of uid %u pid %d: %s (%llu refused "
		 "since the last such line)",
		 (unsigned)cred->uid, (int)cred->pid, rep.error,
		 (unsigned long long)(l->refused - l->logged_refused));
	l->logged_ms = now_ms();
	l->logged_refused = l->refused;
}

static void accept_one(struct vmmd *d, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct client *c;
	int r;

	/* Identity from the kernel, before anything else is spent on it. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		close(fd);
		return;
	}
	r = clientlimit_admit(&d->climit, cred.uid);
	if (r < 0) {
		refuse(d, fd, &cred, r);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c) {
		c->d = d;
		c->fd = fd;
		c->cred = cred;
		proto_rx_init(&c->rx);
	}
	if (!c || loop_add_fd(d->loop, fd, EPOLLIN, client_io, c, &c->w) < 0) {
		clientlimit_leave(&d->climit, cred.uid, 0);
		free(c);
		close(fd);
		return;
	}
	/* Clients send their request as soon as they connect: one that does
	 * not only holds a slot. */
	c->idle = loop_add_timer(
	    d->loop, d->cfg.client_request_timeout_s * 1000ull, client_idle, c);
	c->next = d->clients;
	d->clients = c;
}

static void listen_io(void *data, uint32_t events)
{
	struct vmmd *d = data;

	(void)events;
	for (int i = 0; i < 64; i++) {
		int fd = accept4(d->listen_fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn("accept: %m");
			return;
		}
		accept_one(d, fd);
	}
}

int server_listen(struct vmmd *d)
{
	char dir[VMENV_MAX_PATH];
	int r;

	clientlimit_configure(
	    &d->climit, d->cfg.max_clients, d->cfg.max_clients_per_uid,
	    d->cfg.reserved_clients, d->cfg.max_request_kib_per_uid * 1024ull,
	    d->slurm_uid);
	snprintf(dir, sizeof(dir), "%s", d->cfg.socket_path);
	r = mkdir_p(dirname(dir), 0755);
	if (r < 0) {
		log_err("cannot create %s: %s", dir, strerror(-r));
		return r;
	}
	/* Anyone may connect; what each peer may do is decided per request
	 * from its SO_PEERCRED identity. */
	d->listen_fd = unix_listen(d->cfg.socket_path, 0666, 128);
	if (d->listen_fd < 0) {
		log_err("cannot listen on %s: %s", d->cfg.socket_path,
			strerror(-d->listen_fd));
		return d->listen_fd;
	}
	return loop_add_fd(d->loop, d->listen_fd, EPOLLIN, listen_io, d,
			   &d->listen_w);
}

void server_close(struct vmmd *d)
{
	while (d->clients)
		client_free(d->clients, true);
	console_close_all(d);
	clientlimit_free(&d->climit);
	loop_del_fd(d->listen_w);
	if (d->listen_fd >= 0) {
		close(d->listen_fd);
		unlink(d->cfg.socket_path);
	}
	d->listen_fd = -1;
}
