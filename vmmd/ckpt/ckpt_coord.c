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
	_cleanup_close_ int pfd = open_coord_parent(root, create, &s, err,
						    errlen);
	if (pfd < 0)
		return pfd;
	snprintf(name, sizeof(name), "%u", job_id);
	r = sfs_open_private_dir(pfd, name, create, 0700, NULL);
	if (r < 0)
		return err_set(err, errlen, r,
			       "job %u: checkpoint store %s: %s/%s: %s",
			       job_id, root, COORD_DIR, name, strerror(-r));
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

int ckpt_coord_node_root(const char *root, uint32_t node, char *buf,
			 size_t len)
{
	if (node == 0)
		return str_printf(buf, len, "%s", root);
	return str_printf(buf, len, "%s/n%u", root, node);
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

int ckpt_coord_plan(const struct ckpt_coord *c, uint32_t nnodes, bool go_on,
		    uint32_t *ret_group)
{
	char name[32], text[32];
	uint32_t g = ckpt_coord_last_plan(c);
	int r;

	if (g == UINT32_MAX)
		return -EOVERFLOW;
	g++;
	snprintf(name, sizeof(name), "g%u.plan", g);
	snprintf(text, sizeof(text), "%u %u\n", nnodes, go_on ? 1u : 0u);
	if ((r = put(c, name, text)) < 0)
		return r;
	*ret_group = g;
	return 0;
}

int ckpt_coord_read_plan(const struct ckpt_coord *c, uint32_t g,
			 uint32_t *ret_nnodes, bool *ret_go_on)
{
	char name[32], text[64], tail;
	unsigned n, go;
	int r;

	snprintf(name, sizeof(name), "g%u.plan", g);
	if ((r = get(c, name, text, sizeof(text))) < 0)
		return r;
	if (sscanf(text, "%u %u%c", &n, &go, &tail) != 3 || tail != '\n' ||
	    n < 2 || n > CKPT_COORD_MAX_NODES || go > 1)
		return -EBADMSG;
	*ret_nnodes = n;
	*ret_go_on = go == 1;
	return 0;
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

int ckpt_coord_outcome(const struct ckpt_coord *c, uint32_t g, char *buf,
		       size_t len)
{
	char name[32];
	int r;

	snprintf(name, sizeof(name), "g%u.outcome", g);
	r = get(c, name, buf, len);
	/* Just linked, its temporary name not yet gone: read it next time. */
	return r == -EMLINK ? -ENOENT : r;
}

int ckpt_coord_parse_complete(const char *text, uint32_t node,
			      uint32_t *ret_nnodes, uint32_t *ret_seq)
{
	const char *p;
	char *end;
	unsigned long v;
	uint32_t n;

	if (strncmp(text, "complete ", 9) != 0)
		return -EBADMSG;
	p = text + 9;
	errno = 0;
	v = strtoul(p, &end, 10);
	if (errno || end == p || v < 2 || v > CKPT_COORD_MAX_NODES)
		return -EBADMSG;
	n = (uint32_t)v;
	if (node >= n)
		return -ERANGE;
	for (uint32_t i = 0; i <= node; i++) {
		p = end;
		if (*p != ' ')
			return -EBADMSG;
		p++;
		v = strtoul(p, &end, 10);
		if (errno || end == p || v == 0 || v > UINT32_MAX)
			return -EBADMSG;
	}
	*ret_nnodes = n;
	*ret_seq = (uint32_t)v;
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
