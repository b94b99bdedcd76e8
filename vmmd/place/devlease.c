/* SPDX-License-Identifier: MIT */
#include "devlease.h"

#include "cleanup.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LEASES 4096

static const char *const kind_names[] = {
    [DEVLEASE_VF] = "vf", [DEVLEASE_GPU] = "gpu"};

static int lease_path(const char *dir, const struct pci_addr *a, char *buf,
		      size_t len)
{
	char s[PCI_ADDR_LEN];

	pci_addr_format(a, s);
	return str_printf(buf, len, "%s/%s", dir, s);
}

static int encode(const struct devlease *l, char *buf, size_t len)
{
	char pf[PCI_ADDR_LEN];
	int n;

	pci_addr_format(&l->pf, pf);
	n = snprintf(buf, len, "job=%u\nkind=%s\n", l->job_id,
		     kind_names[l->kind]);
	if (l->kind == DEVLEASE_VF)
		n += snprintf(buf + n, len - (size_t)n, "pf=%s\nvf=%u\n", pf,
			      l->vf_index);
	if (l->has_guids)
		n += snprintf(buf + n, len - (size_t)n,
			      "node_guid=%016" PRIx64 "\nport_guid=%016" PRIx64
			      "\n",
			      l->node_guid, l->port_guid);
	return n;
}

static int sync_dir(const char *dir)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0)
		return -errno;
	return 0;
}

/* A synced temp file with the lease, in dir. */
static int write_temp(const char *dir, const struct devlease *l, char *tmp,
		      size_t tmplen)
{
	char text[512];
	int n = encode(l, text, sizeof(text)), r;
	_cleanup_close_ int fd = -1;

	if ((r = str_printf(tmp, tmplen, "%s/.lease-XXXXXX", dir)) < 0)
		return r;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if ((r = write_full(fd, text, (size_t)n)) < 0 || fsync(fd) < 0) {
		r = r < 0 ? r : -errno;
		unlink(tmp);
		return r;
	}
	return 0;
}

int devlease_take(const char *dir, const struct devlease *l,
		  struct devlease *holder)
{
	char tmp[VMENV_MAX_PATH], path[VMENV_MAX_PATH];
	int r;

	if ((r = mkdir_p(dir, 0700)) < 0 ||
	    (r = lease_path(dir, &l->addr, path, sizeof(path))) < 0 ||
	    (r = write_temp(dir, l, tmp, sizeof(tmp))) < 0)
		return r;
	r = link(tmp, path) < 0 ? -errno : 0;
	unlink(tmp);
	if (r == -EEXIST) {
		if (holder && devlease_read(dir, &l->addr, holder) < 0)
			memset(holder, 0, sizeof(*holder));
		return -EBUSY;
	}
	return r < 0 ? r : sync_dir(dir);
}

int devlease_update(const char *dir, const struct devlease *l)
{
	char text[512], path[VMENV_MAX_PATH];
	int n = encode(l, text, sizeof(text)), r;

	if ((r = lease_path(dir, &l->addr, path, sizeof(path))) < 0)
		return r;
	return write_file_atomic(path, text, (size_t)n, 0600);
}

static int decode_field(struct devlease *l, const char *key, const char *val)
{
	uint64_t g;
	char *end;

	if (strcmp(key, "job") == 0)
		return parse_u32(val, &l->job_id);
	if (strcmp(key, "kind") == 0) {
		for (size_t i = 1; i < ARRAY_SIZE(kind_names); i++)
			if (strcmp(val, kind_names[i]) == 0) {
				l->kind = (enum devlease_kind)i;
				return 0;
			}
		return -EINVAL;
	}
	if (strcmp(key, "pf") == 0)
		return pci_addr_parse(val, &l->pf);
	if (strcmp(key, "vf") == 0)
		return parse_u32(val, &l->vf_index);
	if (strcmp(key, "node_guid") != 0 && strcmp(key, "port_guid") != 0)
		return -EINVAL;
	errno = 0;
	g = strtoull(val, &end, 16);
	if (errno || *end || !*val)
		return -EINVAL;
	*(key[0] == 'n' ? &l->node_guid : &l->port_guid) = g;
	l->has_guids = true;
	return 0;
}

int devlease_read(const char *dir, const struct pci_addr *addr,
		  struct devlease *ret)
{
	char path[VMENV_MAX_PATH];
	_cleanup_free_ char *text = NULL;
	struct devlease l = {.addr = *addr};
	char *save = NULL;
	int r;

	if ((r = lease_path(dir, addr, path, sizeof(path))) < 0 ||
	    (r = read_file_limited(path, 4096, &text, NULL)) < 0)
		return r;
	for (char *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');
		if (!eq)
			return -EBADMSG;
		*eq = '\0';
		if (decode_field(&l, line, eq + 1) < 0)
			return -EBADMSG;
	}
	if (!l.job_id || !l.kind)
		return -EBADMSG;
	*ret = l;
	return 0;
}

int devlease_drop(const char *dir, const struct pci_addr *addr, uint32_t job_id)
{
	char path[VMENV_MAX_PATH];
	struct devlease l;
	int r = devlease_read(dir, addr, &l);

	if (r == -EBADMSG)
		l.job_id = 0; /* damaged: whoever cleans up may drop it */
	else if (r < 0)
		return r;
	if (l.job_id != job_id)
		return -EPERM;
	if ((r = lease_path(dir, addr, path, sizeof(path))) < 0)
		return r;
	if (unlink(path) < 0)
		return -errno;
	return sync_dir(dir);
}

int devlease_list(const char *dir, struct devlease **ret, size_t *ret_n)
{
	_cleanup_free_ struct devlease *v = NULL;
	struct dirent *e;
	size_t n = 0;
	DIR *d = opendir(dir);

	*ret = NULL;
	*ret_n = 0;
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	v = calloc(MAX_LEASES, sizeof(*v));
	if (!v) {
		closedir(d);
		return -ENOMEM;
	}
	while ((e = readdir(d)) && n < MAX_LEASES) {
		struct pci_addr a;

		if (pci_addr_parse(e->d_name, &a) < 0)
			continue;
		if (devlease_read(dir, &a, &v[n]) < 0) {
			memset(&v[n], 0, sizeof(v[n]));
			v[n].addr = a;
		}
		n++;
	}
	closedir(d);
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}
