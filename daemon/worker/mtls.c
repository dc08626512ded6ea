/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mtls.c -- client certificates (verify = optional | required).
 *
 * The CAs and the CRL come from the sealed copies the master made
 * (fe->ca_fd, fe->crl_fd, conf_mtls.c), read once before the privilege
 * drop and kept, public, for every certificate generation's credentials.
 * A session asks for a certificate (GNUTLS_CERT_REQUEST, or REQUIRE) and
 * the one presented is verified inside the handshake (mtls_verify(),
 * gnutls_certificate_verify_peers3(), no host name): a bad, revoked or
 * foreign-CA certificate fails the handshake under optional too; no
 * certificate fails it under required only.  mtls_failure() picks the
 * alert that says why and the log line's reason.  After the first
 * handshake the subject CN, sanitised as SNI is, is kept for the log line
 * and the backend's PROXY v2 header.  A TLS 1.2 renegotiation keeps it:
 * GnuTLS asks for the certificate again (the request mode stays on the
 * session), verifies it, and refuses one of another identity
 * (GNUTLS_E_SESSION_USER_ID_CHANGED; moat never sets
 * GNUTLS_ALLOW_ID_CHANGE), so the CN noted cannot go stale silently.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "conf.h"
#include "log.h"
#include "proxyproto.h"
#include "state.h"
#include "mtls.h"

static int
mtls_read_fd(const struct frontend *fe, int fd, const char *what,
    gnutls_datum_t *out)
{
	int r;

	if (fd < 0) {
		log_warnx("%s: frontend %s: no %s from the master", __func__,
		    fe->name, what);
		return -EBADF;
	}
	r = config_cert_read(fd, out);
	close(fd);
	if (r < 0)
		log_warnx("%s: frontend %s: %s: %s", __func__, fe->name, what,
		    strerror(-r));
	return r;
}

/* Before the privilege drop: the frontend's CAs and CRL, if any. */
int
mtls_frontend_load(struct worker_frontend *wf)
{
	const struct frontend *fe = wf->fe;
	int r;

	if (fe->verify == CONFIG_VERIFY_NONE)
		return 0;
	if ((r = mtls_read_fd(fe, fe->ca_fd, "ca-file", &wf->mtls_ca)) < 0)
		return r;
	if (fe->crl_file[0] != '\0' &&
	    (r = mtls_read_fd(fe, fe->crl_fd, "crl-file", &wf->mtls_crl)) < 0)
		return r;
	return 0;
}

/* What gnutls_certificate_set_x509_*_mem() said: 0 or an error. */
static int
mtls_set_result(const struct frontend *fe, const char *what, int r)
{
	if (r > 0)
		return 0;
	log_warnx("%s: frontend %s: %s: %s", __func__, fe->name, what,
	    r < 0 ? gnutls_strerror(r) : "none in it");
	return r < 0 ? r : GNUTLS_E_CERTIFICATE_ERROR;
}

/* The trust store of one credentials set (each generation has its own). */
int
mtls_cred_apply(struct worker_frontend *wf,
    gnutls_certificate_credentials_t cred)
{
	const struct frontend *fe = wf->fe;
	int r;

	if (fe->verify == CONFIG_VERIFY_NONE)
		return 0;
	r = mtls_set_result(fe, "ca-file", gnutls_certificate_set_x509_trust_mem(
	    cred, &wf->mtls_ca, GNUTLS_X509_FMT_PEM));
	if (r < 0 || wf->mtls_crl.size == 0)
		return r;
	return mtls_set_result(fe, "crl-file",
	    gnutls_certificate_set_x509_crl_mem(cred, &wf->mtls_crl,
	    GNUTLS_X509_FMT_PEM));
}

/*
 * In the handshake, once the client's certificate (or its absence) is
 * known.  Not gnutls_session_set_verify_cert(): under GNUTLS_CERT_REQUEST
 * that fails a client that sends none, which optional must let through.
 * A non-zero return fails the handshake (GNUTLS_E_CERTIFICATE_ERROR).
 */
static int
mtls_verify(gnutls_session_t s)
{
	struct conn *c = gnutls_session_get_ptr(s);
	unsigned n = 0, status = 0;

	if (c == NULL || c->magic != CONN_MAGIC)
		return -1;
	if (gnutls_certificate_get_peers(s, &n) == NULL || n == 0) {
		c->cert_status = GNUTLS_CERT_INVALID;
		return c->wf->fe->verify == CONFIG_VERIFY_REQUIRED ? -1 : 0;
	}
	if (gnutls_certificate_verify_peers3(s, NULL, &status) < 0)
		status = GNUTLS_CERT_INVALID;
	c->cert_status = status;
	return status != 0 ? -1 : 0;
}

