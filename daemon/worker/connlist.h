/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * connlist.h -- the worker's list of its live connections (connlist.c).
 */
#ifndef MOAT_CONNLIST_H
#define MOAT_CONNLIST_H

#include "state.h"

void	connlist_link(struct worker *w, struct conn *c);
void	connlist_unlink(struct worker *w, struct conn *c);

#endif
