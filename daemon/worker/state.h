/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * state.h -- the worker process's data: one struct worker per process
 * (kept with ev_set_userdata() on its loop), one struct worker_frontend per
 * [frontend] section, refcounted certificate generations (struct
 * worker_cred), and one struct conn per client connection.
 *
 * Definitions only, no behaviour: every file of the worker may read these,
 * and who may write what is said at each field.  In particular a
 * connection's state, its watchers and its end belong to conn.c alone;
 * the leaves (tls.c, proxy.c, reneg.c) change the fields of their own part
 * and return what should happen, and conn.c does it.
 */
#ifndef MOAT_WORKER_STATE_H
#define MOAT_WORKER_STATE_H

#include <sys/socket.h>
#include <sys/un.h>

#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <gnutls/gnutls.h>

#include "conf.h"
#include "ipc.h"
#include "kchan.h"
#include "proxyproto.h"
#include "reason.h"
#include "reneg.h"
#include "transcript.h"
#include "xkey.h"

#define WORKER_MAGIC		0x576f726bu	/* "Work" */
#define WORKER_FE_MAGIC		0x57466e74u	/* "WFnt" */
#define WORKER_CRED_MAGIC	0x43726564u	/* "Cred" */
#define CONN_MAGIC		0x436f6e6eu	/* "Conn" */

#define CONN_BUF_SIZE		(16u * 1024u)	/* per direction */

struct conn;
struct btls;	/* btls.c's alone: the backend's TLS session */
struct mail;	/* mail.c's alone: the dialogue before STARTTLS */

/*
 * One generation of a frontend's certificate chains, each with its
 * keyd-backed key (keyd slot keys[c].index = IPC_KEY_SLOT(frontend, c,
 * generation)), all in one credentials set: GnuTLS picks among them by
 * the client's server name, then its signature algorithms.  Every
 * session holds a reference to the one it handshook with; a rotation makes
 * a new one, and the old one is freed when its last session ends or has
 * renegotiated onto the new one.  cred.c owns these.
 */
struct worker_cred {
	unsigned		magic;
	unsigned		refs;		/* the frontend's + one per session */
	struct worker_frontend	*wf;
	unsigned		generation;
	gnutls_certificate_credentials_t cred;
	/* the ext4 keys' userdata live here, in the frontend's cert order */
	struct xkey_key		keys[CONFIG_MAX_CERTS];
	unsigned		nkeys;
	struct worker_cred	*prev, *next;	/* worker's list of live creds */
};

struct worker_frontend {
	unsigned		magic;
	const struct frontend	*fe;
	struct worker		*w;
	struct worker_cred	*cred;		/* current: new handshakes use it (cred.c) */
	gnutls_priority_t	prio;		/* tls.c */
	/* the frontend's session-ticket master key (tls.c; from the master) */
	int			tickets;	/* fe->tickets, and a key is here */
	gnutls_priority_t	prio_reneg;	/* prio + %NO_TICKETS (tls.c) */
	uint8_t			ticket_key[CONFIG_TICKET_KEY_SIZE];
	gnutls_datum_t		mtls_ca;	/* mtls.c: ca-file, as checked */
	gnutls_datum_t		mtls_crl;	/* mtls.c: crl-file, or empty */
	/* backend-tls: the trust list from backend-ca (btls.c), or NULL */
	gnutls_certificate_credentials_t bcred;
	ev_io			lio[CONFIG_MAX_LISTEN];	/* worker.c */
	unsigned		nlisten;
};

