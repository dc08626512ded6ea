/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conf_mtls.c -- the files behind a frontend's client certificates and
 * fips profile, read at start-up by the master (and by moatd -t).
 *
 * ca-file and crl-file are read once, checked (the CAs parse and hold no
 * private key; the CRL parses and is signed by one of those CAs, since
 * GnuTLS would otherwise ignore it) and, for the master, copied into
 * sealed memfds (fe->ca_fd, fe->crl_fd) that every worker inherits and
 * reads like its chain: the chrooted worker opens no path, and what it
 * reads is what was checked.  Changing either file takes a restart.  A
 * fips frontend's certificate key must be RSA of 2048 bits or more, or
 * ECDSA on P-256 or P-384 (conf_profile.c says what else a fips profile
 * is held to).
 */
#include "config.h"

#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "conf.h"
#include "sealed.h"

/* A file, whole, read through a descriptor (conf_cert.c's reader). */
static int
config_mtls_read(const char *path, gnutls_datum_t *out)
{
	int fd, r;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
		return -errno;
	r = config_cert_read(fd, out);
	close(fd);
	return r;
}

static void
config_mtls_free(gnutls_datum_t *d)
{
	if (d->data != NULL)
		gnutls_memset(d->data, 0, d->size);
	gnutls_free(d->data);
	d->data = NULL;
	d->size = 0;
}

/* The CRL parses and every CRL in it is signed by a CA of ca. */
static int
config_mtls_crl(const gnutls_datum_t *ca, const gnutls_datum_t *crl,
    char *why, size_t whylen)
{
	gnutls_x509_crt_t *cas = NULL;
	gnutls_x509_crl_t *crls = NULL;
	unsigned nca = 0, ncrl = 0, i, verify;
	int r;

	r = gnutls_x509_crl_list_import2(&crls, &ncrl, crl,
	    GNUTLS_X509_FMT_PEM, 0);
	if (r < 0 || ncrl == 0) {
		snprintf(why, whylen, "does not parse as a PEM CRL: %s",
		    r < 0 ? gnutls_strerror(r) : "no CRL");
		r = -EINVAL;
		goto out;
	}
	if ((r = gnutls_x509_crt_list_import2(&cas, &nca, ca,
	    GNUTLS_X509_FMT_PEM, 0)) < 0) {
		snprintf(why, whylen, "ca-file: %s", gnutls_strerror(r));
		r = -EINVAL;
		goto out;
	}
	for (i = 0; i < ncrl; i++) {
		r = gnutls_x509_crl_verify(crls[i], cas, nca, 0, &verify);
		if (r < 0 || verify != 0) {
			snprintf(why, whylen, "CRL %u is not signed by a CA of "
			    "ca-file (GnuTLS would not use it)", i + 1);
			r = -EINVAL;
			goto out;
		}
	}
	r = 0;
out:
	for (i = 0; i < ncrl; i++)
		gnutls_x509_crl_deinit(crls[i]);
	gnutls_free(crls);
	for (i = 0; i < nca; i++)
		gnutls_x509_crt_deinit(cas[i]);
	gnutls_free(cas);
	return r;
}

