/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tls.c -- GnuTLS in the worker: per-frontend priorities, server sessions,
 * and the non-blocking handshake driven on a coroutine.
 *
 * Handshake driving.  Every gnutls_handshake() call runs on a coroutine
 * (coro.h) because a key callback inside it may have to wait for keyd.
 * tls_handshake_step() starts the call: when it finishes at once the
 * result is returned; when a key callback parked it, TLS_HS_PARKED is, and
 * once keyd answered and the call returned the coroutine's end calls the
 * `finished` function conn.c gave, on the loop's stack.  Either way conn.c
 * hands the result to tls_handshake_verdict().  The coroutine's argument is
 * the connection's struct xkey_hs: what the key callbacks need, and no more.
 * While the call is parked the connection's client watcher is stopped
 * (conn.c), so nothing re-enters GnuTLS for that session.  The same pair
 * drives renegotiation handshakes of an established connection.
 *
 * Session resumption.  With tickets = yes every session gets the
 * frontend's ticket master key (daemon/master/master_tickets.c: where it
 * comes from, and how GnuTLS rotates the keys it derives from it) and
 * ticket-lifetime as its expiration, and GnuTLS issues TLS 1.2 tickets
 * (RFC 5077) and TLS 1.3 NewSessionTickets.  No session cache: a ticket
 * carries the state, so it resumes on whichever worker it reaches.  A TLS
 * 1.3 resumption must still run (EC)DHE: GnuTLS picks plain psk_ke only
 * when the priority lists a PSK key exchange (lib/ext/psk_ke_modes.c:
 * with none, and tickets on, psk_dhe_ke is the only mode it accepts), so
 * the config refuses a priority with one under tickets
 * (config_priority_plain_psk(), conf_check.c).  A resumed handshake makes
 * no key operation, so keyd sees nothing of it.  Each session holds a
 * copy of the key that gnutls_deinit() wipes (lib/state.c).
 *
 * A TLS 1.2 renegotiation is never a resumption: a client may offer a
 * ticket in the renegotiation's ClientHello (a GnuTLS client whose session
 * was resumed does), and an abbreviated handshake would keep the master
 * secret and show no new certificate, which is what a rekey and
 * rekey-on-cert-change are for.  So when a renegotiation's ClientHello
 * carries a ticket, the session moves, before GnuTLS reads that message,
 * to the same priority with %NO_TICKETS (gnutls_priority_set(3) allows that
 * before a re-handshake), under which GnuTLS ignores the ticket
 * (lib/ext/session_ticket.c) and makes a full handshake.  Only then: a
 * GnuTLS client that asked for a new ticket (an empty extension) after a
 * full first handshake still expects one in the renegotiation, and fails
 * the handshake without it.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <ev.h>
#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>

#include "conf.h"
#include "log.h"
#include "util.h"
#include "coro.h"
#include "cred.h"
#include "mtls.h"
#include "reason.h"
#include "reneg.h"
#include "state.h"
#include "transcript.h"
#include "xkey.h"
#include "tls.h"

/*
 * The frontend's priority cache and its ticket key (copied here; the
 * caller wipes its own); its certificate generations are cred.c's.  Runs
 * before the privilege drop.
 */
int
tls_frontend_init(struct worker_frontend *wf,
    const uint8_t ticket_key[CONFIG_TICKET_KEY_SIZE])
{
	const struct frontend *fe = wf->fe;
	const char *prio = fe->priority[0] != '\0' ? fe->priority :
	    MOAT_DEFAULT_PRIORITY;
	const char *errpos = NULL;
	char reneg[sizeof(fe->priority) + 16];
	int r;

	if ((r = gnutls_priority_init2(&wf->prio, prio, &errpos, 0)) < 0) {
		log_warnx("%s: frontend %s: priority \"%s\": %s at \"%s\"",
		    __func__, fe->name, prio, gnutls_strerror(r),
		    errpos != NULL ? errpos : "?");
		return r;
	}
	wf->tickets = fe->tickets;
	if (!wf->tickets)
		return 0;
	if ((size_t)snprintf(reneg, sizeof(reneg), "%s:%%NO_TICKETS", prio) >=
	    sizeof(reneg) ||
	    (r = gnutls_priority_init2(&wf->prio_reneg, reneg, NULL, 0)) < 0) {
		log_warnx("%s: frontend %s: the renegotiation priority",
		    __func__, fe->name);
		return GNUTLS_E_INVALID_REQUEST;
	}
	memcpy(wf->ticket_key, ticket_key, sizeof(wf->ticket_key));
	return 0;
}

