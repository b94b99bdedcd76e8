// SPDX-License-Identifier: MIT
/*
 * What a multi-node job finds in each guest: /etc/hosts naming every peer,
 * the node file (one peer per line, in node index order, as MPI launchers
 * take a host file) and the job's rsh token, readable by the job's user
 * only. Every file is replaced whole (temporary file + rename), so a
 * retried SETUP rewrites them and a reader never sees half of one.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const struct jobfiles_paths jobfiles_default_paths = {
    .hosts = "/etc/hosts",
    .dir = AGENT_JOBDIR,
    .nodefile = AGENT_NODEFILE,
    .token = AGENT_TOKEN_FILE,
};
#define HOSTS_HEAD \
	"127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n"

static int put_line(struct aw_buf *b, const char *a, const char *sep,
		    const char *c)
{
	int r = aw_put_bytes(b, a, strlen(a));

	r = r ?: aw_put_bytes(b, sep, strlen(sep));
	r = r ?: aw_put_bytes(b, c, strlen(c));
	return r ?: aw_put_bytes(b, "\n", 1);
}

/* Peer names and addresses were checked by aw_setup_decode(): host name
 * characters and dotted quads cannot add lines or fields. */
static int hosts_text(const struct aw_setup *s, struct aw_buf *b)
{
	int r = aw_put_bytes(b, HOSTS_HEAD, strlen(HOSTS_HEAD));
	uint32_t i;

	for (i = 0; i < s->npeers && !r; i++)
		r = put_line(b, s->peers[i].addr, "\t", s->peers[i].name);
	return r;
}

static int nodefile_text(const struct aw_setup *s, struct aw_buf *b)
{
	uint32_t i;
	int r = 0;

	for (i = 0; i < s->npeers && !r; i++)
		r = put_line(b, s->peers[i].name, "", "");
	return r;
}

static int write_text(const char *path, const struct aw_setup *s,
		      int (*fn)(const struct aw_setup *, struct aw_buf *),
		      mode_t mode, char *msg, size_t size)
{
	struct aw_buf b = {0};
	int r = fn(s, &b);

	if (r == 0)
		r = agent_write_file(path, b.data, b.len, mode, 0, 0);
	aw_buf_free(&b);
	if (r < 0)
		return agent_fail(msg, size, -r, "writing %s", path);
	return 0;
}

/* The directory is root's (the agent's), 0755. */
static int rundir_make(const char *dir, char *msg, size_t size)
{
	struct stat st;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return agent_fail(msg, size, errno, "mkdir %s", dir);
	if (lstat(dir, &st) < 0)
		return agent_fail(msg, size, errno, "stat %s", dir);
	if (!S_ISDIR(st.st_mode))
		return agent_fail(msg, size, ENOTDIR, "%s", dir);
	if (chown(dir, geteuid(), getegid()) < 0 || chmod(dir, 0755) < 0)
		return agent_fail(msg, size, errno, "chmod %s", dir);
	return 0;
}

int jobfiles_write_at(const struct jobfiles_paths *p, const struct aw_setup *s,
		      char *msg, size_t size)
{
	int r;

	if (!s->npeers)
		return 0;
	r = rundir_make(p->dir, msg, size);
	r = r ?: write_text(p->hosts, s, hosts_text, 0644, msg, size);
	r = r ?: write_text(p->nodefile, s, nodefile_text, 0644, msg, size);
	if (r < 0 || !s->job_token[0])
		return r;
	/* The token is the job user's key to the other guests: 0400, his. */
	r = agent_write_file(p->token, s->job_token, strlen(s->job_token), 0400,
			     s->uid, s->gid);
	if (r < 0)
		return agent_fail(msg, size, -r, "writing %s", p->token);
	return 0;
}

int jobfiles_write(const struct aw_setup *s, char *msg, size_t size)
{
	return jobfiles_write_at(&jobfiles_default_paths, s, msg, size);
}

/* --- the job's environment ---------------------------------------------- */

static bool is_job_var(const char *e)
{
	return strncmp(e, "VMENV_NODEFILE=", 15) == 0 ||
	       strncmp(e, "VMENV_NODEID=", 13) == 0 ||
	       strncmp(e, "VMENV_NNODES=", 13) == 0;
}

int jobfiles_env(const struct agent_job *j, char ***envp, uint32_t *envc)
{
	char **old = *envp, **v;
	uint32_t n = 0, i;
	int r = 0;

	if (!j->nnodes)
		return 0;
	v = calloc((size_t)*envc + 4, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (asprintf(&v[n++], "VMENV_NODEFILE=%s", AGENT_NODEFILE) < 0 ||
	    asprintf(&v[n++], "VMENV_NODEID=%u", j->node_index) < 0 ||
	    asprintf(&v[n++], "VMENV_NNODES=%u", j->nnodes) < 0) {
		v[n - 1] = NULL;
		r = -ENOMEM;
	}
	if (r < 0) {
		for (i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return r;
	}
	/* The job's own values win over any the caller passed. */
	for (i = 0; i < *envc; i++) {
		if (is_job_var(old[i]))
			free(old[i]);
		else
			v[n++] = old[i];
	}
	free(old);
	*envp = v;
	*envc = n;
	return 0;
}
