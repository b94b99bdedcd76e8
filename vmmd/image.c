/* SPDX-License-Identifier: MIT */
#include "image.h"

#include "cleanup.h"
#include "imgpull.h"
#include "log.h"
#include "metrics.h"
#include "vmmd.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum fetch_kind { FK_BLOB, FK_CATALOG };

/* How often the loop passes a transfer's progress on to its waiters. */
#define PROGRESS_TICK_MS 1000u

struct imgfetch_waiter {
	struct imgfetch_waiter *next;
	struct imgfetch *f;
	struct catalog_file file; /* as this waiter's image names it */
	char what[256];
	char owner[160];
	imgfetch_done_f done;
	imgfetch_progress_f progress; /* may be NULL */
	void *data;
	bool retried; /* evicted between download and lease once already */
	bool dead;    /* cancelled while its fetch was being delivered */
};

/* One file in flight. The worker thread reads the request fields and
 * writes the result fields; the loop reads the result only after the
 * thread posted the struct back through the pipe. */
struct imgfetch {
	struct imgfetch *next;
	struct images *im;
	enum fetch_kind kind;
	struct catalog_file file;
	char what[256];
	pthread_t thread;
	atomic_int cancel;
	uint64_t t_start;
	/* progress: written by the thread, read by the loop's tick */
	atomic_bool moving; /* bytes are being transferred */
	atomic_uint_fast64_t done;
	/* result */
	int result;
	char err[1024];
	struct imgpull_stats st;
	char *text; /* FK_CATALOG */
	size_t text_len;
	/* loop side */
	struct imgfetch_waiter *waiters;
};

struct images {
	struct vmmd *d;
	struct imgcache cache;
	struct fetch_opts opts;
	int pipe_rd, pipe_wr;
	struct loop_watch *w;
	struct imgfetch *fetches;
	bool catalog_busy;
	struct loop_timer *catalog_timer;
	struct loop_timer *progress_timer; /* while blobs are in flight */
};

/* --- worker threads --------------------------------------------------------- */

/* fetch.c's callback (in this thread, at most every 100 ms): only stored;
 * the loop reads it on its own tick. */
static void pull_progress(void *data, uint64_t done, uint64_t total)
{
	struct imgfetch *f = data;

	(void)total;
	atomic_store(&f->done, done);
	atomic_store(&f->moving, true);
}

static void pull_blob(struct imgfetch *f)
{
	struct imgcache c;
	struct imgpull_req req = {
	    .url = f->file.source,
	    .sha256 = f->file.sha256,
	    .size = f->file.size,
	    .what = f->what,
	    .progress = pull_progress,
	    .progress_data = f,
	    .cancel = &f->cancel,
	};
	int r =
	    imgcache_init(&c, f->im->cache.dir, f->im->cache.max_bytes, true);

	if (r < 0) {
		snprintf(f->err, sizeof(f->err),
			 "%s: cannot create the image cache %.300s: %s",
			 f->what, f->im->cache.dir, strerror(-r));
		f->result = r;
		return;
	}
	f->result =
	    imgpull(&c, &f->im->opts, &req, &f->st, f->err, sizeof(f->err));
}

static void *fetch_main(void *arg)
{
	struct imgfetch *f = arg;

	if (f->kind == FK_BLOB)
		pull_blob(f);
	else
		f->result = fetch_text(f->file.source, &f->im->opts,
				       CATALOG_MAX_FILE, &f->cancel, &f->text,
				       &f->text_len, f->err, sizeof(f->err));
	/* A pointer is 8 bytes: a pipe write that small is atomic. If it
	 * fails the loop never learns, so it must not: the pipe holds 8192
	 * of them and at most one per file is in flight. */
	if (write(f->im->pipe_wr, &f, sizeof(f)) != (ssize_t)sizeof(f))
		abort();
	return NULL;
}

