/* SPDX-License-Identifier: MIT */
#include "jobimage.h"

#include "cleanup.h"
#include "image.h"
#include "jobrec.h"
#include "log.h"
#include "overlay.h"
#include "progress.h"
#include "userfd.h"
#include "vmmd.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum { F_DISK, F_KERNEL, F_INITRD, F_N };

static const char *const slot_names[F_N] = {"disk", "kernel", "initrd"};

struct jobimg;

struct slot {
	struct jobimg *ji;
	struct imgfetch_waiter *w;
	char hex[65];
	bool leased;
	uint64_t done; /* bytes of it in the cache (progress only) */
};

struct jobimg {
	struct job *j;
	const struct jobimg_sink *sink;
	struct catalog_image img;
	char ref[140]; /* "debian12:2025.1" or the user's path */
	char owner[160];
	struct slot slot[F_N];
	unsigned pending;
	bool has_kernel, has_disk, user_image;
	struct overlay_proc proc;
	struct loop_watch *proc_w;
	char out[1024];
	size_t outlen;
	char base[VMENV_MAX_PATH];
	char base_fmt[8];
	char overlay[VMENV_MAX_PATH];
	char kernel[VMENV_MAX_PATH];
	char initrd[VMENV_MAX_PATH];
	uint64_t t_start;
	/* What the job's waiting tasks are shown of the download. */
	struct progress_gate gate;
	bool shown;    /* a progress line went out: the ready one follows */
	bool rate_set; /* rate_base/rate_ms hold the first sample */
	uint64_t rate_base, rate_ms;
};

static struct jobimg *ji_new(struct job *j, const struct jobimg_sink *sink)
{
	struct jobimg *ji = calloc(1, sizeof(*ji));

	if (!ji)
		return NULL;
	ji->j = j;
	ji->sink = sink;
	ji->proc.out_fd = -1;
	for (int i = 0; i < F_N; i++)
		ji->slot[i].ji = ji;
	if (str_printf(ji->kernel, sizeof(ji->kernel), "%s/boot/vmlinuz",
		       j->dir) < 0 ||
	    str_printf(ji->initrd, sizeof(ji->initrd), "%s/boot/initrd.img",
		       j->dir) < 0 ||
	    str_printf(ji->overlay, sizeof(ji->overlay),
		       "%s/disk/overlay.qcow2", j->dir) < 0 ||
	    imgcache_owner(j->d->cfg.node_name, j->id, ji->owner,
			   sizeof(ji->owner)) < 0) {
		free(ji);
		return NULL;
	}
	j->img = ji;
	return ji;
}

/* --- progress, for the tasks waiting ------------------------------------ */

static const struct catalog_file *file_of(const struct jobimg *ji, int i);

/* The whole image (all its files), each counted up to its catalog size:
 * what the tasks are shown, nothing decides on it. */
static void fill_progress(const struct jobimg *ji, struct proto_progress *p,
			  bool ready, uint64_t now)
{
	*p = (struct proto_progress){.ready = ready,
				     .elapsed_ms = now - ji->t_start};
	snprintf(p->image, sizeof(p->image), "%s", ji->ref);
	for (int i = 0; i < F_N; i++) {
		const struct catalog_file *f = file_of(ji, i);

		if (!catalog_file_present(f))
			continue;
		p->total += f->size;
		p->done +=
		    ji->slot[i].done < f->size ? ji->slot[i].done : f->size;
	}
	/* The rate this job saw: a download it joined, or one resumed,
	 * had bytes before. */
	if (ji->rate_set && now > ji->rate_ms && p->done > ji->rate_base)
		p->bps = (p->done - ji->rate_base) * 1000 / (now - ji->rate_ms);
}

static void report(struct jobimg *ji)
{
	struct proto_progress p;
	uint64_t now = now_ms();

	fill_progress(ji, &p, false, now);
	if (!ji->rate_set) {
		ji->rate_set = true;
		ji->rate_base = p.done;
		ji->rate_ms = now;
	}
	if (!progress_gate_due(&ji->gate, now, p.done, p.total))
		return;
	ji->shown = true;
	ji->sink->progress(ji->j, &p);
}

static void slot_progress(void *data, uint64_t done, uint64_t total)
{
	struct slot *s = data;

	(void)total; /* the catalog's, which fill_progress takes itself */
	s->done = done;
	report(s->ji);
}