/* A fips frontend's leaf key: RSA >= 2048 bits, or ECDSA P-256/P-384. */
static int
config_mtls_fips_key(const char *path, char *why, size_t whylen)
{
	gnutls_datum_t pem = { NULL, 0 };
	gnutls_x509_crt_t crt = NULL;
	gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;
	unsigned bits = 0;
	int pk, r;

	if ((r = config_mtls_read(path, &pem)) < 0) {
		snprintf(why, whylen, "%s", strerror(-r));
		return r;
	}
	if ((r = gnutls_x509_crt_init(&crt)) < 0 ||
	    (r = gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM)) < 0) {
		snprintf(why, whylen, "%s", gnutls_strerror(r));
		r = -EINVAL;
		goto out;
	}
	pk = gnutls_x509_crt_get_pk_algorithm(crt, &bits);
	r = -EINVAL;
	if (pk == GNUTLS_PK_RSA || pk == GNUTLS_PK_RSA_PSS) {
		if (bits >= 2048)
			r = 0;
		else
			snprintf(why, whylen, "its RSA key has %u bits; FIPS "
			    "140-3 needs 2048 or more", bits);
	} else if (pk == GNUTLS_PK_ECDSA) {
		if (gnutls_x509_crt_get_pk_ecc_raw(crt, &curve, NULL, NULL) >=
		    0 && (curve == GNUTLS_ECC_CURVE_SECP256R1 ||
		    curve == GNUTLS_ECC_CURVE_SECP384R1))
			r = 0;
		else
			snprintf(why, whylen, "its ECDSA curve %s is not P-256 "
			    "or P-384", gnutls_ecc_curve_get_name(curve) != NULL ?
			    gnutls_ecc_curve_get_name(curve) : "(unknown)");
	} else
		snprintf(why, whylen, "its %s key is not FIPS 140-3 approved "
		    "for TLS", gnutls_pk_get_name(pk) != NULL ?
		    gnutls_pk_get_name(pk) : "unknown");
out:
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	config_mtls_free(&pem);
	return r;
}

/* One frontend; on error "FILE:LINE: why" in err. */
static int
config_mtls_frontend(const struct config *cfg, struct frontend *fe, int keep,
    char *err, size_t errlen)
{
	gnutls_datum_t ca = { NULL, 0 }, crl = { NULL, 0 };
	struct iovec iov;
	char why[256];
	int fd, pk, r = 0, line = fe->ca_line;
	unsigned i;

	for (i = 0; fe->profile == CONFIG_PROFILE_FIPS && i < fe->ncerts; i++)
		if (config_mtls_fips_key(fe->certs[i].cert, why,
		    sizeof(why)) < 0) {
			snprintf(err, errlen, "%s:%d: frontend %s: profile "
			    "fips: cert %s: %s", cfg->path,
			    fe->certs[i].cert_line, fe->name,
			    fe->certs[i].cert, why);
			return -1;
		}
	if (fe->ca_file[0] == '\0')
		return 0;
	if ((r = config_mtls_read(fe->ca_file, &ca)) < 0) {
		snprintf(why, sizeof(why), "%s", strerror(-r));
		goto fail;
	}
	if ((fd = open(fe->ca_file, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		snprintf(why, sizeof(why), "%s", strerror(errno));
		goto fail;
	}
	/* the checks of a chain; the sealed copy holds the bytes checked */
	r = config_cert_snapshot(fd, keep ? &fe->ca_fd : NULL, &pk, why,
	    sizeof(why));
	close(fd);
	if (r < 0)
		goto fail;
	if (fe->crl_file[0] != '\0') {
		line = fe->crl_line;
		if ((r = config_mtls_read(fe->crl_file, &crl)) < 0) {
			snprintf(why, sizeof(why), "%s", strerror(-r));
			goto fail;
		}
		if (config_mtls_crl(&ca, &crl, why, sizeof(why)) < 0)
			goto fail;
		iov.iov_base = crl.data;
		iov.iov_len = crl.size;
		if (keep && (fe->crl_fd = sealed_memfd("moat-crl", &iov, 1)) < 0) {
			snprintf(why, sizeof(why), "cannot copy it: %s",
			    strerror(-fe->crl_fd));
			fe->crl_fd = -1;
			goto fail;
		}
	}
	config_mtls_free(&ca);
	config_mtls_free(&crl);
	return 0;
fail:
	snprintf(err, errlen, "%s:%d: frontend %s: %s %s: %s", cfg->path, line,
	    fe->name, line == fe->ca_line ? "ca-file" : "crl-file",
	    line == fe->ca_line ? fe->ca_file : fe->crl_file, why);
	config_mtls_free(&ca);
	config_mtls_free(&crl);
	return -1;
}

int
config_mtls_open(struct config *cfg, int keep, char *err, size_t errlen)
{
	unsigned i;

	for (i = 0; i < cfg->nfrontends; i++)
		if (config_mtls_frontend(cfg, &cfg->frontends[i], keep, err,
		    errlen) < 0)
			return -1;
	return 0;
}
