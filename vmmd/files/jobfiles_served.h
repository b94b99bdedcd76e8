/* SPDX-License-Identifier: MIT */
/*
 * JOBFILES_SERVED behind vmmd/files/jobfiles.h: the job's working directory
 * served by vmenv-9p (ninep/main.c), one process per job, through a
 * second virtio-serial port (JOBFILES_PORT_NAME) whose host end QEMU
 * binds at q/files.sock; in the guest the agent mounts it with the
 * kernel's 9p client through a relay process (images/agent/relay.h).
 *
 *   prepare  the paths (nothing runs yet: QEMU makes the socket)
 *   domspec  the port in the domain
 *   attach   starts vmenv-9p as root with the job's ids: it connects,
 *            then becomes the job's user for good
 *   freeze   SIGUSR1: vmenv-9p writes its fids to q/files.state, stops
 *            reading and answers on its control pipe (bounded wait); the
 *            state is copied to <ckpt_dir>/files
 *   plan/after_save/forget (jobfiles.h's after-save steps): once the save
 *            stopped QEMU the old vmenv-9p exits, having kept anything
 *            the guest sent after the freeze in q/files.state.pending;
 *            the worker waits for it and copies that to
 *            <ckpt_dir>/files.pending, the loop then forgets the server
 *   thaw     ckpt_dir NULL (the save failed): SIGUSR2, serve again; else
 *            (after a restore) a new vmenv-9p with --state-in
 *            <ckpt_dir>/files re-opens every fid by path
 *   stop     SIGTERM, reaped (SIGKILL after a grace period)
 *   adopt    a restarted vmmd takes over the server a previous one started
 *            (docs/checkpoint-files.md, "vmmd restarts")
 *
 * The control channel is a FIFO in the job's directory (root's): the server holds it open for reading and writing,
 * so its answers never fail for want of a reader, and a vmmd started
 * later opens it by name. The server's pid is in <job dir>/files.pid.
 * Signals go through a pidfd: a pid that was reused is never signalled.
 *
 * The jobfiles.c dispatch calls these for j->files_kind == JOBFILES_SERVED.
 */
#ifndef VMMD_JOBFILES_SERVED_H
#define VMMD_JOBFILES_SERVED_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "jobfiles_ops.h"
#include "util.h"

#define JOBFILES_PORT_NAME "org.vmenv.files.0"
#define JOBFILES_FREEZE_MS 10000
#define JOBFILES_STOP_MS   2000
/* Adoption runs on vmmd's loop at its start, one job after another. */
#define JOBFILES_ADOPT_MS    2000
#define JOBFILES_SERVED_ARGV 32
#define JOBFILES_SERVER	     VMENV_LIBEXECDIR "/vmenv-9p"

struct job;
struct dom_spec;

/* JOBFILES_SERVER; the tests point it at the build's. */
extern const char *jobfiles_server_path;

/* Per job; owned by the job (j->served), freed by _stop. */
struct jobfiles_served {
	pid_t pid;  /* vmenv-9p, or 0 */
	int pidfd;  /* its pidfd, or -1 */
	bool child; /* this vmmd started it (and reaps it) */
	int ctl;    /* read end of its control FIFO, or -1 */
	char sock[VMENV_MAX_PATH];
	char state[VMENV_MAX_PATH];
	char ctl_path[VMENV_MAX_PATH];
	char pid_path[VMENV_MAX_PATH];
	/* argv strings */
	char ids[3][32];
	char groups[64 * 11];
};

int jobfiles_served_prepare(struct job *j, char *err, size_t errlen);
int jobfiles_served_domspec(const struct job *j, struct dom_spec *s);
int jobfiles_served_attach(struct job *j, char *err, size_t errlen);
int jobfiles_served_freeze(struct job *j, const char *ckpt_dir, char *err,
			   size_t errlen);
void jobfiles_served_plan(const struct job *j, struct jobfiles_after_save *p);
int jobfiles_served_after_save(const struct jobfiles_after_save *p,
			       const char *ckpt_dir, char *err, size_t errlen);
void jobfiles_served_forget(struct job *j);
int jobfiles_served_thaw(struct job *j, const char *ckpt_dir,
			 jobfiles_restored_f restored, char *err,
			 size_t errlen);
void jobfiles_served_stop(struct job *j);
/* Asks the server to serve again (after a freeze; harmless when it
 * serves), waiting at most timeout_ms for its answer. */
int jobfiles_served_resume(struct job *j, int timeout_ms, char *err,
			   size_t errlen);
/* A restarted vmmd adopting j's running guest: finds the server by its
 * pid file, checks it is vmenv-9p serving j's socket, and asks it to
 * serve (it may have been frozen by a checkpoint the old vmmd did not
 * finish). 0 when adopted; otherwise the job has no server and its
 * checkpoints are refused, with err saying why. */
int jobfiles_served_adopt(struct job *j, char *err, size_t errlen);

/* The server's command line (pure; for the tests): state_in may be NULL.
 * Fills argv (JOBFILES_SERVED_ARGV entries, NULL-terminated). */
int jobfiles_served_argv(struct job *j, const char *state_in,
			 const char **argv);

#endif