static int spawn(struct imgfetch *f)
{
	pthread_attr_t a;
	int r;

	f->t_start = now_ms();
	pthread_attr_init(&a);
	/* curl and OpenSSL need little stack; 256 KiB leaves room. */
	pthread_attr_setstacksize(&a, 256 * 1024);
	r = pthread_create(&f->thread, &a, fetch_main, f);
	pthread_attr_destroy(&a);
	return -r;
}

/* --- the loop side ------------------------------------------------------------ */

static void unlink_fetch(struct images *im, struct imgfetch *f)
{
	for (struct imgfetch **p = &im->fetches; *p; p = &(*p)->next) {
		if (*p == f) {
			*p = f->next;
			return;
		}
	}
}

static void free_fetch(struct imgfetch *f)
{
	while (f->waiters) {
		struct imgfetch_waiter *w = f->waiters;
		f->waiters = w->next;
		free(w);
	}
	free(f->text);
	free(f);
}

static void log_blob(const struct imgfetch *f)
{
	uint64_t ms = now_ms() - f->t_start;

	if (f->result < 0)
		log_err("%s", f->err);
	else if (f->st.cached)
		log_debug("%s: in the cache (%s)", f->what, f->file.sha256);
	else
		log_info("%s: downloaded %llu MiB in %llu ms (%.0f MiB/s, %u "
			 "attempt(s)%s) into the cache as %s",
			 f->what, (unsigned long long)(f->st.bytes >> 20),
			 (unsigned long long)ms,
			 ms ? (double)f->st.bytes / 1048576.0 * 1000.0 /
				  (double)ms
			    : 0.0,
			 f->st.attempts, f->st.resumed ? ", resumed" : "",
			 f->file.sha256);
}

static int attach(struct images *im, struct imgfetch_waiter *w);

/* Tells one waiter. Returns true when the waiter was moved to a new
 * download instead (the blob was evicted between the download and the
 * lease: rare, once). */
static bool give(struct images *im, struct imgfetch *f,
		 struct imgfetch_waiter *w)
{
	char msg[1100];
	int r = f->result;
	const char *text = f->err;

	/* The same content under another URL (two catalog entries): that
	 * URL gets its own chance. */
	if (r < 0 && r != -ECANCELED && !w->retried &&
	    strcmp(w->file.source, f->file.source) != 0) {
		w->retried = true;
		if (attach(im, w) == 0)
			return true;
	}
	if (r == 0) {
		r = imgcache_lease(&im->cache, f->file.sha256, w->owner);
		if (r == -ENOENT && !w->retried) {
			w->retried = true;
			log_warn("%s: evicted before use; fetching again",
				 f->what);
			if (attach(im, w) == 0)
				return true;
		}
		if (r < 0) {
			snprintf(msg, sizeof(msg),
				 "%s: cannot lease the cached file: %s",
				 f->what, strerror(-r));
			text = msg;
		}
	}
	w->done(w->data, r, text);
	return false;
}

static void finish_catalog(struct images *im, struct imgfetch *f);

/* Once per vmmd, after the first download that could not have it. */
static void warn_pidns(void)
{
	int e = fetch_pidns_refusal();

	if (e)
		log_warn("download helper: no PID namespace of its own (%s): "
			 "it runs as a plain child, and what it starts may "
			 "outlive it (docs/images.md)",
			 strerror(e));
}

static void finish(struct images *im, struct imgfetch *f)
{
	pthread_join(f->thread, NULL);
	unlink_fetch(im, f);
	warn_pidns();
	if (f->kind == FK_CATALOG) {
		finish_catalog(im, f);
		free_fetch(f);
		return;
	}
	if (f->result != -ECANCELED || f->waiters) {
		log_blob(f);
		metrics_count_cache(&im->d->metrics,
				    f->result == 0 && f->st.cached);
	}
	/* Each waiter is told once; the list is detached first so a
	 * callback may cancel or request freely. */
	struct imgfetch_waiter *ws = f->waiters;
	f->waiters = NULL;
	while (ws) {
		struct imgfetch_waiter *w = ws;
		ws = w->next;
		if (w->dead || !give(im, f, w))
			free(w);
	}
	free_fetch(f);
}

