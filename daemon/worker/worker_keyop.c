/*
 * worker_keyop.c -- the worker's private keys live in keyd.
 *
 * Keys
 * ----
 * Every frontend's key is a gnutls_privkey_import_ext4() key whose callbacks
 * send the operation to keyd over this worker's SOCK_SEQPACKET channel
 * (IPC_SIGN / IPC_DECRYPT, key id = the frontend's keyd slot for that
 * certificate generation, IPC_KEY_SLOT()) and wait for the answer
 * (IPC_SIGN_REPLY / IPC_DECRYPT_REPLY / IPC_ERROR with the same request id).
 * The info callback answers from the IPC_KEY_LIST_REPLY keyd sent: the
 * public-key algorithm, its bits, and the signature algorithms keyd will do.
 *
 * Waiting without stalling the loop
 * ---------------------------------
 * GnuTLS 3.7's callbacks are synchronous.  Every gnutls_handshake() call
 * runs on a coroutine (worker_coro.c, started by worker_tls.c), so a
 * callback sends its request, links it (it lives on the coroutine's stack)
 * into the channel's in-flight list and hash, and yields to the loop.  The
 * loop resumes the coroutine when keyd's answer arrives, when the request's
 * deadline (keyd-timeout) passes, when the channel is lost or replaced, or
 * when the connection is closed under it (worker_conn_close() aborts the
 * request); the callback then returns the result into GnuTLS.  Many requests
 * are in flight at once and answers may come in any order.  Every request
 * has the same timeout, so the in-flight list in send order is also the
 * deadline order and one timer serves them all.
 *
 * What keyd is asked to sign (GnuTLS 3.7.9, lib/privkey.c, tls13-sig.c)
 * ----------------------------------------------------------------------
 * GnuTLS passes whole content to an external key only for EdDSA
 * (sign_data); for RSA, RSA-PSS and ECDSA it hashes first and calls
 * sign_hash with the digest (RSA PKCS#1 v1.5 as GNUTLS_SIGN_RSA_RAW and a
 * DER DigestInfo).  keyd's policy (keyd/keyop.h) signs only TLS-shaped
 * content or right-sized digests, so to let keyd see content under TLS 1.3
 * for every algorithm the worker rebuilds the CertificateVerify content:
 *
 * - A GNUTLS_HANDSHAKE_ANY / GNUTLS_HOOK_BOTH hook sees every handshake
 *   message.  In 3.7.9 the hook gets the message *body* in both directions
 *   (sent: _gnutls_send_handshake2() passes the mbuffer's udata, without
 *   the 4-byte header; received: _gnutls_recv_handshake() passes hsk.data),
 *   so the hook puts the header back: type (a HelloRetryRequest is a
 *   ServerHello on the wire) and 24-bit length.  Messages GnuTLS keeps out
 *   of the transcript (HelloRequest, KeyUpdate, TLS 1.3 NewSessionTicket;
 *   ChangeCipherSpec is not a handshake message) are skipped.  Sent
 *   messages are taken at POST.
 * - A received ClientHello is copied at PRE and hashed later: the version
 *   and the cipher suite's PRF hash (gnutls_prf_hash_get()) are known only
 *   after GnuTLS parsed it, and when it answers with a HelloRetryRequest
 *   read_client_hello() fails with GNUTLS_E_NO_COMMON_KEY_SHARE, so POST is
 *   never called for that ClientHello (GnuTLS has hashed it already).
 *   At its POST (or at the HRR) under TLS 1.2 nothing more is kept; under
 *   TLS 1.3 the messages go into a running hash, so a connection holds a
 *   hash context, not the transcript bytes.
 * - HelloRetryRequest (RFC 8446 4.4.1, lib/handshake.c
 *   _gnutls13_handshake_hash_buffers_synth()): when the server sends it,
 *   ClientHello1 is replaced by the synthetic message_hash message
 *   (type 254, 00 00 Hash.length, Hash(ClientHello1)), then HRR, the second
 *   ClientHello and everything after it follow as usual.
 * - At the CertificateVerify the transcript (ClientHello .. Certificate) is
 *   final: content = 64 x 0x20 || "TLS 1.3, server CertificateVerify" ||
 *   0x00 || Transcript-Hash.  The worker checks that Hash_sigalg(content)
 *   equals the digest GnuTLS handed to sign_hash; if it does, keyd gets
 *   IPC_SIGN_CONTENT with the real signature algorithm and hashes it itself.
 *   If it does not, the handshake fails and it is logged: falling back to a
 *   bare digest under TLS 1.3 would let anything through keyd's policy.
 *   For EdDSA GnuTLS hands the content itself; it is compared with the
 *   rebuilt one for the same reason.  Recording stops there.
 * - TLS 1.2: the ServerKeyExchange params are made inside GnuTLS and only
 *   their digest leaves it, so RSA and ECDSA go as IPC_SIGN_DIGEST; EdDSA
 *   as IPC_SIGN_CONTENT (the randoms and params GnuTLS passed).
 * gnutls_certificate_set_key() would sign a test string to match key and
 * certificate; that check is switched off (keyd and the master already
 * check the pair) so that keyd never sees a non-TLS request from us.
 *
 * The channel
 * -----------
 * At start-up (before the privilege drop) worker_main() runs the exchange
 * blocking with a deadline: IPC_HELLO both ways, IPC_KEY_LIST, the reply.
 * Later the master may hand a new channel (IPC_WORKER_CHANNEL, after keyd
 * restarted): every request in flight on the old one fails (those
 * handshakes end, "keyd channel lost"), the old fd is closed, and the same
 * exchange runs on the new one inside the loop; the master gets
 * IPC_WORKER_CHANNEL_REPLY when it is ready or failed.  If keyd's channel
 * reaches EOF, in-flight handshakes fail and new ones fail fast ("keyd
 * unavailable") until the master hands a new channel: the worker never dies
 * because keyd died.
 *
 * keyd speaking nonsense (STYLE.md point 9): an answer of the wrong type, a
 * malformed payload, a truncated datagram, fds attached, or an id this
 * channel never issued is a protocol violation.  The worker logs it, drops
 * the channel, stops accepting and exits 1 once its established
 * connections have finished (worker_stop()), so the master starts a fresh
 * worker; it does not cut the connections it is serving.  An answer for an
 * id that was issued but is no longer waiting (it timed out or its
 * connection went away) is normal and ignored.  Key bytes are never logged,
 * nor signatures.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>

#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "conn.h"
#include "worker_coro.h"
#include "worker_int.h"
#include "worker_keyop.h"

#define KEYOP_REQ_MAGIC		0x4b526571u	/* "KReq" */
#define KEYOP_CV_CONTEXT	"TLS 1.3, server CertificateVerify"
#define KEYOP_CV_PREFIX		(64u + sizeof(KEYOP_CV_CONTEXT))  /* incl. NUL */
#define KEYOP_CV_MAX		(KEYOP_CV_PREFIX + 64u)
#define KEYOP_RECV_BATCH	64	/* answers handled per wakeup */
#define KEYOP_SETUP_MIN_MS	1000u

