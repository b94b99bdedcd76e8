/* SPDX-License-Identifier: MIT */
/*
 * A multi-node job's coordination files (ckpt_coord.h) as this node
 * reads and writes them: opened, a group abandoned, other nodes'
 * evacuation requests, an outcome's reason, the barriers' marks, the
 * complete outcome written, the first node's verdict after it, a group
 * restored from already. The group's steps (the plan, the watch, the
 * barriers that call the save and the restore back) are ckpt_sched.c's
 * and ckpt.c's: these helpers call neither. docs/checkpoint.md,
 * "Multi-node jobs".
 */
#include "ckpt_priv.h"

#include "ckpt.h"
#include "log.h"
#include "vmmd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int ckpt_group_open(struct job *j, char *err, size_t errlen)
{
	struct ckpt_job *c = j->ckpt;

	if (c->coord.fd >= 0)
		return 0;
	/* The nodes agree through the node's store, which only root can
	 * write on every node; a user's directory is not that. */
	if (j->spec.v.checkpoint_dir[0])
		return err_set(err, errlen, -EOPNOTSUPP,
			       "job %u: checkpoint refused: a job of %u nodes "
			       "is checkpointed into the nodes' store (%s), "
			       "not into --vm-checkpoint-dir=%s",
			       j->id, j->slurm.nnodes, j->d->cfg.checkpoint_dir,
			       j->spec.v.checkpoint_dir);
	return ckpt_coord_open(ckpt_root(j), j->id, true, &c->coord, err,
			       errlen);
}

/* Abandons the group (unless its outcome is decided already): every
 * node sees it and goes on. */
void ckpt_group_abort(struct job *j, const char *why)
{
	struct ckpt_job *c = j->ckpt;
	char text[PROTO_MAX_ERROR + 160];
	int r;

	if (!c->group || c->coord.fd < 0)
		return;
	str_printf(text, sizeof(text), "abort %s %s\n", j->d->cfg.node_name,
		   why);
	r = ckpt_coord_decide(&c->coord, c->group, text);
	if (r < 0)
		log_err("job %u: cannot end checkpoint group %u: %s", j->id,
			c->group, strerror(-r));
	else if (r == 1)
		log_warn("job %u: checkpoint group %u abandoned by node %s",
			 j->id, c->group, j->d->cfg.node_name);
}

/* The first node: the other nodes' evacuation requests, taken (removed):
 * true if there was one, its reason in why. */
bool ckpt_take_evacuations(struct job *j, char *why, size_t len)
{
	struct ckpt_job *c = j->ckpt;
	char text[PROTO_MAX_ERROR], safe[PROTO_MAX_ERROR], *sp;
	bool any = false;

	for (uint32_t i = 1; i < j->slurm.nnodes; i++) {
		if (ckpt_coord_read_mark(&c->coord, 0, "evacuate", i, text,
					 sizeof(text)) < 0)
			continue;
		ckpt_coord_unmark(&c->coord, 0, "evacuate", i);
		if (any)
			continue;
		/* "NODE REASON", as group_evacuate wrote it. */
		text[strcspn(text, "\n")] = '\0';
		printable(text, safe, sizeof(safe));
		if ((sp = strchr(safe, ' ')))
			*sp++ = '\0';
		str_printf(c->evac_node, sizeof(c->evac_node), "%s", safe);
		str_printf(c->evac_reason, sizeof(c->evac_reason), "%s",
			   sp ? sp : "");
		str_printf(why, len, "node %s (node %u of the job, %s)",
			   c->evac_node, i, c->evac_reason);
		any = true;
	}
	return any;
}

/* The outcome's reason, for messages: "abort NODE WHY\n" -> "NODE: WHY". */
void ckpt_abort_reason(const char *out, char *buf, size_t len)
{
	char text[PROTO_MAX_ERROR], safe[PROTO_MAX_ERROR], *sp;
	const char *p = strncmp(out, "abort ", 6) == 0 ? out + 6 : out;

	snprintf(text, sizeof(text), "%s", p);
	text[strcspn(text, "\n")] = '\0';
	printable(text, safe, sizeof(safe));
	if ((sp = strchr(safe, ' ')))
		*sp++ = '\0';
	str_printf(buf, len, "node %s%s%s", safe, sp ? ": " : "", sp ? sp : "");
}