struct worker {
	unsigned		magic;
	const struct config	*cfg;
	unsigned		index;
	struct ev_loop		*loop;
	int			master_fd;
	ev_io			master_io;
	ev_signal		sigterm;
	ev_signal		sigint;
	ev_timer		accept_retry;	/* after EMFILE and friends */
	ev_timer		drain_end;	/* stopping: flush and close what is left */
	struct kchan		keyd;
	struct log_limit	refusal_log;	/* client renegotiation refusals */
	ev_check		defer_check;	/* defer.c: the next wakeup */
	ev_idle			defer_idle;
	struct conn		*deferred, *deferred_tail;
	struct worker_cred	*creds;		/* every live generation (cred.c) */
	struct worker_frontend	fe[CONFIG_MAX_FRONTENDS];
	unsigned		nfe;
	/* the live connections: conn.c links and unlinks them */
	struct conn		*conns;
	unsigned		nconns;
	/* conn.c calls this after a connection is gone (worker.c's) */
	void			(*conn_gone)(struct worker *w);
	/* ... and this when hs_open fell (worker.c's: the limits) */
	void			(*load_changed)(struct worker *w);
	/* conn.c asks the master to connect a unix: backend (worker.c's):
	 * 0 with the request's id, or -errno */
	int			(*backend_ask)(struct worker *w, unsigned frontend,
				    uint32_t *id);
	/* cred.c says a certificate generation is gone (worker.c's): the
	 * master may then drop its key from keyd */
	void			(*cred_gone)(struct worker *w, unsigned frontend,
				    unsigned generation);
	/* connections waiting for the master's backend socket (conn.c) */
	struct conn		*backend_waiting;
	/* TLS 1.2 renegotiations in flight, and those waiting for a slot
	 * (conn.c: rekey-concurrency) */
	unsigned		reneg_inflight;
	struct conn		*reneg_wait_head, *reneg_wait_tail;
	/* connections in their first handshake (conn.c; the cap is
	 * max-pending-handshakes) */
	unsigned		hs_open;
	uint32_t		backend_next_id;
	int			accepting;	/* listeners started */
	int			at_limit;	/* paused by max_connections */
	ev_tstamp		limit_logged;	/* last max-connections line */
	int			stopping;	/* listeners closed, draining */
	int			exit_code;	/* when the drain ends */
	struct ipc_worker_stats	stats;
};

/*
 * Lifecycle: [CONN_PROXYHDR (accept-proxy: the balancer's PROXY header is
 * read, handshake timeout) ->] CONN_HANDSHAKE (gnutls_handshake() driven on a coroutine,
 * handshake timeout) -> CONN_CONNECTING (non-blocking connect to the
 * backend, connect timeout) -> CONN_PROXY (two-way pump, idle timeout) ->
 * freed by conn.c, which writes the connection's one log line.  A
 * STARTTLS frontend (starttls =) connects first: [CONN_PROXYHDR ->]
 * CONN_CONNECTING -> CONN_MAIL (the plaintext dialogue, mail.c, idle
 * timeout) -> CONN_HANDSHAKE -> CONN_PROXY.
 */
enum conn_state {
	CONN_HANDSHAKE = 0,
	CONN_CONNECTING,
	CONN_PROXY,
	CONN_CLOSED,
	CONN_PROXYHDR,
	CONN_MAIL,
};

/* Pump state bits (struct conn.flags), proxy.c's. */
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
#define CF_BACKEND_ABORT	0x0400u	/* the backend failed: flush b2c, end */
#define CF_CLIENT_GONE		0x0800u	/* the client failed: flush c2b, end */
#define CF_HS_APPDATA		0x1000u	/* renegotiation handshake got app data */
#define CF_FLUSH_END		0x2000u	/* read no more; flush both ways, end */
#define CF_DRAIN		0x4000u	/* with CF_FLUSH_END: close_notify last */
#define CF_BE_RD_WANTS_WR	0x8000u	/* backend TLS read or handshake: wait
					 * for writable */
#define CF_MAIL_B2C_MUTE	0x10000u /* STARTTLS: drop backend output until
					 * the client's first command in TLS */

/*
 * Control messages queued for the client (struct conn.ctl); sent by the
 * pump only when no record send is half done, and retried after
 * GNUTLS_E_AGAIN before any data is sent (GnuTLS keeps one send buffer: a
 * record_send after an unfinished control send would only flush the
 * control message and report the data as sent).
 */
#define CTL_ALERT		0x1u	/* warning alert struct conn.alert */
#define CTL_HELLO_REQUEST	0x2u	/* gnutls_rehandshake() (TLS 1.2) */
#define CTL_KEY_UPDATE		0x4u	/* gnutls_session_key_update(KU_PEER) */

/* A bounded byte queue: data[head..tail) is waiting to be written. */
struct conn_buf {
	uint8_t		*data;		/* CONN_BUF_SIZE bytes, from proxy start */
	size_t		head;
	size_t		tail;
};

/* What the pump waits for, for conn.c to arm (proxy_run() fills it). */
struct conn_wants {
	int		client;		/* EV_READ | EV_WRITE */
	int		backend;
	int		moved;		/* bytes moved: the idle timer restarts */
	int		more;		/* still moving: come back next turn */
};

