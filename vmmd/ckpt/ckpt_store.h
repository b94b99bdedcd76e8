/* SPDX-License-Identifier: MIT */
/*
 * The checkpoint store: where a job's saved guest lives between its save
 * and its restore. A directory (node-local or on a shared file system):
 *
 *   <root>/<jobid>/<seq>/memory         libvirt's save image (RAM + devices)
 *                        disk.qcow2     the job's overlay (on the cached base
 *                                       image named in the manifest)
 *                        files          jobfiles_freeze()'s state (optional)
 *                        files.pending  what the guest sent after it
 *                        files.m<i>     the state of mount i's server, and
 *                        files.m<i>.pending   its pending requests (a
 *                                       served job's --vm-mount; optional)
 *                        output         the batch output file as it was
 *                                       (optional; exec_ckpt_adopt)
 *                        manifest.json  written LAST, atomically
 *
 * A <seq> directory without a complete manifest does not exist: it is what
 * a save that was interrupted (vmmd killed, disk full) left, and
 * ckpt_store_gc() removes it. A new save goes to the highest complete seq
 * + 1; the previous one is removed only after the new manifest is in
 * place, so there is always one complete checkpoint or none.
 *
 * The manifest names every file with its size and sha256; ckpt_store_verify()
 * refuses a checkpoint whose files do not match, naming the file.
 *
 * This module does I/O on the store but does not log: errors go into the
 * caller's err.
 */
#ifndef VMMD_CKPT_STORE_H
#define VMMD_CKPT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "digest.h"
#include "safefs.h"
#include "util.h"

#define CKPT_MANIFEST "manifest.json"
#define CKPT_MEMORY   "memory"
#define CKPT_DISK     "disk.qcow2"
#define CKPT_FILES    "files"
/* What the file server got from the guest after its state was taken. */
#define CKPT_FILES_PENDING "files.pending"
#define CKPT_OUTPUT	   "output"
/* A served job's mounts (vmmd/files/jobmounts.h): mount i's server state
 * is CKPT_FILES_MOUNT_FMT, its pending requests that + ".pending". */
#define CKPT_FILES_MOUNT_FMT "files.m%u"
#define CKPT_MAX_MOUNT_FILES 16u
#define CKPT_MAX_FILES	     (5 + 2 * CKPT_MAX_MOUNT_FILES)
#define CKPT_MAX_SESSIONS    64
#define CKPT_MAX_MANIFEST    (4u * 1024u * 1024u)
#define CKPT_MAX_TEXT	     (1u * 1024u * 1024u) /* spec, domain XML */
#define CKPT_FORMAT	     1u

struct ckpt_file {
	char name[24]; /* ckpt_file_name_ok */
	uint64_t size;
	char sha256[DIGEST_HEX_LEN + 1];
};

/* A session that was running in the guest when it was saved: the agent
 * keeps it (it is in guest memory); a task of the restarted job
 * re-attaches to it. batch: the session that runs the batch script. */
struct ckpt_session {
	uint32_t id;
	bool batch;
	bool merge_stderr;
	/* Output bytes already written to the task's stdout/stderr before
	 * the save (vmmd's count), so a re-attach neither loses nor repeats
	 * a byte. */
	uint64_t out_bytes[2];
	/* Output window the agent counts as in flight (returned with CREDIT
	 * after the restore). */
	uint32_t credit;
};

struct ckpt_manifest {
	uint32_t format;
	uint32_t job_id;
	uint32_t uid;
	uint32_t restart_count;
	uint32_t seq;
	char node[128];
	char image[VMENV_MAX_IMAGE_NAME];
	char base_sha256[DIGEST_HEX_LEN + 1]; /* "" for a user's image path */
	char cpu_model[64];
	char files_kind
	    [8]; /* vmmd/files/jobfiles.h's kind name: the guest's ABI */
	/* The job's working directory, where the guest has it mounted ("" in
	 * manifests written before it was recorded). */
	char work_dir[VMENV_MAX_PATH];
	uint32_t vcpus;
	uint32_t mem_mib;
	int64_t created; /* wall clock, s */
	/* The job's checkpoint_keep: the newest checkpoint outlives its
	 * restores and the job's end, up to the node's retention time from
	 * created (absent in older manifests: false). */
	bool keep;
	char *spec;	  /* vmmd/spec.h's serialised merged spec (owned) */
	char *domain_xml; /* owned */
	uint32_t next_session;
	size_t nsessions;
	struct ckpt_session sessions[CKPT_MAX_SESSIONS];
	size_t nfiles;
	struct ckpt_file files[CKPT_MAX_FILES];
};

/* Frees the owned strings; the struct can be reused. Accepts NULL. */
void ckpt_manifest_clear(struct ckpt_manifest *m);

