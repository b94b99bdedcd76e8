/* SPDX-License-Identifier: MIT */
/* The only file that knows the protocol is JSON (json-c). */
#include "proto.h"

#include "cleanup.h"
#include "util.h"

#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static void json_putp(struct json_object **o)
{
	if (*o)
		json_object_put(*o);
}
#define _cleanup_json_ __attribute__((cleanup(json_putp)))

static const char *const op_names[] = {
    [PROTO_OP_START] = "start",
    [PROTO_OP_STOP] = "stop",
    [PROTO_OP_EXEC] = "exec",
    [PROTO_OP_SIGNAL] = "signal",
    [PROTO_OP_STATUS] = "status",
    [PROTO_OP_LIST] = "list",
    [PROTO_OP_STEP_END] = "step_end",
    [PROTO_OP_CHECKPOINT] = "checkpoint",
    [PROTO_OP_CONSOLE] = "console",
    [PROTO_OP_METRICS] = "metrics",
    [PROTO_OP_OVERLAY_LIST] = "overlay_list",
    [PROTO_OP_OVERLAY_GET] = "overlay_get",
    [PROTO_OP_OVERLAY_RM] = "overlay_rm",
    [PROTO_OP_EVACUATE] = "evacuate",
    [PROTO_OP_REATTACH] = "reattach",
    [PROTO_OP_WARM] = "warm",
};

/* Keys each op may carry besides "op". */
static const char *const op_keys[][9] = {
    [PROTO_OP_START] = {"job", "uid", "gid", "image", "request"},
    [PROTO_OP_STOP] = {"job"},
    [PROTO_OP_EXEC] = {"job", "argv", "env", "cwd", "stdin", "merge_stderr",
		       "script", "relay", "bulk"},
    [PROTO_OP_SIGNAL] = {"signal"},
    [PROTO_OP_STATUS] = {NULL},
    [PROTO_OP_LIST] = {NULL},
    [PROTO_OP_STEP_END] = {"job"},
    [PROTO_OP_CHECKPOINT] = {"job"},
    [PROTO_OP_CONSOLE] = {"job", "follow"},
    [PROTO_OP_METRICS] = {NULL},
    [PROTO_OP_OVERLAY_LIST] = {NULL},
    [PROTO_OP_OVERLAY_GET] = {"job"},
    [PROTO_OP_OVERLAY_RM] = {"job"},
    [PROTO_OP_EVACUATE] = {"reason"},
    [PROTO_OP_REATTACH] = {"job", "session", "token", "out", "err", "stdin",
			   "merge_stderr"},
    [PROTO_OP_WARM] = {"image", "vcpus", "mem", "checkpoint", "query"},
};

const char *proto_op_name(enum proto_op op)
{
	if ((size_t)op < ARRAY_SIZE(op_names) && op_names[op])
		return op_names[op];
	return "unknown";
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EBADMSG;
}

static int to_json_text(struct json_object *o, char **ret, size_t *ret_len)
{
	size_t len;
	const char *s = json_object_to_json_string_length(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	char *copy;

	if (!s)
		return -ENOMEM;
	if (len > PROTO_MAX_MSG)
		return -EMSGSIZE;
	copy = strndup(s, len);
	if (!copy)
		return -ENOMEM;
	*ret = copy;
	*ret_len = len;
	return 0;
}

static int add_str_array(struct json_object *o, const char *key, char *const *v,
			 size_t n)
{
	struct json_object *a = json_object_new_array_ext((int)n);

	if (!a)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	json_object_object_add(o, key, a);
	return 0;
}

/* "request": the options given, by name; absent when none was. */
static int add_options(struct json_object *o, const struct proto_start *s)
{
	struct json_object *r = NULL;

	for (int i = 0; i < VMSPEC_NOPTS; i++) {
		if (i == VMSPEC_OPT_ENV || !s->opts[i])
			continue;
		if (!r && !(r = json_object_new_object()))
			return -ENOMEM;
		json_object_object_add(r, vmspec_option(i)->name,
				       json_object_new_string(s->opts[i]));
	}
	if (r)
		json_object_object_add(o, "request", r);
	return 0;
}

static void encode_warm(struct json_object *o, const struct proto_warm *w)
{
	json_object_object_add(o, "image", json_object_new_string(w->image));
	json_object_object_add(o, "vcpus", json_object_new_int64(w->vcpus));
	json_object_object_add(o, "mem", json_object_new_int64(w->mem_mib));
	json_object_object_add(o, "checkpoint",
			       json_object_new_boolean(w->checkpoint));
	json_object_object_add(o, "query", json_object_new_boolean(w->query));
}

int proto_request_encode(const struct proto_request *req, char **ret,
			 size_t *ret_len)
{
	_cleanup_json_ struct json_object *o = json_object_new_object();
	const struct proto_exec *e = &req->exec;

	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "op",
			       json_object_new_string(proto_op_name(req->op)));
	switch (req->op) {
	case PROTO_OP_START:
		json_object_object_add(o, "job",
				       json_object_new_int64(req->job_id));
		json_object_object_add(o, "uid",
				       json_object_new_int64(req->start.uid));
		json_object_object_add(o, "gid",
				       json_object_new_int64(req->start.gid));
		json_object_object_add(
		    o, "image", json_object_new_string(req->start.image));
		if (add_options(o, &req->start) < 0)
			return -ENOMEM;
		break;
	case PROTO_OP_STOP:
	case PROTO_OP_STEP_END:
	case PROTO_OP_CHECKPOINT:
	case PROTO_OP_OVERLAY_GET:
	case PROTO_OP_OVERLAY_RM:
		json_object_object_add(o, "job",
				       json_object_new_int64(req->job_id));
		break;
	case PROTO_OP_EXEC:
		json_object_object_add(o, "job",
				       json_object_new_int64(req->job_id));
		if (add_str_array(o, "argv", e->argv, e->argc) < 0 ||
		    add_str_array(o, "env", e->envp, e->envc) < 0)
			return -ENOMEM;
		json_object_object_add(
		    o, "cwd", json_object_new_string(e->cwd ? e->cwd : "/"));
		json_object_object_add(o, "stdin",
				       json_object_new_boolean(e->want_stdin));
		json_object_object_add(
		    o, "merge_stderr",
		    json_object_new_boolean(e->merge_stderr));
		json_object_object_add(o, "script",
				       json_object_new_boolean(e->script));
		/* Only when set: a vmmd before bulk ports refuses the key. */
		if (e->relay)
			json_object_object_add(o, "relay",
					       json_object_new_boolean(true));
		if (e->bulk)
			json_object_object_add(o, "bulk",
					       json_object_new_boolean(true));
		break;
	case PROTO_OP_SIGNAL:
		json_object_object_add(o, "signal",
				       json_object_new_int(req->signo));
		break;
	case PROTO_OP_REATTACH:
		json_object_object_add(o, "job",
				       json_object_new_int64(req->job_id));
		json_object_object_add(o, "session",
				       json_object_new_int64(req->re.session));
		json_object_object_add(o, "token",
				       json_object_new_string(req->re.token));
		json_object_object_add(
		    o, "out",
		    json_object_new_int64((int64_t)req->re.out_bytes));
		json_object_object_add(
		    o, "err",
		    json_object_new_int64((int64_t)req->re.err_bytes));
		json_object_object_add(o, "stdin",
				       json_object_new_boolean(e->want_stdin));
		json_object_object_add(
		    o, "merge_stderr",
		    json_object_new_boolean(e->merge_stderr));
		break;
	case PROTO_OP_CONSOLE:
		json_object_object_add(o, "job",
				       json_object_new_int64(req->job_id));
		json_object_object_add(o, "follow",
				       json_object_new_boolean(req->follow));
		break;
	case PROTO_OP_EVACUATE:
		json_object_object_add(o, "reason",
				       json_object_new_string(req->reason));
		break;
	case PROTO_OP_WARM:
		encode_warm(o, &req->warm);
		break;
	case PROTO_OP_STATUS:
	case PROTO_OP_LIST:
	case PROTO_OP_METRICS:
	case PROTO_OP_OVERLAY_LIST:
		break;
	default:
		return -EINVAL;
	}
	return to_json_text(o, ret, ret_len);
}

