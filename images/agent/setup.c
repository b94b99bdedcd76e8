// SPDX-License-Identifier: MIT
/*
 * SETUP: make the guest look like the job's node: hostname, clock, the
 * job's user and group, and the 9p shares. Done once; a repeated SETUP after
 * success is answered without redoing anything.
 *
 * The agent is static, so /etc/passwd and /etc/group are read and written
 * directly instead of through NSS.
 */
#include "agent.h"
#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PASSWD_FILE  "/etc/passwd"
#define GROUP_FILE   "/etc/group"
#define DB_MAX	     (64u * 1024u * 1024u)
#define NAME_MAX_LEN 256

/* --- validation --------------------------------------------------------- */

/* A field of a passwd/group line: anything else would let the host's
 * strings inject lines or fields. */
static bool db_field_ok(const char *s, bool may_be_empty)
{
	size_t n = strlen(s);

	if (!may_be_empty && n == 0)
		return false;
	return n <= NAME_MAX_LEN * 16 && !strpbrk(s, ":\n");
}

static int setup_check(const struct aw_setup *s, char *msg, size_t size)
{
	uint32_t i;

	if (strlen(s->hostname) > HOST_NAME_MAX)
		return agent_fail(msg, size, EINVAL, "hostname '%s'",
				  s->hostname);
	if (!db_field_ok(s->user, false) || strlen(s->user) > NAME_MAX_LEN)
		return agent_fail(msg, size, EINVAL, "user name '%s'", s->user);
	if (!db_field_ok(s->group, false) || strlen(s->group) > NAME_MAX_LEN)
		return agent_fail(msg, size, EINVAL, "group name '%s'",
				  s->group);
	if (!db_field_ok(s->home, true))
		return agent_fail(msg, size, EINVAL, "home '%s'", s->home);
	for (i = 0; i < s->nmounts; i++) {
		if (!s->mounts[i].tag[0])
			return agent_fail(msg, size, EINVAL,
					  "mount %u: empty tag", i);
		if (s->mounts[i].path[0] != '/')
			return agent_fail(
			    msg, size, EINVAL,
			    "mount '%s': path '%s' is not absolute",
			    s->mounts[i].tag, s->mounts[i].path);
	}
	return 0;
}

/* --- /etc/passwd and /etc/group ----------------------------------------- */

/* Reads a whole file into a NUL-terminated buffer; a missing file reads as
 * empty, owned by root with mode 0644. Returns NULL with *err set on
 * failure: a file that cannot be read whole must not be rewritten. */
static char *read_db(const char *path, struct stat *st, size_t *ret_len,
		     int *err)
{
	size_t len = 0, size;
	char *buf;
	ssize_t n;
	int fd;

	*st = (struct stat){.st_mode = 0644};
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) {
		*err = -errno;
		return NULL;
	}
	if (fd >= 0 && fstat(fd, st) < 0)
		st->st_size = -1;
	size = st->st_size < 0 ? DB_MAX : (size_t)st->st_size;
	buf = size < DB_MAX ? malloc(size + 1) : NULL;
	*err = !buf ? (size < DB_MAX ? -ENOMEM : -EFBIG) : 0;
	while (buf && fd >= 0 && len < size) {
		n = read(fd, buf + len, size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			*err = -errno;
		else if (n > 0 && memchr(buf + len, '\0', (size_t)n))
			*err = -EINVAL;
		if (n <= 0 || *err < 0)
			break;
		len += (size_t)n;
	}
	if (fd >= 0)
		close(fd);
	if (*err < 0) {
		free(buf);
		return NULL;
	}
	buf[len] = '\0';
	*ret_len = len;
	return buf;
}

enum db_match { DB_NONE, DB_ID, DB_NAME };

/* Parses the decimal id in the third field of a line, if there is one. */
static bool line_id(const char *line, const char *end, uint32_t *id)
{
	const char *p = memchr(line, ':', (size_t)(end - line));
	uint64_t v = 0;

	if (!p)
		return false;
	p = memchr(p + 1, ':', (size_t)(end - p - 1));
	if (!p || ++p == end || *p < '0' || *p > '9')
		return false;
	for (; p < end && *p >= '0' && *p <= '9' && v <= UINT32_MAX; p++)
		v = v * 10 + (uint64_t)(*p - '0');
	if (v > UINT32_MAX || (p < end && *p != ':'))
		return false;
	*id = (uint32_t)v;
	return true;
}

static enum db_match db_find(const char *data, const char *name, uint32_t id)
{
	size_t nlen = strlen(name);
	enum db_match m = DB_NONE;
	const char *line, *end;
	uint32_t v;

