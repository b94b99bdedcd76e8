// SPDX-License-Identifier: MIT
/*
 * ckpt-agent: the guest agent's side of a checkpoint, end to end on a real
 * guest (a ckdev-agent-<pid> transient domain booting a tiny image built
 * with this tree's agent, a 9p share like vmmd's), through vmmd's own
 * libvirt calls:
 *
 *   a counter runs in the guest (cwd /); a second command works in the
 *   share -> CKPT_PREPARE is refused "files open in /work"; it ends ->
 *   CKPT_PREPARE is answered OK and the counter stops (frozen); the host
 *   goes away, the guest is saved, restored; the agent says it holds the
 *   checkpoint; CKPT_RESUME steps the clock, mounts the share again, thaws
 *   -> the counter goes on from where it was, no number lost or repeated.
 *
 *   ckpt-agent TINY_DIR [WORK_DIR]   (TINY_DIR: build-tiny --out of an
 *                                     image with this tree's agent)
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agentwire.h"
#include "hv.h"
#include "log.h"
#include "rmtree.h"
#include "util.h"

static int failures;
static char dir[VMENV_MAX_PATH], sock[VMENV_MAX_PATH + 16];

static void check(const char *what, bool ok, const char *detail)
{
	printf("%-4s %s%s%s\n", ok ? "ok" : "FAIL", what, detail ? ": " : "",
	       detail ? detail : "");
	failures += !ok;
}

struct frame {
	struct aw_hdr h;
	uint8_t p[AW_MAX_AGENT_PAYLOAD + 1];
};

static int read_exact(int fd, void *buf, size_t n, int timeout_ms)
{
	uint8_t *p = buf;

	while (n) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		ssize_t r;

		if (poll(&pf, 1, timeout_ms) <= 0)
			return -ETIMEDOUT;
		r = read(fd, p, n);
		if (r <= 0)
			return r == 0 ? -ECONNRESET : -errno;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int recv_frame(int fd, struct frame *f, int timeout_ms)
{
	uint8_t hdr[AW_HDR_LEN];
	int r = read_exact(fd, hdr, sizeof(hdr), timeout_ms);

	if (r == 0)
		r = aw_hdr_decode(hdr, AW_MAX_AGENT_PAYLOAD, &f->h);
	if (r == 0)
		r = read_exact(fd, f->p, f->h.len, timeout_ms);
	f->p[r == 0 ? f->h.len : 0] = '\0';
	return r;
}

static void send_frame(int fd, uint8_t type, uint32_t session,
		       const struct aw_buf *b)
{
	struct aw_buf out = {0};

	aw_put_frame(&out, type, session, b ? b->data : NULL, b ? b->len : 0);
	write_full(fd, out.data, out.len);
	aw_buf_free(&out);
}

/* The next frame of type (others: counter output is collected into out). */
static int expect(int fd, uint8_t type, struct frame *f, char *out,
		  size_t outlen, int timeout_ms)
{
	for (;;) {
		int r = recv_frame(fd, f, timeout_ms);
		if (r < 0)
			return r;
		if (f->h.type == type)
			return 0;
		if (f->h.type == AW_STDOUT && f->h.session == 1 && out)
			strncat(out, (char *)f->p, outlen - strlen(out) - 1);
	}
}

static int last_number(const char *out);

/* Collects the counter's output until it printed at least `until`, or
 * timeout_ms passed. */
static void collect(int fd, char *out, size_t outlen, int until, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	struct frame *f = malloc(sizeof(*f));

	while (f && now_ms() < end && last_number(out) < until) {
		if (recv_frame(fd, f, 500) == -ETIMEDOUT)
			continue;
		if (f->h.type == AW_STDOUT && f->h.session == 1 &&
		    strlen(out) + f->h.len < outlen)
			memcpy(out + strlen(out), f->p, f->h.len + 1);
	}
	free(f);
}

static int connect_hello(uint32_t *flags)
{
	uint64_t end = now_ms() + 120000;
	struct aw_buf b = {0};
	struct frame *f = malloc(sizeof(*f));
	struct aw_reader r;
	int fd = -1;

	aw_put_u32(&b, AW_VERSION);
	while (now_ms() < end && fd < 0) {
		fd = unix_connect(sock, 200);
		if (fd < 0)
			usleep(200 * 1000);
	}
	for (; fd >= 0 && now_ms() < end;) {
		send_frame(fd, AW_HELLO, 0, &b);
		if (recv_frame(fd, f, 1000) == 0 && f->h.type == AW_HELLO)
			break;
	}
	aw_reader_init(&r, f->p, f->h.len);
	aw_get_u32(&r);
	*flags = aw_get_u32(&r);
	aw_buf_free(&b);
	free(f);
	return fd;
}

