/* SPDX-License-Identifier: MIT */
#include "job.h"

#include "agent.h"
#include "bulk.h"
#include "catalogfile.h"
#include "ckpt.h"
#include "cleanup.h"
#include "domxml.h"
#include "exec.h"
#include "jobend.h"
#include "jobfiles.h"
#include "jobfiles_served.h"
#include "jobimage.h"
#include "jobmounts.h"
#include "jobnet_host.h"
#include "jobplace.h"
#include "log.h"
#include "rmtree.h"
#include "spec.h"
#include "warm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

static int job_paths(struct job *j)
{
	const struct vmmd_config *c = &j->d->cfg;

	if (str_printf(j->dir, sizeof(j->dir), "%s/jobs/%u", c->run_dir,
		       j->id) < 0 ||
	    str_printf(j->domain, sizeof(j->domain), "%s%u",
		       j->d->domain_prefix, j->id) < 0 ||
	    str_printf(j->console, sizeof(j->console), "%s/job-%u.log",
		       c->console_dir, j->id) < 0 ||
	    str_printf(j->agent_sock, sizeof(j->agent_sock), "%s/q/agent.sock",
		       j->dir) < 0 ||
	    str_printf(j->bulk_prefix, sizeof(j->bulk_prefix), "%s/q/bulk.",
		       j->dir) < 0)
		return -ENAMETOOLONG;
	return 0;
}

/* --- what the agent channel reports (agent.h) ---------------------------- */

/* The job's network (vmmd/net/jobnet.h) into SETUP v2's fields; the peers
 * array (owned by the caller) points into j->net. */
static int setup_net(struct job *j, struct aw_setup *s,
		     struct aw_peer **ret_peers)
{
	struct aw_peer *p;

	if (!j->has_net)
		return 0;
	p = calloc(j->net.nnodes ? j->net.nnodes : 1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	for (uint32_t i = 0; i < j->net.nnodes; i++) {
		p[i].name = j->net.peer_names[i];
		p[i].addr = j->net.peer_addrs[i];
	}
	s->node_index = j->net.node_index;
	s->net_addr = j->net.addr;
	s->job_token = j->net.token;
	s->npeers = j->net.nnodes;
	s->peers = p;
	*ret_peers = p;
	return 0;
}

/* What the guest is set up with: the job's user, its files, mounts and
 * network. */
static int agent_build_setup(struct job *j, uint32_t version,
			     struct aw_buf *out)
{
	char tag[] = JOB_SHARE_TAG;
	struct aw_setup s = {
	    .hostname = j->d->cfg.node_name,
	    .user = j->user,
	    .uid = (uint32_t)j->uid,
	    .gid = (uint32_t)j->gid,
	    .group = j->group,
	    .home = j->home,
	    .time_sec = (int64_t)time(NULL),
	    .nmounts = 1,
	    .mounts = {{.tag = tag, .path = j->work_dir}},
	    .ngroups = j->ngroups,
	};
	_cleanup_free_ struct aw_peer *peers = NULL;
	char port[] = JOBFILES_PORT_NAME;
	char mount_tags[VMSPEC_MAX_MOUNTS][JOBMOUNTS_TAG_LEN];
	int r;

	/* The job's files served by vmenv-9p: the agent relays a port. */
	if (j->served)
		s.mounts[0] = (struct aw_mount){.tag = port,
						.path = j->work_dir,
						.transport = AW_MOUNT_SERVED};
	jobmounts_setup(j, mount_tags, &s);
	for (uint32_t i = 0; i < j->ngroups && i < AW_MAX_GROUPS; i++)
		s.groups[i] = (uint32_t)j->groups[i];
	r = setup_net(j, &s, &peers);
	if (r == 0)
		r = aw_setup_encode(&s, version, out);
	return r;
}

/* The agent is up: its bulk ports are attached, and the guest is either
 * held for a checkpoint, already set up, or gets its SETUP (true). */
static bool agent_hello(struct job *j, uint32_t flags)
{
	if (j->agent_bulk)
		bulk_attach(j, ckpt_job_restoring(j));
	/* A guest from a template: resumed, then set up (warm.h). */
	if (warm_job_hello(j, flags))
		return false;
	/* A restored guest (or one whose save failed) waits, frozen. */
	if ((flags & AW_HELLO_CKPT_HELD) || ckpt_busy(j)) {
		ckpt_on_agent_held(j);
		return false;
	}
	if (flags & AW_HELLO_SETUP_DONE) {
		job_set_ready(j);
		return false;
	}
	return true;
}

static void agent_failed(struct job *j, enum metrics_fail reason,
			 const char *msg)
{
	/* job_fail() detaches (and frees) the agent. */
	job_fail_for(j, reason, "%s", msg);
}

/* A warm start's resume answer is warm.c's; the others are the
 * checkpoint's. */
static int agent_ckpt_frame(struct job *j, uint8_t type, const uint8_t *p,
			    size_t n)
{
	int r = warm_job_ckpt_frame(j, type, p, n);

	return r == 0 ? ckpt_on_agent_frame(j, type, p, n) : (r < 0 ? r : 0);
}

static const struct agent_handlers job_agent = {
    .build_setup = agent_build_setup,
    .on_hello = agent_hello,
    .on_setup_ok = job_set_ready,
    .on_session_frame = exec_on_frame,
    .on_ckpt_frame = agent_ckpt_frame,
    .on_fail = agent_failed,
};

/* --- a job's life -------------------------------------------------------- */

static struct job *job_new(struct vmmd *d, uint32_t id, uid_t uid, gid_t gid)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->d = d;
	j->id = id;
	j->uid = uid;
	j->gid = gid;
	j->next_session = 1;
	j->agent_h = &job_agent;
	if (job_paths(j) < 0) {
		free(j);
		return NULL;
	}
	j->next = d->jobs;
	d->jobs = j;
	return j;
}

