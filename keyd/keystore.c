/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * keystore.c -- import keys from the fds of an IPC_KEY_LOAD, check them
 * against their certificate, keep them by key id, and sign or decrypt
 * with them (the requests policy.c accepted).  The private keys never
 * leave this file.
 *
 * The files are read with read(2) and fstat(2) only, so loading works the
 * same before and inside the sandbox.  The key file and the passphrase are
 * wiped from memory as soon as GnuTLS has parsed them.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "ipc.h"
#include "keyd_pkcs11.h"
#include "keystore.h"
#include "log.h"
#include "policy.h"

#define KEYSTORE_PREMASTER	48u	/* TLS's RSA premaster secret */
#define KEYSTORE_BENCH_OPS	8	/* signatures timed at load, at most */
#define KEYSTORE_BENCH_MIN	2	/* ... and at least */
#define KEYSTORE_BENCH_MAX_S	0.05	/* stop after this once MIN are done */

/* What we read from one fd; size is the bytes held, alloc what to wipe. */
struct keystore_file {
	uint8_t		*data;
	size_t		size;
};

struct keystore_key {
	atomic_int		refs;
	gnutls_privkey_t	privkey;
	struct ipc_key_info	info;
	uint32_t		flags;		/* IPC_KEY_F_* it was loaded with */
	double			op_s;		/* one signature, seconds */
	/*
	 * A key on a PKCS#11 token (IPC_KEY_F_PKCS11): GnuTLS runs its
	 * operations on one session of the token, and PKCS#11 allows one
	 * operation at a time on a session, so the signer threads take
	 * token_lock.  The PIN stays for the key's life: GnuTLS logs in
	 * again (the PIN callback) when the token drops the session.
	 */
	int			token;
	pthread_mutex_t		token_lock;
	struct keystore_file	pin_file;	/* the bytes, wiped at the end */
	struct keyd_pkcs11_pin	pin;		/* them, for the PIN callback */
};

static void
keystore_file_wipe(struct keystore_file *f)
{
	if (f->data != NULL) {
		gnutls_memset(f->data, 0, f->size + 1);
		free(f->data);
	}
	f->data = NULL;
	f->size = 0;
}

/*
 * The PEM block headers of private keys, tried in this order; the first
 * that the file holds is the key.  (The search is for "-----BEGIN " and
 * the header, so "PRIVATE KEY" does not match "RSA PRIVATE KEY".)
 */
static const char *const keystore_pem_headers[] = {
	"PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "RSA PRIVATE KEY",
	"EC PRIVATE KEY",
};

/*
 * Parse a PEM private key by decoding its base64 here and giving GnuTLS
 * the DER: GnuTLS 3.7's own PEM path (gnutls_x509_privkey_import_pkcs8)
 * frees the DER it decoded without wiping it, and the key's scalar stayed
 * in keyd's free memory after the key was dropped (found by the sanitizer
 * build, whose allocator keeps freed blocks as they were:
 * test_keyd.py's test_dropped_key_wiped).  Our copy is wiped at once.
 * A file with none of these blocks (a legacy format) goes to GnuTLS's
 * PEM parser as before.
 */
static int
keystore_import_pem(gnutls_x509_privkey_t xkey, const struct keystore_file *kf,
    const char *pass)
{
	gnutls_datum_t pem = { kf->data, (unsigned)kf->size }, der;
	size_t i;
	int r;

	for (i = 0; i < sizeof(keystore_pem_headers) /
	    sizeof(keystore_pem_headers[0]); i++) {
		if (gnutls_pem_base64_decode2(keystore_pem_headers[i], &pem,
		    &der) < 0)
			continue;
		r = gnutls_x509_privkey_import2(xkey, &der, GNUTLS_X509_FMT_DER,
		    pass, 0);
		gnutls_memset(der.data, 0, der.size);
		gnutls_free(der.data);
		return r;
	}
	return gnutls_x509_privkey_import2(xkey, &pem, GNUTLS_X509_FMT_PEM,
	    pass, 0);
}