/* Mount i's state file name (pending: its pending requests') in buf;
 * -EINVAL for i >= CKPT_MAX_MOUNT_FILES. */
int ckpt_file_mount_name(uint32_t i, bool pending, char *buf, size_t len);
/* Whether name is one a checkpoint may hold (the manifest lists no
 * other): CKPT_MEMORY, CKPT_DISK, CKPT_FILES(_PENDING), CKPT_OUTPUT, or
 * a mount's, exactly as ckpt_file_mount_name spells it. */
bool ckpt_file_name_ok(const char *name);
/* How many served mounts' states m lists (files.m0 ... files.m<n-1>, the
 * first missing index ends them). */
uint32_t ckpt_manifest_mounts(const struct ckpt_manifest *m);

/* JSON text of m (malloc'ed, caller frees). 0 or -ENOMEM. */
int ckpt_manifest_encode(const struct ckpt_manifest *m, char **ret);
/* Parses a manifest. Unknown keys, missing keys, bad values, a file name
 * outside the known set: -EBADMSG with the reason in err. */
int ckpt_manifest_decode(const char *text, size_t len,
			 struct ckpt_manifest *ret, char *err, size_t errlen);

/* --- the store on disk -------------------------------------------------
 *
 * Every directory of a checkpoint is root's (vmmd's euid) and no one
 * else's (mode 0700): <jobid> and <seq> are made by vmmd and checked on
 * every open, and refused (-EPERM, with what was found) otherwise. The
 * store directory above them is either the node's (checkpoint_dir: root's
 * all the way from /, refused otherwise) or one a user named
 * (--vm-checkpoint-dir), which may be the user's: there vmmd relies only
 * on the <jobid> directories it made, which the user can rename but not
 * change, never on a path (nothing below the store is reached but
 * through a directory fd opened without following links; libvirt gets a
 * path pinned to such an fd, ckpt_store_path). A manifest is evidence
 * because only root can have written it: it sits in a root-only
 * directory reached that way. docs/security.md has the table. */

struct ckpt_store {
	int fd; /* the store's directory, or -1 */
	/* Every directory from / to the store is root's and writable by no
	 * one else (sfs_open_dir_path): its paths are as safe as its fds. */
	bool trusted;
	char path[VMENV_MAX_PATH];
};
#define CKPT_STORE_INIT  \
	{                \
		.fd = -1 \
	}

/* Flags of ckpt_store_open. */
#define CKPT_STORE_CREATE 1u /* make missing directories (0700) */
#define CKPT_STORE_NODE	  2u /* the node's own: root's all the way */

/* Opens the store at path, never following a symlink on the way (-ELOOP:
 * a policy's prefix cannot be escaped through one). A store on a FUSE
 * file system is refused (its owner decides what root sees there). -errno
 * with the reason in err. */
int ckpt_store_open(const char *path, unsigned flags, struct ckpt_store *ret,
		    char *err, size_t errlen);
/* Accepts a closed store; the struct can be opened again. */
void ckpt_store_close(struct ckpt_store *s);

/* <root>/<jobid> and <root>/<jobid>/<seq>, for messages. 0 or
 * -ENAMETOOLONG. */
int ckpt_store_job_dir(const char *root, uint32_t job_id, char *buf,
		       size_t len);
int ckpt_store_seq_dir(const char *root, uint32_t job_id, uint32_t seq,
		       char *buf, size_t len);

/* Removes every incomplete <seq> directory of the job (job_id 0: of every
 * job in the store) that nothing wrote to for idle_s seconds (a save in
 * progress, maybe another node's on a shared store, keeps writing), and
 * the job's directory when nothing is left. Returns the number removed or
 * -errno. */
#define CKPT_GC_IDLE_S 600u
int ckpt_store_gc(const struct ckpt_store *s, uint32_t job_id, uint32_t idle_s);

/* Whether the store has a directory of the job (complete or not). */
bool ckpt_store_has_job(const struct ckpt_store *s, uint32_t job_id);

/* The highest seq of the job with a manifest: 0 and *ret_seq; -ENOENT
 * for none; -errno (-EPERM: the job's directory is not root's only) with
 * the reason in err (may be NULL). */
int ckpt_store_latest(const struct ckpt_store *s, uint32_t job_id,
		      uint32_t *ret_seq, char *err, size_t errlen);

/* Opens <jobid>/<seq> (checked as above): its fd, its path in dir. */
int ckpt_store_open_seq(const struct ckpt_store *s, uint32_t job_id,
			uint32_t seq, char *dir, size_t dirlen, char *err,
			size_t errlen);

/* Starts a save: gc, then creates the next seq directory (0700) and
 * returns its fd, its path in dir and *ret_seq. */