static void job_free(struct job *j)
{
	loop_cancel_timer(j->stop_timer);
	if (j->has_net)
		jobnet_clear(&j->net);
	free(j);
}

static void job_unlink(struct job *j)
{
	for (struct job **p = &j->d->jobs; *p; p = &(*p)->next) {
		if (*p == j) {
			*p = j->next;
			return;
		}
	}
}

/* The job user's identity as the host knows it, so the guest can show the
 * same name, groups and home. */
static int resolve_user(struct job *j, char *err, size_t errlen)
{
	struct passwd pw, *pwp = NULL;
	struct group gr, *grp = NULL;
	char buf[16384];
	int n = (int)ARRAY_SIZE(j->groups);

	if (getpwuid_r(j->uid, &pw, buf, sizeof(buf), &pwp) != 0 || !pwp)
		return err_set(err, errlen, -ENOENT,
			       "job %u: uid %u is unknown on node %s", j->id,
			       (unsigned)j->uid, j->d->cfg.node_name);
	snprintf(j->user, sizeof(j->user), "%s", pw.pw_name);
	snprintf(j->home, sizeof(j->home), "%s",
		 valid_abs_path(pw.pw_dir) ? pw.pw_dir : "/");
	if (getgrgid_r(j->gid, &gr, buf, sizeof(buf), &grp) == 0 && grp)
		snprintf(j->group, sizeof(j->group), "%s", gr.gr_name);
	else
		snprintf(j->group, sizeof(j->group), "g%u", (unsigned)j->gid);
	if (getgrouplist(j->user, j->gid, j->groups, &n) < 0)
		n = (int)ARRAY_SIZE(j->groups);
	j->ngroups = (uint32_t)n;
	return 0;
}

/* The guest's RAM and the job's memory on the node (*alloc_mib, the hard
 * limit on everything QEMU uses). */
static int size_guest(struct job *j, const struct slurmjob_info *si,
		      const struct catalog_image *img, uint32_t *alloc_mib,
		      char *err, size_t errlen)
{
	const struct vmmd_config *c = &j->d->cfg;
	uint64_t alloc, mem;

	j->vcpus = si->cpus ? si->cpus : 1;
	if (j->vcpus > c->max_vcpus)
		j->vcpus = c->max_vcpus;
	/* QEMU itself needs memory beyond the guest's RAM; it comes out of
	 * the job's allocation, never on top of it (headroom: the spec). The
	 * allocation is the hard limit on all QEMU uses. */
	alloc = si->mem_mib
		    ? si->mem_mib
		    : (uint64_t)c->default_mem_mib + j->spec.v.mem_headroom_mib;
	if (alloc > UINT32_MAX)
		alloc = UINT32_MAX;
	mem = si->mem_mib ? vmspec_guest_mem_mib(&j->spec.v, alloc)
			  : c->default_mem_mib;
	j->mem_mib = (uint32_t)mem;
	*alloc_mib = (uint32_t)alloc;
	if (!j->mem_mib)
		return err_set(
		    err, errlen, -ENOMEM,
		    "job %u: a memory headroom of %u%% / %u MiB leaves "
		    "nothing of the job's %llu MiB for the guest on "
		    "node %s",
		    j->id, j->spec.v.mem_headroom_pct,
		    j->spec.v.mem_headroom_mib, (unsigned long long)si->mem_mib,
		    c->node_name);
	if (img && img->min_mem_mib && j->mem_mib < img->min_mem_mib)
		return err_set(
		    err, errlen, -ENOMEM,
		    "job %u: image '%s' needs %u MiB but the job has "
		    "%u MiB for the guest on node %s (ask for more "
		    "with --mem)",
		    j->id, j->image, img->min_mem_mib, j->mem_mib,
		    c->node_name);
	return 0;
}

