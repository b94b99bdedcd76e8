/* SPDX-License-Identifier: MIT */
/*
 * vmenvctl image list | pull NAME | rm NAME | verify [NAME]
 *
 * Works on the node's cache directly, not through vmmd: the cache is
 * shared by every vmmd of the machine and guarded by flock (imgcache.h),
 * so the CLI takes the same locks as the daemons; a pull shows its
 * progress without a streaming protocol, and works while vmmd is down.
 * The catalog and the cache's place come from vmmd's configuration.
 * list is for anyone; pull, rm and verify change root's cache.
 */
#include "ctlimage.h"

#include "catalog.h"
#include "cleanup.h"
#include "ctlwarm.h"
#include "digest.h"
#include "fetch.h"
#include "imgcache.h"
#include "imgpull.h"
#include "progress.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../vmmd/vmmdconf.h"

struct ictx {
	struct vmmd_config cfg;
	struct imgcache cache;
	struct fetch_opts opts;
	struct catalog cat;
	bool tty;
};

struct progress {
	const struct ictx *x;
	const char *what;
	uint64_t t0, last_ms, base; /* base: bytes there before we began */
	struct progress_gate gate;  /* plain lines, not on a terminal */
	bool drawn;		    /* the bar is on the terminal's line */
};

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("vmenvctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static double mib(uint64_t b)
{
	return (double)b / 1048576.0;
}

/* --- progress ------------------------------------------------------------ */

/* Progress goes to stderr, so that stdout keeps only the result. On a
 * terminal a bar redrawn in place with \r (at most 10 times a second);
 * otherwise (a log, a pipe) plain lines, as few as a job's output gets
 * (common/progress.h): a small file says only "done". */
static void on_progress(void *data, uint64_t done, uint64_t total)
{
	struct progress *p = data;
	uint64_t now = now_ms(), bps = 0;
	char line[256];

	/* The rate counts what this run received, not a resumed part. */
	if (p->base == UINT64_MAX)
		p->base = done;
	if (now > p->t0 && done > p->base)
		bps = (done - p->base) * 1000 / (now - p->t0);
	if (p->x->tty) {
		if (now - p->last_ms < 100 && done < total)
			return;
		p->last_ms = now;
		p->drawn = true;
		progress_bar(line, sizeof(line), p->what, done, total, bps);
		fprintf(stderr, "\r%s ", line);
		fflush(stderr);
		return;
	}
	/* The first line only once there is something to say. */
	if (done == p->base || now - p->t0 < 1000 ||
	    !progress_gate_due(&p->gate, now, done, total))
		return;
	progress_size(line, sizeof(line), total);
	fprintf(stderr, "%s: %u%% (%.1f of %s, %.1f MiB/s)\n", p->what,
		progress_percent(done, total), mib(done < total ? done : total),
		line, (double)bps / 1048576.0);
	fflush(stderr);
}

/* Ends the bar's line before what comes next. */
static void end_bar(const struct progress *p)
{
	if (p->drawn)
		fputc('\n', stderr);
}

/* --- setup ------------------------------------------------------------------ */

static int load_catalog(struct ictx *x)
{
	_cleanup_free_ char *text = NULL;
	char err[1024] = "", base[CATALOG_MAX_URL] = "";
	size_t len;
	int r;

	if (!config_catalog_is_url(&x->cfg)) {
		r = catalog_load(x->cfg.catalog, &x->cat, err, sizeof(err));
		return r < 0 ? fail("catalog: %s", err) : 0;
	}
	r = fetch_text(x->cfg.catalog, &x->opts, CATALOG_MAX_FILE, NULL, &text,
		       &len, err, sizeof(err));
	if (r < 0)
		return fail("catalog: %s", err);
	catalog_base_of(x->cfg.catalog, base, sizeof(base));
	r = catalog_parse_base(text, len, base, &x->cat, err, sizeof(err));
	return r < 0 ? fail("catalog %s: %s", x->cfg.catalog, err) : 0;
}

static int setup(struct ictx *x, const char *config, const char *node,
		 bool writer)
{
	char err[512] = "";

	x->tty = isatty(STDERR_FILENO);
	config_defaults(&x->cfg, node);
	if (config_load(&x->cfg, config, 1, err, sizeof(err)) < 0 ||
	    config_expand(&x->cfg, err, sizeof(err)) < 0)
		return fail("config: %s", err);
	if (writer && geteuid() != 0)
		return fail("this needs root: the image cache %s belongs to "
			    "root",
			    x->cfg.image_cache);
	if (imgcache_init(&x->cache, x->cfg.image_cache,
			  (uint64_t)x->cfg.image_cache_max_mib << 20,
			  writer) < 0)
		return fail("cannot use the image cache %s",
			    x->cfg.image_cache);
	x->opts = (struct fetch_opts){
	    .connect_timeout_s = x->cfg.fetch_connect_timeout_s,
	    .low_speed_time_s = x->cfg.fetch_low_speed_time_s,
	    .low_speed_bps = x->cfg.fetch_low_speed_bps,
	    .retries = x->cfg.fetch_retries,
	    .retry_delay_ms = x->cfg.fetch_retry_delay_ms,
	    .max_redirects = 5,
	    .proxy = x->cfg.fetch_proxy,
	    .helper = x->cfg.fetch_helper,
	    .user = x->cfg.fetch_user,
	};
	return load_catalog(x);
}

static int resolve(struct ictx *x, const char *ref,
		   const struct catalog_image **img)
{
	char err[512] = "", names[512];

	if (catalog_resolve(&x->cat, ref, img, err, sizeof(err)) == 0)
		return 0;
	catalog_names(&x->cat, names, sizeof(names));
	return fail("%s (known images: %s)", err, names);
}

/* The image's files: disk, kernel, initrd (those it has). */
static size_t files_of(const struct catalog_image *img,
		       const struct catalog_file **f, const char **names)
{
	const struct catalog_file *all[] = {&img->disk, &img->kernel,
					    &img->initrd};
	static const char *const all_names[] = {"disk", "kernel", "initrd"};
	size_t n = 0;

	for (size_t i = 0; i < 3; i++) {
		if (!catalog_file_present(all[i]) || catalog_file_local(all[i]))
			continue;
		f[n] = all[i];
		names[n++] = all_names[i];
	}
	return n;
}

/* --- list ----------------------------------------------------------------- */

static const char *cache_state(const struct ictx *x,
			       const struct catalog_image *img,
			       unsigned *leases, uint64_t *bytes)
{
	const struct catalog_file *f[3];
	const char *names[3];
	size_t n = files_of(img, f, names), have = 0;
	struct imgcache_entry *v = NULL;
	size_t nv = 0;

	*leases = 0;
	*bytes = 0;
	if (img->legacy)
		return "local";
	if (imgcache_list(&x->cache, &v, &nv) < 0)
		nv = 0;
	for (size_t i = 0; i < n; i++) {
		*bytes += f[i]->size;
		for (size_t k = 0; k < nv; k++) {
			if (v[k].partial || strcmp(v[k].hex, f[i]->sha256))
				continue;
			have++;
			if (*leases < v[k].leases)
				*leases = v[k].leases;
		}
	}
	free(v);
	return have == n ? "cached" : have ? "partly" : "-";
}

static void labels_of(const struct catalog_image *img, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < img->nlabels && used < len; i++) {
		int n =
		    snprintf(buf + used, len - used, "%s%s=%s", used ? "," : "",
			     img->labels[i].key, img->labels[i].value);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

static int cmd_list(struct ictx *x)
{
	printf("%-24s %-3s %-11s %-5s %9s %-7s %4s  %s\n", "IMAGE", "DEF",
	       "BOOT", "FMT", "SIZE_MIB", "CACHE", "JOBS", "LABELS");
	for (size_t i = 0; i < x->cat.n; i++) {
		const struct catalog_image *img = &x->cat.images[i];
		char ref[140], labels[512];
		unsigned jobs;
		uint64_t bytes;
		const char *st = cache_state(x, img, &jobs, &bytes);

		catalog_image_ref(img, ref, sizeof(ref));
		labels_of(img, labels, sizeof(labels));
		printf("%-24s %-3s %-11s %-5s %9.1f %-7s %4u  %s\n", ref,
		       img->is_default ? "*" : "", catalog_boot_name(img->boot),
		       img->disk_format ? catalog_format_name(img->disk_format)
					: "-",
		       mib(bytes), st, jobs, labels);
	}
	for (size_t i = 0; i < x->cat.naliases; i++)
		printf("alias %s -> %s\n", x->cat.aliases[i].alias,
		       x->cat.aliases[i].name);
	return 0;
}

/* --- pull ------------------------------------------------------------------- */

static int pull_file(struct ictx *x, const char *ref, const char *name,
		     const struct catalog_file *f)
{
	char what[200], err[1024] = "";
	struct progress p = {.x = x, .what = what, .base = UINT64_MAX};
	struct imgpull_req req = {.url = f->source,
				  .sha256 = f->sha256,
				  .size = f->size,
				  .what = what,
				  .progress = on_progress,
				  .progress_data = &p};
	struct imgpull_stats st;
	double secs;
	int r;

	snprintf(what, sizeof(what), "image '%s' %s", ref, name);
	p.t0 = p.last_ms = now_ms();
	r = imgpull(&x->cache, &x->opts, &req, &st, err, sizeof(err));
	end_bar(&p);
	if (r < 0)
		return fail("%s", err);
	secs = (double)(now_ms() - p.t0) / 1000.0;
	if (st.cached)
		printf("%s: already in the cache (%s)\n", what, f->sha256);
	else
		printf("%s: %.1f MiB in %.1f s (%.1f MiB/s%s), sha256 %s "
		       "verified\n",
		       what, mib(st.bytes), secs,
		       secs > 0 ? mib(st.bytes) / secs : 0.0,
		       st.resumed ? ", resumed" : "", f->sha256);
	return 0;
}

static int cmd_pull(struct ictx *x, const char *refarg)
{
	const struct catalog_image *img;
	const struct catalog_file *f[3];
	const char *names[3];
	char ref[140];
	size_t n;

	if (resolve(x, refarg, &img))
		return 1;
	catalog_image_ref(img, ref, sizeof(ref));
	n = files_of(img, f, names);
	if (n == 0)
		return fail("image '%s' uses local files only: nothing to "
			    "pull",
			    ref);
	for (size_t i = 0; i < n; i++)
		if (pull_file(x, ref, names[i], f[i]))
			return 1;
	return 0;
}

/* --- rm ----------------------------------------------------------------------- */

static int rm_hex(struct ictx *x, const char *what, const char *hex)
{
	char err[512] = "";
	int r = imgcache_remove(&x->cache, hex, err, sizeof(err));

	if (r == -ENOENT) {
		printf("%s: not in the cache\n", what);
		return 0;
	}
	if (r < 0)
		return fail("%s: %s", what, err);
	printf("%s: removed %s\n", what, hex);
	return 0;
}

static int cmd_rm(struct ictx *x, const char *refarg)
{
	const struct catalog_image *img;
	const struct catalog_file *f[3];
	const char *names[3];
	char ref[140], what[200];
	size_t n;
	int bad = 0;

	/* A bare digest removes a file no catalog entry names any more. */
	if (catalog_valid_sha256(refarg))
		return rm_hex(x, refarg, refarg);
	if (resolve(x, refarg, &img))
		return 1;
	catalog_image_ref(img, ref, sizeof(ref));
	n = files_of(img, f, names);
	for (size_t i = 0; i < n; i++) {
		snprintf(what, sizeof(what), "image '%s' %s", ref, names[i]);
		bad |= rm_hex(x, what, f[i]->sha256);
	}
	return bad;
}

/* --- verify --------------------------------------------------------------------- */

static int verify_one(struct ictx *x, const struct imgcache_entry *e)
{
	char path[VMENV_MAX_PATH], hex[DIGEST_HEX_LEN + 1], err[512];
	struct progress p = {.x = x, .what = e->hex, .base = 0};
	struct digest *d = NULL;
	int fd, r;

	if (imgcache_blob_path(&x->cache, e->hex, path, sizeof(path)) < 0)
		return 1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return fail("%s: %m", path);
	p.t0 = p.last_ms = now_ms();
	r = digest_new(&d);
	if (r == 0)
		r = digest_fd(d, fd, e->size, on_progress, &p);
	if (r == 0)
		r = digest_final_hex(d, hex);
	digest_free(d);
	close(fd);
	end_bar(&p);
	if (r < 0)
		return fail("%s: cannot read: %s", path, strerror(-r));
	if (strcmp(hex, e->hex) == 0) {
		printf("%s: ok (%.1f MiB)\n", e->hex, mib(e->size));
		return 0;
	}
	/* Corrupt: remove it so the next use fetches it again, unless a
	 * running job uses it right now. */
	r = imgcache_remove(&x->cache, e->hex, err, sizeof(err));
	fail("%s: CORRUPT (content hashes to %s); %s", e->hex, hex,
	     r == 0 ? "removed" : err);
	return 1;
}

static bool wanted(struct ictx *x, const struct catalog_image *img,
		   const char *hex)
{
	const struct catalog_file *f[3];
	const char *names[3];
	size_t n;

	(void)x;
	if (!img)
		return true;
	n = files_of(img, f, names);
	for (size_t i = 0; i < n; i++)
		if (strcmp(f[i]->sha256, hex) == 0)
			return true;
	return false;
}

static int cmd_verify(struct ictx *x, const char *refarg)
{
	const struct catalog_image *img = NULL;
	struct imgcache_entry *v = NULL;
	size_t n = 0;
	int bad = 0;

	if (refarg && resolve(x, refarg, &img))
		return 1;
	if (imgcache_list(&x->cache, &v, &n) < 0)
		return fail("cannot list the image cache %s", x->cache.dir);
	for (size_t i = 0; i < n; i++)
		if (!v[i].partial && wanted(x, img, v[i].hex))
			bad |= verify_one(x, &v[i]);
	free(v);
	return bad;
}

/* warm: the image's files first, as a job's start would fetch them, so
 * that the node's vmmd finds them in the cache. */
static int cmd_warm(struct ictx *x, int argc, char **argv, const char *sock)
{
	const char *ref = NULL;

	/* The name is the one word that is not an option or its value. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--cpus") == 0 ||
		    strcmp(argv[i], "--mem") == 0)
			i++;
		else if (argv[i][0] != '-')
			ref = argv[i];
	}
	if (ref && cmd_pull(x, ref))
		return 1;
	return ctl_warm(argc, argv, sock);
}

static bool bad_args(const char *sub, int argc)
{
	if (strcmp(sub, "list") == 0)
		return argc != 1;
	if (strcmp(sub, "pull") == 0 || strcmp(sub, "rm") == 0)
		return argc != 2;
	if (strcmp(sub, "verify") == 0)
		return argc > 2;
	return strcmp(sub, "warm") != 0 || argc < 2;
}

int ctl_image(int argc, char **argv, const char *config, const char *node,
	      const char *sock)
{
	struct ictx x = {0};
	const char *sub = argc > 0 ? argv[0] : "";
	bool writer = strcmp(sub, "list") != 0;
	int r;

	if (bad_args(sub, argc)) {
		fprintf(stderr, "usage: vmenvctl image list | pull NAME | rm "
				"NAME|SHA256 | verify [NAME]\n"
				"       vmenvctl image warm NAME [--cpus N] "
				"[--mem MIB] [--checkpoint] [--no-wait]\n");
		return 2;
	}
	if (setup(&x, config, node, writer)) {
		catalog_clear(&x.cat);
		return 1;
	}
	if (strcmp(sub, "list") == 0)
		r = cmd_list(&x);
	else if (strcmp(sub, "pull") == 0)
		r = cmd_pull(&x, argv[1]);
	else if (strcmp(sub, "rm") == 0)
		r = cmd_rm(&x, argv[1]);
	else if (strcmp(sub, "warm") == 0)
		r = cmd_warm(&x, argc, argv, sock);
	else
		r = cmd_verify(&x, argc > 1 ? argv[1] : NULL);
	catalog_clear(&x.cat);
	return r;
}
