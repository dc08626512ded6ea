/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mtls.h -- client certificates in the worker: the frontend's trusted CAs
 * and CRL on its credentials, what a session asks of the client, and the
 * identity a handshake established.
 */
#ifndef MOAT_MTLS_H
#define MOAT_MTLS_H

#include <gnutls/gnutls.h>

#include "state.h"

/* mtls.c */
int	mtls_frontend_load(struct worker_frontend *wf);
int	mtls_cred_apply(struct worker_frontend *wf,
	    gnutls_certificate_credentials_t cred);
void	mtls_session_setup(struct conn *c);
void	mtls_note(struct conn *c);
int	mtls_failure(struct conn *c, int r, char *why, size_t whylen);

#endif
