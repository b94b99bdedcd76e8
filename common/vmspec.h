/* SPDX-License-Identifier: MIT */
/*
 * The VM spec: what a user asks for, and what the node builds once the
 * site's policies are merged in (common/policy.h does the merge).
 *
 *   struct vmspec_request  the user's --vm-* options, parsed: one value per
 *                          field and a flag saying whether the user gave it.
 *   struct vmspec          the merged spec the node builds. Every field
 *                          remembers where its value came from (built-in
 *                          default, a policy's default, the user, a policy's
 *                          enforced value, or a policy's cap), for
 *                          `vmenvctl policy explain` and for messages.
 *
 * Both hold their values in a struct vmspec_values: plain C, no pointers,
 * copyable with '='. Other parts (devices, checkpoint, images) read
 * j->spec.v of a vmmd job; only policy.c writes a struct vmspec.
 *
 * Fields (policy key, user option, meaning):
 *   image             --vm-env              NAME[:VERSION] from the catalog,
 *                                           or an absolute path to the user's
 *                                           own image when image_paths is on
 *   image_paths       (policy only)         may image be a path
 *   checkpoint        --vm-checkpoint       save the guest before the time
 *                                           limit
 *   checkpoint_lead_s --vm-checkpoint-lead  how long before the end (s)
 *   checkpoint_dir    --vm-checkpoint-dir   where ("" = the node's default)
 *   requeue           --vm-requeue          requeue the job after a
 *                                           checkpoint
 *   checkpoint_keep   --vm-checkpoint-keep  keep the newest checkpoint after
 *                                           its restore and the job's end
 *                                           (for --vm-restore), up to the
 *                                           node's retention time
 *   restore_from      --vm-restore          a job id (0: none): start from
 *                                           that job's kept checkpoint
 *   hugepages         --vm-hugepages        none, 2M or 1G guest memory
 *                                           backing (preallocated)
 *   mem_headroom_pct  --vm-mem-headroom=N%  memory left to QEMU: the larger
 *   mem_headroom_mib  --vm-mem-headroom=NM  of pct of the allocation and mib
 *   ib_vfs            --vm-ib               InfiniBand virtual functions
 *   gpus              --vm-gpus             pass the GPUs Slurm allocated
 *   mounts            --vm-mount            host directories in the guest
 *   keep_overlay      --vm-keep-overlay     keep the disk overlay after the
 *                                           job
 *   cpu_model         --vm-cpu-model        host-passthrough, host-model or
 *                                           a QEMU model ("" = node default)
 *   emulator_threads  --vm-emulator-threads QEMU's own threads on the job's
 *                                           cores or the housekeeping cores
 *   warm_start        --vm-warm-start       start the guest from a template
 *                                           of its image and shape instead
 *                                           of booting it (docs/warmstart.md)
 *
 * Every string in a struct vmspec_values has been validated by this module:
 * image is a clean image reference or a clean absolute path, paths are
 * clean absolute paths without ':' or ',', cpu_model is [A-Za-z0-9_.+-].
 */
#ifndef VMENV_VMSPEC_H
#define VMENV_VMSPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VMSPEC_MAX_IMAGE      1024 /* a name or the path of a user image */
#define VMSPEC_MAX_PATH	      1024
#define VMSPEC_MAX_MOUNTS     16
#define VMSPEC_MAX_MOUNT_PATH 512
#define VMSPEC_MAX_CPU_MODEL  64
#define VMSPEC_MAX_OPTARG     4096 /* one option's text as the user wrote it */
#define VMSPEC_MAX_POLICY     64   /* a policy's name */
#define VMSPEC_MAX_FILE	      128  /* a policy file's base name */
/* Slurm's largest job id (MaxJobId cannot be set higher). */
#define VMSPEC_MAX_JOB_ID 0x03ff0000u

enum vmspec_field {
	VMSPEC_IMAGE,
	VMSPEC_IMAGE_PATHS,
	VMSPEC_CHECKPOINT,
	VMSPEC_CHECKPOINT_LEAD_S,
	VMSPEC_CHECKPOINT_DIR,
	VMSPEC_REQUEUE,
	VMSPEC_CHECKPOINT_KEEP,
	VMSPEC_RESTORE_FROM,
	VMSPEC_HUGEPAGES,
	VMSPEC_MEM_HEADROOM_PCT,
	VMSPEC_MEM_HEADROOM_MIB,
	VMSPEC_IB_VFS,
	VMSPEC_GPUS,
	VMSPEC_MOUNTS,
	VMSPEC_KEEP_OVERLAY,
	VMSPEC_CPU_MODEL,
	VMSPEC_EMULATOR_THREADS,
	VMSPEC_CHECKPOINT_FILES,
	VMSPEC_WARM_START,
	VMSPEC_NFIELDS
};

