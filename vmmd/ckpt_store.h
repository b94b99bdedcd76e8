/* SPDX-License-Identifier: MIT */
/*
 * The checkpoint store: where a job's saved guest lives between its save
 * and its restore. A directory (node-local or on a shared file system):
 *
 *   <root>/<jobid>/<seq>/memory         libvirt's save image (RAM + devices)
 *                        disk.qcow2     the job's overlay (on the cached base
 *                                       image named in the manifest)
 *                        files          jobfiles_freeze()'s state (optional)
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
#include "util.h"

#define CKPT_MANIFEST "manifest.json"
#define CKPT_MEMORY   "memory"
#define CKPT_DISK     "disk.qcow2"
#define CKPT_FILES    "files"
/* What the file server got from the guest after its state was taken. */
#define CKPT_FILES_PENDING "files.pending"
#define CKPT_OUTPUT	   "output"
#define CKPT_MAX_FILES	   5
#define CKPT_MAX_SESSIONS  64
#define CKPT_MAX_MANIFEST  (4u * 1024u * 1024u)
#define CKPT_MAX_TEXT	   (1u * 1024u * 1024u) /* spec, domain XML */
#define CKPT_FORMAT	   1u

struct ckpt_file {
	char name[16]; /* one of CKPT_MEMORY, CKPT_DISK, CKPT_FILES */
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
	char files_kind[8]; /* vmmd/jobfiles.h's kind name: the guest's ABI */
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

/* JSON text of m (malloc'ed, caller frees). 0 or -ENOMEM. */
int ckpt_manifest_encode(const struct ckpt_manifest *m, char **ret);
/* Parses a manifest. Unknown keys, missing keys, bad values, a file name
 * outside the known set: -EBADMSG with the reason in err. */
int ckpt_manifest_decode(const char *text, size_t len,
			 struct ckpt_manifest *ret, char *err, size_t errlen);

/* <root>/<jobid> and <root>/<jobid>/<seq>. 0 or -ENAMETOOLONG. */
int ckpt_store_job_dir(const char *root, uint32_t job_id, char *buf,
		       size_t len);
int ckpt_store_seq_dir(const char *root, uint32_t job_id, uint32_t seq,
		       char *buf, size_t len);

/* Removes every incomplete <seq> directory of the job (job_id 0: of every
 * job under root) that nothing wrote to for idle_s seconds (a save in
 * progress, maybe another node's on a shared store, keeps writing), and
 * the job's directory when nothing is left. Returns the number removed or
 * -errno. */
#define CKPT_GC_IDLE_S 600u
int ckpt_store_gc(const char *root, uint32_t job_id, uint32_t idle_s);

/* The highest seq of the job with a manifest: 0 and *ret_seq, or -ENOENT. */
int ckpt_store_latest(const char *root, uint32_t job_id, uint32_t *ret_seq);

/* Starts a save: gc, then creates the next seq directory (0700) and
 * returns it in dir and *ret_seq. */
int ckpt_store_begin(const char *root, uint32_t job_id, uint32_t *ret_seq,
		     char *dir, size_t dirlen, char *err, size_t errlen);

/* Completes a save in dir: hashes each present file (memory must be
 * there; disk.qcow2, files and output may not), fills m->files, writes the manifest
 * atomically, then removes the job's older seqs. On failure the seq
 * directory is removed and the older checkpoint stays. */
int ckpt_store_commit(const char *root, const char *dir,
		      struct ckpt_manifest *m, char *err, size_t errlen);

/* Loads the manifest of dir (no hashing). */
int ckpt_store_load(const char *dir, struct ckpt_manifest *ret, char *err,
		    size_t errlen);
/* Loads and checks every file's size and sha256, and that the manifest is
 * the job's (job_id, uid). -EBADMSG with the file named when one does not
 * match. */
int ckpt_store_verify(const char *dir, uint32_t job_id, uint32_t uid,
		      struct ckpt_manifest *ret, char *err, size_t errlen);

/* The job ids with a directory in the store: *ret malloc'ed (caller
 * frees), *n entries, at most max. */
int ckpt_store_jobs(const char *root, uint32_t **ret, size_t *n, size_t max);
/* Removes every checkpoint of the job (manifests first). */
int ckpt_store_remove_job(const char *root, uint32_t job_id);

/* Removes one checkpoint (the manifest first, so a crash in between leaves
 * an incomplete directory, never a broken complete one). */
int ckpt_store_remove(const char *root, uint32_t job_id, uint32_t seq);

#endif
