/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sweep.h -- what a worker does to all its connections at once (sweep.c).
 */
#ifndef MOAT_SWEEP_H
#define MOAT_SWEEP_H

#include "state.h"

void	sweep_drain(struct worker *w, int hard);
unsigned sweep_rekey(struct worker *w, const struct worker_frontend *only,
	    const char *why);

#endif