static int parse_object(const char *buf, size_t len, struct json_object **ret,
			char *err, size_t errlen)
{
	struct json_tokener *tok;
	struct json_object *o;
	enum json_tokener_error jerr;
	size_t used;

	if (len > PROTO_MAX_MSG)
		return fail(err, errlen, "message of %zu bytes exceeds %u", len,
			    PROTO_MAX_MSG);
	tok = json_tokener_new_ex(32);
	if (!tok)
		return -ENOMEM;
	o = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	used = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!o || jerr != json_tokener_success) {
		if (o)
			json_object_put(o);
		return fail(err, errlen, "not valid JSON: %s",
			    json_tokener_error_desc(jerr));
	}
	if (used != len || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return fail(err, errlen, "not a single JSON object");
	}
	*ret = o;
	return 0;
}

static bool key_allowed(enum proto_op op, const char *key)
{
	if (strcmp(key, "op") == 0)
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(op_keys[0]) && op_keys[op][i]; i++)
		if (strcmp(op_keys[op][i], key) == 0)
			return true;
	return false;
}

static int get_u32(struct json_object *o, const char *key, uint32_t *ret,
		   char *err, size_t errlen)
{
	struct json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(o, key, &v))
		return fail(err, errlen, "missing field '%s'", key);
	if (!json_object_is_type(v, json_type_int))
		return fail(err, errlen, "field '%s' must be an integer", key);
	errno = 0;
	n = json_object_get_int64(v);
	if (errno || n < 0 || n > UINT32_MAX)
		return fail(err, errlen, "field '%s' out of range", key);
	*ret = (uint32_t)n;
	return 0;
}

static int get_u63(struct json_object *o, const char *key, uint64_t *ret,
		   char *err, size_t errlen)
{
	struct json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_int))
		return fail(err, errlen, "field '%s' must be an integer", key);
	errno = 0;
	n = json_object_get_int64(v);
	if (errno || n < 0)
		return fail(err, errlen, "field '%s' out of range", key);
	*ret = (uint64_t)n;
	return 0;
}

static int get_bool(struct json_object *o, const char *key, bool *ret,
		    char *err, size_t errlen)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v)) {
		*ret = false;
		return 0;
	}
	if (!json_object_is_type(v, json_type_boolean))
		return fail(err, errlen, "field '%s' must be a boolean", key);
	*ret = json_object_get_boolean(v);
	return 0;
}

static int get_str(struct json_object *o, const char *key, char *buf,
		   size_t buflen, char *err, size_t errlen)
{
	struct json_object *v;
	const char *s;
	int len;

	if (!json_object_object_get_ex(o, key, &v))
		return fail(err, errlen, "missing field '%s'", key);
	if (!json_object_is_type(v, json_type_string))
		return fail(err, errlen, "field '%s' must be a string", key);
	s = json_object_get_string(v);
	len = json_object_get_string_len(v);
	if ((size_t)len >= buflen || strlen(s) != (size_t)len)
		return fail(err, errlen, "field '%s' too long or has NUL", key);
	memcpy(buf, s, (size_t)len + 1);
	return 0;
}

static int get_strdup(struct json_object *o, const char *key, char **ret,
		      char *err, size_t errlen)
{
	_cleanup_free_ char *buf = malloc(VMENV_MAX_PATH);
	int r;

	if (!buf)
		return -ENOMEM;
	r = get_str(o, key, buf, VMENV_MAX_PATH, err, errlen);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(buf);
	return 0;
}