/* Every node's guest reached the barrier this node waited at. */
void ckpt_barrier_passed(struct job *j, const char *state, const char *next)
{
	struct ckpt_job *c = j->ckpt;

	c->wait = CW_NONE;
	log_info("job %u: checkpoint group %u: every node's guest %s (%llu ms "
		 "after this node's); %s",
		 j->id, c->group, state,
		 (unsigned long long)(now_ms() - c->wait_t0), next);
}

/* Every node's guest is saved: the outcome, with each node's seq. */
bool ckpt_decide_complete(struct job *j)
{
	struct ckpt_job *c = j->ckpt;
	char text[CKPT_COORD_MAX_TEXT], seq[32];
	size_t len;
	uint32_t v;

	len = (size_t)snprintf(text, sizeof(text), "complete %u",
			       j->slurm.nnodes);
	for (uint32_t i = 0; i < j->slurm.nnodes; i++) {
		if (ckpt_coord_read_mark(&c->coord, c->group, "saved", i, seq,
					 sizeof(seq)) < 0 ||
		    (seq[strcspn(seq, "\n")] = '\0', parse_u32(seq, &v)) < 0 ||
		    len + 12 >= sizeof(text)) {
			ckpt_group_abort(j,
					 "a node's saved mark is unreadable");
			return false;
		}
		len +=
		    (size_t)snprintf(text + len, sizeof(text) - len, " %u", v);
	}
	if (ckpt_coord_decide(&c->coord, c->group, text) != 1)
		return false;
	log_notice("job %u: checkpoint group %u complete: %s", j->id, c->group,
		   text);
	return true;
}

/* The first node, once it asked Slurm to requeue the job after a complete
 * group: what the other nodes do (end their parts, or go on). */
void ckpt_group_verdict(struct job *j, enum ckpt_verdict v, const char *why)
{
	struct ckpt_job *c = j->ckpt;
	char safe[PROTO_MAX_ERROR];
	int r;

	if (why)
		printable(why, safe, sizeof(safe));
	r = c->coord.fd < 0
		? -EBADF
		: ckpt_coord_verdict(&c->coord, c->group, v, why ? safe : NULL);
	/* The other nodes then end their parts at their bound's end. */
	if (r < 0)
		log_err("job %u: checkpoint group %u: cannot tell the job's "
			"other nodes what Slurm did (store %s): %s",
			j->id, c->group, ckpt_root(j), strerror(-r));
	else
		log_info("job %u: checkpoint group %u: told the job's other "
			 "nodes: %s",
			 j->id, c->group,
			 v == CKPT_VERDICT_REQUEUED ? "requeued"
			 : v == CKPT_VERDICT_ENDED  ? "it ends, not requeued"
						    : "it goes on");
}

void ckpt_back_name(const struct job *j, char *buf, size_t len)
{
	snprintf(buf, len, "back%u", j->slurm.restart_count);
}

/* Group g, complete, was restored from at an earlier restart with every
 * node's guest back (g<G>.back<R>.*), and its checkpoints are not kept:
 * each node removed its own once its guest went on. An on-demand group's
 * first such set is its own going on, which keeps them; so is that of an
 * evacuation's group Slurm would not requeue (its verdict "goon"). */
bool ckpt_group_used(const struct job *j, const struct ckpt_coord *co,
		     uint32_t g, uint32_t n)
{
	enum ckpt_verdict v;
	uint32_t sets = 0, pn;
	bool go_on = false;
	char what[24];

	if (j->spec.v.checkpoint_keep)
		return false;
	if (ckpt_coord_read_plan(co, g, &pn, &go_on) < 0)
		go_on = false;
	if (ckpt_coord_read_verdict(co, g, &v, NULL, 0) == 0 &&
	    v == CKPT_VERDICT_GOON)
		go_on = true;
	for (uint32_t r = 0; r < j->slurm.restart_count; r++) {
		snprintf(what, sizeof(what), "back%u", r);
		if (ckpt_coord_count(co, g, what, n) == n)
			sets++;
	}
	return sets > (go_on ? 1u : 0u);
}
