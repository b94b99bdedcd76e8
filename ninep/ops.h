/* SPDX-License-Identifier: MIT */
/* The request handlers, shared between ops.c, ops_io.c and ops_dir.c. */
#ifndef VMENV_NINEP_OPS_H
#define VMENV_NINEP_OPS_H

#include "srv.h"

int ops_fid(struct srv *s, uint32_t fid, struct fid **ret);
int ops_stat(struct srv *s, const struct fid *f, struct stat *st);

/* ops_io.c */
int ops_lopen(struct srv *s, const struct ninep_req *q, struct ninep_out *o);
int ops_lcreate(struct srv *s, const struct ninep_req *q, struct ninep_out *o);
int ops_read(struct srv *s, const struct ninep_req *q, struct ninep_out *o);
int ops_write(struct srv *s, const struct ninep_req *q, struct ninep_out *o);
int ops_readdir(struct srv *s, const struct ninep_req *q, struct ninep_out *o);
int ops_fsync(struct srv *s, const struct ninep_req *q, struct ninep_out *o);
int ops_setattr(struct srv *s, const struct ninep_req *q, struct ninep_out *o);

/* ops_dir.c */
int ops_readlink(struct srv *s, const struct ninep_req *q, struct ninep_out *o);
int ops_mkdir(struct srv *s, const struct ninep_req *q, struct ninep_out *o);
int ops_symlink(struct srv *s, const struct ninep_req *q, struct ninep_out *o);
int ops_link(struct srv *s, const struct ninep_req *q, struct ninep_out *o);
int ops_unlinkat(struct srv *s, const struct ninep_req *q, struct ninep_out *o);
int ops_remove(struct srv *s, const struct ninep_req *q, struct ninep_out *o);
int ops_renameat(struct srv *s, const struct ninep_req *q, struct ninep_out *o);
int ops_rename(struct srv *s, const struct ninep_req *q, struct ninep_out *o);

#endif
