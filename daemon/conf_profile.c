/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conf_profile.c -- the named profiles of profile = (the one table that
 * maps a name to a priority string), the check that a fips profile holds
 * only FIPS 140-3 approved algorithms, and the whole-file rules of the
 * client-certificate keys (verify = needs ca-file; profile = and
 * priority = exclude each other).
 *
 * What "GnuTLS would not allow" means here.  GnuTLS in FIPS mode
 * (/etc/system-fips or GNUTLS_FORCE_FIPS_MODE) silently drops the
 * algorithms it does not approve when a priority string is initialised;
 * outside FIPS mode it keeps them all.  So in either mode the profile's
 * priority is initialised as the worker will initialise it and every
 * version, cipher, MAC, key exchange, group and signature algorithm it
 * enables is compared with the approved list below: one outside it (RSA
 * key transport from allow-rsa-kx, say) refuses the frontend, and so does
 * a list GnuTLS emptied.  The frontend's key is checked at start-up
 * (conf_mtls.c): no Ed25519/Ed448, RSA of 2048 bits or more, ECDSA on
 * P-256 or P-384.  Outside FIPS mode this restricts the algorithms only;
 * the library is then not running as a validated module, and moatd says so
 * (config_fips_mode_text()).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <gnutls/gnutls.h>

#include "util.h"
#include "conf.h"
#include "conf_int.h"

/* What follows the version list of every profile but compat. */
#define PROFILE_AEAD \
	"-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:" \
	"-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:" \
	"-SIGN-RSA-SHA1:-SIGN-ECDSA-SHA1:-SIGN-RSA-SHA224:-SIGN-ECDSA-SHA224:" \
	"-SIGN-DSA-SHA1:-SIGN-DSA-SHA224:-SIGN-DSA-SHA256"

struct config_profile_row {
	int		profile;
	const char	*name;
	const char	*priority;	/* allow-rsa-kx's :+RSA/:-RSA follows */
};

static const struct config_profile_row config_profiles[] = {
	/* TLS 1.3 only (Mozilla "modern") */
	{ CONFIG_PROFILE_MODERN, "modern",
	    "NORMAL:-VERS-ALL:+VERS-TLS1.3:" PROFILE_AEAD },
	/* TLS 1.2+, ECDHE with AEAD only: the default (priority unset) */
	{ CONFIG_PROFILE_INTERMEDIATE, "intermediate", MOAT_DEFAULT_PRIORITY },
	/*
	 * Older clients: TLS 1.2+ (TLS 1.0 and 1.1 are gone, RFC 8996, and
	 * Debian's GnuTLS 3.7 no longer offers them by default), AES-CBC
	 * with HMAC-SHA1/SHA256/SHA384 besides the AEADs, DHE-RSA (RFC 7919
	 * groups, when the client offers them) besides ECDHE, SHA-1
	 * signatures in TLS 1.2; RSA key transport only with allow-rsa-kx.
	 * Mozilla's "old" minus TLS 1.0/1.1 and 3DES.
	 */
	{ CONFIG_PROFILE_COMPAT, "compat",
	    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:"
	    "-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:"
	    "+AES-256-CBC:+AES-128-CBC:"
	    "-MAC-ALL:+AEAD:+SHA256:+SHA384:+SHA1:"
	    "-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:+DHE-RSA" },
	/* FIPS 140-3 approved only: the check below holds it to that */
	{ CONFIG_PROFILE_FIPS, "fips",
	    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:"
	    "-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:-MAC-ALL:+AEAD:"
	    "-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:"
	    "-GROUP-ALL:+GROUP-SECP256R1:+GROUP-SECP384R1:"
	    "-SIGN-ALL:+SIGN-RSA-SHA256:+SIGN-RSA-SHA384:"
	    "+SIGN-RSA-PSS-SHA256:+SIGN-RSA-PSS-SHA384:"
	    "+SIGN-RSA-PSS-RSAE-SHA256:+SIGN-RSA-PSS-RSAE-SHA384:"
	    "+SIGN-ECDSA-SHA256:+SIGN-ECDSA-SHA384:"
	    "+SIGN-ECDSA-SECP256R1-SHA256:+SIGN-ECDSA-SECP384R1-SHA384" },
};

