/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * btls.c -- the backend's transport: send()/recv() on a plain backend,
 * and with backend-tls a GnuTLS client session on the backend socket.
 *
 * The session's certificate is verified against the frontend's backend-ca
 * (read at start-up from the master's sealed copy, fe->backend_ca_fd: a
 * worker opens no path) for backend-name, which is also sent as SNI when
 * it is a DNS name (RFC 6066 allows no address there).  The handshake is
 * a step of the pump (proxy.c) after the connect: no key operation is
 * made, so it needs no coroutine.  A PROXY header the pump queued before
 * it (pphdr.c) goes out in the clear first, as HAProxy's send-proxy does
 * with ssl.
 *
 * How the backend's end maps onto the pump's (proxy.c's header): its
 * close_notify is the backend's normal EOF; a TCP close without one, a
 * failed handshake, a bad record or a fatal alert is a backend error, so
 * the client's end is unclean.  Our close_notify goes to the backend only
 * when the client sent its own (or a drain ends the stream): a client that
 * vanished is passed on as a bare TCP close, so the backend can tell.
 *
 * The GnuTLS rules of proxy.c hold here too: a record send that said
 * GNUTLS_E_AGAIN is repeated with the same length before anything else
 * (bt->send_len); a read that must write says BIO_AGAIN_WR; the pump
 * reads until BIO_AGAIN, so nothing decrypted is stranded.  A backend's
 * HelloRequest is ignored: a client may (RFC 5246 7.4.1.1), and moat never
 * renegotiates a backend session.  Client certificates towards the
 * backend (a key in keyd) are not supported yet.
 */
#include "config.h"

#include <sys/socket.h>

#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "conf.h"
#include "log.h"
#include "state.h"
#include "btls.h"

#define BTLS_MAGIC	0x42544c53u	/* "BTLS" */

/* One connection's backend session. */
struct btls {
	unsigned		magic;
	gnutls_session_t	s;	/* GNUTLS_CLIENT: only this file sees it */
	size_t			clear;	/* c2b bytes to send before the handshake */
	size_t			send_len; /* a record send said GNUTLS_E_AGAIN */
	int			ready;	/* handshake done */
	int			bye_sent;
	char			why[REASON_MAX];
};

/* The frontend's trust list, from the master's copy of its backend-ca. */
int
btls_frontend_init(struct worker_frontend *wf)
{
	const struct frontend *fe = wf->fe;
	gnutls_datum_t pem = { NULL, 0 };
	int r;

	wf->bcred = NULL;
	if (!fe->backend_tls)
		return 0;
	if (fe->backend_ca_fd < 0) {
		log_warnx("%s: frontend %s: no backend-ca descriptor", __func__,
		    fe->name);
		return -EBADF;
	}
	r = config_cert_read(fe->backend_ca_fd, &pem);
	close(fe->backend_ca_fd);
	if (r < 0) {
		log_warnx("%s: frontend %s: backend-ca: %s", __func__, fe->name,
		    strerror(-r));
		return r;
	}
	if ((r = gnutls_certificate_allocate_credentials(&wf->bcred)) < 0)
		goto fail;
	r = gnutls_certificate_set_x509_trust_mem(wf->bcred, &pem,
	    GNUTLS_X509_FMT_PEM);
	if (r == 0)
		r = GNUTLS_E_NO_CERTIFICATE_FOUND;
	if (r < 0)
		goto fail;
	gnutls_free(pem.data);
	return 0;
fail:
	log_warnx("%s: frontend %s: backend-ca: %s", __func__, fe->name,
	    gnutls_strerror(r));
	gnutls_free(pem.data);
	btls_frontend_free(wf);
	return -EINVAL;
}

void
btls_frontend_free(struct worker_frontend *wf)
{
	if (wf->bcred != NULL)
		gnutls_certificate_free_credentials(wf->bcred);
	wf->bcred = NULL;
}

/* Is the name an address?  Then it is verified but not sent as SNI. */
static int
btls_name_is_addr(const char *name)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, name, buf) == 1 ||
	    inet_pton(AF_INET6, name, buf) == 1;
}

