/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_transcript.c -- libFuzzer target for the TLS 1.3 CertificateVerify
 * content rebuild (daemon/worker/transcript.c).  An input is a sequence
 * of operations on one struct transcript, each an op byte and its
 * operands:
 *	op & 7 < 5	a handshake message as GnuTLS's hook hands it:
 *			htype byte (0xff is HelloRetryRequest, 1025; 0xfe
 *			is ChangeCipherSpec, 0xfd a v2 ClientHello, 1024),
 *			a PRF byte (index into fuzz_prfs), a length (one
 *			byte, two if op & 0x40) and the body; op & 0x08 =
 *			POST (else PRE), 0x10 = incoming, 0x20 = TLS 1.3
 *	op & 7 == 5	transcript_cv_content() into exactly cap bytes: cap
 *			is the next byte, plus 256 if op & 0x08 (every size
 *			around the content's, which is TRANSCRIPT_CV_MAX at
 *			most, and the real cap, TRANSCRIPT_CV_MAX)
 *	op & 7 == 6	transcript_reset()
 *	op & 7 == 7	transcript_done()
 *
 * Alongside runs a model that keeps the transcript as bytes (transcript.c
 * keeps a running hash) and hashes them in one go at the end.  After every
 * operation the state, the saved ClientHello and the hash algorithm must
 * match the model's, and a hash context exists exactly while recording.
 * A CertificateVerify content that is built must be: 64 spaces, the
 * context string and its NUL, then Hash(transcript) as the model computes
 * it (with HelloRetryRequest's message_hash, RFC 8446 4.4.1), exactly
 * TRANSCRIPT_CV_PREFIX + hash length bytes, within cap and within
 * TRANSCRIPT_CV_MAX; a refusal writes nothing.  Any difference aborts.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "fuzz_input.h"
#include "transcript.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a session's PRF hash may be, good and bad. */
static const gnutls_digest_algorithm_t fuzz_prfs[] = {
	GNUTLS_DIG_SHA256, GNUTLS_DIG_SHA384, GNUTLS_DIG_UNKNOWN,
	GNUTLS_DIG_SHA512, GNUTLS_DIG_SHA1, GNUTLS_DIG_MD5, GNUTLS_DIG_SHA224,
	GNUTLS_DIG_SHA3_256, GNUTLS_DIG_SHAKE_128,
	(gnutls_digest_algorithm_t)200,
};
#define FUZZ_NPRFS	(sizeof(fuzz_prfs) / sizeof(fuzz_prfs[0]))

/* The model: the transcript as bytes. */
struct model {
	enum transcript_state	state;
	gnutls_digest_algorithm_t dig;
	uint8_t			*ch;		/* saved ClientHello, or NULL */
	size_t			chlen;
	uint8_t			*log;		/* the transcript so far */
	size_t			loglen, logcap;
};


static void
model_append(struct model *m, const void *p, size_t len)
{
	size_t cap;

	if (m->loglen + len > m->logcap) {
		cap = (m->loglen + len) * 2;
		if ((m->log = realloc(m->log, cap)) == NULL)
			abort();
		m->logcap = cap;
	}
	if (len > 0)
		memcpy(m->log + m->loglen, p, len);
	m->loglen += len;
}

static void
model_message(struct model *m, unsigned type, const uint8_t *body, size_t len)
{
	uint8_t hdr[4] = { (uint8_t)type, (uint8_t)(len >> 16),
	    (uint8_t)(len >> 8), (uint8_t)len };

	model_append(m, hdr, 4);
	model_append(m, body, len);
}

static void
model_reset(struct model *m, enum transcript_state state)
{
	free(m->ch);
	m->ch = NULL;
	m->chlen = 0;
	m->loglen = 0;
	m->dig = GNUTLS_DIG_UNKNOWN;
	m->state = state;
}

/*
 * Can GnuTLS hash with d, into at most 64 bytes?  (Asked in this order:
 * GnuTLS 3.7.9's gnutls_hash_init() leaks what it refuses.)
 */
static int
model_hash_ok(gnutls_digest_algorithm_t d)
{
	gnutls_hash_hd_t h;
	unsigned hlen = gnutls_hash_get_len(d);

	if (d == GNUTLS_DIG_UNKNOWN || hlen == 0 || hlen > 64 ||
	    gnutls_hash_init(&h, d) < 0)
		return 0;
	gnutls_hash_deinit(h, NULL);
	return 1;
}

/* Recording starts once version and PRF are known; 0 if it did. */
static int
model_begin(struct model *m, int tls13, gnutls_digest_algorithm_t prf)
{
	if (!tls13) {
		model_reset(m, TRANSCRIPT_OFF);
		return -1;
	}
	if (!model_hash_ok(prf)) {
		model_reset(m, TRANSCRIPT_FAILED);
		return -1;
	}
	m->dig = prf;
	m->loglen = 0;
	m->state = TRANSCRIPT_RECORDING;
	return 0;
}

static void
model_hrr(struct model *m, int tls13, gnutls_digest_algorithm_t prf,
    const uint8_t *body, size_t len)
{
	uint8_t synth[4 + 64], hdr[4];
	gnutls_hash_hd_t h;
	unsigned hlen;

	if (m->state != TRANSCRIPT_IDLE || m->ch == NULL ||
	    model_begin(m, tls13, prf) < 0) {
		model_reset(m, TRANSCRIPT_FAILED);
		return;
	}
	hlen = gnutls_hash_get_len(prf);
	if (hlen == 0 || hlen > 64) {
		model_reset(m, TRANSCRIPT_FAILED);
		return;
	}
	/* message_hash: 254, 00 00 Hash.length, Hash(ClientHello1) */
	hdr[0] = GNUTLS_HANDSHAKE_CLIENT_HELLO;
	hdr[1] = (uint8_t)(m->chlen >> 16);
	hdr[2] = (uint8_t)(m->chlen >> 8);
	hdr[3] = (uint8_t)m->chlen;
	if (gnutls_hash_init(&h, prf) < 0)
		abort();
	gnutls_hash(h, hdr, 4);
	gnutls_hash(h, m->ch, m->chlen);
	gnutls_hash_deinit(h, synth + 4);
	synth[0] = 254;
	synth[1] = 0;
	synth[2] = 0;
	synth[3] = (uint8_t)hlen;
	model_append(m, synth, 4 + hlen);
	model_message(m, GNUTLS_HANDSHAKE_SERVER_HELLO, body, len);
	free(m->ch);
	m->ch = NULL;
	m->chlen = 0;
}

static void
model_step(struct model *m, unsigned htype, unsigned when, unsigned incoming,
    const uint8_t *body, size_t len, int tls13, gnutls_digest_algorithm_t prf)
{
	if (m->state != TRANSCRIPT_IDLE && m->state != TRANSCRIPT_RECORDING)
		return;
	if (incoming && htype == GNUTLS_HANDSHAKE_CLIENT_HELLO) {
		if (when == GNUTLS_HOOK_PRE) {
			free(m->ch);
			if ((m->ch = malloc(len > 0 ? len : 1)) == NULL)
				abort();
			if (len > 0)
				memcpy(m->ch, body, len);
			m->chlen = len;
			return;
		}
		if (m->ch == NULL) {
			model_reset(m, TRANSCRIPT_FAILED);
			return;
		}
		if (m->state == TRANSCRIPT_IDLE && model_begin(m, tls13,
		    prf) < 0)
			return;
		model_message(m, GNUTLS_HANDSHAKE_CLIENT_HELLO, m->ch,
		    m->chlen);
		free(m->ch);
		m->ch = NULL;
		m->chlen = 0;
		return;
	}
	if (when != GNUTLS_HOOK_POST)
		return;
	switch (htype) {
	case GNUTLS_HANDSHAKE_HELLO_REQUEST:
	case GNUTLS_HANDSHAKE_KEY_UPDATE:
	case GNUTLS_HANDSHAKE_NEW_SESSION_TICKET:
	case GNUTLS_HANDSHAKE_CHANGE_CIPHER_SPEC:
		return;
	case GNUTLS_HANDSHAKE_HELLO_RETRY_REQUEST:
		if (!incoming)
			model_hrr(m, tls13, prf, body, len);
		return;
	default:
		if (m->state == TRANSCRIPT_RECORDING)
			model_message(m, htype, body, len);
		return;
	}
}

/* transcript.c and the model agree on where they are. */
static void
fuzz_compare(const struct transcript *tr, const struct model *m)
{
	if (tr->state != m->state)
		abort();
	if ((tr->ch != NULL) != (m->ch != NULL) || tr->chlen != m->chlen ||
	    (m->ch != NULL && m->chlen > 0 &&
	    memcmp(tr->ch, m->ch, m->chlen) != 0))
		abort();
	if ((tr->hash != NULL) != (m->state == TRANSCRIPT_RECORDING))
		abort();
	if (m->state == TRANSCRIPT_RECORDING && tr->dig != m->dig)
		abort();
}

static void
fuzz_cv(struct transcript *tr, struct model *m, size_t cap)
{
	uint8_t *out, want[64];
	size_t outlen = 0, i;
	unsigned hlen;
	int r, ok;

	hlen = m->state == TRANSCRIPT_RECORDING ?
	    gnutls_hash_get_len(m->dig) : 0;
	ok = hlen > 0 && TRANSCRIPT_CV_PREFIX + hlen <= cap;
	/* exactly cap bytes, so ASan sees a write past them */
	if ((out = malloc(cap > 0 ? cap : 1)) == NULL)
		abort();
	memset(out, 0xa5, cap);
	r = transcript_cv_content(tr, out, cap, &outlen);
	if ((r == 0) != ok)
		abort();
	if (r != 0) {
		for (i = 0; i < cap; i++)
			if (out[i] != 0xa5)
				abort();	/* a refusal writes nothing */
		free(out);
		return;
	}
	if (outlen != TRANSCRIPT_CV_PREFIX + hlen || outlen > cap ||
	    outlen > TRANSCRIPT_CV_MAX)
		abort();
	for (i = 0; i < 64; i++)
		if (out[i] != 0x20)
			abort();
	if (memcmp(out + 64, TRANSCRIPT_CV_CONTEXT,
	    sizeof(TRANSCRIPT_CV_CONTEXT)) != 0)
		abort();
	if (gnutls_hash_fast(m->dig, m->log, m->loglen, want) < 0 ||
	    memcmp(out + TRANSCRIPT_CV_PREFIX, want, hlen) != 0)
		abort();
	for (i = outlen; i < cap; i++)
		if (out[i] != 0xa5)
			abort();
	free(out);
	/* recording stopped: the content is built once */
	m->state = TRANSCRIPT_DONE;
	m->loglen = 0;
}

static unsigned
fuzz_htype(unsigned b)
{
	switch (b) {
	case 0xff:
		return GNUTLS_HANDSHAKE_HELLO_RETRY_REQUEST;
	case 0xfe:
		return GNUTLS_HANDSHAKE_CHANGE_CIPHER_SPEC;
	case 0xfd:
		return GNUTLS_HANDSHAKE_CLIENT_HELLO_V2;
	default:
		return b;
	}
}

/* One handshake message op: its operands, then both sides take it. */
static void
fuzz_message(struct transcript *tr, struct model *m, struct fuzz_input *in,
    unsigned op)
{
	struct transcript_session ts;
	unsigned htype, when, incoming;
	uint8_t *body;
	size_t len;

	htype = fuzz_htype(fuzz_byte(in));
	ts.prf = fuzz_prfs[fuzz_byte(in) % FUZZ_NPRFS];
	ts.tls13 = (op & 0x20) != 0;
	when = op & 0x08 ? GNUTLS_HOOK_POST : GNUTLS_HOOK_PRE;
	incoming = (op & 0x10) != 0;
	len = fuzz_byte(in);
	if (op & 0x40)
		len = len << 8 | fuzz_byte(in);
	if (len > in->left)
		len = in->left;
	/* the body in its own allocation, as the hook gets it */
	if ((body = malloc(len > 0 ? len : 1)) == NULL)
		abort();
	if (len > 0)
		memcpy(body, in->p, len);
	in->p += len;
	in->left -= len;
	transcript_message(tr, htype, when, incoming, body, len, &ts);
	model_step(m, htype, when, incoming, body, len, ts.tls13, ts.prf);
	free(body);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	struct transcript tr;
	struct model m;
	unsigned op;

	memset(&tr, 0, sizeof(tr));
	memset(&m, 0, sizeof(m));
	transcript_reset(&tr);
	model_reset(&m, TRANSCRIPT_IDLE);
	while (in.left > 0) {
		op = fuzz_byte(&in);
		switch (op & 7) {
		case 5:
			fuzz_cv(&tr, &m, (size_t)fuzz_byte(&in) |
			    (op & 0x08 ? 256u : 0u));
			break;
		case 6:
			transcript_reset(&tr);
			model_reset(&m, TRANSCRIPT_IDLE);
			break;
		case 7:
			transcript_done(&tr);
			model_reset(&m, TRANSCRIPT_DONE);
			break;
		default:
			fuzz_message(&tr, &m, &in, op);
			break;
		}
		fuzz_compare(&tr, &m);
	}
	transcript_reset(&tr);
	model_reset(&m, TRANSCRIPT_IDLE);
	free(m.log);
	return 0;
}
