/* SPDX-License-Identifier: MIT */
#include "ckpt_coord.h"

#include "ckpt_store.h"
#include "cleanup.h"
#include "rmtree.h"
#include "safefs.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define COORD_DIR "coord"

static int open_coord_parent(const char *root, bool create,
			     struct ckpt_store *s, char *err, size_t errlen)
{
	unsigned flags = CKPT_STORE_NODE | (create ? CKPT_STORE_CREATE : 0);
	struct stat st;
	int r = ckpt_store_open(root, flags, s, err, errlen);

	if (r < 0)
		return r;
	r = sfs_open_private_dir(s->fd, COORD_DIR, create, 0700, &st);
	if (r < 0)
		err_set(err, errlen, r,
			"checkpoint store %s: %s/ is not a directory of "
			"root's only: %s",
			root, COORD_DIR, strerror(-r));
	ckpt_store_close(s);
	return r;
}

int ckpt_coord_open(const char *root, uint32_t job_id, bool create,
		    struct ckpt_coord *ret, char *err, size_t errlen)
{
	struct ckpt_store s = CKPT_STORE_INIT;
	char name[16];
	int r;

	ret->fd = -1;
	ret->job_id = job_id;
	_cleanup_close_ int pfd =
	    open_coord_parent(root, create, &s, err, errlen);
	if (pfd < 0)
		return pfd;
	snprintf(name, sizeof(name), "%u", job_id);
	r = sfs_open_private_dir(pfd, name, create, 0700, NULL);
	if (r < 0)
		return err_set(err, errlen, r,
			       "job %u: checkpoint store %s: %s/%s: %s", job_id,
			       root, COORD_DIR, name, strerror(-r));
	ret->fd = r;
	return 0;
}

