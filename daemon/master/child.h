/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * child.h -- what every child of the master has, whatever it is: a
 * channel that is read in the loop, an exit that is noticed, a backoff
 * before it starts again, and its place in the sd_notify STATUS line.
 * What differs between a worker and keyd is in its struct child_ops.
 */
#ifndef MOAT_CHILD_H
#define MOAT_CHILD_H

#include <sys/types.h>

#include <ev.h>

#include "ipc.h"
#include "log.h"
#include "master_types.h"

/* child.c */
void	child_init(struct master_child *c, struct master *m,
	    const struct child_ops *ops, enum ipc_role role, unsigned index,
	    const char *name);
void	child_started(struct master_child *c, pid_t pid, int fd,
	    ev_tstamp started);
void	child_watch(struct master_child *c);
void	child_move(struct master_child *dst, struct master_child *src,
	    struct master *to);
void	child_chan_close(struct master_child *c);
void	child_kill(struct master_child *c, int sig);
void	child_stop_deadline(struct master_child *c, double seconds);
void	child_backoff(struct master_child *c);
__dead void child_exec(const struct master_child *c, const char *path,
	    const char *const argv[]);
unsigned child_workers_running(const struct master *m);
unsigned child_workers_draining(const struct master *m);
void	child_status_notify(struct master *m);

#endif
