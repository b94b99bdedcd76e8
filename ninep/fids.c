// SPDX-License-Identifier: MIT
/* The fid table: a chained hash, bounded by max_fids. */
#include "srv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct fid **slot(struct srv *s, uint32_t fid)
{
	struct fid **p = &s->bucket[(fid * 2654435761u) % SRV_FID_BUCKETS];

	while (*p && (*p)->fid != fid)
		p = &(*p)->next;
	return p;
}

struct fid *fid_get(struct srv *s, uint32_t fid)
{
	return *slot(s, fid);
}

int fid_add(struct srv *s, uint32_t fid, const char *path, struct fid **ret)
{
	struct fid **p = slot(s, fid);
	struct fid *f;

	if (*p || fid == NINEP_NOFID)
		return -EEXIST;
	if (s->nfids >= s->max_fids)
		return -EMFILE;
	f = calloc(1, sizeof(*f));
	if (!f || !(f->path = strdup(path))) {
		free(f);
		return -ENOMEM;
	}
	f->fid = fid;
	f->kind = FID_PATH;
	f->fd = -1;
	*p = f;
	s->nfids++;
	*ret = f;
	return 0;
}

static void fid_free(struct fid *f)
{
	if (f->fd >= 0)
		close(f->fd);
	free(f->path);
	free(f);
}

void fid_del(struct srv *s, uint32_t fid)
{
	struct fid **p = slot(s, fid);
	struct fid *f = *p;

	if (!f)
		return;
	*p = f->next;
	fid_free(f);
	s->nfids--;
}

void fid_del_all(struct srv *s)
{
	for (size_t i = 0; i < SRV_FID_BUCKETS; i++) {
		while (s->bucket[i]) {
			struct fid *f = s->bucket[i];

			s->bucket[i] = f->next;
			fid_free(f);
		}
	}
	s->nfids = 0;
}

int fid_set_path(struct fid *f, const char *path)
{
	char *p = strdup(path);

	if (!p)
		return -ENOMEM;
	free(f->path);
	f->path = p;
	return 0;
}

int fid_each(struct srv *s, int (*fn)(struct fid *f, void *arg), void *arg)
{
	int r;

	for (size_t i = 0; i < SRV_FID_BUCKETS; i++)
		for (struct fid *f = s->bucket[i]; f; f = f->next)
			if ((r = fn(f, arg)) < 0)
				return r;
	return 0;
}

/* The kernel client keeps using its fids of a renamed directory's
 * children: their paths must follow the rename, or the next request on
 * one would reach whatever took the old name. */
int fid_renamed(struct srv *s, const char *from, const char *to)
{
	size_t flen = strlen(from), tlen = strlen(to);

	for (size_t i = 0; i < SRV_FID_BUCKETS; i++) {
		for (struct fid *f = s->bucket[i]; f; f = f->next) {
			size_t plen = strlen(f->path);
			char *np;

			if (strncmp(f->path, from, flen) != 0 ||
			    (f->path[flen] != '\0' && f->path[flen] != '/'))
				continue;
			if (tlen + plen - flen >= SRV_MAX_PATH)
				return -ENAMETOOLONG;
			np = malloc(tlen + plen - flen + 1);
			if (!np)
				return -ENOMEM;
			memcpy(np, to, tlen);
			memcpy(np + tlen, f->path + flen, plen - flen + 1);
			free(f->path);
			f->path = np;
		}
	}
	return 0;
}