int ckpt_store_begin(const struct ckpt_store *s, uint32_t job_id,
		     uint32_t *ret_seq, char *dir, size_t dirlen, char *err,
		     size_t errlen);

/* A path to name (may be "": the directory itself) in the checkpoint
 * directory dirfd, whose path is dir, for code that takes paths
 * (libvirt's save and restore, jobfiles): dir/name in a trusted store;
 * elsewhere one pinned to dirfd (sfs_fd_path), which no rename on the
 * way can redirect. */
int ckpt_store_path(const struct ckpt_store *s, int dirfd, const char *dir,
		    const char *name, char *buf, size_t len);

/* Completes a save in dirfd (the seq directory begin returned; dir its
 * path for messages): hashes each present file (memory must be there;
 * disk.qcow2, files, files.pending, output and the mounts' files.m<i>
 * and files.m<i>.pending may not; each a plain file
 * of root's with one link), fills m->files, writes the manifest
 * atomically, then removes the job's older seqs. On failure the seq
 * directory is removed and the older checkpoint stays. */
int ckpt_store_commit(int dirfd, const char *dir, struct ckpt_manifest *m,
		      char *err, size_t errlen);
/* The same, but the job's older seqs stay (a multi-node job's group may
 * still be abandoned); ckpt_store_drop_older removes them once it is
 * complete. */
int ckpt_store_commit_only(int dirfd, const char *dir, struct ckpt_manifest *m,
			   char *err, size_t errlen);
int ckpt_store_drop_older(int dirfd, uint32_t seq);

/* Marks the complete checkpoint in dirfd kept (its manifest's keep, for
 * --vm-restore and the retention time): a job whose requeue failed keeps
 * the checkpoint it was saved to go on from. dir names it in err. */
int ckpt_store_keep(int dirfd, const char *dir, char *err, size_t errlen);

/* Removes the seq directory dirfd (numbered seq; a save that failed) from
 * the job directory that holds it, by fd. */
int ckpt_store_discard(int dirfd, uint32_t seq);

/* Loads the manifest in dirfd (no hashing). dir names it in err. */
int ckpt_store_load(int dirfd, const char *dir, struct ckpt_manifest *ret,
		    char *err, size_t errlen);

/* A checkpoint checked for a restore: the manifest, and every file it
 * lists opened once (O_NOFOLLOW|O_NONBLOCK, a plain file of root's with
 * one link) and hashed from that fd; what is restored is read from the
 * same fd. Files the manifest does not list are never opened. */
struct ckpt_verified {
	struct ckpt_manifest man;
	int fd[CKPT_MAX_FILES]; /* of man.files[i] */
};
void ckpt_verified_init(struct ckpt_verified *v);
/* Closes the fds and clears the manifest; accepts an initialised one. */
void ckpt_verified_clear(struct ckpt_verified *v);
/* The fd of the listed file name (still owned by v) and its size, or
 * -ENOENT when the manifest does not list it. */
int ckpt_verified_fd(const struct ckpt_verified *v, const char *name,
		     uint64_t *ret_size);

/* Loads the manifest in dirfd, checks that it is the job's (job_id, uid),
 * lists memory, and that every listed file has its size and sha256.
 * -EBADMSG with the file named when one does not match; -EPERM for
 * another job's or user's. */
int ckpt_store_verify(int dirfd, const char *dir, uint32_t job_id, uint32_t uid,
		      struct ckpt_verified *ret, char *err, size_t errlen);

/* The job ids with a directory in the store: *ret malloc'ed (caller
 * frees), *n entries, at most max. */
int ckpt_store_jobs(const struct ckpt_store *s, uint32_t **ret, size_t *n,
		    size_t max);
/* Removes every checkpoint of the job (manifests first). */
int ckpt_store_remove_job(const struct ckpt_store *s, uint32_t job_id);
/* Removes one checkpoint (the manifest first, so a crash in between leaves
 * an incomplete directory, never a broken complete one). */
int ckpt_store_remove(const struct ckpt_store *s, uint32_t job_id,
		      uint32_t seq);

/* What a user's kept checkpoints (complete, keep in the manifest) in the
 * store take, but for those of job except (its next save replaces
 * them). */
struct ckpt_kept {
	uint32_t count;
	uint64_t bytes;
	uint32_t newest_job; /* one of them, for messages (0: none) */
};
int ckpt_store_kept(const struct ckpt_store *s, uint32_t uid, uint32_t except,
		    struct ckpt_kept *ret);

/* The bytes an unprivileged writer may still use on the store's file
 * system (statvfs f_bavail: root's reserve is not the checkpoints'). */
int ckpt_store_avail(const struct ckpt_store *s, uint64_t *ret);

#endif
