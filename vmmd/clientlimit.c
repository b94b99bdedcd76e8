/* SPDX-License-Identifier: MIT */
#include "clientlimit.h"

#include <errno.h>
#include <stdlib.h>

void clientlimit_configure(struct clientlimit *l, uint32_t max_clients,
			   uint32_t per_uid, uint32_t reserved,
			   uint64_t per_uid_bytes, uid_t slurm_uid)
{
	l->max_clients = max_clients;
	l->per_uid = per_uid;
	l->reserved = reserved;
	l->per_uid_bytes = per_uid_bytes;
	l->slurm_uid = slurm_uid;
}

void clientlimit_free(struct clientlimit *l)
{
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
	l->total = 0;
}

bool clientlimit_is_admin(const struct clientlimit *l, uid_t uid)
{
	return uid == 0 || uid == l->slurm_uid;
}

static struct clientlimit_uid *uid_find(const struct clientlimit *l, uid_t uid)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].uid == uid)
			return &l->v[i];
	return NULL;
}

/* uid's entry, added when missing. */
static struct clientlimit_uid *uid_get(struct clientlimit *l, uid_t uid)
{
	struct clientlimit_uid *u = uid_find(l, uid);

	if (u)
		return u;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct clientlimit_uid *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		l->v = v;
		l->cap = cap;
	}
	u = &l->v[l->n++];
	*u = (struct clientlimit_uid){.uid = uid};
	return u;
}

static int admit_admin(struct clientlimit *l)
{
	if (l->total >= l->max_clients + l->reserved)
		return -EMFILE;
	l->total++;
	return 0;
}

static int admit_user(struct clientlimit *l, uid_t uid)
{
	struct clientlimit_uid *u = uid_find(l, uid);

	if (u && u->conns >= l->per_uid)
		return -EUSERS;
	/* Users hold max_clients at most, so the last `reserved` slots
	 * are the admins' whatever users do. */
	if (l->users >= l->max_clients ||
	    l->total >= l->max_clients + l->reserved)
		return -EMFILE;
	if (!u && !(u = uid_get(l, uid)))
		return -ENOMEM;
	u->conns++;
	l->users++;
	l->total++;
	return 0;
}

int clientlimit_admit(struct clientlimit *l, uid_t uid)
{
	int r =
	    clientlimit_is_admin(l, uid) ? admit_admin(l) : admit_user(l, uid);

	if (r < 0)
		l->refused++;
	return r;
}

void clientlimit_leave(struct clientlimit *l, uid_t uid, uint64_t bytes)
{
	struct clientlimit_uid *u = uid_find(l, uid);

	if (l->total)
		l->total--;
	if (!u)
		return;
	if (l->users)
		l->users--;
	u->bytes = bytes > u->bytes ? 0 : u->bytes - bytes;
	if (u->conns && --u->conns == 0)
		*u = l->v[--l->n]; /* the last entry fills the hole */
}

uint64_t clientlimit_bytes_left(const struct clientlimit *l, uid_t uid)
{
	const struct clientlimit_uid *u = uid_find(l, uid);

	if (clientlimit_is_admin(l, uid))
		return UINT64_MAX;
	if (!u)
		return l->per_uid_bytes;
	return u->bytes >= l->per_uid_bytes ? 0 : l->per_uid_bytes - u->bytes;
}

int clientlimit_charge(struct clientlimit *l, uid_t uid, uint64_t bytes)
{
	struct clientlimit_uid *u;

	if (clientlimit_is_admin(l, uid))
		return 0;
	u = uid_find(l, uid);
	if (!u || bytes > clientlimit_bytes_left(l, uid))
		return -ENOBUFS;
	u->bytes += bytes;
	return 0;
}
