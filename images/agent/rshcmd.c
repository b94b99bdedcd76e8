// SPDX-License-Identifier: MIT
/*
 * Starting an rsh command: its environment, its directory, and the fork
 * through the same spawn code as the host's EXEC sessions, with the
 * credentials SETUP gave (never the request's).
 */
#include "agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RSH_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* HOME, USER, LOGNAME, SHELL and PATH as a login would set them, what the
 * client may pass (rsh_env_name_ok), then the job's VMENV_* variables. */
static char **build_env(const struct rsh_config *cfg,
			const struct rsh_request *q, uint32_t *ret_n)
{
	char **v = calloc(RSH_MAX_ENV + 8, sizeof(*v));
	uint32_t n = 0, i;
	bool path = false;

	if (!v)
		return NULL;
	for (i = 0; i < q->envc; i++) {
		path = path || strncmp(q->envp[i], "PATH=", 5) == 0;
		v[n++] = strdup(q->envp[i]);
	}
	if (asprintf(&v[n++], "HOME=%s", cfg->home[0] ? cfg->home : "/") < 0)
		v[n - 1] = NULL;
	if (asprintf(&v[n++], "USER=%s", cfg->user) < 0)
		v[n - 1] = NULL;
	if (asprintf(&v[n++], "LOGNAME=%s", cfg->user) < 0)
		v[n - 1] = NULL;
	v[n++] = strdup("SHELL=/bin/sh");
	if (!path)
		v[n++] = strdup("PATH=" RSH_DEFAULT_PATH);
	for (i = 0; i < n && v[i]; i++)
		;
	if (i < n || jobfiles_env(&cfg->job, &v, &n) < 0) {
		for (i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return NULL;
	}
	*ret_n = n;
	return v;
}

/* The client's directory when it exists here (the job's shared directory
 * has the same path on every node), else the home, else /, as ssh would. */
static const char *pick_cwd(const struct rsh_config *cfg, const char *want)
{
	struct stat st;

	if (want[0] && stat(want, &st) == 0 && S_ISDIR(st.st_mode))
		return want;
	if (cfg->home[0] && stat(cfg->home, &st) == 0 && S_ISDIR(st.st_mode))
		return cfg->home;
	return "/";
}

static void strv_free(char **v, uint32_t n)
{
	uint32_t i;

	for (i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

int rsh_cmd_start(const struct rsh_config *cfg, const struct rsh_request *q,
		  struct rsh_conn *c)
{
	struct aw_exec e = {
	    .uid = cfg->uid,
	    .gid = cfg->gid,
	    .ngroups = cfg->ngroups,
	    .flags = AW_EXEC_STDIN,
	    .argc = q->argc,
	    .argv = q->argv,
	};
	struct spawn_pipes p;
	pid_t pid;
	int r;

	memcpy(e.groups, cfg->groups, sizeof(e.groups));
	c->start = (struct start_info){.uid = e.uid,
				       .gid = e.gid,
				       .ngroups = e.ngroups,
				       .cwd = strdup(pick_cwd(cfg, q->cwd)),
				       .exe = strdup(q->argv[0])};
	e.cwd = c->start.cwd;
	e.envp = build_env(cfg, q, &e.envc);
	if (!e.envp || !c->start.cwd || !c->start.exe) {
		strv_free(e.envp, e.envc);
		return -ENOMEM;
	}
	r = spawn_pipes_open(&p, e.flags);
	pid = r < 0 ? -1 : fork();
	if (pid == 0)
		spawn_child(&e, &p, NULL);
	if (r == 0 && pid < 0)
		r = -errno;
	strv_free(e.envp, e.envc);
	if (r < 0) {
		spawn_pipes_close(&p);
		return r;
	}
	c->pid = pid;
	c->starting = true;
	c->status_fd = p.st[0];
	c->out_fd[STREAM_OUT] = p.out[0];
	c->out_fd[STREAM_ERR] = p.err[0];
	c->in_fd = p.in[1];
	p.st[0] = p.out[0] = p.err[0] = p.in[1] = -1;
	spawn_pipes_close(&p);
	return 0;
}