static void free_strv(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

static int get_strv(struct json_object *o, const char *key, char ***ret,
		    size_t *ret_n, size_t min, char *err, size_t errlen)
{
	struct json_object *a;
	char **v;
	size_t n;

	if (!json_object_object_get_ex(o, key, &a))
		return fail(err, errlen, "missing field '%s'", key);
	if (!json_object_is_type(a, json_type_array))
		return fail(err, errlen, "field '%s' must be an array", key);
	n = json_object_array_length(a);
	if (n < min || n > PROTO_MAX_STRS)
		return fail(err, errlen, "field '%s' has %zu entries", key, n);
	v = calloc(n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct json_object *s = json_object_array_get_idx(a, i);
		const char *str;

		if (!json_object_is_type(s, json_type_string) ||
		    strlen(str = json_object_get_string(s)) !=
			(size_t)json_object_get_string_len(s)) {
			free_strv(v);
			return fail(err, errlen,
				    "field '%s' entry %zu must be a string "
				    "without NUL",
				    key, i);
		}
		v[i] = strdup(str);
		if (!v[i]) {
			free_strv(v);
			return -ENOMEM;
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static int decode_op(struct json_object *o, enum proto_op *ret, char *err,
		     size_t errlen)
{
	char name[32];
	int r = get_str(o, "op", name, sizeof(name), err, errlen);

	if (r < 0)
		return r;
	for (size_t i = 1; i < ARRAY_SIZE(op_names); i++) {
		if (op_names[i] && strcmp(op_names[i], name) == 0) {
			*ret = (enum proto_op)i;
			return 0;
		}
	}
	char safe[40];
	return fail(err, errlen, "unknown op '%s'",
		    printable(name, safe, sizeof(safe)));
}

static int decode_exec(struct json_object *o, struct proto_request *req,
		       char *err, size_t errlen)
{
	struct proto_exec *e = &req->exec;
	int r;

	e->job_id = req->job_id;
	if ((r = get_strv(o, "argv", &e->argv, &e->argc, 1, err, errlen)) < 0 ||
	    (r = get_strv(o, "env", &e->envp, &e->envc, 0, err, errlen)) < 0 ||
	    (r = get_strdup(o, "cwd", &e->cwd, err, errlen)) < 0 ||
	    (r = get_bool(o, "stdin", &e->want_stdin, err, errlen)) < 0 ||
	    (r = get_bool(o, "merge_stderr", &e->merge_stderr, err, errlen)) <
		0 ||
	    (r = get_bool(o, "script", &e->script, err, errlen)) < 0 ||
	    (r = get_bool(o, "relay", &e->relay, err, errlen)) < 0 ||
	    (r = get_bool(o, "bulk", &e->bulk, err, errlen)) < 0)
		return r;
	if (!valid_abs_path(e->cwd))
		return fail(err, errlen,
			    "cwd must be an absolute normalised path");
	return 0;
}

static bool is_token(const char *t)
{
	size_t n = strlen(t);

	if (n != PROTO_TOKEN_HEX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((t[i] >= '0' && t[i] <= '9') ||
		      (t[i] >= 'a' && t[i] <= 'f')))
			return false;
	return true;
}

/* The image goes into messages and the catalog's lookup: a name as jobs
 * give it. The shape's bounds are the node's (vmmd checks them). */
static int decode_warm(struct json_object *o, struct proto_warm *w, char *err,
		       size_t errlen)
{
	int r;

	if ((r = get_str(o, "image", w->image, sizeof(w->image), err, errlen)) <
		0 ||
	    (r = get_u32(o, "vcpus", &w->vcpus, err, errlen)) < 0 ||
	    (r = get_u32(o, "mem", &w->mem_mib, err, errlen)) < 0 ||
	    (r = get_bool(o, "checkpoint", &w->checkpoint, err, errlen)) < 0 ||
	    (r = get_bool(o, "query", &w->query, err, errlen)) < 0)
		return r;
	if (!valid_image_ref(w->image))
		return fail(err, errlen,
			    "image: not an image name of the "
			    "catalog");
	return 0;
}

static int decode_reattach(struct json_object *o, struct proto_request *req,
			   char *err, size_t errlen)
{
	struct proto_reattach *re = &req->re;
	int r;

	if ((r = get_u32(o, "job", &req->job_id, err, errlen)) < 0 ||
	    (r = get_u32(o, "session", &re->session, err, errlen)) < 0 ||
	    (r = get_str(o, "token", re->token, sizeof(re->token), err,
			 errlen)) < 0 ||
	    (r = get_u63(o, "out", &re->out_bytes, err, errlen)) < 0 ||
	    (r = get_u63(o, "err", &re->err_bytes, err, errlen)) < 0 ||
	    (r = get_bool(o, "stdin", &req->exec.want_stdin, err, errlen)) <
		0 ||
	    (r = get_bool(o, "merge_stderr", &req->exec.merge_stderr, err,
			  errlen)) < 0)
		return r;
	if (!is_token(re->token))
		return fail(err, errlen,
			    "token must be %u lowercase hex digits",
			    PROTO_TOKEN_HEX);
	return 0;
}

/* Names must be options (not vm-env: that is "image"), values bounded
 * strings; what they say is for vmmd to judge. */
static int decode_options(struct json_object *o, struct proto_start *s,
			  char *err, size_t errlen)
{
	struct json_object *r;
	char safe[40];

	if (!json_object_object_get_ex(o, "request", &r))
		return 0;
	if (!json_object_is_type(r, json_type_object))
		return fail(err, errlen, "field 'request' must be an object");
	json_object_object_foreach(r, key, val)
	{
		int i = vmspec_option_by_name(key);
		const char *v;

		if (i < 0 || i == VMSPEC_OPT_ENV)
			return fail(err, errlen,
				    "unknown option '%s' in "
				    "'request'",
				    printable(key, safe, sizeof(safe)));
		if (!json_object_is_type(val, json_type_string))
			return fail(err, errlen, "option '%s' must be a string",
				    key);
		v = json_object_get_string(val);
		if ((size_t)json_object_get_string_len(val) >=
			VMSPEC_MAX_OPTARG ||
		    strlen(v) != (size_t)json_object_get_string_len(val))
			return fail(err, errlen,
				    "option '%s' too long or has NUL", key);
		free(s->opts[i]);
		if (!(s->opts[i] = strdup(v)))
			return -ENOMEM;
	}
	return 0;
}

/* It goes to Slurm (a node's drain reason) and to logs and messages:
 * printable ASCII only, not empty. */
int proto_reason_check(const char *reason, char *err, size_t errlen)
{
	size_t n = strlen(reason);

	if (n == 0)
		return fail(err, errlen, "the reason is empty");
	if (n >= PROTO_MAX_REASON)
		return fail(err, errlen, "the reason is longer than %u bytes",
			    PROTO_MAX_REASON - 1);
	for (size_t i = 0; i < n; i++)
		if (reason[i] < 0x20 || reason[i] > 0x7e)
			return fail(err, errlen,
				    "the reason has a byte 0x%02x: printable "
				    "ASCII only",
				    (unsigned char)reason[i]);
	return 0;
}

static int get_reason(struct json_object *o, char *buf, char *err,
		      size_t errlen)
{
	int r = get_str(o, "reason", buf, PROTO_MAX_REASON, err, errlen);

	return r < 0 ? r : proto_reason_check(buf, err, errlen);
}

static int decode_body(struct json_object *o, struct proto_request *req,
		       char *err, size_t errlen)
{
	uint32_t sig;
	int r;

	switch (req->op) {
	case PROTO_OP_START:
		if ((r = get_u32(o, "job", &req->job_id, err, errlen)) < 0 ||
		    (r = get_u32(o, "uid", &req->start.uid, err, errlen)) < 0 ||
		    (r = get_u32(o, "gid", &req->start.gid, err, errlen)) < 0 ||
		    (r = get_str(o, "image", req->start.image,
				 sizeof(req->start.image), err, errlen)) < 0)
			return r;
		req->start.job_id = req->job_id;
		return decode_options(o, &req->start, err, errlen);
	case PROTO_OP_STOP:
	case PROTO_OP_STEP_END:
	case PROTO_OP_CHECKPOINT:
	case PROTO_OP_OVERLAY_GET:
	case PROTO_OP_OVERLAY_RM:
		return get_u32(o, "job", &req->job_id, err, errlen);
	case PROTO_OP_EXEC:
		r = get_u32(o, "job", &req->job_id, err, errlen);
		return r < 0 ? r : decode_exec(o, req, err, errlen);
	case PROTO_OP_SIGNAL:
		r = get_u32(o, "signal", &sig, err, errlen);
		if (r < 0)
			return r;
		if (sig < 1 || sig > 64)
			return fail(err, errlen, "signal %u out of range", sig);
		req->signo = (int)sig;
		return 0;
	case PROTO_OP_CONSOLE:
		r = get_u32(o, "job", &req->job_id, err, errlen);
		return r < 0 ? r
			     : get_bool(o, "follow", &req->follow, err, errlen);
	case PROTO_OP_EVACUATE:
		return get_reason(o, req->reason, err, errlen);
	case PROTO_OP_REATTACH:
		return decode_reattach(o, req, err, errlen);
	case PROTO_OP_WARM:
		return decode_warm(o, &req->warm, err, errlen);
	case PROTO_OP_STATUS:
	case PROTO_OP_LIST:
	case PROTO_OP_METRICS:
	case PROTO_OP_OVERLAY_LIST:
		return 0;
	}
	return -EBADMSG;
}

int proto_request_decode(const char *buf, size_t len, struct proto_request *ret,
			 char *err, size_t errlen)
{
	_cleanup_json_ struct json_object *o = NULL;
	struct proto_request req = {0};
	int r = parse_object(buf, len, &o, err, errlen);

	if (r < 0)
		return r;
	r = decode_op(o, &req.op, err, errlen);
	if (r < 0)
		return r;
	json_object_object_foreach(o, key, val)
	{
		(void)val;
		if (!key_allowed(req.op, key)) {
			char safe[40];
			return fail(err, errlen,
				    "unknown field '%s' for op '%s'",
				    printable(key, safe, sizeof(safe)),
				    proto_op_name(req.op));
		}
	}
	r = decode_body(o, &req, err, errlen);
	if (r < 0) {
		proto_request_clear(&req);
		return r;
	}
	*ret = req;
	return 0;
}

void proto_request_clear(struct proto_request *req)
{
	for (int i = 0; i < VMSPEC_NOPTS; i++)
		free(req->start.opts[i]);
	free_strv(req->exec.argv);
	free_strv(req->exec.envp);
	free(req->exec.cwd);
	memset(req, 0, sizeof(*req));
}

static struct json_object *job_info_json(const struct proto_job_info *j)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "job", json_object_new_int64(j->job_id));
	json_object_object_add(o, "uid", json_object_new_int64(j->uid));
	json_object_object_add(o, "image", json_object_new_string(j->image));
	json_object_object_add(o, "state", json_object_new_string(j->state));
	json_object_object_add(o, "domain", json_object_new_string(j->domain));
	json_object_object_add(o, "console",
			       json_object_new_string(j->console));
	json_object_object_add(o, "vcpus", json_object_new_int64(j->vcpus));
	json_object_object_add(o, "mem_mib", json_object_new_int64(j->mem_mib));
	json_object_object_add(o, "sessions",
			       json_object_new_int64(j->sessions));
	json_object_object_add(o, "error", json_object_new_string(j->error));
	json_object_object_add(o, "ckpt_due",
			       json_object_new_int64(j->ckpt_due));
	json_object_object_add(o, "ckpt_lead_s",
			       json_object_new_int64(j->ckpt_lead_s));
	json_object_object_add(o, "started",
			       json_object_new_string(j->started));
	return o;
}

static struct json_object *status_json(const struct proto_status *s)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "node", json_object_new_string(s->node));
	json_object_object_add(o, "version",
			       json_object_new_string(s->version));
	json_object_object_add(o, "domain_type",
			       json_object_new_string(s->domain_type));
	json_object_object_add(o, "libvirt_uri",
			       json_object_new_string(s->libvirt_uri));
	json_object_object_add(o, "jobs", json_object_new_int64(s->jobs));
	json_object_object_add(o, "uptime_s",
			       json_object_new_int64((int64_t)s->uptime_s));
	json_object_object_add(o, "policy_dir",
			       json_object_new_string(s->policy_dir));
	json_object_object_add(o, "policy_loaded",
			       json_object_new_boolean(s->policy_loaded));
	json_object_object_add(o, "policies",
			       json_object_new_int64(s->policies));
	json_object_object_add(o, "policy_error",
			       json_object_new_string(s->policy_error));
	return o;
}

