/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conf_pair.c -- a frontend's cert/key pairs (SNI and several certificates,
 * issue 10): `cert =`, `key =` and `ocsp =` (OCSP stapling) may repeat in a
 * [frontend]; each `key =` and `ocsp =` belongs to the `cert =` before
 * it.  The first pair is the default (a client without SNI, or naming none
 * of the names).  As before pairs repeated, the first pair may name its
 * key first: a `key =` before any `cert =` waits in certs[0] for the first
 * one.  The checks that need the whole section (a last cert without its
 * key, the total over all frontends that keyd must hold) are
 * config_pairs_finish().
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "conf_int.h"

/* The pair a key = line completes: the last one, or the first, waiting. */
static struct frontend_cert *
config_pair_open(struct config_parse *p)
{
	struct frontend *fe = p->fe;

	return &fe->certs[fe->ncerts > 0 ? fe->ncerts - 1 : 0];
}

int
config_set_cert(struct config_parse *p, const char *v)
{
	struct frontend *fe = p->fe;
	struct frontend_cert *fc;

	if (fe->ncerts > 0 && fe->certs[fe->ncerts - 1].key[0] == '\0') {
		config_error(p, p->lineno, "cert = again, but the cert = on "
		    "line %d has no key = yet", fe->certs[fe->ncerts - 1].cert_line);
		return -EINVAL;
	}
	if (fe->ncerts == CONFIG_MAX_CERTS) {
		config_error(p, p->lineno, "frontend %s: more than %u cert = "
		    "lines", fe->name, CONFIG_MAX_CERTS);
		return -E2BIG;
	}
	fc = &fe->certs[fe->ncerts++];	/* certs[0] may hold its key already */
	fc->cert_line = p->lineno;
	if (config_abspath(p, "cert", v, fc->cert, sizeof(fc->cert)) < 0)
		return -EINVAL;
	return config_cert_file(p, "cert file", v, &fc->cert_pk);
}

int
config_set_key(struct config_parse *p, const char *v)
{
	struct frontend_cert *fc;

	fc = config_pair_open(p);
	if (fc->key[0] != '\0') {
		if (p->fe->ncerts == 0)
			config_error(p, p->lineno, "a second key = before any "
			    "cert = (first on line %d); each key = belongs to "
			    "the cert = line before it", fc->key_line);
		else
			config_error(p, p->lineno, "a second key = for the "
			    "cert = on line %d (first on line %d)",
			    fc->cert_line, fc->key_line);
		return -EINVAL;
	}
	fc->key_line = p->lineno;
	if (strncmp(v, "pkcs11:", 7) == 0)
		return config_pkcs11_key(p, fc, v);	/* conf_pkcs11.c */
	if (config_abspath(p, "key", v, fc->key, sizeof(fc->key)) < 0)
		return -EINVAL;
	return config_secret_file(p, "key file", v);
}

/*
 * The OCSP response to staple with the certificate before it.  The file
 * is not needed yet: a responder may write it later, and the master
 * staples only what it finds good (master_ocsp.c).
 */
int
config_set_ocsp(struct config_parse *p, const char *v)
{
	struct frontend *fe = p->fe;
	struct frontend_cert *fc;

	if (fe->ncerts == 0) {
		config_error(p, p->lineno, "ocsp = before any cert =: each "
		    "ocsp = belongs to the cert = line before it");
		return -EINVAL;
	}
	fc = &fe->certs[fe->ncerts - 1];
	if (fc->ocsp[0] != '\0') {
		config_error(p, p->lineno, "a second ocsp = for the cert = on "
		    "line %d (first on line %d)", fc->cert_line, fc->ocsp_line);
		return -EINVAL;
	}
	fc->ocsp_line = p->lineno;
	return config_abspath(p, "ocsp", v, fc->ocsp, sizeof(fc->ocsp));
}

/* The frontend's pairs once its section is read; 0 or -EINVAL. */
int
config_pairs_finish(struct config_parse *p, struct frontend *fe,
    unsigned *total)
{
	const struct frontend_cert *last;

	if (fe->ncerts == 0)
		return 0;		/* "missing required key" says it */
	last = &fe->certs[fe->ncerts - 1];
	if (last->key[0] == '\0') {
		config_error(p, last->cert_line, "frontend %s: cert = without "
		    "its key = (a key = line after it)", fe->name);
		return -EINVAL;
	}
	*total += fe->ncerts;
	if (*total > CONFIG_MAX_CERTS_TOTAL) {
		config_error(p, last->cert_line, "frontend %s: more than %u "
		    "certificates over all frontends (keyd holds two "
		    "generations of each)", fe->name, CONFIG_MAX_CERTS_TOTAL);
		return -E2BIG;
	}
	return 0;
}
