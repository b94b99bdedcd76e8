/* SPDX-License-Identifier: MIT */
/*
 * How the vmmds of a multi-node job agree on one checkpoint of all its
 * guests. They never talk to each other; they share the checkpoint store
 * (the node's checkpoint_dir on a file system every node mounts), and
 * write small files into the job's coordination directory there:
 *
 *   <root>/coord/<jobid>/            root's, 0700 (as every store directory)
 *       g<G>.plan                    node 0: "nnodes go_on [run]" of
 *                                    checkpoint group G (1, 2, ... per job)
 *       g<G>.frozen.<i>              node i's guest holds: its processes are
 *                                    stopped (the agent's freeze)
 *       g<G>.saved.<i>               node i's guest is saved: its seq in
 *                                    node i's store
 *       g<G>.outcome                 decided once, by whoever is first
 *                                    (link(2) of a complete file: atomic on
 *                                    local file systems and NFS):
 *                                    "complete N seq0 .. seq<N-1>" or
 *                                    "abort <node> <reason>"
 *       g<G>.verdict                 node 0, after a complete outcome the
 *                                    job does not go on from, once it
 *                                    asked Slurm to requeue the job:
 *                                    "requeued", "ended" (checkpointed,
 *                                    not requeued) or "goon <reason>"
 *                                    (an evacuation Slurm would not
 *                                    requeue: every node goes on from G);
 *                                    the other nodes wait for it before
 *                                    their parts end
 *       g<G>.back<R>.<i>             node i's guest is restored from G at
 *                                    the job's restart R and holds
 *       g0.evacuate.<i>              node i is evacuated: it asks the first
 *                                    node to save the job (the reason)
 *
 * Node i > 0 keeps its checkpoints in the sub-store <root>/n<i> (node 0 in
 * <root> itself, as a one-node job), so each node's seq directories are
 * its own and the store's code is the same.
 *
 * Who can write here is who can write the store: root on every node (the
 * store is root's all the way, CKPT_STORE_NODE). Every name and number
 * read back is parsed strictly; nothing read here becomes a path.
 *
 * This module does I/O on the directory but does not log.
 */
#ifndef VMMD_CKPT_COORD_H
#define VMMD_CKPT_COORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CKPT_COORD_MAX_NODES 1024u
#define CKPT_COORD_MAX_TEXT  (16u * 1024u)

struct ckpt_coord {
	int fd; /* <root>/coord/<jobid>, or -1 */
	uint32_t job_id;
};
#define CKPT_COORD_INIT  \
	{                \
		.fd = -1 \
	}

/* Opens (create: makes) the job's coordination directory in the store at
 * root (the node's checkpoint_dir: root's all the way). -errno with the
 * reason in err. */
int ckpt_coord_open(const char *root, uint32_t job_id, bool create,
		    struct ckpt_coord *ret, char *err, size_t errlen);
void ckpt_coord_close(struct ckpt_coord *c);
/* Removes the job's coordination directory (its end, not requeued). */
int ckpt_coord_remove(const char *root, uint32_t job_id);

/* Node i's sub-store below root: root itself for node 0. */
int ckpt_coord_node_root(const char *root, uint32_t node, char *buf,
			 size_t len);

/* The highest group with a plan, 0 for none. */
uint32_t ckpt_coord_last_plan(const struct ckpt_coord *c);
/* Node 0: writes the plan of the next group (its number in *ret_group). */
int ckpt_coord_plan(const struct ckpt_coord *c, uint32_t nnodes, bool go_on,
		    uint32_t *ret_group);
/* Group g's plan: 0, -ENOENT (none yet), -EBADMSG. */
int ckpt_coord_read_plan(const struct ckpt_coord *c, uint32_t g,
			 uint32_t *ret_nnodes, bool *ret_go_on);
/* The same with the run of the job (Slurm's restart count) the plan is
 * for: "nnodes go_on run" (run > 0; run 0 is not written), so that a
 * plan left undecided by an earlier run of a requeued job is never taken
 * by a node of the next. */
int ckpt_coord_plan_run(const struct ckpt_coord *c, uint32_t nnodes, bool go_on,
			uint32_t run, uint32_t *ret_group);
int ckpt_coord_read_plan_run(const struct ckpt_coord *c, uint32_t g,
			     uint32_t *ret_nnodes, bool *ret_go_on,
			     uint32_t *ret_run);

/* g<G>.<what>.<node> with text (may be ""); what: "frozen", "saved",
 * "back<R>". */
int ckpt_coord_mark(const struct ckpt_coord *c, uint32_t g, const char *what,
		    uint32_t node, const char *text);
/* Removes node's mark (-ENOENT: none). */
int ckpt_coord_unmark(const struct ckpt_coord *c, uint32_t g, const char *what,
		      uint32_t node);
/* How many of nodes 0 .. nnodes-1 have marked what in group g. */
uint32_t ckpt_coord_count(const struct ckpt_coord *c, uint32_t g,
			  const char *what, uint32_t nnodes);
/* The text of node's mark (NUL-terminated): 0 or -errno. */
int ckpt_coord_read_mark(const struct ckpt_coord *c, uint32_t g,
			 const char *what, uint32_t node, char *buf,
			 size_t len);

/* Decides group g's outcome if no one did: 1 this text won, 0 another
 * was there first (read it with ckpt_coord_outcome), -errno. */
int ckpt_coord_decide(const struct ckpt_coord *c, uint32_t g, const char *text);
/* Group g's outcome text: 0, -ENOENT (undecided), -errno. */
int ckpt_coord_outcome(const struct ckpt_coord *c, uint32_t g, char *buf,
		       size_t len);

/* A "complete" outcome: its node count and node's seq. -EBADMSG for
 * anything else (an abort included), -ERANGE for a node it lacks. */
int ckpt_coord_parse_complete(const char *text, uint32_t node,
			      uint32_t *ret_nnodes, uint32_t *ret_seq);
/* The newest group whose outcome is complete: 0 and *ret_group, or
 * -ENOENT. */
int ckpt_coord_latest_complete(const struct ckpt_coord *c, uint32_t *ret_group);

/* Node 0's word on a complete group after which the job does not go on,
 * once it asked Slurm to requeue the job (g<G>.verdict): the other nodes
 * end their parts only when Slurm took the job over, and go on with node
 * 0 when it would not requeue an evacuated one. */
enum ckpt_verdict {
	CKPT_VERDICT_REQUEUED, /* "requeued": Slurm requeued the job */
	CKPT_VERDICT_ENDED,    /* "ended": it ends, checkpointed, not
				* requeued */
	CKPT_VERDICT_GOON,     /* "goon REASON": an evacuation Slurm would
				* not requeue; every node goes on from the
				* group */
};
/* Writes group g's verdict (why: goon's reason, one line of printable
 * text; NULL otherwise). */
int ckpt_coord_verdict(const struct ckpt_coord *c, uint32_t g,
		       enum ckpt_verdict v, const char *why);
/* Parses a verdict's text: 0 (goon's reason in why, cut to len), or
 * -EBADMSG for anything else than one of the three lines. */
int ckpt_coord_parse_verdict(const char *text, enum ckpt_verdict *ret,
			     char *why, size_t len);
/* Group g's verdict: 0, -ENOENT (none yet), -EBADMSG, -errno. */
int ckpt_coord_read_verdict(const struct ckpt_coord *c, uint32_t g,
			    enum ckpt_verdict *ret, char *why, size_t len);

#endif
