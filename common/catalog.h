/* SPDX-License-Identifier: MIT */
/*
 * The image catalog: which images exist, where their files come from and
 * how each boots. Read by vmmd (to fetch and boot), by vmenvctl (image
 * list/pull) and by the SPANK plugin at submit time (to refuse an unknown
 * image before anything is queued). Pure: parses, validates, looks up; the
 * caller reads the text from a file or a URL.
 *
 * Format (JSON; docs/images.md has the full description):
 *   {"base_url": "https://images.example.org/vmenv/",        (optional)
 *    "images": [
 *     {"name": "debian12", "aliases": ["debian"],
 *      "description": "...", "labels": {"os": "debian-12"},
 *      "min_mem_mib": 512, "default_version": "2025.1",
 *      "versions": [
 *       {"version": "2025.1", "boot": "disk-kernel",
 *        "disk": {"source": "debian12.qcow2", "sha256": "<64 hex>",
 *                 "size": 123456, "format": "qcow2"},
 *        "kernel": {"source": "...", "sha256": "...", "size": 1},
 *        "initrd": {"source": "...", "sha256": "...", "size": 1},
 *        "cmdline": "root=/dev/vda rw console=ttyS0"}]}]}
 * A source is an http(s):// or file:// URL, an absolute path, or a path
 * relative to base_url (default: where the catalog itself was read from).
 *
 * The first format (one entry per version with local "kernel"/"initrd"
 * paths and no checksum) is still accepted; its files are trusted like the
 * catalog itself and used in place, never cached:
 *   {"name": "tiny", "version": "1", "boot": "kernel", "kernel": "/abs",
 *    "initrd": "/abs", "cmdline": "...", "min_mem_mib": 128}
 *
 * Unknown keys are errors, so a typo never silently drops a setting.
 */
#ifndef VMENV_CATALOG_H
#define VMENV_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* Image versions in one catalog (each version counts once). */
#define CATALOG_MAX_IMAGES  1024
#define CATALOG_MAX_FILE    (4u * 1024u * 1024u)
#define CATALOG_MAX_URL	    2048
#define CATALOG_MAX_LABELS  8
#define CATALOG_MAX_ALIASES 8
/* 1 TiB: larger "size" values are a typo, not an image. */
#define CATALOG_MAX_SIZE (1ull << 40)

enum catalog_boot {
	CATALOG_BOOT_KERNEL = 1,  /* kernel + initrd, no disk */
	CATALOG_BOOT_DISK,	  /* a disk with its own bootloader */
	CATALOG_BOOT_DISK_KERNEL, /* a disk, booted with kernel + initrd */
};

enum catalog_disk_format {
	CATALOG_DISK_NONE = 0,
	CATALOG_DISK_QCOW2,
	CATALOG_DISK_RAW,
};

struct catalog_file {
	/* Absolute URL (http, https, file). For a first-format entry: an
	 * absolute local path, with sha256 empty. "" when the image has no
	 * such file. */
	char source[CATALOG_MAX_URL];
	char sha256[65]; /* lowercase hex */
	uint64_t size;	 /* bytes */
};

struct catalog_label {
	char key[33];
	char value[129];
};

struct catalog_image {
	char name[65];
	char version[65];
	enum catalog_boot boot;
	enum catalog_disk_format disk_format;
	struct catalog_file disk, kernel, initrd;
	char cmdline[1024];
	uint32_t min_mem_mib;
	char description[256];
	size_t nlabels;
	struct catalog_label labels[CATALOG_MAX_LABELS];
	/* NAME without a version resolves to this entry. */
	bool is_default;
	/* First format: local files used in place, not verified. */
	bool legacy;
	/* Index of the object in the file's "images" it came from. */
	size_t entry;
};

struct catalog_alias {
	char alias[65];
	char name[65];
};

struct catalog {
	size_t n;
	struct catalog_image *images; /* one per version, in file order */
	size_t naliases;
	struct catalog_alias *aliases;
};

/* base: where relative sources are found (a URL; "" when the text has no
 * relative sources to resolve). 0, or -errno with a message naming the
 * image and the field in err. *ret is only written on success. */
int catalog_parse(const char *text, size_t len, struct catalog *ret, char *err,
		  size_t errlen);
int catalog_parse_base(const char *text, size_t len, const char *base,
		       struct catalog *ret, char *err, size_t errlen);
/* Reads a local file; relative sources resolve against its directory. */
int catalog_load(const char *path, struct catalog *ret, char *err,
		 size_t errlen);
void catalog_clear(struct catalog *c);

/*
 * Name resolution (docs/images.md, "Names"): ref is NAME or NAME:VERSION.
 * NAME is an image name, else one of its aliases, else (without a version)
 * NAME.img stands for NAME. Without a version the image's default_version
 * is used, else its last listed version. Case matters.
 * catalog_resolve: 0, -EINVAL for a malformed ref, -ENOENT for an unknown
 * name or version; err says which (quoting ref safely) and, for an unknown
 * version, lists the known ones.
 */
int catalog_resolve(const struct catalog *c, const char *ref,
		    const struct catalog_image **ret, char *err, size_t errlen);
/* Same, NULL when not found. */
const struct catalog_image *catalog_find(const struct catalog *c,
					 const char *ref);
/* "tiny, debian12" (each name once, only whole names that fit), for "known
 * images: ..." messages; "(none)" for an empty catalog. */
void catalog_names(const struct catalog *c, char *buf, size_t len);

/* "NAME:VERSION" of an entry. */
void catalog_image_ref(const struct catalog_image *img, char *buf, size_t len);
/* What a guest of img boots from, by digest ("kernel H initrd H[ disk H]"):
 * a warm-start template's key (docs/warmstart.md). -ENOENT for an image
 * without a kernel and initrd with digests (a first-format one too). */
int catalog_boot_digest(const struct catalog_image *img, char *buf, size_t len);
bool catalog_file_present(const struct catalog_file *f);
/* A first-format file: used in place, no checksum. */
bool catalog_file_local(const struct catalog_file *f);
const char *catalog_boot_name(enum catalog_boot b);
const char *catalog_format_name(enum catalog_disk_format f);

/* Pure helpers, exposed for tests and vmenvctl. */
bool catalog_valid_sha256(const char *hex);
/* Joins a source with the base: 0 and an absolute URL in out, or
 * -EINVAL (bad source) / -ENAMETOOLONG. */
int catalog_source_url(const char *base, const char *source, char *out,
		       size_t outlen);
/* The URL of the directory holding the catalog at path_or_url, ending in
 * '/': "file:///etc/vmenv/" for /etc/vmenv/catalog.json. */
int catalog_base_of(const char *path_or_url, char *out, size_t outlen);

#endif
