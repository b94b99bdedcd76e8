/* SPDX-License-Identifier: MIT */
/*
 * A restarted vmmd taking over the sessions of a guest it adopts
 * (docs/restart.md): it reads their records (exec_record.c), and lets
 * each task back, with its token, to where its output stopped.
 */
#include "exec.h"
#include "exec_priv.h"

#include "agent.h"
#include "cleanup.h"
#include "jobrec.h"
#include "log.h"
#include "vmmd.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long a task has to come back after a restart before its command is
 * killed (vmenv-exec retries for as long: VMENV_REATTACH_S). */
#define REATTACH_MS (300u * 1000u)

struct record {
	uid_t owner;
	char token[65];
	int batch, merge, stdin_, bulk;
	unsigned long long base[2];
};

static int record_parse(char *text, struct record *rec)
{
	int seen = 0;

	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		unsigned u;

		if (sscanf(line, "owner=%u", &u) == 1)
			rec->owner = (uid_t)u, seen |= 1;
		else if (sscanf(line, "token=%64[0-9a-f]", rec->token) == 1)
			seen |= 2;
		else if (sscanf(line, "batch=%d", &rec->batch) == 1 ||
			 sscanf(line, "merge=%d", &rec->merge) == 1 ||
			 sscanf(line, "stdin=%d", &rec->stdin_) == 1 ||
			 sscanf(line, "bulk=%d", &rec->bulk) == 1 ||
			 sscanf(line, "base_out=%llu", &rec->base[0]) == 1 ||
			 sscanf(line, "base_err=%llu", &rec->base[1]) == 1)
			continue;
		else
			return -EBADMSG;
	}
	return seen == 3 && strlen(rec->token) == 64 ? 0 : -EBADMSG;
}

static void reattach_expired(void *data)
{
	struct exec_session *s = data;
	char msg[PROTO_MAX_ERROR];
	struct aw_buf b = {0};

	s->reattach_timer = NULL;
	log_warn("job %u: session %u: its task did not come back within %u s "
		 "of the vmmd restart; its command is killed",
		 s->j->id, s->id, REATTACH_MS / 1000);
	if (aw_put_u32(&b, SIGKILL) == 0)
		agent_send(s->j, AW_SIGNAL, s->id, b.data, b.len);
	aw_buf_free(&b);
	s->release = true;
	snprintf(msg, sizeof(msg),
		 "job %u: the step ended: %s within %u s of the vmmd restart "
		 "on node %s",
		 s->j->id,
		 s->cfd >= 0 ? "the guest did not answer its re-attach"
			     : "its task did not come back",
		 REATTACH_MS / 1000, s->j->d->cfg.node_name);
	exec_sess_end(s, msg);
}

static void adopt_record(struct job *j, uint32_t id, const struct record *rec)
{
	struct exec_session *s = exec_sess_new(j, id);

	if (!s)
		return;
	s->st = S_DETACHED;
	s->restarted = true;
	s->recorded = true;
	s->owner = rec->owner;
	memcpy(s->token_hash, rec->token, sizeof(s->token_hash));
	s->batch = rec->batch;
	s->bulk_asked = rec->bulk;
	s->req.exec.merge_stderr = rec->merge;
	s->req.exec.want_stdin = rec->stdin_;
	s->base[0] = s->written[0] = rec->base[0];
	s->base[1] = s->written[1] = rec->base[1];
	if (id >= j->next_session)
		j->next_session = id + 1;
	s->reattach_timer =
	    loop_add_timer(j->d->loop, REATTACH_MS, reattach_expired, s);
	if (!s->reattach_timer) {
		s->recorded = false; /* the next vmmd's to handle */
		exec_sess_free(s);
		return;
	}
	log_info("job %u: session %u waits for its task to re-attach", j->id,
		 id);
}

static void adopt_one(struct job *j, const char *dir, const char *name)
{
	char path[VMENV_MAX_PATH + 272], *end;
	_cleanup_free_ char *text = NULL;
	struct record rec = {0};
	unsigned long id = strtoul(name, &end, 10);
	size_t len;

	if (*name < '1' || *name > '9' || *end || id > UINT32_MAX)
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (read_plain_file_limited(path, RECORD_MAX, &text, &len) < 0 ||
	    record_parse(text, &rec) < 0) {
		log_warn("job %u: session record %s unreadable: removed", j->id,
			 path);
		unlink(path);
		return;
	}
	adopt_record(j, (uint32_t)id, &rec);
}

