/*
 * worker_tls.c -- GnuTLS in the worker: per-frontend credentials and
 * priorities, server sessions, the non-blocking handshake driven on a
 * coroutine, and the handling of record-layer events that are not data.
 *
 * Handshake driving.  Every gnutls_handshake() call runs on a coroutine
 * (worker_coro.h) because a key callback inside it may have to wait for
 * keyd; tls_handshake_step() starts the call and tls_handshake_done() runs
 * on the loop's stack when it returned, whether straight away or after
 * keyd answered.  While the call is suspended the connection's client
 * watcher is stopped, so nothing re-enters GnuTLS for that session.  The
 * same pair will drive renegotiation handshakes (worker_reneg.c) on an
 * established connection.
 *
 * Record events.  While proxying, gnutls_record_recv() can return
 * GNUTLS_E_REHANDSHAKE (the client sent a ClientHello) or
 * GNUTLS_E_WARNING_ALERT_RECEIVED; worker_proxy.c hands both to
 * tls_record_event(), the one place the renegotiation policy plugs in.
 * Today it refuses every client renegotiation with a no_renegotiation
 * warning alert (queued: an alert may only be sent when no record send is
 * half done, see tls_alert_flush()).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <ev.h>
#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/x509.h>

#include "log.h"
#include "conn.h"
#include "worker_coro.h"
#include "worker_int.h"
#include "worker_keyop.h"

/*
 * Read the frontend's certificate chain and build its priority cache and
 * credentials.  Runs before the privilege drop: no file opens after it.
 */
int
tls_frontend_init(struct worker_frontend *wf)
{
	const struct frontend *fe = wf->fe;
	const char *prio = fe->priority[0] != '\0' ? fe->priority :
	    MOAT_DEFAULT_PRIORITY;
	const char *errpos = NULL;
	gnutls_datum_t pem = { NULL, 0 };
	unsigned n = WORKER_MAX_CHAIN, bits = 0;
	int r;

	if ((r = gnutls_priority_init2(&wf->prio, prio, &errpos, 0)) < 0) {
		log_warnx("%s: frontend %s: priority \"%s\": %s at \"%s\"",
		    __func__, fe->name, prio, gnutls_strerror(r),
		    errpos != NULL ? errpos : "?");
		return r;
	}
	if ((r = gnutls_certificate_allocate_credentials(&wf->cred)) < 0)
		return r;
	/*
	 * set_key() would sign a test string to match key and certificate;
	 * keyd refuses such input and the master already checked the pair.
	 */
	gnutls_certificate_set_flags(wf->cred,
	    GNUTLS_CERTIFICATE_SKIP_KEY_CERT_MATCH);

	if ((r = gnutls_load_file(fe->cert, &pem)) < 0) {
		log_warnx("%s: frontend %s: %s: %s", __func__, fe->name,
		    fe->cert, gnutls_strerror(r));
		return r;
	}
	r = gnutls_pcert_list_import_x509_raw(wf->pcert, &n, &pem,
	    GNUTLS_X509_FMT_PEM, 0);
	gnutls_free(pem.data);
	if (r < 0) {
		log_warnx("%s: frontend %s: %s: %s", __func__, fe->name,
		    fe->cert, gnutls_strerror(r));
		return r;
	}
	if (n == 0) {
		log_warnx("%s: frontend %s: %s: no certificate", __func__,
		    fe->name, fe->cert);
		return GNUTLS_E_NO_CERTIFICATE_FOUND;
	}
	wf->npcert = n;

	wf->key.magic = KEYOP_KEY_MAGIC;
	wf->key.index = fe->index;
	wf->key.w = wf->w;
	wf->key.allow_decrypt = fe->allow_rsa_kx;
	r = gnutls_pubkey_get_pk_algorithm(wf->pcert[0].pubkey, &bits);
	if (r < 0) {
		log_warnx("%s: frontend %s: %s: unknown public key", __func__,
		    fe->name, fe->cert);
		return r;
	}
	wf->key.cert_pk = r;
	wf->key.info.key_id = fe->index;
	wf->key.info.pk_algo = (uint32_t)r;
	wf->key.info.bits = bits;
	wf->key.info.nsign = 0;
	snprintf(wf->key.info.name, sizeof(wf->key.info.name), "%s", fe->name);
	return 0;
}

/*
 * Make the keyd-backed key and attach it with the chain.  Its algorithm
 * and size come from the certificate (keyd may not be there yet); keyd's
 * key list, when it comes, must agree (worker_keyop.c).
 */
