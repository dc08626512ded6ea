/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hello.h -- the HelloRequest (hello.c): moat's one call of
 * gnutls_rehandshake(), on a connection's client-facing session only.
 */
#ifndef MOAT_HELLO_H
#define MOAT_HELLO_H

#include "state.h"

/* hello.c */
int	hello_request(struct conn *c);

#endif
