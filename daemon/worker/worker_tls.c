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
 * same pair drives renegotiation handshakes of an established connection
 * (worker_reneg.c takes the result).
 *
 * Credentials.  Each frontend's chain and keyd-backed key form one
 * refcounted generation (struct worker_cred); a certificate rotation adds a
 * generation, sessions keep the one they handshook with until they end or
 * renegotiate onto the new one (worker_reneg.c).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/x509.h>

#include "conf.h"
#include "log.h"
#include "conn.h"
#include "worker_coro.h"
#include "worker_int.h"
#include "worker_keyop.h"

/*
 * Build the priority cache and the first generation of credentials from
 * the frontend's certificate file.  Runs before the privilege drop: no
 * file opens after it (rotations arrive as descriptors, tls_frontend_rotate()).
 */
int
tls_frontend_init(struct worker_frontend *wf)
{
	const struct frontend *fe = wf->fe;
	const char *prio = fe->priority[0] != '\0' ? fe->priority :
	    MOAT_DEFAULT_PRIORITY;
	const char *errpos = NULL;
	gnutls_datum_t pem = { NULL, 0 };
	int r;

	if ((r = gnutls_priority_init2(&wf->prio, prio, &errpos, 0)) < 0) {
		log_warnx("%s: frontend %s: priority \"%s\": %s at \"%s\"",
		    __func__, fe->name, prio, gnutls_strerror(r),
		    errpos != NULL ? errpos : "?");
		return r;
	}
	if ((r = gnutls_load_file(fe->cert, &pem)) < 0) {
		log_warnx("%s: frontend %s: %s: %s", __func__, fe->name,
		    fe->cert, gnutls_strerror(r));
		return r;
	}
	wf->cred = tls_cred_new(wf, &pem, fe->key_generation);
	gnutls_free(pem.data);
	return wf->cred != NULL ? 0 : GNUTLS_E_CERTIFICATE_ERROR;
}

/*
 * One generation of credentials: the chain from pem and a keyd-backed key
 * in slot IPC_KEY_SLOT(frontend, generation).  The key's algorithm and size
 * come from the certificate (keyd may not be there yet); keyd's key list,
 * when it comes, must agree (worker_keyop.c).  Returns it with one
 * reference (the caller's) and linked into the worker's list, or NULL.
 */
struct worker_cred *
tls_cred_new(struct worker_frontend *wf, const gnutls_datum_t *pem,
    unsigned generation)
{
	const struct frontend *fe = wf->fe;
	struct worker *w = wf->w;
	struct worker_cred *wc;
	gnutls_pcert_st pcert[WORKER_MAX_CHAIN];
	unsigned n = WORKER_MAX_CHAIN, bits = 0, i;
	int r;

	memset(pcert, 0, sizeof(pcert));
	if ((wc = calloc(1, sizeof(*wc))) == NULL) {
		log_warn("%s: calloc", __func__);
		return NULL;
	}
	wc->magic = WORKER_CRED_MAGIC;
	wc->refs = 1;
	wc->wf = wf;
	wc->generation = generation;

	r = gnutls_pcert_list_import_x509_raw(pcert, &n, pem,
	    GNUTLS_X509_FMT_PEM, 0);
	if (r < 0 || n == 0) {
		log_warnx("%s: frontend %s: %s: %s", __func__, fe->name,
		    fe->cert, r < 0 ? gnutls_strerror(r) : "no certificate");
		n = r < 0 ? 0 : n;
		goto fail;
	}
	if ((r = gnutls_pubkey_get_pk_algorithm(pcert[0].pubkey, &bits)) < 0) {
		log_warnx("%s: frontend %s: %s: unknown public key", __func__,
		    fe->name, fe->cert);
		goto fail;
	}
	wc->key.magic = KEYOP_KEY_MAGIC;
	wc->key.index = IPC_KEY_SLOT(fe->index, generation);
	wc->key.w = w;
	wc->key.allow_decrypt = fe->allow_rsa_kx;
	wc->key.cert_pk = r;
	wc->key.info.key_id = wc->key.index;
	wc->key.info.pk_algo = (uint32_t)r;
	wc->key.info.bits = bits;
	wc->key.info.nsign = 0;
	snprintf(wc->key.info.name, sizeof(wc->key.info.name), "%s", fe->name);

	if ((r = gnutls_certificate_allocate_credentials(&wc->cred)) < 0)
		goto fail;
	/*
	 * set_key() would sign a test string to match key and certificate;
	 * keyd refuses such input and the pair was checked when keyd loaded it.
	 */
	gnutls_certificate_set_flags(wc->cred,
	    GNUTLS_CERTIFICATE_SKIP_KEY_CERT_MATCH);
	if ((r = keyop_key_import(&wc->key)) < 0) {
		log_warnx("%s: frontend %s: import_ext4: %s", __func__,
		    fe->name, gnutls_strerror(r));
		goto fail;
	}
	r = gnutls_certificate_set_key(wc->cred, NULL, 0, pcert, (int)n,
	    wc->key.pkey);
	if (r < 0) {
		log_warnx("%s: frontend %s: set_key: %s", __func__, fe->name,
		    gnutls_strerror(r));
		gnutls_privkey_deinit(wc->key.pkey);
		goto fail;
	}
	/* The credentials own the chain and the key now. */
	wc->next = w->creds;
	if (w->creds != NULL)
		w->creds->prev = wc;
	w->creds = wc;
	return wc;

fail:
	for (i = 0; i < n; i++)
		gnutls_pcert_deinit(&pcert[i]);
	if (wc->cred != NULL)
		gnutls_certificate_free_credentials(wc->cred);
	free(wc);
	return NULL;
}

