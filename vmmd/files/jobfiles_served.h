/* SPDX-License-Identifier: MIT */
/*
 * JOBFILES_SERVED behind vmmd/files/jobfiles.h: the job's working directory
 * served by vmenv-9p (ninep/main.c) through a second virtio-serial port
 * (JOBFILES_PORT_NAME) whose host end QEMU binds at q/files.sock; in the
 * guest the agent mounts it with the kernel's 9p client through a relay
 * process (images/agent/relay.h).
 *
 * The job's --vm-mount directories (vmmd/files/jobmounts.h) are served the
 * same way: one vmenv-9p per mount (a server serves one root on one
 * stream: its fids, its state file and its freeze are per root), on a
 * port of its own (JOBFILES_MOUNT_PORT_FMT), started with the mount's
 * source as its root and --read-only for a ":ro" mount. Server 0 is the
 * working directory's, server 1 + i mount i's; each one's files are named
 * after it (struct jobfiles_server.name: "files", "files.m<i>"):
 *
 *   q/<name>.sock            QEMU's end of its port
 *   q/<name>.state(.pending) its state, written at a freeze (and what the
 *                            guest sent after it)
 *   q/<name>.in(.pending)    the state a restored server starts from
 *   <job dir>/<name>.ctl     its control FIFO; <name>.pid its pid
 *   <checkpoint>/<name>      its state in the checkpoint, and
 *   <checkpoint>/<name>.pending   (ckpt_store.h: files, files.m<i>)
 *
 * Every step below acts on all of the job's servers, as on one:
 *
 *   prepare  the paths (nothing runs yet: QEMU makes the sockets)
 *   domspec  the ports in the domain
 *   attach   starts each vmenv-9p as root with the job's ids: it connects,
 *            then becomes the job's user for good
 *   freeze   SIGUSR1 to every server: each writes its fids to its state
 *            file, stops reading and answers on its control FIFO (one
 *            bounded wait for all); the states are copied into the
 *            checkpoint. One that does not freeze refuses the checkpoint
 *            (naming its directory) and every server serves again
 *   plan/after_save/forget (jobfiles.h's after-save steps): once the save
 *            stopped QEMU the old servers exit, having kept anything
 *            the guest sent after the freeze in their .state.pending;
 *            the worker waits for them and copies those into the
 *            checkpoint, the loop then forgets the servers
 *   thaw     ckpt_dir NULL (the save failed): SIGUSR2, serve again; else
 *            (after a restore) new servers with --state-in re-open every
 *            fid by path
 *   stop     SIGTERM to every server, reaped (SIGKILL after a grace
 *            period)
 *   adopt    a restarted vmmd takes over the servers a previous one
 *            started (docs/checkpoint-files.md, "vmmd restarts")
 *
 * The control channel is a FIFO in the job's directory (root's): the
 * server holds it open for reading and writing, so its answers never fail
 * for want of a reader, and a vmmd started later opens it by name.
 * Signals go through a pidfd: a pid that was reused is never signalled.
 *
 * The jobfiles.c dispatch calls these for j->files_kind == JOBFILES_SERVED.
 */
#ifndef VMMD_JOBFILES_SERVED_H
#define VMMD_JOBFILES_SERVED_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "domxml.h"
#include "jobfiles_ops.h"
#include "util.h"

#define JOBFILES_PORT_NAME "org.vmenv.files.0"
/* Mount i's port, in the domain and in the agent's SETUP. */
#define JOBFILES_MOUNT_PORT_FMT "org.vmenv.files.m%u"
#define JOBFILES_FREEZE_MS	10000
#define JOBFILES_STOP_MS	2000
/* Adoption runs on vmmd's loop at its start, one job after another. */
#define JOBFILES_ADOPT_MS    2000
#define JOBFILES_SERVED_ARGV 32
#define JOBFILES_SERVER	     VMENV_LIBEXECDIR "/vmenv-9p"

struct job;

/* JOBFILES_SERVER; the tests point it at the build's. */
extern const char *jobfiles_server_path;

/* One vmenv-9p: the working directory's or a mount's. */
struct jobfiles_server {
	pid_t pid;     /* vmenv-9p, or 0 */
	int pidfd;     /* its pidfd, or -1 */
	bool child;    /* this vmmd started it (and reaps it) */
	int ctl;       /* read end of its control FIFO, or -1 */
	bool ro;       /* --read-only: a ":ro" mount */
	char name[24]; /* "files", "files.m<i>": its files (above) */
	char port[32];
	char root[VMENV_MAX_PATH]; /* what it serves */
	char sock[VMENV_MAX_PATH];
	char state[VMENV_MAX_PATH];
	char ctl_path[VMENV_MAX_PATH];
	char pid_path[VMENV_MAX_PATH];
};

/* Per job; owned by the job (j->served), freed by _stop. */
struct jobfiles_served {
	uint32_t n;		     /* servers: 1 + the job's mounts */
	struct jobfiles_server *srv; /* n of them; [0] the working dir's */
	/* The mounts' ports, for the domain (srv[1 + i]'s). */
	struct dom_port ports[JOBFILES_MAX_MOUNTS];
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
/* Asks every server to serve again (after a freeze; harmless when it
 * serves), waiting at most timeout_ms for their answers. */
int jobfiles_served_resume(struct job *j, int timeout_ms, char *err,
			   size_t errlen);
/* One server: its control FIFO drained, sig sent, and want awaited for
 * at most timeout_ms ("error ..." from the server, or the reason, in
 * line). */
int jobfiles_server_exchange(struct jobfiles_server *f, int sig,
			     const char *want, char *line, size_t len,
			     int timeout_ms);
/* A restarted vmmd adopting j's running guest: finds each server by its
 * pid file, checks it is vmenv-9p serving its socket, and asks it to
 * serve (it may have been frozen by a checkpoint the old vmmd did not
 * finish). 0 when all are adopted; otherwise those that were not are
 * left alone (they serve until QEMU closes their port), the job's
 * checkpoints are refused, and err says why. */
int jobfiles_served_adopt(struct job *j, char *err, size_t errlen);
/* A job directory no job owns any more (reconcile): ends the servers
 * still running for it, found and checked as an adoption does. How many
 * were ended. */
int jobfiles_served_reap_dir(const char *dir);

/* Server i's command line (pure; for the tests): state_in may be NULL.
 * Fills argv (JOBFILES_SERVED_ARGV entries, NULL-terminated). */
int jobfiles_served_argv(struct job *j, uint32_t i, const char *state_in,
			 const char **argv);

#endif
