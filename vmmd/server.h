/* SPDX-License-Identifier: MIT */
/* vmmd's client socket: accepts, identifies peers with SO_PEERCRED,
 * decodes requests and dispatches them. A bad message closes that client,
 * never the daemon. */
#ifndef VMMD_SERVER_H
#define VMMD_SERVER_H

#include "vmmd.h"

int server_listen(struct vmmd *d);
void server_close(struct vmmd *d);

#endif
