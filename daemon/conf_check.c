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
#include "privdrop.h"

int
config_user_check(struct config_parse *p, int line, const char *key,
    const char *user, int is_default)
{
	struct privdrop pd;
	int r;

	if ((r = privdrop_lookup(user, &pd)) == -EPERM) {
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
 * A certificate chain: readable, and PEM that GnuTLS parses into at least
 * one certificate.  0, or a negative errno with the reason in why: -EINVAL
 * when the file was read but does not parse.
 */
int
config_check_cert_file(const char *path, char *why, size_t whylen)
{
	gnutls_x509_crt_t *crts = NULL;
	gnutls_datum_t data = { NULL, 0 };
	unsigned ncrt = 0, i;
	int r;

	if (access(path, R_OK) < 0) {
		r = -errno;
		snprintf(why, whylen, "%s", strerror(-r));
		return r;
	}
	if ((r = gnutls_load_file(path, &data)) < 0) {
		snprintf(why, whylen, "%s", gnutls_strerror(r));
		return -EIO;
	}
	r = gnutls_x509_crt_list_import2(&crts, &ncrt, &data,
	    GNUTLS_X509_FMT_PEM, 0);
	gnutls_free(data.data);
	if (r < 0 || ncrt == 0) {
		snprintf(why, whylen, "does not parse as a PEM certificate "
		    "chain: %s", r < 0 ? gnutls_strerror(r) : "no certificate");
		return -EINVAL;
	}
	for (i = 0; i < ncrt; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	return 0;
}

int
config_secret_file(struct config_parse *p, const char *what, const char *path)
{
	char why[256];
	int r;

	if ((r = config_check_secret_file(path, why, sizeof(why))) < 0)
		config_error(p, p->lineno, "%s %s%s%s", what, path,
		    r == -EPERM ? " is " : ": ", why);
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

static int
config_check_key(const struct config *cfg, const struct frontend *fe,
    char *err, size_t errlen)
{
	gnutls_datum_t keydata = { NULL, 0 }, certdata = { NULL, 0 };
	gnutls_datum_t der1 = { NULL, 0 }, der2 = { NULL, 0 };
	gnutls_x509_crt_t *crts = NULL;
	unsigned ncrt = 0, i;
	gnutls_privkey_t priv = NULL;
	gnutls_pubkey_t pub_key = NULL, pub_cert = NULL;
	char pass[1024];
	int r, ret = -EINVAL;

	pass[0] = '\0';
	if (fe->key_passphrase_file[0] != '\0' &&
	    config_read_passphrase(fe->key_passphrase_file, pass,
	    sizeof(pass)) < 0) {
		snprintf(err, errlen, "%s:%d: key-passphrase-file %s cannot be "
		    "read", cfg->path, fe->key_line, fe->key_passphrase_file);
		goto out;
	}
	if ((r = gnutls_load_file(fe->key, &keydata)) < 0) {
		snprintf(err, errlen, "%s:%d: key file %s: %s", cfg->path,
		    fe->key_line, fe->key, gnutls_strerror(r));
		goto out;
	}
	if ((r = gnutls_privkey_init(&priv)) < 0 ||
	    (r = gnutls_privkey_import_x509_raw(priv, &keydata,
	    GNUTLS_X509_FMT_PEM, pass[0] != '\0' ? pass : NULL, 0)) < 0) {
		snprintf(err, errlen, "%s:%d: key file %s does not parse as a "
		    "PEM private key: %s", cfg->path, fe->key_line, fe->key,
		    gnutls_strerror(r));
		goto out;
	}
	if ((r = gnutls_load_file(fe->cert, &certdata)) < 0 ||
	    (r = gnutls_x509_crt_list_import2(&crts, &ncrt, &certdata,
	    GNUTLS_X509_FMT_PEM, 0)) < 0 || ncrt == 0) {
		snprintf(err, errlen, "%s:%d: cert file %s does not parse",
		    cfg->path, fe->cert_line, fe->cert);
		goto out;
	}
	if ((r = gnutls_pubkey_init(&pub_key)) < 0 ||
	    (r = gnutls_pubkey_init(&pub_cert)) < 0 ||
	    (r = gnutls_pubkey_import_privkey(pub_key, priv, 0, 0)) < 0 ||
	    (r = gnutls_pubkey_import_x509(pub_cert, crts[0], 0)) < 0 ||
	    (r = config_pubkey_der(pub_key, &der1)) < 0 ||
	    (r = config_pubkey_der(pub_cert, &der2)) < 0) {
		snprintf(err, errlen, "%s:%d: key file %s: cannot compare with "
		    "cert %s: %s", cfg->path, fe->key_line, fe->key, fe->cert,
		    gnutls_strerror(r));
		goto out;
	}
	if (der1.size != der2.size ||
	    memcmp(der1.data, der2.data, der1.size) != 0) {
		snprintf(err, errlen, "%s:%d: key file %s does not match "
		    "certificate %s", cfg->path, fe->key_line, fe->key,
		    fe->cert);
		goto out;
	}
	ret = 0;
out:
	explicit_bzero(pass, sizeof(pass));
	if (keydata.data != NULL) {
		gnutls_memset(keydata.data, 0, keydata.size);
		gnutls_free(keydata.data);
	}
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

int
config_check_keys(const struct config *cfg, char *err, size_t errlen)
{
	unsigned i;
	int r;

	for (i = 0; i < cfg->nfrontends; i++)
		if ((r = config_check_key(cfg, &cfg->frontends[i], err,
		    errlen)) < 0)
			return r;
	return 0;
}
