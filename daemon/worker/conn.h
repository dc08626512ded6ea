/*
 * conn.h -- one client connection in a worker: its TLS session, its
 * backend socket, the two bounded buffers between them, and the libev
 * watchers embedded here (container_of gets from a watcher back to its conn).
 *
 * Lifecycle: CONN_HANDSHAKE (gnutls_handshake() driven on a coroutine,
 * handshake timeout) -> CONN_CONNECTING (non-blocking connect to the
 * backend, connect timeout) -> CONN_PROXY (two-way pump, idle timeout)
 * -> freed by worker_conn_close(), which writes the connection's one log
 * line.  A conn whose handshake is suspended waiting for keyd is never
 * freed under the coroutine: worker_conn_close() aborts the key operation,
 * lets the handshake unwind, and frees it when the coroutine is back.
 */
#ifndef MOAT_CONN_H
#define MOAT_CONN_H

#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <gnutls/gnutls.h>

#include "worker_keyop.h"

#define CONN_MAGIC		0x436f6e6eu	/* "Conn" */
#define CONN_BUF_SIZE		(16u * 1024u)	/* per direction */
#define CONN_WHY_MAX		192u

#ifndef container_of
#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#endif

enum conn_state {
	CONN_HANDSHAKE = 0,
	CONN_CONNECTING,
	CONN_PROXY,
	CONN_CLOSED,
};

/* Pump state bits (struct conn.flags). */
#define CF_CLIENT_EOF		0x0001u	/* close_notify or EOF from the client */
#define CF_BACKEND_EOF		0x0002u	/* EOF from the backend */
#define CF_BACKEND_SHUT		0x0004u	/* shutdown(backend, SHUT_WR) done */
#define CF_BYE_SENT		0x0008u	/* our close_notify went out */
#define CF_TLS_RD_BLOCKED	0x0010u	/* record_recv: wait for readable */
#define CF_TLS_RD_WANTS_WR	0x0020u	/* record_recv: wait for writable */
#define CF_TLS_WR_BLOCKED	0x0040u	/* record_send / bye: wait for writable */
#define CF_BE_RD_BLOCKED	0x0080u
#define CF_BE_WR_BLOCKED	0x0100u
#define CF_CLIENT_NO_NOTIFY	0x0200u	/* client closed without close_notify */
#define CF_RENEG_REFUSED	0x0800u	/* GnuTLS still holds the refused ClientHello */
#define CF_HS_APPDATA		0x1000u	/* renegotiation handshake got app data */
#define CF_RENEG_UNSAFE		0x2000u	/* no RFC 5746: never renegotiate */

/*
 * Control messages queued for the client (struct conn.ctl); sent by
 * reneg_ctl_flush() only when no record send is half done, and retried
 * after GNUTLS_E_AGAIN before any data is sent (GnuTLS keeps one send
 * buffer: a record_send after an unfinished control send would only flush
 * the control message and report the data as sent).
 */
#define CTL_ALERT		0x1u	/* warning alert struct conn.alert */
#define CTL_HELLO_REQUEST	0x2u	/* gnutls_rehandshake() (TLS 1.2) */
#define CTL_KEY_UPDATE		0x4u	/* gnutls_session_key_update(KU_PEER) */

/* Renegotiation of an established connection (worker_reneg.c). */
enum reneg_state {
	RENEG_IDLE = 0,
	RENEG_QUEUED,		/* HelloRequest or KeyUpdate waits in ctl */
	RENEG_WAIT_ANSWER,	/* HelloRequest sent: ClientHello, alert or nothing */
	RENEG_HS_WANTED,	/* ClientHello in: handshake once sends are done */
	RENEG_HANDSHAKE,	/* the new handshake runs on a coroutine */
};

/* A bounded byte queue: data[head..tail) is waiting to be written. */
struct conn_buf {
	uint8_t		*data;		/* CONN_BUF_SIZE bytes, from proxy start */
	size_t		head;
	size_t		tail;
};

struct worker;
struct worker_frontend;
struct worker_cred;

struct conn {
	unsigned		magic;
	struct worker		*w;
	struct worker_frontend	*wf;
	struct conn		*prev, *next;	/* worker's live list */
	enum conn_state		state;
	int			cfd;		/* client */
	int			bfd;		/* backend, -1 before connect */
	ev_io			cio;
	ev_io			bio;
	ev_timer		timer;		/* handshake / connect / idle */
	gnutls_session_t	session;
	struct worker_cred	*cred;		/* the session's credentials (ref) */
	struct worker_cred	*cred_old;	/* until a renegotiation onto cred ends */
	char			peer[64];	/* client address:port */
	char			sni[128];	/* sanitised */
	ev_tstamp		t_start;	/* accepted */
	ev_tstamp		t_handshake;	/* handshake done */

	/* the handshake call runs on a coroutine (worker_coro.h) */
	int			in_coro;	/* running or suspended */
	int			hs_ret;		/* what gnutls_handshake() said */
	int			close_pending;	/* close once the coroutine is back */
	struct keyop_req	*keyop;		/* the key operation it waits for */
	struct keyop_transcript	tr;

	char			why[CONN_WHY_MAX];	/* why it closed, first cause wins */

	/* proxying (worker_proxy.c) */
	struct conn_buf		c2b;		/* client -> backend plaintext */
	struct conn_buf		b2c;		/* backend -> client plaintext */
	size_t			tls_send_len;	/* record_send in progress (GNUTLS_E_AGAIN) */
	unsigned		flags;		/* CF_* */
	unsigned		ctl;		/* CTL_* control messages queued */
	int			alert;		/* warning alert to send (CTL_ALERT) */
	uint64_t		bytes_c2b;
	uint64_t		bytes_b2c;

	/* renegotiation / key update (worker_reneg.c) */
	enum reneg_state	reneg;
	int			reneg_by_client; /* the running one was the client's */
	ev_timer		rekey_timer;	/* interval; answer or handshake deadline */
	uint64_t		rekey_mark;	/* bytes both ways at the last rekey */
	ev_tstamp		client_reneg_window;	/* start of the current minute */
	unsigned		client_reneg_count;	/* allowed in that minute */
	unsigned		rekeys;		/* completed on this connection */
};

/* conn.c */
struct conn *conn_new(struct worker_frontend *wf, int fd,
	    const struct sockaddr *sa, socklen_t salen);
void	conn_why(struct conn *c, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	worker_conn_close(struct conn *c, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	conn_timer_once(struct conn *c, unsigned ms);
void	conn_timer_idle(struct conn *c, unsigned ms);
void	conn_timer_touch(struct conn *c);
void	conn_client_watch(struct conn *c, int events);
void	conn_backend_watch(struct conn *c, int events);

#endif