static void add_u64(struct json_object *o, const char *key, uint64_t v)
{
	/* json-c's integers are signed: a larger value is sent as the
	 * largest, which a display clamps anyway. */
	json_object_object_add(
	    o, key,
	    json_object_new_int64(v > INT64_MAX ? INT64_MAX : (int64_t)v));
}

static void progress_json(struct json_object *o, const struct proto_progress *p)
{
	json_object_object_add(o, "event", json_object_new_string("progress"));
	json_object_object_add(o, "image", json_object_new_string(p->image));
	add_u64(o, "done", p->done);
	add_u64(o, "total", p->total);
	add_u64(o, "bps", p->bps);
	add_u64(o, "ms", p->elapsed_ms);
	json_object_object_add(o, "ready", json_object_new_boolean(p->ready));
}

static struct json_object *overlay_json(const struct proto_overlay_info *v)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "job", json_object_new_int64(v->job_id));
	json_object_object_add(o, "uid", json_object_new_int64(v->uid));
	json_object_object_add(o, "node", json_object_new_string(v->node));
	json_object_object_add(o, "image", json_object_new_string(v->image));
	json_object_object_add(o, "base", json_object_new_string(v->base));
	add_u64(o, "bytes", v->bytes);
	json_object_object_add(o, "created", json_object_new_int64(v->created));
	json_object_object_add(o, "expires", json_object_new_int64(v->expires));
	return o;
}

