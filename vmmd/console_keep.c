/* SPDX-License-Identifier: MIT */
/* Ended jobs' console logs: owners and removal times (console_keep.h). */
#include "console_keep.h"

#include "cleanup.h"
#include "log.h"
#include "vmmdconf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Bytes of one line at most: four numbers and separators. */
#define LINE_MAX_BYTES 64

void console_keep_free(struct console_keep *k)
{
	free(k->e);
	k->e = NULL;
	k->n = 0;
}

static int parse_line(const char *line, struct console_ended *e)
{
	unsigned long long job, uid, rm;
	long long until;
	int used = 0;

	if (sscanf(line, "%llu %llu %lld %llu%n", &job, &uid, &until, &rm,
		   &used) != 4 ||
	    line[used] != '\0' || job == 0 || job > UINT32_MAX ||
	    uid > UINT32_MAX || until < 0 || rm > 1)
		return -EBADMSG;
	*e = (struct console_ended){(uint32_t)job, (uint32_t)uid, until,
				    rm == 1};
	return 0;
}

int console_keep_parse(const char *text, struct console_keep *ret)
{
	struct console_keep k = {0};
	const char *p = text;

	while (*p) {
		size_t len = strcspn(p, "\n");
		char line[LINE_MAX_BYTES];

		if (len >= sizeof(line) || k.n >= CONSOLE_KEEP_MAX)
			goto bad;
		memcpy(line, p, len);
		line[len] = '\0';
		p += len + (p[len] == '\n');
		if (!len)
			continue;
		struct console_ended *e =
		    realloc(k.e, (k.n + 1) * sizeof(*k.e));
		if (!e) {
			console_keep_free(&k);
			return -ENOMEM;
		}
		k.e = e;
		if (parse_line(line, &k.e[k.n]) < 0)
			goto bad;
		k.n++;
	}
	*ret = k;
	return 0;
bad:
	console_keep_free(&k);
	return -EBADMSG;
}

int console_keep_format(const struct console_keep *k, char **ret,
			size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return -ENOMEM;
	for (size_t i = 0; i < k->n; i++)
		fprintf(f, "%" PRIu32 " %" PRIu32 " %" PRId64 " %d\n",
			k->e[i].job, k->e[i].uid, k->e[i].until,
			k->e[i].remove ? 1 : 0);
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

static void list_path(const struct vmmd_config *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s/console-ended", c->run_dir);
}

static void remove_log(const struct vmmd_config *c, uint32_t job)
{
	char path[VMENV_MAX_PATH + 32];

	snprintf(path, sizeof(path), "%s/job-%u.log", c->console_dir, job);
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("job %u: cannot remove %s: %m", job, path);
}

static void save(const struct console_keep *k, const struct vmmd_config *c)
{
	_cleanup_free_ char *text = NULL;
	char path[VMENV_MAX_PATH + 32];
	size_t len = 0;
	int r = console_keep_format(k, &text, &len);

	list_path(c, path, sizeof(path));
	if (r == 0)
		r = write_file_atomic(path, text ? text : "", len, 0600);
	if (r < 0)
		log_warn("cannot write %s: %s (ended jobs' console logs may "
			 "outlive console_linger_s)",
			 path, strerror(-r));
}

static void drop(struct console_keep *k, size_t i)
{
	memmove(&k->e[i], &k->e[i + 1], (k->n - i - 1) * sizeof(*k->e));
	k->n--;
}

static bool forget(struct console_keep *k, uint32_t job)
{
	for (size_t i = 0; i < k->n; i++) {
		if (k->e[i].job == job) {
			drop(k, i);
			return true;
		}
	}
	return false;
}

void console_keep_del(struct console_keep *k, const struct vmmd_config *c,
		      uint32_t job)
{
	if (forget(k, job))
		save(k, c);
}

void console_keep_add(struct console_keep *k, const struct vmmd_config *c,
		      uint32_t job, uid_t uid, bool remove)
{
	struct console_ended *e;

	forget(k, job);
	if (!c->console_linger_s) {
		if (remove)
			remove_log(c, job);
		save(k, c);
		return;
	}
	/* Full: the oldest goes first (entries are in the order of their
	 * jobs' ends). */
	if (k->n >= CONSOLE_KEEP_MAX) {
		if (k->e[0].remove)
			remove_log(c, k->e[0].job);
		drop(k, 0);
	}
	e = realloc(k->e, (k->n + 1) * sizeof(*k->e));
	if (!e) {
		/* Nobody will know the owner: the log goes now if it is to
		 * go at all. */
		if (remove)
			remove_log(c, job);
		return;
	}
	k->e = e;
	k->e[k->n++] = (struct console_ended){
	    job, (uint32_t)uid, (int64_t)time(NULL) + c->console_linger_s,
	    remove};
	save(k, c);
}

int console_keep_owner(const struct console_keep *k, uint32_t job,
		       uid_t *ret_uid)
{
	int64_t now = (int64_t)time(NULL);

	for (size_t i = 0; i < k->n; i++) {
		if (k->e[i].job == job && k->e[i].until > now) {
			*ret_uid = (uid_t)k->e[i].uid;
			return 0;
		}
	}
	return -ENOENT;
}

static void load(struct console_keep *k, const struct vmmd_config *c)
{
	_cleanup_free_ char *text = NULL;
	char path[VMENV_MAX_PATH + 32];
	size_t len;
	int r;

	list_path(c, path, sizeof(path));
	r = read_plain_file_limited(path, CONSOLE_KEEP_MAX * LINE_MAX_BYTES,
				    &text, &len);
	if (r == -ENOENT)
		return;
	if (r == 0)
		r = console_keep_parse(text, k);
	if (r < 0)
		log_warn("%s: %s; ended jobs' console logs are root's only "
			 "until they are removed by hand",
			 path, strerror(-r));
}

void console_keep_sweep(struct console_keep *k, const struct vmmd_config *c,
			bool at_start)
{
	int64_t now = (int64_t)time(NULL);
	bool changed = false;

	if (at_start)
		load(k, c);
	for (size_t i = 0; i < k->n;) {
		if (k->e[i].until > now) {
			i++;
			continue;
		}
		if (k->e[i].remove)
			remove_log(c, k->e[i].job);
		drop(k, i);
		changed = true;
	}
	if (changed)
		save(k, c);
}