static void pipe_io(void *data, uint32_t events)
{
	struct images *im = data;
	struct imgfetch *f;

	(void)events;
	while (read(im->pipe_rd, &f, sizeof(f)) == (ssize_t)sizeof(f))
		finish(im, f);
}

static void arm_progress(struct images *im);

/* Every waiter of a transfer that moves hears how far it is. Re-armed
 * while any blob is in flight. */
static void progress_tick(void *data)
{
	struct images *im = data;
	bool any = false;

	im->progress_timer = NULL;
	for (struct imgfetch *f = im->fetches; f; f = f->next) {
		if (f->kind != FK_BLOB)
			continue;
		any = true;
		if (!atomic_load(&f->moving))
			continue;
		uint64_t done = atomic_load(&f->done);
		/* A callback only reports (it cancels nothing): the list
		 * stays as it is. */
		for (struct imgfetch_waiter *w = f->waiters; w; w = w->next)
			if (w->progress)
				w->progress(w->data, done, f->file.size);
	}
	if (any)
		arm_progress(im);
}

static void arm_progress(struct images *im)
{
	if (!im->progress_timer)
		im->progress_timer = loop_add_timer(
		    im->d->loop, PROGRESS_TICK_MS, progress_tick, im);
}

/* --- public -------------------------------------------------------------------- */

static void fill_opts(struct fetch_opts *o, const struct vmmd_config *c)
{
	*o = (struct fetch_opts){
	    .connect_timeout_s = c->fetch_connect_timeout_s,
	    .low_speed_time_s = c->fetch_low_speed_time_s,
	    .low_speed_bps = c->fetch_low_speed_bps,
	    .retries = c->fetch_retries,
	    .retry_delay_ms = c->fetch_retry_delay_ms,
	    .max_redirects = 5,
	    .proxy = c->fetch_proxy,
	    .helper = c->fetch_helper,
	    .user = c->fetch_user,
	};
}

/* Downloads check fetch_user each time (it may be created later); say at
 * start already when they would all fail. */
static void check_fetch_user(const struct vmmd_config *c)
{
	struct passwd *pw = getpwnam(c->fetch_user);

	if (!pw)
		log_warn("fetch_user '%s' does not exist: image downloads will "
			 "fail until it does (docs/images.md)",
			 c->fetch_user);
	else if (pw->pw_uid == 0 || pw->pw_gid == 0)
		log_warn("fetch_user '%s' is root: image downloads are refused "
			 "(docs/images.md)",
			 c->fetch_user);
}

static void catalog_tick(void *data);

int images_init(struct vmmd *d)
{
	struct images *im = calloc(1, sizeof(*im));
	int p[2], r;

	if (!im)
		return -ENOMEM;
	im->d = d;
	im->pipe_rd = im->pipe_wr = -1;
	fill_opts(&im->opts, &d->cfg);
	/* The layout is created by the first download, so a node that
	 * only boots first-format images never needs the directory. */
	if ((r = imgcache_init(&im->cache, d->cfg.image_cache,
			       (uint64_t)d->cfg.image_cache_max_mib << 20,
			       false)) < 0) {
		free(im);
		return r;
	}
	if (geteuid() == 0)
		check_fetch_user(&d->cfg);
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
		free(im);
		return -errno;
	}
	im->pipe_rd = p[0];
	im->pipe_wr = p[1];
	d->images = im;
	r = loop_add_fd(d->loop, im->pipe_rd, EPOLLIN, pipe_io, im, &im->w);
	if (r < 0) {
		images_fini(d);
		return r;
	}
	if (config_catalog_is_url(&d->cfg) && d->cfg.catalog_refresh_s)
		im->catalog_timer =
		    loop_add_timer(d->loop, d->cfg.catalog_refresh_s * 1000ull,
				   catalog_tick, d);
	return 0;
}

