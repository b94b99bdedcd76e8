/* SPDX-License-Identifier: MIT */
/*
 * Which job and node own a guest, read from the <metadata> vmmd puts into
 * every domain (domxml.c): <vmenv:job xmlns:vmenv='DOMXML_NS' id='N'
 * node='X'/>. A guest restored from a checkpoint keeps the domain name it
 * was saved with (libvirt insists), which may be another job's or another
 * node's (vmenv-<oldnode>-<oldjob>), but its metadata comes from this
 * allocation's XML: the owner is read from there, not from the name.
 * Pure: no I/O, no logging.
 */
#ifndef VMMD_DOMOWNER_H
#define VMMD_DOMOWNER_H

#include <stddef.h>
#include <stdint.h>

/* Finds the vmenv job element in xml (a whole domain's XML, or the element
 * alone as virDomainGetMetadata returns it: <job id="42" node="n1"/>, no
 * prefix, no namespace; either quote style) and
 * returns its id and node. -ENOENT without one; -EINVAL when its id is not
 * a job id or its node is not a plain node name. */
int domowner_parse(const char *xml, uint32_t *job_id, char *node,
		   size_t nodelen);

#endif