/*
 * GnuTLS 3.7 hashes the ticket key into the first rotation key with a
 * SHA3 context on the stack (lib/stek.c) that it does not wipe, so a copy
 * of the key would stay in the stack below us until something happens to
 * overwrite it.  Wipe that much stack ourselves.
 */
static void __attribute__((noinline))
tls_stack_burn(void)
{
	unsigned char buf[16384];

	explicit_bzero(buf, sizeof(buf));
	__asm__ volatile("" : : "r"(buf) : "memory");
}

/* Tickets on this session, or none at all (see the top). */
static int
tls_session_tickets(struct conn *c)
{
	struct worker_frontend *wf = c->wf;
	gnutls_datum_t key = { wf->ticket_key, sizeof(wf->ticket_key) };
	int r;

	if (!wf->tickets)
		return 0;
	r = gnutls_session_ticket_enable_server(c->session, &key);
	tls_stack_burn();
	if (r < 0)
		return r;
	gnutls_db_set_cache_expiration(c->session,
	    (int)wf->fe->ticket_lifetime_s);
	return 0;
}

#define TLS_EXT_SESSION_TICKET	35	/* RFC 5077 */

/* gnutls_ext_raw_parse()'s callback: a ticket to resume with? */
static int
tls_ticket_offered(void *ctx, unsigned tls_id, const unsigned char *data,
    unsigned size)
{
	int *found = ctx;

	(void)data;
	if (tls_id == TLS_EXT_SESSION_TICKET && size > 0)
		*found = 1;
	return 0;
}

/*
 * A renegotiation's ClientHello, before GnuTLS reads it: no resumption
 * (see the top).  0, or a GnuTLS error that fails the handshake, since the
 * renegotiation must not go on as a resumption.
 */
static int
tls_reneg_no_resumption(struct conn *c, const gnutls_datum_t *msg)
{
	int found = 0, r;

	if (!c->wf->tickets || c->t_handshake <= 0)
		return 0;	/* no tickets, or the first handshake */
	if (gnutls_ext_raw_parse(&found, tls_ticket_offered, msg,
	    GNUTLS_EXT_RAW_FLAG_TLS_CLIENT_HELLO) < 0 || !found)
		return 0;	/* GnuTLS refuses a malformed one itself */
	if ((r = gnutls_priority_set(c->session, c->wf->prio_reneg)) < 0) {
		log_warnx("%s: %s: %s", __func__, c->peer, gnutls_strerror(r));
		return r;
	}
	log_debug("%s: %s: the renegotiation offers a ticket: a full "
	    "handshake", __func__, c->peer);
	return 0;
}

/*
 * Every handshake message, into the connection's TLS 1.3 transcript; and
 * a renegotiation's ClientHello, before it is read.
 */
static int
tls_transcript_hook(gnutls_session_t session, unsigned htype, unsigned when,
    unsigned incoming, const gnutls_datum_t *msg)
{
	struct conn *c = gnutls_session_get_ptr(session);
	struct transcript_session ts;
	int r;

	if (c == NULL || c->magic != CONN_MAGIC)
		return 0;
	if (incoming && when == GNUTLS_HOOK_PRE &&
	    htype == GNUTLS_HANDSHAKE_CLIENT_HELLO &&
	    (r = tls_reneg_no_resumption(c, msg)) < 0)
		return r;
	ts.tls13 = gnutls_protocol_get_version(session) == GNUTLS_TLS1_3;
	ts.prf = gnutls_prf_hash_get(session);
	transcript_message(&c->tr, htype, when, incoming, msg->data, msg->size,
	    &ts);
	return 0;
}

/*
 * The frontend's ALPN protocols.  The server's order wins
 * (GNUTLS_ALPN_SERVER_PRECEDENCE): the operator lists what the backend
 * serves best first (h2 before http/1.1), and a client's order says only
 * what it can speak; nginx and HAProxy choose the same way.
 */
