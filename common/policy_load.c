/* SPDX-License-Identifier: MIT */
/* Reading a policy directory (or one file) into a set: all files or none.
 * No logging: every problem goes to the caller's callback. */
#include "policy_priv.h"

#include "cleanup.h"
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

struct load {
	policy_error_f on_error;
	void *data;
	char *err;
	size_t errlen;
	int nerrors;
	struct policy *p[POLICY_MAX_FILES];
	size_t n;
};

static void report(struct load *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void report(struct load *l, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!l->nerrors++ && l->err && l->errlen)
		snprintf(l->err, l->errlen, "%s", msg);
	if (l->on_error)
		l->on_error(l->data, msg);
}

/* Policy files are "*.json"; editors' and package managers' leftovers
 * ("x.json~", "x.json.dpkg-old", ".x.json.swp") are not. */
static bool is_policy_name(const char *n)
{
	size_t len = strlen(n);

	return n[0] != '.' && len > 5 && strcmp(n + len - 5, ".json") == 0;
}

static bool file_name_ok(const char *n)
{
	if (strlen(n) >= VMSPEC_MAX_FILE)
		return false;
	for (const char *p = n; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._+-", *p))
			return false;
	return true;
}

static void load_file(struct load *l, const char *display, const char *base)
{
	_cleanup_free_ char *text = NULL;
	char why[1024];
	size_t len;
	int r;

	if (!file_name_ok(base)) {
		report(l,
		       "%s: file name must be shorter than %d bytes of "
		       "letters, digits, '.', '_', '+' or '-'",
		       display, VMSPEC_MAX_FILE);
		return;
	}
	if (l->n == POLICY_MAX_FILES) {
		report(l, "%s: more than %d policy files", display,
		       POLICY_MAX_FILES);
		return;
	}
	r = read_file_limited(display, POLICY_MAX_FILE, &text, &len);
	if (r < 0) {
		report(l, "%s: %s", display,
		       r == -EFBIG ? "larger than 256 KiB" : strerror(-r));
		return;
	}
	r = policy_parse_as(text, len, base, display, &l->p[l->n], why,
			    sizeof(why));
	if (r < 0)
		report(l, "%s", r == -EINVAL ? why : strerror(-r));
	else
		l->n++;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* The policy file names in dir, sorted (the order of ties). Bounded
 * before anything is read: the directory is the admin's, but a runaway
 * script should not exhaust the daemon. */
static int list_dir(struct load *l, const char *dir, char ***ret, size_t *ret_n)
{
	DIR *d = opendir(dir);
	char **names = NULL, **nn;
	size_t n = 0;
	struct dirent *e;
	int r = 0;

	if (!d) {
		r = -errno;
		report(l, "%s: %s", dir, strerror(-r));
		return r;
	}
	while ((e = readdir(d))) {
		if (!is_policy_name(e->d_name))
			continue;
		if (n == POLICY_MAX_FILES) {
			report(l, "%s: more than %d policy files", dir,
			       POLICY_MAX_FILES);
			r = -E2BIG;
			break;
		}
		if (!(nn = realloc(names, (n + 1) * sizeof(*names)))) {
			r = -ENOMEM;
			break;
		}
		names = nn;
		if (!(names[n] = strdup(e->d_name))) {
			r = -ENOMEM;
			break;
		}
		n++;
	}
	closedir(d);
	if (r == -ENOMEM)
		report(l, "%s: out of memory", dir);
	if (r < 0) {
		free_names(names, n);
		return r;
	}
	if (n)
		qsort(names, n, sizeof(*names), by_name);
	*ret = names;
	*ret_n = n;
	return 0;
}

static void load_dir(struct load *l, const char *dir)
{
	char **names = NULL;
	size_t n = 0;

	if (list_dir(l, dir, &names, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		char path[VMENV_MAX_PATH];
		struct stat st;

		if (str_printf(path, sizeof(path), "%s/%s", dir, names[i]) <
		    0) {
			report(l, "%s/%s: path too long", dir, names[i]);
			continue;
		}
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
			report(l, "%s: not a regular file", path);
			continue;
		}
		load_file(l, path, names[i]);
	}
	free_names(names, n);
}

int policy_set_load(const char *path, bool missing_ok, policy_error_f on_error,
		    void *data, struct policy_set **ret, char *err,
		    size_t errlen)
{
	struct load *l = calloc(1, sizeof(*l));
	struct stat st;
	const char *base;
	int r;

	if (!l)
		return -ENOMEM;
	*l = (struct load){
	    .on_error = on_error, .data = data, .err = err, .errlen = errlen};
	if (stat(path, &st) < 0) {
		r = -errno;
		if (r == -ENOENT && missing_ok) {
			free(l);
			return policy_set_new(NULL, 0, ret, err, errlen);
		}
		report(l, "%s: %s", path, strerror(-r));
		free(l);
		return r;
	}
	if (S_ISDIR(st.st_mode)) {
		load_dir(l, path);
	} else {
		base = strrchr(path, '/');
		load_file(l, path, base ? base + 1 : path);
	}
	r = -EINVAL;
	if (!l->nerrors) {
		r = policy_set_new(l->p, l->n, ret, err, errlen);
		l->n = 0; /* the set owns them, or freed them */
		if (r == -EINVAL && on_error)
			on_error(data, err);
	}
	for (size_t i = 0; i < l->n; i++)
		policy_free(l->p[i]);
	free(l);
	return r;
}
