// SPDX-License-Identifier: MIT
/*
 * The job's host directories in its guest (jobmounts.h).
 */
#include "jobmounts.h"

#include "jobfiles_served.h"
#include "jobrec.h"
#include "userfd.h"
#include "util.h"
#include "vmmd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(AW_MAX_MOUNTS >= VMSPEC_MAX_MOUNTS + 1,
	       "SETUP carries the working directory and every mount");

static int open_dir_fn(void *arg)
{
	const char *const *path = arg;
	int fd = open(*path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);

	return fd < 0 ? -errno : fd;
}

static const char *open_reason(int r)
{
	switch (r) {
	case -ENOENT:
		return "no such directory";
	case -ENOTDIR:
		return "not a directory";
	case -EACCES:
	case -EPERM:
		return "the job's user may not read it";
	default:
		return strerror(-r);
	}
}

/* Where the open directory really is: the source must be that path, so
 * that what the policy checked is what QEMU shares. */
static int canonical(int fd, char *buf, size_t len)
{
	char self[64];
	ssize_t n;

	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	n = readlink(self, buf, len - 1);
	if (n < 0)
		return -errno;
	if ((size_t)n >= len - 1)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	return 0;
}

static bool covers(const char *dst, const char *path)
{
	size_t n = strlen(dst);

	return strncmp(path, dst, n) == 0 &&
	       (path[n] == '\0' || path[n] == '/');
}

static int check_one(const struct job *j, const struct vmspec_mount *m,
		     char *err, size_t errlen)
{
	const struct userfd_ids ids = {.uid = j->uid,
				       .gid = j->gid,
				       .ngroups = j->ngroups,
				       .groups = j->groups};
	const char *src = m->src;
	char real[VMSPEC_MAX_MOUNT_PATH + 2];
	int fd, r;

	if (covers(m->dst, j->work_dir))
		return err_set(err, errlen, -EINVAL,
			       "job %u: mount '%s:%s': %s would cover the "
			       "job's working directory %s",
			       j->id, m->src, m->dst, m->dst, j->work_dir);
	fd = userfd_as_user(&ids, open_dir_fn, &src);
	if (fd < 0)
		return err_set(err, errlen, fd, "job %u: mount '%s:%s': %s",
			       j->id, m->src, m->dst, open_reason(fd));
	r = canonical(fd, real, sizeof(real));
	close(fd);
	if (r < 0)
		return err_set(err, errlen, r, "job %u: mount '%s:%s': %s",
			       j->id, m->src, m->dst, strerror(-r));
	if (strcmp(real, m->src) != 0)
		return err_set(err, errlen, -ELOOP,
			       "job %u: mount '%s:%s': the source leads to %s "
			       "through a symbolic link; name the directory "
			       "itself (the site's policy is checked on that "
			       "name)",
			       j->id, m->src, m->dst, real);
	return 0;
}

int jobmounts_check(const struct job *j, char *err, size_t errlen)
{
	const struct vmspec_mounts *ms = &j->spec.v.mounts;
	int r;

	for (uint32_t i = 0; i < ms->n; i++)
		if ((r = check_one(j, &ms->m[i], err, errlen)) < 0)
			return r;
	return 0;
}

/* Served like the working directory: vmmd/files/jobfiles.h. */
static bool served(const struct job *j)
{
	return j->files_kind == JOBFILES_SERVED;
}

static void make_tags(const struct job *j, char (*tags)[JOBMOUNTS_TAG_LEN])
{
	for (uint32_t i = 0; i < j->spec.v.mounts.n; i++)
		snprintf(tags[i], JOBMOUNTS_TAG_LEN,
			 served(j) ? JOBFILES_MOUNT_PORT_FMT : "vmenv.m%u", i);
}

void jobmounts_domspec(const struct job *j, struct dom_mount *m,
		       char (*tags)[JOBMOUNTS_TAG_LEN], struct dom_spec *s)
{
	const struct vmspec_mounts *ms = &j->spec.v.mounts;

	make_tags(j, tags);
	if (served(j)) {
		s->mounts = NULL;
		s->nmounts = 0;
		return;
	}
	for (uint32_t i = 0; i < ms->n; i++)
		m[i] = (struct dom_mount){
		    .dir = ms->m[i].src, .tag = tags[i], .ro = ms->m[i].ro};
	s->mounts = m;
	s->nmounts = ms->n;
}

void jobmounts_setup(struct job *j, char (*tags)[JOBMOUNTS_TAG_LEN],
		     struct aw_setup *s)
{
	struct vmspec_mounts *ms = &j->spec.v.mounts;

	make_tags(j, tags);
	for (uint32_t i = 0; i < ms->n && s->nmounts < AW_MAX_MOUNTS; i++)
		s->mounts[s->nmounts++] = (struct aw_mount){
		    .tag = tags[i],
		    .path = ms->m[i].dst,
		    .transport =
			served(j) ? AW_MOUNT_SERVED : AW_MOUNT_VIRTIO_9P};
}