static int check_slurm(struct job *j, struct slurmjob_info *si, char *err,
		       size_t errlen)
{
	char why[256] = "";
	int r = j->d->slurm_lookup(j->id, j->d->cfg.node_name, si, why,
				   sizeof(why));

	if (r == -ENOENT)
		return err_set(err, errlen, r, "job %u: Slurm does not know it",
			       j->id);
	if (r < 0)
		return err_set(err, errlen, r, "job %u: %s", j->id, why);
	if (si->uid != j->uid)
		return err_set(err, errlen, -EPERM,
			       "job %u: belongs to uid %u, not %u", j->id,
			       si->uid, (unsigned)j->uid);
	if (!si->active || !si->on_node)
		return err_set(err, errlen, -ESRCH,
			       "job %u: not running on node %s", j->id,
			       j->d->cfg.node_name);
	if (!valid_abs_path(si->work_dir))
		return err_set(err, errlen, -EINVAL,
			       "job %u: working directory is not a clean "
			       "absolute path",
			       j->id);
	snprintf(j->work_dir, sizeof(j->work_dir), "%s", si->work_dir);
	return 0;
}

/* Everything below the job directory is root's (see job.h):
 * libvirtd creates QEMU's sockets in q/ and hands QEMU their fds, so q/ can
 * be root's 0700 and nothing there can be swapped for a link before
 * libvirt chowns it or vmmd connects to it. */
static int prepare_dir(struct job *j, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		mode_t mode;
	} subs[] = {{"boot", 0755}, {"disk", 0755}, {"q", 0700}};
	char p[VMENV_MAX_PATH + 32];
	int r;

	rm_rf(j->dir);
	if ((r = mkdir_p(j->dir, 0755)) < 0)
		return err_set(err, errlen, r, "job %u: cannot create %s: %s",
			       j->id, j->dir, strerror(-r));
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
		snprintf(p, sizeof(p), "%s/%s", j->dir, subs[i].name);
		if (mkdir(p, subs[i].mode) < 0)
			return err_set(err, errlen, -errno, "job %u: %s: %m",
				       j->id, p);
	}
	if ((r = mkdir_p(j->d->cfg.console_dir, 0755)) < 0)
		return err_set(err, errlen, r, "job %u: %s: %s", j->id,
			       j->d->cfg.console_dir, strerror(-r));
	/* A new run of the job id: the old run's log and its time go. */
	console_keep_forget(j->d, j->id);
	unlink(j->console);
	return 0;
}

static int write_state(struct job *j)
{
	char buf[4 * VMENV_MAX_PATH];
	char path[VMENV_MAX_PATH + 16];
	const char *base = jobimg_base(j);
	int n = snprintf(
	    buf, sizeof(buf),
	    "job=%u\nuid=%u\ngid=%u\nimage=%s\nvcpus=%u\n"
	    "mem_mib=%u\nwork_dir=%s\nfiles=%s\ndomain=%s\nnnodes=%u\n"
	    "node_index=%u\nrestart=%u\n%s%s%s",
	    j->id, (unsigned)j->uid, (unsigned)j->gid, j->image, j->vcpus,
	    j->mem_mib, j->work_dir, jobfiles_kind_name(j->files_kind),
	    j->domain, j->slurm.nnodes, j->slurm.node_index,
	    j->slurm.restart_count, base ? "base=" : "", base ? base : "",
	    base ? "\n" : "");

	if (n < 0 || (size_t)n >= sizeof(buf))
		return -ENAMETOOLONG;
	snprintf(path, sizeof(path), "%s/state", j->dir);
	return write_file_atomic(path, buf, (size_t)n, 0600);
}

/* libvirt's create, with the memory limit in the XML or set on the paused
 * domain (mem_limit = live, where libvirtd cannot raise RLIMIT_MEMLOCK). */
static int hv_create(struct job *j, struct dom_spec *s,
		     struct dom_placement *place, char *why, size_t whylen)
{
	_cleanup_free_ char *xml = NULL;
	uint32_t limit = place->hard_limit_mib;
	int r;

	if (j->d->mem_limit_live)
		place->hard_limit_mib = 0;
	ckpt_job_placed(j, place);
	s->place = place;
	r = domxml_build(s, &xml);
	if (r < 0) {
		place->hard_limit_mib = limit;
		snprintf(why, whylen, "cannot build the domain: %s",
			 strerror(-r));
		return r;
	}
	/* Prepared: a restore's too (its "create" read as the host's
	 * uptime when this came after the restore's start). */
	j->t_prepared = now_ms();
	/* The checkpoint's own XML (without passed-through devices), and a
	 * restore instead of a create (1). */
	r = ckpt_job_built(j, s, place,
			   j->d->mem_limit_live ? (uint64_t)limit * 1024 : 0,
			   why, whylen);
	place->hard_limit_mib = limit;
	if (r == 1)
		j->state = JOB_RESTORING;
	if (r != 0)
		return r < 0 ? r : 0;
	log_debug("job %u: domain XML:\n%s", j->id, xml);
	if (warm_job_start(j, s, xml,
			   j->d->mem_limit_live ? (uint64_t)limit * 1024 : 0) ==
	    1)
		return 0;
	if (j->d->mem_limit_live && limit)
		return j->d->hv->create_limited(
		    j->d->hv_ctx, xml, (uint64_t)limit * 1024, why, whylen);
	return j->d->hv->create(j->d->hv_ctx, xml, why, whylen);
}

