/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * transcript.h -- the TLS 1.3 handshake transcript a worker keeps so that
 * keyd sees the whole CertificateVerify content, not a bare digest.
 *
 * Pure: fed one handshake message at a time (as GnuTLS's handshake hook
 * sees it, with the version and PRF hash GnuTLS reports at that moment),
 * it keeps a running hash and, at the server's CertificateVerify, builds
 *   64 x 0x20 || "TLS 1.3, server CertificateVerify" || 0x00 || Hash
 * transcript.c explains what GnuTLS 3.7.9 hands the hook and why.  No
 * connection, no loop, no keyd: the unit test replays recorded handshakes.
 */
#ifndef MOAT_TRANSCRIPT_H
#define MOAT_TRANSCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#define TRANSCRIPT_CV_CONTEXT	"TLS 1.3, server CertificateVerify"
#define TRANSCRIPT_CV_PREFIX	(64u + sizeof(TRANSCRIPT_CV_CONTEXT))	/* incl. NUL */
#define TRANSCRIPT_CV_MAX	(TRANSCRIPT_CV_PREFIX + 64u)

enum transcript_state {
	TRANSCRIPT_IDLE = 0,	/* handshake not started or before ClientHello */
	TRANSCRIPT_RECORDING,	/* TLS 1.3: hashing every handshake message */
	TRANSCRIPT_OFF,		/* TLS 1.2: not needed */
	TRANSCRIPT_DONE,	/* CertificateVerify content built, or handshake over */
	TRANSCRIPT_FAILED,	/* could not follow; refuse to sign */
};

/* Running transcript hash of one handshake (a few bytes per connection). */
struct transcript {
	enum transcript_state	state;
	gnutls_digest_algorithm_t dig;
	gnutls_hash_hd_t	hash;
	uint8_t			*ch;		/* ClientHello body until the hash is known */
	size_t			chlen;
};

/* What GnuTLS says of the session when a message passes. */
struct transcript_session {
	int			tls13;		/* the negotiated version is TLS 1.3 */
	gnutls_digest_algorithm_t prf;		/* the cipher suite's hash */
};

/* transcript.c */
void	transcript_reset(struct transcript *tr);
void	transcript_done(struct transcript *tr);
void	transcript_message(struct transcript *tr, unsigned htype, unsigned when,
	    unsigned incoming, const uint8_t *body, size_t len,
	    const struct transcript_session *ts);
int	transcript_cv_content(struct transcript *tr, uint8_t *out, size_t cap,
	    size_t *outlen);

#endif
