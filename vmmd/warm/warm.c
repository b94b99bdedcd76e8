// SPDX-License-Identifier: MIT
/*
 * Warm start: templates on the node, and a job's guest from one (warm.h).
 */
#include "warm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "agentwire.h"
#include "catalogfile.h"
#include "cleanup.h"
#include "domxml.h"
#include "image.h"
#include "imgcache.h"
#include "jobimage.h"
#include "jobrec.h"
#include "log.h"
#include "overlay.h"
#include "rmtree.h"
#include "saveimg.h"
#include "util.h"
#include "vmmd.h"
#include "warmclaim.h"
#include "warmdisk.h"
#include "warmkey.h"
#include "warmmake.h"
#include "warmshape.h"
#include "worker.h"

#define SAVE "/save"
/* What the template's guest booted from (catalog_boot_digest): a template
 * whose image changed or left the cache is dropped. */
#define BOOT "boot"
/* The console of the last template guest that was not made. */
#define FAILED_CONSOLE ".failed-console.log"
/* Keys whose image's agent cannot be a template's: not tried again until
 * vmmd restarts (each try is a boot). */
#define MAX_REFUSED 16

struct warm {
	const struct warm_sink *sink;
	char dir[VMENV_MAX_PATH + 16]; /* <image_cache>/templates */
	/* This vmmd's own files there (the cache may be shared by every vmmd
	 * of a machine): .make-<node>, .job-<node>-<id>.save. */
	char mk[VMENV_MAX_PATH + 160];
	/* (the paths are at most VMENV_MAX_PATH: image_cache is checked) */
	char job_prefix[160];
	/* The template being made, at most one. */
	struct worker *maker;
	struct warm_make make;
	char making[WARM_KEY_LEN + 1];
	char making_boot[300]; /* what it boots from: its "boot" file */
	char refused[MAX_REFUSED][WARM_KEY_LEN + 1];
	unsigned nrefused;
	/* The last template not made, and why: what vmenvctl image warm
	 * reports. */
	char failed[WARM_KEY_LEN + 1];
	char failed_why[512];
};

struct warm_restore {
	const struct hv_ops *hv;
	void *hv_ctx;
	char tmpl[VMENV_MAX_PATH + 128];
	char img[VMENV_MAX_PATH + 256];
	/* An image with a disk: the template's overlay becomes the job's. */
	char tmpl_disk[VMENV_MAX_PATH + 128];
	char overlay[VMENV_MAX_PATH], base[VMENV_MAX_PATH], base_fmt[8];
	char qemu_img[VMENV_MAX_PATH];
	char *xml;
	char domain[160];
	uint64_t limit_kib;
	/* Devices a save cannot hold, plugged after the restore. */
	uint32_t ndevs;
	char *devs[DOM_MAX_HOSTDEVS + 2]; /* the NIC, hostdevs, stand-in */
	int r;
	char why[512];
	uint64_t copy_ms, restore_ms;
};

struct warm_job {
	char key[WARM_KEY_LEN + 1];
	char how[200];
	bool want_make; /* no template: make one when this guest is ready */
	char *make_xml; /* ... its domain */
	struct warm_src src; /* what its template boots from */
	bool warm;	     /* restored from a template */
	bool resumed;	     /* its RESUME went */
	char *cold_xml;	     /* the domain to boot if the restore fails */
	uint64_t limit_kib;
	struct worker *restorer;
	struct warm_restore rs;
};