static int create_domain(struct job *j, struct dom_placement *place, char *err,
			 size_t errlen)
{
	char why[512] = "";
	struct dom_spec s = {
	    .name = j->domain,
	    .type = j->d->domain_type,
	    .job_id = j->id,
	    .node = j->d->cfg.node_name,
	    .uid = (uint32_t)j->uid,
	    .gid = (uint32_t)j->gid,
	    .vcpus = j->vcpus,
	    .mem_mib = j->mem_mib,
	    .cpu_model = j->spec.v.cpu_model,
	    .console_log = j->console,
	    .agent_sock = j->agent_sock,
	};
	struct dom_mount mounts[VMSPEC_MAX_MOUNTS];
	char mount_tags[VMSPEC_MAX_MOUNTS][JOBMOUNTS_TAG_LEN];
	int r;

	jobmounts_domspec(j, mounts, mount_tags, &s);
	if (j->has_net &&
	    (r = jobnet_host_up(j->d, j->id, &j->net, &s, err, errlen)) < 0)
		return r;
	jobimg_fill_spec(j, &s);
	s.standin = ckpt_job_standin(j);
	bulk_domspec(j, &s, ckpt_job_restoring(j));
	if ((r = jobfiles_domspec(j, &s)) < 0)
		return err_set(err, errlen, r,
			       "job %u: the job's files cannot reach the "
			       "guest: %s",
			       j->id, strerror(-r));
	r = hv_create(j, &s, place, why, sizeof(why));
	j->t_created = now_ms();
	if (r < 0)
		return err_set(err, errlen, r,
			       "job %u: %s (see vmenvctl console %u)", j->id,
			       why, j->id);
	j->domain_running = true;
	return 0;
}

static void boot_timeout(void *data)
{
	struct job *j = data;

	j->boot_timer = NULL;
	job_fail_for(j, METRICS_FAIL_BOOT_TIMEOUT,
		     "job %u: guest did not become ready within %u s on node "
		     "%s; see vmenvctl console %u",
		     j->id, j->d->cfg.boot_timeout_s, j->d->cfg.node_name,
		     j->id);
}

static int lookup_image(struct job *j, const struct catalog_image **ret,
			char *err, size_t errlen)
{
	char why[512] = "", names[512];
	int r;

	*ret = NULL;
	/* A user's own image (the policy allowed a path: image_paths): the
	 * node must allow it too; jobimage.c checks the file. */
	if (j->image[0] == '/')
		return strcmp(j->d->cfg.allow_user_images, "yes") == 0
			   ? 0
			   : err_set(
				 err, errlen, -EPERM,
				 "job %u: image paths are not allowed on node "
				 "%s (allow_user_images = no); use an image "
				 "of the catalog",
				 j->id, j->d->cfg.node_name);
	if (catalogfile_refresh(j->d, why, sizeof(why)) < 0)
		log_warn("catalog: %s (keeping the previous one)", why);
	r = catalog_resolve(&j->d->catalog, j->image, ret, why, sizeof(why));
	if (r == 0)
		return 0;
	/* why quotes the name safely: it passed valid_image_ref. */
	catalog_names(&j->d->catalog, names, sizeof(names));
	return err_set(err, errlen, r,
		       "job %u: %s on node %s (known images: %s)", j->id, why,
		       j->d->cfg.node_name, names);
}

static void prepare_timeout(void *data)
{
	struct job *j = data;

	j->boot_timer = NULL;
	job_fail_for(j, METRICS_FAIL_IMAGE,
		     "job %u: image '%s' was not ready within %u s on node %s",
		     j->id, j->image, j->d->cfg.image_prepare_timeout_s,
		     j->d->cfg.node_name);
}

static const struct jobimg_sink image_sink;

/* 0: ready now; 1: preparing (image_ready follows). */
static int start_image(struct job *j, const struct catalog_image *img,
		       char *err, size_t errlen)
{
	int r = img ? jobimg_start(j, img, &image_sink, err, errlen)
		    : jobimg_start_user(j, j->image, &image_sink, err, errlen);

	if (r != 1)
		return r;
	j->state = JOB_PREPARING;
	j->boot_timer = loop_add_timer(
	    j->d->loop, j->d->cfg.image_prepare_timeout_s * 1000ull,
	    prepare_timeout, j);
	return 1;
}

