/* SPDX-License-Identifier: MIT */
#include "ckpt_work.h"

#include "ckpt_save.h"
#include "cleanup.h"
#include "job.h"
#include "log.h"
#include "rmtree.h"

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
	pthread_t t;
	int pipe[2];
	struct loop_watch *w;
	/* The thread's copies. */
	const struct hv_ops *hv;
	void *hv_ctx;
	char domain[160];
	char root[VMENV_MAX_PATH];
	char dir[VMENV_MAX_PATH];
	char job_dir[VMENV_MAX_PATH];
	char replay[VMENV_MAX_PATH];
	char *xml;
	uint64_t limit_kib;
	uint32_t uid;
	uint32_t src_job; /* the checkpoint's job */
	int out_fd;
	struct ckpt_manifest man;
	struct ckpt_work_devs devs;
	struct jobfiles_after_save files;
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

static int attach_all(struct ckpt_work *w)
{
	char why[400];

	for (uint32_t i = 0; i < w->devs.n; i++) {
		int r = w->hv->attach(w->hv_ctx, w->domain, w->devs.xml[i], why,
				      sizeof(why));
		if (r < 0)
			return err_set(w->res.err, sizeof(w->res.err), r,
				       "cannot plug device %s: %s",
				       w->devs.gone[i], why);
	}
	return 0;
}

static uint64_t file_size(const char *dir, const char *name)
{
	char p[VMENV_MAX_PATH];
	struct stat st;

	if (str_printf(p, sizeof(p), "%s/%s", dir, name) < 0 ||
	    stat(p, &st) < 0)
		return 0;
	return (uint64_t)st.st_size;
}

int ckpt_work_move_overlay(const char *job_dir, const char *dir,
			   uint64_t *bytes, char *err, size_t errlen)
{
	char from[VMENV_MAX_PATH], to[VMENV_MAX_PATH];
	struct stat st;
	int r;

	if (str_printf(from, sizeof(from), "%s/disk/overlay.qcow2", job_dir) <
		0 ||
	    str_printf(to, sizeof(to), "%s/%s", dir, CKPT_DISK) < 0)
		return -ENAMETOOLONG;
	if (stat(from, &st) < 0)
		return 0; /* a guest without a disk (kernel + initrd) */
	*bytes += (uint64_t)st.st_size;
	if (rename(from, to) == 0)
		return 0;
	/* Another file system (a shared store): copy, keep the original
	 * until the checkpoint is complete. */
	r = errno == EXDEV ? copy_file(from, to, 0600) : -errno;
	if (r < 0)
		return err_set(err, errlen, r,
			       "cannot put the overlay into %s: %s", dir,
			       strerror(-r));
	return 0;
}

int ckpt_work_copy_output(int fd, const char *path, uint64_t max)
{
	char buf[64 * 1024];
	struct stat st;
	uint64_t off = 0;
	int out, r = 0;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > max)
		return -EINVAL;
	out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0)
		return -errno;
	while (off < (uint64_t)st.st_size && r == 0) {
		ssize_t n = pread(fd, buf, sizeof(buf), (off_t)off);
		if (n <= 0)
			break;
		r = write_full(out, buf, (size_t)n);
		off += (uint64_t)n;
	}
	close(out);
	return r;
}

static void notify(struct ckpt_work *w)
{
	/* A pipe of one byte never blocks; nothing to do if it failed but
	 * let the job's teardown join the thread. */
	if (write(w->pipe[1], "x", 1) != 1)
		w->res.r = w->res.r ? w->res.r : -EIO;
}

static void *save_thread(void *arg)
{
	struct ckpt_work *w = arg;
	struct ckpt_work_result *res = &w->res;
	char path[VMENV_MAX_PATH];
	uint64_t t0 = now_ms();

	if (str_printf(path, sizeof(path), "%s/%s", w->dir, CKPT_MEMORY) < 0)
		res->r = -ENAMETOOLONG;
	else if ((res->r = detach_all(w)) == 0 &&
		 (res->r = ckpt_save_domain(w->hv, w->hv_ctx, w->domain, path,
					    res->err, sizeof(res->err))) < 0)
		/* The guest goes on (libvirt resumed it): with its devices. */
		attach_all(w);
	if (res->r == 0) {
		res->guest_gone = true;
		res->bytes = file_size(w->dir, CKPT_MEMORY);
		res->r = ckpt_work_move_overlay(w->job_dir, w->dir, &res->bytes,
						res->err, sizeof(res->err));
	}
	/* Whenever QEMU is gone, even when the overlay could not be moved:
	 * the old file server leaves then, and is waited for (reaped). */
	if (res->guest_gone) {
		char e[sizeof(res->err)];
		int r =
		    jobfiles_after_save_run(&w->files, w->dir, e, sizeof(e));

		if (res->r == 0 && r < 0) {
			res->r = r;
			memcpy(res->err, e, sizeof(e));
		}
	}
	/* Best effort: without the copy, a truncated output file stays
	 * truncated (the job can ask for --open-mode=append). */
	if (res->r == 0 && w->out_fd >= 0 &&
	    str_printf(path, sizeof(path), "%s/%s", w->dir, CKPT_OUTPUT) == 0 &&
	    ckpt_work_copy_output(w->out_fd, path, CKPT_MAX_OUTPUT) < 0)
		unlink(path);
	res->ms = now_ms() - t0;
	if (res->r == 0)
		res->r = ckpt_store_commit(w->root, w->dir, &w->man, res->err,
					   sizeof(res->err));
	else
		rm_rf(w->dir);
	notify(w);
	return NULL;
}

