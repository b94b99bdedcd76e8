/* SPDX-License-Identifier: MIT */
#include "ckpt_work.h"

#include "ckpt_save.h"
#include "cleanup.h"
#include "jobrec.h"
#include "log.h"
#include "overlay.h"
#include "rmtree.h"
#include "vmmd.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The batch output kept for a restarted step whose file Slurm truncated;
 * beyond this the job needs --open-mode=append (docs/checkpoint.md). */
#define CKPT_MAX_OUTPUT (1ull << 30)

struct ckpt_work {
	struct vmmd *d;
	uint32_t job_id;
	struct job *j; /* compared, never dereferenced by the thread */
	ckpt_work_done_f done;
	bool save;
	bool started; /* the thread runs (a save's commits or discards) */
	pthread_t t;
	int pipe[2];
	struct loop_watch *w;
	/* The thread's copies. */
	const struct hv_ops *hv;
	void *hv_ctx;
	char domain[160];
	int dirfd; /* the checkpoint's directory (owned) */
	char dir[VMENV_MAX_PATH];
	char io_dir[VMENV_MAX_PATH];
	char job_dir[VMENV_MAX_PATH];
	bool replay;
	char *xml;
	uint64_t limit_kib, guest_kib;
	uint32_t uid;
	uint32_t src_job; /* the checkpoint's job */
	int out_fd;
	struct ckpt_manifest man;
	struct ckpt_verified ver; /* the restore's */
	struct ckpt_work_devs devs;
	struct jobfiles_after_save files;
	bool keep_older;
	struct ckpt_work_result res;
};

void ckpt_work_devs_clear(struct ckpt_work_devs *d)
{
	for (uint32_t i = 0; i < d->n && i < CKPT_MAX_DEVS; i++)
		free(d->xml[i]);
	d->n = 0;
}

/* Unplugs every device; on a refusal the ones already out go back in and
 * the guest keeps running. */
static int detach_all(struct ckpt_work *w)
{
	char why[400];

	for (uint32_t i = 0; i < w->devs.n; i++) {
		int r = w->hv->detach(w->hv_ctx, w->domain, w->devs.xml[i],
				      w->devs.gone[i], CKPT_DETACH_WAIT_MS, why,
				      sizeof(why));
		if (r == 0)
			continue;
		err_set(w->res.err, sizeof(w->res.err), -EBUSY,
			"checkpoint refused: device %s: %s", w->devs.gone[i],
			why);
		while (i-- > 0)
			w->hv->attach(w->hv_ctx, w->domain, w->devs.xml[i], why,
				      sizeof(why));
		return -EBUSY;
	}
	return 0;
}

static int attach_all(struct ckpt_work *w, char *err, size_t errlen)
{
	char why[400];

	for (uint32_t i = 0; i < w->devs.n; i++) {
		int r = w->hv->attach(w->hv_ctx, w->domain, w->devs.xml[i], why,
				      sizeof(why));
		if (r < 0)
			return err_set(err, errlen, r,
				       "cannot plug device %s: %s",
				       w->devs.gone[i], why);
	}
	return 0;
}

/* Whether the domain still runs after a failed save: QEMU itself may
 * have died in it (its memory cgroup's OOM killer, a crash). */
static bool domain_alive(struct ckpt_work *w)
{
	/* Unknown: the guest's own end will tell. */
	return hv_domain_runs(w->hv, w->hv_ctx, w->domain) != 0;
}

static uint64_t file_size(int dirfd, const char *name)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	return (uint64_t)st.st_size;
}

/* Opens the job's disk/ directory (the job's directory is root's; disk/
 * is the user's for a user image, so nothing in it is followed). */
