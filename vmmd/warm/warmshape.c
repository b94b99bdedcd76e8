// SPDX-License-Identifier: MIT
/*
 * The guest of a shape, without a job (warmshape.h).
 */
#include "warmshape.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bulk.h"
#include "catalog.h"
#include "catalogfile.h"
#include "cleanup.h"
#include "devices.h"
#include "hostinfo.h"
#include "image.h"
#include "imgcache.h"
#include "jobfiles.h"
#include "jobfiles_served.h"
#include "jobrec.h"
#include "placement.h"
#include "vmmd.h"

/* Stand-ins for the paths a job's spec has: only whether each is there
 * reaches the key (warm_normalize replaces them). */
#define STANDIN "/nonexistent"

static int find_image(struct vmmd *d, const struct warm_shape *sh,
		      struct warm_shape_spec *o,
		      const struct catalog_image **ret, char *err,
		      size_t errlen)
{
	const struct catalog_image *img;
	char why[512] = "", names[512];

	if (catalogfile_refresh(d, why, sizeof(why)) < 0)
		return err_set(err, errlen, -EIO, "the catalog: %s", why);
	if (catalog_resolve(&d->catalog, sh->image, &img, why, sizeof(why)) <
	    0) {
		catalog_names(&d->catalog, names, sizeof(names));
		return err_set(err, errlen, -ENOENT, "%s (known images: %s)",
			       why, names);
	}
	catalog_image_ref(img, o->ref, sizeof(o->ref));
	/* As a job's (jobimg_boot_digest): a template is keyed on verified
	 * boot files. */
	if (catalog_boot_digest(img, o->src.boot, sizeof(o->src.boot)) < 0)
		return err_set(err, errlen, -EINVAL,
			       "image %s has no kernel and initrd with "
			       "digests: it cannot be warm-started",
			       o->ref);
	*ret = img;
	return 0;
}

/* The cache's copy of one boot file: the template boots from it. */
static int cached(struct vmmd *d, const struct warm_shape_spec *o,
		  const char *hex, const char *what, char *buf, size_t len,
		  char *err, size_t errlen)
{
	struct stat st;

	if (imgcache_blob_path(images_cache(d), hex, buf, len) < 0 ||
	    lstat(buf, &st) < 0 || !S_ISREG(st.st_mode))
		return err_set(err, errlen, -ENOENT,
			       "the %s of image %s is not in node %s's cache "
			       "(vmenvctl image pull %s)",
			       what, o->ref, d->cfg.node_name, o->ref);
	return 0;
}

/* The cache's base of an image with a disk, as a job's overlay has it. */
static int disk(struct vmmd *d, const struct catalog_image *img,
		struct warm_shape_spec *o, char *err, size_t errlen)
{
	if (!catalog_file_present(&img->disk))
		return 0;
	snprintf(o->src.base_fmt, sizeof(o->src.base_fmt), "%s",
		 catalog_format_name(img->disk_format));
	return cached(d, o, img->disk.sha256, "disk", o->src.base,
		      sizeof(o->src.base), err, errlen);
}

/* The first n CPUs that are not housekeeping CPUs. */
static int pick_cpus(struct vmmd *d, const struct host_topo *t, uint32_t n,
		     struct cpuset *ret, char *err, size_t errlen)
{
	struct cpuset hk;
	uint32_t k = 0;

	cpuset_zero(ret);
	if (devices_housekeeping(&d->cfg, &hk) < 0)
		cpuset_zero(&hk);
	for (int c = cpuset_next(&t->online, -1); c >= 0 && k < n;
	     c = cpuset_next(&t->online, c))
		if (!cpuset_has(&hk, (uint32_t)c)) {
			cpuset_set(ret, (uint32_t)c);
			k++;
		}
	if (k < n)
		return err_set(err, errlen, -E2BIG,
			       "%u vCPUs: node %s has %u CPUs for jobs", n,
			       d->cfg.node_name, k);
	return 0;
}

