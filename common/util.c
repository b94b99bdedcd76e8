/* SPDX-License-Identifier: MIT */
#include "util.h"

#include "cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

int fd_set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
	return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int read_fd_limited(int fd, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 0;

	for (;;) {
		if (cap - len < 4096) {
			size_t ncap = cap ? cap * 2 : 8192;
			char *nb;

			if (ncap > max + 2)
				ncap = max + 2;
			if (ncap <= len + 1)
				return -EFBIG;
			nb = realloc(buf, ncap);
			if (!nb)
				return -ENOMEM;
			buf = nb;
			cap = ncap;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max)
			return -EFBIG;
	}
	if (!buf && !(buf = malloc(1)))
		return -ENOMEM;
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

int read_file_limited(const char *path, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return -errno;
	return read_fd_limited(fd, max, ret, ret_len);
}

int write_fd_whole(int fd, const void *data, size_t len)
{
	const char *p = data;
	off_t off = 0;

	if (ftruncate(fd, 0) < 0)
		return -errno;
	while ((size_t)off < len) {
		ssize_t n = pwrite(fd, p + off, len - (size_t)off, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		off += n;
	}
	return fsync(fd) < 0 ? -errno : 0;
}

/* path opened for reading with flags, only when a regular file: the fd
 * (and its stat in st), or -errno (-EINVAL for another kind of file). */
static int open_regular(const char *path, int flags, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | flags);
	int r;

	if (fd < 0)
		return -errno;
	r = fstat(fd, st) < 0 ? -errno : S_ISREG(st->st_mode) ? 0 : -EINVAL;
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int read_plain_file_limited(const char *path, size_t max, char **ret,
			    size_t *ret_len)
{
	struct stat st;
	_cleanup_close_ int fd =
	    open_regular(path, O_NOFOLLOW | O_NONBLOCK, &st);

	if (fd < 0)
		return fd;
	return read_fd_limited(fd, max, ret, ret_len);
}
static int fsync_parent(const char *path)
{
	char dir[VMENV_MAX_PATH];
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;

	if (n == 0)
		snprintf(dir, sizeof(dir), "%s", slash ? "/" : ".");
	else if (n < sizeof(dir))
		snprintf(dir, sizeof(dir), "%.*s", (int)n, path);
	else
		return -ENAMETOOLONG;
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return fsync(fd) < 0 ? -errno : 0;
}

int write_file_atomic(const char *path, const void *data, size_t len,
		      mode_t mode)
{
	char tmp[VMENV_MAX_PATH];
	int r;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >=
	    (int)sizeof(tmp))
		return -ENAMETOOLONG;
	_cleanup_close_ int fd =
	    open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	r = write_full(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	return fsync_parent(path);
}

int mkdir_p(const char *path, mode_t mode)
{
	char buf[VMENV_MAX_PATH];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Plain read/write from where copy_file_range stopped: it refuses files
 * on different file systems (EXDEV since Linux 5.19) and some file
 * systems altogether. */
static int copy_rest(int in, int out, off_t left)
{
	char buf[64 * 1024];

	while (left > 0) {
		ssize_t n = read(in, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		if (write_full(out, buf, (size_t)n) < 0)
			return -errno;
		left -= n;
	}
	return 0;
}

static int copy_open(const char *src, const char *dst, mode_t mode, int flags,
		     uid_t owner)
{
	struct stat st;
	_cleanup_close_ int in = open_regular(src, flags, &st);
	_cleanup_close_ int out = -1;
	int r;

	if (in < 0)
		return in;
	if (owner != (uid_t)-1 && st.st_uid != owner)
		return -EPERM;
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (out < 0)
		return -errno;
	if ((r = copy_fd(in, out, st.st_size)) < 0)
		unlink(dst);
	return r;
}

int copy_fd(int in, int out, off_t len)
{
	off_t left;
	int r = 0;

	for (left = len; left > 0;) {
		ssize_t n =
		    copy_file_range(in, NULL, out, NULL, (size_t)left, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EXDEV || errno == EOPNOTSUPP ||
			      errno == ENOSYS || errno == EINVAL)) {
			r = copy_rest(in, out, left);
			break;
		}
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			break;
		}
		left -= n;
	}
	return r;
}

int copy_file(const char *src, const char *dst, mode_t mode)
{
	return copy_open(src, dst, mode, 0, (uid_t)-1);
}

/* O_NONBLOCK: a FIFO put there opens at once (and is refused), instead of
 * blocking the caller until someone writes to it. */
int copy_user_file(const char *src, const char *dst, mode_t mode, uid_t owner)
{
	return copy_open(src, dst, mode, O_NOFOLLOW | O_NONBLOCK, owner);
}

static int unix_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

int unix_connect(const char *path, int timeout_ms)
{
	struct sockaddr_un sa;
	int r = unix_addr(path, &sa);

	if (r < 0)
		return r;
	_cleanup_close_ int fd =
	    socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		int err = 0;
		socklen_t el = sizeof(err);

		if (errno != EINPROGRESS && errno != EAGAIN)
			return -errno;
		r = poll(&pfd, 1, timeout_ms);
		if (r == 0)
			return -ETIMEDOUT;
		if (r < 0)
			return -errno;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			return -errno;
		if (err)
			return -err;
	}
	r = fd_set_nonblock(fd, false);
	if (r < 0)
		return r;
	return TAKE_FD(fd);
}

int unix_listen(const char *path, mode_t mode, int backlog)
{
	struct sockaddr_un sa;
	int r = unix_addr(path, &sa);

	if (r < 0)
		return r;
	_cleanup_close_ int fd =
	    socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	if (chmod(path, mode) < 0 || listen(fd, backlog) < 0)
		return -errno;
	return TAKE_FD(fd);
}

int err_set(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

int str_printf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int parse_i64(const char *s, int64_t *ret)
{
	char *end;
	long long v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

int parse_u32(const char *s, uint32_t *ret)
{
	int64_t v;

	/* A digit first: strtoll would skip white space and take a sign
	 * after it (" -1" read as 4294967295). */
	if (!s || *s < '0' || *s > '9' || parse_i64(s, &v) < 0 ||
	    v > UINT32_MAX)
		return -EINVAL;
	*ret = (uint32_t)v;
	return 0;
}

static bool valid_name_part(const char *s, size_t len)
{
	if (len == 0 || len > 64)
		return false;
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
	      (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '+' || c == '-'))
			return false;
	}
	return true;
}

bool valid_image_ref(const char *s)
{
	const char *colon;

	if (!s)
		return false;
	colon = strchr(s, ':');
	if (!colon)
		return valid_name_part(s, strlen(s));
	return valid_name_part(s, (size_t)(colon - s)) &&
	       valid_name_part(colon + 1, strlen(colon + 1));
}

bool valid_abs_path(const char *p)
{
	size_t len;

	if (!p || p[0] != '/')
		return false;
	len = strlen(p);
	if (len >= VMENV_MAX_PATH)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return false;
	/* Walk the components: none empty (except the root), ".", "..". */
	for (const char *c = p + 1; *c;) {
		const char *e = strchr(c, '/');
		size_t n = e ? (size_t)(e - c) : strlen(c);

		if (n == 0 && e)
			return false;
		if ((n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (!e)
			break;
		c = e + 1;
	}
	return true;
}

const char *printable(const char *s, char *buf, size_t len)
{
	size_t i;

	if (!s)
		return "(null)";
	for (i = 0; s[i] && i + 4 < len; i++)
		buf[i] =
		    ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	if (s[i] && len >= 4) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

void strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}
