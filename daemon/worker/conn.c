/*
 * conn.c -- a client connection's lifecycle: creation at accept, event
 * dispatch by state, timeouts, and the one log line written when it closes.
 *
 * The close line (info level, key=value so tests and people can grep it):
 *
 *   conn client=ADDR:PORT frontend=NAME sni=NAME tls=VERSION cipher=SUITE
 *        handshake_ms=N c2b=BYTES b2c=BYTES duration_ms=N reason="WHY"
 *
 * "-" stands for what was never known (no SNI sent, handshake not done).
 * c2b counts plaintext bytes written to the backend, b2c plaintext bytes
 * handed to TLS for the client.  reason is the first cause recorded
 * (conn_why()): "client closed", "backend closed", "idle timeout",
 * "handshake timeout", "handshake failed: <GnuTLS error or keyd reason>",
 * "backend connect failed: <errno>", "backend connect timeout",
 * "client error: ...", "backend error: ...", "worker exiting", and the
 * renegotiation endings: "client refused renegotiation", "client ignored
 * renegotiation request", "renegotiation failed: ...", "renegotiation
 * handshake timeout".
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <gnutls/gnutls.h>

#include "conf.h"
#include "log.h"
#include "conn.h"
#include "worker_int.h"
#include "worker_keyop.h"

static void	conn_client_cb(struct ev_loop *loop, ev_io *io, int revents);
static void	conn_backend_cb(struct ev_loop *loop, ev_io *io, int revents);
static void	conn_timer_cb(struct ev_loop *loop, ev_timer *t, int revents);

static void
conn_peer_format(struct conn *c, const struct sockaddr *sa, socklen_t salen)
{
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;
	char a[INET6_ADDRSTRLEN];

	switch (sa->sa_family) {
	case AF_INET:
		if (salen < (socklen_t)sizeof(*sin))
			break;
		sin = (const struct sockaddr_in *)(const void *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
		snprintf(c->peer, sizeof(c->peer), "%s:%u", a,
		    (unsigned)ntohs(sin->sin_port));
		return;
	case AF_INET6:
		if (salen < (socklen_t)sizeof(*sin6))
			break;
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
		snprintf(c->peer, sizeof(c->peer), "[%s]:%u", a,
		    (unsigned)ntohs(sin6->sin6_port));
		return;
	case AF_UNIX:
		snprintf(c->peer, sizeof(c->peer), "unix");
		return;
	}
	snprintf(c->peer, sizeof(c->peer), "?");
}

/*
 * A new client connection on frontend wf.  Takes fd over; returns NULL if
 * the connection was closed straight away (its log line written).
 */
struct conn *
conn_new(struct worker_frontend *wf, int fd, const struct sockaddr *sa,
    socklen_t salen)
{
	struct worker *w = wf->w;
	struct conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("%s: calloc", __func__);
		close(fd);
		return NULL;
	}
	c->magic = CONN_MAGIC;
	c->w = w;
	c->wf = wf;
	c->state = CONN_HANDSHAKE;
	c->cfd = fd;
	c->bfd = -1;
	c->t_start = ev_time();
	conn_peer_format(c, sa, salen);
	ev_io_init(&c->cio, conn_client_cb, fd, EV_READ);
	ev_init(&c->bio, conn_backend_cb);
	ev_init(&c->timer, conn_timer_cb);
	reneg_conn_init(c);

	c->next = w->conns;
	if (w->conns != NULL)
		w->conns->prev = c;
	w->conns = c;
	worker_conn_added(w);

	if (tls_session_new(c) < 0) {
		worker_conn_close(c, "TLS session setup failed");
		return NULL;
	}
	conn_timer_once(c, wf->fe->handshake_timeout_ms);
	ev_io_start(w->loop, &c->cio);
	return c;
}

static void __attribute__((format(printf, 2, 0)))
conn_vwhy(struct conn *c, const char *fmt, va_list ap)
{
	if (c->why[0] != '\0' || fmt == NULL)
		return;
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
}

/* Record why the connection ends; the first cause wins. */
void
conn_why(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conn_vwhy(c, fmt, ap);
	va_end(ap);
}

static void
conn_log(struct conn *c)
{
	char hs[32];
	const char *ver = "-", *cipher = "-";
	ev_tstamp now = ev_time();

	if (c->session != NULL) {
		ver = tls_version_name(c);
		cipher = tls_cipher_name(c);
	}
	if (c->t_handshake > 0)
		snprintf(hs, sizeof(hs), "%ld",
		    (long)((c->t_handshake - c->t_start) * 1000. + 0.5));
	else
		snprintf(hs, sizeof(hs), "-");
	log_info("conn client=%s frontend=%s sni=%s tls=%s cipher=%s "
	    "handshake_ms=%s c2b=%llu b2c=%llu duration_ms=%ld reason=\"%s\"",
	    c->peer, c->wf->fe->name, c->sni[0] != '\0' ? c->sni : "-",
	    ver, cipher, hs, (unsigned long long)c->bytes_c2b,
	    (unsigned long long)c->bytes_b2c,
	    (long)((now - c->t_start) * 1000. + 0.5),
	    c->why[0] != '\0' ? c->why : "closed");
}

/*
 * End the connection: log its line and free everything.  If its handshake
 * is on a coroutine, the key operation it waits for is aborted first and
 * the close completes when the handshake has unwound (worker_tls.c calls
 * back here); the caller must not touch c afterwards either way.
 */
