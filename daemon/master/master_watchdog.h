/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * master_watchdog.h -- systemd's WatchdogSec= (master_watchdog.c).
 */
#ifndef MOAT_MASTER_WATCHDOG_H
#define MOAT_MASTER_WATCHDOG_H

#include "master_types.h"

void	master_watchdog_start(struct master *m);
void	master_watchdog_stop(struct master *m);

#endif