/* The table's row for profile, or NULL. */
static const struct config_profile_row *
config_profile_row(int profile)
{
	size_t i;

	for (i = 0; i < nitems(config_profiles); i++)
		if (config_profiles[i].profile == profile)
			return &config_profiles[i];
	return NULL;
}

int
config_profile_find(const char *name)
{
	size_t i;

	for (i = 0; i < nitems(config_profiles); i++)
		if (strcmp(config_profiles[i].name, name) == 0)
			return config_profiles[i].profile;
	return -1;
}

const char *
config_profile_name(int profile)
{
	const struct config_profile_row *row = config_profile_row(profile);

	return row != NULL ? row->name : "-";
}

const char *
config_profile_priority(int profile)
{
	const struct config_profile_row *row = config_profile_row(profile);

	return row != NULL ? row->priority : MOAT_DEFAULT_PRIORITY;
}

const char *
config_fips_mode_text(void)
{
	return gnutls_fips140_mode_enabled() ? "GnuTLS FIPS 140 mode: on" :
	    "GnuTLS FIPS 140 mode: off (a fips profile restricts the "
	    "algorithms; the library is not running as a validated module)";
}

/* The FIPS 140-3 approved values of one kind of algorithm. */
struct fips_list {
	const char	*what;
	int		(*get)(gnutls_priority_t, const unsigned int **);
	const char	*(*name)(unsigned);
	unsigned	ok[12];		/* 0 ends it */
};

static const char *fips_proto_name(unsigned v) { return gnutls_protocol_get_name(v); }
static const char *fips_cipher_name(unsigned v) { return gnutls_cipher_get_name(v); }
static const char *fips_mac_name(unsigned v) { return gnutls_mac_get_name(v); }
static const char *fips_kx_name(unsigned v) { return gnutls_kx_get_name(v); }
static const char *fips_group_name(unsigned v) { return gnutls_group_get_name(v); }
static const char *fips_sign_name(unsigned v) { return gnutls_sign_get_name(v); }

static const struct fips_list fips_lists[] = {
	{ "version", gnutls_priority_protocol_list, fips_proto_name,
	    { GNUTLS_TLS1_2, GNUTLS_TLS1_3 } },
	{ "cipher", gnutls_priority_cipher_list, fips_cipher_name,
	    { GNUTLS_CIPHER_AES_128_GCM, GNUTLS_CIPHER_AES_256_GCM } },
	{ "MAC", gnutls_priority_mac_list, fips_mac_name,
	    { GNUTLS_MAC_AEAD, GNUTLS_MAC_SHA256, GNUTLS_MAC_SHA384 } },
	{ "key exchange", gnutls_priority_kx_list, fips_kx_name,
	    { GNUTLS_KX_ECDHE_RSA, GNUTLS_KX_ECDHE_ECDSA } },
	{ "group", gnutls_priority_group_list, fips_group_name,
	    { GNUTLS_GROUP_SECP256R1, GNUTLS_GROUP_SECP384R1 } },
	{ "signature algorithm", gnutls_priority_sign_list, fips_sign_name,
	    { GNUTLS_SIGN_RSA_SHA256, GNUTLS_SIGN_RSA_SHA384,
	      GNUTLS_SIGN_RSA_PSS_SHA256, GNUTLS_SIGN_RSA_PSS_SHA384,
	      GNUTLS_SIGN_RSA_PSS_RSAE_SHA256, GNUTLS_SIGN_RSA_PSS_RSAE_SHA384,
	      GNUTLS_SIGN_ECDSA_SHA256, GNUTLS_SIGN_ECDSA_SHA384,
	      GNUTLS_SIGN_ECDSA_SECP256R1_SHA256,
	      GNUTLS_SIGN_ECDSA_SECP384R1_SHA384 } },
};

