// SPDX-License-Identifier: MIT
/*
 * ckpt-hv: vmmd's libvirt checkpoint calls (hv_libvirt.c: save, restore
 * with a new XML, detach with the wait for the removal, attach, cpu_ok,
 * the owner in the domain's metadata, which a restore takes from its XML)
 * against the real libvirtd, on a transient domain named ckdev-hv-<pid>
 * booting the tiny image, with an emulated virtio-rng PCI device standing
 * in for a VF. Prints one line per step; exit 0 when every step worked.
 *
 *   ckpt-hv [TINY_DIR [WORK_DIR]]   defaults: /var/lib/vmenv/images/tiny,
 *                                   /var/tmp
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentwire.h"
#include "domxml.h"
#include "hv.h"
#include "log.h"
#include "rmtree.h"
#include "util.h"

static const char *const rng_xml =
    "<rng model='virtio'><backend model='random'>/dev/urandom</backend>"
    "<alias name='ua-ckdev-rng'/></rng>";

static int failures;

static void step(const char *what, int r, const char *err, uint64_t t0)
{
	printf("%-4s %-44s %6llu ms%s%s\n", r < 0 ? "FAIL" : "ok", what,
	       (unsigned long long)(now_ms() - t0), r < 0 ? "  " : "",
	       r < 0 ? err : "");
	if (r < 0)
		failures++;
}

/* owner: the job id in vmmd's <metadata> (node "ck<owner>"). */
static char *domain_xml(const char *name, const char *dir, bool rng,
			unsigned owner)
{
	char *x = NULL;

	if (asprintf(&x,
		     "<domain type='qemu'><name>%s</name>"
		     "<metadata><vmenv:job xmlns:vmenv='" DOMXML_NS "' id='%u' "
		     "node='ck%u'/></metadata>"
		     "<memory unit='MiB'>256</memory><vcpu>1</vcpu>"
		     "<os><type arch='x86_64' machine='pc'>hvm</type>"
		     "<kernel>%s/vmlinuz</kernel><initrd>%s/initrd.img</initrd>"
		     "<cmdline>console=ttyS0 quiet panic=-1</cmdline></os>"
		     "<features><acpi/></features>"
		     "<on_poweroff>destroy</on_poweroff>"
		     "<seclabel type='static' model='dac' relabel='no'>"
		     "<label>+0:+0</label></seclabel><devices>"
		     "<serial type='file'><source path='%s/console.log'/>"
		     "<target port='0'/></serial>"
		     "<channel type='unix'><source mode='bind' "
		     "path='%s/agent.sock'/><target type='virtio' "
		     "name='" AW_PORT_NAME "'/></channel>"
		     "%s<memballoon model='none'/></devices></domain>",
		     name, owner, owner, dir, dir, dir, dir,
		     rng ? rng_xml : "") < 0)
		return NULL;
	return x;
}

/* The guest is up when its agent answers HELLO. */
static int wait_agent(const char *sock, int timeout_s)
{
	uint8_t hello[AW_HDR_LEN + 4], in[64];
	uint64_t end = now_ms() + (uint64_t)timeout_s * 1000;

	aw_hdr_encode(hello, 4, AW_HELLO, 0);
	hello[AW_HDR_LEN] = hello[AW_HDR_LEN + 1] = hello[AW_HDR_LEN + 2] = 0;
	hello[AW_HDR_LEN + 3] = AW_VERSION;
	while (now_ms() < end) {
		int fd = unix_connect(sock, 200);
		if (fd < 0) {
			usleep(200 * 1000);
			continue;
		}
		for (int i = 0; i < 40; i++) {
			write_full(fd, hello, sizeof(hello));
			usleep(250 * 1000);
			fd_set_nonblock(fd, true);
			if (read(fd, in, sizeof(in)) >= (ssize_t)AW_HDR_LEN &&
			    in[4] == AW_HELLO) {
				close(fd);
				return 0;
			}
		}
		close(fd);
	}
	return -ETIMEDOUT;
}

static int owner_is(void *ctx, const char *name, uint32_t want,
		    const char *want_node)
{
	char node[128] = "";
	uint32_t id = 0;
	int r = hv_libvirt_ops.owner(ctx, name, &id, node, sizeof(node));

	printf("     owner of %s: %d, job %u, node '%s'\n", name, r, id, node);
	return r == 0 && id == want && strcmp(node, want_node) == 0 ? 0
								    : -EINVAL;
}

static int copy_in(const char *tiny, const char *dir, const char *name)
{
	char a[VMENV_MAX_PATH], b[VMENV_MAX_PATH];

	snprintf(a, sizeof(a), "%s/%s", tiny, name);
	snprintf(b, sizeof(b), "%s/%s", dir, name);
	unlink(b);
	return copy_file(a, b, 0644);
}

