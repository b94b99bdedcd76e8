/* SPDX-License-Identifier: MIT */
/*
 * The session records that let a step outlive a vmmd restart: this file
 * writes and removes them and gives the task its token; exec_reattach.c
 * reads them back. It calls nothing else of the relay, so a session's
 * end (exec_session.c) can remove its record.
 *
 * Steps that outlive a vmmd restart (docs/restart.md). Each session of a
 * guest whose agent speaks agentwire v3 has a record and a token; its task
 * (vmenv-exec) keeps the token. A restarted vmmd that adopts the guest
 * reads the records; the task comes back with REATTACH (its owner, by
 * SO_PEERCRED, with the token), says how much of each stream it holds,
 * and the agent sends the rest again and says how much stdin it took.
 *
 * Records: run_dir/jobs/<id>/sessions/<session>, root's (0700 directory,
 * 0600 files, written atomically), never in a directory a user can write:
 *   owner=U token=<SHA-256 of the token, hex> batch=0|1 merge=0|1
 *   stdin=0|1 bulk=0|1 base_out=N base_err=N       (one per line)
 * The token itself is only in the task's memory.
 */
#include "exec_priv.h"

#include "digest.h"
#include "jobrec.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

int exec_record_dir(const struct job *j, char *buf, size_t n)
{
	int r = snprintf(buf, n, "%s/sessions", j->dir);

	return r < 0 || (size_t)r >= n ? -ENAMETOOLONG : 0;
}

/* The directory must be root's alone: a record there is trusted. */
int exec_record_dir_ok(const char *dir)
{
	struct stat st;

	if (lstat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077))
		return -EPERM;
	return 0;
}

static int record_path(const struct exec_session *s, char *buf, size_t n)
{
	char dir[VMENV_MAX_PATH];
	int r = exec_record_dir(s->j, dir, sizeof(dir));

	if (r < 0)
		return r;
	r = snprintf(buf, n, "%s/%u", dir, s->id);
	return r < 0 || (size_t)r >= n ? -ENAMETOOLONG : 0;
}

int exec_hash_token(const char *hex, char out[65])
{
	struct digest *d = NULL;
	int r = digest_new(&d);

	if (r == 0)
		r = digest_update(d, hex, strlen(hex));
	if (r == 0)
		r = digest_final_hex(d, out);
	digest_free(d);
	return r;
}

static int new_token(char hex[PROTO_TOKEN_HEX + 1], char hash[65])
{
	uint8_t raw[PROTO_TOKEN_HEX / 2];

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return -EIO;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	explicit_bzero(raw, sizeof(raw));
	return exec_hash_token(hex, hash);
}

static int record_write(const struct exec_session *s)
{
	char dir[VMENV_MAX_PATH], path[VMENV_MAX_PATH + 16], text[RECORD_MAX];
	int r = exec_record_dir(s->j, dir, sizeof(dir)), n;

	if (r < 0)
		return r;
	if ((r = exec_record_dir_ok(dir)) < 0 ||
	    (r = record_path(s, path, sizeof(path))) < 0)
		return r;
	n = snprintf(text, sizeof(text),
		     "owner=%u\ntoken=%s\nbatch=%d\nmerge=%d\nstdin=%d\n"
		     "bulk=%d\nbase_out=%llu\nbase_err=%llu\n",
		     (unsigned)s->owner, s->token_hash, s->batch,
		     s->req.exec.merge_stderr, s->in_fd >= 0, s->bulk_open,
		     (unsigned long long)s->base[0],
		     (unsigned long long)s->base[1]);
	return write_file_atomic(path, text, (size_t)n, 0600);
}

void exec_session_event(struct exec_session *s, const char *token)
{
	struct proto_reply rep = {.kind = PROTO_EV_SESSION, .session = s->id};

	if (token)
		snprintf(rep.token, sizeof(rep.token), "%s", token);
	if (s->cfd >= 0 && proto_send_reply(s->cfd, &rep) < 0)
		log_debug("job %u: session %u: task gone before its token",
			  s->j->id, s->id);
	explicit_bzero(rep.token, sizeof(rep.token));
}

/* The next id a restarted vmmd may give: the guest's agent may still
 * hold any session below it, recorded or not (a RELEASE lost with the
 * old vmmd), and an id it holds must never be given again. */
static int next_write(const struct job *j)
{
	char dir[VMENV_MAX_PATH], path[VMENV_MAX_PATH + 16], text[16];
	int r = exec_record_dir(j, dir, sizeof(dir)), n;

	if (r < 0)
		return r;
	/* The first session's: the directory comes with it. */
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if ((r = exec_record_dir_ok(dir)) < 0)
		return r;
	snprintf(path, sizeof(path), "%s/next", dir);
	n = snprintf(text, sizeof(text), "%u\n", j->next_session);
	return write_file_atomic(path, text, (size_t)n, 0600);
}

int exec_record_new(struct exec_session *s)
{
	char token[PROTO_TOKEN_HEX + 1];
	int r;

	s->base[0] = s->written[0];
	s->base[1] = s->written[1];
	/* next first: a record must never name an id the file would give
	 * again. */
	if ((r = new_token(token, s->token_hash)) < 0 ||
	    (r = next_write(s->j)) < 0 || (r = record_write(s)) < 0) {
		log_err("job %u: session %u: cannot record it for a vmmd "
			"restart: %s",
			s->j->id, s->id, strerror(-r));
		return r;
	}
	s->recorded = true;
	exec_session_event(s, token);
	explicit_bzero(token, sizeof(token));
	return 0;
}

void exec_record_update(struct exec_session *s)
{
	int r;

	if (s->recorded && (r = record_write(s)) < 0)
		log_warn("job %u: session %u: cannot update its record: %s",
			 s->j->id, s->id, strerror(-r));
}

void exec_record_remove(struct exec_session *s)
{
	char path[VMENV_MAX_PATH + 16];

	if (!s->recorded)
		return;
	s->recorded = false;
	if (record_path(s, path, sizeof(path)) == 0 && unlink(path) < 0 &&
	    errno != ENOENT)
		log_warn("job %u: session %u: cannot remove %s: %m", s->j->id,
			 s->id, path);
}