/* One key operation in flight; lives on the waiting coroutine's stack. */
struct keyop_req {
	unsigned		magic;
	uint32_t		id;
	uint16_t		type;		/* IPC_SIGN or IPC_DECRYPT */
	int			sent;
	ev_tstamp		t_sent;
	ev_tstamp		deadline;
	struct keyop_req	*prev, *next;	/* channel's in-flight list */
	struct keyop_req	*hnext;		/* id hash chain */
	struct keyop_chan	*ch;
	struct coro		*co;
	struct conn		*c;
	const uint8_t		*payload;	/* encoded, for a delayed send */
	size_t			len;
	/* result */
	int			status;		/* 0 or negative */
	char			errmsg[IPC_ERRMSG_MAX];
	uint8_t			*out;		/* gnutls_malloc'd answer */
	size_t			outlen;
};

static struct ipc_msg	keyop_msg;	/* receive buffer; one loop, one user */
static const struct ipc_ends keyop_ends = { IPC_ROLE_WORKER, IPC_ROLE_KEYD };

static void	keyop_chan_cb(struct ev_loop *loop, ev_io *io, int revents);
static void	keyop_req_timer_cb(struct ev_loop *loop, ev_timer *t, int revents);
static void	keyop_setup_timer_cb(struct ev_loop *loop, ev_timer *t, int revents);
static void	keyop_chan_down(struct keyop_chan *ch, int err, const char *why);

/* ---- in-flight bookkeeping ---------------------------------------------- */

static unsigned
keyop_bucket(uint32_t id)
{
	return (id * 2654435761u) >> 24;	/* 256 buckets */
}

static struct keyop_req *
keyop_req_find(struct keyop_chan *ch, uint32_t id)
{
	struct keyop_req *r;

	for (r = ch->bucket[keyop_bucket(id)]; r != NULL; r = r->hnext)
		if (r->id == id)
			return r;
	return NULL;
}

static uint32_t
keyop_id_next(struct keyop_chan *ch)
{
	uint32_t id;

	/* 0 is the hello's id; after a wrap skip ids still in flight. */
	do {
		id = ch->next_id++;
		if (ch->next_id == 0) {
			ch->next_id = 1;
			ch->wrapped = 1;
		}
	} while (id == 0 || keyop_req_find(ch, id) != NULL);
	return id;
}

static void
keyop_req_link(struct keyop_chan *ch, struct keyop_req *r)
{
	unsigned b = keyop_bucket(r->id);

	r->prev = ch->tail;
	r->next = NULL;
	if (ch->tail != NULL)
		ch->tail->next = r;
	else
		ch->head = r;
	ch->tail = r;
	r->hnext = ch->bucket[b];
	ch->bucket[b] = r;
	ch->npending++;
}

static void
keyop_req_unlink(struct keyop_chan *ch, struct keyop_req *r)
{
	struct keyop_req **pp;

	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		ch->head = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	else
		ch->tail = r->prev;
	for (pp = &ch->bucket[keyop_bucket(r->id)]; *pp != NULL; pp = &(*pp)->hnext) {
		if (*pp == r) {
			*pp = r->hnext;
			break;
		}
	}
	if (!r->sent)
		ch->nunsent--;
	r->prev = r->next = r->hnext = NULL;
	ch->npending--;
}

static void
keyop_timer_update(struct keyop_chan *ch)
{
	struct ev_loop *loop = ch->w->loop;
	ev_tstamp after;

	if (loop == NULL)
		return;
	ev_timer_stop(loop, &ch->req_timer);
	if (ch->head == NULL)
		return;
	after = ch->head->deadline - ev_now(loop);
	ev_timer_set(&ch->req_timer, after > 0.001 ? after : 0.001, 0.);
	ev_timer_start(loop, &ch->req_timer);
}

static void
keyop_io_update(struct keyop_chan *ch)
{
	struct ev_loop *loop = ch->w->loop;
	int events = EV_READ | (ch->nunsent > 0 ? EV_WRITE : 0);

	if (loop == NULL || ch->fd < 0)
		return;
	if (ev_is_active(&ch->io) && (ch->io.events & (EV_READ | EV_WRITE)) == events)
		return;
	ev_io_stop(loop, &ch->io);
	ev_io_set(&ch->io, ch->fd, events);
	ev_io_start(loop, &ch->io);
}

