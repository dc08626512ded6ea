/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * master_tickets.h -- the session-ticket master keys (master_tickets.c).
 */
#ifndef MOAT_MASTER_TICKETS_H
#define MOAT_MASTER_TICKETS_H

#include <stddef.h>

#include <gnutls/gnutls.h>

#include "conf.h"

/* master_tickets.c */
int	master_tickets_derive(const struct config *cfg,
	    const gnutls_datum_t *secret, struct config_tickets *out);
int	master_tickets_init(const struct config *cfg,
	    struct config_tickets **out, char *err, size_t errlen);
int	master_tickets_carry(const struct config *running,
	    const struct config_tickets *keys, const struct config *cfg,
	    struct config_tickets **out, char *err, size_t errlen);
void	master_tickets_free(struct config_tickets *t);

#endif
