/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * policy.h -- keyd's signing policy: what it agrees to sign or decrypt.
 * The operations it guards are keystore_sign() and keystore_decrypt()
 * (keystore.c); keyd_chan.c asks this policy before it queues one.
 *
 * What reaches a gnutls_privkey_import_ext4() key, GnuTLS 3.7.9
 * -------------------------------------------------------------
 * A worker's keys are external keys whose callbacks forward to keyd.  Which
 * bytes a callback gets is decided in lib/privkey.c, not by the caller:
 *
 * - TLS 1.3 CertificateVerify (lib/tls13-sig.c, _gnutls13_handshake_sign_data)
 *   builds  64 x 0x20 || "TLS 1.3, server CertificateVerify" || 0x00 ||
 *   Transcript-Hash  (32 bytes for SHA-256 suites, 48 for SHA-384) and calls
 *   gnutls_privkey_sign_data2(key, se, RSA_PSS_FIXED_SALT_LENGTH, content).
 * - TLS 1.2 ServerKeyExchange (lib/tls-sig.c, _gnutls_handshake_sign_data12)
 *   builds  client_random(32) || server_random(32) || params  and calls
 *   gnutls_privkey_sign_data2(key, se, 0, content).  params is
 *   ServerECDHParams (curve_type 3, named group, point) or ServerDHParams
 *   (p, g, Ys, each with a 2-byte length).
 * - gnutls_privkey_sign_data2() -> privkey_sign_and_hash_data(): only when
 *   _gnutls_pk_is_not_prehashed() (EdDSA) does privkey_sign_raw_data() call
 *   the sign_data callback, with the whole content.  For every other family
 *   GnuTLS hashes first (pk_hash_data), then pk_prepare_hash() (which for
 *   RSA PKCS#1 v1.5 wraps the digest in a DER DigestInfo, and leaves ECDSA
 *   and RSA-PSS digests bare), and calls the sign_hash callback.  For RSA it
 *   also swaps the algorithm for GNUTLS_SIGN_RSA_RAW, so the callback sees
 *   (RSA_RAW, DigestInfo); for RSA-PSS (the PSS algorithm, digest) and for
 *   ECDSA (the ECDSA algorithm, digest).
 * - TLS 1.0/1.1 (_gnutls_handshake_sign_data10) would sign a 36-byte
 *   MD5||SHA-1 with GNUTLS_PRIVKEY_SIGN_FLAG_TLS1_RSA; moat never offers
 *   those versions and keyd refuses that input.
 *
 * So, left alone, keyd would see only a digest for RSA and ECDSA and could
 * not tell a handshake from anything else.  The worker therefore rebuilds
 * the TLS 1.3 CertificateVerify content itself from the handshake transcript
 * (handshake hooks) and sends it as IPC_SIGN_CONTENT for every algorithm;
 * keyd checks its shape and hashes it itself.  In TLS 1.2 the
 * ServerKeyExchange params are generated inside GnuTLS and only their digest
 * leaves it, so for RSA and ECDSA a TLS 1.2 signature arrives as
 * IPC_SIGN_DIGEST; EdDSA always arrives as content.
 *
 * The policy (policy_sign_check)
 * ------------------------------
 * - The key must exist and the algorithm must be one the key can do (the
 *   list ipc_sigalg_list() made when it was loaded) and of its family.
 * - CONTENT must be exactly one of
 *   (a) a TLS 1.3 *server* CertificateVerify: the 98-byte prefix then a
 *       32- or 48-byte hash, nothing else (130 or 146 bytes), signed only
 *       with an algorithm TLS 1.3 allows (no PKCS#1 v1.5, no curve-less
 *       ECDSA);
 *   (b) a TLS 1.2 ServerKeyExchange: 64 bytes of randoms then either
 *       ServerECDHParams for secp256r1/384r1/521r1 (an uncompressed point
 *       of exactly 65/97/133 bytes that lies on the curve, as nettle's
 *       ecc_point_set() checks) or x25519/x448 (32/56 bytes), or, only
 *       for a key loaded with IPC_KEY_F_ALLOW_DHE (its frontend enables
 *       DHE), ServerDHParams whose p is exactly one of the RFC 7919 groups
 *       (ffdhe2048 ... ffdhe8192, as GnuTLS exports them), g = 2, and Ys in
 *       [2, p-2] with no leading zero; nothing after the params.  GnuTLS
 *       writes the params that way and no other (lib/auth/ecdhe.c,
 *       dh_common.c: minimal big-endian integers, fixed-size points).
 *   The two shapes cannot be confused: at offset 64 one has 'T' and the
 *   other 0x03 or a p length of at most 0x04xx; ServerECDHParams is at
 *   most 259 bytes and ServerDHParams with a 0x03xx p length at least 768.
 * - DIGEST only for a key loaded with IPC_KEY_F_ALLOW_DIGEST: the master
 *   sets it only for a key whose frontend's priority enables TLS 1.2 for
 *   that key type, the one case where GnuTLS gives an RSA or ECDSA key
 *   nothing but a digest.  Then only prehashed families, and only sizes
 *   the algorithm can have: ECDSA and RSA-PSS exactly the size of the
 *   algorithm's hash (32/48/64); RSA PKCS#1 v1.5 only as
 *   (GNUTLS_SIGN_RSA_RAW, DER DigestInfo for SHA-256/384/512 with NULL
 *   parameters, exactly as GnuTLS's encode_ber_digest_info() writes it),
 *   and only if the key offers RSA PKCS#1 with that hash.  EdDSA never
 *   takes a digest.
 * Refusals are -EPERM (shape, or a flag the key was not loaded with),
 * -EINVAL (algorithm), -ENOENT (key), -EBADMSG (malformed); the check is a
 * pure function of the key's public description, its load flags and the
 * request, so the fuzzer and unit tests call it.
 *
 * Residual risk
 * -------------
 * The randoms of (b) are chosen by the client and the worker, and the
 * ECDHE point by the worker: a compromised worker can get a signature
 * over 64 free bytes followed by well-formed key-exchange params (for a
 * NIST curve a point of its choice, for x25519/x448 32/56 free bytes).
 * With DHE enabled, Ys is up to the size of p of nearly free bytes.  That
 * is what TLS 1.2 lets any server do, and it cannot be replayed as a
 * TLS 1.3 CertificateVerify or as anything that must start differently.
 * The TLS 1.2 digest path is weaker: keyd cannot see the preimage, so for
 * a key loaded with IPC_KEY_F_ALLOW_DIGEST a compromised worker can have
 * any SHA-256/384/512 digest signed with that RSA or ECDSA key, i.e. any
 * message that is signed by hash, including a TLS 1.3 CertificateVerify
 * for a transcript of its choice.  It still never learns the key, and
 * every signature is counted and rate limited.  A key without the flag
 * (a TLS 1.3-only frontend) and every Ed25519 key leave no such oracle:
 * keyd then signs only content whose shape it checked.
 *
 * Decryption (RSA key exchange) is refused unless the key was loaded with
 * IPC_KEY_F_ALLOW_DECRYPT, and only a ciphertext of the modulus size is
 * accepted.  What keyd answers then is the same for good and bad padding
 * (keystore_decrypt(), RFC 5246 7.4.7.1): a 48-byte premaster, random
 * where the padding was bad, so keyd is no Bleichenbacher oracle.
 */
#ifndef MOAT_POLICY_H
#define MOAT_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.h"
#include "ipc_sigalgs.h"

#define POLICY_TLS13_CV_PREFIX	98u	/* 64 spaces, context, NUL */

/* policy.c */
int	policy_sign_check(const struct ipc_key_info *key, uint32_t key_flags,
	    const struct ipc_sign_req *req, const char **why);
int	policy_decrypt_check(const struct ipc_key_info *key, uint32_t key_flags,
	    const struct ipc_decrypt_req *req, const char **why);
int	policy_sign_stat(uint32_t sign_algo);
int	policy_is_tls13_cv(const uint8_t *p, size_t len);
size_t	policy_tls13_cv_make(uint8_t *p, const uint8_t *hash, size_t hash_len);
int	policy_is_tls12_ske(const uint8_t *p, size_t len, uint32_t key_flags);
int	policy_digestinfo_hash_len(const uint8_t *p, size_t len);

#endif