static int reply_body(struct json_object *o, const struct proto_reply *rep)
{
	switch (rep->kind) {
	case PROTO_REPLY_OK:
		json_object_object_add(o, "ok", json_object_new_boolean(1));
		break;
	case PROTO_REPLY_ERROR:
		json_object_object_add(o, "ok", json_object_new_boolean(0));
		json_object_object_add(o, "error",
				       json_object_new_string(rep->error));
		break;
	case PROTO_EV_STARTED:
		json_object_object_add(o, "event",
				       json_object_new_string("started"));
		if (!rep->reattached)
			break;
		json_object_object_add(
		    o, "stdin_offset",
		    json_object_new_int64((int64_t)rep->stdin_offset));
		json_object_object_add(o, "stdin_eof",
				       json_object_new_boolean(rep->stdin_eof));
		break;
	case PROTO_EV_SESSION:
		json_object_object_add(o, "event",
				       json_object_new_string("session"));
		json_object_object_add(o, "session",
				       json_object_new_int64(rep->session));
		/* None: the command is on its way, and cannot outlive a
		 * vmmd restart. */
		if (rep->token[0])
			json_object_object_add(
			    o, "token", json_object_new_string(rep->token));
		break;
	case PROTO_EV_EXIT:
		json_object_object_add(o, "event",
				       json_object_new_string("exit"));
		json_object_object_add(o,
				       rep->exit_signaled ? "signal" : "code",
				       json_object_new_int(rep->exit_value));
		break;
	case PROTO_EV_ERROR:
		json_object_object_add(o, "event",
				       json_object_new_string("error"));
		json_object_object_add(o, "error",
				       json_object_new_string(rep->error));
		break;
	case PROTO_EV_CHECKPOINTED:
		json_object_object_add(o, "event",
				       json_object_new_string("checkpointed"));
		json_object_object_add(o, "error",
				       json_object_new_string(rep->error));
		json_object_object_add(o, "code",
				       json_object_new_int(rep->exit_value));
		break;
	case PROTO_EV_PROGRESS:
		progress_json(o, &rep->progress);
		break;
	default:
		return -EINVAL;
	}
	return 0;
}

int proto_reply_encode(const struct proto_reply *rep, char **ret,
		       size_t *ret_len)
{
	_cleanup_json_ struct json_object *o = json_object_new_object();
	int r;

	if (!o)
		return -ENOMEM;
	r = reply_body(o, rep);
	if (r < 0)
		return r;
	if (rep->has_status)
		json_object_object_add(o, "status", status_json(&rep->status));
	if (rep->text)
		json_object_object_add(o, "text",
				       json_object_new_string(rep->text));
	if (rep->has_jobs) {
		struct json_object *a = json_object_new_array();

		for (size_t i = 0; i < rep->njobs; i++)
			json_object_array_add(a, job_info_json(&rep->jobs[i]));
		json_object_object_add(o, "jobs", a);
	}
	if (rep->nmoved) {
		struct json_object *a = json_object_new_array();

		for (size_t i = 0; i < rep->nmoved; i++)
			json_object_array_add(
			    a, json_object_new_int64(rep->moved[i]));
		json_object_object_add(o, "moved", a);
	}
	if (rep->has_overlays) {
		struct json_object *a = json_object_new_array();

		for (size_t i = 0; i < rep->noverlays; i++)
			json_object_array_add(a,
					      overlay_json(&rep->overlays[i]));
		json_object_object_add(o, "overlays", a);
	}
	return to_json_text(o, ret, ret_len);
}