static void next_read(struct job *j, const char *dir)
{
	char path[VMENV_MAX_PATH + 16];
	_cleanup_free_ char *text = NULL;
	unsigned next;
	size_t len;

	snprintf(path, sizeof(path), "%s/next", dir);
	if (read_plain_file_limited(path, 16, &text, &len) == 0 &&
	    sscanf(text, "%u", &next) == 1 && next > j->next_session)
		j->next_session = next;
}

void exec_restart_adopt(struct job *j)
{
	char dir[VMENV_MAX_PATH];
	struct dirent *e;
	DIR *d;

	if (exec_record_dir(j, dir, sizeof(dir)) < 0 ||
	    exec_record_dir_ok(dir) < 0)
		return;
	next_read(j, dir);
	if (!(d = opendir(dir)))
		return;
	while ((e = readdir(d)))
		adopt_one(j, dir, e->d_name);
	closedir(d);
}

static void send_resume(struct exec_session *s)
{
	struct aw_buf b = {0};

	if (aw_put_i64(&b, (int64_t)(s->base[0] + s->resume_at[0])) == 0 &&
	    aw_put_i64(&b, (int64_t)(s->base[1] + s->resume_at[1])) == 0 &&
	    agent_send(s->j, AW_RESUME, s->id, b.data, b.len) == 0)
		s->resume_sent = true;
	aw_buf_free(&b);
	/* Not sent: the reattach timer ends it, saying so. */
	if (!s->resume_sent)
		log_err("job %u: session %u: cannot ask the guest to resume it",
			s->j->id, s->id);
}

void exec_restart_ready(struct job *j)
{
	struct exec_session *s, *next;
	char msg[PROTO_MAX_ERROR];

	for (s = j->sessions; s; s = next) {
		next = s->next;
		if (!s->restarted || s->resume_sent)
			continue;
		if (!j->agent_resume) {
			snprintf(msg, sizeof(msg),
				 "job %u: the step ended with the vmmd restart "
				 "on node %s: the guest's agent cannot keep "
				 "steps across one (an image built before "
				 "agent protocol 3)",
				 j->id, j->d->cfg.node_name);
			exec_sess_end(s, msg);
		} else if (s->cfd >= 0) {
			send_resume(s);
		}
	}
}

static void refuse(int cfd, int *fds, size_t nfds, const char *msg)
{
	struct proto_reply rep = {.kind = PROTO_EV_ERROR};

	snprintf(rep.error, sizeof(rep.error), "%s", msg);
	proto_send_reply(cfd, &rep);
	close(cfd);
	for (size_t i = 0; i < nfds; i++)
		close(fds[i]);
}

static bool token_ok(const struct exec_session *s, const char *token)
{
	char hash[65];
	unsigned char diff = 0;

	if (exec_hash_token(token, hash) < 0)
		return false;
	for (size_t i = 0; i < 64; i++)
		diff |= (unsigned char)(hash[i] ^ s->token_hash[i]);
	return diff == 0;
}

static const char REFUSED_AUTH[] =
    "permission denied (no such session of yours waits for its task)";
static const char REFUSED_BULK[] =
    "its output went through a bulk port, which a restarted vmmd cannot "
    "take over";

/* Why the task may not take session s over, or NULL. */
static const char *reattach_refusal(const struct exec_session *s, uid_t peer,
				    const struct proto_request *req,
				    size_t nfds)
{
	/* One answer for "not yours" and "not there": another user learns
	 * nothing of the job's sessions. */
	if (!s || !s->restarted || peer != s->owner ||
	    !token_ok(s, req->re.token))
		return REFUSED_AUTH;
	if (s->cfd >= 0)
		return "its task re-attached already";
	if (s->bulk_asked)
		return REFUSED_BULK;
	if (nfds != 3 + (s->batch ? 1u : 0u))
		return "re-attach needs the task's stdin, stdout and stderr "
		       "(and a batch step's own stdout)";
	return NULL;
}

