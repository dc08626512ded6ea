/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pace.h -- rekey-concurrency: TLS 1.2 renegotiations in flight (pace.c).
 */
#ifndef MOAT_PACE_H
#define MOAT_PACE_H

#include "state.h"

/* pace.c */
int	pace_take(struct conn *c);
int	pace_release(struct conn *c);
struct conn *pace_next(struct worker *w);
void	pace_forget(struct conn *c);
unsigned pace_waiting(const struct worker *w);

#endif
