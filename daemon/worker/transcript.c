/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * transcript.c -- the TLS 1.3 CertificateVerify content, rebuilt from the
 * handshake messages (transcript.h says why keyd needs it).
 *
 * What the hook sees (GnuTLS 3.7.9)
 * ---------------------------------
 * A GNUTLS_HANDSHAKE_ANY / GNUTLS_HOOK_BOTH hook sees every handshake
 * message.  It gets the message *body* in both directions (sent:
 * _gnutls_send_handshake2() passes the mbuffer's udata, without the 4-byte
 * header; received: _gnutls_recv_handshake() passes hsk.data), so the
 * header is put back here: type (a HelloRetryRequest is a ServerHello on
 * the wire) and 24-bit length.  Messages GnuTLS keeps out of the
 * transcript (HelloRequest, KeyUpdate, TLS 1.3 NewSessionTicket;
 * ChangeCipherSpec is not a handshake message) are skipped.  Sent messages
 * are taken at POST.
 *
 * A received ClientHello is copied at PRE and hashed later: the version
 * and the cipher suite's PRF hash are known only after GnuTLS parsed it,
 * and when it answers with a HelloRetryRequest read_client_hello() fails
 * with GNUTLS_E_NO_COMMON_KEY_SHARE, so POST is never called for that
 * ClientHello (GnuTLS has hashed it already).  At its POST (or at the HRR)
 * under TLS 1.2 nothing more is kept; under TLS 1.3 the messages go into a
 * running hash, so a connection holds a hash context, not the bytes.
 *
 * HelloRetryRequest (RFC 8446 4.4.1, lib/handshake.c
 * _gnutls13_handshake_hash_buffers_synth()): when the server sends it,
 * ClientHello1 is replaced by the synthetic message_hash message
 * (type 254, 00 00 Hash.length, Hash(ClientHello1)), then HRR, the second
 * ClientHello and everything after it follow as usual.
 *
 * At the CertificateVerify the transcript (ClientHello .. Certificate) is
 * final; transcript_cv_content() builds the content and recording stops.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "transcript.h"

#define TRANSCRIPT_MESSAGE_HASH	254	/* RFC 8446 4.4.1 synthetic message */

void
transcript_reset(struct transcript *tr)
{
	if (tr->hash != NULL)
		gnutls_hash_deinit(tr->hash, NULL);
	free(tr->ch);
	tr->ch = NULL;
	tr->chlen = 0;
	tr->hash = NULL;
	tr->dig = GNUTLS_DIG_UNKNOWN;
	tr->state = TRANSCRIPT_IDLE;
}

/* The handshake is over: nothing more is recorded until the next one. */
void
transcript_done(struct transcript *tr)
{
	transcript_reset(tr);
	tr->state = TRANSCRIPT_DONE;
}

static void
transcript_hdr(uint8_t hdr[4], unsigned type, size_t len)
{
	hdr[0] = (uint8_t)type;
	hdr[1] = (uint8_t)(len >> 16);
	hdr[2] = (uint8_t)(len >> 8);
	hdr[3] = (uint8_t)len;
}

static void
transcript_add(struct transcript *tr, unsigned type, const uint8_t *body,
    size_t len)
{
	uint8_t hdr[4];

	transcript_hdr(hdr, type, len);
	gnutls_hash(tr->hash, hdr, sizeof(hdr));
	if (len > 0)
		gnutls_hash(tr->hash, body, len);
}

static void
transcript_fail(struct transcript *tr)
{
	transcript_reset(tr);
	tr->state = TRANSCRIPT_FAILED;
}

/* Start the running hash once version and suite are known. */
static int
transcript_begin(struct transcript *tr, const struct transcript_session *ts)
{
	unsigned hlen;

	if (!ts->tls13) {
		transcript_reset(tr);
		tr->state = TRANSCRIPT_OFF;
		return -1;
	}
	tr->dig = ts->prf;
	/*
	 * Only a hash GnuTLS can make (a TLS 1.3 suite's is SHA-256 or
	 * SHA-384): GnuTLS 3.7.9's gnutls_hash_init() leaks its handle when
	 * it refuses an algorithm, so it must not be asked to.
	 */
	hlen = gnutls_hash_get_len(tr->dig);
	if (tr->dig == GNUTLS_DIG_UNKNOWN || hlen == 0 || hlen > 64 ||
	    gnutls_hash_init(&tr->hash, tr->dig) < 0) {
		tr->hash = NULL;
		transcript_fail(tr);
		return -1;
	}
	tr->state = TRANSCRIPT_RECORDING;
	return 0;
}