static int
tls_alpn_set(struct conn *c)
{
	const struct frontend *fe = c->wf->fe;
	gnutls_datum_t p[CONFIG_ALPN_MAX];
	unsigned i;

	if (fe->nalpn == 0)
		return 0;
	for (i = 0; i < fe->nalpn && i < CONFIG_ALPN_MAX; i++) {
		p[i].data = (unsigned char *)(uintptr_t)fe->alpn[i];
		p[i].size = (unsigned)strlen(fe->alpn[i]);
	}
	return gnutls_alpn_set_protocols(c->session, p, i,
	    GNUTLS_ALPN_SERVER_PRECEDENCE);
}

/* After the handshake: the protocol ALPN chose, printable, into c->alpn. */
void
tls_alpn_note(struct conn *c)
{
	gnutls_datum_t d;
	unsigned i;

	c->alpn[0] = '\0';
	if (c->session == NULL ||
	    gnutls_alpn_get_selected_protocol(c->session, &d) < 0 ||
	    d.size == 0 || d.size >= sizeof(c->alpn))
		return;
	for (i = 0; i < d.size; i++)
		c->alpn[i] = d.data[i] > ' ' && d.data[i] <= '~' ?
		    (char)d.data[i] : '?';
	c->alpn[d.size] = '\0';
}

int
tls_session_new(struct conn *c)
{
	struct worker_frontend *wf = c->wf;
	gnutls_session_t s;
	int r;

	r = gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL |
	    (wf->tickets ? 0 : GNUTLS_NO_TICKETS));
	if (r < 0) {
		log_warnx("%s: gnutls_init: %s", __func__, gnutls_strerror(r));
		return r;
	}
	c->session = s;
	c->cred = wf->cred;
	cred_ref(c->cred);
	if ((r = gnutls_priority_set(s, wf->prio)) < 0 ||
	    (r = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE,
	    c->cred->cred)) < 0 || (r = tls_session_tickets(c)) < 0) {
		log_warnx("%s: %s", __func__, gnutls_strerror(r));
		return r;
	}
	if ((r = tls_alpn_set(c)) < 0) {
		log_warnx("%s: ALPN: %s", __func__, gnutls_strerror(r));
		return r;
	}
	mtls_session_setup(c);		/* verify = */
	gnutls_transport_set_int(s, c->cfd);
	gnutls_session_set_ptr(s, c);
	gnutls_handshake_set_timeout(s, 0);	/* conn.c's ev_timer does it */
	gnutls_handshake_set_hook_function(s, GNUTLS_HANDSHAKE_ANY,
	    GNUTLS_HOOK_BOTH, tls_transcript_hook);
	transcript_reset(&c->tr);
	c->hs.magic = XKEY_HS_MAGIC;
	c->hs.session = s;
	c->hs.tr = &c->tr;
	c->hs.why = &c->why;
	c->hs.peer = c->peer;
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
	cred_unref(c->cred_old);
	c->cred_old = c->cred;
	c->cred = cur;
	cred_ref(cur);
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
	    (c->t_handshake <= 0 && c->tr.state == TRANSCRIPT_IDLE))
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
	struct conn *c = container_of(arg, struct conn, hs);

	c->hs_ret = gnutls_handshake(c->session);
}

/* The coroutine ended; on the loop's stack. */
static void
tls_handshake_resumed(void *arg)
{
	struct conn *c = container_of(arg, struct conn, hs);

	c->in_coro = 0;
	c->hs.pending = NULL;
	if (c->hs_inline)
		return;		/* tls_handshake_step() returns the result */
	c->hs_finished(c);
}

/*
 * Drive the handshake one step (the client fd is ready, or a renegotiation
 * begins).  Returns what gnutls_handshake() said, TLS_HS_PARKED when a key
 * operation waits for keyd (finished(c) runs once the call returned), or
 * -ENOMEM when no coroutine stack could be had.
 */
int
tls_handshake_step(struct conn *c, void (*finished)(struct conn *))
{
	int r;

	if (c->in_coro)
		fatalx("%s: %s: a handshake call is running", __func__, c->peer);
	c->in_coro = 1;
	c->hs_inline = 1;
	c->hs_finished = finished;
	r = coro_run(tls_handshake_call, tls_handshake_resumed, &c->hs);
	c->hs_inline = 0;
	if (r == 1)
		return TLS_HS_PARKED;
	c->in_coro = 0;
	if (r < 0)
		return -ENOMEM;
	return c->hs_ret;
}

/*
 * What gnutls_handshake()'s result r means for the connection: the first
 * handshake (counted in the stats) or a renegotiation (reneg).  A failure
 * sends the client the alert GnuTLS names, and says why in c->why.
 */
