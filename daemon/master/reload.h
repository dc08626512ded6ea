/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * reload.h -- certificate rotation: moatctl reload and SIGHUP (reload.c).
 */
#ifndef MOAT_RELOAD_H
#define MOAT_RELOAD_H

#include "control.h"
#include "master_types.h"

/* reload.c */
void	reload_start(struct master *m, struct control_client *c);

#endif