/*
 * The backend is connected (c->bfd) and the pump's buffers exist: with
 * backend-tls, make its session.  What c2b holds now (the PROXY header)
 * goes out in the clear before the handshake.  0, or a negative errno.
 */
int
btls_start(struct conn *c)
{
	const struct frontend *fe = c->wf->fe;
	struct btls *bt;
	const char *name = fe->backend_name;
	int r;

	if (!fe->backend_tls)
		return 0;
	if (c->wf->bcred == NULL || c->bt != NULL)
		return -EINVAL;
	if ((bt = calloc(1, sizeof(*bt))) == NULL)
		return -ENOMEM;
	bt->magic = BTLS_MAGIC;
	if ((r = gnutls_init(&bt->s, GNUTLS_CLIENT | GNUTLS_NONBLOCK |
	    GNUTLS_NO_SIGNAL)) < 0) {
		free(bt);
		return -ENOMEM;
	}
	c->bt = bt;
	if ((r = gnutls_set_default_priority(bt->s)) < 0 ||
	    (r = gnutls_credentials_set(bt->s, GNUTLS_CRD_CERTIFICATE,
	    c->wf->bcred)) < 0 || (!btls_name_is_addr(name) &&
	    (r = gnutls_server_name_set(bt->s, GNUTLS_NAME_DNS, name,
	    strlen(name))) < 0)) {
		log_warnx("%s: %s", __func__, gnutls_strerror(r));
		return -EINVAL;
	}
	gnutls_session_set_verify_cert(bt->s, name, 0);
	gnutls_handshake_set_timeout(bt->s, 0);	/* the pump's idle timer */
	gnutls_transport_set_int(bt->s, c->bfd);
	gnutls_session_set_ptr(bt->s, bt);	/* never c: hello.c checks */
	bt->clear = c->c2b.tail - c->c2b.head;
	return 0;
}

/* May the pump move data to and from the backend? */
int
btls_ready(const struct conn *c)
{
	return c->bt == NULL || c->bt->ready;
}

/* Why the handshake failed, for the connection's line. */
static const char *
btls_why(struct conn *c, int r)
{
	struct btls *bt = c->bt;
	unsigned st;

	if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
		st = gnutls_session_get_verify_cert_status(bt->s);
		snprintf(bt->why, sizeof(bt->why), "certificate not trusted:%s%s"
		    "%.96s%s%s%s", (st & GNUTLS_CERT_SIGNER_NOT_FOUND) ?
		    " issuer unknown" : "", (st & GNUTLS_CERT_UNEXPECTED_OWNER) ?
		    " not for " : "", (st & GNUTLS_CERT_UNEXPECTED_OWNER) ?
		    c->wf->fe->backend_name : "", (st & GNUTLS_CERT_EXPIRED) ?
		    " expired" : "", (st & GNUTLS_CERT_NOT_ACTIVATED) ?
		    " not yet valid" : "", (st & (GNUTLS_CERT_SIGNATURE_FAILURE |
		    GNUTLS_CERT_INSECURE_ALGORITHM | GNUTLS_CERT_REVOKED)) ?
		    " bad signature or revoked" : "");
	} else if (r == GNUTLS_E_FATAL_ALERT_RECEIVED)
		snprintf(bt->why, sizeof(bt->why), "alert %s",
		    gnutls_alert_get_name(gnutls_alert_get(bt->s)));
	else if (r == GNUTLS_E_PREMATURE_TERMINATION)
		snprintf(bt->why, sizeof(bt->why), "closed without close_notify");
	else
		snprintf(bt->why, sizeof(bt->why), "%s", gnutls_strerror(r));
	return bt->why;
}

/*
 * One step of the backend's handshake: 0 when it is done, BIO_AGAIN /
 * BIO_AGAIN_WR to wait, BIO_FAILED with *why.  The clear-text prefix is
 * sent from c2b first (the pump counts it as sent to the backend).
 */