enum vmspec_hugepages { VMSPEC_HP_NONE, VMSPEC_HP_2M, VMSPEC_HP_1G };
enum vmspec_emulator { VMSPEC_EMU_JOB, VMSPEC_EMU_HOUSEKEEPING };
/* How a checkpointing job's working directory reaches its guest
 * (vmmd/files/jobfiles.h): the node's checkpoint_files, vmenv-9p, virtio-9p. */
enum vmspec_ckpt_files {
	VMSPEC_CF_NODE,
	VMSPEC_CF_SERVED,
	VMSPEC_CF_9P,
};

struct vmspec_mount {
	char src[VMSPEC_MAX_MOUNT_PATH]; /* on the host */
	char dst[VMSPEC_MAX_MOUNT_PATH]; /* in the guest */
	bool ro;
};

struct vmspec_mounts {
	uint32_t n;
	struct vmspec_mount m[VMSPEC_MAX_MOUNTS];
};

struct vmspec_values {
	char image[VMSPEC_MAX_IMAGE];
	bool image_paths;
	bool checkpoint;
	uint32_t checkpoint_lead_s;
	char checkpoint_dir[VMSPEC_MAX_PATH];
	bool requeue;
	bool checkpoint_keep;
	uint32_t restore_from; /* a job id, 0: none */
	uint32_t hugepages;    /* enum vmspec_hugepages */
	uint32_t mem_headroom_pct;
	uint32_t mem_headroom_mib;
	uint32_t ib_vfs;
	bool gpus;
	struct vmspec_mounts mounts;
	bool keep_overlay;
	char cpu_model[VMSPEC_MAX_CPU_MODEL];
	uint32_t emulator_threads; /* enum vmspec_emulator */
	uint32_t checkpoint_files; /* enum vmspec_ckpt_files */
	bool warm_start;
};

enum vmspec_origin {
	VMSPEC_BUILTIN,	 /* vmenv's (or the node's) built-in default */
	VMSPEC_DEFAULT,	 /* a policy's "default" */
	VMSPEC_USER,	 /* the user's option */
	VMSPEC_ENFORCED, /* a policy's "enforce" */
	VMSPEC_CAP,	 /* limited to a policy's "max" or "min" */
};

struct vmspec_src {
	enum vmspec_origin origin;
	char policy[VMSPEC_MAX_POLICY]; /* "" for BUILTIN and USER */
	char file[VMSPEC_MAX_FILE];
};

struct vmspec {
	struct vmspec_values v;
	struct vmspec_src src[VMSPEC_NFIELDS];
	struct vmspec_src mount_src[VMSPEC_MAX_MOUNTS]; /* per mount */
};

struct vmspec_request {
	struct vmspec_values v;
	bool set[VMSPEC_NFIELDS];
};

/* --- fields ---------------------------------------------------------------
 */

enum vmspec_kind {
	VMSPEC_K_BOOL,
	VMSPEC_K_U32,
	VMSPEC_K_ENUM,
	VMSPEC_K_STR,  /* matched against glob patterns */
	VMSPEC_K_PATH, /* matched against path prefixes */
	VMSPEC_K_MOUNTS,
};

struct vmspec_field_info {
	const char *name; /* policy key and explain label */
	enum vmspec_kind kind;
	size_t off;	/* of the member in struct vmspec_values */
	size_t size;	/* STR, PATH: buffer size */
	uint32_t limit; /* U32: largest value; MOUNTS: most entries */
	const char *const *choices; /* ENUM: names by value, NULL-terminated */
	const char *option;	    /* the user's option, NULL: policy only */
	/* Closed fields refuse every user value unless a policy allows it:
	 * they name host paths. */
	bool closed;
};

const struct vmspec_field_info *vmspec_field(enum vmspec_field f);
/* The field called name, or -1. */
int vmspec_field_by_name(const char *name);

/* Built-in defaults (origin VMSPEC_BUILTIN everywhere). */
void vmspec_defaults(struct vmspec *ret);