	for (line = data; *line; line = *end ? end + 1 : end) {
		end = strchrnul(line, '\n');
		if (line_id(line, end, &v) && v == id)
			return DB_ID;
		if ((size_t)(end - line) > nlen && line[nlen] == ':' &&
		    memcmp(line, name, nlen) == 0)
			m = DB_NAME;
	}
	return m;
}

/* Replaces path with old + line through a temporary file and rename(), so a
 * crash leaves either the old or the new file. */
static int db_replace(const char *path, const char *old, size_t olen,
		      const char *line, const struct stat *st)
{
	char tmp[PATH_MAX];
	int fd, r;

	snprintf(tmp, sizeof(tmp), "%s.vmenv-agent.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0)
		return -errno;
	r = agent_write_all(fd, old, olen);
	if (!r && olen && old[olen - 1] != '\n')
		r = agent_write_all(fd, "\n", 1);
	r = r ?: agent_write_all(fd, line, strlen(line));
	if (!r && fchown(fd, st->st_uid, st->st_gid) < 0)
		r = -errno;
	if (!r && fchmod(fd, st->st_mode & 07777) < 0)
		r = -errno;
	if (!r && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

/* Adds line to the database unless the id is there already. A name that
 * exists with another id is left alone too: two entries with one name
 * would make lookups by name disagree with lookups by id. */
static int db_add(const char *path, const char *name, uint32_t id,
		  const char *line)
{
	struct stat st;
	size_t len;
	char *data;
	int r = 0;

	data = read_db(path, &st, &len, &r);
	if (!data)
		return r;
	r = 0;
	switch (db_find(data, name, id)) {
	case DB_NONE:
		r = db_replace(path, data, len, line, &st);
		break;
	case DB_NAME:
		agent_log("%s: '%s' exists with an id other than %u; "
			  "not adding it",
			  path, name, id);
		break;
	case DB_ID:
		break;
	}
	free(data);
	return r;
}

static int add_user_group(const struct aw_setup *s, char *msg, size_t size)
{
	char line[NAME_MAX_LEN * 20];
	int r;

	snprintf(line, sizeof(line), "%s:x:%u:%u::%s:/bin/sh\n", s->user,
		 s->uid, s->gid, s->home[0] ? s->home : "/");
	r = db_add(PASSWD_FILE, s->user, s->uid, line);
	if (r < 0)
		return agent_fail(msg, size, -r,
				  "adding user '%s' to " PASSWD_FILE, s->user);
	snprintf(line, sizeof(line), "%s:x:%u:\n", s->group, s->gid);
	r = db_add(GROUP_FILE, s->group, s->gid, line);
	if (r < 0)
		return agent_fail(msg, size, -r,
				  "adding group '%s' to " GROUP_FILE, s->group);
	return 0;
}

/* --- mounts ------------------------------------------------------------- */

/* mkdir -p: new directories are root's, 0755 whatever the umask; existing
 * ones are left as they are. */
static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	struct stat st;
	char *p;

	if (strlen(path) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, path);
	for (p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		if (p[-1] != '/') {
			char c = *p;

			*p = '\0';
			if (mkdir(buf, 0755) == 0) {
				if (chmod(buf, 0755) < 0)
					return -errno;
			} else if (errno != EEXIST) {
				return -errno;
			} else if (stat(buf, &st) < 0) {
				return -errno;
			} else if (!S_ISDIR(st.st_mode)) {
				return -ENOTDIR;
			}
			*p = c;
		}
		if (!*p)
			return 0;
	}
}

/* The checkpoint releases and re-establishes these (ckpt.c). Not the
 * served ones: their state is in guest memory and in vmenv-9p's dump, and
 * they stay mounted (and busy) across a checkpoint. */
static void remember_mounts(struct agent *a, const struct aw_setup *s)
{
	for (uint32_t i = 0; i < s->nmounts; i++) {
		if (s->mounts[i].transport == AW_MOUNT_SERVED)
			continue;
		a->mount_tag[a->nmounts] = strdup(s->mounts[i].tag);
		a->mount_path[a->nmounts] = strdup(s->mounts[i].path);
		if (!a->mount_tag[a->nmounts] || !a->mount_path[a->nmounts]) {
			free(a->mount_tag[a->nmounts]);
			free(a->mount_path[a->nmounts]);
			continue;
		}
		a->nmounts++;
	}
}

static int mount_all(const struct aw_setup *s, char *msg, size_t size)
{
	const struct aw_mount *m;
	uint32_t i;
	int r;

	for (i = 0; i < s->nmounts; i++) {
		m = &s->mounts[i];
		r = mkdir_p(m->path);
		if (r < 0) {
			r = agent_fail(msg, size, -r, "mkdir '%s'", m->path);
			break;
		}
		if (m->transport == AW_MOUNT_SERVED) {
			pid_t pid = relay_start(m->tag, m->path, msg, size);

			if (pid < 0) {
				r = (int)pid;
				break;
			}
			agent_log("share '%s': relay %d for port '%s'", m->path,
				  (int)pid, m->tag);
		} else if ((r = agent_mount_9p(m->tag, m->path)) < 0) {
			r = agent_fail(msg, size, -r, "mount 9p '%s' on '%s'",
				       m->tag, m->path);
			break;
		}
	}
	if (i == s->nmounts)
		return 0;
	/* Undo this attempt's mounts so a retried SETUP does not stack. */
	while (i-- > 0)
		umount2(s->mounts[i].path, MNT_DETACH);
	return r;
}

/* --- the job's network (SETUP v2) ------------------------------------- */

static int rsh_config_make(const struct aw_setup *s, struct rsh_config *c)
{
	unsigned prefix;
	int r;

	*c = (struct rsh_config){.port = AW_RSH_PORT,
				 .uid = s->uid,
				 .gid = s->gid,
				 .ngroups = s->ngroups,
				 .job = {s->node_index, s->npeers}};
	r = aw_cidr_parse(s->net_addr, &c->addr_be, &prefix);
	if (r < 0)
		return r;
	memcpy(c->groups, s->groups, sizeof(c->groups));
	snprintf(c->token, sizeof(c->token), "%s", s->job_token);
	snprintf(c->user, sizeof(c->user), "%s", s->user);
	if (strlen(s->home) >= sizeof(c->home))
		return -ENAMETOOLONG;
	snprintf(c->home, sizeof(c->home), "%s", s->home);
	return 0;
}

/* NIC, hosts, node file, token, rsh service: each step can be redone, so
 * a SETUP retried after a later failure converges. */
static int setup_net(struct agent *a, const struct aw_setup *s, char *msg,
		     size_t size)
{
	struct rsh_config cfg;
	char nic[IF_NAMESIZE] = "";
	int r;

	if (s->net_addr[0]) {
		r = net_setup(s->net_addr, nic, sizeof(nic), msg, size);
		if (r < 0)
			return r;
		agent_log("network: %s is %s", nic, s->net_addr);
	}
	r = jobfiles_write(s, msg, size);
	if (r < 0 || !s->job_token[0])
		return r;
	r = rsh_config_make(s, &cfg);
	if (r < 0)
		return agent_fail(msg, size, -r, "rsh: home '%s'", s->home);
	return rsh_start(&a->rsh, &cfg, msg, size);
}

/* --- SETUP -------------------------------------------------------------- */

static int setup_apply(struct agent *a, const struct aw_setup *s, char *msg,
		       size_t size)
{
	struct timespec ts = {.tv_sec = (time_t)s->time_sec};
	int r;

	r = setup_check(s, msg, size);
	if (r < 0)
		return r;
	if (s->hostname[0] && sethostname(s->hostname, strlen(s->hostname)))
		return agent_fail(msg, size, errno, "sethostname '%s'",
				  s->hostname);
	/* The guest has no RTC worth trusting: take the host's time. */
	if (s->time_sec > 0 && clock_settime(CLOCK_REALTIME, &ts) < 0)
		return agent_fail(msg, size, errno, "clock_settime");
	r = add_user_group(s, msg, size);
	if (r < 0)
		return r;
	/* Before the network: a plugged NIC may need its driver. */
	coldplug();
	r = setup_net(a, s, msg, size);
	if (r < 0)
		return r;
	return mount_all(s, msg, size);
}

int setup_handle(struct agent *a, const struct aw_hdr *h, const uint8_t *p)
{
	struct aw_setup s;
	char msg[1024];
	int r;

	r = aw_setup_decode(p, h->len, a->version, &s);
	if (r == -EPROTO)
		return agent_proto_error(a, "malformed SETUP");
	if (r < 0) {
		agent_send_fail(a, AW_SETUP_FAIL, 0, -r,
				"out of memory decoding SETUP");
		return 0;
	}
	if (!a->setup_done) {
		r = setup_apply(a, &s, msg, sizeof(msg));
		if (r < 0) {
			agent_log("setup failed: %s", msg);
			agent_send_fail(a, AW_SETUP_FAIL, 0, -r, msg);
		} else {
			agent_log("setup done: host '%s', user '%s' (%u:%u), "
				  "%u mount(s), node %u of %u",
				  s.hostname, s.user, s.uid, s.gid, s.nmounts,
				  s.node_index, s.npeers);
			a->job = (struct agent_job){s.node_index, s.npeers};
			a->setup_done = true;
			remember_mounts(a, &s);
			ckpt_cgroup_init();
		}
	}
	if (a->setup_done)
		agent_send(a, AW_SETUP_OK, 0, NULL, 0);
	aw_setup_clear(&s);
	return 0;
}