static void fail(struct job *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(struct job *j, const char *fmt, ...)
{
	char msg[PROTO_MAX_ERROR];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	j->d->warm->sink->failed(j, msg);
}

/* --- the node's templates ----------------------------------------------- */

static void tmpl_path(const struct warm *w, const char *key, const char *tail,
		      char *buf, size_t len)
{
	str_printf(buf, len, "%s/%s%s", w->dir, key, tail);
}

static bool refused(const struct warm *w, const char *key)
{
	for (unsigned i = 0; i < w->nrefused && i < MAX_REFUSED; i++)
		if (strcmp(w->refused[i], key) == 0)
			return true;
	return false;
}

/* Leftovers of a vmmd that stopped while making or restoring. */
static void clean_dir(struct warm *w)
{
	DIR *dir = opendir(w->dir);
	struct dirent *e;
	size_t n = strlen(w->job_prefix);

	rm_rf(w->mk);
	while (dir && (e = readdir(dir)))
		if (strncmp(e->d_name, w->job_prefix, n) == 0)
			unlinkat(dirfd(dir), e->d_name, 0);
	if (dir)
		closedir(dir);
}

int warm_init(struct vmmd *d, const struct warm_sink *sink)
{
	struct warm *w = calloc(1, sizeof(*w));
	struct stat st;

	if (!w)
		return -ENOMEM;
	w->sink = sink;
	snprintf(w->dir, sizeof(w->dir), "%s/templates", d->cfg.image_cache);
	/* 0755: the template's QEMU (warm_user) reaches its files in .make. */
	if (mkdir(w->dir, 0755) < 0 && errno != EEXIST) {
		log_warn("warm start: cannot make %s: %s", w->dir,
			 strerror(errno));
	} else if (lstat(w->dir, &st) < 0 || !S_ISDIR(st.st_mode) ||
		   st.st_uid != 0 || (st.st_mode & 022)) {
		log_warn("warm start: %s is not a directory of root's only; "
			 "no templates",
			 w->dir);
		w->dir[0] = '\0';
	}
	snprintf(w->mk, sizeof(w->mk), "%s/.make-%s", w->dir, d->cfg.node_name);
	snprintf(w->job_prefix, sizeof(w->job_prefix), ".job-%s-",
		 d->cfg.node_name);
	if (w->dir[0]) {
		clean_dir(w);
		warm_claims_clean(w->dir, d->cfg.node_name);
	}
	d->warm = w;
	return 0;
}

void warm_fini(struct vmmd *d)
{
	struct warm *w = d->warm;
	char why[256];

	if (!w)
		return;
	if (w->maker) {
		/* Its guest goes first: the thread's waits then end. */
		__atomic_store_n(&w->make.stop, true, __ATOMIC_RELAXED);
		d->hv->destroy(d->hv_ctx, w->make.domain, why, sizeof(why));
		worker_cancel(w->maker);
		d->hv->destroy(d->hv_ctx, w->make.domain, why, sizeof(why));
		free(w->make.xml);
		warm_unclaim(w->dir, w->making);
	}
	free(w);
	d->warm = NULL;
}

static void template_domain(const struct vmmd *d, char *buf, size_t len)
{
	snprintf(buf, len, "vmenv-tmpl-%s", d->cfg.node_name);
}

bool warm_template_domain(struct vmmd *d, const char *name)
{
	char mine[200];

	template_domain(d, mine, sizeof(mine));
	return strcmp(name, mine) == 0;
}

bool warm_owns_domain(struct vmmd *d, const char *name)
{
	return d->warm && d->warm->maker && warm_template_domain(d, name);
}

/* Templates by age of last use (the save's mtime: each restore touches
 * it); the oldest go beyond the bound. */
struct tmpl_age {
	char key[WARM_KEY_LEN + 1];
	time_t used;
};

static int by_use(const void *a, const void *b)
{
	const struct tmpl_age *x = a, *y = b;

	return (x->used > y->used) - (x->used < y->used);
}

static void evict(struct vmmd *d, uint32_t keep)
{
	struct warm *w = d->warm;
	DIR *dir = opendir(w->dir);
	struct tmpl_age ages[256];
	size_t n = 0;
	struct dirent *e;

	while (dir && (e = readdir(dir)) && n < ARRAY_SIZE(ages)) {
		char p[VMENV_MAX_PATH + 80];
		struct stat st;

		if (strlen(e->d_name) != WARM_KEY_LEN)
			continue;
		/* One without its save is being made (by another node's
		 * vmmd, on a shared store): not this one's to count. */
		tmpl_path(w, e->d_name, SAVE, p, sizeof(p));
		if (stat(p, &st) < 0)
			continue;
		snprintf(ages[n].key, sizeof(ages[n].key), "%s", e->d_name);
		ages[n].used = st.st_mtime;
		n++;
	}
	if (dir)
		closedir(dir);
	qsort(ages, n, sizeof(ages[0]), by_use);
	for (size_t i = 0; i + keep < n; i++) {
		char p[VMENV_MAX_PATH + 80];

		tmpl_path(w, ages[i].key, "", p, sizeof(p));
		log_info("warm start: template %.12s removed (least recently "
			 "used beyond warm_templates_max %u)",
			 ages[i].key, keep);
		rm_rf(p);
	}
}

/* Whether every file of boot ("kernel H initrd H[ disk H]") is in the
 * node's image cache: the cache's eviction takes the image's templates
 * with it. */
static bool boot_cached(struct vmmd *d, const char *boot)
{
	char tok[8][80], p[VMENV_MAX_PATH];
	struct stat st;
	int n = sscanf(boot, "%79s %79s %79s %79s %79s %79s %79s", tok[0],
		       tok[1], tok[2], tok[3], tok[4], tok[5], tok[6]);

	if (n < 4 || n % 2)
		return false;
	for (int i = 1; i < n; i += 2)
		if (imgcache_blob_path(images_cache(d), tok[i], p, sizeof(p)) <
			0 ||
		    lstat(p, &st) < 0)
			return false;
	return true;
}

/* Why template key is not to be kept, or NULL. */
static const char *stale(struct vmmd *d, const char *key)
{
	_cleanup_free_ char *boot = NULL;
	char p[VMENV_MAX_PATH + 80];

	struct stat st;

	/* One being made (here or by another node's vmmd on a shared cache)
	 * has no save yet. */
	tmpl_path(d->warm, key, SAVE, p, sizeof(p));
	if (lstat(p, &st) < 0)
		return NULL;
	tmpl_path(d->warm, key, "/" BOOT, p, sizeof(p));
	if (read_plain_file_limited(p, 299, &boot, NULL) < 0)
		return "it does not say what it boots from";
	/* An empty catalog is one that could not be read: keep them. */
	if (d->catalog.n && !warm_boot_listed(&d->catalog, boot))
		return "its image is no longer in the catalog";
	if (!boot_cached(d, boot))
		return "its image's files left the cache";
	return NULL;
}

static void drop_stale(struct vmmd *d)
{
	struct warm *w = d->warm;
	DIR *dir = opendir(w->dir);
	struct dirent *e;
	char err[256];

	(void)catalogfile_refresh(d, err, sizeof(err));
	while (dir && (e = readdir(dir))) {
		char p[VMENV_MAX_PATH + 80];
		const char *why;

		if (strlen(e->d_name) != WARM_KEY_LEN ||
		    strcmp(e->d_name, w->making) == 0 ||
		    !(why = stale(d, e->d_name)))
			continue;
		log_info("warm start: template %.12s removed: %s", e->d_name,
			 why);
		tmpl_path(w, e->d_name, "", p, sizeof(p));
		rm_rf(p);
	}
	if (dir)
		closedir(dir);
}

void warm_sweep(struct vmmd *d)
{
	struct warm *w = d->warm;

	if (!w || !w->dir[0])
		return;
	drop_stale(d);
	evict(d, d->cfg.warm_templates_max);
}

/* --- making one --------------------------------------------------------- */

/* The template guest's console (its kernel's and agent's lines: how it
 * booted, the free memory zeroed) stays beside its save for the admin;
 * it goes with the template. The last one that failed is kept too (one
 * file, replaced): why it did not answer is in it. */
static void keep_console(const struct warm *w, const char *mk, bool ok)
{
	char from[VMENV_MAX_PATH + 200], to[VMENV_MAX_PATH + 80];

	snprintf(from, sizeof(from), "%s/console.log", mk);
	if (ok)
		tmpl_path(w, w->making, "/console.log", to, sizeof(to));
	else
		str_printf(to, sizeof(to), "%s/" FAILED_CONSOLE, w->dir);
	if (rename(from, to) < 0 && errno != ENOENT)
		log_warn("warm start: template %.12s: its console log: %s",
			 w->making, strerror(errno));
}

/* A template directory begun but not made (no save in it: another
 * node's vmmd may have made it meanwhile) goes. */
static void drop_unmade(struct warm *w)
{
	char p[VMENV_MAX_PATH + 80];
	struct stat st;

	tmpl_path(w, w->making, SAVE, p, sizeof(p));
	if (lstat(p, &st) == 0)
		return;
	tmpl_path(w, w->making, "", p, sizeof(p));
	rm_rf(p);
}

static void made(void *data)
{
	struct vmmd *d = data;
	struct warm *w = d->warm;
	struct warm_make *m = &w->make;
	const char *mk = w->mk;
	char from[VMENV_MAX_PATH + 200], to[VMENV_MAX_PATH + 80];
	struct stat st;

	w->maker = NULL;
	snprintf(from, sizeof(from), "%s" SAVE, mk);
	tmpl_path(w, w->making, "", to, sizeof(to));
	if (m->r == 0 && (mkdir(to, 0700) < 0 && errno != EEXIST))
		m->r = -errno;
	if (m->r == 0 && m->disk[0]) {
		tmpl_path(w, w->making, "/" WARM_DISK_NAME, to, sizeof(to));
		m->r = warm_disk_keep(m->disk, to, m->base, m->base_fmt, m->why,
				      sizeof(m->why));
	}
	tmpl_path(w, w->making, "/" BOOT, to, sizeof(to));
	if (m->r == 0)
		m->r = write_file_atomic(to, w->making_boot,
					 strlen(w->making_boot), 0600);
	/* The save last: a template is there once its save is. */
	tmpl_path(w, w->making, SAVE, to, sizeof(to));
	if (m->r == 0 && rename(from, to) < 0)
		m->r = -errno;
	if (m->r == 0 && stat(to, &st) == 0) {
		if (strcmp(w->failed, w->making) == 0)
			w->failed[0] = '\0';
		log_info("warm start: template %.12s made: boot %llu ms, save "
			 "%llu ms, %llu MiB",
			 w->making, (unsigned long long)m->boot_ms,
			 (unsigned long long)m->save_ms,
			 (unsigned long long)st.st_size >> 20);
		keep_console(w, mk, true);
		evict(d, d->cfg.warm_templates_max);
	} else {
		drop_unmade(w);
		keep_console(w, mk, false);
		log_warn("warm start: template %.12s not made: %s", w->making,
			 m->why[0] ? m->why : strerror(-m->r));
		snprintf(w->failed, sizeof(w->failed), "%s", w->making);
		snprintf(w->failed_why, sizeof(w->failed_why), "%s",
			 m->why[0] ? m->why : strerror(-m->r));
		if (m->not_warm && w->nrefused < MAX_REFUSED)
			snprintf(w->refused[w->nrefused++], WARM_KEY_LEN + 1,
				 "%s", w->making);
	}
	rm_rf(mk);
	free(m->xml);
	m->xml = NULL;
	warm_unclaim(w->dir, w->making);
	w->making[0] = '\0';
}

/* warm_user: never root, never a uid that could be a job's (a job's
 * QEMU runs as its user: that user could then reach the template's). */
static int template_user(const struct vmmd *d, uint32_t *uid, uint32_t *gid)
{
	struct passwd *pw = getpwnam(d->cfg.warm_user);

	if (!pw || pw->pw_uid == 0)
		return -ESRCH;
	*uid = (uint32_t)pw->pw_uid;
	*gid = (uint32_t)pw->pw_gid;
	return 0;
}

/* The template's files: the boot files copied from the cache, an empty
 * share (no SETUP mounts it). */
static int make_files(const char *mk, const struct warm_src *src)
{
	char p[VMENV_MAX_PATH + 200];
	int r;

	rm_rf(mk);
	if (mkdir(mk, 0755) < 0)
		return -errno;
	snprintf(p, sizeof(p), "%s/share", mk);
	if (mkdir(p, 0755) < 0)
		return -errno;
	snprintf(p, sizeof(p), "%s/kernel", mk);
	if ((r = copy_file(src->kernel, p, 0644)) < 0)
		return r;
	snprintf(p, sizeof(p), "%s/initrd", mk);
	return copy_file(src->initrd, p, 0644);
}

/* A claim older than this is its dead maker's: the boot's bound, the
 * save, and a margin. */
static unsigned claim_stale_s(const struct vmmd *d)
{
	return 2 * d->cfg.boot_timeout_s + 600;
}

/* Starts making template key from its guest's domain xml (taken) and the
 * cache's boot files; what says for whom, in the log. */
static int make_begin(struct vmmd *d, const char *key,
		      const struct warm_src *src, char *xml, const char *what)
{
	struct warm *w = d->warm;
	struct warm_make *m = &w->make;
	const char *mk = w->mk;
	char holder[128], p[VMENV_MAX_PATH + 80];
	int r;

	/* Another node's vmmd on a shared store may be making it. */
	r = warm_claim(w->dir, key, d->cfg.node_name, claim_stale_s(d), holder,
		       sizeof(holder));
	if (r < 0) {
		if (r == -EBUSY)
			log_info("%s: warm start: template %.12s is being made "
				 "by node %s",
				 what, key, holder);
		else
			log_warn("warm start: cannot claim template %.12s: %s",
				 key, strerror(-r));
		free(xml);
		return r;
	}
	/* Made meanwhile (by another node, while this job booted). */
	tmpl_path(w, key, SAVE, p, sizeof(p));
	if (access(p, F_OK) == 0) {
		warm_unclaim(w->dir, key);
		free(xml);
		return -EEXIST;
	}
	if ((r = make_files(mk, src)) < 0) {
		log_warn("warm start: cannot prepare a template in %s: %s", mk,
			 strerror(-r));
		rm_rf(mk);
		free(xml);
		warm_unclaim(w->dir, key);
		return r;
	}
	memset(m, 0, sizeof(*m));
	m->hv = d->hv;
	m->hv_ctx = d->hv_ctx;
	template_domain(d, m->domain, sizeof(m->domain));
	m->xml = xml;
	snprintf(m->agent, sizeof(m->agent), "%s/agent.sock", mk);
	snprintf(m->save, sizeof(m->save), "%s" SAVE, mk);
	m->timeout_ms = d->cfg.boot_timeout_s * 1000;
	if (src->base[0]) {
		snprintf(m->disk, sizeof(m->disk), "%s/" WARM_DISK_NAME, mk);
		snprintf(m->base, sizeof(m->base), "%s", src->base);
		snprintf(m->base_fmt, sizeof(m->base_fmt), "%s", src->base_fmt);
		snprintf(m->qemu_img, sizeof(m->qemu_img), "%s",
			 d->cfg.qemu_img);
	}
	snprintf(w->making, sizeof(w->making), "%s", key);
	snprintf(w->making_boot, sizeof(w->making_boot), "%s", src->boot);
	if ((r = worker_start(d->loop, warm_make_main, m, made, d, &w->maker)) <
	    0) {
		log_warn("warm start: cannot start making a template: %s",
			 strerror(-r));
		free(m->xml);
		m->xml = NULL;
		w->making[0] = '\0';
		rm_rf(mk);
		warm_unclaim(w->dir, key);
		return r;
	}
	log_info("%s: warm start: making template %.12s", what, key);
	return 0;
}

static void make_start(struct job *j)
{
	struct warm_job *wj = j->warm;
	char what[VMENV_MAX_IMAGE_NAME + 64];

	snprintf(what, sizeof(what), "job %u (image %s)", j->id, j->image);
	make_begin(j->d, wj->key, &wj->src, TAKE_PTR(wj->make_xml), what);
}

void warm_job_ready(struct job *j)
{
	struct warm_job *wj = j->warm;
	struct warm *w = j->d->warm;

	if (!wj || !wj->want_make || !w || w->maker ||
	    j->d->cfg.warm_templates_max == 0)
		return;
	wj->want_make = false;
	make_start(j);
}

/* The template guest's domain for a guest of spec s, in the maker's
 * directory, run by warm_user. */
static int template_xml(struct vmmd *d, const struct dom_spec *s, char **ret)
{
	_cleanup_free_ struct warm_paths *p = calloc(1, sizeof(*p));
	_cleanup_free_ struct warm_norm *n = calloc(1, sizeof(*n));
	char name[200];
	uint32_t uid, gid;

	if (!p || !n)
		return -ENOMEM;
	if (template_user(d, &uid, &gid) < 0)
		return -ESRCH;
	warm_paths_in(p, d->warm->mk);
	template_domain(d, name, sizeof(name));
	warm_normalize(s, name, uid, gid, p, n);
	n->s.node = d->cfg.node_name;
	return domxml_build(&n->s, ret);
}

/* The template guest's domain for a job of spec s (while its files exist:
 * make_start copies them). */
static int make_xml(struct job *j, const struct dom_spec *s)
{
	struct warm_job *wj = j->warm;

	/* The cache's blobs, not the job's copies: those are the job's
	 * user's while its guest runs, and the template is every job's. */
	if (jobimg_boot_blobs(j, wj->src.kernel, wj->src.initrd,
			      sizeof(wj->src.kernel)) < 0)
		return -ENOENT;
	if (s->disk_overlay &&
	    (str_printf(wj->src.base, sizeof(wj->src.base), "%s",
			s->disk_base) < 0 ||
	     str_printf(wj->src.base_fmt, sizeof(wj->src.base_fmt), "%s",
			s->disk_base_format) < 0))
		return -ENAMETOOLONG;
	return template_xml(j->d, s, &wj->make_xml);
}

/* --- one made ahead (vmenvctl image warm) ------------------------------- */

/* Where template key stands: "made", "making", "failed" (why), "none". */
static const char *tmpl_state(const struct warm *w, const char *key,
			      uint64_t *bytes, const char **why)
{
	char p[VMENV_MAX_PATH + 80], holder[128];
	struct stat st;

	*bytes = 0;
	*why = "";
	tmpl_path(w, key, SAVE, p, sizeof(p));
	if (stat(p, &st) == 0) {
		*bytes = (uint64_t)st.st_size;
		return "made";
	}
	if (strcmp(w->making, key) == 0 ||
	    warm_claim_holder(w->dir, key, holder, sizeof(holder)) == 0)
		return "making";
	if (refused(w, key)) {
		*why = "the image's agent cannot be a template's";
		return "failed";
	}
	if (strcmp(w->failed, key) == 0) {
		*why = w->failed_why;
		return "failed";
	}
	return "none";
}

static int ahead_check(struct vmmd *d, char *err, size_t errlen)
{
	if (strcmp(d->cfg.warm_start, "yes") != 0)
		return err_set(err, errlen, -EPERM,
			       "warm_start = no on node %s", d->cfg.node_name);
	if (!d->warm || !d->warm->dir[0])
		return err_set(err, errlen, -ENOENT,
			       "node %s has no template store",
			       d->cfg.node_name);
	if (d->cfg.warm_templates_max == 0)
		return err_set(err, errlen, -EPERM,
			       "warm_templates_max = 0 on node %s",
			       d->cfg.node_name);
	return 0;
}

/* The reply: "STATE KEY MIB REF VCPUS MEM FILES[: WHY]". */
static int ahead_text(const struct warm_shape_spec *sp, const char *key,
		      const char *state, uint64_t bytes, const char *why,
		      char **text)
{
	return asprintf(text, "%s %s %llu %s %u %u %s%s%s\n", state, key,
			(unsigned long long)(bytes >> 20), sp->ref, sp->s.vcpus,
			sp->s.mem_mib, sp->files, why[0] ? ": " : "", why) < 0
		   ? -ENOMEM
		   : 0;
}

int warm_ahead(struct vmmd *d, const struct warm_shape *sh, bool query,
	       char **text, char *err, size_t errlen)
{
	_cleanup_free_ struct warm_shape_spec *sp = calloc(1, sizeof(*sp));
	struct warm *w = d->warm;
	char key[WARM_KEY_LEN + 1], what[VMENV_MAX_IMAGE_NAME + 64];
	const char *state, *why;
	char *xml = NULL;
	uint64_t bytes;
	int r;

	*text = NULL;
	if (!sp)
		return -ENOMEM;
	if ((r = ahead_check(d, err, errlen)) < 0 ||
	    (r = warm_shape_spec(d, sh, sp, err, errlen)) < 0)
		return r;
	if (!warm_eligible(&sp->s, err, errlen))
		return -EINVAL;
	if ((r = warm_key(&sp->s, sp->src.boot, key)) < 0)
		return err_set(err, errlen, r, "no template key: %s",
			       strerror(-r));
	state = tmpl_state(w, key, &bytes, &why);
	if (query || strcmp(state, "made") == 0 || strcmp(state, "making") == 0)
		return ahead_text(sp, key, state, bytes, why, text);
	if (w->maker)
		return err_set(err, errlen, -EBUSY,
			       "node %s is making template %.12s; ask again "
			       "when it is made",
			       d->cfg.node_name, w->making);
	if ((r = template_xml(d, &sp->s, &xml)) < 0)
		return err_set(err, errlen, r, "%s",
			       r == -ESRCH ? "no warm_user on this node"
					   : "no template XML");
	/* A new try: what failed before is not this one's answer. */
	w->failed[0] = '\0';
	snprintf(what, sizeof(what), "vmenvctl image warm %s", sp->ref);
	/* Another node makes it, or has made it since. */
	if ((r = make_begin(d, key, &sp->src, xml, what)) == -EBUSY ||
	    r == -EEXIST) {
		state = tmpl_state(w, key, &bytes, &why);
		return ahead_text(sp, key, state, bytes, why, text);
	}
	if (r < 0)
		return err_set(err, errlen, r, "cannot make the template: %s",
			       strerror(-r));
	return ahead_text(sp, key, "making", 0, "", text);
}

/* --- a job from one ----------------------------------------------------- */

/* The guest's devices that no template holds, as a checkpoint's restore
 * plugs them; one that fails takes the guest down (it boots instead). */
static void plug(struct warm_restore *rs)
{
	char why[256];

	for (uint32_t i = 0; i < rs->ndevs && rs->r == 0; i++) {
		rs->r = rs->hv->attach(rs->hv_ctx, rs->domain, rs->devs[i],
				       rs->why, sizeof(rs->why));
		if (rs->r < 0)
			rs->hv->destroy(rs->hv_ctx, rs->domain, why,
					sizeof(why));
	}
}

static void devs_free(struct warm_restore *rs)
{
	for (uint32_t i = 0; i < rs->ndevs; i++)
		free(rs->devs[i]);
	rs->ndevs = 0;
}

/* The guest boots after a failed restore (restored): from an empty
 * overlay, as any booted guest, not from the template's disk. */
static void fresh_overlay(struct warm_restore *rs)
{
	char why[256];

	if (!rs->overlay[0])
		return;
	if (unlink(rs->overlay) < 0 && errno != ENOENT)
		snprintf(why, sizeof(why), "%s", strerror(errno));
	else if (overlay_create(rs->qemu_img, rs->base, rs->base_fmt,
				rs->overlay, why, sizeof(why)) == 0)
		return;
	/* The boot then fails on it, naming the file. */
	log_warn("%s: cannot make it again: %s", rs->overlay, why);
}

static void *restore_main(void *arg)
{
	struct warm_restore *rs = arg;
	_cleanup_close_ int in = -1, out = -1;
	struct saveimg si;
	uint64_t t0 = now_ms();

	rs->r = -errno;
	in = open(rs->tmpl, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0) {
		rs->r = -errno;
		snprintf(rs->why, sizeof(rs->why), "template: %s",
			 strerror(errno));
		return NULL;
	}
	if ((rs->r = saveimg_read(in, &si, rs->why, sizeof(rs->why))) < 0)
		return NULL;
	if (rs->overlay[0] &&
	    (rs->r = warm_disk_copy(rs->tmpl_disk, rs->overlay, rs->base,
				    rs->base_fmt, rs->why, sizeof(rs->why))) <
		0) {
		saveimg_clear(&si);
		fresh_overlay(rs);
		return NULL;
	}
	out = open(rs->img,
		   O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0)
		rs->r = -errno;
	else
		rs->r = saveimg_write(in, &si, rs->xml, out, rs->why,
				      sizeof(rs->why));
	saveimg_clear(&si);
	if (out >= 0)
		close(TAKE_FD(out));
	/* Used now: the least recently used template goes first. */
	futimens(in, NULL);
	rs->copy_ms = now_ms() - t0;
	t0 = now_ms();
	if (rs->r == 0)
		rs->r = (rs->hv->restore_cached ? rs->hv->restore_cached
						: rs->hv->restore)(
		    rs->hv_ctx, rs->img, rs->xml, rs->limit_kib, rs->why,
		    sizeof(rs->why));
	rs->restore_ms = now_ms() - t0;
	unlink(rs->img);
	if (rs->r == 0)
		plug(rs);
	if (rs->r < 0)
		fresh_overlay(rs);
	return NULL;
}

static void drop_template(struct warm *w, const char *key)
{
	char p[VMENV_MAX_PATH + 80];

	if (str_printf(p, sizeof(p), "%s/%s", w->dir, key) == 0)
		rm_rf(p);
}

static void restored(void *data)
{
	struct job *j = data;
	struct warm_job *wj = j->warm;
	char why[512] = "";
	int r;

	wj->restorer = NULL;
	free(wj->rs.xml);
	wj->rs.xml = NULL;
	devs_free(&wj->rs);
	if (wj->rs.r == 0) {
		log_info("job %u: warm start from template %.12s: image %llu "
			 "ms, restore %llu ms",
			 j->id, wj->key, (unsigned long long)wj->rs.copy_ms,
			 (unsigned long long)wj->rs.restore_ms);
		j->d->warm->sink->domain_up(j);
		agent_hello_now(j);
		return;
	}
	/* The guest boots after all: the job loses only the time. The
	 * template goes (damaged, or made by another QEMU or libvirt); this
	 * guest's shape gets a new one once it is up. */
	log_warn("job %u: warm start from template %.12s failed (%s); "
		 "booting, and the template is made again",
		 j->id, wj->key, wj->rs.why);
	drop_template(j->d->warm, wj->key);
	wj->warm = false;
	wj->want_make = true;
	snprintf(wj->how, sizeof(wj->how),
		 "booted: the template's restore "
		 "failed");
	r = wj->limit_kib
		? j->d->hv->create_limited(j->d->hv_ctx, wj->cold_xml,
					   wj->limit_kib, why, sizeof(why))
		: j->d->hv->create(j->d->hv_ctx, wj->cold_xml, why,
				   sizeof(why));
	if (r < 0)
		fail(j, "job %u: %s (see vmenvctl console %u)", j->id, why,
		     j->id);
	else
		j->d->warm->sink->domain_up(j);
}

/* The job's domain without the devices a template cannot hold, and
 * those devices on their own. */
static int restore_xml(struct warm_restore *rs, const struct dom_spec *s,
		       char **ret)
{
	struct dom_spec sw = *s;
	struct dom_placement pw;
	int r;

	*ret = NULL;
	sw.standin = false;
	sw.net_bridge = NULL;
	if (s->place) {
		pw = *s->place;
		pw.ndevs = 0;
		/* A limit set on the paused guest is not in its XML. */
		if (rs->limit_kib)
			pw.hard_limit_mib = 0;
		sw.place = &pw;
	}
	if ((r = domxml_build(&sw, ret)) < 0)
		return r;
	/* The NIC first: the agent's SETUP configures it (and waits for
	 * it), and a passed-through device must not take its name. */
	if (s->net_bridge && (r = domxml_net(s, &rs->devs[rs->ndevs++])) < 0)
		return r;
	for (uint32_t i = 0; s->place && i < s->place->ndevs; i++)
		if ((r = domxml_hostdev(&s->place->dev[i],
					&rs->devs[rs->ndevs++])) < 0)
			return r;
	if (s->standin && !(rs->devs[rs->ndevs++] = strdup(DOMXML_STANDIN_XML)))
		return -ENOMEM;
	return 0;
}

static int restore_start(struct job *j, const struct dom_spec *s,
			 const char *xml, uint64_t limit_kib)
{
	struct warm_job *wj = j->warm;
	struct warm *w = j->d->warm;
	struct warm_restore *rs = &wj->rs;
	_cleanup_free_ char *bare = NULL;
	char uuid[37];
	int r;

	rs->limit_kib = wj->limit_kib = limit_kib;
	if ((r = restore_xml(rs, s, &bare)) < 0 ||
	    (r = saveimg_new_uuid(uuid)) < 0 ||
	    (r = saveimg_xml_with_uuid(bare, uuid, &rs->xml)) < 0) {
		devs_free(rs);
		return r;
	}
	snprintf(rs->domain, sizeof(rs->domain), "%s", s->name);
	if (!(wj->cold_xml = strdup(xml)))
		return -ENOMEM;
	rs->hv = j->d->hv;
	rs->hv_ctx = j->d->hv_ctx;
	tmpl_path(w, wj->key, SAVE, rs->tmpl, sizeof(rs->tmpl));
	if (s->disk_overlay) {
		tmpl_path(w, wj->key, "/" WARM_DISK_NAME, rs->tmpl_disk,
			  sizeof(rs->tmpl_disk));
		snprintf(rs->overlay, sizeof(rs->overlay), "%s",
			 s->disk_overlay);
		snprintf(rs->base, sizeof(rs->base), "%s", wj->src.base);
		snprintf(rs->base_fmt, sizeof(rs->base_fmt), "%s",
			 wj->src.base_fmt);
		snprintf(rs->qemu_img, sizeof(rs->qemu_img), "%s",
			 j->d->cfg.qemu_img);
	}
	snprintf(rs->img, sizeof(rs->img), "%s/%s%u.save", w->dir,
		 w->job_prefix, j->id);
	return worker_start(j->d->loop, restore_main, rs, restored, j,
			    &wj->restorer);
}

/* Why a job that asked cannot start warm here, or NULL. */
static const char *why_cold(struct job *j, const struct dom_spec *s, char *boot,
			    size_t bootlen, char *buf, size_t len)
{
	struct warm *w = j->d->warm;

	if (strcmp(j->d->cfg.warm_start, "yes") != 0)
		return "warm_start = no on this node";
	if (!w || !w->dir[0])
		return "this node has no template store";
	if (!warm_eligible(s, buf, len))
		return buf;
	if (jobimg_boot_digest(j, boot, bootlen) < 0)
		return "the image has no boot files with digests";
	if (warm_key(s, boot, j->warm->key) < 0)
		return "no template key";
	if (refused(w, j->warm->key))
		return "the image's agent cannot be a template's";
	return NULL;
}

int warm_job_start(struct job *j, const struct dom_spec *s, const char *xml,
		   uint64_t hard_limit_kib)
{
	char boot[300], buf[160], p[VMENV_MAX_PATH + 80];
	const char *no;
	struct warm_job *wj;
	int r;

	if (!j->spec.v.warm_start || j->warm)
		return 0;
	if (!(wj = j->warm = calloc(1, sizeof(*wj))))
		return 0;
	if ((no = why_cold(j, s, boot, sizeof(boot), buf, sizeof(buf)))) {
		snprintf(wj->how, sizeof(wj->how), "booted: %s", no);
		return 0;
	}
	snprintf(wj->src.boot, sizeof(wj->src.boot), "%s", boot);
	/* Also for a template that exists: if its restore fails, the next
	 * one is made from this job's guest (warm_job_ready). */
	if ((r = make_xml(j, s)) < 0) {
		snprintf(wj->how, sizeof(wj->how), "booted: %s",
			 r == -ESRCH ? "no warm_user on this node"
				     : "no template XML");
		return 0;
	}
	tmpl_path(j->d->warm, wj->key, SAVE, p, sizeof(p));
	if (access(p, F_OK) < 0) {
		snprintf(wj->how, sizeof(wj->how),
			 "booted: no template yet (one is made from this "
			 "image)");
		wj->want_make = strcmp(j->d->warm->making, wj->key) != 0;
		return 0;
	}
	if ((r = restore_start(j, s, xml, hard_limit_kib)) < 0) {
		snprintf(wj->how, sizeof(wj->how), "booted: %s", strerror(-r));
		return 0;
	}
	wj->warm = true;
	snprintf(wj->how, sizeof(wj->how), "warm");
	return 1;
}

/* --- the guest becomes the job's ------------------------------------------ */

bool warm_job_hello(struct job *j, uint32_t flags)
{
	struct warm_job *wj = j->warm;
	struct aw_buf b = {0};
	uint8_t seed[AW_SEED_LEN];
	int r;

	if (!wj || !wj->warm || wj->resumed)
		return false;
	/* A guest that is not the template's held one is not ours to set up:
	 * the job fails rather than trust it. */
	if (!(flags & AW_HELLO_CKPT_HELD) || (flags & AW_HELLO_SETUP_DONE)) {
		fail(j,
		     "job %u: the guest restored from template %.12s "
		     "was not held",
		     j->id, wj->key);
		return true;
	}
	wj->resumed = true;
	r = getrandom(seed, sizeof(seed), 0) == (ssize_t)sizeof(seed) ? 0
								      : -EIO;
	r = r ?: aw_put_i64(&b, (int64_t)time(NULL));
	r = r ?: aw_put_u32(&b, AW_CKPT_SEED);
	r = r ?: aw_put_bytes(&b, seed, sizeof(seed));
	r = r ?: agent_send(j, AW_CKPT_RESUME, 0, b.data, b.len);
	explicit_bzero(seed, sizeof(seed));
	if (b.data)
		explicit_bzero(b.data, b.len);
	aw_buf_free(&b);
	if (r < 0)
		fail(j, "job %u: cannot resume its warm-started guest: %s",
		     j->id, strerror(-r));
	return true;
}

int warm_job_ckpt_frame(struct job *j, uint8_t type, const uint8_t *p, size_t n)
{
	struct warm_job *wj = j->warm;
	struct aw_reader r;
	uint32_t what;
	int err;

	if (!wj || !wj->warm || !wj->resumed || j->state != JOB_BOOTING)
		return 0;
	aw_reader_init(&r, p, n);
	what = aw_get_u32(&r);
	if (r.err || what != AW_CKPT_RESUME)
		return -EPROTO;
	if (type != AW_CKPT_OK) {
		fail(j, "job %u: the warm-started guest refused to resume",
		     j->id);
		return 1;
	}
	if ((err = agent_setup(j)) < 0 && err != -ECANCELED)
		fail(j, "job %u: cannot set up the warm-started guest: %s",
		     j->id, strerror(-err));
	return 1;
}

void warm_job_free(struct job *j)
{
	struct warm_job *wj = j->warm;

	if (!wj)
		return;
	if (wj->restorer) {
		worker_cancel(wj->restorer);
		/* The restore may have started the guest after the job's
		 * teardown looked: the guest step after this one destroys
		 * it by name. */
	}
	free(wj->rs.xml);
	devs_free(&wj->rs);
	free(wj->make_xml);
	free(wj->cold_xml);
	free(wj);
	j->warm = NULL;
}

bool warm_job_restoring(const struct job *j)
{
	return j->warm && j->warm->restorer;
}

const char *warm_job_how(const struct job *j)
{
	return j->warm ? j->warm->how : "booted";
}