/* The guest's QEMU exists: the servers of its files connect to their
 * ports, and vmmd to its agent. */
static int boot_after_domain(struct job *j, char *err, size_t errlen)
{
	int r;

	if ((r = jobfiles_attach(j, err, errlen)) < 0)
		return r;
	if ((r = agent_attach(j)) < 0)
		return err_set(err, errlen, r, "job %u: agent channel: %s",
			       j->id, strerror(-r));
	j->fail_reason = METRICS_FAIL_NONE;
	return 0;
}

/* Placement right before the domain: devices and hugepages are taken
 * when QEMU needs them, not while the image is fetched. */
static int boot_steps(struct job *j, char *err, size_t errlen)
{
	_cleanup_free_ struct dom_placement *place = NULL;
	int r;

	j->fail_reason = METRICS_FAIL_PLACEMENT;
	if ((r = job_place(j, &j->slurm, &j->spec.v, j->alloc_mib, &place, err,
			   errlen)) < 0)
		return r;
	j->fail_reason = METRICS_FAIL_CREATE;
	if ((r = jobmounts_check(j, err, errlen)) < 0 ||
	    (r = jobfiles_prepare(j, err, errlen)) < 0 ||
	    (r = create_domain(j, place, err, errlen)) < 0)
		return r;
	if ((r = write_state(j)) < 0 || (r = spec_save(j)) < 0)
		return err_set(err, errlen, r, "job %u: cannot write state: %s",
			       j->id, strerror(-r));
	j->boot_timer = loop_add_timer(
	    j->d->loop, j->d->cfg.boot_timeout_s * 1000ull, boot_timeout, j);
	/* A guest restored from a template: the rest once it is there
	 * (on_warm_domain_up), or booted if the restore fails. */
	if (warm_job_restoring(j))
		return 0;
	return boot_after_domain(j, err, errlen);
}

/* How the working directory reaches the guest follows from the spec; a
 * restore takes the checkpoint's kind instead (ckpt_job_check). */
static int pick_files(struct job *j)
{
	j->files_kind = jobfiles_kind_for(j);
	return 0;
}

/* A job on several nodes: its guests' private segment and addresses,
 * worked out from Slurm's node list and the site key (vmmd/net/jobnet.h). */
static int plan_net(struct job *j, const struct slurmjob_info *si, char *err,
		    size_t errlen)
{
	int r;

	if (si->nnodes < 2)
		return 0;
	r = jobnet_host_plan(j->d, j->id, si, &j->net, err, errlen);
	if (r < 0)
		return r;
	j->has_net = true;
	return 0;
}

static int start_steps(struct job *j, const struct proto_start *req, char *err,
		       size_t errlen)
{
	/* Kept in the job: placement follows once the image is ready. */
	struct slurmjob_info *si = &j->slurm;
	const struct catalog_image *img;
	int r;

	/* Policy before anything of the guest exists. */
	j->fail_reason = METRICS_FAIL_REFUSED;
	if ((r = check_slurm(j, si, err, errlen)) < 0 ||
	    (r = plan_net(j, si, err, errlen)) < 0 ||
	    (r = resolve_user(j, err, errlen)) < 0 ||
	    (r = spec_resolve(j, req, si, err, errlen)) < 0 ||
	    (r = pick_files(j)) < 0 ||
	    (r = lookup_image(j, &img, err, errlen)) < 0 ||
	    (r = ckpt_job_lookup(j, err, errlen)) < 0 ||
	    (r = size_guest(j, si, img, &j->alloc_mib, err, errlen)) < 0 ||
	    (r = ckpt_job_check(j, err, errlen)) < 0)
		return r;
	j->fail_reason = METRICS_FAIL_CREATE;
	if ((r = prepare_dir(j, err, errlen)) < 0)
		return r;
	j->fail_reason = METRICS_FAIL_IMAGE;
	if ((r = start_image(j, img, err, errlen)) < 0)
		return r;
	j->fail_reason = METRICS_FAIL_NONE;
	return r == 1 ? 0 : boot_steps(j, err, errlen);
}

/* b - a, or 0 when b is earlier: a restore's steps do not come in the
 * order of a boot's (its "prepare" read as 18446744073693510095 ms). */
static unsigned long long ms_since(uint64_t a, uint64_t b)
{
	return b >= a ? (unsigned long long)(b - a) : 0;
}

static void log_started(const struct job *j)
{
	log_info("job %u: guest %s starting (image %s, %u vCPUs, %u MiB, "
		 "prepare %llu ms, create %llu ms)",
		 j->id, j->domain, j->image, j->vcpus, j->mem_mib,
		 ms_since(j->t_request, j->t_prepared),
		 ms_since(j->t_prepared, j->t_created));
}

