/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * util.h -- the few macros every process uses.
 */
#ifndef MOAT_UTIL_H
#define MOAT_UTIL_H

#include <stddef.h>

/* From an embedded member (a libev watcher, say) back to its struct. */
#ifndef container_of
#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#endif

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

#endif
