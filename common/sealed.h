/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sealed.h -- bytes handed to another process as a sealed memfd.
 */
#ifndef MOAT_SEALED_H
#define MOAT_SEALED_H

#include <sys/uio.h>

int	sealed_memfd(const char *name, const struct iovec *iov, unsigned n);

#endif