void ckpt_coord_close(struct ckpt_coord *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

int ckpt_coord_remove(const char *root, uint32_t job_id)
{
	struct ckpt_store s = CKPT_STORE_INIT;
	char name[16];
	_cleanup_close_ int pfd = open_coord_parent(root, false, &s, NULL, 0);

	if (pfd < 0)
		return pfd;
	snprintf(name, sizeof(name), "%u", job_id);
	return rmtree_at(pfd, name);
}

int ckpt_coord_node_root(const char *root, uint32_t node, char *buf, size_t len)
{
	if (node == 0)
		return str_printf(buf, len, "%s", root);
	return str_printf(buf, len, "%s/n%u", root, node);
}

/* A number as written by "%u": digits only (no white space, sign or
 * leading zero), at most UINT32_MAX. Where it ends, or NULL. */
static const char *parse_num(const char *p, uint32_t *ret)
{
	const char *s = p;
	uint64_t v = 0;

	for (; *p >= '0' && *p <= '9'; p++)
		if ((v = v * 10 + (uint64_t)(*p - '0')) > UINT32_MAX)
			return NULL;
	if (p == s || (*s == '0' && p - s > 1))
		return NULL;
	*ret = (uint32_t)v;
	return p;
}

/* "g<G>.<rest>": G, and where rest starts; 0 when name is not one. */
static uint32_t group_of(const char *name, const char **rest)
{
	char num[12];
	const char *dot;
	size_t n;
	uint32_t g;

	if (name[0] != 'g' || !(dot = strchr(name + 1, '.')))
		return 0;
	n = (size_t)(dot - name - 1);
	if (n == 0 || n >= sizeof(num))
		return 0;
	memcpy(num, name + 1, n);
	num[n] = '\0';
	if (parse_u32(num, &g) < 0)
		return 0;
	*rest = dot + 1;
	return g;
}

/* The highest group whose file "g<G>.<suffix>" exists and, with ok, whose
 * content ok() accepts. */
static uint32_t highest(const struct ckpt_coord *c, const char *suffix,
			bool (*ok)(const struct ckpt_coord *c, uint32_t g))
{
	DIR *dp = sfs_opendir(c->fd);
	struct dirent *e;
	uint32_t best = 0;

	if (!dp)
		return 0;
	while ((e = readdir(dp))) {
		const char *rest;
		uint32_t g = group_of(e->d_name, &rest);

		if (g > best && strcmp(rest, suffix) == 0 && (!ok || ok(c, g)))
			best = g;
	}
	closedir(dp);
	return best;
}

uint32_t ckpt_coord_last_plan(const struct ckpt_coord *c)
{
	return highest(c, "plan", NULL);
}

static int put(const struct ckpt_coord *c, const char *name, const char *text)
{
	return sfs_write_atomic(c->fd, name, text, strlen(text), 0600);
}

static int get(const struct ckpt_coord *c, const char *name, char *buf,
	       size_t len)
{
	_cleanup_free_ char *data = NULL;
	size_t n;
	_cleanup_close_ int fd = sfs_open_file(c->fd, name, geteuid());
	int r;

	if (fd < 0)
		return fd;
	if ((r = sfs_read_fd(fd, CKPT_COORD_MAX_TEXT, &data, &n)) < 0)
		return r;
	if (n >= len)
		return -EFBIG;
	memcpy(buf, data, n + 1);
	return 0;
}

int ckpt_coord_plan_run(const struct ckpt_coord *c, uint32_t nnodes, bool go_on,
			uint32_t run, uint32_t *ret_group)
{
	char name[32], text[48];
	uint32_t g;
	int r;

	if (nnodes < 2 || nnodes > CKPT_COORD_MAX_NODES)
		return -EINVAL;
	g = ckpt_coord_last_plan(c);
	if (g == UINT32_MAX)
		return -EOVERFLOW;
	g++;
	snprintf(name, sizeof(name), "g%u.plan", g);
	if (run)
		snprintf(text, sizeof(text), "%u %u %u\n", nnodes,
			 go_on ? 1u : 0u, run);
	else
		snprintf(text, sizeof(text), "%u %u\n", nnodes,
			 go_on ? 1u : 0u);
	if ((r = put(c, name, text)) < 0)
		return r;
	*ret_group = g;
	return 0;
}

int ckpt_coord_plan(const struct ckpt_coord *c, uint32_t nnodes, bool go_on,
		    uint32_t *ret_group)
{
	return ckpt_coord_plan_run(c, nnodes, go_on, 0, ret_group);
}

int ckpt_coord_read_plan_run(const struct ckpt_coord *c, uint32_t g,
			     uint32_t *ret_nnodes, bool *ret_go_on,
			     uint32_t *ret_run)
{
	char name[32], text[64];
	const char *p;
	uint32_t n, go, run = 0;
	int r;

	snprintf(name, sizeof(name), "g%u.plan", g);
	if ((r = get(c, name, text, sizeof(text))) < 0)
		return r;
	if (!(p = parse_num(text, &n)) || *p != ' ' ||
	    !(p = parse_num(p + 1, &go)))
		return -EBADMSG;
	/* The run is written when it is not the first (0). */
	if (*p == ' ' && (!(p = parse_num(p + 1, &run)) || run == 0))
		return -EBADMSG;
	if (strcmp(p, "\n") != 0 || n < 2 || n > CKPT_COORD_MAX_NODES || go > 1)
		return -EBADMSG;
	*ret_nnodes = n;
	*ret_go_on = go == 1;
	*ret_run = run;
	return 0;
}

int ckpt_coord_read_plan(const struct ckpt_coord *c, uint32_t g,
			 uint32_t *ret_nnodes, bool *ret_go_on)
{
	uint32_t run;

	return ckpt_coord_read_plan_run(c, g, ret_nnodes, ret_go_on, &run);
}

static int mark_name(uint32_t g, const char *what, uint32_t node, char *buf,
		     size_t len)
{
	if (strchr(what, '/') || strchr(what, '.'))
		return -EINVAL;
	return str_printf(buf, len, "g%u.%s.%u", g, what, node);
}

int ckpt_coord_mark(const struct ckpt_coord *c, uint32_t g, const char *what,
		    uint32_t node, const char *text)
{
	char name[64];
	int r = mark_name(g, what, node, name, sizeof(name));

	return r < 0 ? r : put(c, name, text);
}

int ckpt_coord_unmark(const struct ckpt_coord *c, uint32_t g, const char *what,
		      uint32_t node)
{
	char name[64];
	int r = mark_name(g, what, node, name, sizeof(name));

	if (r < 0)
		return r;
	return unlinkat(c->fd, name, 0) < 0 ? -errno : 0;
}

uint32_t ckpt_coord_count(const struct ckpt_coord *c, uint32_t g,
			  const char *what, uint32_t nnodes)
{
	char name[64];
	struct stat st;
	uint32_t n = 0;

	for (uint32_t i = 0; i < nnodes; i++)
		if (mark_name(g, what, i, name, sizeof(name)) == 0 &&
		    fstatat(c->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode))
			n++;
	return n;
}

int ckpt_coord_read_mark(const struct ckpt_coord *c, uint32_t g,
			 const char *what, uint32_t node, char *buf, size_t len)
{
	char name[64];
	int r = mark_name(g, what, node, name, sizeof(name));

	return r < 0 ? r : get(c, name, buf, len);
}

int ckpt_coord_decide(const struct ckpt_coord *c, uint32_t g, const char *text)
{
	char tmp[64], name[32];
	uint64_t rnd = 0;
	int r;

	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		return -EIO;
	snprintf(name, sizeof(name), "g%u.outcome", g);
	snprintf(tmp, sizeof(tmp), "g%u.decide-%016llx", g,
		 (unsigned long long)rnd);
	if ((r = put(c, tmp, text)) < 0)
		return r;
	/* link(2) never replaces: the first complete outcome stays. */
	r = linkat(c->fd, tmp, c->fd, name, 0) == 0 ? 1
	    : errno == EEXIST			    ? 0
						    : -errno;
	unlinkat(c->fd, tmp, 0);
	return r;
}

/* Unlinks the g<G>.decide-* names of name's inode: the temporary name
 * of a decider just past its link (its own unlink then finds nothing) or
 * dead before its unlink (nothing else ever would). */
static void drop_decide_names(const struct ckpt_coord *c, uint32_t g,
			      const char *name)
{
	char prefix[32];
	struct stat o, st;
	struct dirent *e;
	size_t plen;
	DIR *dp;

	if (fstatat(c->fd, name, &o, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !(dp = sfs_opendir(c->fd)))
		return;
	plen = (size_t)snprintf(prefix, sizeof(prefix), "g%u.decide-", g);
	while ((e = readdir(dp)))
		if (strncmp(e->d_name, prefix, plen) == 0 &&
		    fstatat(c->fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    st.st_dev == o.st_dev && st.st_ino == o.st_ino)
			unlinkat(c->fd, e->d_name, 0);
	closedir(dp);
}

int ckpt_coord_outcome(const struct ckpt_coord *c, uint32_t g, char *buf,
		       size_t len)
{
	char name[32];
	int r;

	snprintf(name, sizeof(name), "g%u.outcome", g);
	r = get(c, name, buf, len);
	if (r == -EMLINK) {
		drop_decide_names(c, g, name);
		r = get(c, name, buf, len);
	}
	/* Still another name (not a decide- one): not read. */
	return r == -EMLINK ? -ENOENT : r;
}

int ckpt_coord_parse_complete(const char *text, uint32_t node,
			      uint32_t *ret_nnodes, uint32_t *ret_seq)
{
	const char *p;
	uint32_t n, v, seq = 0;

	if (strncmp(text, "complete ", 9) != 0 ||
	    !(p = parse_num(text + 9, &n)) || n < 2 || n > CKPT_COORD_MAX_NODES)
		return -EBADMSG;
	for (uint32_t i = 0; i < n; i++) {
		if (*p != ' ' || !(p = parse_num(p + 1, &v)) || v == 0)
			return -EBADMSG;
		if (i == node)
			seq = v;
	}
	if (*p == '\n')
		p++;
	if (*p)
		return -EBADMSG;
	if (node >= n)
		return -ERANGE;
	*ret_nnodes = n;
	*ret_seq = seq;
	return 0;
}

static bool is_complete(const struct ckpt_coord *c, uint32_t g)
{
	char text[CKPT_COORD_MAX_TEXT];
	uint32_t n, seq;

	return ckpt_coord_outcome(c, g, text, sizeof(text)) == 0 &&
	       ckpt_coord_parse_complete(text, 0, &n, &seq) == 0;
}

int ckpt_coord_latest_complete(const struct ckpt_coord *c, uint32_t *ret_group)
{
	uint32_t g = highest(c, "outcome", is_complete);

	if (!g)
		return -ENOENT;
	*ret_group = g;
	return 0;
}

static const char *const verdict_words[] = {
    [CKPT_VERDICT_REQUEUED] = "requeued",
    [CKPT_VERDICT_ENDED] = "ended",
    [CKPT_VERDICT_GOON] = "goon",
};

/* goon's reason: one line of printable text, not empty, not padded. */
static bool reason_ok(const char *p, size_t n)
{
	if (n == 0 || p[0] == ' ' || p[n - 1] == ' ')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return false;
	return true;
}

int ckpt_coord_verdict(const struct ckpt_coord *c, uint32_t g,
		       enum ckpt_verdict v, const char *why)
{
	char name[32], text[CKPT_COORD_MAX_TEXT];
	bool goon = v == CKPT_VERDICT_GOON;
	int r;

	if ((unsigned)v >= ARRAY_SIZE(verdict_words) || goon != (why != NULL) ||
	    (goon && !reason_ok(why, strlen(why))))
		return -EINVAL;
	r = str_printf(text, sizeof(text), "%s%s%s\n", verdict_words[v],
		       goon ? " " : "", goon ? why : "");
	if (r < 0)
		return r;
	snprintf(name, sizeof(name), "g%u.verdict", g);
	return put(c, name, text);
}

int ckpt_coord_parse_verdict(const char *text, enum ckpt_verdict *ret,
			     char *why, size_t len)
{
	size_t n = strlen(text), w;

	/* One line, whole: a file cut short has no newline. */
	if (n == 0 || text[n - 1] != '\n')
		return -EBADMSG;
	n--;
	for (size_t v = 0; v < ARRAY_SIZE(verdict_words); v++) {
		w = strlen(verdict_words[v]);
		if (n < w || memcmp(text, verdict_words[v], w) != 0)
			continue;
		if (v != CKPT_VERDICT_GOON && n != w)
			return -EBADMSG;
		if (v == CKPT_VERDICT_GOON &&
		    (n <= w + 1 || text[w] != ' ' ||
		     !reason_ok(text + w + 1, n - w - 1)))
			return -EBADMSG;
		if (why && len)
			snprintf(why, len, "%.*s",
				 v == CKPT_VERDICT_GOON ? (int)(n - w - 1) : 0,
				 text + w + 1);
		*ret = (enum ckpt_verdict)v;
		return 0;
	}
	return -EBADMSG;
}

int ckpt_coord_read_verdict(const struct ckpt_coord *c, uint32_t g,
			    enum ckpt_verdict *ret, char *why, size_t len)
{
	char name[32], text[CKPT_COORD_MAX_TEXT];
	int r;

	snprintf(name, sizeof(name), "g%u.verdict", g);
	if ((r = get(c, name, text, sizeof(text))) < 0)
		return r;
	return ckpt_coord_parse_verdict(text, ret, why, len);
}