int main(int argc, char **argv)
{
	const char *tiny = argc > 1 ? argv[1] : "/var/lib/vmenv/images/tiny";
	const char *work = argc > 2 ? argv[2] : "/var/tmp";
	char dir[VMENV_MAX_PATH], name[64], sock[VMENV_MAX_PATH + 16];
	char mem[VMENV_MAX_PATH + 16], err[1024] = "";
	char *xml, *xml_norng, name2[80];
	void *ctx = NULL;
	uint64_t t0;
	int r;

	log_set_level(LOG_WARNING);
	snprintf(name, sizeof(name), "ckdev-hv-%d", (int)getpid());
	snprintf(dir, sizeof(dir), "%s/%s", work, name);
	snprintf(sock, sizeof(sock), "%s/agent.sock", dir);
	snprintf(mem, sizeof(mem), "%s/memory", dir);
	if (mkdir_p(dir, 0755) < 0 || copy_in(tiny, dir, "vmlinuz") < 0 ||
	    copy_in(tiny, dir, "initrd.img") < 0) {
		fprintf(stderr, "ckpt-hv: cannot prepare %s\n", dir);
		return 2;
	}
	/* libvirt refuses another name at the restore (as on another node):
	 * checked below; the restore proper keeps the name. */
	snprintf(name2, sizeof(name2), "%s-b", name);
	xml = domain_xml(name, dir, true, 42);
	/* Restored for another job on another node (--vm-restore). */
	xml_norng = domain_xml(name, dir, false, 43);
	if (!xml || !xml_norng)
		return 2;
	t0 = now_ms();
	r = hv_libvirt_ops.open(&ctx, "qemu:///system", err, sizeof(err));
	step("open qemu:///system", r, err, t0);
	if (r < 0)
		return 1;
	t0 = now_ms();
	r = hv_libvirt_ops.cpu_ok(ctx, "qemu", "qemu64", err, sizeof(err));
	step("cpu_ok qemu64 (expected: yes)", r == 1 ? 0 : -EINVAL, err, t0);
	t0 = now_ms();
	r = hv_libvirt_ops.cpu_ok(ctx, "qemu", "no-such-model", err,
				  sizeof(err));
	printf("     cpu_ok no-such-model: %d (%s)\n", r, err);
	t0 = now_ms();
	r = hv_libvirt_ops.create(ctx, xml, err, sizeof(err));
	step("create with an emulated PCI device", r, err, t0);
	if (r < 0)
		goto out;
	t0 = now_ms();
	step("boot until the agent answers", wait_agent(sock, 120), "timeout",
	     t0);
	t0 = now_ms();
	step("owner from the metadata: job 42 on ck42",
	     owner_is(ctx, name, 42, "ck42"), "other owner", t0);
	t0 = now_ms();
	r = hv_libvirt_ops.detach(ctx, name, rng_xml, "ua-ckdev-rng", 30000,
				  err, sizeof(err));
	step("detach the device, wait for its removal", r, err, t0);
	t0 = now_ms();
	r = hv_libvirt_ops.save(ctx, name, mem, err, sizeof(err));
	step("save (BYPASS_CACHE)", r, err, t0);
	if (r < 0)
		goto out;
	{
		char *renamed = domain_xml(name2, dir, false, 43);

		t0 = now_ms();
		r = renamed ? hv_libvirt_ops.restore(ctx, mem, renamed, 0, err,
						     sizeof(err))
			    : -ENOMEM;
		step("restore under another name is refused", r < 0 ? 0 : -1,
		     "it was not", t0);
		free(renamed);
	}
	t0 = now_ms();
	r = hv_libvirt_ops.restore(ctx, mem, xml_norng, 512 * 1024, err,
				   sizeof(err));
	step("restore: our XML (no UUID), a hard limit", r, err, t0);
	if (r < 0)
		goto out;
	t0 = now_ms();
	step("the restored owner is our XML's: job 43 on ck43",
	     owner_is(ctx, name, 43, "ck43"), "other owner", t0);
	t0 = now_ms();
	step("the restored agent answers", wait_agent(sock, 30), "timeout", t0);
	t0 = now_ms();
	r = hv_libvirt_ops.attach(ctx, name, rng_xml, err, sizeof(err));
	step("attach a fresh device", r, err, t0);
	t0 = now_ms();
	r = hv_libvirt_ops.save(ctx, "ckdev-none", mem, err, sizeof(err));
	step("save of an unknown domain fails", r < 0 ? 0 : -EINVAL, err, t0);
	{
		char node[64];
		uint32_t id;

		t0 = now_ms();
		r = hv_libvirt_ops.owner(ctx, "ckdev-none", &id, node,
					 sizeof(node));
		step("owner of an unknown domain: -ENOENT",
		     r == -ENOENT ? 0 : -EINVAL, "other answer", t0);
	}
out:
	hv_libvirt_ops.destroy(ctx, name, err, sizeof(err));
	hv_libvirt_ops.destroy(ctx, name2, err, sizeof(err));
	hv_libvirt_ops.close(ctx);
	rm_rf(dir);
	free(xml);
	free(xml_norng);
	printf("%s\n", failures ? "FAILED" : "all steps worked");
	return failures ? 1 : 0;
}