/* Generic access for the merge. BOOL, U32 and ENUM read as a number. */
uint32_t vmspec_get_num(const struct vmspec_values *v, enum vmspec_field f);
void vmspec_set_num(struct vmspec_values *v, enum vmspec_field f, uint32_t n);
const char *vmspec_get_str(const struct vmspec_values *v, enum vmspec_field f);
void vmspec_copy_field(struct vmspec_values *dst,
		       const struct vmspec_values *src, enum vmspec_field f);
bool vmspec_field_equal(const struct vmspec_values *a,
			const struct vmspec_values *b, enum vmspec_field f);

/* A field's value in the syntax vmspec_parse_field reads back: "yes",
 * "600", "2M", "/a:/b:ro,/c:/d:rw", "none" for no mounts. Truncates. */
void vmspec_format_field(const struct vmspec_values *v, enum vmspec_field f,
			 char *buf, size_t len);
/* Parses one field's value (the format above; yes/no/on/off/true/false for
 * booleans; enum names case-insensitively). 0, or -EINVAL with the reason
 * in err quoting the value ("'3M' is not one of: none, 2M, 1G"). */
int vmspec_parse_field(struct vmspec_values *v, enum vmspec_field f,
		       const char *text, char *err, size_t errlen);
/* SRC:DST[:ro|:rw]. */
int vmspec_parse_mount(const char *text, struct vmspec_mount *ret, char *err,
		       size_t errlen);
void vmspec_format_mount(const struct vmspec_mount *m, char *buf, size_t len);

/* "built-in default", "user", "enforced by policy 'prod' (10-prod.json)" */
void vmspec_format_src(const struct vmspec_src *s, char *buf, size_t len);

/* The effective spec, one line per field (and per mount) with its origin;
 * what `vmenvctl policy explain` prints. *ret is malloc'ed. */
int vmspec_explain(const struct vmspec *s, char **ret);

/* Guest memory for an allocation of alloc_mib: the allocation minus the
 * headroom, which is the larger of mem_headroom_pct of the allocation
 * (rounded up) and mem_headroom_mib. 0 when nothing would be left. */
uint32_t vmspec_guest_mem_mib(const struct vmspec_values *v,
			      uint64_t alloc_mib);

/* --- the user's options -----------------------------------------------------
 */

enum vmspec_opt {
	VMSPEC_OPT_ENV,
	VMSPEC_OPT_CHECKPOINT,
	VMSPEC_OPT_CHECKPOINT_LEAD,
	VMSPEC_OPT_CHECKPOINT_DIR,
	VMSPEC_OPT_REQUEUE,
	VMSPEC_OPT_CHECKPOINT_KEEP,
	VMSPEC_OPT_RESTORE,
	VMSPEC_OPT_HUGEPAGES,
	VMSPEC_OPT_MEM_HEADROOM,
	VMSPEC_OPT_IB,
	VMSPEC_OPT_GPUS,
	VMSPEC_OPT_MOUNT,
	VMSPEC_OPT_KEEP_OVERLAY,
	VMSPEC_OPT_CPU_MODEL,
	VMSPEC_OPT_EMULATOR_THREADS,
	VMSPEC_OPT_CHECKPOINT_FILES,
	VMSPEC_OPT_WARM_START,
	VMSPEC_NOPTS
};

struct vmspec_option {
	const char *name; /* without "--": "vm-hugepages" */
	const char *arg;  /* for --help: "none|2M|1G" */
	const char *help;
	/* yes/no options: the bare option means yes. */
	bool optional_arg;
};

const struct vmspec_option *vmspec_option(enum vmspec_opt o);
/* The option called name (without "--"), or -1. */
int vmspec_option_by_name(const char *name);
/* "SBATCH_VM_HUGEPAGES" for prefix "SBATCH_". 0 or -ENAMETOOLONG. */
int vmspec_option_env(enum vmspec_opt o, const char *prefix, char *buf,
		      size_t len);

/* Applies one option as the user wrote it (value NULL or "" for a bare
 * yes/no option). 0, or -EINVAL with "--vm-ib: '-1' is not a number"
 * style reasons in err. */
int vmspec_request_set(struct vmspec_request *r, enum vmspec_opt o,
		       const char *value, char *err, size_t errlen);
/* Parses options as given to sbatch: "--vm-env=tiny", "--vm-env tiny",
 * "--vm-checkpoint". Anything else is an error naming it. */
int vmspec_request_from_argv(struct vmspec_request *r, int argc,
			     char *const *argv, char *err, size_t errlen);

#endif