/* HRR: ClientHello1 (the saved copy) becomes message_hash. */
static void
transcript_hrr(struct transcript *tr, const struct transcript_session *ts,
    const uint8_t *hrr, size_t hrrlen)
{
	uint8_t synth[4 + 64], hdr[4];
	gnutls_hash_hd_t h;
	unsigned hlen;

	if (tr->state != TRANSCRIPT_IDLE || tr->ch == NULL ||
	    transcript_begin(tr, ts) < 0) {
		transcript_fail(tr);
		return;
	}
	hlen = gnutls_hash_get_len(tr->dig);
	if (hlen == 0 || hlen > 64 || gnutls_hash_init(&h, tr->dig) < 0) {
		transcript_fail(tr);
		return;
	}
	transcript_hdr(hdr, GNUTLS_HANDSHAKE_CLIENT_HELLO, tr->chlen);
	gnutls_hash(h, hdr, sizeof(hdr));
	gnutls_hash(h, tr->ch, tr->chlen);
	gnutls_hash_deinit(h, synth + 4);
	synth[0] = TRANSCRIPT_MESSAGE_HASH;
	synth[1] = 0;
	synth[2] = 0;
	synth[3] = (uint8_t)hlen;
	gnutls_hash(tr->hash, synth, 4 + hlen);
	transcript_add(tr, GNUTLS_HANDSHAKE_SERVER_HELLO, hrr, hrrlen);
	free(tr->ch);
	tr->ch = NULL;
	tr->chlen = 0;
}

/* A received ClientHello: copied at PRE, hashed at POST (see the top). */
static void
transcript_client_hello(struct transcript *tr, unsigned when,
    const uint8_t *body, size_t len, const struct transcript_session *ts)
{
	if (when == GNUTLS_HOOK_PRE) {
		free(tr->ch);
		tr->chlen = 0;
		if ((tr->ch = malloc(len > 0 ? len : 1)) == NULL) {
			transcript_fail(tr);
			return;
		}
		if (len > 0)
			memcpy(tr->ch, body, len);
		tr->chlen = len;
		return;
	}
	if (tr->ch == NULL) {
		transcript_fail(tr);
		return;
	}
	if (tr->state == TRANSCRIPT_IDLE && transcript_begin(tr, ts) < 0)
		return;
	transcript_add(tr, GNUTLS_HANDSHAKE_CLIENT_HELLO, tr->ch, tr->chlen);
	free(tr->ch);
	tr->ch = NULL;
	tr->chlen = 0;
}

/* One handshake message, as GnuTLS's hook saw it. */
void
transcript_message(struct transcript *tr, unsigned htype, unsigned when,
    unsigned incoming, const uint8_t *body, size_t len,
    const struct transcript_session *ts)
{
	if (tr->state != TRANSCRIPT_IDLE && tr->state != TRANSCRIPT_RECORDING)
		return;
	if (incoming && htype == GNUTLS_HANDSHAKE_CLIENT_HELLO) {
		transcript_client_hello(tr, when, body, len, ts);
		return;
	}
	if (when != GNUTLS_HOOK_POST)
		return;
	switch (htype) {
	case GNUTLS_HANDSHAKE_HELLO_REQUEST:
	case GNUTLS_HANDSHAKE_KEY_UPDATE:
	case GNUTLS_HANDSHAKE_NEW_SESSION_TICKET:
	case GNUTLS_HANDSHAKE_CHANGE_CIPHER_SPEC:
		return;		/* never part of the TLS 1.3 transcript */
	case GNUTLS_HANDSHAKE_HELLO_RETRY_REQUEST:
		if (!incoming)
			transcript_hrr(tr, ts, body, len);
		return;
	default:
		if (tr->state == TRANSCRIPT_RECORDING)
			transcript_add(tr, htype, body, len);
		return;
	}
}

/*
 * The server CertificateVerify content of the transcript so far; recording
 * stops.  0 with *outlen set, or -1 if there is no TLS 1.3 transcript (or
 * it could not be followed): never sign then.
 */
int
transcript_cv_content(struct transcript *tr, uint8_t *out, size_t cap,
    size_t *outlen)
{
	unsigned hlen;

	if (tr->state != TRANSCRIPT_RECORDING || tr->hash == NULL)
		return -1;
	hlen = gnutls_hash_get_len(tr->dig);
	if (hlen == 0 || TRANSCRIPT_CV_PREFIX + hlen > cap)
		return -1;
	memset(out, 0x20, 64);
	memcpy(out + 64, TRANSCRIPT_CV_CONTEXT, sizeof(TRANSCRIPT_CV_CONTEXT));
	gnutls_hash_deinit(tr->hash, out + TRANSCRIPT_CV_PREFIX);
	tr->hash = NULL;
	tr->state = TRANSCRIPT_DONE;
	*outlen = TRANSCRIPT_CV_PREFIX + hlen;
	return 0;
}
