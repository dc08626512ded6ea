/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * testtls.h -- TLS pieces the unit tests share: a key with a self-signed
 * certificate made on the spot (alone, or as server credentials), and a handshake between two sessions of
 * this process.
 */
#ifndef MOAT_TESTTLS_H
#define MOAT_TESTTLS_H

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>

/* testtls.c */
void	testtls_selfsigned(gnutls_pk_algorithm_t pk, unsigned bits,
	    gnutls_privkey_t *key, gnutls_pcert_st *pcert);
void	testtls_server_cred(gnutls_certificate_credentials_t *cred,
	    gnutls_pcert_st *pcert);
int	testtls_handshake(gnutls_session_t server, gnutls_session_t client);

#endif