/*
 * Complete one request and resume its handshake.  Runs on the loop's stack;
 * the request lives on the coroutine's stack, so it is not touched after
 * the resume.
 */
static void
keyop_req_finish(struct keyop_chan *ch, struct keyop_req *r, int status,
    const uint8_t *data, size_t len, const char *errmsg)
{
	struct ipc_worker_stats *st = &ch->w->stats;
	uint64_t us;

	keyop_req_unlink(ch, r);
	if (status == 0) {
		if ((r->out = gnutls_malloc(len)) == NULL)
			status = -ENOMEM;
		else {
			memcpy(r->out, data, len);
			r->outlen = len;
		}
		us = (uint64_t)((ev_time() - r->t_sent) * 1e6);
		st->keyd_latency_us_total += us;
		if (us > st->keyd_latency_us_max)
			st->keyd_latency_us_max = us;
	}
	if (status < 0)
		st->keyd_failures++;
	r->status = status;
	if (errmsg != NULL)
		snprintf(r->errmsg, sizeof(r->errmsg), "%s", errmsg);
	keyop_timer_update(ch);
	coro_resume(r->co);
}

/* The connection's close aborts its key operation (loop stack only). */
void
keyop_req_abort(struct keyop_req *r, int err)
{
	if (r == NULL || r->magic != KEYOP_REQ_MAGIC)
		fatalx("%s: bad request", __func__);
	keyop_req_finish(r->ch, r, err, NULL, 0, NULL);
}

/* Send what the socket refused earlier, oldest first. */
static void
keyop_flush(struct keyop_chan *ch)
{
	struct keyop_req *r;
	int rc;

	for (r = ch->head; r != NULL && ch->nunsent > 0; r = r->next) {
		if (r->sent)
			continue;
		rc = ipc_send(ch->fd, r->type, r->id, r->payload, r->len, NULL, 0);
		if (rc == -EAGAIN)
			break;
		if (rc < 0) {
			errno = -rc;
			log_warn("%s: send to keyd", __func__);
			keyop_chan_down(ch, -ECONNRESET, "keyd channel broken");
			return;
		}
		r->sent = 1;
		ch->nunsent--;
	}
	keyop_io_update(ch);
}

/* ---- calls from the handshake coroutine ----------------------------------- */

static struct conn *
keyop_caller(const struct keyop_key *k)
{
	struct conn *c = coro_self_arg();

	if (k == NULL || k->magic != KEYOP_KEY_MAGIC)
		fatalx("keyop: bad key");
	if (c == NULL || c->magic != CONN_MAGIC) {
		/* Not from a handshake coroutine: nothing of ours does that. */
		log_debug("keyop: key operation outside a handshake refused");
		return NULL;
	}
	return c;
}

/*
 * Send one request and yield until it is answered.  Returns 0 with *out
 * filled (gnutls_malloc'd), or a negative errno with c->why set.
 */
static int
keyop_call(struct conn *c, struct keyop_key *k, uint16_t type,
    const uint8_t *payload, size_t len, gnutls_datum_t *out)
{
	struct keyop_chan *ch = &k->w->keyd;
	struct keyop_req req;
	int rc;

	out->data = NULL;
	out->size = 0;
	if (c->close_pending)
		return -ECANCELED;
	if (ch->state != KEYOP_CHAN_READY || ch->broken) {
		k->w->stats.keyd_failures++;
		conn_why(c, "handshake failed: keyd unavailable");
		return -ENOTCONN;
	}
	if (!k->available) {
		k->w->stats.keyd_failures++;
		conn_why(c, "handshake failed: keyd has no key for frontend %s",
		    k->info.name);
		return -ENOENT;
	}

	memset(&req, 0, sizeof(req));
	req.magic = KEYOP_REQ_MAGIC;
	req.id = keyop_id_next(ch);
	req.type = type;
	req.ch = ch;
	req.co = coro_self();
	req.c = c;
	req.payload = payload;
	req.len = len;
	req.t_sent = ev_time();
	req.deadline = ev_now(ch->w->loop) + ch->w->cfg->keyd_timeout_ms / 1000.;

	rc = ipc_send(ch->fd, type, req.id, payload, len, NULL, 0);
	if (rc < 0 && rc != -EAGAIN) {
		/*
		 * The channel is gone but we are on a coroutine: mark it and
		 * let the loop take it down (it resumes other coroutines).
		 */
		errno = -rc;
		log_warn("%s: send to keyd", __func__);
		ch->broken = 1;
		ev_feed_event(ch->w->loop, &ch->io, EV_READ);
		k->w->stats.keyd_failures++;
		conn_why(c, "handshake failed: keyd unavailable");
		return rc;
	}
	req.sent = rc == 0;
	keyop_req_link(ch, &req);
	if (!req.sent)
		ch->nunsent++;
	k->w->stats.keyd_requests++;
	keyop_io_update(ch);
	if (ch->head == &req)
		keyop_timer_update(ch);

	c->keyop = &req;
	coro_yield();
	c->keyop = NULL;

	if (req.status == 0) {
		out->data = req.out;
		out->size = (unsigned)req.outlen;
		return 0;
	}
	switch (req.status) {
	case -ETIMEDOUT:
		conn_why(c, "handshake failed: keyd timeout (%u ms)",
		    k->w->cfg->keyd_timeout_ms);
		break;
	case -ECONNRESET:
		conn_why(c, "handshake failed: keyd channel lost");
		break;
	case -ECANCELED:
		break;		/* the closer already said why */
	default:
		conn_why(c, "handshake failed: keyd refused: %s",
		    req.errmsg[0] != '\0' ? req.errmsg : strerror(-req.status));
		break;
	}
	return req.status;
}

