/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * worker.h -- a worker process's entry.
 *
 * The master starts a worker by executing moatd again (moatd --worker,
 * daemon/main.c), after opening every listener and making the worker's two
 * channels; main.c reads the config the master sent and calls
 * worker_main(), which never returns.  Inherited across the exec: the
 * listeners (cfg->frontends[].listen_fd), the two channels, stderr for
 * logs.  master_fd: SOCK_SEQPACKET channel to the master, which
 * sends IPC_WORKER_STATS, IPC_WORKER_CHANNEL (a new keyd channel after a
 * keyd restart, fd attached), IPC_WORKER_STOP (stop accepting, drain, exit 0)
 * and IPC_WORKER_REKEY.  keyd_fd: this worker's channel to keyd, already
 * handed to keyd with IPC_CHANNEL_ADD.  The worker drops privileges
 * (cfg->user, chroot cfg->chroot_dir) and loads sandbox_worker.c's filter
 * before it serves anything.
 */
#ifndef MOAT_WORKER_H
#define MOAT_WORKER_H

#include "conf.h"
#include "log.h"

/* worker.c */
/* tickets: each frontend's ticket key; taken into the frontends, wiped */
__dead void worker_main(const struct config *cfg,
	    struct config_tickets *tickets, unsigned index, int master_fd,
	    int keyd_fd);

#endif