static void opt_str(struct json_object *o, const char *key, char *buf,
		    size_t len)
{
	struct json_object *v;

	if (json_object_object_get_ex(o, key, &v) &&
	    json_object_is_type(v, json_type_string))
		snprintf(buf, len, "%s", json_object_get_string(v));
}

static uint64_t opt_u64(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (json_object_object_get_ex(o, key, &v) &&
	    json_object_is_type(v, json_type_int)) {
		int64_t n = json_object_get_int64(v);
		return n < 0 ? 0 : (uint64_t)n;
	}
	return 0;
}

static int decode_moved(struct json_object *a, struct proto_reply *rep)
{
	size_t n = json_object_array_length(a);

	if (n > PROTO_MAX_MOVED)
		return -EBADMSG;
	rep->moved = calloc(n ? n : 1, sizeof(*rep->moved));
	if (!rep->moved)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct json_object *v = json_object_array_get_idx(a, i);
		int64_t id;

		if (!json_object_is_type(v, json_type_int))
			return -EBADMSG;
		id = json_object_get_int64(v);
		if (id <= 0 || id > UINT32_MAX)
			return -EBADMSG;
		rep->moved[rep->nmoved++] = (uint32_t)id;
	}
	return 0;
}

static int decode_jobs(struct json_object *a, struct proto_reply *rep)
{
	size_t n = json_object_array_length(a);

	if (n > PROTO_MAX_STRS)
		return -EBADMSG;
	rep->jobs = calloc(n ? n : 1, sizeof(*rep->jobs));
	if (!rep->jobs)
		return -ENOMEM;
	rep->has_jobs = true;
	rep->njobs = n;
	for (size_t i = 0; i < n; i++) {
		struct json_object *j = json_object_array_get_idx(a, i);
		struct proto_job_info *ji = &rep->jobs[i];

		if (!json_object_is_type(j, json_type_object))
			return -EBADMSG;
		ji->job_id = (uint32_t)opt_u64(j, "job");
		ji->uid = (uint32_t)opt_u64(j, "uid");
		ji->vcpus = (uint32_t)opt_u64(j, "vcpus");
		ji->mem_mib = (uint32_t)opt_u64(j, "mem_mib");
		ji->sessions = (uint32_t)opt_u64(j, "sessions");
		opt_str(j, "image", ji->image, sizeof(ji->image));
		opt_str(j, "state", ji->state, sizeof(ji->state));
		opt_str(j, "domain", ji->domain, sizeof(ji->domain));
		opt_str(j, "console", ji->console, sizeof(ji->console));
		opt_str(j, "error", ji->error, sizeof(ji->error));
		ji->ckpt_due = (int64_t)opt_u64(j, "ckpt_due");
		ji->ckpt_lead_s = (uint32_t)opt_u64(j, "ckpt_lead_s");
		opt_str(j, "started", ji->started, sizeof(ji->started));
	}
	return 0;
}

static int decode_overlays(struct json_object *a, struct proto_reply *rep)
{
	size_t n = json_object_array_length(a);

	if (n > PROTO_MAX_STRS)
		return -EBADMSG;
	rep->overlays = calloc(n ? n : 1, sizeof(*rep->overlays));
	if (!rep->overlays)
		return -ENOMEM;
	rep->has_overlays = true;
	rep->noverlays = n;
	for (size_t i = 0; i < n; i++) {
		struct json_object *j = json_object_array_get_idx(a, i);
		struct proto_overlay_info *v = &rep->overlays[i];

		if (!json_object_is_type(j, json_type_object))
			return -EBADMSG;
		v->job_id = (uint32_t)opt_u64(j, "job");
		v->uid = (uint32_t)opt_u64(j, "uid");
		opt_str(j, "node", v->node, sizeof(v->node));
		opt_str(j, "image", v->image, sizeof(v->image));
		opt_str(j, "base", v->base, sizeof(v->base));
		v->bytes = opt_u64(j, "bytes");
		v->created = (int64_t)opt_u64(j, "created");
		v->expires = (int64_t)opt_u64(j, "expires");
	}
	return 0;
}

static int decode_progress(struct json_object *o, struct proto_progress *p,
			   char *err, size_t errlen)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, "total", &v) ||
	    !json_object_is_type(v, json_type_int))
		return fail(err, errlen, "progress event without total");
	opt_str(o, "image", p->image, sizeof(p->image));
	p->done = opt_u64(o, "done");
	p->total = opt_u64(o, "total");
	p->bps = opt_u64(o, "bps");
	p->elapsed_ms = opt_u64(o, "ms");
	p->ready = json_object_object_get_ex(o, "ready", &v) &&
		   json_object_get_boolean(v);
	return 0;
}