static int
keyop_sign(struct conn *c, struct keyop_key *k, const struct ipc_sign_req *sr,
    gnutls_datum_t *sig)
{
	uint8_t buf[IPC_MAX_SIGN_DATA + 64];
	ssize_t n;

	if ((n = ipc_sign_encode(buf, sizeof(buf), sr)) < 0) {
		conn_why(c, "handshake failed: sign request too large");
		return GNUTLS_E_PK_SIGN_FAILED;
	}
	if (keyop_call(c, k, IPC_SIGN, buf, (size_t)n, sig) < 0)
		return GNUTLS_E_PK_SIGN_FAILED;
	return 0;
}

/*
 * Build the TLS 1.3 server CertificateVerify content from the transcript
 * and stop recording.  out must hold KEYOP_CV_MAX bytes.
 */
static int
keyop_cv_content(struct conn *c, uint8_t *out, size_t *outlen)
{
	struct keyop_transcript *tr = &c->tr;
	unsigned hlen;

	if (tr->state != KEYOP_TR_RECORDING || tr->hash == NULL)
		return -EPROTO;
	hlen = gnutls_hash_get_len(tr->dig);
	if (hlen == 0 || KEYOP_CV_PREFIX + hlen > KEYOP_CV_MAX)
		return -EPROTO;
	memset(out, 0x20, 64);
	memcpy(out + 64, KEYOP_CV_CONTEXT, sizeof(KEYOP_CV_CONTEXT));
	gnutls_hash_deinit(tr->hash, out + KEYOP_CV_PREFIX);
	tr->hash = NULL;
	tr->state = KEYOP_TR_DONE;
	*outlen = KEYOP_CV_PREFIX + hlen;
	return 0;
}

static int
keyop_sign_hash_cb(gnutls_privkey_t key, gnutls_sign_algorithm_t algo,
    void *userdata, unsigned flags, const gnutls_datum_t *hash,
    gnutls_datum_t *sig)
{
	struct keyop_key *k = userdata;
	struct ipc_sign_req sr;
	uint8_t content[KEYOP_CV_MAX], check[64];
	gnutls_digest_algorithm_t dig;
	size_t clen;
	struct conn *c;

	sig->data = NULL;
	sig->size = 0;
	if ((c = keyop_caller(k)) == NULL)
		return GNUTLS_E_PK_SIGN_FAILED;

	memset(&sr, 0, sizeof(sr));
	sr.key_id = k->index;
	sr.sign_algo = (uint32_t)algo;
	if (gnutls_protocol_get_version(c->session) != GNUTLS_TLS1_3) {
		sr.form = IPC_SIGN_DIGEST;
		sr.data = hash->data;
		sr.data_len = hash->size;
		return keyop_sign(c, k, &sr, sig);
	}

	if (keyop_cv_content(c, content, &clen) < 0) {
		log_warnx("keyop: %s: TLS 1.3 signature without a transcript; "
		    "refusing", c->peer);
		conn_why(c, "handshake failed: no transcript for CertificateVerify");
		return GNUTLS_E_PK_SIGN_FAILED;
	}
	dig = gnutls_sign_get_hash_algorithm(algo);
	if (dig == GNUTLS_DIG_UNKNOWN || gnutls_hash_get_len(dig) != hash->size ||
	    hash->size > sizeof(check) ||
	    gnutls_hash_fast(dig, content, clen, check) < 0 ||
	    memcmp(check, hash->data, hash->size) != 0) {
		log_warnx("keyop: %s: rebuilt CertificateVerify does not match "
		    "GnuTLS's digest (%s); refusing to sign a bare digest",
		    c->peer, gnutls_sign_get_name(algo));
		conn_why(c, "handshake failed: CertificateVerify transcript mismatch");
		return GNUTLS_E_PK_SIGN_FAILED;
	}
	sr.form = IPC_SIGN_CONTENT;
	sr.data = content;
	sr.data_len = clen;
	return keyop_sign(c, k, &sr, sig);
}

/* EdDSA: GnuTLS hands the content itself, TLS 1.2 and 1.3 alike. */
static int
keyop_sign_data_cb(gnutls_privkey_t key, gnutls_sign_algorithm_t algo,
    void *userdata, unsigned flags, const gnutls_datum_t *data,
    gnutls_datum_t *sig)
{
	struct keyop_key *k = userdata;
	struct ipc_sign_req sr;
	uint8_t content[KEYOP_CV_MAX];
	size_t clen;
	struct conn *c;

	sig->data = NULL;
	sig->size = 0;
	if ((c = keyop_caller(k)) == NULL)
		return GNUTLS_E_PK_SIGN_FAILED;

	if (gnutls_protocol_get_version(c->session) == GNUTLS_TLS1_3) {
		if (keyop_cv_content(c, content, &clen) < 0 ||
		    clen != data->size || memcmp(content, data->data, clen) != 0) {
			log_warnx("keyop: %s: CertificateVerify content differs "
			    "from the transcript; refusing", c->peer);
			conn_why(c, "handshake failed: CertificateVerify transcript mismatch");
			return GNUTLS_E_PK_SIGN_FAILED;
		}
	}
	memset(&sr, 0, sizeof(sr));
	sr.key_id = k->index;
	sr.sign_algo = (uint32_t)algo;
	sr.form = IPC_SIGN_CONTENT;
	sr.data = data->data;
	sr.data_len = data->size;
	return keyop_sign(c, k, &sr, sig);
}

/*
 * RSA key exchange, only where the frontend enabled it.  GnuTLS's legacy
 * path reads plaintext->size even on failure, so it is always set.
 */
