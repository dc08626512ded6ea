/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pathrule.h -- the one rule for a path that keyd bind-mounts into its root
 * (pkcs11-allow, pkcs11-allow-write): written plainly, with no "." or ".."
 * component and no "//", so that what moatd -t accepts and what keyd mounts
 * are the same file, and a mount point cannot climb out of the root.
 * moatd checks it when it parses the config (daemon/conf_pkcs11.c), keyd
 * again before it mounts (keyd/keyd_pkcs11.c); both use this function.
 */
#ifndef MOAT_PATHRULE_H
#define MOAT_PATHRULE_H

/* 1 when path has no ".", ".." or empty component after its first byte. */
static inline int
path_is_plain(const char *path)
{
	const char *p;

	for (p = path; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		if (p[1] == '/' || (p[1] == '.' && (p[2] == '/' ||
		    p[2] == '\0' || (p[2] == '.' && (p[3] == '/' ||
		    p[3] == '\0')))))
			return 0;
	}
	return 1;
}

#endif