static void image_progress(struct job *j, const struct proto_progress *p)
{
	exec_job_progress(j, p);
}

static void image_ready(struct job *j)
{
	char err[PROTO_MAX_ERROR];

	loop_cancel_timer(j->boot_timer);
	j->boot_timer = NULL;
	j->state = JOB_BOOTING;
	if (boot_steps(j, err, sizeof(err)) < 0)
		job_fail(j, "%s", err);
	else
		log_started(j);
}

static void image_failed(struct job *j, const char *msg)
{
	job_fail(j, "%s", msg);
}

static const struct jobimg_sink image_sink = {
    .ready = image_ready,
    .progress = image_progress,
    .failed = image_failed,
};

int job_start(struct vmmd *d, const struct proto_start *req, char *err,
	      size_t errlen)
{
	char safe[VMENV_MAX_IMAGE_NAME];
	struct job *j;
	int r;

	if (!valid_image_ref(req->image) && !valid_abs_path(req->image))
		return err_set(err, errlen, -EINVAL,
			       "job %u: invalid image name '%s'", req->job_id,
			       printable(req->image, safe, sizeof(safe)));
	j = job_find(d, req->job_id);
	/* Every step of a job asks for its guest: the first one starts it,
	 * the others find it (booting, ready or failed with the reason). */
	if (j && j->uid == req->uid && strcmp(j->image, req->image) == 0)
		return 0;
	if (j)
		return err_set(err, errlen, -EEXIST,
			       "job %u: already has a guest on node %s (image "
			       "'%s')",
			       req->job_id, d->cfg.node_name, j->image);
	j = job_new(d, req->job_id, req->uid, req->gid);
	if (!j)
		return -ENOMEM;
	snprintf(j->image, sizeof(j->image), "%s", req->image);
	j->t_request = now_ms();
	metrics_job_started(d);
	r = start_steps(j, req, err, errlen);
	if (r < 0) {
		/* Keep the record with the reason for the job's tasks; the
		 * guest and its files go now. */
		job_fail(j, "%s", err);
		return r;
	}
	if (j->state == JOB_PREPARING)
		log_info("job %u: preparing image %s", j->id, j->image);
	else
		log_started(j);
	return 0;
}

void job_set_ready(struct job *j)
{
	if (j->state != JOB_BOOTING && j->state != JOB_RESTORING)
		return;
	j->state = JOB_READY;
	j->t_ready = now_ms();
	loop_cancel_timer(j->boot_timer);
	j->boot_timer = NULL;
	log_info("job %u: guest ready (%llu ms after the request)", j->id,
		 (unsigned long long)(j->t_ready - j->t_request));
	metrics_job_ready(j);
	exec_job_ready(j);
	ckpt_job_ready(j);
	warm_job_ready(j);
}

/* The checkpoint procedure's outcomes (ckpt.h): the job's state follows. */
static void on_ckpt_event(struct job *j, enum ckpt_event ev, const char *msg)
{
	switch (ev) {
	case CKPT_EV_SAVING:
		j->state = JOB_SAVING;
		break;
	case CKPT_EV_GOES_ON:
		/* Tasks that came while it was saving start now. */
		j->state = JOB_READY;
		exec_job_ready(j);
		break;
	case CKPT_EV_SAVED:
		snprintf(j->error, sizeof(j->error), "%s", msg);
		j->state = JOB_SAVED;
		break;
	case CKPT_EV_RESTORING:
		j->state = JOB_RESTORING;
		break;
	case CKPT_EV_READY:
		job_set_ready(j);
		break;
	case CKPT_EV_FAILED:
		job_fail_for(j, METRICS_FAIL_CHECKPOINT, "%s", msg);
		break;
	case CKPT_EV_WAITING:
		loop_cancel_timer(j->boot_timer);
		j->boot_timer = NULL;
		break;
	}
}

const struct ckpt_sink job_ckpt_events = {.event = on_ckpt_event};

static void on_warm_failed(struct job *j, const char *msg)
{
	job_fail(j, "%s", msg);
}

static void on_warm_domain_up(struct job *j)
{
	char err[PROTO_MAX_ERROR];

	if (boot_after_domain(j, err, sizeof(err)) < 0)
		job_fail(j, "%s", err);
}

const struct warm_sink job_warm_events = {.failed = on_warm_failed,
					  .domain_up = on_warm_domain_up};

void job_fail(struct job *j, const char *fmt, ...)
{
	va_list ap;

	if (j->state == JOB_FAILED)
		return;
	metrics_job_failed(j);
	va_start(ap, fmt);
	vsnprintf(j->error, sizeof(j->error), fmt, ap);
	va_end(ap);
	j->state = JOB_FAILED;
	log_err("%s", j->error);
	/* The record stays (with the reason) for the job's tasks; the guest
	 * and the job's files go now, not at the epilog. */
	job_end(j, JOB_END_FAIL);
}

