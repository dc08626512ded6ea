/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * connlog.h -- a connection's log line (connlog.c).
 */
#ifndef MOAT_CONNLOG_H
#define MOAT_CONNLOG_H

#include "state.h"

/* connlog.c */
void	connlog_write(const struct conn *c);

#endif