static int
keyop_decrypt_cb(gnutls_privkey_t key, void *userdata,
    const gnutls_datum_t *ciphertext, gnutls_datum_t *plaintext)
{
	struct keyop_key *k = userdata;
	struct ipc_decrypt_req dr;
	uint8_t buf[IPC_MAX_SIG + 64];
	struct conn *c;
	ssize_t n;

	plaintext->data = NULL;
	plaintext->size = 0;
	if ((c = keyop_caller(k)) == NULL)
		return GNUTLS_E_DECRYPTION_FAILED;
	memset(&dr, 0, sizeof(dr));
	dr.key_id = k->index;
	dr.data = ciphertext->data;
	dr.data_len = ciphertext->size;
	if ((n = ipc_decrypt_encode(buf, sizeof(buf), &dr)) < 0) {
		conn_why(c, "handshake failed: bad RSA ciphertext size");
		return GNUTLS_E_DECRYPTION_FAILED;
	}
	if (keyop_call(c, k, IPC_DECRYPT, buf, (size_t)n, plaintext) < 0)
		return GNUTLS_E_DECRYPTION_FAILED;
	return 0;
}

static int
keyop_info_cb(gnutls_privkey_t key, unsigned flags, void *userdata)
{
	const struct keyop_key *k = userdata;
	unsigned algo, i;

	if (k == NULL || k->magic != KEYOP_KEY_MAGIC)
		return -1;
	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO)
		return (int)k->info.pk_algo;
	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO_BITS)
		return (int)k->info.bits;
	if (flags & GNUTLS_PRIVKEY_INFO_HAVE_SIGN_ALGO) {
		algo = GNUTLS_FLAGS_TO_SIGN_ALGO(flags);
		/*
		 * Before keyd ever listed the key, say yes to what the key's
		 * family can do: the handshake then reaches the sign call and
		 * fails there as "keyd unavailable", which is the truth.
		 */
		if (k->info.nsign == 0)
			return gnutls_sign_supports_pk_algorithm(
			    (gnutls_sign_algorithm_t)algo,
			    (gnutls_pk_algorithm_t)k->info.pk_algo) ? 1 : 0;
		for (i = 0; i < k->info.nsign && i < IPC_MAX_SIGN_ALGOS; i++)
			if (k->info.sign_algos[i] == algo)
				return 1;
		return 0;
	}
	if (flags & GNUTLS_PRIVKEY_INFO_SIGN_ALGO)
		return k->info.nsign > 0 ? (int)k->info.sign_algos[0] : -1;
	return -1;
}

/* RSA and RSA-PSS keys are one family for matching key and certificate. */
int
keyop_pk_family(int pk)
{
	return pk == GNUTLS_PK_RSA_PSS ? GNUTLS_PK_RSA : pk;
}

int
keyop_key_import(struct keyop_key *k)
{
	int r;

	if ((r = gnutls_privkey_init(&k->pkey)) < 0)
		return r;
	r = gnutls_privkey_import_ext4(k->pkey, k, keyop_sign_data_cb,
	    keyop_sign_hash_cb, k->allow_decrypt ? keyop_decrypt_cb : NULL,
	    NULL, keyop_info_cb, 0);
	if (r < 0) {
		gnutls_privkey_deinit(k->pkey);
		k->pkey = NULL;
	}
	return r;
}

/* ---- TLS 1.3 transcript ---------------------------------------------------- */

void
keyop_transcript_reset(struct keyop_transcript *tr)
{
	if (tr->hash != NULL)
		gnutls_hash_deinit(tr->hash, NULL);
	free(tr->ch);
	tr->ch = NULL;
	tr->chlen = 0;
	tr->hash = NULL;
	tr->dig = GNUTLS_DIG_UNKNOWN;
	tr->state = KEYOP_TR_IDLE;
}

static void
keyop_tr_hdr(uint8_t hdr[4], unsigned type, size_t len)
{
	hdr[0] = (uint8_t)type;
	hdr[1] = (uint8_t)(len >> 16);
	hdr[2] = (uint8_t)(len >> 8);
	hdr[3] = (uint8_t)len;
}

static void
keyop_tr_add(struct keyop_transcript *tr, unsigned type, const uint8_t *body,
    size_t len)
{
	uint8_t hdr[4];

	keyop_tr_hdr(hdr, type, len);
	gnutls_hash(tr->hash, hdr, sizeof(hdr));
	if (len > 0)
		gnutls_hash(tr->hash, body, len);
}

static void
keyop_tr_fail(struct keyop_transcript *tr)
{
	keyop_transcript_reset(tr);
	tr->state = KEYOP_TR_FAILED;
}

/* Start the running hash once version and suite are known. */
static int
keyop_tr_begin(struct keyop_transcript *tr, gnutls_session_t session)
{
	if (gnutls_protocol_get_version(session) != GNUTLS_TLS1_3) {
		keyop_transcript_reset(tr);
		tr->state = KEYOP_TR_OFF;
		return -1;
	}
	tr->dig = gnutls_prf_hash_get(session);
	if (tr->dig == GNUTLS_DIG_UNKNOWN || gnutls_hash_init(&tr->hash, tr->dig) < 0) {
		tr->hash = NULL;
		keyop_tr_fail(tr);
		return -1;
	}
	tr->state = KEYOP_TR_RECORDING;
	return 0;
}