void images_fini(struct vmmd *d)
{
	struct images *im = d->images;

	if (!im)
		return;
	for (struct imgfetch *f = im->fetches; f; f = f->next)
		atomic_store(&f->cancel, 1);
	while (im->fetches) {
		struct imgfetch *f = im->fetches;
		pthread_join(f->thread, NULL);
		im->fetches = f->next;
		free_fetch(f);
	}
	loop_cancel_timer(im->catalog_timer);
	loop_cancel_timer(im->progress_timer);
	loop_del_fd(im->w);
	if (im->pipe_rd >= 0)
		close(im->pipe_rd);
	if (im->pipe_wr >= 0)
		close(im->pipe_wr);
	free(im);
	d->images = NULL;
}

const struct imgcache *images_cache(struct vmmd *d)
{
	return &d->images->cache;
}

static struct imgfetch *in_flight(struct images *im, const char *hex)
{
	for (struct imgfetch *f = im->fetches; f; f = f->next)
		if (f->kind == FK_BLOB && !atomic_load(&f->cancel) &&
		    strcmp(f->file.sha256, hex) == 0)
			return f;
	return NULL;
}

static struct imgfetch *new_fetch(struct images *im, enum fetch_kind kind,
				  const struct catalog_file *file,
				  const char *what)
{
	struct imgfetch *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->im = im;
	f->kind = kind;
	f->file = *file;
	snprintf(f->what, sizeof(f->what), "%s", what);
	atomic_init(&f->cancel, 0);
	atomic_init(&f->moving, false);
	atomic_init(&f->done, 0);
	if (spawn(f) < 0) {
		free(f);
		return NULL;
	}
	f->next = im->fetches;
	im->fetches = f;
	if (kind == FK_BLOB)
		arm_progress(im);
	return f;
}

static int attach(struct images *im, struct imgfetch_waiter *w)
{
	struct imgfetch *f = in_flight(im, w->file.sha256);

	if (f)
		log_debug("%s: joins the download already running", w->what);
	else if (!(f = new_fetch(im, FK_BLOB, &w->file, w->what)))
		return -EAGAIN;
	w->f = f;
	w->next = f->waiters;
	f->waiters = w;
	return 0;
}

int images_request(struct vmmd *d, const struct catalog_file *file,
		   const char *what, const char *owner, imgfetch_done_f done,
		   void *data, struct imgfetch_waiter **ret)
{
	struct imgfetch_waiter *w;
	int r;

	if (!catalog_valid_sha256(file->sha256))
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	if (str_printf(w->owner, sizeof(w->owner), "%s", owner) < 0) {
		free(w);
		return -EINVAL;
	}
	w->done = done;
	w->data = data;
	w->file = *file;
	snprintf(w->what, sizeof(w->what), "%s", what);
	if ((r = attach(d->images, w)) < 0) {
		free(w);
		return r;
	}
	*ret = w;
	return 0;
}

void images_on_progress(struct imgfetch_waiter *w, imgfetch_progress_f fn)
{
	w->progress = fn;
}

void images_cancel(struct imgfetch_waiter *w)
{
	struct imgfetch *f;

	if (!w)
		return;
	f = w->f;
	for (struct imgfetch_waiter **p = &f->waiters; *p; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			free(w);
			w = NULL;
			break;
		}
	}
	/* Not listed: finish() is delivering this fetch right now and
	 * frees it after the callback in progress. */
	if (w) {
		w->dead = true;
		return;
	}
	/* Nobody else waits: stop the transfer (a later request resumes
	 * from a fresh attempt). */
	if (!f->waiters)
		atomic_store(&f->cancel, 1);
}

unsigned images_in_flight(struct vmmd *d)
{
	unsigned n = 0;

	if (!d->images)
		return 0;
	for (struct imgfetch *f = d->images->fetches; f; f = f->next)
		n += f->kind == FK_BLOB;
	return n;
}