static void exec_cmd(int fd, uint32_t session, const char *cwd, const char *cmd)
{
	char sh[] = "/bin/sh", c[] = "-c", path[] = "PATH=/bin:/usr/bin";
	char *cmd_copy = strdup(cmd), *cwd_copy = strdup(cwd);
	char *argv[] = {sh, c, cmd_copy, NULL};
	char *envp[] = {path, NULL};
	struct aw_exec e = {
	    .cwd = cwd_copy, .argc = 3, .argv = argv, .envc = 1, .envp = envp};
	struct aw_buf b = {0};

	aw_exec_encode(&e, &b);
	free(cmd_copy);
	free(cwd_copy);
	send_frame(fd, AW_EXEC, session, &b);
	aw_buf_free(&b);
}

static void send_u32(int fd, uint8_t type, uint32_t session, uint32_t v)
{
	struct aw_buf b = {0};

	aw_put_u32(&b, v);
	send_frame(fd, type, session, &b);
	aw_buf_free(&b);
}

static char *domain_xml(const char *name)
{
	char *x = NULL;

	if (asprintf(&x,
		     "<domain type='qemu'><name>%s</name>"
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
		     "<filesystem type='mount' accessmode='passthrough'>"
		     "<source dir='%s/share'/><target dir='vmenv.workdir'/>"
		     "</filesystem>"
		     "<memballoon model='none'/></devices></domain>",
		     name, dir, dir, dir, dir, dir) < 0)
		return NULL;
	return x;
}

static int last_number(const char *out)
{
	const char *p = out + strlen(out);
	int n = -1;

	while (p > out && (p[-1] == '\n'))
		p--;
	while (p > out && p[-1] != '\n')
		p--;
	sscanf(p, "%d", &n);
	return n;
}

static int setup(int fd)
{
	char tag[] = "vmenv.workdir", path[] = "/work", root[] = "root";
	char host[] = "ckdev", home[] = "/root";
	struct aw_setup s = {.hostname = host,
			     .user = root,
			     .group = root,
			     .home = home,
			     .time_sec = (int64_t)time(NULL),
			     .nmounts = 1,
			     .mounts = {{.tag = tag, .path = path}}};
	struct aw_buf b = {0};
	struct frame *f = malloc(sizeof(*f));
	int r;

	aw_setup_encode(&s, AW_VERSION, &b);
	send_frame(fd, AW_SETUP, 0, &b);
	aw_buf_free(&b);
	r = expect(fd, AW_SETUP_OK, f, NULL, 0, 20000);
	free(f);
	return r;
}