int job_stop(struct vmmd *d, uint32_t id)
{
	struct job *j = job_find(d, id);

	if (!j)
		return -ENOENT;
	/* A restored or adopted guest was not prepared and created here. */
	if (j->t_first_output && j->t_request &&
	    j->t_prepared >= j->t_request && j->t_created >= j->t_prepared &&
	    j->t_ready >= j->t_created && j->t_first_output >= j->t_ready)
		log_info("job %u: timings prepare=%llu create=%llu boot=%llu "
			 "exec=%llu ms",
			 j->id,
			 (unsigned long long)(j->t_prepared - j->t_request),
			 (unsigned long long)(j->t_created - j->t_prepared),
			 (unsigned long long)(j->t_ready - j->t_created),
			 (unsigned long long)(j->t_first_output - j->t_ready));
	job_end(j, JOB_END_STOP);
	job_unlink(j);
	log_info("job %u: guest removed", id);
	job_free(j);
	return 0;
}

#define STOP_POLL_MS 100

uint64_t job_stop_grace_ms = JOB_STOP_GRACE_S * 1000ull;

static void stop_when_idle(void *data)
{
	struct job *j = data;

	j->stop_timer = NULL;
	if (exec_count(j) == 0 || now_ms() >= j->stop_deadline_ms) {
		job_stop(j->d, j->id);
		return;
	}
	j->stop_timer =
	    loop_add_timer(j->d->loop, STOP_POLL_MS, stop_when_idle, j);
}

int job_stop_when_idle(struct vmmd *d, uint32_t id)
{
	struct job *j = job_find(d, id);

	if (!j)
		return -ENOENT;
	if (exec_count(j) == 0)
		return job_stop(d, id);
	if (j->stop_timer)
		return 0;
	log_info("job %u: ended in Slurm; the guest goes when its %u "
		 "running step(s) are done (at most %llu s)",
		 j->id, exec_count(j),
		 (unsigned long long)(job_stop_grace_ms / 1000));
	j->stop_deadline_ms = now_ms() + job_stop_grace_ms;
	j->stop_timer =
	    loop_add_timer(j->d->loop, STOP_POLL_MS, stop_when_idle, j);
	return 0;
}

void job_stop_all_records(struct vmmd *d)
{
	/* At shutdown: forget jobs without touching guests, which keep
	 * running and are adopted by the next vmmd. */
	while (d->jobs) {
		struct job *j = d->jobs;

		job_end(j, JOB_END_FORGET);
		d->jobs = j->next;
		job_free(j);
	}
}

/* Why a paused guest's disk failed: QEMU pauses it on ENOSPC, and the
 * overlay is the only file it writes (in the job's directory). */
static void disk_hint(const struct job *j, char *buf, size_t len)
{
	struct statvfs sv;

	buf[0] = '\0';
	if (statvfs(j->dir, &sv) == 0 &&
	    (uint64_t)sv.f_bavail * sv.f_frsize < (1u << 20))
		snprintf(buf, len,
			 ": no space left for its disk overlay in %s's file "
			 "system",
			 j->dir);
}

static void domain_io_error(struct job *j)
{
	char hint[VMENV_MAX_PATH + 64];

	disk_hint(j, hint, sizeof(hint));
	job_fail_for(j, METRICS_FAIL_GUEST_STOPPED,
		     "job %u: the guest's disk hit a write error on node "
		     "%s%s; the guest was stopped",
		     j->id, j->d->cfg.node_name, hint);
}

void job_on_domain_event(struct vmmd *d, const char *name, int ev)
{
	/* By name, not by the name's job id: a restored guest keeps the
	 * name it was saved with (docs/checkpoint.md). */
	struct job *j = job_find_domain(d, name);

	if (!j)
		return;
	if (ev != HV_EV_STOPPED && ev != HV_EV_CRASHED && ev != HV_EV_IOERROR)
		return;
	/* A checkpoint stops the guest on purpose (libvirt says SAVED, but
	 * a save that fails half way may say less): ckpt.c decides. */
	if (ckpt_busy(j))
		return;
	/* Paused, not gone: the job's end destroys it. A paused guest would
	 * otherwise hold its CPUs and memory until the time limit. */
	if (ev == HV_EV_IOERROR) {
		domain_io_error(j);
		return;
	}
	j->domain_running = false;
	job_fail_for(j, METRICS_FAIL_GUEST_STOPPED,
		     "job %u: guest %s on node %s; see vmenvctl console %u",
		     j->id,
		     ev == HV_EV_CRASHED ? "crashed" : "stopped unexpectedly",
		     d->cfg.node_name, j->id);
}

