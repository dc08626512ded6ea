/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * handover.h -- a reload of the whole configuration (handover.c).
 */
#ifndef MOAT_HANDOVER_H
#define MOAT_HANDOVER_H

#include "conf.h"
#include "control.h"
#include "master_types.h"

/* The reload is over (taken or refused); again: a SIGHUP came meanwhile. */
typedef void handover_done_fn(struct master *m, int again);

int	handover_needed(const struct config *running, const struct config *cfg);
void	handover_start(struct master *m, struct control_client *c,
	    struct config *cfg, handover_done_fn *done);
void	handover_again(struct master *m);
void	handover_stop(struct master *m);
void	handover_kill_retired(struct master *m);

#endif