static int open_disk_dir(const char *job_dir)
{
	_cleanup_close_ int jfd = sfs_open_dir_path(job_dir, 0, NULL);
	int fd;

	if (jfd < 0)
		return jfd;
	fd = openat(jfd, "disk",
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* The overlay as it is now, opened without following a link or
 * blocking on a FIFO: a plain file of root's or the job's user's with one
 * link. 0 with *ret_fd -1: none (a kernel + initrd guest). */
static int open_overlay(int dfd, uid_t uid, int *ret_fd, struct stat *st)
{
	int fd = overlay_open_checked(dfd, uid, st);

	*ret_fd = fd < 0 ? -1 : fd;
	if (fd == -ENOENT)
		return 0;
	return fd < 0 ? fd : 0;
}

/* Renames the checked overlay into the checkpoint: 1 done, 0 not
 * possible (another file system, or not root's: copy it), -errno. */
static int rename_overlay(int dfd, int dirfd, const struct stat *st)
{
	struct stat moved;

	if (st->st_uid != geteuid())
		return 0;
	if (renameat(dfd, OVERLAY_NAME, dirfd, CKPT_DISK) < 0)
		return errno == EXDEV ? 0 : -errno;
	/* Replaced between the check and the rename: not ours to keep. */
	if (fstatat(dirfd, CKPT_DISK, &moved, AT_SYMLINK_NOFOLLOW) < 0 ||
	    moved.st_dev != st->st_dev || moved.st_ino != st->st_ino) {
		unlinkat(dirfd, CKPT_DISK, 0);
		return -ESTALE;
	}
	return 1;
}

int ckpt_work_move_overlay(const char *job_dir, int dirfd, const char *dir,
			   uid_t uid, uint64_t *bytes, char *err, size_t errlen)
{
	_cleanup_close_ int dfd = open_disk_dir(job_dir);
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r;

	if (dfd == -ENOENT)
		return 0; /* a guest without a disk (kernel + initrd) */
	r = dfd < 0 ? dfd : open_overlay(dfd, uid, &fd, &st);
	if (r == 0 && fd < 0)
		return 0;
	if (r == 0)
		r = rename_overlay(dfd, dirfd, &st);
	/* Another file system (a shared store) or a user's file: a copy of
	 * root's from the fd checked; the original stays until the
	 * checkpoint is complete. */
	if (r == 0)
		r = sfs_copy_fd(fd, (uint64_t)st.st_size, dirfd, CKPT_DISK,
				0600);
	if (r < 0)
		return err_set(err, errlen, r,
			       "cannot put the overlay into %s: %s", dir,
			       strerror(-r));
	*bytes += (uint64_t)st.st_size;
	return 0;
}

int ckpt_work_copy_output(int fd, int dirfd, uint64_t max)
{
	struct stat st;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > max)
		return -EINVAL;
	return sfs_copy_fd(fd, (uint64_t)st.st_size, dirfd, CKPT_OUTPUT, 0600);
}

static void notify(struct ckpt_work *w)
{
	/* A pipe of one byte never blocks; nothing to do if it failed but
	 * let the job's teardown join the thread. */
	if (write(w->pipe[1], "x", 1) != 1)
		w->res.r = w->res.r ? w->res.r : -EIO;
}

/* After the save: the overlay and what the file server kept go in. */
static void save_files(struct ckpt_work *w)
{
	struct ckpt_work_result *res = &w->res;
	char e[sizeof(res->err)];
	int r;

	res->bytes = file_size(w->dirfd, CKPT_MEMORY);
	res->r =
	    ckpt_work_move_overlay(w->job_dir, w->dirfd, w->dir, w->uid,
				   &res->bytes, res->err, sizeof(res->err));
	/* Even when the overlay could not be moved: the old file server
	 * leaves with QEMU, and is waited for (reaped). */
	r = jobfiles_after_save_run(&w->files, w->io_dir, e, sizeof(e));
	if (res->r == 0 && r < 0) {
		res->r = r;
		memcpy(res->err, e, sizeof(e));
	}
	/* Best effort: without the copy, a truncated output file stays
	 * truncated (the job can ask for --open-mode=append). */
	if (res->r == 0 && w->out_fd >= 0 &&
	    ckpt_work_copy_output(w->out_fd, w->dirfd, CKPT_MAX_OUTPUT) < 0)
		unlinkat(w->dirfd, CKPT_OUTPUT, 0);
}

/* The save's stream goes through the page cache, charged to the domain's
 * memory cgroup: under the job's limit, the QEMU of a guest that used its
 * RAM was OOM-killed in its save (t_86_multinode_ckpt). The limit grows by
 * what the stream can hold for the save (its pages are written back
 * behind it and can be reclaimed; QEMU ends with the save) and comes back
 * if the guest goes on. */
static void save_limit(struct ckpt_work *w, bool raise)
{
	char why[256];

	if (!w->limit_kib || !w->hv->set_limit)
		return;
	(void)w->hv->set_limit(w->hv_ctx, w->domain,
			       w->limit_kib + (raise ? w->guest_kib : 0), why,
			       sizeof(why));
}

/* The save failed: the guest goes on (libvirt resumed it) with its limit
 * and its devices; or it died in the save, and the job with it. */
static void save_failed_guest(struct ckpt_work *w)
{
	char e[sizeof(w->res.err)];

	if (!domain_alive(w)) {
		w->res.guest_gone = true;
		return;
	}
	(void)attach_all(w, e, sizeof(e));
}

static void *save_thread(void *arg)
{
	struct ckpt_work *w = arg;
	struct ckpt_work_result *res = &w->res;
	char path[VMENV_MAX_PATH + 16];
	uint64_t t0 = now_ms();

	if (str_printf(path, sizeof(path), "%s/%s", w->io_dir, CKPT_MEMORY) < 0)
		res->r = -ENAMETOOLONG;
	else
		res->r = detach_all(w);
	if (res->r == 0) {
		save_limit(w, true);
		res->r = ckpt_save_domain(w->hv, w->hv_ctx, w->domain, path,
					  res->err, sizeof(res->err));
		if (res->r < 0)
			save_failed_guest(w);
	}
	if (res->r == 0) {
		res->guest_gone = true;
		save_files(w);
	}
	res->ms = now_ms() - t0;
	if (res->r == 0 && w->keep_older)
		res->r = ckpt_store_commit_only(w->dirfd, w->dir, &w->man,
						res->err, sizeof(res->err));
	else if (res->r == 0)
		res->r = ckpt_store_commit(w->dirfd, w->dir, &w->man, res->err,
					   sizeof(res->err));
	else
		ckpt_store_discard(w->dirfd, w->man.seq);
	/* Once the partial stream's page cache is gone with its file: a
	 * lower limit under it could OOM-kill the guest that goes on. */
	if (res->r < 0 && !res->guest_gone)
		save_limit(w, false);
	notify(w);
	return NULL;
}

/* A listed file of the verified checkpoint, copied from the fd that was
 * hashed into a new file name of the directory dfd. 0, or 1 when the
 * manifest does not list it (nothing is copied then). */
static int put_back(const struct ckpt_verified *v, const char *file, int dfd,
		    const char *name)
{
	uint64_t size = 0;
	int fd = ckpt_verified_fd(v, file, &size);

	if (fd < 0)
		return 1;
	if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
		return -errno;
	return sfs_copy_fd(fd, size, dfd, name, 0600);
}

/* The overlay back into the job's disk/ (only when the manifest lists
 * one: a kernel + initrd guest has none). */
static int restore_overlay(struct ckpt_work *w)
{
	_cleanup_close_ int dfd = -1;
	int r;

	if (ckpt_verified_fd(&w->ver, CKPT_DISK, NULL) < 0)
		return 0;
	dfd = open_disk_dir(w->job_dir);
	r = dfd < 0 ? dfd : put_back(&w->ver, CKPT_DISK, dfd, OVERLAY_NAME);
	if (r < 0)
		return err_set(w->res.err, sizeof(w->res.err), r,
			       "cannot copy the overlay: %s", strerror(-r));
	return 0;
}

/* The saved batch output aside for exec_ckpt_adopt, when listed. */
static bool restore_output(struct ckpt_work *w)
{
	_cleanup_close_ int jfd = sfs_open_dir_path(w->job_dir, 0, NULL);

	return jfd >= 0 &&
	       put_back(&w->ver, CKPT_OUTPUT, jfd, CKPT_WORK_REPLAY) == 0;
}

static void *restore_thread(void *arg)
{
	struct ckpt_work *w = arg;
	struct ckpt_work_result *res = &w->res;
	char p[VMENV_MAX_PATH + 16];
	uint64_t t0 = now_ms();
	int r;

	/* Verified here, not at the job's start: hashing gigabytes must not
	 * hold up the loop (or slurmd's prolog). What is restored is read
	 * from the fds that were hashed; libvirt opens the memory by a path
	 * into the same root-only directory. */
	r = ckpt_store_verify(w->dirfd, w->dir, w->src_job, w->uid, &w->ver,
			      res->err, sizeof(res->err));
	if (r == 0)
		r = restore_overlay(w);
	if (r == 0 && w->replay)
		res->replayed = restore_output(w);
	if (r == 0) {
		if (str_printf(p, sizeof(p), "%s/%s", w->io_dir, CKPT_MEMORY) <
		    0)
			r = -ENAMETOOLONG;
		else
			r = w->hv->restore(w->hv_ctx, p, w->xml, w->limit_kib,
					   res->err, sizeof(res->err));
	}
	/* Fresh devices of this allocation; the resume hook (at CKPT_RESUME)
	 * brings them up in the guest. */
	res->restored = r >= 0;
	if (r >= 0)
		r = attach_all(w, res->err, sizeof(res->err));
	res->r = r < 0 ? r : 0;
	res->ms = now_ms() - t0;
	notify(w);
	return NULL;
}

static void work_free(struct ckpt_work *w)
{
	loop_del_fd(w->w);
	close(w->pipe[0]);
	close(w->pipe[1]);
	if (w->out_fd >= 0)
		close(w->out_fd);
	/* A save that never ran leaves no directory behind. */
	if (w->save && !w->started && w->dirfd >= 0)
		ckpt_store_discard(w->dirfd, w->man.seq);
	if (w->dirfd >= 0)
		close(w->dirfd);
	ckpt_verified_clear(&w->ver);
	ckpt_manifest_clear(&w->man);
	ckpt_work_devs_clear(&w->devs);
	free(w->xml);
	free(w);
}

static void work_io(void *data, uint32_t events)
{
	struct ckpt_work *w = data;
	struct job *j = job_find(w->d, w->job_id);
	char c;

	(void)events;
	if (read(w->pipe[0], &c, 1) != 1)
		return;
	pthread_join(w->t, NULL);
	/* The job may have ended meanwhile (ckpt_work_cancel then ran). */
	if (j == w->j)
		w->done(j, w);
	work_free(w);
}

static struct ckpt_work *work_new(struct job *j, ckpt_work_done_f done)
{
	struct ckpt_work *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->d = j->d;
	w->job_id = j->id;
	w->j = j;
	w->done = done;
	w->hv = j->d->hv;
	w->hv_ctx = j->d->hv_ctx;
	w->out_fd = -1;
	w->dirfd = -1;
	ckpt_verified_init(&w->ver);
	if (pipe2(w->pipe, O_CLOEXEC) < 0) {
		free(w);
		return NULL;
	}
	if (loop_add_fd(j->d->loop, w->pipe[0], EPOLLIN, work_io, w, &w->w) <
	    0) {
		close(w->pipe[0]);
		close(w->pipe[1]);
		free(w);
		return NULL;
	}
	return w;
}

static int work_start(struct ckpt_work *w, void *(*fn)(void *),
		      struct ckpt_work **ret)
{
	int r = pthread_create(&w->t, NULL, fn, w);

	if (r != 0) {
		work_free(w);
		return -r;
	}
	w->started = true;
	*ret = w;
	return 0;
}

int ckpt_work_save(struct job *j, struct ckpt_work_save *ws,
		   ckpt_work_done_f done, struct ckpt_work **ret)
{
	struct ckpt_work *w = work_new(j, done);

	if (!w) {
		ckpt_store_discard(ws->dirfd, ws->man.seq);
		close(ws->dirfd);
		ckpt_manifest_clear(&ws->man);
		ckpt_work_devs_clear(&ws->devs);
		if (ws->out_fd >= 0)
			close(ws->out_fd);
		return -ENOMEM;
	}
	w->save = true;
	snprintf(w->domain, sizeof(w->domain), "%s", ws->domain);
	w->dirfd = ws->dirfd;
	snprintf(w->dir, sizeof(w->dir), "%s", ws->dir);
	snprintf(w->io_dir, sizeof(w->io_dir), "%s", ws->io_dir);
	snprintf(w->job_dir, sizeof(w->job_dir), "%s", ws->job_dir);
	w->uid = ws->uid;
	w->out_fd = ws->out_fd;
	w->limit_kib = ws->limit_kib;
	w->guest_kib = ws->guest_kib;
	w->man = ws->man;
	memset(&ws->man, 0, sizeof(ws->man));
	w->devs = ws->devs;
	ws->devs.n = 0;
	w->files = ws->files;
	w->keep_older = ws->keep_older;
	return work_start(w, save_thread, ret);
}

int ckpt_work_restore(struct job *j, struct ckpt_work_restore *wr,
		      ckpt_work_done_f done, struct ckpt_work **ret)
{
	struct ckpt_work *w = work_new(j, done);

	if (!w) {
		ckpt_work_devs_clear(&wr->devs);
		close(wr->dirfd);
		return -ENOMEM;
	}
	snprintf(w->domain, sizeof(w->domain), "%s", wr->domain);
	w->dirfd = wr->dirfd;
	snprintf(w->dir, sizeof(w->dir), "%s", wr->dir);
	snprintf(w->io_dir, sizeof(w->io_dir), "%s", wr->io_dir);
	w->devs = wr->devs;
	wr->devs.n = 0;
	snprintf(w->job_dir, sizeof(w->job_dir), "%s", wr->job_dir);
	w->replay = wr->replay;
	w->xml = strdup(wr->xml);
	w->limit_kib = wr->hard_limit_kib;
	w->job_id = j->id;
	w->uid = wr->uid;
	if (!w->xml) {
		work_free(w);
		return -ENOMEM;
	}
	/* The checkpoint's owner (--vm-restore: another job of the user). */
	w->src_job = wr->job_id;
	return work_start(w, restore_thread, ret);
}

const struct ckpt_work_result *ckpt_work_result(const struct ckpt_work *w)
{
	return &w->res;
}

int ckpt_work_take_dir(struct ckpt_work *w)
{
	return TAKE_FD(w->dirfd);
}

void ckpt_work_take_verified(struct ckpt_work *w, struct ckpt_verified *ret)
{
	ckpt_verified_clear(ret);
	*ret = w->ver;
	ckpt_verified_init(&w->ver);
}

void ckpt_work_cancel(struct ckpt_work *w)
{
	if (!w)
		return;
	pthread_join(w->t, NULL);
	work_free(w);
}
