/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conf_check.c -- what moat.conf names must be on this system: sandbox
 * users that exist and are not root, key and passphrase files private to
 * their owner, certificate chains that parse, and (moatd -t only) keys that
 * load and match their certificate.
 *
 * config_load() runs the file checks as it reads each key; a certificate
 * rotation runs the same ones again on the files as they are now.  Only
 * config_check_keys() reads a private key, in a process that exits next.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "conf.h"
#include "conf_int.h"
#include "ipc_sigalgs.h"
#include "privdrop.h"

int
config_user_check(struct config_parse *p, int line, const char *key,
    const char *user, int is_default)
{
	struct privdrop pd;
	int r;

	if ((r = p->sys->user(user, &pd)) == -EPERM) {
		config_error(p, line, "%s '%s' is root: a sandbox user must not "
		    "be uid 0", key, user);
		return r;
	}
	if (r < 0) {
		config_error(p, line, "unknown user '%s' for %s%s%s", user, key,
		    is_default ? " (the default; create it or set " : "",
		    is_default ? "another in [moat])" : "");
		return r;
	}
	return 0;
}

/*
 * A file holding a secret (a key, a passphrase): a regular file we can open,
 * neither readable nor writable by group or others.  0, or a negative errno
 * with the reason, without the path, in why.  Start-up (config_load) and a
 * certificate rotation (daemon/master/reload.c) make this same check.
 */
