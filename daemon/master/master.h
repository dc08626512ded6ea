/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * master.h -- the master process of moatd, as main.c starts it.
 *
 * The master reads the config, opens the listeners and the control socket,
 * starts moat-keyd and the workers, supervises them with backoff, and
 * answers moatctl.  It runs one libev loop, the default one, and never
 * touches TLS bytes or a private key: key files are opened and their
 * descriptors passed to keyd unread.  master_types.h maps the files.
 */
#ifndef MOAT_MASTER_H
#define MOAT_MASTER_H

#include "conf.h"

/* master.c */
int	master_main(struct config *cfg);

#endif