struct conn {
	unsigned		magic;
	struct worker		*w;
	struct worker_frontend	*wf;
	struct conn		*prev, *next;	/* worker's live list */
	enum conn_state		state;		/* conn.c only */
	int			cfd;		/* client */
	int			bfd;		/* backend, -1 before connect */
	ev_io			cio;		/* conn.c's watchers */
	ev_io			bio;
	ev_timer		timer;		/* handshake / connect / idle */
	ev_timer		rekey_timer;	/* the renegotiation machine's */
	gnutls_session_t	session;
	struct worker_cred	*cred;		/* the session's credentials (ref) */
	struct worker_cred	*cred_old;	/* until a renegotiation onto cred ends */
	char			peer[64];	/* client address:port */
	char			sni[128];	/* sanitised */
	ev_tstamp		t_start;	/* accepted */
	ev_tstamp		t_handshake;	/* handshake done */
	int			resumed;	/* the first handshake resumed (tls.c) */
	int			upgraded;	/* STARTTLS: the client asked for TLS */
	ev_tstamp		t_moved;	/* last byte moved (conn.c) */
	struct reason		why;		/* why it ends, first cause wins */
	uint32_t		backend_id;	/* its IPC_BACKEND_CONNECT, or 0 */
	struct conn		*backend_next;	/* worker's backend_waiting list */

	/* the handshake call runs on a coroutine (tls.c) */
	int			in_coro;	/* running or suspended */
	int			hs_inline;	/* tls_handshake_step() is running it */
	int			hs_ret;		/* what gnutls_handshake() said */
	void			(*hs_finished)(struct conn *c); /* conn.c's, if it was parked */
	struct xkey_hs		hs;		/* what the key callbacks need */
	struct transcript	tr;

	/* proxying (proxy.c) */
	struct conn_buf		c2b;		/* client -> backend plaintext */
	struct conn_buf		b2c;		/* backend -> client plaintext */
	size_t			tls_send_len;	/* record_send in progress (GNUTLS_E_AGAIN) */
	unsigned		flags;		/* CF_* */
	unsigned		ctl;		/* CTL_* control messages queued */
	int			alert;		/* warning alert to send (CTL_ALERT) */
	struct conn_wants	wants;
	uint64_t		bytes_c2b;
	uint64_t		bytes_b2c;
	unsigned		noise_turn;	/* non-data records this wakeup (noise.c) */
	unsigned		noise_total;	/* unasked ones so far */
	struct btls		*bt;		/* backend-tls: its session (btls.c) */
	struct mail		*mail;		/* STARTTLS, before it (mail.c) */

	/* renegotiation / key update (reneg.c); its pacing (conn.c) */
	struct reneg		reneg;
	int			reneg_slot;	/* holds one of rekey-concurrency */
	int			reneg_waiting;	/* in the worker's wait list */
	struct conn		*reneg_wait_next;
	int			parked;		/* its handshake waits for keyd */
	unsigned		deferred;	/* defer.c: which side runs next */
	struct conn		*defer_next;

	/*
	 * ALPN and the PROXY protocol (pphdr.c): the two ends as the backend's
	 * PROXY header names them (the accepted socket's, or what the
	 * balancer's header said), the unique id of the log line and the v2
	 * header, the protocol ALPN chose, a balancer's header read so far.
	 */
	struct pp_addr		addr;
	uint8_t			uid[16];
	char			alpn[CONFIG_ALPN_LEN];	/* "" = none */
	uint8_t			*ppin;		/* PP_IN_MAX bytes, or NULL */
	size_t			ppin_len;

	/*
	 * The client certificate (mtls.c), set once by the first handshake
	 * (a renegotiation cannot change it: GnuTLS refuses a new identity):
	 * its subject CN, sanitised; PP2_CLIENT_CERT_CONN/_SESS; verified.
	 */
	char			cn[64];		/* "" = none */
	uint8_t			cert_flags;
	int			cert_verified;
	unsigned		cert_status;	/* gnutls_certificate_status_t */
};

/*
 * Count n more of a counter that the worker keeps both in all and for the
 * connection's frontend (struct ipc_frontend_stats names them): one place
 * adds to both, so the frontends always sum to the worker's total.
 */
#define WORKER_COUNT(c, field, n) do {					\
	(c)->w->stats.field += (n);					\
	(c)->w->stats.fe[(c)->wf->fe->index].field += (n);		\
} while (0)

#endif