int
tls_frontend_key(struct worker_frontend *wf)
{
	struct keyop_key *k = &wf->key;
	int r;

	if ((r = keyop_key_import(k)) < 0) {
		log_warnx("%s: frontend %s: import_ext4: %s", __func__,
		    wf->fe->name, gnutls_strerror(r));
		return r;
	}
	r = gnutls_certificate_set_key(wf->cred, NULL, 0, wf->pcert,
	    (int)wf->npcert, k->pkey);
	if (r < 0) {
		log_warnx("%s: frontend %s: set_key: %s", __func__,
		    wf->fe->name, gnutls_strerror(r));
		return r;
	}
	/* The credentials own the chain's contents now. */
	memset(wf->pcert, 0, sizeof(wf->pcert));
	return 0;
}

int
tls_session_new(struct conn *c)
{
	struct worker_frontend *wf = c->wf;
	gnutls_session_t s;
	int r;

	r = gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
	if (r < 0) {
		log_warnx("%s: gnutls_init: %s", __func__, gnutls_strerror(r));
		return r;
	}
	c->session = s;
	if ((r = gnutls_priority_set(s, wf->prio)) < 0 ||
	    (r = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, wf->cred)) < 0) {
		log_warnx("%s: %s", __func__, gnutls_strerror(r));
		return r;
	}
	gnutls_certificate_server_set_request(s, GNUTLS_CERT_IGNORE);
	gnutls_transport_set_int(s, c->cfd);
	gnutls_session_set_ptr(s, c);
	gnutls_handshake_set_timeout(s, 0);	/* our ev_timer does it */
	gnutls_handshake_set_hook_function(s, GNUTLS_HANDSHAKE_ANY,
	    GNUTLS_HOOK_BOTH, keyop_transcript_hook);
	keyop_transcript_reset(&c->tr);
	return 0;
}

/* SNI is the client's bytes: keep hostname characters only. */
static void
tls_sni_read(struct conn *c)
{
	char name[256];
	size_t len = sizeof(name), i, j;
	unsigned type;

	if (c->sni[0] != '\0')
		return;
	if (gnutls_server_name_get(c->session, name, &len, &type, 0) < 0 ||
	    type != GNUTLS_NAME_DNS)
		return;
	for (i = 0, j = 0; i < len && name[i] != '\0' && j < sizeof(c->sni) - 1; i++) {
		unsigned char ch = (unsigned char)name[i];

		c->sni[j++] = ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
		    ch == '_') ? (char)ch : '?';
	}
	c->sni[j] = '\0';
}

const char *
tls_version_name(const struct conn *c)
{
	const char *n;

	/* Before the ClientHello was processed GnuTLS reports a default. */
	if (c->session == NULL ||
	    (c->t_handshake <= 0 && c->tr.state == KEYOP_TR_IDLE))
		return "-";
	n = gnutls_protocol_get_name(gnutls_protocol_get_version(c->session));
	return n != NULL ? n : "-";
}

const char *
tls_cipher_name(const struct conn *c)
{
	const char *n;

	if (c->session == NULL || c->t_handshake <= 0)
		return "-";
	n = gnutls_ciphersuite_get(c->session);
	return n != NULL ? n : "-";
}

/* On the coroutine. */
static void
tls_handshake_call(void *arg)
{
	struct conn *c = arg;

	c->hs_ret = gnutls_handshake(c->session);
}

