/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rogue_master.h -- rogue_worker's attacks on the master channel: a
 * message no worker may send, and a rotation refused (issue 8).
 */
#ifndef MOAT_ROGUE_MASTER_H
#define MOAT_ROGUE_MASTER_H

#include "roguelib.h"

void	rogue_master_send(struct rogue_worker *w, const char *message);
void	rogue_master_certfail(struct rogue_worker *w, unsigned seconds);

#endif
