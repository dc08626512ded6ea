/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sanitize.h -- what a sandboxed process tells the sanitizers (ASan, LSan,
 * UBSan) before it loses /proc and gains a seccomp filter.  Only the
 * -Dsanitize=true build has sanitize.c; elsewhere this is a no-op.
 */
#ifndef MOAT_SANITIZE_H
#define MOAT_SANITIZE_H

#include <stddef.h>

#ifdef MOAT_SANITIZE
void	sanitize_sandbox_prepare(void);
size_t	sanitize_sandbox_syscalls(const int **list);
#else
static inline void
sanitize_sandbox_prepare(void)
{
}

/* The syscalls a sandbox must add for the sanitizers: none here. */
static inline size_t
sanitize_sandbox_syscalls(const int **list)
{
	*list = NULL;
	return 0;
}
#endif

#endif
