/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xkey.c -- the worker's private keys live in keyd.
 *
 * Every key of every frontend is a gnutls_privkey_import_ext4() key whose
 * callbacks send the operation to keyd (IPC_SIGN / IPC_DECRYPT, key id =
 * the keyd slot of that certificate and generation, IPC_KEY_SLOT())
 * through kchan_call(), which yields the handshake's coroutine until keyd
 * answers: GnuTLS 3.7's callbacks are synchronous, the loop must not wait.
 * The info callback answers from the key list keyd sent: the public-key
 * algorithm, its bits, and the signature algorithms keyd will do.
 *
 * What keyd is asked to sign (GnuTLS 3.7.9, lib/privkey.c, tls13-sig.c)
 * ----------------------------------------------------------------------
 * GnuTLS passes whole content to an external key only for EdDSA
 * (sign_data); for RSA, RSA-PSS and ECDSA it hashes first and calls
 * sign_hash with the digest (RSA PKCS#1 v1.5 as GNUTLS_SIGN_RSA_RAW and a
 * DER DigestInfo).  keyd's policy (keyd/policy.h) signs only TLS-shaped
 * content or right-sized digests, so to let keyd see content under TLS 1.3
 * for every algorithm the worker rebuilds the CertificateVerify content
 * from the handshake transcript (transcript.c).  It checks that
 * Hash_sigalg(content) equals the digest GnuTLS handed to sign_hash; if it
 * does, keyd gets IPC_SIGN_CONTENT with the real signature algorithm and
 * hashes it itself.  If it does not, the handshake fails and it is logged:
 * falling back to a bare digest under TLS 1.3 would let anything through
 * keyd's policy.  For EdDSA GnuTLS hands the content itself; it is compared
 * with the rebuilt one for the same reason.
 *
 * TLS 1.2: the ServerKeyExchange params are made inside GnuTLS and only
 * their digest leaves it, so RSA and ECDSA go as IPC_SIGN_DIGEST; EdDSA as
 * IPC_SIGN_CONTENT (the randoms and params GnuTLS passed).
 * gnutls_certificate_set_key() would sign a test string to match key and
 * certificate; that check is switched off (keyd and the master already
 * check the pair) so that keyd never sees a non-TLS request from us.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>

#include "ipc.h"
#include "log.h"
#include "coro.h"
#include "kchan.h"
#include "reason.h"
#include "transcript.h"
#include "xkey.h"

/* The handshake a callback runs for, from its coroutine, or NULL. */
static struct xkey_hs *
xkey_caller(const struct xkey_key *k)
{
	struct xkey_hs *hs = coro_self_arg();

	if (k == NULL || k->magic != XKEY_MAGIC)
		fatalx("xkey: bad key");
	if (hs == NULL || hs->magic != XKEY_HS_MAGIC) {
		/* Not from a handshake coroutine: nothing of ours does that. */
		log_debug("xkey: key operation outside a handshake refused");
		return NULL;
	}
	return hs;
}

/*
 * Send one request to keyd and wait for it.  Returns 0 with *out filled
 * (gnutls_malloc'd), or a negative errno with the handshake's reason set.
 */
