/* SPDX-License-Identifier: MIT */
/*
 * nl: just enough netlink for a job's host network (hostnet_linux.c,
 * nftguard.c): messages built into a fixed buffer, sent on a socket of
 * vmmd's own, every reply's length checked before it is read. No library:
 * a request is a header, a family header and attributes.
 *
 * Building never fails half way silently: the first overflow sets m->err
 * (-EMSGSIZE) and every later call does nothing, so a caller checks once,
 * when it sends.
 */
#ifndef VMMD_NL_H
#define VMMD_NL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/netlink.h>

#define NL_MSG_MAX 16384u

struct nl_msg {
	uint8_t buf[NL_MSG_MAX];
	size_t len;
	int err;
	uint32_t nacks;	    /* messages that asked for an ACK */
	uint32_t first_seq; /* of the first message, ACK or not */
	uint32_t last_seq;
};

struct nl_sock {
	int fd;
	uint32_t seq;
};

/* A netlink socket of protocol proto (NETLINK_ROUTE, NETLINK_NETFILTER).
 * 0 or -errno. */
int nl_open(struct nl_sock *s, int proto);
void nl_close(struct nl_sock *s);

void nl_msg_init(struct nl_msg *m);
/* Starts a message (header + hdr_len bytes of family header, copied from
 * hdr) in m; returns its offset for nl_end. flags: NLM_F_*; NLM_F_REQUEST
 * is added. NLM_F_ACK messages are counted for nl_send_wait. */
size_t nl_begin(struct nl_msg *m, struct nl_sock *s, uint16_t type,
		uint16_t flags, const void *hdr, size_t hdr_len);
void nl_end(struct nl_msg *m, size_t off);
void nl_put(struct nl_msg *m, uint16_t type, const void *p, size_t n);
void nl_put_u8(struct nl_msg *m, uint16_t type, uint8_t v);
void nl_put_u16(struct nl_msg *m, uint16_t type, uint16_t v);
void nl_put_u32(struct nl_msg *m, uint16_t type, uint32_t v);
/* Big endian, as nf_tables wants its integers. */
void nl_put_be16(struct nl_msg *m, uint16_t type, uint16_t v);
void nl_put_be32(struct nl_msg *m, uint16_t type, uint32_t v);
/* With its NUL. */
void nl_put_str(struct nl_msg *m, uint16_t type, const char *s);
/* A nested attribute (NLA_F_NESTED): returns its offset for nl_nest_end. */
size_t nl_nest(struct nl_msg *m, uint16_t type);
void nl_nest_end(struct nl_msg *m, size_t off);

/* Sends m and reads until every NLM_F_ACK message was answered. 0, or the
 * first error the kernel reported (-errno), or -EMSGSIZE when m
 * overflowed. */
int nl_send_wait(struct nl_sock *s, struct nl_msg *m);

/* Sends one dump request and calls cb for each message of the answer (the
 * whole message: cb checks what it reads with nl_attrs). cb returning < 0
 * stops the walk (after the dump is drained) with that error. */
int nl_dump(struct nl_sock *s, struct nl_msg *m,
	    int (*cb)(const struct nlmsghdr *h, void *data), void *data);

/* Attributes of a message after its family header, or of a nested
 * attribute: tb[type] for each type <= max (the last one wins), NULL for
 * the others. -EPROTO when an attribute runs past the end. */
int nl_attrs(const void *p, size_t n, const struct nlattr **tb, uint16_t max);
/* The payload of attribute a and its length. */
const void *nl_data(const struct nlattr *a);
size_t nl_len(const struct nlattr *a);
/* A NUL-terminated string attribute copied into out (size bytes):
 * -EPROTO when it is not terminated or does not fit. */
int nl_get_str(const struct nlattr *a, char *out, size_t size);
/* A u32 attribute; -EPROTO when it is not 4 bytes. */
int nl_get_u32(const struct nlattr *a, uint32_t *ret);

#endif
