/*
 * worker_keyop.h -- the worker's side of keyd: gnutls_privkey_import_ext4()
 * keys whose operations travel to keyd over the worker's channel, and the
 * TLS 1.3 transcript the worker keeps so that keyd sees whole content.
 * worker_keyop.c's header comment explains the design.
 */
#ifndef MOAT_WORKER_KEYOP_H
#define MOAT_WORKER_KEYOP_H

#include <stdint.h>

#include <ev.h>
#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>

#include "ipc.h"

#define KEYOP_KEY_MAGIC		0x4b65794bu	/* "KeyK" */
#define KEYOP_BUCKETS		256u		/* request-id hash */

struct worker;
struct conn;
struct keyop_req;

/* One frontend's key as keyd described it (IPC_KEY_LIST_REPLY). */
struct keyop_key {
	unsigned		magic;
	unsigned		index;		/* keyd slot: IPC_KEY_SLOT(frontend, gen) */
	struct worker		*w;
	int			available;	/* listed by the current keyd */
	int			allow_decrypt;	/* frontend enabled RSA kx */
	int			cert_pk;	/* the certificate's gnutls_pk_algorithm_t */
	struct ipc_key_info	info;		/* from the certificate, then keyd */
	gnutls_privkey_t	pkey;		/* import_ext4, owned by cred */
};

enum keyop_tr_state {
	KEYOP_TR_IDLE = 0,	/* handshake not started or before ClientHello */
	KEYOP_TR_RECORDING,	/* TLS 1.3: hashing every handshake message */
	KEYOP_TR_OFF,		/* TLS 1.2: not needed */
	KEYOP_TR_DONE,		/* CertificateVerify content built */
	KEYOP_TR_FAILED,	/* could not follow; refuse to sign */
};

/* Running TLS 1.3 transcript hash of one handshake (a few bytes per conn). */
struct keyop_transcript {
	enum keyop_tr_state	state;
	gnutls_digest_algorithm_t dig;
	gnutls_hash_hd_t	hash;
	uint8_t			*ch;		/* ClientHello body until the hash is known */
	size_t			chlen;
};

enum keyop_chan_state {
	KEYOP_CHAN_DOWN = 0,	/* no channel: key operations fail fast */
	KEYOP_CHAN_HELLO,	/* hello sent, waiting for keyd's */
	KEYOP_CHAN_KEYS,	/* key list asked for */
	KEYOP_CHAN_READY,
};

/* The channel to keyd and the requests in flight on it. */
struct keyop_chan {
	struct worker		*w;
	int			fd;
	enum keyop_chan_state	state;
	ev_io			io;
	ev_timer		req_timer;	/* earliest request deadline */
	ev_timer		setup_timer;	/* hello + key list deadline */
	uint32_t		next_id;	/* ids issued on this channel */
	int			wrapped;	/* next_id went round: every id was issued */
	uint32_t		list_id;	/* id of the KEY_LIST request */
	unsigned		generation;	/* channels seen, for logs */
	int			broken;		/* send failed: drop when back in the loop */
	/* in flight, oldest first; all share one timeout, so this is deadline order */
	struct keyop_req	*head, *tail;
	unsigned		npending;
	unsigned		nunsent;	/* waiting for the socket to drain */
	struct keyop_req	*bucket[KEYOP_BUCKETS];
	/* IPC_WORKER_CHANNEL that the master waits to hear about */
	int			master_waiting;
	uint32_t		master_id;
};

/* worker_keyop.c */
int	keyop_chan_start(struct keyop_chan *ch, struct worker *w, int fd,
	    unsigned timeout_ms);
int	keyop_pk_family(int pk);
void	keyop_chan_attach(struct keyop_chan *ch);
void	keyop_chan_replace(struct keyop_chan *ch, int fd, uint32_t master_id);
int	keyop_key_import(struct keyop_key *k);
int	keyop_transcript_hook(gnutls_session_t session, unsigned htype,
	    unsigned when, unsigned incoming, const gnutls_datum_t *msg);
void	keyop_transcript_reset(struct keyop_transcript *tr);
void	keyop_req_abort(struct keyop_req *req, int err);

#endif
