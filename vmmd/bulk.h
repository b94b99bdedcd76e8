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
 * the saved one's devices.
 */
#ifndef VMMD_BULK_H
#define VMMD_BULK_H

#include <stdbool.h>
#include <stdint.h>

#include "agentwire.h"

struct dom_spec;
struct exec_session;
struct job;

/* The ports into the job's domain, unless the job may not use them. */
void bulk_domspec(const struct job *j, struct dom_spec *s);
/* The agent knows bulk ports: connects to the job's (one that cannot be
 * reached is never offered). Idempotent. */
void bulk_attach(struct job *j);
/* Closes the ports (the job's guest is going away). */
void bulk_detach(struct job *j);
/* Gives session s a free port, armed with fresh markers: sets
 * AW_EXEC_BULK, bulk_port and the markers in e. -ENOENT when the job has
 * no free port (s then uses the relay). */
int bulk_claim(struct job *j, struct exec_session *s, struct aw_exec *e);
/* The session no longer owns the port. guest_err: the errno with which
 * the guest could not open it (EBUSY: a process of an earlier session
 * holds it), and then it is not offered again for a while; 0: it can. */
void bulk_release(struct job *j, uint32_t port, int guest_err);
/* The owner's queue has room again: read on. */
void bulk_resume(struct job *j, uint32_t port);

#endif