/* HRR: ClientHello1 (the saved copy) becomes message_hash. */
static void
keyop_tr_hrr(struct keyop_transcript *tr, gnutls_session_t session,
    const gnutls_datum_t *hrr)
{
	uint8_t synth[4 + 64], hdr[4];
	gnutls_hash_hd_t h;
	unsigned hlen;

	if (tr->state != KEYOP_TR_IDLE || tr->ch == NULL ||
	    keyop_tr_begin(tr, session) < 0) {
		keyop_tr_fail(tr);
		return;
	}
	hlen = gnutls_hash_get_len(tr->dig);
	if (hlen == 0 || hlen > 64 || gnutls_hash_init(&h, tr->dig) < 0) {
		keyop_tr_fail(tr);
		return;
	}
	keyop_tr_hdr(hdr, GNUTLS_HANDSHAKE_CLIENT_HELLO, tr->chlen);
	gnutls_hash(h, hdr, sizeof(hdr));
	gnutls_hash(h, tr->ch, tr->chlen);
	gnutls_hash_deinit(h, synth + 4);
	synth[0] = 254;
	synth[1] = 0;
	synth[2] = 0;
	synth[3] = (uint8_t)hlen;
	gnutls_hash(tr->hash, synth, 4 + hlen);
	keyop_tr_add(tr, GNUTLS_HANDSHAKE_SERVER_HELLO, hrr->data, hrr->size);
	free(tr->ch);
	tr->ch = NULL;
	tr->chlen = 0;
}

int
keyop_transcript_hook(gnutls_session_t session, unsigned htype, unsigned when,
    unsigned incoming, const gnutls_datum_t *msg)
{
	struct conn *c = gnutls_session_get_ptr(session);
	struct keyop_transcript *tr;

	if (c == NULL || c->magic != CONN_MAGIC)
		return 0;
	tr = &c->tr;
	if (tr->state != KEYOP_TR_IDLE && tr->state != KEYOP_TR_RECORDING)
		return 0;

	if (incoming && htype == GNUTLS_HANDSHAKE_CLIENT_HELLO) {
		if (when == GNUTLS_HOOK_PRE) {
			free(tr->ch);
			tr->chlen = 0;
			if ((tr->ch = malloc(msg->size > 0 ? msg->size : 1)) == NULL) {
				keyop_tr_fail(tr);
				return 0;
			}
			memcpy(tr->ch, msg->data, msg->size);
			tr->chlen = msg->size;
			return 0;
		}
		if (tr->ch == NULL) {
			keyop_tr_fail(tr);
			return 0;
		}
		if (tr->state == KEYOP_TR_IDLE && keyop_tr_begin(tr, session) < 0)
			return 0;
		keyop_tr_add(tr, GNUTLS_HANDSHAKE_CLIENT_HELLO, tr->ch, tr->chlen);
		free(tr->ch);
		tr->ch = NULL;
		tr->chlen = 0;
		return 0;
	}
	if (when != GNUTLS_HOOK_POST)
		return 0;

	switch (htype) {
	case GNUTLS_HANDSHAKE_HELLO_REQUEST:
	case GNUTLS_HANDSHAKE_KEY_UPDATE:
	case GNUTLS_HANDSHAKE_NEW_SESSION_TICKET:
	case GNUTLS_HANDSHAKE_CHANGE_CIPHER_SPEC:
		return 0;	/* never part of the TLS 1.3 transcript */
	case GNUTLS_HANDSHAKE_HELLO_RETRY_REQUEST:
		if (!incoming)
			keyop_tr_hrr(tr, session, msg);
		return 0;
	default:
		if (tr->state == KEYOP_TR_RECORDING)
			keyop_tr_add(tr, htype, msg->data, msg->size);
		return 0;
	}
}

/* ---- the channel ----------------------------------------------------------- */

/*
 * Take keyd's key list for every live credential generation (each has its
 * own keyd slot); at start-up a frontend without a key is fatal.
 */
static int
keyop_keys_update(struct keyop_chan *ch, const struct ipc_msg *msg, int initial)
{
	static struct ipc_key_info keys[IPC_MAX_KEYS];
	struct worker *w = ch->w;
	struct worker_cred *wc;
	struct keyop_key *k;
	const char *name;
	unsigned n, j;

	if (ipc_key_list_decode(msg->payload, msg->hdr.len, keys, IPC_MAX_KEYS,
	    &n) < 0) {
		log_warnx("keyop: malformed key list from keyd");
		return -EBADMSG;
	}
	for (wc = w->creds; wc != NULL; wc = wc->next) {
		k = &wc->key;
		name = wc->wf->fe->name;
		for (j = 0; j < n; j++)
			if (keys[j].key_id == k->index)
				break;
		if (j == n) {
			log_warnx("keyop: keyd has no key for frontend %s "
			    "(slot %u)", name, k->index);
			if (initial)
				return -ENOENT;
			k->available = 0;
			continue;
		}
		if (keyop_pk_family((int)keys[j].pk_algo) !=
		    keyop_pk_family(k->cert_pk)) {
			log_warnx("keyop: frontend %s: keyd's key is %s, the "
			    "certificate's is %s; not using it", name,
			    gnutls_pk_get_name(keys[j].pk_algo),
			    gnutls_pk_get_name(k->cert_pk));
			if (initial)
				return -EINVAL;
			k->available = 0;
			continue;
		}
		k->info = keys[j];
		k->available = 1;
		log_debug("keyop: frontend %s: key %s in slot %u, %s %u bits, "
		    "%u sign algorithms", name, keys[j].name, k->index,
		    gnutls_pk_get_name(keys[j].pk_algo), keys[j].bits,
		    keys[j].nsign);
	}
	return 0;
}

/* One message of the start-up exchange: 0, or -errno (EOF is a reset). */
static int
keyop_recv_wait(int fd, int64_t deadline)
{
	int r;

	r = ipc_recv_wait(fd, &keyop_ends, &keyop_msg, deadline);
	if (r == 0)
		return -ECONNRESET;
	return r < 0 ? r : 0;
}