int
config_check_secret_file(const char *path, char *why, size_t whylen)
{
	struct stat st;
	int fd, r;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		r = -errno;
		snprintf(why, whylen, "%s", strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(why, whylen, "not a regular file");
		return -EINVAL;
	}
	close(fd);
	if (st.st_mode & 044) {
		snprintf(why, whylen, "readable by others (mode %04o); chmod 600 "
		    "it", (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	if (st.st_mode & 022) {
		snprintf(why, whylen, "writable by others (mode %04o); chmod 600 "
		    "it", (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/*
 * The ticket-key-file: a secret file as above holding 32 bytes to 4 KiB,
 * all of which are the secret (a trailing newline included: every node
 * has the same file).  Into out (gnutls_malloc; the caller wipes and frees
 * it); 0, or -errno with why.
 */
int
config_ticket_secret_read(const char *path, gnutls_datum_t *out, char *why,
    size_t whylen)
{
	struct stat st;
	ssize_t n;
	size_t off = 0;
	int fd, r;

	out->data = NULL;
	out->size = 0;
	if ((r = config_check_secret_file(path, why, whylen)) < 0)
		return r;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		r = -errno;
		snprintf(why, whylen, "%s", strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0 || st.st_size < CONFIG_TICKET_SECRET_MIN ||
	    st.st_size > CONFIG_TICKET_SECRET_MAX) {
		snprintf(why, whylen, "holds %lld bytes; it must hold %u to %u "
		    "bytes of secret", (long long)st.st_size,
		    CONFIG_TICKET_SECRET_MIN, CONFIG_TICKET_SECRET_MAX);
		close(fd);
		return -EINVAL;
	}
	if ((out->data = gnutls_malloc((size_t)st.st_size)) == NULL) {
		close(fd);
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	while (off < (size_t)st.st_size) {
		n = read(fd, out->data + off, (size_t)st.st_size - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	if (off != (size_t)st.st_size) {
		/* short: the file changed under us, or an I/O error */
		gnutls_memset(out->data, 0, (size_t)st.st_size);
		gnutls_free(out->data);
		out->data = NULL;
		snprintf(why, whylen, "short read");
		return -EIO;
	}
	out->size = (unsigned)off;
	return 0;
}

/*
 * A certificate chain: readable, PEM that GnuTLS parses into at least one
 * certificate, and nothing secret: a file that also holds a private key
 * (a HAProxy-style combined PEM) is refused, since the master and every
 * worker read the chain.  *pk is the leaf's public-key algorithm.  0, or a
 * negative errno with the reason in why: -EINVAL when the file was read
 * but is not what it must be.  What was read is wiped before it is freed,
 * whatever it held.
 */
int
config_check_cert_file(const char *path, int *pk, char *why, size_t whylen)
{
	int fd, r;

	*pk = GNUTLS_PK_UNKNOWN;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		r = -errno;
		snprintf(why, whylen, "%s", strerror(-r));
		return r;
	}
	r = config_cert_snapshot(fd, NULL, pk, why, whylen);
	close(fd);
	return r;
}

/*
 * Does the priority enable a PSK key exchange?  Then GnuTLS may resume a
 * TLS 1.3 ticket in psk_ke mode, without (EC)DHE (lib/ext/psk_ke_modes.c
 * accepts only psk_dhe_ke when the priority lists none), so a frontend
 * with tickets refuses it (conf_load.c; the workers get the checked config).
 */
int
config_priority_plain_psk(gnutls_priority_t prio)
{
	const unsigned *list;
	int n, i;

	n = gnutls_priority_kx_list(prio, &list);
	for (i = 0; i < n; i++)
		if (list[i] == GNUTLS_KX_PSK || list[i] == GNUTLS_KX_DHE_PSK ||
		    list[i] == GNUTLS_KX_ECDHE_PSK || list[i] == GNUTLS_KX_RSA_PSK)
			return 1;
	return 0;
}

/* Does the priority enable TLS 1.2 (or older)? */
static int
config_priority_has_tls12(gnutls_priority_t prio)
{
	const unsigned *list;
	int n, i;

	n = gnutls_priority_protocol_list(prio, &list);
	for (i = 0; i < n; i++)
		if (list[i] != GNUTLS_TLS1_3 && list[i] != GNUTLS_DTLS1_2 &&
		    list[i] != GNUTLS_DTLS1_0 && list[i] != GNUTLS_DTLS0_9)
			return 1;
	return 0;
}

/* Does key exchange kx make the server sign with a key of kind pk? */
static int
config_kx_signs_with(unsigned kx, int pk)
{
	switch (kx) {
	case GNUTLS_KX_ECDHE_ECDSA:
		return pk == GNUTLS_PK_ECDSA || pk == GNUTLS_PK_EDDSA_ED25519 ||
		    pk == GNUTLS_PK_EDDSA_ED448;
	case GNUTLS_KX_ECDHE_RSA:
	case GNUTLS_KX_DHE_RSA:
		return pk == GNUTLS_PK_RSA || pk == GNUTLS_PK_RSA_PSS;
	default:
		return 0;
	}
}

/*
 * What keyd may do with a frontend's key of kind cert_pk (IPC_KEY_F_*),
 * from the frontend's final priority string.  GnuTLS 3.7 hands an
 * external RSA or ECDSA key only a digest of a TLS 1.2 ServerKeyExchange
 * (keyd/policy.h), so such a key gets IPC_KEY_F_ALLOW_DIGEST exactly when
 * the priority enables TLS 1.2 with a key exchange that signs with it; a
 * TLS 1.3-only frontend or an EdDSA key never does, and keyd then checks
 * every byte it signs.  keyd-sign = content-only refuses a priority that
 * would need it (-EINVAL, why says so).  DHE key exchanges add
 * IPC_KEY_F_ALLOW_DHE, allow-rsa-kx IPC_KEY_F_ALLOW_DECRYPT.
 */
int
config_keyd_flags(const struct frontend *fe, int cert_pk, unsigned *flags,
    char *why, size_t whylen)
{
	gnutls_priority_t prio;
	const unsigned *list;
	int n, i, tls12 = 0, digest = 0, dhe = 0, r;

	*flags = fe->allow_rsa_kx ? IPC_KEY_F_ALLOW_DECRYPT : 0;
	if ((r = gnutls_priority_init2(&prio, fe->priority, NULL, 0)) < 0) {
		snprintf(why, whylen, "bad priority string: %s",
		    gnutls_strerror(r));
		return -EINVAL;
	}
	tls12 = config_priority_has_tls12(prio);
	n = tls12 ? gnutls_priority_kx_list(prio, &list) : 0;
	for (i = 0; i < n; i++) {
		if (config_kx_signs_with(list[i], cert_pk) &&
		    cert_pk != GNUTLS_PK_EDDSA_ED25519 &&
		    cert_pk != GNUTLS_PK_EDDSA_ED448)
			digest = 1;
		if (list[i] == GNUTLS_KX_DHE_RSA || list[i] == GNUTLS_KX_DHE_DSS)
			dhe = 1;
	}
	gnutls_priority_deinit(prio);
	if (digest && fe->keyd_sign_content_only) {
		snprintf(why, whylen, "the priority enables TLS 1.2 for this %s "
		    "key, which keyd can only sign as a bare digest, and "
		    "keyd-sign = content-only forbids that: make the priority "
		    "TLS 1.3-only (-VERS-TLS1.2) or use an Ed25519 key",
		    gnutls_pk_get_name((gnutls_pk_algorithm_t)cert_pk));
		return -EINVAL;
	}
	if (digest)
		*flags |= IPC_KEY_F_ALLOW_DIGEST;
	if (dhe)
		*flags |= IPC_KEY_F_ALLOW_DHE;
	return 0;
}

int
config_secret_file(struct config_parse *p, const char *what, const char *path)
{
	char why[256];
	int r;

	if ((r = p->sys->secret_file(path, why, sizeof(why))) < 0)
		config_error(p, p->lineno, "%s %s%s%s", what, path,
		    r == -EPERM ? " is " : ": ", why);
	return r;
}

/*
 * A file that must hold certificates only (a chain, a CA bundle): the
 * checks of config_check_cert_file(), and "WHAT PATH: why" on failure.
 * *pk is the first certificate's key type.
 */
int
config_cert_file(struct config_parse *p, const char *what, const char *path,
    int *pk)
{
	char why[256];
	int r;

	if ((r = p->sys->cert_file(path, pk, why, sizeof(why))) < 0)
		config_error(p, p->lineno, "%s %s%s%s", what, path,
		    r == -EINVAL ? " " : ": ", why);
	return r;
}

/* --- moatd -t: the key checks keyd would make --------------------------- */

static int
config_read_passphrase(const char *path, char *buf, size_t size)
{
	gnutls_datum_t d = { NULL, 0 };
	size_t n;
	int r;

	if ((r = gnutls_load_file(path, &d)) < 0)
		return -EIO;
	n = d.size;
	while (n > 0 && (d.data[n - 1] == '\n' || d.data[n - 1] == '\r'))
		n--;
	if (n >= size) {
		gnutls_memset(d.data, 0, d.size);
		gnutls_free(d.data);
		return -ENAMETOOLONG;
	}
	memcpy(buf, d.data, n);
	buf[n] = '\0';
	gnutls_memset(d.data, 0, d.size);
	gnutls_free(d.data);
	return 0;
}

static int
config_pubkey_der(gnutls_pubkey_t pub, gnutls_datum_t *der)
{
	return gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, der);
}

/*
 * Would GnuTLS ever pick sign for a key of kind pk with bits?  Not an
 * ECDSA algorithm bound to another curve, nor RSA-PSS with a PSS key's
 * parameters (rsa_pss_pss_*) for an rsaEncryption key.
 */
static int
config_sign_fits_key(unsigned sign, int pk, unsigned bits)
{
	switch (sign) {
	case GNUTLS_SIGN_ECDSA_SECP256R1_SHA256:
		return bits == 256;
	case GNUTLS_SIGN_ECDSA_SECP384R1_SHA384:
		return bits == 384;
	case GNUTLS_SIGN_ECDSA_SECP521R1_SHA512:
		return bits == 521;
	case GNUTLS_SIGN_RSA_PSS_SHA256:
	case GNUTLS_SIGN_RSA_PSS_SHA384:
	case GNUTLS_SIGN_RSA_PSS_SHA512:
		return pk == GNUTLS_PK_RSA_PSS;
	default:
		return gnutls_sign_supports_pk_algorithm(sign,
		    (gnutls_pk_algorithm_t)pk);
	}
}

/*
 * moatd -t: the signature algorithms fe's priority enables for its key
 * (of kind pk, bits) that keyd never signs (ipc_sigalgs.h).  The worker's
 * key tells GnuTLS so, and GnuTLS picks another one the client offers or
 * fails the handshake with handshake_failure; the warning says that a
 * client offering only those cannot connect.
 */
static void
config_warn_sigalgs(const struct config *cfg, const struct frontend *fe,
    int pk, unsigned bits, FILE *out)
{
	gnutls_priority_t prio;
	uint32_t served[IPC_MAX_SIGN_ALGOS];
	const unsigned *list;
	char names[400];
	unsigned nserved, j;
	int n, i, found;
	size_t used = 0;

	if (out == NULL || gnutls_priority_init2(&prio, fe->priority, NULL,
	    0) < 0)
		return;
	if (!config_priority_has_tls12(prio)) {
		/* TLS 1.3 uses only algorithms keyd serves for its keys */
		gnutls_priority_deinit(prio);
		return;
	}
	nserved = ipc_sigalg_list((uint32_t)pk, bits, served, IPC_MAX_SIGN_ALGOS);
	names[0] = '\0';
	n = gnutls_priority_sign_list(prio, &list);
	for (i = 0; i < n; i++) {
		if (!config_sign_fits_key(list[i], pk, bits))
			continue;
		for (j = 0, found = 0; j < nserved; j++)
			found |= served[j] == list[i];
		if (!found && used < sizeof(names))
			used += (size_t)snprintf(names + used, sizeof(names) -
			    used, "%s%s", used > 0 ? ", " : "",
			    gnutls_sign_get_name(list[i]));
	}
	gnutls_priority_deinit(prio);
	if (names[0] != '\0')
		fprintf(out, "%s:%d: warning: frontend %s: the priority enables "
		    "%s for its %s key, which keyd never signs; handshakes use "
		    "another algorithm the client offers, and a client that "
		    "offers only these gets handshake_failure\n", cfg->path,
		    fe->line, fe->name, names,
		    gnutls_pk_get_name((gnutls_pk_algorithm_t)pk));
}

static int
config_check_key(const struct config *cfg, const struct frontend *fe,
    const struct frontend_cert *fc, FILE *warnings, char *err, size_t errlen)
{
	gnutls_datum_t keydata = { NULL, 0 }, certdata = { NULL, 0 };
	gnutls_datum_t der1 = { NULL, 0 }, der2 = { NULL, 0 };
	gnutls_x509_crt_t *crts = NULL;
	unsigned ncrt = 0, i, bits;
	gnutls_privkey_t priv = NULL;
	gnutls_pubkey_t pub_key = NULL, pub_cert = NULL;
	char pass[1024];
	int r, pk, ret = -EINVAL;

	pass[0] = '\0';
	if (fe->key_passphrase_file[0] != '\0' &&
	    config_read_passphrase(fe->key_passphrase_file, pass,
	    sizeof(pass)) < 0) {
		snprintf(err, errlen, "%s:%d: key-passphrase-file %s cannot be "
		    "read", cfg->path, fc->key_line, fe->key_passphrase_file);
		goto out;
	}
	if ((r = gnutls_load_file(fc->key, &keydata)) < 0) {
		snprintf(err, errlen, "%s:%d: key file %s: %s", cfg->path,
		    fc->key_line, fc->key, gnutls_strerror(r));
		goto out;
	}
	if ((r = gnutls_privkey_init(&priv)) < 0 ||
	    (r = gnutls_privkey_import_x509_raw(priv, &keydata,
	    GNUTLS_X509_FMT_PEM, pass[0] != '\0' ? pass : NULL, 0)) < 0) {
		snprintf(err, errlen, "%s:%d: key file %s does not parse as a "
		    "PEM private key: %s", cfg->path, fc->key_line, fc->key,
		    gnutls_strerror(r));
		goto out;
	}
	if ((r = gnutls_load_file(fc->cert, &certdata)) < 0 ||
	    (r = gnutls_x509_crt_list_import2(&crts, &ncrt, &certdata,
	    GNUTLS_X509_FMT_PEM, 0)) < 0 || ncrt == 0) {
		snprintf(err, errlen, "%s:%d: cert file %s does not parse",
		    cfg->path, fc->cert_line, fc->cert);
		goto out;
	}
	if ((r = gnutls_pubkey_init(&pub_key)) < 0 ||
	    (r = gnutls_pubkey_init(&pub_cert)) < 0 ||
	    (r = gnutls_pubkey_import_privkey(pub_key, priv, 0, 0)) < 0 ||
	    (r = gnutls_pubkey_import_x509(pub_cert, crts[0], 0)) < 0 ||
	    (r = config_pubkey_der(pub_key, &der1)) < 0 ||
	    (r = config_pubkey_der(pub_cert, &der2)) < 0) {
		snprintf(err, errlen, "%s:%d: key file %s: cannot compare with "
		    "cert %s: %s", cfg->path, fc->key_line, fc->key, fc->cert,
		    gnutls_strerror(r));
		goto out;
	}
	if (der1.size != der2.size ||
	    memcmp(der1.data, der2.data, der1.size) != 0) {
		snprintf(err, errlen, "%s:%d: key file %s does not match "
		    "certificate %s", cfg->path, fc->key_line, fc->key,
		    fc->cert);
		goto out;
	}
	bits = 0;
	pk = gnutls_x509_crt_get_pk_algorithm(crts[0], &bits);
	config_warn_sigalgs(cfg, fe, pk, bits, warnings);
	ret = 0;
out:
	explicit_bzero(pass, sizeof(pass));
	if (keydata.data != NULL) {
		gnutls_memset(keydata.data, 0, keydata.size);
		gnutls_free(keydata.data);
	}
	gnutls_memset(certdata.data, 0, certdata.size);
	gnutls_free(certdata.data);
	gnutls_free(der1.data);
	gnutls_free(der2.data);
	for (i = 0; i < ncrt; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	if (pub_key != NULL)
		gnutls_pubkey_deinit(pub_key);
	if (pub_cert != NULL)
		gnutls_pubkey_deinit(pub_cert);
	if (priv != NULL)
		gnutls_privkey_deinit(priv);
	return ret;
}

/*
 * A key on a PKCS#11 token: the master never opens the token (keyd, with
 * its module, checks the key against the certificate when it loads it);
 * here the PIN file must be readable and the certificate's key type gives
 * the signature-algorithm warnings.
 */
static int
config_check_token_key(const struct config *cfg, const struct frontend *fe,
    const struct frontend_cert *fc, FILE *warnings, char *err, size_t errlen)
{
	gnutls_datum_t certdata = { NULL, 0 };
	gnutls_x509_crt_t crt = NULL;
	char pin[1024];
	unsigned bits = 0;
	int r, pk, ret = -EINVAL;

	if (fe->key_pin_file[0] != '\0' &&
	    config_read_passphrase(fe->key_pin_file, pin, sizeof(pin)) < 0) {
		snprintf(err, errlen, "%s:%d: key-pin-file %s cannot be read",
		    cfg->path, fe->key_pin_line, fe->key_pin_file);
		goto out;
	}
	if ((r = gnutls_load_file(fc->cert, &certdata)) < 0 ||
	    (r = gnutls_x509_crt_init(&crt)) < 0 ||
	    (r = gnutls_x509_crt_import(crt, &certdata,
	    GNUTLS_X509_FMT_PEM)) < 0) {
		snprintf(err, errlen, "%s:%d: cert file %s does not parse",
		    cfg->path, fc->cert_line, fc->cert);
		goto out;
	}
	pk = gnutls_x509_crt_get_pk_algorithm(crt, &bits);
	config_warn_sigalgs(cfg, fe, pk, bits, warnings);
	fprintf(warnings, "%s:%d: note: frontend %s: key %s is on a PKCS#11 "
	    "token; keyd checks it against certificate %s when it loads it\n",
	    cfg->path, fc->key_line, fe->name, fc->key, fc->cert);
	ret = 0;
out:
	explicit_bzero(pin, sizeof(pin));
	gnutls_free(certdata.data);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	return ret;
}

int
config_check_keys(const struct config *cfg, FILE *warnings, char *err,
    size_t errlen)
{
	const struct frontend *fe;
	gnutls_datum_t secret;
	char why[256];
	unsigned i, j;
	int r;

	for (i = 0; i < cfg->nfrontends; i++) {
		fe = &cfg->frontends[i];
		for (j = 0; j < fe->ncerts; j++)
			if ((r = fe->certs[j].key_pkcs11 ?
			    config_check_token_key(cfg, fe, &fe->certs[j],
			    warnings, err, errlen) :
			    config_check_key(cfg, fe, &fe->certs[j], warnings,
			    err, errlen)) < 0)
				return r;
	}
	/* what the master reads at start, read the same way */
	if (cfg->ticket_key_file[0] != '\0') {
		if ((r = config_ticket_secret_read(cfg->ticket_key_file,
		    &secret, why, sizeof(why))) < 0) {
			snprintf(err, errlen, "%s: ticket-key-file %s: %s",
			    cfg->path, cfg->ticket_key_file, why);
			return r;
		}
		gnutls_memset(secret.data, 0, secret.size);
		gnutls_free(secret.data);
	}
	return 0;
}
