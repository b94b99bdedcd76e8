/* SPDX-License-Identifier: MIT */
/*
 * The checkpoint manifest as JSON (json-c), both ways. Pure: no I/O. The
 * manifest is read back by a later vmmd, maybe on another node, from a
 * store a user may be able to write to (a shared file system): it is parsed
 * like any outside input, every key known, every value bounded.
 */
#include "ckpt_store.h"

#include "agentwire.h"
#include "cleanup.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const file_names[] = {CKPT_MEMORY, CKPT_DISK, CKPT_FILES,
					 CKPT_FILES_PENDING, CKPT_OUTPUT};

int ckpt_file_mount_name(uint32_t i, bool pending, char *buf, size_t len)
{
	if (i >= CKPT_MAX_MOUNT_FILES)
		return -EINVAL;
	return str_printf(buf, len, CKPT_FILES_MOUNT_FMT "%s", i,
			  pending ? ".pending" : "");
}

bool ckpt_file_name_ok(const char *name)
{
	char want[sizeof(((struct ckpt_file *)0)->name)];

	for (size_t i = 0; i < ARRAY_SIZE(file_names); i++)
		if (strcmp(name, file_names[i]) == 0)
			return true;
	/* Compared with what we would write: no "files.m01", no "files.m"
	 * with a sign or blanks. */
	for (uint32_t i = 0; i < CKPT_MAX_MOUNT_FILES; i++)
		for (int pending = 0; pending < 2; pending++)
			if (ckpt_file_mount_name(i, pending, want,
						 sizeof(want)) == 0 &&
			    strcmp(name, want) == 0)
				return true;
	return false;
}

uint32_t ckpt_manifest_mounts(const struct ckpt_manifest *m)
{
	char want[sizeof(m->files[0].name)];
	uint32_t n = 0;

	for (; ckpt_file_mount_name(n, false, want, sizeof(want)) == 0; n++) {
		bool found = false;

		for (size_t k = 0; k < m->nfiles && !found; k++)
			found = strcmp(m->files[k].name, want) == 0;
		if (!found)
			break;
	}
	return n;
}

void ckpt_manifest_clear(struct ckpt_manifest *m)
{
	if (!m)
		return;
	free(m->spec);
	free(m->domain_xml);
	m->spec = m->domain_xml = NULL;
}

/* --- encoding ----------------------------------------------------------- */

