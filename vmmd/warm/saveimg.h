/* SPDX-License-Identifier: MIT */
/*
 * libvirt's QEMU save image, read and written again with another domain
 * XML (docs/warmstart.md): a job's guest restores from its template's
 * stream under its own name and UUID, which libvirt's restore will not
 * change (its ABI check refuses another name or UUID).
 *
 * The layout is libvirt's (src/qemu/qemu_saveimage.h, version 2): a
 * 92-byte header (magic "LibvirtQemudSave", u32 version, data_len,
 * was_running, format, cookieOffset, 14 unused, host byte order), then
 * data_len bytes holding the domain XML and, at cookieOffset, libvirt's
 * cookie (both NUL-terminated), then QEMU's migration stream to the end.
 * Only uncompressed ("raw") images are taken.
 */
#ifndef VMMD_SAVEIMG_H
#define VMMD_SAVEIMG_H

#include <stddef.h>
#include <stdint.h>

#define SAVEIMG_HDR_LEN 92u
/* More than a domain XML of vmmd's ever is (libvirt pads its own). */
#define SAVEIMG_MAX_DATA (1u << 20)

struct saveimg {
	uint32_t data_len;
	uint32_t was_running;
	char *cookie;	     /* NULL: none; malloc'ed */
	uint64_t stream_off; /* where QEMU's stream starts */
	uint64_t stream_len;
};

/* Reads and checks fd's header and data (from offset 0). 0, or -EINVAL
 * (not a raw version-2 save image: why says what), -errno. */
int saveimg_read(int fd, struct saveimg *ret, char *why, size_t whylen);
void saveimg_clear(struct saveimg *s);

/* Writes to out (empty, at offset 0) a save image of xml with in's cookie
 * and stream (in as read by saveimg_read, from in_fd): the header and
 * data padded so the stream starts 4 KiB-aligned, then the stream copied
 * (copy_file_range: a reflink where the file system has them). */
int saveimg_write(int in_fd, const struct saveimg *in, const char *xml, int out,
		  char *why, size_t whylen);

/* xml with <uuid>uuid</uuid> right after its </name> (it must have no
 * <uuid>): *ret malloc'ed. -EINVAL when xml has no </name> or a uuid. */
int saveimg_xml_with_uuid(const char *xml, const char *uuid, char **ret);

/* A random RFC 4122 version-4 UUID, 36 characters and a NUL. */
int saveimg_new_uuid(char out[37]);

#endif