static int put_back(const char *dir, const char *name, const char *to)
{
	char from[VMENV_MAX_PATH];

	if (str_printf(from, sizeof(from), "%s/%s", dir, name) < 0)
		return -ENAMETOOLONG;
	if (access(from, F_OK) < 0)
		return errno == ENOENT ? 1 : -errno;
	unlink(to);
	return copy_file(from, to, 0600);
}

static void *restore_thread(void *arg)
{
	struct ckpt_work *w = arg;
	struct ckpt_work_result *res = &w->res;
	struct ckpt_manifest m;
	char p[VMENV_MAX_PATH];
	uint64_t t0 = now_ms();
	int r;

	/* Verified here, not at the job's start: hashing gigabytes must not
	 * hold up the loop (or slurmd's prolog). */
	r = ckpt_store_verify(w->dir, w->src_job, w->uid, &m, res->err,
			      sizeof(res->err));
	ckpt_manifest_clear(&m);
	if (r == 0 &&
	    (r = str_printf(p, sizeof(p), "%s/disk/overlay.qcow2",
			    w->job_dir)) == 0 &&
	    (r = put_back(w->dir, CKPT_DISK, p)) < 0)
		err_set(res->err, sizeof(res->err), r,
			"cannot copy the overlay: %s", strerror(-r));
	if (r >= 0 && w->replay[0] &&
	    put_back(w->dir, CKPT_OUTPUT, w->replay) != 0)
		w->replay[0] = '\0';
	if (r >= 0) {
		if (str_printf(p, sizeof(p), "%s/%s", w->dir, CKPT_MEMORY) < 0)
			r = -ENAMETOOLONG;
		else
			r = w->hv->restore(w->hv_ctx, p, w->xml, w->limit_kib,
					   res->err, sizeof(res->err));
	}
	/* Fresh devices of this allocation; the resume hook (at CKPT_RESUME)
	 * brings them up in the guest. */
	res->restored = r >= 0;
	if (r >= 0)
		r = attach_all(w);
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
	*ret = w;
	return 0;
}

int ckpt_work_save(struct job *j, struct ckpt_work_save *ws,
		   ckpt_work_done_f done, struct ckpt_work **ret)
{
	struct ckpt_work *w = work_new(j, done);

	if (!w) {
		ckpt_manifest_clear(&ws->man);
		ckpt_work_devs_clear(&ws->devs);
		if (ws->out_fd >= 0)
			close(ws->out_fd);
		return -ENOMEM;
	}
	w->save = true;
	snprintf(w->domain, sizeof(w->domain), "%s", ws->domain);
	snprintf(w->root, sizeof(w->root), "%s", ws->root);
	snprintf(w->dir, sizeof(w->dir), "%s", ws->dir);
	snprintf(w->job_dir, sizeof(w->job_dir), "%s", ws->job_dir);
	w->out_fd = ws->out_fd;
	w->man = ws->man;
	memset(&ws->man, 0, sizeof(ws->man));
	w->devs = ws->devs;
	ws->devs.n = 0;
	w->files = ws->files;
	return work_start(w, save_thread, ret);
}

int ckpt_work_restore(struct job *j, struct ckpt_work_restore *wr,
		      ckpt_work_done_f done, struct ckpt_work **ret)
{
	struct ckpt_work *w = work_new(j, done);

	if (!w) {
		ckpt_work_devs_clear(&wr->devs);
		return -ENOMEM;
	}
	snprintf(w->domain, sizeof(w->domain), "%s", wr->domain);
	snprintf(w->dir, sizeof(w->dir), "%s", wr->dir);
	w->devs = wr->devs;
	wr->devs.n = 0;
	snprintf(w->job_dir, sizeof(w->job_dir), "%s", wr->job_dir);
	snprintf(w->replay, sizeof(w->replay), "%s", wr->replay);
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

void ckpt_work_cancel(struct ckpt_work *w)
{
	if (!w)
		return;
	pthread_join(w->t, NULL);
	work_free(w);
}