static int
xkey_call(struct xkey_hs *hs, struct xkey_key *k, uint16_t type,
    const uint8_t *payload, size_t len, gnutls_datum_t *out)
{
	char err[IPC_ERRMSG_MAX];
	int r;

	out->data = NULL;
	out->size = 0;
	if (hs->cancelled)
		return -ECANCELED;
	if (!kchan_usable(k->ch)) {
		k->ch->stats->keyd_failures++;
		reason_set(hs->why, "handshake failed: keyd unavailable");
		return -ENOTCONN;
	}
	if (!k->available) {
		k->ch->stats->keyd_failures++;
		reason_set(hs->why, "handshake failed: keyd has no key for "
		    "frontend %s", k->info.name);
		return -ENOENT;
	}
	r = kchan_call(k->ch, type, payload, len, hs->peer, &hs->pending, out,
	    err, sizeof(err));
	switch (r) {
	case 0:
		break;
	case -ENOTCONN:
		reason_set(hs->why, "handshake failed: keyd unavailable");
		break;
	case -ETIMEDOUT:
		reason_set(hs->why, "handshake failed: keyd timeout (%u ms)",
		    k->ch->timeout_ms);
		break;
	case -ECONNRESET:
		reason_set(hs->why, "handshake failed: keyd channel lost");
		break;
	case -ECANCELED:
		break;		/* the closer already said why */
	default:
		reason_set(hs->why, "handshake failed: keyd refused: %s",
		    err[0] != '\0' ? err : strerror(-r));
		break;
	}
	return r;
}

static int
xkey_sign(struct xkey_hs *hs, struct xkey_key *k, const struct ipc_sign_req *sr,
    gnutls_datum_t *sig)
{
	uint8_t buf[IPC_MAX_SIGN_DATA + 64];
	ssize_t n;

	if ((n = ipc_sign_encode(buf, sizeof(buf), sr)) < 0) {
		reason_set(hs->why, "handshake failed: sign request too large");
		return GNUTLS_E_PK_SIGN_FAILED;
	}
	if (xkey_call(hs, k, IPC_SIGN, buf, (size_t)n, sig) < 0)
		return GNUTLS_E_PK_SIGN_FAILED;
	return 0;
}

static int
xkey_sign_hash_cb(gnutls_privkey_t key, gnutls_sign_algorithm_t algo,
    void *userdata, unsigned flags, const gnutls_datum_t *hash,
    gnutls_datum_t *sig)
{
	struct xkey_key *k = userdata;
	struct ipc_sign_req sr;
	uint8_t content[TRANSCRIPT_CV_MAX], check[64];
	gnutls_digest_algorithm_t dig;
	struct xkey_hs *hs;
	size_t clen;

	sig->data = NULL;
	sig->size = 0;
	if ((hs = xkey_caller(k)) == NULL)
		return GNUTLS_E_PK_SIGN_FAILED;

	memset(&sr, 0, sizeof(sr));
	sr.key_id = k->index;
	sr.sign_algo = (uint32_t)algo;
	if (gnutls_protocol_get_version(hs->session) != GNUTLS_TLS1_3) {
		sr.form = IPC_SIGN_DIGEST;
		sr.data = hash->data;
		sr.data_len = hash->size;
		return xkey_sign(hs, k, &sr, sig);
	}

	if (transcript_cv_content(hs->tr, content, sizeof(content), &clen) < 0) {
		log_warnx("xkey: %s: TLS 1.3 signature without a transcript; "
		    "refusing", hs->peer);
		reason_set(hs->why, "handshake failed: no transcript for "
		    "CertificateVerify");
		return GNUTLS_E_PK_SIGN_FAILED;
	}
	dig = gnutls_sign_get_hash_algorithm(algo);
	if (dig == GNUTLS_DIG_UNKNOWN || gnutls_hash_get_len(dig) != hash->size ||
	    hash->size > sizeof(check) ||
	    gnutls_hash_fast(dig, content, clen, check) < 0 ||
	    memcmp(check, hash->data, hash->size) != 0) {
		log_warnx("xkey: %s: rebuilt CertificateVerify does not match "
		    "GnuTLS's digest (%s); refusing to sign a bare digest",
		    hs->peer, gnutls_sign_get_name(algo));
		reason_set(hs->why, "handshake failed: CertificateVerify "
		    "transcript mismatch");
		return GNUTLS_E_PK_SIGN_FAILED;
	}
	sr.form = IPC_SIGN_CONTENT;
	sr.data = content;
	sr.data_len = clen;
	return xkey_sign(hs, k, &sr, sig);
}

