/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sealed.c -- bytes handed to another process as a sealed memfd.
 *
 * The master gives its children what it checked (a certificate chain, the
 * parsed config) as a memfd that nobody can write, grow, shrink or unseal
 * any more: what a child reads is exactly what was checked, whoever else
 * holds the descriptor.  Readers use pread() from offset 0, since the file
 * description (and its offset) is shared.
 */
#include "config.h"

#include <sys/mman.h>

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "sealed.h"

/* iov[0..n) into a new sealed memfd (close-on-exec): the fd, or -errno. */
int
sealed_memfd(const char *name, const struct iovec *iov, unsigned n)
{
	const char *p;
	size_t off;
	ssize_t w;
	unsigned i;
	int fd, r;

	if ((fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)) < 0)
		return -errno;
	for (i = 0; i < n; i++) {
		p = iov[i].iov_base;
		for (off = 0; off < iov[i].iov_len; off += (size_t)w) {
			w = write(fd, p + off, iov[i].iov_len - off);
			if (w < 0 && errno == EINTR) {
				w = 0;
				continue;
			}
			if (w <= 0) {
				r = w < 0 ? -errno : -EIO;
				goto fail;
			}
		}
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW |
	    F_SEAL_SEAL) < 0) {
		r = -errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return r;
}