/*
 * Start-up exchange on the first channel, before the loop exists and
 * before the privilege drop: hello both ways, then the key list.
 */
int
keyop_chan_start(struct keyop_chan *ch, struct worker *w, int fd,
    unsigned timeout_ms)
{
	int64_t deadline;
	int r, fl;

	memset(ch, 0, sizeof(*ch));
	ch->w = w;
	ch->fd = fd;
	ch->next_id = 1;
	ch->generation = 1;
	ev_init(&ch->io, keyop_chan_cb);
	ev_init(&ch->req_timer, keyop_req_timer_cb);
	ev_init(&ch->setup_timer, keyop_setup_timer_cb);
	if (fd < 0) {
		/* keyd was not ready: the master will send IPC_WORKER_CHANNEL. */
		ch->state = KEYOP_CHAN_DOWN;
		ch->generation = 0;
		return 0;
	}

	if (timeout_ms < KEYOP_SETUP_MIN_MS)
		timeout_ms = KEYOP_SETUP_MIN_MS;
	deadline = ipc_now_ms() + timeout_ms;

	if ((r = ipc_hello_send(fd, IPC_ROLE_WORKER)) < 0)
		return r;
	if ((r = keyop_recv_wait(fd, deadline)) < 0)
		return r;
	if ((r = ipc_hello_check(&keyop_msg, IPC_ROLE_KEYD)) < 0) {
		log_warnx("keyop: keyd's hello: %s (type %s)", strerror(-r),
		    ipc_type_name(keyop_msg.hdr.type));
		return r;
	}
	ch->list_id = keyop_id_next(ch);
	if ((r = ipc_send(fd, IPC_KEY_LIST, ch->list_id, NULL, 0, NULL, 0)) < 0)
		return r;
	if ((r = keyop_recv_wait(fd, deadline)) < 0)
		return r;
	if (keyop_msg.hdr.type != IPC_KEY_LIST_REPLY ||
	    keyop_msg.hdr.id != ch->list_id) {
		log_warnx("keyop: expected KEY_LIST_REPLY, got %s",
		    ipc_type_name(keyop_msg.hdr.type));
		return -EPROTO;
	}
	if ((r = keyop_keys_update(ch, &keyop_msg, 1)) < 0)
		return r;

	if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	ch->state = KEYOP_CHAN_READY;
	return 0;
}

/* The loop exists: watch the channel. */
void
keyop_chan_attach(struct keyop_chan *ch)
{
	keyop_io_update(ch);
}

static void
keyop_master_answer(struct keyop_chan *ch, int status)
{
	if (!ch->master_waiting)
		return;
	ch->master_waiting = 0;
	worker_master_reply(ch->w, IPC_WORKER_CHANNEL_REPLY, ch->master_id, status);
}

/*
 * Drop the channel: fail everything in flight (each resumes its handshake,
 * which ends), close the fd.  Loop stack only.
 */
static void
keyop_chan_down(struct keyop_chan *ch, int err, const char *why)
{
	struct ev_loop *loop = ch->w->loop;

	if (ch->fd >= 0) {
		log_warnx("keyop: keyd channel %u down: %s; %u request(s) in "
		    "flight fail", ch->generation, why, ch->npending);
		if (loop != NULL)
			ev_io_stop(loop, &ch->io);
		close(ch->fd);
		ch->fd = -1;
	}
	if (loop != NULL)
		ev_timer_stop(loop, &ch->setup_timer);
	ch->state = KEYOP_CHAN_DOWN;
	ch->broken = 0;
	while (ch->head != NULL)
		keyop_req_finish(ch, ch->head, -ECONNRESET, NULL, 0, NULL);
	keyop_master_answer(ch, err < 0 ? err : -EIO);
}

/* keyd said something it must not: see the header comment. */
static void
keyop_chan_violation(struct keyop_chan *ch, const char *what)
{
	int ready = ch->state == KEYOP_CHAN_READY;

	log_warnx("keyop: protocol violation from keyd: %s", what);
	keyop_chan_down(ch, -EPROTO, "protocol violation");
	if (ready)
		worker_stop(ch->w, 1, "keyd protocol violation");
}

/* The master hands a new channel (keyd restarted). */
void
keyop_chan_replace(struct keyop_chan *ch, int fd, uint32_t master_id)
{
	struct ev_loop *loop = ch->w->loop;
	unsigned ms = ch->w->cfg->keyd_timeout_ms;
	int r, fl;

	if (ch->fd >= 0 || ch->head != NULL)
		keyop_chan_down(ch, -ECONNRESET, "replaced by the master");
	else
		keyop_master_answer(ch, -ECANCELED);	/* an older replace */

	ch->fd = fd;
	ch->generation++;
	ch->next_id = 1;
	ch->wrapped = 0;
	ch->master_waiting = 1;
	ch->master_id = master_id;
	if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		log_warn("keyop: new keyd channel");
		keyop_chan_down(ch, -errno, "fcntl");
		return;
	}
	if ((r = ipc_hello_send(fd, IPC_ROLE_WORKER)) < 0) {
		keyop_chan_down(ch, r, "hello not sent");
		return;
	}
	ch->state = KEYOP_CHAN_HELLO;
	keyop_io_update(ch);
	if (ms < KEYOP_SETUP_MIN_MS)
		ms = KEYOP_SETUP_MIN_MS;
	ev_timer_stop(loop, &ch->setup_timer);
	ev_timer_set(&ch->setup_timer, ms / 1000., 0.);
	ev_timer_start(loop, &ch->setup_timer);
	log_info("keyop: new keyd channel %u from the master", ch->generation);
}

