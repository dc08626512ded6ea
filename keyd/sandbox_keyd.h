/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sandbox_keyd.h -- keyd's seccomp allowlist.  Linked into moat-keyd and
 * into tests/helpers/seccomp_bite, which shows that the very same filter
 * kills a process that opens a file or a socket.
 */
#ifndef MOAT_SANDBOX_KEYD_H
#define MOAT_SANDBOX_KEYD_H

/* What the filter allows besides keyd's own calls. */
enum sandbox_keyd_mode {
	SANDBOX_KEYD_PLAIN = 0,		/* no PKCS#11 module */
	SANDBOX_KEYD_PKCS11_READ,	/* a module; its paths all read-only */
	SANDBOX_KEYD_PKCS11_WRITE,	/* a module with a writable path */
};

/* sandbox_keyd.c */
int	sandbox_keyd_apply(int trap, int mode);

#endif
