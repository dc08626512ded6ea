/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * privdrop.h -- the fixed privilege-drop sequence every sandboxed moat
 * process runs (workers and keyd).  Each process keeps its own seccomp
 * allowlist beside its code and loads it right after privdrop_apply().
 */
#ifndef MOAT_PRIVDROP_H
#define MOAT_PRIVDROP_H

#include <sys/types.h>

struct privdrop {
	uid_t		uid;
	gid_t		gid;
	const char	*user;		/* for messages */
	const char	*chroot_dir;	/* an empty, root-owned directory */
	unsigned long	nofile;		/* RLIMIT_NOFILE to set; 0 keeps it */
};

/* privdrop.c */
int	privdrop_can_sandbox(const char **missing);
int	privdrop_lookup(const char *user, struct privdrop *pd);
int	privdrop_prepare_chroot(const char *dir);
void	privdrop_apply(const struct privdrop *pd);
void	privdrop_verify(const struct privdrop *pd);

#endif
