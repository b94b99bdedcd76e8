/* SPDX-License-Identifier: MIT */
/* Small I/O and validation helpers shared by every part. None of them log. */
#ifndef VMENV_UTIL_H
#define VMENV_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VMENV_MAX_IMAGE_NAME 128
#define VMENV_MAX_PATH	     4096

/* Frees a NULL-terminated array of malloc'ed strings and the array;
 * accepts NULL. */
void strv_free(char **v);

int fd_set_nonblock(int fd, bool on);
/* Loops over EINTR and short transfers on blocking fds. 0 or -errno. */
int write_full(int fd, const void *buf, size_t len);
/* Reads at most max bytes until EOF into a new NUL-terminated buffer.
 * -EFBIG when the input is longer than max. */
int read_fd_limited(int fd, size_t max, char **ret, size_t *ret_len);
int read_file_limited(const char *path, size_t max, char **ret,
		      size_t *ret_len);
/* read_file_limited of a regular file only: the last component is not
 * followed when a link, and a FIFO or device there is refused (-ELOOP,
 * -EINVAL) without blocking. For files in directories others can write. */
int read_plain_file_limited(const char *path, size_t max, char **ret,
			    size_t *ret_len);
/* Temp file in the same directory, fsync, rename, fsync the directory: a
 * reader sees the old content or the new, never a part. */
int write_file_atomic(const char *path, const void *data, size_t len,
		      mode_t mode);
/* Replaces the whole content of the regular file open as fd (truncate,
 * write from offset 0, fsync). For files kept open across a privilege
 * drop: not atomic, the reader waits for the writer's word. */
int write_fd_whole(int fd, const void *data, size_t len);
int mkdir_p(const char *path, mode_t mode);
/* Copies len bytes from in's file offset to out's (copy_file_range where
 * the file systems take it, read/write where not). */
int copy_fd(int in, int out, off_t len);
/* Copies a regular file (reflink/copy_file_range where possible). */
int copy_file(const char *src, const char *dst, mode_t mode);
/* The same from a directory another user controls: src must be a regular
 * file owned by owner, not a link (-ELOOP), not a FIFO (-EINVAL, without
 * blocking); -EPERM for another owner. */
int copy_user_file(const char *src, const char *dst, mode_t mode, uid_t owner);

/* Unix stream sockets. connect waits at most timeout_ms. */
int unix_connect(const char *path, int timeout_ms);
int unix_listen(const char *path, mode_t mode, int backlog);

/* snprintf that reports truncation: 0, or -ENAMETOOLONG (buf then holds a
 * truncated string that must not be used as a path). */
/* Formats a message into err (for the caller to log or send) and returns
 * r: `return err_set(err, errlen, -EINVAL, "job %u: ...", id);`. */
int err_set(char *err, size_t errlen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int str_printf(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

uint64_t now_ms(void);
int parse_u32(const char *s, uint32_t *ret);
int parse_i64(const char *s, int64_t *ret);

/* NAME[:VERSION]: letters, digits and ._+- only, starting with a letter or
 * digit, each part at most 64 bytes. Keeps user strings out of paths, XML
 * and argv. */
bool valid_image_ref(const char *s);
/* Absolute, normalised (no "." or ".." components, no "//"), no control
 * characters, shorter than VMENV_MAX_PATH. */
bool valid_abs_path(const char *p);
/* Printable without quotes in a message: replaces control bytes with '?' and
 * truncates, so a user string can be quoted safely in a log line. */
const char *printable(const char *s, char *buf, size_t len);

#endif