bool jobimg_progress(const struct job *j, struct proto_progress *ret)
{
	const struct jobimg *ji = j->img;

	/* Once all is in, the ready line comes from ready() itself. */
	if (!ji || !ji->shown || ji->pending == 0)
		return false;
	fill_progress(ji, ret, false, now_ms());
	return true;
}

/* --- the last steps: boot files, then ready ------------------------------ */

static void unlease(struct jobimg *ji, int i)
{
	struct slot *s = &ji->slot[i];
	int r;

	if (!s->leased)
		return;
	r = imgcache_unlease(images_cache(ji->j->d), s->hex, ji->owner);
	if (r < 0)
		log_warn("job %u: cannot drop the lease on %s: %s", ji->j->id,
			 s->hex, strerror(-r));
	s->leased = false;
}

static int copy_boot_file(struct jobimg *ji, int i, const char *dst, char *err,
			  size_t errlen)
{
	const struct catalog_file *f =
	    i == F_KERNEL ? &ji->img.kernel : &ji->img.initrd;
	char src[VMENV_MAX_PATH];
	int r;

	if (ji->img.legacy)
		snprintf(src, sizeof(src), "%s", f->source);
	else if ((r = imgcache_blob_path(images_cache(ji->j->d),
					 ji->slot[i].hex, src, sizeof(src))) <
		 0)
		return err_set(err, errlen, r, "bad cache path");
	r = copy_file(src, dst, 0644);
	if (r < 0)
		return err_set(err, errlen, r, "job %u: image '%s': %s %s: %s",
			       ji->j->id, ji->ref, slot_names[i], src,
			       strerror(-r));
	return 0;
}

static int copy_boot_files(struct jobimg *ji, char *err, size_t errlen)
{
	int r;

	if (!ji->has_kernel)
		return 0;
	if ((r = copy_boot_file(ji, F_KERNEL, ji->kernel, err, errlen)) < 0 ||
	    (r = copy_boot_file(ji, F_INITRD, ji->initrd, err, errlen)) < 0)
		return r;
	/* Copied: the cache may evict them from now on. */
	unlease(ji, F_KERNEL);
	unlease(ji, F_INITRD);
	return 0;
}