/* --- the catalog at a URL --------------------------------------------------- */

static int saved_catalog_path(struct vmmd *d, char *buf, size_t len)
{
	return str_printf(buf, len, "%s/catalog-%s.json", d->cfg.image_cache,
			  d->cfg.node_name);
}

/* Parses text fetched from the catalog URL and makes it current. */
static int adopt_catalog(struct vmmd *d, const char *text, size_t len,
			 bool save, char *err, size_t errlen)
{
	char base[CATALOG_MAX_URL], path[VMENV_MAX_PATH];
	struct catalog fresh;
	int r;

	if (catalog_base_of(d->cfg.catalog, base, sizeof(base)) < 0)
		base[0] = '\0';
	r = catalog_parse_base(text, len, base, &fresh, err, errlen);
	if (r < 0)
		return r;
	catalog_clear(&d->catalog);
	d->catalog = fresh;
	if (save && saved_catalog_path(d, path, sizeof(path)) == 0 &&
	    mkdir_p(d->cfg.image_cache, 0755) == 0 &&
	    write_file_atomic(path, text, len, 0644) < 0)
		log_warn("cannot save a copy of the catalog in %s", path);
	return 0;
}

static void finish_catalog(struct images *im, struct imgfetch *f)
{
	struct vmmd *d = im->d;
	char err[512];

	im->catalog_busy = false;
	if (f->result < 0) {
		log_warn("catalog %s: %s (keeping the previous one)",
			 d->cfg.catalog, f->err);
		return;
	}
	if (adopt_catalog(d, f->text, f->text_len, true, err, sizeof(err)) <
	    0) {
		log_err("catalog %s: %s (keeping the previous one)",
			d->cfg.catalog, err);
		return;
	}
	log_info("catalog %s: %zu images", d->cfg.catalog, d->catalog.n);
}

void images_catalog_refresh(struct vmmd *d)
{
	struct images *im = d->images;
	struct catalog_file src = {0};

	if (!im || !config_catalog_is_url(&d->cfg) || im->catalog_busy)
		return;
	if (str_printf(src.source, sizeof(src.source), "%s", d->cfg.catalog) <
	    0) {
		log_warn("catalog URL too long");
		return;
	}
	if (!new_fetch(im, FK_CATALOG, &src, "catalog"))
		log_warn("catalog %s: cannot start a refresh", d->cfg.catalog);
	else
		im->catalog_busy = true;
}

static void catalog_tick(void *data)
{
	struct vmmd *d = data;

	images_catalog_refresh(d);
	d->images->catalog_timer = loop_add_timer(
	    d->loop, d->cfg.catalog_refresh_s * 1000ull, catalog_tick, d);
}

int images_catalog_initial(struct vmmd *d, char *err, size_t errlen)
{
	struct fetch_opts o = d->images->opts;
	_cleanup_free_ char *text = NULL;
	char path[VMENV_MAX_PATH];
	size_t len;
	int r;

	/* vmmd is not serving yet: one quick attempt, then the copy saved
	 * by the last good fetch. */
	o.retries = 0;
	r = fetch_text(d->cfg.catalog, &o, CATALOG_MAX_FILE, NULL, &text, &len,
		       err, errlen);
	warn_pidns();
	if (r == 0)
		return adopt_catalog(d, text, len, true, err, errlen);
	log_warn("catalog %s: %s; trying the saved copy", d->cfg.catalog, err);
	free(text);
	text = NULL;
	if (saved_catalog_path(d, path, sizeof(path)) < 0 ||
	    (r = read_file_limited(path, CATALOG_MAX_FILE, &text, &len)) < 0) {
		snprintf(err, errlen, "no saved copy of the catalog (%s)",
			 path);
		return -ENOENT;
	}
	return adopt_catalog(d, text, len, false, err, errlen);
}