void
tls_cred_ref(struct worker_cred *wc)
{
	if (wc->magic != WORKER_CRED_MAGIC)
		fatalx("%s: bad cred", __func__);
	wc->refs++;
}

void
tls_cred_unref(struct worker_cred *wc)
{
	struct worker *w;

	if (wc == NULL)
		return;
	if (wc->magic != WORKER_CRED_MAGIC || wc->refs == 0)
		fatalx("%s: bad cred", __func__);
	if (--wc->refs > 0)
		return;
	w = wc->wf->w;
	if (wc->prev != NULL)
		wc->prev->next = wc->next;
	else
		w->creds = wc->next;
	if (wc->next != NULL)
		wc->next->prev = wc->prev;
	log_debug("%s: frontend %s: generation %u released", __func__,
	    wc->wf->fe->name, wc->generation);
	gnutls_certificate_free_credentials(wc->cred);	/* and the ext4 key */
	wc->magic = 0;
	free(wc);
}

/*
 * Certificate rotation (IPC_WORKER_CERT): the master opened the new chain
 * for us -- the worker cannot open files -- and keyd already holds the new
 * key in this generation's slot.  The fd is shared with the other workers,
 * so it is read with pread() from offset 0.  New handshakes use the new
 * credentials; sessions keep theirs until they end or renegotiate.
 */
int
tls_frontend_rotate(struct worker_frontend *wf, int fd, unsigned generation)
{
	gnutls_datum_t pem;
	struct worker_cred *wc;
	size_t len = 0;
	ssize_t n;
	uint8_t *buf;

	if ((buf = malloc(WORKER_CERT_MAX)) == NULL)
		return -ENOMEM;
	for (;;) {
		n = pread(fd, buf + len, WORKER_CERT_MAX - len, (off_t)len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			n = -errno;
			free(buf);
			return (int)n;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == WORKER_CERT_MAX) {
			free(buf);
			return -EFBIG;
		}
	}
	pem.data = buf;
	pem.size = (unsigned)len;
	wc = tls_cred_new(wf, &pem, generation);
	free(buf);
	if (wc == NULL)
		return -EINVAL;
	/* keyd loaded this slot before the master told us. */
	wc->key.available = 1;
	tls_cred_unref(wf->cred);
	wf->cred = wc;
	log_info("frontend %s: certificate generation %u in use for new "
	    "handshakes", wf->fe->name, generation);
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
	c->cred = wf->cred;
	tls_cred_ref(c->cred);
	if ((r = gnutls_priority_set(s, wf->prio)) < 0 ||
	    (r = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE,
	    c->cred->cred)) < 0) {
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

/*
 * Before a renegotiation handshake: move the session onto the frontend's
 * current credentials (a rotated certificate).  The old ones stay
 * referenced until that handshake has ended.
 */
int
tls_session_cred_switch(struct conn *c)
{
	struct worker_cred *cur = c->wf->cred;
	int r;

	if (c->cred == cur)
		return 0;
	r = gnutls_credentials_set(c->session, GNUTLS_CRD_CERTIFICATE, cur->cred);
	if (r < 0)
		return r;
	tls_cred_unref(c->cred_old);
	c->cred_old = c->cred;
	c->cred = cur;
	tls_cred_ref(cur);
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
		if (c->state == CONN_HANDSHAKE)
			w->stats.handshakes_failed++;
		worker_conn_close(c, "handshake aborted");
		return;
	}
	if (c->state == CONN_PROXY) {
		reneg_hs_done(c, r);	/* a renegotiation of a live connection */
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
