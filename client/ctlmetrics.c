/* SPDX-License-Identifier: MIT */
/*
 * vmenvctl metrics: the node's numbers in Prometheus' text format, for
 * node_exporter's textfile collector (docs/operations.md). vmmd formats
 * them (vmmd/metrics.h); this prints them as they came.
 */
#include "vmenvctl.h"

#include "proto.h"

#include <stdio.h>
#include <string.h>

int ctl_metrics(const char *sock, int timeout_ms)
{
	struct proto_request req = {.op = PROTO_OP_METRICS};
	struct proto_reply rep = {0};
	char err[256] = "";
	int r = proto_call(sock, &req, timeout_ms, &rep, err, sizeof(err));

	if (r < 0) {
		fprintf(stderr, "vmenvctl: vmmd at %s: %s%s%s\n", sock,
			strerror(-r), *err ? ": " : "", err);
		return 1;
	}
	if (rep.kind != PROTO_REPLY_OK || !rep.text) {
		fprintf(stderr, "vmenvctl: %s\n",
			rep.kind != PROTO_REPLY_OK ? rep.error
						   : "vmmd sent no metrics");
		proto_reply_clear(&rep);
		return 1;
	}
	fputs(rep.text, stdout);
	proto_reply_clear(&rep);
	return fflush(stdout) == 0 ? 0 : 1;
}
