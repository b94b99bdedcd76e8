/* SPDX-License-Identifier: MIT */
/*
 * Bulk ports, host side (docs/design.md §9, agentwire.h): a guest has
 * cfg.bulk_ports more virtio-serial ports, and a session that gets one has
 * its stdout (and a merged stderr) written by the command straight into
 * it. vmmd reads each port's socket, keeps what lies between the
 * session's markers (common/bulkscan.h) and queues it toward the task
 * like relayed output.
 *
 * Backpressure: a port is read only while its session's queue toward the
 * task has room; QEMU then stops taking the guest's writes, and the
 * command blocks. A port without a session is always read, and what comes
 * is dropped: a hostile guest can make vmmd neither buffer nor block.
 * Checkpointing jobs, and jobs restored from a checkpoint (--vm-restore,
 * a requeue), get no ports: their output stays on the relay, which the
 * checkpoint knows how to hold and resume, and a restored guest must have
 * the saved one's devices. Whether the guest is restored is the owner's
 * knowledge (job.c asks ckpt.c): it says so in the restoring argument.
 *
 * A transport: the bytes go to the sink the port's claimer gave
 * (exec_output.c's session), never up by name.
 */
#ifndef VMMD_BULK_H
#define VMMD_BULK_H

#include <stdbool.h>
#include <stdint.h>

#include "agentwire.h"

struct dom_spec;
struct job;

/* Where a claimed port's output goes (the claimer's, e.g. an exec
 * session; ctx is passed back). */
struct bulk_sink {
	/* Bytes between the markers. Returns false when the claimer's queue
	 * is full: the port is then not read until bulk_resume(). */
	bool (*output)(void *ctx, const uint8_t *p, size_t n);
	/* The end marker came: all the output is in. The port is free
	 * again before the call, which may free ctx. */
	void (*end)(void *ctx);
};

/* The ports into the job's domain, unless the job may not use them.
 * restoring: the guest is restored from a checkpoint (no ports). */
void bulk_domspec(const struct job *j, struct dom_spec *s, bool restoring);
/* How many ports a guest gets: none for one that may be saved or was
 * restored (a port's bytes in flight are kept nowhere), else the node's
 * bulk_ports. */
struct vmmd_config;
uint32_t bulk_ports_of(const struct vmmd_config *c, bool saved);
/* The agent knows bulk ports: connects to the job's (one that cannot be
 * reached is never offered), unless the job may not use them (restoring
 * as above). Idempotent. */
void bulk_attach(struct job *j, bool restoring);
/* Closes the ports (the job's guest is going away). */
void bulk_detach(struct job *j);
/* Gives a free port, armed with fresh markers, to the claimer whose
 * output goes to sink (with ctx; both must outlive the claim, until
 * sink->end or bulk_release): sets AW_EXEC_BULK, bulk_port and the
 * markers in e. -ENOENT when the job has no free port (the claimer then
 * uses the relay). */
int bulk_claim(struct job *j, const struct bulk_sink *sink, void *ctx,
	       struct aw_exec *e);
/* The claimer no longer owns the port. guest_err: the errno with which
 * the guest could not open it (EBUSY: a process of an earlier session
 * holds it), and then it is not offered again for a while; 0: it can. */
void bulk_release(struct job *j, uint32_t port, int guest_err);
/* The claimer's queue has room again: read on. */
void bulk_resume(struct job *j, uint32_t port);

#endif
