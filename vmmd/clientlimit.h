/* SPDX-License-Identifier: MIT */
/*
 * Who may hold how many of vmmd's client connections (those that have not
 * yet sent their request), and how many request bytes each user may make
 * vmmd buffer. Identity is the peer's SO_PEERCRED uid, never the message.
 *
 * Users share max_clients, each uid at most per_uid of them and per_uid_bytes
 * of requests being received. Root and the Slurm user (admins) are not
 * bound per uid; all connections together are at most max_clients +
 * reserved, and users never take the last `reserved`, so that `vmenvctl
 * status` and Slurm's start/stop always get through, whatever the users
 * hold (issue 14, finding 5).
 *
 * Pure: no I/O, no logging. A zeroed struct plus clientlimit_configure()
 * is a valid empty one; clientlimit_free() releases it.
 */
#ifndef VMMD_CLIENTLIMIT_H
#define VMMD_CLIENTLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct clientlimit_uid {
	uid_t uid;
	uint32_t conns;
	uint64_t bytes;
};

struct clientlimit {
	uint32_t max_clients, per_uid, reserved;
	uint64_t per_uid_bytes;
	uid_t slurm_uid; /* 0: only root is an admin */
	uint32_t total;	 /* connections held, admins' included */
	uint32_t users;	 /* ... of them by users */
	/* Users that hold a connection (admins are not counted per uid). */
	struct clientlimit_uid *v;
	size_t n, cap;
	uint64_t refused; /* connections refused so far */
	/* The caller's: when it last logged a refusal, and the count then. */
	uint64_t logged_ms, logged_refused;
};

void clientlimit_configure(struct clientlimit *l, uint32_t max_clients,
			   uint32_t per_uid, uint32_t reserved,
			   uint64_t per_uid_bytes, uid_t slurm_uid);
void clientlimit_free(struct clientlimit *l);
bool clientlimit_is_admin(const struct clientlimit *l, uid_t uid);
/* A connection of uid: 0 when it is taken; -EUSERS when uid holds its
 * per_uid connections; -EMFILE when the shared slots (or, for an admin,
 * the reserved ones too) are all held; -ENOMEM. */
int clientlimit_admit(struct clientlimit *l, uid_t uid);
/* The connection ends, with the request bytes it was charged. */
void clientlimit_leave(struct clientlimit *l, uid_t uid, uint64_t bytes);
/* Request bytes uid may still make vmmd buffer (UINT64_MAX: an admin). */
uint64_t clientlimit_bytes_left(const struct clientlimit *l, uid_t uid);
/* Charges bytes of a request to uid: 0, or -ENOBUFS (nothing charged)
 * when they are more than clientlimit_bytes_left(). */
int clientlimit_charge(struct clientlimit *l, uid_t uid, uint64_t bytes);

#endif