/* A new session: what it asks of the client, and that it is verified. */
void
mtls_session_setup(struct conn *c)
{
	const struct frontend *fe = c->wf->fe;

	c->cn[0] = '\0';
	c->cert_flags = 0;
	c->cert_verified = 0;
	c->cert_status = 0;
	if (fe->verify == CONFIG_VERIFY_NONE) {
		gnutls_certificate_server_set_request(c->session,
		    GNUTLS_CERT_IGNORE);
		return;
	}
	gnutls_certificate_server_set_request(c->session,
	    fe->verify == CONFIG_VERIFY_REQUIRED ? GNUTLS_CERT_REQUIRE :
	    GNUTLS_CERT_REQUEST);
	gnutls_session_set_verify_function(c->session, mtls_verify);
}

/* The certificate's subject CN, hostname characters only, into c->cn. */
static void
mtls_cn_read(struct conn *c, const gnutls_datum_t *der)
{
	gnutls_x509_crt_t crt;
	char cn[256];
	size_t len = sizeof(cn), i, j;
	unsigned char ch;

	if (gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) < 0 ||
	    gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
	    0, cn, &len) < 0 || len >= sizeof(cn)) {
		gnutls_x509_crt_deinit(crt);
		return;
	}
	gnutls_x509_crt_deinit(crt);
	for (i = 0, j = 0; i < len && cn[i] != '\0' && j < sizeof(c->cn) - 1;
	    i++) {
		ch = (unsigned char)cn[i];
		c->cn[j++] = ((ch >= 'a' && ch <= 'z') || (ch >= 'A' &&
		    ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
		    ch == '-' || ch == '_') ? (char)ch : '?';
	}
	c->cn[j] = '\0';
}

/*
 * The first handshake succeeded: if a certificate was presented it was
 * verified (GnuTLS failed the handshake otherwise).  A resumed session
 * carries the certificate of the handshake that made it.
 */
void
mtls_note(struct conn *c)
{
	const gnutls_datum_t *peers;
	unsigned n = 0;

	if (c->wf->fe->verify == CONFIG_VERIFY_NONE ||
	    (peers = gnutls_certificate_get_peers(c->session, &n)) == NULL ||
	    n == 0)
		return;
	c->cert_flags = PP2_CLIENT_CERT_SESS;
	if (!gnutls_session_is_resumed(c->session))
		c->cert_flags |= PP2_CLIENT_CERT_CONN;
	/* mtls_verify() passed it, or (resumed) the handshake that made it */
	c->cert_verified = c->cert_status == 0;
	mtls_cn_read(c, &peers[0]);
}

/*
 * A failed handshake: when the client certificate is why, send the alert
 * that says so, put why in why and return 1; otherwise 0 (the caller
 * sends GnuTLS's own alert).
 */
int
mtls_failure(struct conn *c, int r, char *why, size_t whylen)
{
	gnutls_datum_t out = { NULL, 0 };
	gnutls_alert_description_t alert;
	unsigned status;

	if (c->wf->fe->verify == CONFIG_VERIFY_NONE)
		return 0;
	if (r == GNUTLS_E_CERTIFICATE_REQUIRED ||
	    r == GNUTLS_E_NO_CERTIFICATE_FOUND) {
		/* TLS 1.3 names it; TLS 1.2 has no better word */
		alert = gnutls_protocol_get_version(c->session) ==
		    GNUTLS_TLS1_3 ? GNUTLS_A_CERTIFICATE_REQUIRED :
		    GNUTLS_A_HANDSHAKE_FAILURE;
		(void)gnutls_alert_send(c->session, GNUTLS_AL_FATAL, alert);
		snprintf(why, whylen, "no client certificate (verify = "
		    "required); alert %s", gnutls_alert_get_name(alert));
		return 1;
	}
	if ((r != GNUTLS_E_CERTIFICATE_ERROR &&
	    r != GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) ||
	    (status = c->cert_status) == 0)
		return 0;
	alert = (status & GNUTLS_CERT_REVOKED) ? GNUTLS_A_CERTIFICATE_REVOKED :
	    (status & GNUTLS_CERT_EXPIRED) ? GNUTLS_A_CERTIFICATE_EXPIRED :
	    (status & GNUTLS_CERT_SIGNER_NOT_FOUND) ? GNUTLS_A_UNKNOWN_CA :
	    GNUTLS_A_BAD_CERTIFICATE;
	(void)gnutls_alert_send(c->session, GNUTLS_AL_FATAL, alert);
	if (gnutls_certificate_verification_status_print(status,
	    GNUTLS_CRT_X509, &out, 0) < 0)
		out.data = NULL;
	snprintf(why, whylen, "client certificate refused: %s; alert %s",
	    out.data != NULL ? (const char *)out.data : "not trusted",
	    gnutls_alert_get_name(alert));
	gnutls_free(out.data);
	return 1;
}
