/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sanitize.h -- what a sandboxed process tells the sanitizers (ASan, LSan,
 * UBSan) before it loses /proc and gains a seccomp filter.  Only the
 * -Dsanitize=true build has sanitize.c; elsewhere this is a no-op.
 */
#ifndef MOAT_SANITIZE_H
#define MOAT_SANITIZE_H

#include <stddef.h>

/* A syscall a sandbox adds for the sanitizer runtime. */
struct sanitize_syscall {
	int	nr;
	int	err;	/* 0: allowed; else it fails with this errno */
};

#ifdef MOAT_SANITIZE
void	sanitize_sandbox_prepare(void);
size_t	sanitize_sandbox_syscalls(const struct sanitize_syscall **list);
#else
static inline void
sanitize_sandbox_prepare(void)
{
}

/* The syscalls a sandbox must add for the sanitizers: none here. */
static inline size_t
sanitize_sandbox_syscalls(const struct sanitize_syscall **list)
{
	*list = NULL;
	return 0;
}
#endif

#endif
