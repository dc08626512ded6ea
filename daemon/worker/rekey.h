/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rekey.h -- driving rekey-concurrency (rekey.c): a request the
 * renegotiation machine queued goes out once pace.c grants a slot.
 */
#ifndef MOAT_REKEY_H
#define MOAT_REKEY_H

#include "state.h"

/* rekey.c */
void	rekey_release(struct conn *c);
void	rekey_gate(struct conn *c);

#endif