/* EdDSA: GnuTLS hands the content itself, TLS 1.2 and 1.3 alike. */
static int
xkey_sign_data_cb(gnutls_privkey_t key, gnutls_sign_algorithm_t algo,
    void *userdata, unsigned flags, const gnutls_datum_t *data,
    gnutls_datum_t *sig)
{
	struct xkey_key *k = userdata;
	struct ipc_sign_req sr;
	uint8_t content[TRANSCRIPT_CV_MAX];
	struct xkey_hs *hs;
	size_t clen;

	sig->data = NULL;
	sig->size = 0;
	if ((hs = xkey_caller(k)) == NULL)
		return GNUTLS_E_PK_SIGN_FAILED;

	if (gnutls_protocol_get_version(hs->session) == GNUTLS_TLS1_3) {
		if (transcript_cv_content(hs->tr, content, sizeof(content),
		    &clen) < 0 || clen != data->size ||
		    memcmp(content, data->data, clen) != 0) {
			log_warnx("xkey: %s: CertificateVerify content differs "
			    "from the transcript; refusing", hs->peer);
			reason_set(hs->why, "handshake failed: CertificateVerify "
			    "transcript mismatch");
			return GNUTLS_E_PK_SIGN_FAILED;
		}
	}
	memset(&sr, 0, sizeof(sr));
	sr.key_id = k->index;
	sr.sign_algo = (uint32_t)algo;
	sr.form = IPC_SIGN_CONTENT;
	sr.data = data->data;
	sr.data_len = data->size;
	return xkey_sign(hs, k, &sr, sig);
}

/*
 * RSA key exchange, only where the frontend enabled it.  GnuTLS's legacy
 * path reads plaintext->size even on failure, so it is always set.
 */
static int
xkey_decrypt_cb(gnutls_privkey_t key, void *userdata,
    const gnutls_datum_t *ciphertext, gnutls_datum_t *plaintext)
{
	struct xkey_key *k = userdata;
	struct ipc_decrypt_req dr;
	uint8_t buf[IPC_MAX_SIG + 64];
	struct xkey_hs *hs;
	ssize_t n;

	plaintext->data = NULL;
	plaintext->size = 0;
	if ((hs = xkey_caller(k)) == NULL)
		return GNUTLS_E_DECRYPTION_FAILED;
	memset(&dr, 0, sizeof(dr));
	dr.key_id = k->index;
	dr.data = ciphertext->data;
	dr.data_len = ciphertext->size;
	if ((n = ipc_decrypt_encode(buf, sizeof(buf), &dr)) < 0) {
		reason_set(hs->why, "handshake failed: bad RSA ciphertext size");
		return GNUTLS_E_DECRYPTION_FAILED;
	}
	if (xkey_call(hs, k, IPC_DECRYPT, buf, (size_t)n, plaintext) < 0)
		return GNUTLS_E_DECRYPTION_FAILED;
	return 0;
}

static int
xkey_info_cb(gnutls_privkey_t key, unsigned flags, void *userdata)
{
	const struct xkey_key *k = userdata;
	unsigned algo, i;

	if (k == NULL || k->magic != XKEY_MAGIC)
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
xkey_pk_family(int pk)
{
	return pk == GNUTLS_PK_RSA_PSS ? GNUTLS_PK_RSA : pk;
}

/* Make k->pkey, the ext4 key whose userdata is k itself. */
int
xkey_import(struct xkey_key *k)
{
	int r;

	if ((r = gnutls_privkey_init(&k->pkey)) < 0)
		return r;
	r = gnutls_privkey_import_ext4(k->pkey, k, xkey_sign_data_cb,
	    xkey_sign_hash_cb, k->allow_decrypt ? xkey_decrypt_cb : NULL,
	    NULL, xkey_info_cb, 0);
	if (r < 0) {
		gnutls_privkey_deinit(k->pkey);
		k->pkey = NULL;
	}
	return r;
}