static int take_fds(struct exec_session *s, int *fds)
{
	int r = exec_own_stdio(s, fds);

	if (r < 0)
		return r;
	s->in_fd = fds[0];
	s->out[OUT_STDOUT].fd = fds[1];
	s->out[OUT_STDERR].fd = fds[2];
	/* The batch output file, for a later checkpoint's copy. */
	s->file_fd = s->batch ? fds[3] : -1;
	if (!s->req.exec.want_stdin && s->in_fd >= 0)
		close(s->in_fd), s->in_fd = -1;
	if (s->req.exec.merge_stderr && s->out[OUT_STDERR].fd >= 0)
		close(s->out[OUT_STDERR].fd), s->out[OUT_STDERR].fd = -1;
	return 0;
}

void exec_reattach(struct job *j, int cfd, uid_t peer_uid,
		   const struct proto_request *req, int *fds, size_t nfds)
{
	struct exec_session *s = exec_sess_find(j, req->re.session);
	const char *why = reattach_refusal(s, peer_uid, req, nfds);
	char msg[PROTO_MAX_ERROR];

	if (why) {
		log_warn("job %u: uid %u refused re-attach to session %u: %s",
			 j->id, (unsigned)peer_uid, req->re.session, why);
		snprintf(msg, sizeof(msg),
			 "job %u: lost the connection to vmmd on node %s "
			 "(vmmd stopped or restarted) and cannot re-attach: "
			 "%s",
			 j->id, j->d->cfg.node_name, why);
		refuse(cfd, fds, nfds, msg);
		/* Its own task, told why: the command goes. */
		if (why == REFUSED_BULK) {
			s->release = true;
			exec_sess_free(s);
		}
		return;
	}
	s->cfd = cfd;
	s->resume_at[0] = req->re.out_bytes;
	s->resume_at[1] = req->re.err_bytes;
	if (take_fds(s, fds) < 0 || exec_client_watch(s) < 0) {
		for (size_t i = 0; i < nfds; i++)
			if (fds[i] != s->in_fd && fds[i] != s->out[0].fd &&
			    fds[i] != s->out[1].fd && fds[i] != s->file_fd)
				close(fds[i]);
		s->release = true;
		exec_sess_end(s, "cannot take the task's stdio");
		return;
	}
	if (j->state == JOB_READY && j->agent_resume)
		send_resume(s);
}

int exec_on_resumed(struct exec_session *s, const uint8_t *p, size_t n)
{
	struct proto_reply rep = {.kind = PROTO_EV_STARTED, .reattached = true};
	char msg[PROTO_MAX_ERROR];
	struct aw_reader r;
	uint32_t err, eof, window;
	int64_t in_got;

	aw_reader_init(&r, p, n);
	err = aw_get_u32(&r);
	in_got = aw_get_i64(&r);
	eof = aw_get_u32(&r);
	window = aw_get_u32(&r);
	if (aw_reader_done(&r) < 0 || in_got < 0 || eof > 1 ||
	    window > AW_WINDOW)
		return -EPROTO;
	if (err) {
		snprintf(msg, sizeof(msg),
			 "job %u: the step cannot go on after the vmmd "
			 "restart on node %s: the guest %s",
			 s->j->id, s->j->d->cfg.node_name,
			 err == ENOENT
			     ? "does not have its command (it never arrived, "
			       "or it ended and was let go)"
			     : "no longer holds the output the task missed");
		s->release = true;
		exec_sess_end(s, msg);
		return 0;
	}
	s->restarted = false;
	s->st = S_RUNNING;
	/* What reached the task in all: a checkpoint's copy of the output
	 * is this long. */
	s->written[0] = s->base[0] + s->resume_at[0];
	s->written[1] = s->base[1] + s->resume_at[1];
	s->started_seen = true;
	s->in_window = window;
	loop_cancel_timer(s->reattach_timer);
	s->reattach_timer = NULL;
	rep.stdin_offset = (uint64_t)in_got;
	rep.stdin_eof = eof;
	if (proto_send_reply(s->cfd, &rep) < 0)
		log_debug("job %u: session %u: task gone before the reply",
			  s->j->id, s->id);
	if (eof && s->in_fd >= 0)
		close(s->in_fd), s->in_fd = -1;
	exec_stdin_start(s);
	log_info("job %u: session %u re-attached after the vmmd restart "
		 "(its task holds %llu+%llu bytes of output, the guest %lld "
		 "of stdin)",
		 s->j->id, s->id, (unsigned long long)s->resume_at[0],
		 (unsigned long long)s->resume_at[1], (long long)in_got);
	return 0;
}
