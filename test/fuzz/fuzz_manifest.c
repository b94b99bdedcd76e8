// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the checkpoint manifest (vmmd/ckpt/ckpt_manifest.c):
 * the input is a manifest.json as a later vmmd reads it back from a store
 * (ckpt_store_load, then ckpt_store_verify and the restore), a store that
 * may be a user's. What decodes must hold bounded, checked fields and
 * encode and decode back to the same; what does not must leave nothing
 * allocated. The owner of a guest is read from domain XML by
 * domowner_parse (vmmd/domowner.c): it reads the manifest's domain_xml,
 * and the raw input too, as XML of its own.
 * Built and run by test/fuzz/run-manifest-fuzz.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agentwire.h"
#include "ckpt_store.h"
#include "domowner.h"

static volatile size_t sink;

static bool fits(const char *s, size_t size)
{
	return s && strnlen(s, size) < size;
}

static bool hex64(const char *s)
{
	return strlen(s) == DIGEST_HEX_LEN &&
	       strspn(s, "0123456789abcdef") == DIGEST_HEX_LEN;
}

static void owner(const char *xml)
{
	char node[128];
	uint32_t job;

	if (domowner_parse(xml, &job, node, sizeof(node)) != 0)
		return;
	if (job == 0 || !fits(node, sizeof(node)) || !node[0] ||
	    strspn(node, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789._-") != strlen(node))
		abort();
}

/* A served mount's state, "files.m<i>" or "files.m<i>.pending": i in
 * decimal without leading zeros, below CKPT_MAX_MOUNT_FILES. Checked here
 * on its own terms, not with the manifest's ckpt_file_name_ok. */
static bool mount_file(const char *name)
{
	const char *p = name + strlen("files.m");
	size_t digits;

	if (strncmp(name, "files.m", strlen("files.m")) != 0)
		return false;
	digits = strspn(p, "0123456789");
	if (digits == 0 || digits > 3 || (digits > 1 && p[0] == '0') ||
	    strtoul(p, NULL, 10) >= CKPT_MAX_MOUNT_FILES)
		return false;
	return strcmp(p + digits, "") == 0 ||
	       strcmp(p + digits, ".pending") == 0;
}

static void check_files(const struct ckpt_manifest *m)
{
	static const char *const known[] = {CKPT_MEMORY, CKPT_DISK, CKPT_FILES,
					    CKPT_FILES_PENDING, CKPT_OUTPUT};

	if (m->nfiles > CKPT_MAX_FILES)
		abort();
	for (size_t i = 0; i < m->nfiles; i++) {
		const struct ckpt_file *f = &m->files[i];
		bool ok = fits(f->name, sizeof(f->name)) && mount_file(f->name);

		for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			ok |= fits(f->name, sizeof(f->name)) &&
			      strcmp(f->name, known[k]) == 0;
		if (!ok || !fits(f->sha256, sizeof(f->sha256)) ||
		    !hex64(f->sha256) || f->size > INT64_MAX)
			abort();
	}
}

static void check(const struct ckpt_manifest *m)
{
	if (m->format != CKPT_FORMAT || !fits(m->node, sizeof(m->node)) ||
	    !fits(m->image, sizeof(m->image)) ||
	    !fits(m->base_sha256, sizeof(m->base_sha256)) ||
	    (m->base_sha256[0] && !hex64(m->base_sha256)) ||
	    !fits(m->cpu_model, sizeof(m->cpu_model)) ||
	    !fits(m->files_kind, sizeof(m->files_kind)) ||
	    !fits(m->work_dir, sizeof(m->work_dir)) ||
	    !fits(m->spec, CKPT_MAX_TEXT) ||
	    !fits(m->domain_xml, CKPT_MAX_TEXT) ||
	    m->nsessions > CKPT_MAX_SESSIONS)
		abort();
	for (size_t i = 0; i < m->nsessions; i++)
		if (m->sessions[i].id == 0 ||
		    m->sessions[i].credit > AW_WINDOW ||
		    m->sessions[i].out_bytes[0] > INT64_MAX ||
		    m->sessions[i].out_bytes[1] > INT64_MAX)
			abort();
	check_files(m);
}

static bool same_sessions(const struct ckpt_manifest *a,
			  const struct ckpt_manifest *b)
{
	if (a->nsessions != b->nsessions)
		return false;
	for (size_t i = 0; i < a->nsessions; i++) {
		const struct ckpt_session *x = &a->sessions[i],
					  *y = &b->sessions[i];

		if (x->id != y->id || x->batch != y->batch ||
		    x->merge_stderr != y->merge_stderr ||
		    x->out_bytes[0] != y->out_bytes[0] ||
		    x->out_bytes[1] != y->out_bytes[1] ||
		    x->credit != y->credit)
			return false;
	}
	return true;
}

static bool same_files(const struct ckpt_manifest *a,
		       const struct ckpt_manifest *b)
{
	if (a->nfiles != b->nfiles)
		return false;
	for (size_t i = 0; i < a->nfiles; i++)
		if (strcmp(a->files[i].name, b->files[i].name) != 0 ||
		    a->files[i].size != b->files[i].size ||
		    strcmp(a->files[i].sha256, b->files[i].sha256) != 0)
			return false;
	return true;
}

static bool same(const struct ckpt_manifest *a, const struct ckpt_manifest *b)
{
	return a->format == b->format && a->job_id == b->job_id &&
	       a->uid == b->uid && a->restart_count == b->restart_count &&
	       a->seq == b->seq && strcmp(a->node, b->node) == 0 &&
	       strcmp(a->image, b->image) == 0 &&
	       strcmp(a->base_sha256, b->base_sha256) == 0 &&
	       strcmp(a->cpu_model, b->cpu_model) == 0 &&
	       strcmp(a->files_kind, b->files_kind) == 0 &&
	       strcmp(a->work_dir, b->work_dir) == 0 && a->vcpus == b->vcpus &&
	       a->mem_mib == b->mem_mib && a->created == b->created &&
	       a->keep == b->keep && strcmp(a->spec, b->spec) == 0 &&
	       strcmp(a->domain_xml, b->domain_xml) == 0 &&
	       a->next_session == b->next_session && same_sessions(a, b) &&
	       same_files(a, b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Heap copies of exactly the input: ASan sees a read past it. */
	char *text = malloc(size ? size : 1), *str = malloc(size + 1);
	struct ckpt_manifest *m = malloc(sizeof(*m));
	struct ckpt_manifest *back = malloc(sizeof(*back));
	char err[256] = "", *enc = NULL;

	if (!text || !str || !m || !back)
		abort();
	memcpy(text, data, size);
	memcpy(str, data, size);
	str[size] = '\0';
	owner(str);
	if (ckpt_manifest_decode(text, size, m, err, sizeof(err)) < 0) {
		if (m->spec || m->domain_xml || !fits(err, sizeof(err)))
			abort();
		goto out;
	}
	check(m);
	owner(m->domain_xml);
	if (ckpt_manifest_encode(m, &enc) < 0 ||
	    ckpt_manifest_decode(enc, strlen(enc), back, err, sizeof(err)) <
		0 ||
	    !same(m, back))
		abort();
	ckpt_manifest_clear(back);
	ckpt_manifest_clear(m);
out:
	sink += strlen(err);
	free(enc);
	free(back);
	free(m);
	free(str);
	free(text);
	return 0;
}