static int decode_event(struct json_object *o, struct proto_reply *rep,
			char *err, size_t errlen)
{
	char ev[16] = "";
	struct json_object *v;

	opt_str(o, "event", ev, sizeof(ev));
	if (strcmp(ev, "started") == 0) {
		rep->kind = PROTO_EV_STARTED;
		rep->reattached =
		    json_object_object_get_ex(o, "stdin_offset", &v);
		rep->stdin_offset = opt_u64(o, "stdin_offset");
		rep->stdin_eof =
		    json_object_object_get_ex(o, "stdin_eof", &v) &&
		    json_object_get_boolean(v);
	} else if (strcmp(ev, "session") == 0) {
		rep->kind = PROTO_EV_SESSION;
		rep->session = (uint32_t)opt_u64(o, "session");
		opt_str(o, "token", rep->token, sizeof(rep->token));
		if (rep->token[0] && !is_token(rep->token))
			return fail(err, errlen,
				    "session event with a bad token");
	} else if (strcmp(ev, "error") == 0) {
		rep->kind = PROTO_EV_ERROR;
		opt_str(o, "error", rep->error, sizeof(rep->error));
	} else if (strcmp(ev, "checkpointed") == 0) {
		rep->kind = PROTO_EV_CHECKPOINTED;
		opt_str(o, "error", rep->error, sizeof(rep->error));
		if (!json_object_object_get_ex(o, "code", &v))
			return fail(err, errlen, "checkpointed without code");
		rep->exit_value = json_object_get_int(v);
	} else if (strcmp(ev, "exit") == 0) {
		rep->kind = PROTO_EV_EXIT;
		if (json_object_object_get_ex(o, "signal", &v)) {
			rep->exit_signaled = true;
			rep->exit_value = json_object_get_int(v);
		} else if (json_object_object_get_ex(o, "code", &v)) {
			rep->exit_value = json_object_get_int(v);
		} else {
			return fail(err, errlen, "exit event without code");
		}
	} else if (strcmp(ev, "progress") == 0) {
		rep->kind = PROTO_EV_PROGRESS;
		return decode_progress(o, &rep->progress, err, errlen);
	} else {
		return fail(err, errlen, "unknown event");
	}
	return 0;
}

int proto_reply_decode(const char *buf, size_t len, struct proto_reply *ret,
		       char *err, size_t errlen)
{
	_cleanup_json_ struct json_object *o = NULL;
	struct proto_reply rep = {0};
	struct json_object *v;
	int r = parse_object(buf, len, &o, err, errlen);

	if (r < 0)
		return r;
	if (json_object_object_get_ex(o, "ok", &v)) {
		rep.kind = json_object_get_boolean(v) ? PROTO_REPLY_OK
						      : PROTO_REPLY_ERROR;
		opt_str(o, "error", rep.error, sizeof(rep.error));
	} else if ((r = decode_event(o, &rep, err, errlen)) < 0) {
		return r;
	}
	if (json_object_object_get_ex(o, "status", &v) &&
	    json_object_is_type(v, json_type_object)) {
		struct json_object *pl;

		rep.has_status = true;
		opt_str(v, "node", rep.status.node, sizeof(rep.status.node));
		opt_str(v, "version", rep.status.version,
			sizeof(rep.status.version));
		opt_str(v, "domain_type", rep.status.domain_type,
			sizeof(rep.status.domain_type));
		opt_str(v, "libvirt_uri", rep.status.libvirt_uri,
			sizeof(rep.status.libvirt_uri));
		rep.status.jobs = (uint32_t)opt_u64(v, "jobs");
		rep.status.uptime_s = opt_u64(v, "uptime_s");
		opt_str(v, "policy_dir", rep.status.policy_dir,
			sizeof(rep.status.policy_dir));
		rep.status.policies = (uint32_t)opt_u64(v, "policies");
		rep.status.policy_loaded =
		    json_object_object_get_ex(v, "policy_loaded", &pl) &&
		    json_object_get_boolean(pl);
		opt_str(v, "policy_error", rep.status.policy_error,
			sizeof(rep.status.policy_error));
	}
	if (json_object_object_get_ex(o, "text", &v) &&
	    json_object_is_type(v, json_type_string) &&
	    !(rep.text = strdup(json_object_get_string(v)))) {
		proto_reply_clear(&rep);
		return -ENOMEM;
	}
	if (json_object_object_get_ex(o, "jobs", &v) &&
	    json_object_is_type(v, json_type_array) &&
	    (r = decode_jobs(v, &rep)) < 0) {
		proto_reply_clear(&rep);
		return fail(err, errlen, "malformed job list");
	}
	if (json_object_object_get_ex(o, "moved", &v) &&
	    (!json_object_is_type(v, json_type_array) ||
	     (r = decode_moved(v, &rep)) < 0)) {
		proto_reply_clear(&rep);
		return fail(err, errlen, "malformed list of moved jobs");
	}
	if (json_object_object_get_ex(o, "overlays", &v) &&
	    json_object_is_type(v, json_type_array) &&
	    (r = decode_overlays(v, &rep)) < 0) {
		proto_reply_clear(&rep);
		return fail(err, errlen, "malformed overlay list");
	}
	*ret = rep;
	return 0;
}

void proto_reply_clear(struct proto_reply *rep)
{
	free(rep->jobs);
	free(rep->moved);
	free(rep->text);
	free(rep->overlays);
	memset(rep, 0, sizeof(*rep));
}

int proto_send(int fd, const char *msg, size_t len, const int *fds, size_t nfds)
{
	uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16),
			  (uint8_t)(len >> 8), (uint8_t)len};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * PROTO_MAX_FDS)];
	} cm;
	/* sendmsg does not write through iov_base; the cast drops const only. */
	struct iovec iov[2] = {{hdr, 4}, {(void *)(uintptr_t)msg, len}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
	size_t sent_total = 0, total = len + 4;

	if (len > PROTO_MAX_MSG || nfds > PROTO_MAX_FDS)
		return -EMSGSIZE;
	if (nfds) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	while (sent_total < total) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		sent_total += (size_t)n;
		/* Advance the iovecs past what went out; fds went with the
		 * first chunk. */
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		while (n > 0 && mh.msg_iovlen > 0) {
			if ((size_t)n >= mh.msg_iov[0].iov_len) {
				n -= (ssize_t)mh.msg_iov[0].iov_len;
				mh.msg_iov++;
				mh.msg_iovlen--;
			} else {
				mh.msg_iov[0].iov_base =
				    (char *)mh.msg_iov[0].iov_base + n;
				mh.msg_iov[0].iov_len -= (size_t)n;
				n = 0;
			}
		}
	}
	return 0;
}