void
worker_conn_close(struct conn *c, const char *fmt, ...)
{
	struct worker *w = c->w;
	va_list ap;

	if (c->magic != CONN_MAGIC)
		fatalx("%s: bad conn", __func__);
	va_start(ap, fmt);
	conn_vwhy(c, fmt, ap);
	va_end(ap);
	if (c->state == CONN_CLOSED)
		return;

	if (c->in_coro) {
		c->close_pending = 1;
		ev_io_stop(w->loop, &c->cio);
		ev_io_stop(w->loop, &c->bio);
		ev_timer_stop(w->loop, &c->timer);
		reneg_conn_stop(c);
		if (c->keyop != NULL)
			keyop_req_abort(c->keyop, -ECANCELED);
		return;
	}

	/*
	 * An established connection we end (backend gone, idle, ...) gets a
	 * best-effort close_notify, so the client sees an orderly end; never
	 * while a record send is half done (it would go out first anyway).
	 */
	if (c->t_handshake > 0 && c->session != NULL && c->tls_send_len == 0 &&
	    c->ctl == 0 && c->reneg < RENEG_HS_WANTED &&
	    !(c->flags & (CF_BYE_SENT | CF_CLIENT_NO_NOTIFY)))
		(void)gnutls_bye(c->session, GNUTLS_SHUT_WR);

	c->state = CONN_CLOSED;
	conn_log(c);
	ev_io_stop(w->loop, &c->cio);
	ev_io_stop(w->loop, &c->bio);
	ev_timer_stop(w->loop, &c->timer);
	reneg_conn_stop(c);
	if (c->session != NULL)
		gnutls_deinit(c->session);
	c->session = NULL;
	tls_cred_unref(c->cred);
	tls_cred_unref(c->cred_old);
	c->cred = c->cred_old = NULL;
	keyop_transcript_reset(&c->tr);
	proxy_free(c);
	if (c->cfd >= 0)
		close(c->cfd);
	if (c->bfd >= 0)
		close(c->bfd);

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->magic = 0;
	free(c);
	worker_conn_removed(w);
}

/* A one-shot timeout (handshake, backend connect); 0 ms = none. */
void
conn_timer_once(struct conn *c, unsigned ms)
{
	ev_timer_stop(c->w->loop, &c->timer);
	if (ms == 0)
		return;
	ev_timer_set(&c->timer, ms / 1000., 0.);
	ev_timer_start(c->w->loop, &c->timer);
}

/* The idle timeout: restarted by conn_timer_touch() on traffic. */
void
conn_timer_idle(struct conn *c, unsigned ms)
{
	ev_timer_stop(c->w->loop, &c->timer);
	c->timer.repeat = ms / 1000.;
	if (ms > 0)
		ev_timer_again(c->w->loop, &c->timer);
}

void
conn_timer_touch(struct conn *c)
{
	if (c->state == CONN_PROXY && c->timer.repeat > 0.)
		ev_timer_again(c->w->loop, &c->timer);
}

static void
conn_watch(struct ev_loop *loop, ev_io *io, int fd, int events)
{
	if (events == 0) {
		ev_io_stop(loop, io);
		return;
	}
	if (ev_is_active(io) && io->fd == fd &&
	    (io->events & (EV_READ | EV_WRITE)) == events)
		return;
	ev_io_stop(loop, io);
	ev_io_set(io, fd, events);
	ev_io_start(loop, io);
}

void
conn_client_watch(struct conn *c, int events)
{
	conn_watch(c->w->loop, &c->cio, c->cfd, events);
}

void
conn_backend_watch(struct conn *c, int events)
{
	conn_watch(c->w->loop, &c->bio, c->bfd, events);
}

static void
conn_client_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct conn *c = container_of(io, struct conn, cio);

	if (c->magic != CONN_MAGIC)
		fatalx("%s: bad conn", __func__);
	if (c->in_coro)
		return;		/* the suspended handshake owns the session */
	switch (c->state) {
	case CONN_HANDSHAKE:
		tls_handshake_step(c);
		break;
	case CONN_PROXY:
		/* During a renegotiation handshake the client side is its. */
		if (c->reneg == RENEG_HANDSHAKE) {
			if (!(c->flags & CF_HS_APPDATA))
				tls_handshake_step(c);
			break;
		}
		proxy_client_event(c, revents);
		break;
	case CONN_CONNECTING:
	case CONN_CLOSED:
		ev_io_stop(loop, io);
		break;
	}
}

static void
conn_backend_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct conn *c = container_of(io, struct conn, bio);

	if (c->magic != CONN_MAGIC)
		fatalx("%s: bad conn", __func__);
	switch (c->state) {
	case CONN_CONNECTING:
		proxy_connected(c);
		break;
	case CONN_PROXY:
		proxy_backend_event(c, revents);
		break;
	case CONN_HANDSHAKE:
	case CONN_CLOSED:
		ev_io_stop(loop, io);
		break;
	}
}

static void
conn_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct conn *c = container_of(t, struct conn, timer);

	if (c->magic != CONN_MAGIC)
		fatalx("%s: bad conn", __func__);
	switch (c->state) {
	case CONN_HANDSHAKE:
		/* A suspended handshake counts itself when it unwinds. */
		if (!c->in_coro)
			c->w->stats.handshakes_failed++;
		worker_conn_close(c, "handshake timeout");
		break;
	case CONN_CONNECTING:
		c->w->stats.backend_errors++;
		worker_conn_close(c, "backend connect timeout");
		break;
	case CONN_PROXY:
		worker_conn_close(c, "idle timeout");
		break;
	case CONN_CLOSED:
		break;
	}
}