static int add(struct json_object *o, const char *k, struct json_object *v)
{
	if (!v)
		return -ENOMEM;
	if (json_object_object_add(o, k, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static struct json_object *enc_file(const struct ckpt_file *f)
{
	struct json_object *o = json_object_new_object();

	if (!o || add(o, "name", json_object_new_string(f->name)) < 0 ||
	    add(o, "size", json_object_new_uint64(f->size)) < 0 ||
	    add(o, "sha256", json_object_new_string(f->sha256)) < 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *enc_session(const struct ckpt_session *s)
{
	struct json_object *o = json_object_new_object();

	if (!o || add(o, "id", json_object_new_uint64(s->id)) < 0 ||
	    add(o, "batch", json_object_new_boolean(s->batch)) < 0 ||
	    add(o, "merge_stderr", json_object_new_boolean(s->merge_stderr)) <
		0 ||
	    add(o, "stdout_bytes", json_object_new_uint64(s->out_bytes[0])) <
		0 ||
	    add(o, "stderr_bytes", json_object_new_uint64(s->out_bytes[1])) <
		0 ||
	    add(o, "credit", json_object_new_uint64(s->credit)) < 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static int enc_arrays(struct json_object *o, const struct ckpt_manifest *m)
{
	struct json_object *files = json_object_new_array();
	struct json_object *sess = json_object_new_array();
	int r = 0;

	if (!files || !sess) {
		json_object_put(files);
		json_object_put(sess);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->nfiles && r == 0; i++) {
		struct json_object *f = enc_file(&m->files[i]);
		r = f && json_object_array_add(files, f) == 0 ? 0 : -ENOMEM;
	}
	for (size_t i = 0; i < m->nsessions && r == 0; i++) {
		struct json_object *s = enc_session(&m->sessions[i]);
		r = s && json_object_array_add(sess, s) == 0 ? 0 : -ENOMEM;
	}
	if (r < 0) {
		json_object_put(files);
		json_object_put(sess);
		return r;
	}
	if ((r = add(o, "files", files)) < 0) {
		json_object_put(sess);
		return r;
	}
	return add(o, "sessions", sess);
}

static int enc_scalars(struct json_object *o, const struct ckpt_manifest *m)
{
	const struct {
		const char *k;
		struct json_object *v;
	} kv[] = {
	    {"format", json_object_new_uint64(CKPT_FORMAT)},
	    {"job", json_object_new_uint64(m->job_id)},
	    {"uid", json_object_new_uint64(m->uid)},
	    {"restart_count", json_object_new_uint64(m->restart_count)},
	    {"seq", json_object_new_uint64(m->seq)},
	    {"node", json_object_new_string(m->node)},
	    {"image", json_object_new_string(m->image)},
	    {"base_sha256", json_object_new_string(m->base_sha256)},
	    {"cpu_model", json_object_new_string(m->cpu_model)},
	    {"files_kind", json_object_new_string(m->files_kind)},
	    {"vcpus", json_object_new_uint64(m->vcpus)},
	    {"mem_mib", json_object_new_uint64(m->mem_mib)},
	    {"created", json_object_new_int64(m->created)},
	    {"spec", json_object_new_string(m->spec ? m->spec : "")},
	    {"domain_xml",
	     json_object_new_string(m->domain_xml ? m->domain_xml : "")},
	    {"next_session", json_object_new_uint64(m->next_session)},
	    {"keep", json_object_new_boolean(m->keep)},
	    {"work_dir", json_object_new_string(m->work_dir)},
	};
	int r = 0;

	/* add() takes every value, so none leaks when one fails. */
	for (size_t i = 0; i < ARRAY_SIZE(kv); i++)
		if (add(o, kv[i].k, kv[i].v) < 0)
			r = -ENOMEM;
	return r;
}

int ckpt_manifest_encode(const struct ckpt_manifest *m, char **ret)
{
	struct json_object *o = json_object_new_object();
	const char *text;
	int r;

	if (!o)
		return -ENOMEM;
	r = enc_scalars(o, m);
	if (r == 0)
		r = enc_arrays(o, m);
	text = r == 0 ? json_object_to_json_string_ext(
			    o, JSON_C_TO_STRING_PRETTY |
				   JSON_C_TO_STRING_NOSLASHESCAPE)
		      : NULL;
	*ret = text ? strdup(text) : NULL;
	json_object_put(o);
	return *ret ? 0 : -ENOMEM;
}

/* --- decoding ----------------------------------------------------------- */

struct dctx {
	char *err;
	size_t errlen;
};

static int bad(struct dctx *c, const char *key, const char *why)
{
	return err_set(c->err, c->errlen, -EBADMSG, "manifest: '%s' %s", key,
		       why);
}

static int get_u64(struct dctx *c, struct json_object *v, const char *key,
		   uint64_t max, uint64_t *ret)
{
	int64_t n;

	if (!json_object_is_type(v, json_type_int))
		return bad(c, key, "is not a number");
	n = json_object_get_int64(v);
	if (n < 0 || (uint64_t)n > max)
		return bad(c, key, "is out of range");
	*ret = (uint64_t)n;
	return 0;
}

static int get_u32(struct dctx *c, struct json_object *v, const char *key,
		   uint32_t *ret)
{
	uint64_t n;
	int r = get_u64(c, v, key, UINT32_MAX, &n);

	if (r == 0)
		*ret = (uint32_t)n;
	return r;
}

static int get_str(struct dctx *c, struct json_object *v, const char *key,
		   char *buf, size_t len)
{
	const char *s;

	if (!json_object_is_type(v, json_type_string))
		return bad(c, key, "is not a string");
	s = json_object_get_string(v);
	if ((size_t)json_object_get_string_len(v) != strlen(s))
		return bad(c, key, "holds a NUL byte");
	if (strlen(s) >= len)
		return bad(c, key, "is too long");
	memcpy(buf, s, strlen(s) + 1);
	return 0;
}

static int get_text(struct dctx *c, struct json_object *v, const char *key,
		    char **ret)
{
	char *buf = malloc(CKPT_MAX_TEXT);
	int r;

	if (!buf)
		return -ENOMEM;
	r = get_str(c, v, key, buf, CKPT_MAX_TEXT);
	if (r < 0) {
		free(buf);
		return r;
	}
	free(*ret);
	*ret = strdup(buf);
	free(buf);
	return *ret ? 0 : -ENOMEM;
}

static int get_bool(struct dctx *c, struct json_object *v, const char *key,
		    bool *ret)
{
	if (!json_object_is_type(v, json_type_boolean))
		return bad(c, key, "is not true or false");
	*ret = json_object_get_boolean(v);
	return 0;
}

static bool hex64(const char *s)
{
	if (strlen(s) != DIGEST_HEX_LEN)
		return false;
	for (; *s; s++)
		if (!strchr("0123456789abcdef", *s))
			return false;
	return true;
}

static int dec_file(struct dctx *c, struct json_object *o, struct ckpt_file *f)
{
	unsigned seen = 0;
	int r = 0;

	if (!json_object_is_type(o, json_type_object))
		return bad(c, "files", "holds a non-object");
	json_object_object_foreach(o, k, v)
	{
		if (strcmp(k, "name") == 0 && (seen |= 1))
			r = get_str(c, v, "files.name", f->name,
				    sizeof(f->name));
		else if (strcmp(k, "size") == 0 && (seen |= 2))
			r = get_u64(c, v, "files.size", INT64_MAX, &f->size);
		else if (strcmp(k, "sha256") == 0 && (seen |= 4))
			r = get_str(c, v, "files.sha256", f->sha256,
				    sizeof(f->sha256));
		else
			r = bad(c, k, "is not a file field");
		if (r < 0)
			return r;
	}
	if (seen != 7)
		return bad(c, "files", "entry lacks name, size or sha256");
	if (!ckpt_file_name_ok(f->name))
		return bad(c, "files.name", "is not a checkpoint file");
	if (!hex64(f->sha256))
		return bad(c, "files.sha256", "is not a sha256");
	return 0;
}

static int dec_session(struct dctx *c, struct json_object *o,
		       struct ckpt_session *s)
{
	int r = 0;

	if (!json_object_is_type(o, json_type_object))
		return bad(c, "sessions", "holds a non-object");
	json_object_object_foreach(o, k, v)
	{
		if (strcmp(k, "id") == 0)
			r = get_u32(c, v, "sessions.id", &s->id);
		else if (strcmp(k, "batch") == 0)
			r = get_bool(c, v, k, &s->batch);
		else if (strcmp(k, "merge_stderr") == 0)
			r = get_bool(c, v, k, &s->merge_stderr);
		else if (strcmp(k, "stdout_bytes") == 0)
			r = get_u64(c, v, k, INT64_MAX, &s->out_bytes[0]);
		else if (strcmp(k, "stderr_bytes") == 0)
			r = get_u64(c, v, k, INT64_MAX, &s->out_bytes[1]);
		else if (strcmp(k, "credit") == 0)
			r = get_u32(c, v, k, &s->credit);
		else
			r = bad(c, k, "is not a session field");
		if (r < 0)
			return r;
	}
	if (s->credit > AW_WINDOW)
		return bad(c, "sessions.credit", "is larger than the window");
	return s->id ? 0 : bad(c, "sessions.id", "is missing or 0");
}

static int dec_array(struct dctx *c, struct json_object *v, const char *key,
		     struct ckpt_manifest *m)
{
	bool files = strcmp(key, "files") == 0;
	size_t n, max = files ? CKPT_MAX_FILES : CKPT_MAX_SESSIONS;
	int r = 0;

	if (!json_object_is_type(v, json_type_array))
		return bad(c, key, "is not an array");
	n = json_object_array_length(v);
	if (n > max)
		return bad(c, key, "has too many entries");
	for (size_t i = 0; i < n && r == 0; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		r = files ? dec_file(c, e, &m->files[i])
			  : dec_session(c, e, &m->sessions[i]);
	}
	if (files)
		m->nfiles = n;
	else
		m->nsessions = n;
	return r;
}

#define M_U32(k, f)                                          \
	{                                                    \
		k, 'u', offsetof(struct ckpt_manifest, f), 0 \
	}
#define M_STR(k, f)                                        \
	{                                                  \
		k, 's', offsetof(struct ckpt_manifest, f), \
		    sizeof(((struct ckpt_manifest *)0)->f) \
	}

static const struct mkey {
	const char *key;
	char kind; /* u: u32, s: char[], t: owned text, i: i64, a: array,
		      b: bool */
	size_t off;
	size_t size;
	bool optional; /* added after format 1 was first written */
} mkeys[] = {
    M_U32("format", format),
    M_U32("job", job_id),
    M_U32("uid", uid),
    M_U32("restart_count", restart_count),
    M_U32("seq", seq),
    M_STR("node", node),
    M_STR("image", image),
    M_STR("base_sha256", base_sha256),
    M_STR("cpu_model", cpu_model),
    M_STR("files_kind", files_kind),
    M_U32("vcpus", vcpus),
    M_U32("mem_mib", mem_mib),
    {"created", 'i', offsetof(struct ckpt_manifest, created), 0},
    {"spec", 't', offsetof(struct ckpt_manifest, spec), 0},
    {"domain_xml", 't', offsetof(struct ckpt_manifest, domain_xml), 0},
    M_U32("next_session", next_session),
    {"files", 'a', 0, 0},
    {"sessions", 'a', 0, 0},
    {"keep", 'b', offsetof(struct ckpt_manifest, keep), 0, true},
    {"work_dir", 's', offsetof(struct ckpt_manifest, work_dir),
     sizeof(((struct ckpt_manifest *)0)->work_dir), true},
};

static int dec_key(struct dctx *c, const struct mkey *k, struct json_object *v,
		   struct ckpt_manifest *m)
{
	char *base = (char *)m;

	switch (k->kind) {
	case 'u':
		return get_u32(c, v, k->key, (uint32_t *)(base + k->off));
	case 's':
		return get_str(c, v, k->key, base + k->off, k->size);
	case 't':
		return get_text(c, v, k->key, (char **)(base + k->off));
	case 'b':
		return get_bool(c, v, k->key, (bool *)(base + k->off));
	case 'i':
		if (!json_object_is_type(v, json_type_int))
			return bad(c, k->key, "is not a number");
		m->created = json_object_get_int64(v);
		return 0;
	default:
		return dec_array(c, v, k->key, m);
	}
}

static int dec_object(struct dctx *c, struct json_object *o,
		      struct ckpt_manifest *m)
{
	uint32_t seen = 0;

	json_object_object_foreach(o, key, v)
	{
		size_t i;
		int r;

		for (i = 0; i < ARRAY_SIZE(mkeys); i++)
			if (strcmp(mkeys[i].key, key) == 0)
				break;
		if (i == ARRAY_SIZE(mkeys))
			return bad(c, key, "is not a manifest key");
		if ((r = dec_key(c, &mkeys[i], v, m)) < 0)
			return r;
		seen |= 1u << i;
	}
	for (size_t i = 0; i < ARRAY_SIZE(mkeys); i++)
		if (!(seen & (1u << i)) && !mkeys[i].optional)
			return bad(c, mkeys[i].key, "is missing");
	if (m->format != CKPT_FORMAT)
		return bad(c, "format", "is not a format this vmmd reads");
	if (m->base_sha256[0] && !hex64(m->base_sha256))
		return bad(c, "base_sha256", "is not a sha256");
	return 0;
}

static bool only_space(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strchr(" \t\r\n", p[i]) || !p[i])
			return false;
	return true;
}

int ckpt_manifest_decode(const char *text, size_t len,
			 struct ckpt_manifest *ret, char *err, size_t errlen)
{
	struct dctx c = {err, errlen};
	struct json_tokener *tok;
	struct json_object *o;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (len > CKPT_MAX_MANIFEST)
		return err_set(err, errlen, -EBADMSG, "manifest: too large");
	tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	o = json_tokener_parse_ex(tok, text, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    !only_space(text + json_tokener_get_parse_end(tok),
			len - json_tokener_get_parse_end(tok))) {
		json_object_put(o);
		json_tokener_free(tok);
		return err_set(err, errlen, -EBADMSG,
			       "manifest: not one JSON object");
	}
	json_tokener_free(tok);
	r = json_object_is_type(o, json_type_object)
		? dec_object(&c, o, ret)
		: err_set(err, errlen, -EBADMSG, "manifest: not an object");
	json_object_put(o);
	if (r < 0)
		ckpt_manifest_clear(ret);
	return r;
}