enum tls_verdict
tls_handshake_verdict(struct conn *c, int r, int reneg)
{
	const char *what = reneg ? "renegotiation failed" : "handshake failed";
	char mwhy[192];

	if (!reneg)
		tls_sni_read(c);
	if (r == 0) {
		transcript_done(&c->tr);
		if (reneg)
			return TLS_DONE;
		mtls_note(c);
		c->t_handshake = ev_time();
		/* a ticket, no signature: keyd_signs does not move */
		c->resumed = gnutls_session_is_resumed(c->session) != 0;
		if (c->resumed)
			WORKER_COUNT(c, handshakes_resumed, 1);
		if (gnutls_protocol_get_version(c->session) == GNUTLS_TLS1_3)
			WORKER_COUNT(c, handshakes_ok_tls13, 1);
		else
			WORKER_COUNT(c, handshakes_ok_tls12, 1);
		/* group: the (EC)DHE of the handshake, resumed ones too */
		log_debug("%s: %s: %s %s sni=%s resumed=%s group=%s in %.1f ms",
		    __func__, c->peer, tls_version_name(c), tls_cipher_name(c),
		    c->sni[0] != '\0' ? c->sni : "-", c->resumed ? "yes" : "no",
		    gnutls_group_get(c->session) != 0 ? gnutls_group_get_name(
		    gnutls_group_get(c->session)) : "-",
		    (c->t_handshake - c->t_start) * 1000.);
		return TLS_DONE;
	}
	if (r == -ENOMEM) {
		if (!reneg)
			WORKER_COUNT(c, handshakes_failed, 1);
		reason_set(&c->why, "%s: no coroutine stack", what);
		return TLS_FAILED;
	}
	if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
		return gnutls_record_get_direction(c->session) ?
		    TLS_WANT_WRITE : TLS_WANT_READ;
	if (reneg && r == GNUTLS_E_GOT_APPLICATION_DATA)
		return TLS_APPDATA;
	if (!gnutls_error_is_fatal(r)) {
		/* A warning alert mid-handshake: log it and carry on. */
		if (r == GNUTLS_E_WARNING_ALERT_RECEIVED)
			log_debug("%s: %s: warning alert %s during handshake",
			    __func__, c->peer, gnutls_alert_get_name(
			    gnutls_alert_get(c->session)));
		return TLS_RETRY;
	}
	if (!reneg)
		WORKER_COUNT(c, handshakes_failed, 1);
	/* Best effort: tell the client why, if it is still there. */
	if (mtls_failure(c, r, mwhy, sizeof(mwhy))) {
		reason_set(&c->why, "%s: %s", what, mwhy);
		return TLS_FAILED;
	}
	(void)gnutls_alert_send_appropriate(c->session, r);
	if (r == GNUTLS_E_FATAL_ALERT_RECEIVED)
		reason_set(&c->why, "%s: client sent alert %s", what,
		    gnutls_alert_get_name(gnutls_alert_get(c->session)));
	else
		reason_set(&c->why, "%s: %s", what, gnutls_strerror(r));
	return TLS_FAILED;
}

/* What the renegotiation machine is told of this connection now. */
void
tls_reneg_in(const struct conn *c, struct reneg_in *in)
{
	static uint64_t x;	/* xorshift64: spreading timers needs no more */

	if (x == 0 && (gnutls_rnd(GNUTLS_RND_NONCE, &x, sizeof(x)) < 0 ||
	    x == 0))
		x = (uint64_t)(uintptr_t)c ^ 0x9e3779b97f4a7c15u;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	memset(in, 0, sizeof(*in));
	in->jitter = (double)(x >> 11) / 9007199254740992.0;	/* [0, 1) */
	in->now = ev_now(c->w->loop);
	in->bytes = c->bytes_c2b + c->bytes_b2c;
	in->tls13 = gnutls_protocol_get_version(c->session) == GNUTLS_TLS1_3;
	in->safe = gnutls_safe_renegotiation_status(c->session) != 0;
	in->closing = (c->flags & (CF_CLIENT_EOF | CF_BACKEND_EOF |
	    CF_BYE_SENT | CF_FLUSH_END)) != 0;
	in->peer = c->peer;
	in->stats = &c->w->stats;
	in->refusal_log = &c->w->refusal_log;
}
