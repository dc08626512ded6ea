/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * reneg.h -- the renegotiation state machine of one established
 * connection, as gnutls_rehandshake(3) describes it (reneg.c explains).
 *
 * Pure: it knows no socket, no session and no loop.  The pump and conn.c
 * tell it what happened (a trigger, the HelloRequest went out, a
 * ClientHello came, a warning alert, its timer fired, the new handshake
 * started or ended) with what GnuTLS says of the session; it decides,
 * counts, logs, and answers what should happen.  The control message to
 * queue is in r->queued, the timer it wants in r->timer_set / r->timer_s
 * (conn.c arms it), and a verdict says whether the connection goes on, must
 * answer with a no_renegotiation alert, or must end (why in r->why).
 */
#ifndef MOAT_RENEG_H
#define MOAT_RENEG_H

#include <stdint.h>

#include "conf.h"
#include "ipc.h"

enum reneg_state {
	RENEG_IDLE = 0,
	RENEG_QUEUED,		/* HelloRequest or KeyUpdate waits to be sent */
	RENEG_WAIT_ANSWER,	/* HelloRequest sent: ClientHello, alert or nothing */
	RENEG_HS_WANTED,	/* ClientHello in: handshake once sends are done */
	RENEG_HANDSHAKE,	/* the new handshake runs on a coroutine */
};

/* What the connection is to send for the machine (r->queued). */
enum reneg_send {
	RENEG_SEND_NONE = 0,
	RENEG_SEND_HELLO_REQUEST,	/* gnutls_rehandshake(), TLS 1.2 */
	RENEG_SEND_KEY_UPDATE,		/* gnutls_session_key_update(KU_PEER), TLS 1.3 */
};

enum reneg_verdict {
	RENEG_GO_ON = 0,
	RENEG_REFUSE,		/* answer with a no_renegotiation warning alert */
	RENEG_FLUSH_END,	/* a policy end: flush what is held, then end */
	RENEG_END,		/* end the connection now: r->why */
};

struct reneg {
	enum reneg_state	state;
	enum reneg_send		queued;		/* while RENEG_QUEUED */
	int			by_client;	/* the running one is the client's */
	int			unsafe;		/* no RFC 5746: never asked again */
	int			refused_hello;	/* GnuTLS holds the ClientHello we refused */
	int			hello_out;	/* a HelloRequest is unanswered, even
						 * after rekey-timeout: a late
						 * ClientHello is its answer */
	double			last_rekey;	/* the last handshake or key update */
	uint64_t		mark;		/* bytes both ways at the last rekey */
	double			client_window;	/* start of the current minute */
	unsigned		client_count;	/* allowed in that minute */
	unsigned		rekeys;		/* completed on this connection */
	const char		*why;		/* with RENEG_END */
	/* the timer the machine wants; conn.c arms it and clears timer_set */
	int			timer_set;
	double			timer_s;	/* 0: stopped */
};

/* What the machine is told of the connection with every event. */
struct reneg_in {
	double			now;		/* seconds, the loop's clock */
	uint64_t		bytes;		/* plaintext both ways so far */
	int			tls13;		/* the session is TLS 1.3 */
	int			safe;		/* RFC 5746 safe renegotiation */
	int			closing;	/* an EOF either way, or our close_notify */
	double			jitter;		/* uniform in [0, 1): spreads intervals */
	const char		*peer;		/* for log lines */
	struct ipc_worker_stats	*stats;
	struct log_limit	*refusal_log;	/* the worker's; NULL: no limit */
};

#define RENEG_REFUSAL_LOG_PER_S	10	/* refusal log lines a second */

/* reneg.c */
void	reneg_start(struct reneg *r, const struct frontend *fe,
	    const struct reneg_in *in);
int	reneg_ask(struct reneg *r, const struct frontend *fe,
	    const struct reneg_in *in, const char *why);
int	reneg_bytes(struct reneg *r, const struct frontend *fe,
	    const struct reneg_in *in);
void	reneg_sent(struct reneg *r, const struct frontend *fe,
	    const struct reneg_in *in, enum reneg_send what);
void	reneg_closing(struct reneg *r);
enum reneg_verdict reneg_client_hello(struct reneg *r,
	    const struct frontend *fe, const struct reneg_in *in);
int	reneg_unexpected(struct reneg *r);
int	reneg_awaits_answer(const struct reneg *r);
enum reneg_verdict reneg_alert(struct reneg *r, const struct frontend *fe,
	    const struct reneg_in *in, int alert);
enum reneg_verdict reneg_timer(struct reneg *r, const struct frontend *fe,
	    const struct reneg_in *in);
void	reneg_hs_start(struct reneg *r, const struct frontend *fe);
void	reneg_hs_done(struct reneg *r, const struct frontend *fe,
	    const struct reneg_in *in);
int	reneg_data_allowed(const struct reneg *r, int client_eof);

#endif