/* Back on the loop's stack with what gnutls_handshake() returned. */
static void
tls_handshake_done(void *arg)
{
	struct conn *c = arg;
	struct worker *w = c->w;
	int r = c->hs_ret;

	c->in_coro = 0;
	c->keyop = NULL;
	if (c->close_pending) {
		w->stats.handshakes_failed++;
		worker_conn_close(c, "handshake aborted");
		return;
	}
	tls_sni_read(c);

	if (r == 0) {
		c->t_handshake = ev_time();
		if (gnutls_protocol_get_version(c->session) == GNUTLS_TLS1_3)
			w->stats.handshakes_ok_tls13++;
		else
			w->stats.handshakes_ok_tls12++;
		keyop_transcript_reset(&c->tr);
		c->tr.state = KEYOP_TR_DONE;
		log_debug("%s: %s: %s %s sni=%s in %.1f ms", __func__, c->peer,
		    tls_version_name(c), tls_cipher_name(c),
		    c->sni[0] != '\0' ? c->sni : "-",
		    (c->t_handshake - c->t_start) * 1000.);
		proxy_connect(c);
		return;
	}
	if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
		conn_client_watch(c, gnutls_record_get_direction(c->session) ?
		    EV_WRITE : EV_READ);
		return;
	}
	if (!gnutls_error_is_fatal(r)) {
		/* A warning alert mid-handshake: log it and carry on. */
		if (r == GNUTLS_E_WARNING_ALERT_RECEIVED)
			log_debug("%s: %s: warning alert %s during handshake",
			    __func__, c->peer, gnutls_alert_get_name(
			    gnutls_alert_get(c->session)));
		conn_client_watch(c, EV_READ);
		ev_feed_event(w->loop, &c->cio, EV_READ);
		return;
	}

	w->stats.handshakes_failed++;
	/* Best effort: tell the client why, if it is still there. */
	(void)gnutls_alert_send_appropriate(c->session, r);
	if (r == GNUTLS_E_FATAL_ALERT_RECEIVED)
		worker_conn_close(c, "handshake failed: client sent alert %s",
		    gnutls_alert_get_name(gnutls_alert_get(c->session)));
	else
		worker_conn_close(c, "handshake failed: %s", gnutls_strerror(r));
}

/*
 * Drive the handshake one step (the client fd is ready, or a renegotiation
 * begins).  The caller must not touch c afterwards: it may be closed.
 */
void
tls_handshake_step(struct conn *c)
{
	int r;

	if (c->in_coro)
		return;
	c->in_coro = 1;
	r = coro_run(tls_handshake_call, tls_handshake_done, c);
	if (r == 1) {
		/* Waiting for keyd: nothing may touch the session meanwhile. */
		conn_client_watch(c, 0);
		return;
	}
	if (r < 0) {
		c->in_coro = 0;
		c->w->stats.handshakes_failed++;
		worker_conn_close(c, "handshake failed: no coroutine stack");
	}
}

/*
 * Send a queued alert.  An alert must not be started while a record send
 * is half done: GnuTLS would only flush the old record and report success.
 * Returns 0 when nothing is left, GNUTLS_E_AGAIN, or a fatal code.
 */
int
tls_alert_flush(struct conn *c)
{
	int r;

	if (!(c->flags & CF_ALERT_PENDING))
		return 0;
	if (c->tls_send_len > 0)
		return GNUTLS_E_AGAIN;
	r = gnutls_alert_send(c->session, GNUTLS_AL_WARNING,
	    (gnutls_alert_description_t)c->alert);
	if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
		return GNUTLS_E_AGAIN;	/* queued inside GnuTLS: call again */
	c->flags &= ~CF_ALERT_PENDING;
	return r < 0 ? r : 0;
}

/*
 * A record-layer event that is not application data, from
 * gnutls_record_recv() while proxying.  Returns 0 to go on or a negative
 * GnuTLS code to end the connection (the caller logs it).
 *
 * The seam for the renegotiation policy: worker_reneg.c takes over both
 * cases -- a ClientHello (GNUTLS_E_REHANDSHAKE) that the policy may allow,
 * which then runs tls_handshake_step() on the established connection, and
 * the client's no_renegotiation answer to our own HelloRequest.
 */
int
tls_record_event(struct conn *c, int ret)
{
	gnutls_alert_description_t a;

	switch (ret) {
	case GNUTLS_E_REHANDSHAKE:
		c->w->stats.client_renegotiations_refused++;
		log_info("%s: %s: client-initiated renegotiation refused",
		    __func__, c->peer);
		c->alert = GNUTLS_A_NO_RENEGOTIATION;
		c->flags |= CF_ALERT_PENDING | CF_RENEG_REFUSED;
		return 0;
	case GNUTLS_E_UNEXPECTED_PACKET:
		/*
		 * GnuTLS parked the refused ClientHello in its record buffer;
		 * the next read discards it with this code (lib/buffers.c
		 * _gnutls_record_buffer_get()).  Expected once per refusal.
		 */
		if (c->flags & CF_RENEG_REFUSED) {
			c->flags &= ~CF_RENEG_REFUSED;
			return 0;
		}
		return ret;
	case GNUTLS_E_WARNING_ALERT_RECEIVED:
		a = gnutls_alert_get(c->session);
		log_debug("%s: %s: warning alert %s", __func__, c->peer,
		    gnutls_alert_get_name(a));
		return 0;
	default:
		return ret;
	}
}