int proto_send_request(int fd, const struct proto_request *req, const int *fds,
		       size_t nfds)
{
	_cleanup_free_ char *msg = NULL;
	size_t len;
	int r = proto_request_encode(req, &msg, &len);

	return r < 0 ? r : proto_send(fd, msg, len, fds, nfds);
}

int proto_send_reply(int fd, const struct proto_reply *rep)
{
	_cleanup_free_ char *msg = NULL;
	size_t len;
	int r = proto_reply_encode(rep, &msg, &len);

	return r < 0 ? r : proto_send(fd, msg, len, NULL, 0);
}

int proto_send_reply_fd(int fd, const struct proto_reply *rep, int xfd)
{
	_cleanup_free_ char *msg = NULL;
	size_t len;
	int r = proto_reply_encode(rep, &msg, &len);

	return r < 0 ? r : proto_send(fd, msg, len, &xfd, 1);
}

void proto_rx_init(struct proto_rx *rx)
{
	memset(rx, 0, sizeof(*rx));
}

void proto_rx_reset(struct proto_rx *rx)
{
	size_t max = rx->max;

	for (size_t i = 0; i < rx->nfds; i++)
		if (rx->fds[i] >= 0)
			close(rx->fds[i]);
	free(rx->buf);
	proto_rx_init(rx);
	rx->max = max;
}

static int rx_take_fds(struct proto_rx *rx, struct msghdr *mh)
{
	int r = 0;

	if (mh->msg_flags & MSG_CTRUNC)
		r = -EPROTO;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int *fds = (int *)CMSG_DATA(c);
		for (size_t i = 0; i < n; i++) {
			if (rx->nfds < PROTO_MAX_FDS)
				rx->fds[rx->nfds++] = fds[i];
			else {
				close(fds[i]);
				r = -EPROTO;
			}
		}
	}
	return r;
}

static ssize_t rx_recv(struct proto_rx *rx, int fd, void *buf, size_t len)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * PROTO_MAX_FDS)];
	} cm;
	struct iovec iov = {buf, len};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cm.buf,
			    .msg_controllen = sizeof(cm.buf)};
	ssize_t n;
	int r;

	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	r = rx_take_fds(rx, &mh);
	if (r < 0)
		return r;
	return n == 0 ? -ECONNRESET : n;
}

int proto_rx_feed(struct proto_rx *rx, int fd)
{
	ssize_t n;

	while (rx->hdr_got < 4) {
		n = rx_recv(rx, fd, rx->hdr + rx->hdr_got, 4 - rx->hdr_got);
		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			return (int)n;
		rx->hdr_got += (size_t)n;
		if (rx->hdr_got < 4)
			continue;
		rx->need = (size_t)rx->hdr[0] << 24 | (size_t)rx->hdr[1] << 16 |
			   (size_t)rx->hdr[2] << 8 | rx->hdr[3];
		/* The cap is checked before anything is allocated. */
		if (rx->need > PROTO_MAX_MSG || (rx->max && rx->need > rx->max))
			return -EMSGSIZE;
		rx->buf = malloc(rx->need + 1);
		if (!rx->buf)
			return -ENOMEM;
	}
	while (rx->got < rx->need) {
		n = rx_recv(rx, fd, rx->buf + rx->got, rx->need - rx->got);
		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			return (int)n;
		rx->got += (size_t)n;
	}
	rx->buf[rx->got] = '\0';
	return 1;
}

/* Waits for one whole message into rx. */
static int recv_msg(int fd, int timeout_ms, struct proto_rx *rx)
{
	uint64_t deadline =
	    now_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
	int r;

	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int wait = -1;

		if (timeout_ms >= 0) {
			uint64_t now = now_ms();
			wait = now >= deadline ? 0 : (int)(deadline - now);
		}
		r = poll(&pfd, 1, wait);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		r = proto_rx_feed(rx, fd);
		if (r == 0 || r == -EAGAIN)
			continue;
		return r;
	}
}

int proto_recv_reply_fd(int fd, int timeout_ms, struct proto_reply *ret,
			int *ret_fd, char *err, size_t errlen)
{
	struct proto_rx rx;
	int r;

	proto_rx_init(&rx);
	if (ret_fd)
		*ret_fd = -1;
	r = recv_msg(fd, timeout_ms, &rx);
	if (r > 0 && rx.nfds > (ret_fd ? 1u : 0u))
		r = -EPROTO;
	if (r > 0)
		r = proto_reply_decode(rx.buf, rx.got, ret, err, errlen);
	if (r == 0 && ret_fd && rx.nfds == 1) {
		*ret_fd = rx.fds[0];
		rx.nfds = 0;
	}
	proto_rx_reset(&rx);
	return r;
}

int proto_recv_reply(int fd, int timeout_ms, struct proto_reply *ret, char *err,
		     size_t errlen)
{
	return proto_recv_reply_fd(fd, timeout_ms, ret, NULL, err, errlen);
}

int proto_call(const char *sock_path, const struct proto_request *req,
	       int timeout_ms, struct proto_reply *ret, char *err,
	       size_t errlen)
{
	_cleanup_close_ int fd = unix_connect(sock_path, timeout_ms);
	int r;

	if (fd < 0)
		return fd;
	r = proto_send_request(fd, req, NULL, 0);
	if (r < 0)
		return r;
	return proto_recv_reply(fd, timeout_ms, ret, err, errlen);
}