int
config_profile_fips_check(const char *priority, char *why, size_t whylen)
{
	gnutls_priority_t prio;
	const unsigned int *list;
	const char *n;
	size_t i, k;
	int r, cnt, j;

	if ((r = gnutls_priority_init2(&prio, priority, NULL, 0)) < 0) {
		snprintf(why, whylen, "GnuTLS refuses its priority: %s",
		    gnutls_strerror(r));
		return -1;
	}
	for (i = 0; i < nitems(fips_lists); i++) {
		cnt = fips_lists[i].get(prio, &list);
		if (cnt <= 0) {
			snprintf(why, whylen, "GnuTLS allows no %s of it%s",
			    fips_lists[i].what, gnutls_fips140_mode_enabled() ?
			    " in FIPS mode" : "");
			goto fail;
		}
		for (j = 0; j < cnt; j++) {
			for (k = 0; fips_lists[i].ok[k] != 0 &&
			    k < nitems(fips_lists[i].ok); k++)
				if (fips_lists[i].ok[k] == list[j])
					break;
			if (k < nitems(fips_lists[i].ok) &&
			    fips_lists[i].ok[k] != 0)
				continue;
			n = fips_lists[i].name(list[j]);
			snprintf(why, whylen, "%s %s is not FIPS 140-3 "
			    "approved", fips_lists[i].what, n != NULL ? n :
			    "(unknown)");
			goto fail;
		}
	}
	gnutls_priority_deinit(prio);
	return 0;
fail:
	gnutls_priority_deinit(prio);
	return -1;
}

/* Before the priority string is built: which of the keys may go together. */
void
config_profile_conflicts(struct config_parse *p, const struct frontend *fe)
{
	int pline = p->priority_line[fe->index];

	if (fe->profile != CONFIG_PROFILE_NONE && pline > 0)
		config_error(p, fe->profile_line > pline ? fe->profile_line :
		    pline, "frontend %s: profile and priority both set (line "
		    "%d and %d); use one", fe->name, fe->profile_line, pline);
	else if (fe->verify != CONFIG_VERIFY_NONE && fe->ca_file[0] == '\0')
		config_error(p, fe->verify_line, "frontend %s: verify = %s "
		    "needs ca-file (the CAs client certificates must chain to)",
		    fe->name, fe->verify == CONFIG_VERIFY_REQUIRED ?
		    "required" : "optional");
	else if (fe->crl_file[0] != '\0' && fe->ca_file[0] == '\0')
		config_error(p, fe->crl_line, "frontend %s: crl-file needs "
		    "ca-file", fe->name);
	else if (fe->ca_file[0] != '\0' && fe->verify == CONFIG_VERIFY_NONE)
		config_error(p, fe->ca_line, "frontend %s: ca-file without "
		    "verify = optional or required would be ignored", fe->name);
}

/* After it: a fips profile holds only what FIPS 140-3 approves. */
void
config_profile_finish(struct config_parse *p, const struct frontend *fe)
{
	const struct frontend_cert *fc;
	char why[256];
	unsigned i;

	if (fe->profile != CONFIG_PROFILE_FIPS)
		return;
	for (i = 0; i < fe->ncerts; i++) {
		fc = &fe->certs[i];
		if (fc->cert_pk == GNUTLS_PK_EDDSA_ED25519 ||
		    fc->cert_pk == GNUTLS_PK_EDDSA_ED448) {
			config_error(p, fc->cert_line, "frontend %s: profile "
			    "fips: the certificate's key is %s, not FIPS 140-3 "
			    "approved for TLS (use RSA >= 2048 or ECDSA "
			    "P-256/P-384)", fe->name,
			    gnutls_pk_get_name(fc->cert_pk));
			return;
		}
	}
	if (config_profile_fips_check(fe->priority, why, sizeof(why)) < 0)
		config_error(p, fe->profile_line, "frontend %s: profile fips: "
		    "%s", fe->name, why);
}