int main(int argc, char **argv)
{
	const char *tiny = argc > 1 ? argv[1] : "/tmp/cktiny";
	const char *work = argc > 2 ? argv[2] : "/var/tmp";
	char name[64], mem[VMENV_MAX_PATH + 16], err[1024] = "";
	char buf[VMENV_MAX_PATH + 64];
	static char out[65536];
	struct frame *f = malloc(sizeof(*f));
	struct aw_buf b = {0};
	struct aw_reader rd;
	uint32_t flags = 0;
	void *ctx = NULL;
	char *xml;
	int fd, n1, n2, r;

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	log_set_level(LOG_WARNING);
	snprintf(name, sizeof(name), "ckdev-agent-%d", (int)getpid());
	snprintf(dir, sizeof(dir), "%s/%s", work, name);
	snprintf(sock, sizeof(sock), "%s/agent.sock", dir);
	snprintf(mem, sizeof(mem), "%s/memory", dir);
	snprintf(buf, sizeof(buf), "%s/share", dir);
	if (mkdir_p(buf, 0755) < 0)
		return 2;
	for (int i = 0; i < 2; i++) {
		const char *fn[] = {"vmlinuz", "initrd.img"};
		char a[VMENV_MAX_PATH + 16], c[VMENV_MAX_PATH + 16];
		snprintf(a, sizeof(a), "%s/%s", tiny, fn[i]);
		snprintf(c, sizeof(c), "%s/%s", dir, fn[i]);
		if (copy_file(a, c, 0644) < 0)
			return 2;
	}
	snprintf(buf, sizeof(buf), "%s/share/hello", dir);
	write_file_atomic(buf, "from the host\n", 14, 0644);
	xml = domain_xml(name);
	if (!xml ||
	    hv_libvirt_ops.open(&ctx, "qemu:///system", err, sizeof(err)) < 0 ||
	    hv_libvirt_ops.create(ctx, xml, err, sizeof(err)) < 0) {
		fprintf(stderr, "ckpt-agent: %s\n", err);
		return 2;
	}
	fd = connect_hello(&flags);
	check("the agent answers and knows checkpoints",
	      fd >= 0 && (flags & AW_HELLO_CKPT), NULL);
	check("SETUP mounts the share", fd >= 0 && setup(fd) == 0, NULL);
	exec_cmd(fd, 1, "/",
		 "i=0; while :; do echo $i; i=$((i+1)); sleep 1; done");
	exec_cmd(fd, 2, "/work", "sleep 1000");
	collect(fd, out, sizeof(out), 2, 20000);
	send_u32(fd, AW_CKPT_PREPARE, 0, AW_CKPT_MOUNTS);
	r = expect(fd, AW_CKPT_REFUSED, f, out, sizeof(out), 20000);
	aw_reader_init(&rd, f->p, f->h.len);
	aw_get_u32(&rd);
	aw_get_u32(&rd);
	{
		char *why = aw_get_str(&rd, 1024);
		check("a command working in the share refuses the checkpoint",
		      r == 0 && why && strstr(why, "files open in /work"),
		      why ? why : "no answer");
		free(why);
	}
	send_u32(fd, AW_SIGNAL, 2, SIGKILL);
	r = expect(fd, AW_EXIT, f, out, sizeof(out), 10000);
	check("it ends", r == 0 && f->h.session == 2, NULL);
	send_u32(fd, AW_CKPT_PREPARE, 0, AW_CKPT_MOUNTS);
	r = expect(fd, AW_CKPT_OK, f, out, sizeof(out), 30000);
	check("then the agent prepares: frozen, share released", r == 0, NULL);
	n1 = last_number(out);
	r = expect(fd, AW_STDOUT, f, NULL, 0, 2500);
	check("nothing moves while frozen", r == -ETIMEDOUT, NULL);
	close(fd);
	r = hv_libvirt_ops.save(ctx, name, mem, err, sizeof(err));
	check("libvirt saves (the share is not mounted)", r == 0, err);
	sleep(3); /* the guest's clock must be stepped over this */
	r = hv_libvirt_ops.restore(ctx, mem, xml, 0, err, sizeof(err));
	check("libvirt restores", r == 0, err);
	fd = connect_hello(&flags);
	check("the restored agent says it holds the checkpoint",
	      fd >= 0 && (flags & AW_HELLO_CKPT_HELD), NULL);
	aw_put_i64(&b, (int64_t)time(NULL));
	aw_put_u32(&b, AW_CKPT_MOUNTS);
	send_frame(fd, AW_CKPT_RESUME, 0, &b);
	aw_buf_free(&b);
	out[0] = '\0';
	r = expect(fd, AW_CKPT_OK, f, out, sizeof(out), 30000);
	check("CKPT_RESUME is answered OK", r == 0, NULL);
	collect(fd, out, sizeof(out), n1 + 2, 20000);
	n2 = atoi(out);
	snprintf(buf, sizeof(buf),
		 "frozen at %d, the first after the "
		 "resume %d",
		 n1, n2);
	check("the counter goes on: no number lost or repeated", n2 == n1 + 1,
	      buf);
	exec_cmd(fd, 3, "/work", "cat /work/hello; date +%s");
	out[0] = '\0';
	{
		char o3[256] = "";
		for (int i = 0; i < 20; i++) {
			if (recv_frame(fd, f, 5000) < 0)
				break;
			if (f->h.type == AW_STDOUT && f->h.session == 3 &&
			    strlen(o3) + f->h.len < sizeof(o3))
				memcpy(o3 + strlen(o3), f->p, f->h.len + 1);
			if (f->h.type == AW_EXIT && f->h.session == 3)
				break;
		}
		check("the share is mounted again",
		      strstr(o3, "from the host") != NULL, o3);
		check("the guest's clock was stepped to now",
		      labs(atol(strchr(o3, '\n') ? strchr(o3, '\n') + 1 : "0") -
			   (long)time(NULL)) < 3,
		      NULL);
	}
	close(fd);
	hv_libvirt_ops.destroy(ctx, name, err, sizeof(err));
	hv_libvirt_ops.close(ctx);
	rm_rf(dir);
	free(xml);
	free(f);
	printf("%s\n", failures ? "FAILED" : "all steps worked");
	return failures ? 1 : 0;
}
