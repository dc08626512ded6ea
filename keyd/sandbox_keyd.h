/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sandbox_keyd.h -- keyd's seccomp allowlist.  Linked into moat-keyd and
 * into tests/helpers/seccomp_bite, which shows that the very same filter
 * kills a process that opens a file or a socket.
 */
#ifndef MOAT_SANDBOX_KEYD_H
#define MOAT_SANDBOX_KEYD_H

/* sandbox_keyd.c */
int	sandbox_keyd_apply(int trap);

#endif