static int place(struct vmmd *d, struct warm_shape_spec *o, uint32_t vcpus,
		 uint32_t mem_mib, char *err, size_t errlen)
{
	_cleanup_free_ struct host_topo *t = malloc(sizeof(*t));
	_cleanup_free_ struct place_req *q = calloc(1, sizeof(*q));
	char note[512], why[512];
	int r;

	if (!t || !q)
		return -ENOMEM;
	if ((r = hostinfo_read(d->cfg.sysfs_root, t, why, sizeof(why))) < 0)
		return err_set(err, errlen, r, "node %s: %s", d->cfg.node_name,
			       why);
	if ((r = pick_cpus(d, t, vcpus, &q->cpus, err, errlen)) < 0)
		return r;
	q->node = d->cfg.node_name;
	q->mem_mib = mem_mib;
	if ((r = placement_build(t, q, &o->place, note, sizeof(note), why,
				 sizeof(why))) < 0)
		return err_set(err, errlen, r, "%u vCPUs, %u MiB: %s", vcpus,
			       mem_mib, why);
	return 0;
}

/* The job's files, as the kinds' domspec give them: a served job's on a
 * port, any other's a virtio-9p share (the spec's checkpoint_files is
 * the node's). */
static void files(const struct vmmd *d, bool checkpoint,
		  struct warm_shape_spec *o)
{
	struct dom_spec *s = &o->s;

	if (jobfiles_kind_pick(&d->cfg, checkpoint, VMSPEC_CF_NODE) ==
	    JOBFILES_SERVED) {
		s->files_sock = STANDIN;
		s->files_port = JOBFILES_PORT_NAME;
		o->files = "served";
		return;
	}
	s->share_dir = STANDIN;
	s->share_tag = JOB_SHARE_TAG;
	o->files = "virtio-9p";
}

/* A job's memory is bounded by Slurm's allocation; a shape's by the
 * node's RAM (QEMU would fail to allocate it anyway, after a boot's
 * setup). */
static uint64_t host_mib(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);

	return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size >> 20
				     : UINT64_MAX;
}

int warm_shape_spec(struct vmmd *d, const struct warm_shape *sh,
		    struct warm_shape_spec *o, char *err, size_t errlen)
{
	const struct catalog_image *img;
	uint32_t vcpus = sh->vcpus ? sh->vcpus : 1;
	uint32_t mem = sh->mem_mib ? sh->mem_mib : d->cfg.default_mem_mib;
	int r;

	memset(o, 0, sizeof(*o));
	if (mem > host_mib())
		return err_set(err, errlen, -E2BIG,
			       "%u MiB exceed node %s's memory (%llu MiB)", mem,
			       d->cfg.node_name,
			       (unsigned long long)host_mib());
	if (vcpus > d->cfg.max_vcpus)
		return err_set(err, errlen, -E2BIG,
			       "%u vCPUs exceed node %s's max_vcpus %u", vcpus,
			       d->cfg.node_name, d->cfg.max_vcpus);
	if ((r = find_image(d, sh, o, &img, err, errlen)) < 0)
		return r;
	if (img->min_mem_mib && mem < img->min_mem_mib)
		return err_set(err, errlen, -EINVAL,
			       "image %s needs %u MiB, the shape has %u",
			       o->ref, img->min_mem_mib, mem);
	if ((r = cached(d, o, img->kernel.sha256, "kernel", o->src.kernel,
			sizeof(o->src.kernel), err, errlen)) < 0 ||
	    (r = cached(d, o, img->initrd.sha256, "initrd", o->src.initrd,
			sizeof(o->src.initrd), err, errlen)) < 0 ||
	    (r = disk(d, img, o, err, errlen)) < 0 ||
	    (r = place(d, o, vcpus, mem, err, errlen)) < 0)
		return r;
	snprintf(o->cmdline, sizeof(o->cmdline), "%s", img->cmdline);
	o->s = (struct dom_spec){
	    .name = STANDIN,
	    .type = d->domain_type,
	    .node = d->cfg.node_name,
	    .vcpus = o->place.nvcpus,
	    .mem_mib = placement_mem_mib(&o->place),
	    .kernel = o->src.kernel,
	    .initrd = o->src.initrd,
	    .cmdline = o->cmdline,
	    .console_log = STANDIN,
	    .agent_sock = STANDIN,
	    .place = &o->place,
	};
	/* A job's overlay is over the cache's base (jobimage.c). */
	if (o->src.base[0]) {
		o->s.disk_overlay = STANDIN;
		o->s.disk_base = o->src.base;
		o->s.disk_base_format = o->src.base_fmt;
	}
	files(d, sh->checkpoint, o);
	if ((o->s.bulk_ports = bulk_ports_of(&d->cfg, sh->checkpoint)))
		o->s.bulk_sock_prefix = STANDIN;
	return 0;
}
