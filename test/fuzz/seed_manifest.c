// SPDX-License-Identifier: MIT
/*
 * Seeds for fuzz_manifest, made by ckpt_manifest_encode (so they follow
 * the format as it changes): a checkpoint of a batch job with two sessions
 * and every file, one of a user's image (no base hash, no optional file),
 * and the same without the keys added after format 1 (keep, work_dir).
 * Usage: seed_manifest DIR. Built and run by test/fuzz/run-manifest-fuzz.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt_store.h"

#define SHA_A "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define SHA_B "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static const char *dir;

static void put(const char *name, const char *text, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!(f = fopen(path, "w")) || fwrite(text, 1, len, f) != len ||
	    fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void manifest(const char *name, const struct ckpt_manifest *m)
{
	char *text;

	if (ckpt_manifest_encode(m, &text) < 0)
		exit(1);
	put(name, text, strlen(text));
	free(text);
}

/* Drops "key": ... lines (the encoder writes one key a line). */
static void without(const char *name, const struct ckpt_manifest *m,
		    const char *const *keys, size_t n)
{
	char *text, *line, *save = NULL, *out;
	size_t len = 0;

	if (ckpt_manifest_encode(m, &text) < 0 ||
	    !(out = calloc(1, strlen(text) + 1)))
		exit(1);
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		bool drop = false;

		for (size_t i = 0; i < n; i++)
			drop |= strncmp(line + strspn(line, " "), keys[i],
					strlen(keys[i])) == 0;
		if (!drop)
			len += (size_t)sprintf(out + len, "%s\n", line);
	}
	put(name, out, len);
	free(out);
	free(text);
}

static const char spec[] =
    "image\ttiny\tuser\t\t\nhugepages\t2M\tpolicy\tsite\t/etc/vmenv/"
    "policies.d/site.json\nmount\t0\tuser\t\t\n";
static const char xml[] =
    "<domain type='kvm'>\n  <name>vmenv-n1-42</name>\n  <metadata>\n"
    "    <vmenv:job xmlns:vmenv='https://vmenv.invalid/xmlns/domain/1' "
    "id='42' node='n1'/>\n  </metadata>\n</domain>\n";

int main(int argc, char **argv)
{
	struct ckpt_manifest m = {.format = CKPT_FORMAT,
				  .job_id = 42,
				  .uid = 1000,
				  .restart_count = 1,
				  .seq = 3,
				  .node = "n1",
				  .image = "tiny:1",
				  .base_sha256 = SHA_A,
				  .cpu_model = "host-model",
				  .files_kind = "served",
				  .work_dir = "/home/alice/job",
				  .vcpus = 2,
				  .mem_mib = 2048,
				  .created = 1700000000,
				  .keep = true,
				  .spec = (char *)spec,
				  .domain_xml = (char *)xml,
				  .next_session = 9,
				  .nsessions = 2,
				  .nfiles = 5};
	static const char *const later[] = {"\"keep\"", "\"work_dir\""};
	static const char *const names[] = {CKPT_MEMORY, CKPT_DISK, CKPT_FILES,
					    CKPT_FILES_PENDING, CKPT_OUTPUT};

	if (argc != 2) {
		fprintf(stderr, "usage: seed_manifest DIR\n");
		return 2;
	}
	dir = argv[1];
	m.sessions[0] = (struct ckpt_session){1, true, false, {4096, 17}, 0};
	m.sessions[1] = (struct ckpt_session){8, false, true, {0, 0}, 65536};
	for (size_t i = 0; i < m.nfiles; i++) {
		snprintf(m.files[i].name, sizeof(m.files[i].name), "%s",
			 names[i]);
		m.files[i].size = (uint64_t)1 << (10 + 4 * i);
		snprintf(m.files[i].sha256, sizeof(m.files[i].sha256), "%s",
			 i % 2 ? SHA_B : SHA_A);
	}
	manifest("batch", &m);
	without("format1", &m, later, 2);
	/* A served job with two mounts: files.m0, files.m0.pending, files.m1. */
	for (uint32_t i = 0; i < 3; i++) {
		struct ckpt_file *f = &m.files[m.nfiles + i];

		ckpt_file_mount_name(i / 2, i % 2, f->name, sizeof(f->name));
		f->size = 512u << i;
		snprintf(f->sha256, sizeof(f->sha256), "%s", SHA_A);
	}
	m.nfiles += 3;
	manifest("served-mounts", &m);
	m.nfiles -= 3;
	m.base_sha256[0] = '\0';
	snprintf(m.image, sizeof(m.image), "/home/alice/img.qcow2");
	snprintf(m.files_kind, sizeof(m.files_kind), "9p");
	m.nfiles = 1;
	m.nsessions = 0;
	m.keep = false;
	manifest("user-image", &m);
	return 0;
}