static int
keystore_fail(struct ipc_key_loaded *out, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
keystore_fail(struct ipc_key_loaded *out, int status, const char *fmt, ...)
{
	va_list ap;

	out->status = status;
	va_start(ap, fmt);
	vsnprintf(out->msg, sizeof(out->msg), fmt, ap);
	va_end(ap);
	return status;
}

/*
 * Read a whole regular file from fd, NUL-terminated (PEM parsing wants
 * text), with pread() from offset 0: the certificate is the master's
 * sealed copy, whose file description workers and later keyds share.  A
 * secret file must not be accessible by group or others.
 */
static int
keystore_read(int fd, const char *what, const char *path, int secret,
    struct keystore_file *f, struct ipc_key_loaded *out)
{
	struct stat st;
	size_t cap;
	ssize_t n;

	f->data = NULL;
	f->size = 0;
	if (fstat(fd, &st) < 0)
		return keystore_fail(out, -errno, "cannot stat %s %s: %s",
		    what, path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return keystore_fail(out, -EINVAL, "%s %s is not a regular file",
		    what, path);
	if (secret && (st.st_mode & (S_IRWXG | S_IRWXO)))
		return keystore_fail(out, -EPERM, "%s %s is accessible by group "
		    "or others (mode %04o); it must be 0600 or 0400", what, path,
		    (unsigned)(st.st_mode & 07777));
	if (st.st_size <= 0)
		return keystore_fail(out, -EINVAL, "%s %s is empty", what, path);
	if ((uint64_t)st.st_size > KEYSTORE_MAX_FILE)
		return keystore_fail(out, -EFBIG, "%s %s is larger than %u bytes",
		    what, path, KEYSTORE_MAX_FILE);

	/* The file may change under us: read at most cap, then expect EOF. */
	cap = (size_t)st.st_size;
	if ((f->data = malloc(cap + 1)) == NULL)
		return keystore_fail(out, -ENOMEM, "out of memory");
	memset(f->data, 0, cap + 1);
	while (f->size < cap) {
		n = pread(fd, f->data + f->size, cap - f->size,
		    (off_t)f->size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			keystore_fail(out, -errno, "cannot read %s %s: %s", what,
			    path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		f->size += (size_t)n;
	}
	if (f->size != cap) {
		keystore_fail(out, -EIO, "%s %s changed while it was read",
		    what, path);
		goto fail;
	}
	return 0;
fail:
	keystore_file_wipe(f);
	return out->status;
}

/* Passphrase: the file's first line, without its line end. */
static int
keystore_passphrase(struct keystore_file *f, const char *path,
    struct ipc_key_loaded *out)
{
	size_t len;

	if (f->data == NULL)	/* keystore_read() failed: said already */
		return out->status < 0 ? out->status : -EINVAL;
	len = strnlen((char *)f->data, f->size);
	if (len != f->size)
		return keystore_fail(out, -EINVAL, "passphrase file for %s "
		    "contains a NUL byte", path);
	while (len > 0 && (f->data[len - 1] == '\n' || f->data[len - 1] == '\r'))
		f->data[--len] = '\0';
	if (memchr(f->data, '\n', len) != NULL)
		return keystore_fail(out, -EINVAL, "passphrase file for %s has "
		    "more than one line", path);
	if (len == 0)
		return keystore_fail(out, -EINVAL, "passphrase file for %s is "
		    "empty", path);
	return 0;
}

/* The public key of the private key and of the certificate, DER-compared. */
static int
keystore_match(gnutls_privkey_t pkey, gnutls_x509_crt_t crt, int *same)
{
	gnutls_pubkey_t kpub = NULL, cpub = NULL;
	gnutls_datum_t kder = { NULL, 0 }, cder = { NULL, 0 };
	int r;

	*same = 0;
	if ((r = gnutls_pubkey_init(&kpub)) < 0 ||
	    (r = gnutls_pubkey_init(&cpub)) < 0)
		goto out;
	if ((r = gnutls_pubkey_import_privkey(kpub, pkey, 0, 0)) < 0 ||
	    (r = gnutls_pubkey_import_x509(cpub, crt, 0)) < 0)
		goto out;
	if ((r = gnutls_pubkey_export2(kpub, GNUTLS_X509_FMT_DER, &kder)) < 0 ||
	    (r = gnutls_pubkey_export2(cpub, GNUTLS_X509_FMT_DER, &cder)) < 0)
		goto out;
	*same = kder.size == cder.size &&
	    memcmp(kder.data, cder.data, kder.size) == 0;
	r = 0;
out:
	gnutls_free(kder.data);
	gnutls_free(cder.data);
	if (kpub != NULL)
		gnutls_pubkey_deinit(kpub);
	if (cpub != NULL)
		gnutls_pubkey_deinit(cpub);
	return r;
}

/* Fill info for a supported key, or explain why it is not supported. */
static int
keystore_describe(gnutls_privkey_t pkey, const struct ipc_key_load *kl,
    struct ipc_key_info *info, struct ipc_key_loaded *out)
{
	gnutls_pubkey_t pub = NULL;
	gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;
	unsigned bits = 0;
	int pk, r;

	memset(info, 0, sizeof(*info));
	pk = gnutls_privkey_get_pk_algorithm(pkey, &bits);
	switch (pk) {
	case GNUTLS_PK_RSA:
		if (bits < 2048 || bits > 4096)
			return keystore_fail(out, -EOPNOTSUPP, "unsupported key "
			    "%s: RSA %u bits (need 2048 to 4096)", kl->key_path,
			    bits);
		break;
	case GNUTLS_PK_ECDSA:
		if ((r = gnutls_pubkey_init(&pub)) < 0 ||
		    (r = gnutls_pubkey_import_privkey(pub, pkey, 0, 0)) < 0 ||
		    (r = gnutls_pubkey_export_ecc_raw2(pub, &curve, NULL, NULL,
		    0)) < 0) {
			if (pub != NULL)
				gnutls_pubkey_deinit(pub);
			return keystore_fail(out, -EINVAL, "cannot read the curve "
			    "of %s: %s", kl->key_path, gnutls_strerror(r));
		}
		gnutls_pubkey_deinit(pub);
		if (curve == GNUTLS_ECC_CURVE_SECP256R1)
			bits = 256;
		else if (curve == GNUTLS_ECC_CURVE_SECP384R1)
			bits = 384;
		else
			return keystore_fail(out, -EOPNOTSUPP, "unsupported key "
			    "%s: ECDSA on curve %s (need P-256 or P-384)",
			    kl->key_path, gnutls_ecc_curve_get_name(curve) ?
			    gnutls_ecc_curve_get_name(curve) : "unknown");
		break;
	case GNUTLS_PK_EDDSA_ED25519:
		bits = 256;
		break;
	default:
		return keystore_fail(out, -EOPNOTSUPP, "unsupported key %s: %s "
		    "(need RSA, ECDSA P-256/P-384 or Ed25519)", kl->key_path,
		    pk > 0 && gnutls_pk_get_name(pk) != NULL ?
		    gnutls_pk_get_name(pk) : "unknown algorithm");
	}
	info->key_id = kl->key_id;
	info->pk_algo = (uint32_t)pk;
	info->bits = bits;
	info->nsign = ipc_sigalg_list((uint32_t)pk, bits, info->sign_algos,
	    IPC_MAX_SIGN_ALGOS);
	snprintf(info->name, sizeof(info->name), "%s", kl->name);
	if (info->nsign == 0)
		return keystore_fail(out, -EOPNOTSUPP, "no TLS signature "
		    "algorithm for key %s", kl->key_path);
	return 0;
}

/* Seconds since *since on the monotonic clock. */
static double
keystore_since(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - since->tv_sec) +
	    (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

/*
 * How long one private-key operation with k takes on this machine: the
 * fastest of a handful of signatures over dummy TLS 1.3 CertificateVerify
 * content (random transcript hash; signed, timed, wiped, never sent),
 * with the key's first algorithm, as a handshake's would be.  The fastest
 * and not the mean: a CPU that happens to be busy while the key loads must
 * not make the limits derived from it (keyd.c) tighter than the machine.
 * At most KEYSTORE_BENCH_OPS and KEYSTORE_BENCH_MAX_S once
 * KEYSTORE_BENCH_MIN are done, so a slow key (RSA-4096) delays its load
 * by some 50 ms.  An RSA decryption costs what a signature does.
 */
static int
keystore_bench(struct keystore_key *k)
{
	struct ipc_sign_req req;
	gnutls_datum_t sig;
	uint8_t hash[32], content[POLICY_TLS13_CV_PREFIX + 32];
	struct timespec start, t0;
	double t;
	int i, r;

	memset(&req, 0, sizeof(req));
	req.key_id = k->info.key_id;
	req.sign_algo = k->info.sign_algos[0];
	req.form = IPC_SIGN_CONTENT;
	req.data = content;
	k->op_s = 0;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (i = 0; i < KEYSTORE_BENCH_OPS; i++) {
		if ((r = gnutls_rnd(GNUTLS_RND_NONCE, hash, sizeof(hash))) < 0)
			return r;
		req.data_len = policy_tls13_cv_make(content, hash,
		    sizeof(hash));
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if ((r = keystore_sign(k, &req, &sig)) < 0)
			return r;
		/* 1 us at least: a clock this coarse must not divide by 0. */
		if ((t = keystore_since(&t0)) < 1e-6)
			t = 1e-6;
		gnutls_free(sig.data);
		if (k->op_s == 0 || t < k->op_s)
			k->op_s = t;
		if (i + 1 >= KEYSTORE_BENCH_MIN &&
		    keystore_since(&start) >= KEYSTORE_BENCH_MAX_S)
			break;
	}
	return 0;
}

static const char *
keystore_cert_name(const struct ipc_key_load *kl)
{
	return kl->cert_path[0] != '\0' ? kl->cert_path : "(certificate)";
}

/* k->privkey from the PEM key file kf (and passphrase pf), wiping both. */
static int
keystore_privkey_file(struct keystore_key *k, const struct ipc_key_load *kl,
    struct keystore_file *kf, struct keystore_file *pf,
    struct ipc_key_loaded *out)
{
	gnutls_x509_privkey_t xkey = NULL;
	const int has_pass = pf->data != NULL;
	int r;

	if ((r = gnutls_x509_privkey_init(&xkey)) < 0) {
		keystore_fail(out, -ENOMEM, "gnutls_x509_privkey_init: %s",
		    gnutls_strerror(r));
		goto out;
	}
	r = keystore_import_pem(xkey, kf,
	    has_pass ? (const char *)pf->data : NULL);
	keystore_file_wipe(kf);
	keystore_file_wipe(pf);
	if (r == GNUTLS_E_DECRYPTION_FAILED || (r < 0 && has_pass)) {
		keystore_fail(out, -EACCES, "cannot decrypt private key %s: "
		    "%s (wrong passphrase?)", kl->key_path, gnutls_strerror(r));
		goto out;
	}
	if (r < 0) {
		keystore_fail(out, -EINVAL, "cannot parse private key %s: %s "
		    "(an encrypted key needs a passphrase file)", kl->key_path,
		    gnutls_strerror(r));
		goto out;
	}
	if ((r = gnutls_x509_privkey_verify_params(xkey)) < 0) {
		keystore_fail(out, -EINVAL, "private key %s is inconsistent: %s",
		    kl->key_path, gnutls_strerror(r));
		goto out;
	}
	if ((r = gnutls_privkey_init(&k->privkey)) < 0 ||
	    (r = gnutls_privkey_import_x509(k->privkey, xkey,
	    GNUTLS_PRIVKEY_IMPORT_AUTO_RELEASE)) < 0) {
		keystore_fail(out, -ENOMEM, "cannot wrap private key %s: %s",
		    kl->key_path, gnutls_strerror(r));
		goto out;
	}
	xkey = NULL;	/* owned by k->privkey now */
	out->status = 0;
out:
	keystore_file_wipe(kf);
	keystore_file_wipe(pf);
	if (xkey != NULL)
		gnutls_x509_privkey_deinit(xkey);
	return out->status;
}

/*
 * k->privkey from the token through the module keyd loaded at start,
 * logging in with k->pin when the token asks (keyd_pkcs11.c).  RSA key
 * exchange is refused for token keys: keystore_decrypt()'s defence
 * against a padding oracle rests on GnuTLS's constant-time decryption of
 * a key it holds, and a token's C_Decrypt answers a bad padding with its
 * own error, in its own time.
 */
static int
keystore_privkey_url(struct keystore_key *k, const struct ipc_key_load *kl,
    struct ipc_key_loaded *out)
{
	char why[IPC_ERRMSG_MAX];
	int r;

	if (kl->flags & IPC_KEY_F_ALLOW_DECRYPT)
		return keystore_fail(out, -EOPNOTSUPP, "key %s: RSA key "
		    "exchange is not offered with a key on a PKCS#11 token (its "
		    "decryption is not known to be constant-time); remove the "
		    "RSA key exchange from the priority", kl->key_path);
	k->token = 1;
	if ((r = keyd_pkcs11_import(&k->privkey, kl->key_path, &k->pin, why,
	    sizeof(why))) < 0)
		return keystore_fail(out, r, "%s", why);
	return 0;
}

/*
 * Import the key of kl from fds [key, cert(, passphrase)] (a PEM file) or
 * [cert(, PIN)] (IPC_KEY_F_PKCS11: kl->key_path is the URI), check it
 * against the first certificate of the cert file, and store it under
 * kl->key_id, replacing the key that had this id.  out is the
 * IPC_KEY_LOAD_REPLY payload; the return value is out->status.  The
 * caller closes the fds.
 */
int
keystore_load(struct keystore *ks, const struct ipc_key_load *kl,
    const int *fds, unsigned nfds, struct ipc_key_loaded *out)
{
	struct keystore_file kf = { NULL, 0 }, cf = { NULL, 0 },
	    pf = { NULL, 0 };
	struct keystore_key *k = NULL, *old;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t d;
	const int token = (kl->flags & IPC_KEY_F_PKCS11) != 0;
	const int *cert_fd = token ? &fds[0] : &fds[1];
	unsigned want;
	int r, same;

	memset(out, 0, sizeof(*out));
	want = (token ? 1 : 2) + ((kl->flags & IPC_KEY_F_HAS_PASS) ? 1 : 0);
	if (kl->key_id >= IPC_MAX_KEYS) {
		keystore_fail(out, -EINVAL, "key id %u out of range",
		    kl->key_id);
		goto out;
	}
	/* the list of what keyd holds must fit one IPC_KEY_LIST_REPLY */
	if (ks->keys[kl->key_id] == NULL && ks->count >= IPC_MAX_KEYS_HELD) {
		keystore_fail(out, -ENOSPC, "key %s: keyd holds %u keys "
		    "already, the most it may", kl->key_path, ks->count);
		goto out;
	}
	if (nfds != want) {
		keystore_fail(out, -EINVAL, "key %s: expected %u file "
		    "descriptors, got %u", kl->key_path, want, nfds);
		goto out;
	}
	if ((!token && keystore_read(fds[0], "key file", kl->key_path, 1, &kf,
	    out) < 0) || keystore_read(*cert_fd, "certificate",
	    keystore_cert_name(kl), 0, &cf, out) < 0)
		goto out;
	if ((kl->flags & IPC_KEY_F_HAS_PASS) && (keystore_read(fds[want - 1],
	    token ? "PIN file for" : "passphrase file for", kl->key_path, 1,
	    &pf, out) < 0 || keystore_passphrase(&pf, kl->key_path, out) < 0))
		goto out;

	if ((r = gnutls_x509_crt_init(&crt)) < 0) {
		keystore_fail(out, -ENOMEM, "gnutls_x509_crt_init: %s",
		    gnutls_strerror(r));
		goto out;
	}
	d.data = cf.data;
	d.size = (unsigned)cf.size;
	if ((r = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM)) < 0) {
		keystore_fail(out, -EINVAL, "cannot parse certificate %s: %s",
		    keystore_cert_name(kl), gnutls_strerror(r));
		goto out;
	}

	if ((k = calloc(1, sizeof(*k))) == NULL) {
		keystore_fail(out, -ENOMEM, "out of memory");
		goto out;
	}
	atomic_init(&k->refs, 1);
	atomic_init(&k->pin.asked, 0);
	pthread_mutex_init(&k->token_lock, NULL);
	k->flags = kl->flags;
	if (token) {
		k->pin_file = pf;		/* the key keeps its PIN */
		pf.data = NULL;
		pf.size = 0;
		k->pin.value = (const char *)k->pin_file.data;
		k->pin.len = k->pin_file.size;
		if (keystore_privkey_url(k, kl, out) < 0)
			goto out;
	} else if (keystore_privkey_file(k, kl, &kf, &pf, out) < 0) {
		goto out;
	}

	if (keystore_describe(k->privkey, kl, &k->info, out) < 0)
		goto out;
	if ((r = keystore_match(k->privkey, crt, &same)) < 0) {
		keystore_fail(out, -EINVAL, "cannot compare key %s with "
		    "certificate %s: %s", kl->key_path, keystore_cert_name(kl),
		    gnutls_strerror(r));
		goto out;
	}
	if (!same) {
		keystore_fail(out, -EKEYREJECTED, "key %s does not match "
		    "certificate %s", kl->key_path, keystore_cert_name(kl));
		goto out;
	}
	if ((r = keystore_bench(k)) < 0) {
		keystore_fail(out, -EINVAL, "cannot sign with key %s: %s",
		    kl->key_path, gnutls_strerror(r));
		goto out;
	}

	old = ks->keys[kl->key_id];
	ks->keys[kl->key_id] = k;
	if (old == NULL)
		ks->count++;
	else
		keystore_key_unref(old);
	out->status = 0;
	out->info = k->info;
	snprintf(out->msg, sizeof(out->msg), "%s", old != NULL ?
	    "replaced" : "loaded");
	k = NULL;
out:
	keystore_file_wipe(&kf);
	keystore_file_wipe(&pf);
	keystore_file_wipe(&cf);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	if (k != NULL)
		keystore_key_unref(k);
	return out->status;
}

/* Borrowed pointer; main thread only. */
struct keystore_key *
keystore_get(struct keystore *ks, uint32_t key_id)
{
	if (key_id >= IPC_MAX_KEYS)
		return NULL;
	return ks->keys[key_id];
}

unsigned
keystore_list(const struct keystore *ks, struct ipc_key_info *out,
    unsigned max)
{
	unsigned i, n = 0;

	for (i = 0; i < IPC_MAX_KEYS && n < max; i++)
		if (ks->keys[i] != NULL)
			out[n++] = ks->keys[i]->info;
	return n;
}

/*
 * Forget the key in slot key_id (IPC_KEY_DROP): later lookups find
 * nothing, and the key is wiped as soon as no queued or running job holds
 * it any more (keystore_key_unref).  Returns 0 or -ENOENT.
 */
int
keystore_drop(struct keystore *ks, uint32_t key_id)
{
	struct keystore_key *k;

	if (key_id >= IPC_MAX_KEYS || (k = ks->keys[key_id]) == NULL)
		return -ENOENT;
	ks->keys[key_id] = NULL;
	ks->count--;
	keystore_key_unref(k);
	return 0;
}

void
keystore_key_ref(struct keystore_key *k)
{
	atomic_fetch_add(&k->refs, 1);
}

/* The last reference deinits the key; GnuTLS zeroes its parameters. */
void
keystore_key_unref(struct keystore_key *k)
{
	if (atomic_fetch_sub(&k->refs, 1) != 1)
		return;
	if (k->privkey != NULL)
		gnutls_privkey_deinit(k->privkey);
	keystore_file_wipe(&k->pin_file);
	pthread_mutex_destroy(&k->token_lock);
	gnutls_memset(k, 0, sizeof(*k));
	free(k);
}

void
keystore_clear(struct keystore *ks)
{
	unsigned i;

	for (i = 0; i < IPC_MAX_KEYS; i++) {
		if (ks->keys[i] != NULL)
			keystore_key_unref(ks->keys[i]);
		ks->keys[i] = NULL;
	}
	ks->count = 0;
}

const struct ipc_key_info *
keystore_key_info(const struct keystore_key *k)
{
	return &k->info;
}

uint32_t
keystore_key_flags(const struct keystore_key *k)
{
	return k->flags;
}

/* How many operations with k can run at once: a token key's one session. */
unsigned
keystore_key_parallel(const struct keystore_key *k, unsigned threads)
{
	return k->token ? 1 : threads;
}

/* Seconds one signature with k took when it loaded (keystore_bench). */
double
keystore_key_op_seconds(const struct keystore_key *k)
{
	return k->op_s;
}

/*
 * Sign a request that policy_sign_check() accepted.  Content is hashed
 * here; digests go to sign_hash2.  RSA-PSS always uses salt = hash length,
 * which TLS 1.3 requires and TLS 1.2 accepts.  Returns 0 or a GnuTLS error.
 */
static int
keystore_sign_with(struct keystore_key *k, const struct ipc_sign_req *req,
    gnutls_datum_t *sig)
{
	gnutls_datum_t in;
	unsigned flags = 0;

	in.data = (unsigned char *)req->data;
	in.size = (unsigned)req->data_len;
	sig->data = NULL;
	sig->size = 0;
	if (policy_sign_stat(req->sign_algo) == IPC_STAT_RSA_PSS)
		flags |= GNUTLS_PRIVKEY_FLAG_RSA_PSS_FIXED_SALT_LENGTH;

	if (req->form == IPC_SIGN_CONTENT)
		return gnutls_privkey_sign_data2(k->privkey, req->sign_algo,
		    flags, &in, sig);
	if (req->sign_algo == GNUTLS_SIGN_RSA_RAW)
		return gnutls_privkey_sign_hash2(k->privkey, GNUTLS_SIGN_RSA_RAW,
		    GNUTLS_PRIVKEY_SIGN_FLAG_TLS1_RSA, &in, sig);
	return gnutls_privkey_sign_hash2(k->privkey, req->sign_algo, flags,
	    &in, sig);
}

int
keystore_sign(struct keystore_key *k, const struct ipc_sign_req *req,
    gnutls_datum_t *sig)
{
	int r;

	if (!k->token)
		return keystore_sign_with(k, req, sig);
	pthread_mutex_lock(&k->token_lock);
	r = keystore_sign_with(k, req, sig);
	pthread_mutex_unlock(&k->token_lock);
	return r;
}

/*
 * RSA key exchange without a padding oracle (RFC 5246 7.4.7.1), for a
 * ciphertext policy_decrypt_check() accepted.  Whatever the padding, the
 * answer is 0 and a 48-byte premaster in *plain (gnutls_malloc'd): the
 * decrypted secret if the padding was good and the secret 48 bytes long,
 * else 48 random bytes drawn before decrypting.  For a key of our own
 * (GnuTLS 3.7.9 lib/privkey.c -> lib/nettle/pk.c) gnutls_privkey_decrypt_data2
 * decrypts in constant time (nettle's rsa_sec_decrypt) into a buffer of
 * the size asked and computes 0 or GNUTLS_E_DECRYPTION_FAILED without a
 * branch on the outcome; it fails early only on public conditions (the
 * ciphertext's size or value).  The choice between its bytes and the
 * random ones is a mask, not a branch, and nothing else (no error, no
 * log line, no length, no counter) depends on it.
 * The worker's GnuTLS (an import_ext4 key's decrypt callback, through the
 * legacy path of gnutls_privkey_decrypt_data2, which copies a 48-byte
 * answer into the premaster) then finishes the handshake with a random
 * premaster exactly as with a wrong one: it fails at the Finished check,
 * GnuTLS's own defence (lib/auth/rsa.c, proc_rsa_client_kx, which also
 * overwrites the version bytes).  Returns a GnuTLS error only when no
 * random bytes or memory could be had, which says nothing of the padding.
 */
int
keystore_decrypt(struct keystore_key *k, const struct ipc_decrypt_req *req,
    gnutls_datum_t *plain)
{
	uint8_t rnd[KEYSTORE_PREMASTER], dec[KEYSTORE_PREMASTER], keep;
	gnutls_datum_t in;
	uint32_t fail;
	size_t i;
	int r;

	in.data = (unsigned char *)req->data;
	in.size = (unsigned)req->data_len;
	plain->data = NULL;
	plain->size = 0;
	if (k->token)		/* never allowed: keystore_privkey_url() */
		return GNUTLS_E_INVALID_REQUEST;
	if ((r = gnutls_rnd(GNUTLS_RND_RANDOM, rnd, sizeof(rnd))) < 0)
		return r;
	if ((plain->data = gnutls_malloc(sizeof(rnd))) == NULL) {
		gnutls_memset(rnd, 0, sizeof(rnd));
		return GNUTLS_E_MEMORY_ERROR;
	}
	memset(dec, 0, sizeof(dec));
	r = gnutls_privkey_decrypt_data2(k->privkey, 0, &in, dec, sizeof(dec));
	/* 1 if r != 0, from the sign bit of r | -r: no comparison. */
	fail = ((uint32_t)r | (0u - (uint32_t)r)) >> 31;
	keep = (uint8_t)(fail - 1u);	/* 0xff: the decrypted bytes */
	for (i = 0; i < sizeof(dec); i++)
		plain->data[i] = (uint8_t)((dec[i] & keep) | (rnd[i] & ~keep));
	plain->size = sizeof(dec);
	gnutls_memset(dec, 0, sizeof(dec));
	gnutls_memset(rnd, 0, sizeof(rnd));
	return 0;
}