/* The job cannot have its image: the owner fails it with msg. */
static void fail(struct jobimg *ji, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail(struct jobimg *ji, const char *fmt, ...)
{
	char msg[PROTO_MAX_ERROR];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ji->sink->failed(ji->j, msg);
}

static void ready(struct jobimg *ji)
{
	char err[PROTO_MAX_ERROR];
	struct job *j = ji->j;

	if (copy_boot_files(ji, err, sizeof(err)) < 0) {
		ji->sink->failed(j, err);
		return;
	}
	log_info("job %u: image '%s' ready in %llu ms", j->id, ji->ref,
		 (unsigned long long)(now_ms() - ji->t_start));
	if (ji->shown) {
		struct proto_progress p;

		fill_progress(ji, &p, true, now_ms());
		ji->sink->progress(j, &p);
	}
	ji->sink->ready(j);
}

/* --- the overlay ------------------------------------------------------------ */

static void stop_proc(struct jobimg *ji, bool kill_it)
{
	char why[16];

	loop_del_fd(ji->proc_w);
	ji->proc_w = NULL;
	if (ji->proc.pid > 0) {
		if (kill_it)
			kill(ji->proc.pid, SIGKILL);
		overlay_reap(&ji->proc, NULL, why, sizeof(why));
	}
}

static void proc_io(void *data, uint32_t events)
{
	struct jobimg *ji = data;
	char err[PROTO_MAX_ERROR];
	ssize_t n;
	int r;

	(void)events;
	n = read(ji->proc.out_fd, ji->out + ji->outlen,
		 sizeof(ji->out) - 1 - ji->outlen);
	if (n > 0) {
		ji->outlen += (size_t)n;
		if (ji->outlen < sizeof(ji->out) - 1)
			return;
	} else if (n < 0 && errno == EINTR) {
		return;
	}
	/* EOF (or the output is full): qemu-img is done. */
	ji->out[ji->outlen] = '\0';
	loop_del_fd(ji->proc_w);
	ji->proc_w = NULL;
	r = overlay_reap(&ji->proc, ji->out, err, sizeof(err));
	if (r < 0) {
		fail(ji, "job %u: image '%s': cannot create the overlay %s: %s",
		     ji->j->id, ji->ref, ji->overlay, err);
		return;
	}
	ready(ji);
}

static int start_overlay(struct jobimg *ji, uid_t uid, gid_t gid, char *err,
			 size_t errlen)
{
	struct job *j = ji->j;
	int r = overlay_spawn(j->d->cfg.qemu_img, ji->base, ji->base_fmt,
			      ji->overlay, uid, gid, &ji->proc);

	if (r < 0)
		return err_set(err, errlen, r,
			       "job %u: image '%s': cannot run %s: %s", j->id,
			       ji->ref, j->d->cfg.qemu_img, strerror(-r));
	r = loop_add_fd(j->d->loop, ji->proc.out_fd, EPOLLIN, proc_io, ji,
			&ji->proc_w);
	if (r < 0) {
		stop_proc(ji, true);
		return err_set(err, errlen, r, "job %u: cannot watch qemu-img",
			       j->id);
	}
	return 0;
}

/* The shared base must stay root's and read-only for everyone else. If
 * something (a libvirt that relabelled it) changed that, say so loudly
 * and take it back: a user's guest could have written to it. */
static void guard_base(struct jobimg *ji)
{
	struct stat st;

	if (lstat(ji->base, &st) < 0 ||
	    (st.st_uid == 0 && st.st_gid == 0 && (st.st_mode & 07777) == 0644))
		return;
	log_err("job %u: cached base %s was owned by %u:%u mode %o; "
		"restoring root 0644 (run 'vmenvctl image verify')",
		ji->j->id, ji->base, (unsigned)st.st_uid, (unsigned)st.st_gid,
		(unsigned)(st.st_mode & 07777));
	if (chown(ji->base, 0, 0) < 0 || chmod(ji->base, 0644) < 0)
		log_err("job %u: %s: %m", ji->j->id, ji->base);
}

static void fetched(struct jobimg *ji)
{
	char err[PROTO_MAX_ERROR];
	int r;

	if (!ji->has_disk) {
		ready(ji);
		return;
	}
	r = imgcache_blob_path(images_cache(ji->j->d), ji->slot[F_DISK].hex,
			       ji->base, sizeof(ji->base));
	snprintf(ji->base_fmt, sizeof(ji->base_fmt), "%s",
		 catalog_format_name(ji->img.disk_format));
	if (r == 0 && geteuid() == 0)
		guard_base(ji);
	if (r < 0 || (r = start_overlay(ji, 0, 0, err, sizeof(err))) < 0)
		fail(ji, "%s", r == -EINVAL ? "bad cache path" : err);
}

/* --- fetching ---------------------------------------------------------------- */

static void file_done(void *data, int r, const char *err)
{
	struct slot *s = data;
	struct jobimg *ji = s->ji;

	s->w = NULL;
	if (r < 0) {
		fail(ji, "job %u: %s", ji->j->id, err);
		return;
	}
	s->leased = true;
	s->done = file_of(ji, (int)(s - ji->slot))->size;
	if (--ji->pending == 0)
		fetched(ji);
}

static const struct catalog_file *file_of(const struct jobimg *ji, int i)
{
	const struct catalog_file *f[F_N] = {&ji->img.disk, &ji->img.kernel,
					     &ji->img.initrd};
	return f[i];
}

static int request_files(struct jobimg *ji, char *err, size_t errlen)
{
	struct job *j = ji->j;
	int r;

	for (int i = 0; i < F_N; i++) {
		const struct catalog_file *f = file_of(ji, i);
		struct slot *s = &ji->slot[i];
		char what[200];

		if (!catalog_file_present(f))
			continue;
		snprintf(what, sizeof(what), "image '%s' %s", ji->ref,
			 slot_names[i]);
		snprintf(s->hex, sizeof(s->hex), "%s", f->sha256);
		/* Counted first: a callback never comes from inside the
		 * request, but an error below unwinds the count too. */
		ji->pending++;
		r = images_request(j->d, f, what, ji->owner, file_done, s,
				   &s->w);
		if (r < 0) {
			ji->pending--;
			return err_set(err, errlen, r,
				       "job %u: %s: cannot start the download: "
				       "%s",
				       j->id, what, strerror(-r));
		}
		images_on_progress(s->w, slot_progress);
	}
	return 1;
}

int jobimg_start(struct job *j, const struct catalog_image *img,
		 const struct jobimg_sink *sink, char *err, size_t errlen)
{
	struct jobimg *ji = ji_new(j, sink);

	if (!ji)
		return err_set(err, errlen, -ENOMEM, "job %u: out of memory",
			       j->id);
	ji->img = *img;
	ji->t_start = now_ms();
	catalog_image_ref(img, ji->ref, sizeof(ji->ref));
	ji->has_kernel = catalog_file_present(&img->kernel);
	ji->has_disk = catalog_file_present(&img->disk);
	if (img->legacy) {
		int r = copy_boot_files(ji, err, errlen);
		return r < 0 ? r : 0;
	}
	return request_files(ji, err, errlen);
}

/* --- a user's own image ------------------------------------------------------ */

/* qcow2 header fields that could make QEMU open another file: a backing
 * file, or an external data file (v3 incompatible feature bit 2). */
static int user_format(int fd, char *fmt, size_t fmtlen)
{
	unsigned char h[104] = {0};
	uint64_t backing, incompat = 0;
	uint32_t version;
	ssize_t n = pread(fd, h, sizeof(h), 0);

	if (n < 0)
		return -errno;
	if (n < 8 || memcmp(h, "QFI\xfb", 4) != 0) {
		snprintf(fmt, fmtlen, "raw");
		return 0;
	}
	if (n < 72)
		return -EINVAL;
	memcpy(&version, h + 4, 4);
	memcpy(&backing, h + 8, 8);
	if (be32toh(version) >= 3 && n >= 80) {
		memcpy(&incompat, h + 72, 8);
		incompat = be64toh(incompat);
	}
	if (be64toh(backing) != 0 || (incompat & 4))
		return -EPERM;
	snprintf(fmt, fmtlen, "qcow2");
	return 0;
}

static int open_path_fn(void *arg)
{
	const char *const *path = arg;
	int fd = open(*path, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static int check_user_image(struct jobimg *ji, const char *path, char *err,
			    size_t errlen)
{
	struct job *j = ji->j;
	struct stat st;
	int r;

	if (!valid_abs_path(path))
		return err_set(
		    err, errlen, -EINVAL,
		    "job %u: image path '%s' is not a clean absolute "
		    "path",
		    j->id, path);
	/* Resolved with the user's rights (no answer about directories the
	 * user may not search), O_PATH first: opening a device the user named
	 * could do something (a watchdog arms when opened); only a regular
	 * file of the user's is then opened for reading, the same inode
	 * through its fd. */
	struct userfd_ids ids = {.uid = j->uid,
				 .gid = j->gid,
				 .ngroups = j->ngroups,
				 .groups = j->groups};
	_cleanup_close_ int pfd = userfd_as_user(&ids, open_path_fn, &path);
	_cleanup_close_ int fd = -1;
	char self[64];

	if (pfd < 0)
		return err_set(err, errlen, pfd, "job %u: image '%s': %s",
			       j->id, path, strerror(-pfd));
	if (fstat(pfd, &st) < 0)
		return err_set(err, errlen, -errno, "job %u: image '%s': %m",
			       j->id, path);
	if (!S_ISREG(st.st_mode) || st.st_uid != j->uid)
		return err_set(
		    err, errlen, -EPERM,
		    "job %u: image '%s' must be a regular file owned "
		    "by the job's user (uid %u)",
		    j->id, path, (unsigned)j->uid);
	snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
	fd = open(self, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return err_set(err, errlen, -errno, "job %u: image '%s': %m",
			       j->id, path);
	r = user_format(fd, ji->base_fmt, sizeof(ji->base_fmt));
	if (r == -EPERM)
		return err_set(err, errlen, r,
			       "job %u: image '%s' refers to other files "
			       "(qcow2 backing or data file): not allowed",
			       j->id, path);
	if (r < 0)
		return err_set(err, errlen, r,
			       "job %u: image '%s': unreadable header", j->id,
			       path);
	return 0;
}

/* The overlay, created empty as root (O_EXCL, no link followed) and
 * given to the job's user by fd. */
static int precreate_overlay(struct jobimg *ji, char *err, size_t errlen)
{
	struct job *j = ji->j;
	_cleanup_close_ int fd =
	    open(ji->overlay,
		 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0 || fchown(fd, j->uid, j->gid) < 0)
		return err_set(err, errlen, -errno, "job %u: %s: %m", j->id,
			       ji->overlay);
	return 0;
}

int jobimg_start_user(struct job *j, const char *path,
		      const struct jobimg_sink *sink, char *err, size_t errlen)
{
	struct jobimg *ji = ji_new(j, sink);
	int r;

	if (!ji)
		return err_set(err, errlen, -ENOMEM, "job %u: out of memory",
			       j->id);
	ji->t_start = now_ms();
	ji->user_image = true;
	ji->has_disk = true;
	snprintf(ji->ref, sizeof(ji->ref), "%s", path);
	snprintf(ji->base, sizeof(ji->base), "%s", path);
	if ((r = check_user_image(ji, path, err, errlen)) < 0)
		return r;
	/* qemu-img runs as the user, so it reads only what the user can.
	 * It writes the overlay into a file of the user's that root made in
	 * root's disk/: the directory stays root's, so the overlay's name
	 * cannot become a link before libvirt labels it. */
	if ((r = precreate_overlay(ji, err, errlen)) < 0)
		return r;
	r = start_overlay(ji, j->uid, j->gid, err, errlen);
	return r < 0 ? r : 1;
}

/* --- the rest of the job's life ---------------------------------------------- */

void jobimg_abort(struct job *j)
{
	struct jobimg *ji = j->img;

	if (!ji)
		return;
	for (int i = 0; i < F_N; i++) {
		images_cancel(ji->slot[i].w);
		ji->slot[i].w = NULL;
	}
	ji->pending = 0;
	stop_proc(ji, true);
}

void jobimg_release(struct job *j)
{
	struct jobimg *ji = j->img;

	if (!ji)
		return;
	jobimg_abort(j);
	for (int i = 0; i < F_N; i++)
		unlease(ji, i);
	free(ji);
	j->img = NULL;
}

void jobimg_forget(struct job *j)
{
	jobimg_abort(j);
	free(j->img);
	j->img = NULL;
}

void jobimg_fill_spec(const struct job *j, struct dom_spec *s)
{
	const struct jobimg *ji = j->img;

	s->kernel = s->initrd = s->cmdline = NULL;
	s->disk_overlay = s->disk_base = s->disk_base_format = NULL;
	if (!ji)
		return;
	if (ji->has_kernel) {
		s->kernel = ji->kernel;
		s->initrd = ji->initrd;
		s->cmdline = ji->img.cmdline;
	}
	if (ji->has_disk) {
		s->disk_overlay = ji->overlay;
		s->disk_base = ji->base;
		s->disk_base_format = ji->base_fmt;
	}
}

const char *jobimg_base(const struct job *j)
{
	const struct jobimg *ji = j->img;

	return ji && ji->slot[F_DISK].leased ? ji->slot[F_DISK].hex : NULL;
}

int jobimg_boot_digest(const struct job *j, char *buf, size_t len)
{
	const struct jobimg *ji = j->img;

	if (!ji || !ji->has_kernel || ji->user_image)
		return -ENOENT;
	return catalog_boot_digest(&ji->img, buf, len);
}

int jobimg_boot_blobs(const struct job *j, char *kernel, char *initrd,
		      size_t len)
{
	const struct jobimg *ji = j->img;
	char digest[300];
	int r = jobimg_boot_digest(j, digest, sizeof(digest));

	if (r < 0)
		return r;
	r = imgcache_blob_path(images_cache(j->d), ji->img.kernel.sha256,
			       kernel, len);
	return r < 0 ? r
		     : imgcache_blob_path(images_cache(j->d),
					  ji->img.initrd.sha256, initrd, len);
}

int jobimg_restore(struct job *j, const char *hex)
{
	struct jobimg *ji;

	if (!catalog_valid_sha256(hex))
		return -EINVAL;
	/* Nothing is in flight for an adopted guest: no sink. */
	if (!j->img && !ji_new(j, NULL))
		return -ENOMEM;
	ji = j->img;
	snprintf(ji->slot[F_DISK].hex, sizeof(ji->slot[F_DISK].hex), "%s", hex);
	ji->slot[F_DISK].leased = true;
	return 0;
}