static void
keyop_setup_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct keyop_chan *ch = container_of(t, struct keyop_chan, setup_timer);

	if (ch->state == KEYOP_CHAN_HELLO || ch->state == KEYOP_CHAN_KEYS)
		keyop_chan_down(ch, -ETIMEDOUT, "no hello / key list in time");
}

static void
keyop_req_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct keyop_chan *ch = container_of(t, struct keyop_chan, req_timer);
	ev_tstamp now = ev_now(loop);

	while (ch->head != NULL && ch->head->deadline <= now + 0.0005) {
		log_warnx("keyop: %s: keyd did not answer request %u in %u ms",
		    ch->head->c->peer, ch->head->id, ch->w->cfg->keyd_timeout_ms);
		keyop_req_finish(ch, ch->head, -ETIMEDOUT, NULL, 0, NULL);
	}
	keyop_timer_update(ch);
}

/* An answer to a request in flight. */
static void
keyop_answer(struct keyop_chan *ch, const struct ipc_msg *msg)
{
	struct keyop_req *r;
	struct ipc_reply rep;
	struct ipc_error err;
	uint16_t want;

	if ((r = keyop_req_find(ch, msg->hdr.id)) == NULL) {
		if (msg->hdr.id == 0 ||
		    (!ch->wrapped && msg->hdr.id >= ch->next_id)) {
			keyop_chan_violation(ch, "answer to a request never sent");
			return;
		}
		log_debug("keyop: late keyd answer %u ignored", msg->hdr.id);
		return;
	}
	if (msg->hdr.type == IPC_ERROR) {
		if (ipc_error_decode(msg->payload, msg->hdr.len, &err) < 0) {
			keyop_chan_violation(ch, "malformed ERROR");
			return;
		}
		log_info("keyop: %s: keyd refused %s: %s (%d)", r->c->peer,
		    ipc_type_name(r->type), err.msg, err.code);
		keyop_req_finish(ch, r, err.code, NULL, 0, err.msg);
		return;
	}
	want = r->type == IPC_SIGN ? IPC_SIGN_REPLY : IPC_DECRYPT_REPLY;
	if (msg->hdr.type != want ||
	    ipc_reply_decode(msg->payload, msg->hdr.len, &rep) < 0) {
		keyop_chan_violation(ch, "wrong or malformed answer");
		return;
	}
	if (rep.status < 0) {
		keyop_req_finish(ch, r, rep.status, NULL, 0, NULL);
		return;
	}
	if (rep.data_len == 0) {
		keyop_chan_violation(ch, "empty signature");
		return;
	}
	keyop_req_finish(ch, r, 0, rep.data, rep.data_len, NULL);
}

static void
keyop_chan_handle(struct keyop_chan *ch, struct ipc_msg *msg)
{
	int r;

	if (msg->nfds > 0) {
		ipc_msg_close_fds(msg);
		keyop_chan_violation(ch, "fds attached");
		return;
	}
	switch (ch->state) {
	case KEYOP_CHAN_HELLO:
		if ((r = ipc_hello_check(msg, IPC_ROLE_KEYD)) < 0) {
			keyop_chan_violation(ch, r == -EPROTO ?
			    "hello: wrong type or version" : "hello: bad role");
			return;
		}
		ch->list_id = keyop_id_next(ch);
		if ((r = ipc_send(ch->fd, IPC_KEY_LIST, ch->list_id, NULL, 0,
		    NULL, 0)) < 0) {
			keyop_chan_down(ch, r, "key list request not sent");
			return;
		}
		ch->state = KEYOP_CHAN_KEYS;
		return;
	case KEYOP_CHAN_KEYS:
		if (msg->hdr.type != IPC_KEY_LIST_REPLY ||
		    msg->hdr.id != ch->list_id) {
			keyop_chan_violation(ch, "expected the key list");
			return;
		}
		if ((r = keyop_keys_update(ch, msg, 0)) < 0) {
			keyop_chan_violation(ch, "bad key list");
			return;
		}
		ev_timer_stop(ch->w->loop, &ch->setup_timer);
		ch->state = KEYOP_CHAN_READY;
		log_info("keyop: keyd channel %u ready", ch->generation);
		keyop_master_answer(ch, 0);
		return;
	case KEYOP_CHAN_READY:
		switch (msg->hdr.type) {
		case IPC_SIGN_REPLY:
		case IPC_DECRYPT_REPLY:
		case IPC_ERROR:
			keyop_answer(ch, msg);
			return;
		default:
			keyop_chan_violation(ch, ipc_type_name(msg->hdr.type));
			return;
		}
	case KEYOP_CHAN_DOWN:
		return;
	}
}

static void
keyop_chan_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct keyop_chan *ch = container_of(io, struct keyop_chan, io);
	unsigned gen = ch->generation;
	int i, r;

	if (ch->broken) {
		keyop_chan_down(ch, -ECONNRESET, "send failed");
		return;
	}
	if ((revents & EV_WRITE) && ch->nunsent > 0)
		keyop_flush(ch);
	if (!(revents & EV_READ))
		return;
	/* Stop when the channel went down or was replaced meanwhile. */
	for (i = 0; i < KEYOP_RECV_BATCH && ch->fd >= 0 && ch->generation == gen; i++) {
		r = ipc_recv(ch->fd, &keyop_ends, &keyop_msg);
		if (r == -EAGAIN || r == -EINTR)
			return;
		if (r == 0) {
			keyop_chan_down(ch, -ECONNRESET, "keyd closed the channel");
			return;
		}
		if (r < 0) {
			if (r == -ECONNRESET || r == -EPIPE) {
				keyop_chan_down(ch, r, strerror(-r));
				return;
			}
			keyop_chan_violation(ch, strerror(-r));
			return;
		}
		keyop_chan_handle(ch, &keyop_msg);
	}
}