int
btls_handshake(struct conn *c, const char **why)
{
	struct btls *bt = c->bt;
	ssize_t n;
	int r;

	while (bt->clear > 0) {
		n = send(c->bfd, c->c2b.data + c->c2b.head, bt->clear,
		    MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return BIO_AGAIN_WR;
		if (n <= 0) {
			*why = n < 0 ? strerror(errno) : "short send";
			return BIO_FAILED;
		}
		c->c2b.head += (size_t)n;
		c->bytes_c2b += (uint64_t)n;
		WORKER_COUNT(c, bytes_client_to_backend, (uint64_t)n);
		bt->clear -= (size_t)n;
	}
	for (;;) {
		r = gnutls_handshake(bt->s);
		if (r == 0) {
			bt->ready = 1;
			return 0;
		}
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
			return gnutls_record_get_direction(bt->s) ?
			    BIO_AGAIN_WR : BIO_AGAIN;
		if (gnutls_error_is_fatal(r)) {
			/* bad_certificate and friends: best effort */
			(void)gnutls_alert_send_appropriate(bt->s, r);
			*why = btls_why(c, r);
			return BIO_FAILED;
		}
		/* a warning alert: the handshake goes on */
	}
}

ssize_t
btls_send(struct conn *c, const uint8_t *p, size_t len, const char **why)
{
	struct btls *bt = c->bt;
	ssize_t n;

	if (bt == NULL) {
		for (;;) {
			n = send(c->bfd, p, len, MSG_NOSIGNAL);
			if (n > 0)
				return n;
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				return BIO_AGAIN;
			*why = n < 0 ? strerror(errno) : "short send";
			return BIO_FAILED;
		}
	}
	if (bt->send_len > 0)
		len = bt->send_len;	/* the very send that said AGAIN */
	n = gnutls_record_send(bt->s, p, len);
	if (n > 0) {
		bt->send_len = 0;
		return n;
	}
	if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
		bt->send_len = len;
		return BIO_AGAIN;
	}
	*why = btls_why(c, (int)n);
	return BIO_FAILED;
}

/* > 0 bytes, 0 the backend's normal end, or BIO_*. */
ssize_t
btls_recv(struct conn *c, uint8_t *p, size_t len, const char **why)
{
	struct btls *bt = c->bt;
	ssize_t n;

	for (;;) {
		if (bt == NULL) {
			n = recv(c->bfd, p, len, 0);
			if (n >= 0)
				return n;
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return BIO_AGAIN;
			*why = strerror(errno);
			return BIO_FAILED;
		}
		n = gnutls_record_recv(bt->s, p, len);
		if (n >= 0)
			return n;	/* 0: its close_notify */
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			return gnutls_record_get_direction(bt->s) ?
			    BIO_AGAIN_WR : BIO_AGAIN;
		if (n == GNUTLS_E_REHANDSHAKE || !gnutls_error_is_fatal((int)n))
			continue;	/* a HelloRequest, a warning alert */
		*why = btls_why(c, (int)n);
		return BIO_FAILED;
	}
}

/*
 * The backend's write side ends (c2b is flushed and no send is pending):
 * with notify our close_notify first.  0, or BIO_AGAIN to wait for
 * writable.  A close_notify that cannot go out is given up: the TCP
 * shutdown still ends the stream, and the backend reads it as unclean.
 */
int
btls_shutdown(struct conn *c, int notify)
{
	struct btls *bt = c->bt;
	int r;

	if (bt != NULL && bt->ready && notify && !bt->bye_sent) {
		r = gnutls_bye(bt->s, GNUTLS_SHUT_WR);
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
			return BIO_AGAIN;
		bt->bye_sent = 1;
	}
	/* ENOTCONN: the backend is gone already; its EOF will tell. */
	(void)shutdown(c->bfd, SHUT_WR);
	return 0;
}

void
btls_free(struct conn *c)
{
	struct btls *bt = c->bt;

	if (bt == NULL)
		return;
	if (bt->magic != BTLS_MAGIC)
		fatalx("%s: bad backend session", __func__);
	if (bt->s != NULL)
		gnutls_deinit(bt->s);
	bt->magic = 0;
	free(bt);
	c->bt = NULL;
}