static int state_field(struct job *j, const char *key, const char *val)
{
	uint32_t n;

	if (strcmp(key, "base") == 0)
		return jobimg_restore(j, val);
	if (strcmp(key, "image") == 0)
		return valid_image_ref(val) || valid_abs_path(val)
			   ? (snprintf(j->image, sizeof(j->image), "%s", val),
			      0)
			   : -EINVAL;
	/* A restored guest's saved name (vmenv-<node>-<job>, maybe another
	 * node's or job's); absent in older state files. */
	if (strcmp(key, "domain") == 0)
		return strncmp(val, "vmenv-", 6) == 0 &&
			       strlen(val) < sizeof(j->domain) &&
			       strspn(val, "abcdefghijklmnopqrstuvwxyz"
					   "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
					   "0123456789._-") == strlen(val)
			   ? (snprintf(j->domain, sizeof(j->domain), "%s", val),
			      0)
			   : -EINVAL;
	if (strcmp(key, "work_dir") == 0)
		return valid_abs_path(val)
			   ? (snprintf(j->work_dir, sizeof(j->work_dir), "%s",
				       val),
			      0)
			   : -EINVAL;
	if (strcmp(key, "files") == 0)
		return jobfiles_kind_parse(val, &j->files_kind);
	if (parse_u32(val, &n) < 0)
		return -EINVAL;
	if (strcmp(key, "job") == 0)
		return n == j->id ? 0 : -EINVAL;
	if (strcmp(key, "uid") == 0)
		j->uid = n;
	else if (strcmp(key, "gid") == 0)
		j->gid = n;
	else if (strcmp(key, "vcpus") == 0)
		j->vcpus = n;
	else if (strcmp(key, "mem_mib") == 0)
		j->mem_mib = n;
	/* Slurm's view that the job's checkpoints follow (a multi-node
	 * job's node and run): absent in older state files. */
	else if (strcmp(key, "nnodes") == 0)
		j->slurm.nnodes = n;
	else if (strcmp(key, "node_index") == 0)
		j->slurm.node_index = n;
	else if (strcmp(key, "restart") == 0)
		j->slurm.restart_count = n;
	else
		return -EINVAL;
	return 0;
}

static int read_state(struct job *j)
{
	char path[VMENV_MAX_PATH + 16];
	_cleanup_free_ char *text = NULL;
	char *line, *save = NULL;
	int r;

	snprintf(path, sizeof(path), "%s/state", j->dir);
	r = read_file_limited(path, 64 * 1024, &text, NULL);
	if (r < 0)
		return r;
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');
		if (!eq)
			return -EINVAL;
		*eq = '\0';
		if ((r = state_field(j, line, eq + 1)) < 0)
			return r;
	}
	if (j->slurm.nnodes > 1 && j->slurm.node_index >= j->slurm.nnodes)
		return -EINVAL;
	return j->image[0] && j->work_dir[0] ? 0 : -EINVAL;
}

/* A guest adopted after a restart is reached through q/ by path: only
 * when q/ and the job directory are still root's and no one else may
 * write them (an older vmmd gave q/ to the user). */
static int check_private_dirs(const struct job *j)
{
	char q[VMENV_MAX_PATH + 8];
	struct stat st;

	snprintf(q, sizeof(q), "%s/q", j->dir);
	if (lstat(j->dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & 022))
		return -EPERM;
	if (lstat(q, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & 077))
		return -EPERM;
	return 0;
}

int job_restore(struct vmmd *d, uint32_t id)
{
	char err[512];
	struct job *j = job_new(d, id, 0, 0);
	int r;

	if (!j)
		return -ENOMEM;
	r = read_state(j);
	if (r == 0 && (r = check_private_dirs(j)) < 0)
		log_err(
		    "job %u: %s or its q/ is not root's alone: the guest is "
		    "not adopted",
		    id, j->dir);
	if (r == 0)
		r = resolve_user(j, err, sizeof(err));
	/* A guest started by a vmmd without policies has no spec file. */
	if (r == 0 && spec_load(j) < 0) {
		log_warn("job %u: no readable spec; assuming the defaults", id);
		vmspec_defaults(&j->spec);
	}
	if (r < 0) {
		jobimg_forget(j);
		job_unlink(j);
		job_free(j);
		return r;
	}
	j->domain_running = true;
	jobfiles_adopt(j);
	exec_restart_adopt(j);
	j->t_request = now_ms();
	j->boot_timer = loop_add_timer(d->loop, d->cfg.boot_timeout_s * 1000ull,
				       boot_timeout, j);
	r = agent_attach(j);
	if (r < 0)
		job_fail(j, "job %u: cannot reattach the agent: %s", id,
			 strerror(-r));
	log_notice("job %u: adopted running guest %s", id, j->domain);
	return 0;
}
