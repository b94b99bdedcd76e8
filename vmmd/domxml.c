/* SPDX-License-Identifier: MIT */
#include "domxml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sbuf {
	char *p;
	size_t len;
	size_t cap;
	bool oom;
};

static void sb_grow(struct sbuf *b, size_t add)
{
	size_t ncap;
	char *np;

	if (b->oom || b->len + add + 1 <= b->cap)
		return;
	ncap = b->cap ? b->cap : 4096;
	while (ncap < b->len + add + 1)
		ncap *= 2;
	np = realloc(b->p, ncap);
	if (!np) {
		b->oom = true;
		return;
	}
	b->p = np;
	b->cap = ncap;
}

static void sb_raw(struct sbuf *b, const char *s, size_t n)
{
	sb_grow(b, n);
	if (b->oom)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* Literal XML with %s/%u arguments that are never user strings: numbers and
 * fixed words. User-derived strings go through sb_esc(). */
static void sb_fmt(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sb_fmt(struct sbuf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		b->oom = true;
		return;
	}
	sb_raw(b, tmp, (size_t)n);
}

static void sb_esc(struct sbuf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			sb_raw(b, "&amp;", 5);
			break;
		case '<':
			sb_raw(b, "&lt;", 4);
			break;
		case '>':
			sb_raw(b, "&gt;", 4);
			break;
		case '\'':
			sb_raw(b, "&apos;", 6);
			break;
		case '"':
			sb_raw(b, "&quot;", 6);
			break;
		default:
			sb_raw(b, s, 1);
		}
	}
}

/* <tag>escaped</tag> on its own line. */
static void sb_elem(struct sbuf *b, const char *indent, const char *tag,
		    const char *val)
{
	sb_fmt(b, "%s<%s>", indent, tag);
	sb_esc(b, val);
	sb_fmt(b, "</%s>\n", tag);
}

static void build_head(struct sbuf *b, const struct dom_spec *s)
{
	sb_fmt(b, "<domain type='%s'>\n",
	       strcmp(s->type, "kvm") ? "qemu" : "kvm");
	sb_elem(b, "  ", "name", s->name);
	sb_fmt(b,
	       "  <metadata>\n    <vmenv:job xmlns:vmenv='" DOMXML_NS
	       "' id='%u' node='",
	       s->job_id);
	sb_esc(b, s->node);
	sb_fmt(b, "'/>\n  </metadata>\n");
	sb_fmt(b, "  <memory unit='MiB'>%u</memory>\n", s->mem_mib);
	sb_fmt(b, "  <vcpu placement='static'>%u</vcpu>\n", s->vcpus);
	sb_fmt(b, "  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n");
	sb_elem(b, "    ", "kernel", s->kernel);
	sb_elem(b, "    ", "initrd", s->initrd);
	sb_elem(b, "    ", "cmdline", s->cmdline);
	sb_fmt(b, "  </os>\n  <features><acpi/></features>\n");
	if (strcmp(s->type, "kvm") == 0)
		sb_fmt(b, "  <cpu mode='host-passthrough'/>\n");
	/* A guest that stops for any reason is gone: vmmd sees the event and
	 * fails the job instead of leaving a paused domain behind. */
	sb_fmt(b, "  <on_poweroff>destroy</on_poweroff>\n"
		  "  <on_reboot>destroy</on_reboot>\n"
		  "  <on_crash>destroy</on_crash>\n");
	sb_fmt(b,
	       "  <seclabel type='static' model='dac' relabel='yes'>"
	       "<label>+%u:+%u</label></seclabel>\n",
	       s->uid, s->gid);
}

static void build_devices(struct sbuf *b, const struct dom_spec *s)
{
	sb_fmt(b, "  <devices>\n    <serial type='pty'>\n      <log file='");
	sb_esc(b, s->console_log);
	sb_fmt(b, "' append='on'/>\n      <target port='0'/>\n    </serial>\n"
		  "    <console type='pty'><target type='serial' port='0'/>"
		  "</console>\n");
	sb_fmt(b,
	       "    <channel type='unix'>\n      <source mode='bind' path='");
	sb_esc(b, s->agent_sock);
	sb_fmt(b, "'/>\n      <target type='virtio' name='org.vmenv.agent.0'/>"
		  "\n    </channel>\n");
	if (s->share_dir) {
		sb_fmt(b,
		       "    <filesystem type='mount' accessmode='passthrough'>"
		       "\n      <source dir='");
		sb_esc(b, s->share_dir);
		sb_fmt(b, "'/>\n      <target dir='");
		sb_esc(b, s->share_tag);
		sb_fmt(b, "'/>\n    </filesystem>\n");
	}
	sb_fmt(b, "    <memballoon model='none'/>\n  </devices>\n</domain>\n");
}

static bool spec_ok(const struct dom_spec *s)
{
	return s->name && s->type && s->node && s->kernel && s->initrd &&
	       s->cmdline && s->console_log && s->agent_sock && s->vcpus > 0 &&
	       s->mem_mib > 0 && (!s->share_dir || s->share_tag);
}

int domxml_build(const struct dom_spec *s, char **ret)
{
	struct sbuf b = {0};

	if (!spec_ok(s))
		return -EINVAL;
	build_head(&b, s);
	build_devices(&b, s);
	if (b.oom) {
		free(b.p);
		return -ENOMEM;
	}
	*ret = b.p;
	return 0;
}
