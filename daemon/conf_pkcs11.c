/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conf_pkcs11.c -- keys on a PKCS#11 token: `key = pkcs11:URI`, the
 * [moat] keys pkcs11-module, pkcs11-allow and pkcs11-allow-write, and the
 * frontend's key-pin-file.
 *
 * keyd loads the module before its sandbox and signs through the token;
 * it sees only the pkcs11-allow paths (read-only) and the
 * pkcs11-allow-write ones (keyd/keyd_pkcs11.c).
 * The master never opens the token: what it can check here is the
 * configuration; keyd checks the key against its certificate when it
 * loads it, as for a key file.  The PIN comes from a file only: a URI
 * carrying pin-value (the PIN in moat.conf) or pin-source (a file
 * p11-kit would open inside keyd's sandbox) is refused.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "conf_int.h"
#include "pathrule.h"

int
config_set_pkcs11_module(struct config_parse *p, const char *v)
{
	p->pkcs11_module_line = p->lineno;
	return config_abspath(p, "pkcs11-module", v, p->cfg->pkcs11_module,
	    sizeof(p->cfg->pkcs11_module));
}

/* One path of keyd's root, by the rule keyd checks again (pathrule.h). */
static int
config_pkcs11_path(struct config_parse *p, const char *key, const char *v,
    int writable)
{
	struct config *cfg = p->cfg;
	unsigned i;

	if (cfg->npkcs11_allow == CONFIG_PKCS11_ALLOW_MAX) {
		config_error(p, p->lineno, "more than %u pkcs11-allow and "
		    "pkcs11-allow-write lines", CONFIG_PKCS11_ALLOW_MAX);
		return -E2BIG;
	}
	if (!path_is_plain(v)) {
		config_error(p, p->lineno, "%s %s: write the path without '.', "
		    "'..' or '//'", key, v);
		return -EINVAL;
	}
	i = cfg->npkcs11_allow;
	if (config_abspath(p, key, v, cfg->pkcs11_allow[i],
	    sizeof(cfg->pkcs11_allow[i])) < 0)
		return -EINVAL;
	cfg->pkcs11_allow_write[i] = writable;
	cfg->npkcs11_allow++;
	return 0;
}

int
config_set_pkcs11_allow(struct config_parse *p, const char *v)
{
	return config_pkcs11_path(p, "pkcs11-allow", v, 0);
}

int
config_set_pkcs11_allow_write(struct config_parse *p, const char *v)
{
	return config_pkcs11_path(p, "pkcs11-allow-write", v, 1);
}

int
config_set_key_pin_file(struct config_parse *p, const char *v)
{
	p->fe->key_pin_line = p->lineno;
	if (config_abspath(p, "key-pin-file", v, p->fe->key_pin_file,
	    sizeof(p->fe->key_pin_file)) < 0)
		return -EINVAL;
	return config_secret_file(p, "key-pin-file", v);
}

/* The URI attributes that would put the PIN anywhere but key-pin-file. */
static const char *const config_pkcs11_pin_attrs[] = {
	"pin-value=", "pin-source=",
};

/* key = pkcs11:...: the URI, kept as written for keyd. */
int
config_pkcs11_key(struct config_parse *p, struct frontend_cert *fc,
    const char *v)
{
	const char *s;
	size_t i;

	if (strlen(v) >= sizeof(fc->key)) {
		config_error(p, p->lineno, "key %.40s...: the URI is longer "
		    "than %zu bytes", v, sizeof(fc->key) - 1);
		return -ENAMETOOLONG;
	}
	for (s = v; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f) {
			config_error(p, p->lineno, "key %s: a PKCS#11 URI has no "
			    "spaces or control characters (RFC 7512: escape "
			    "them as %%XX)", v);
			return -EINVAL;
		}
	for (i = 0; i < sizeof(config_pkcs11_pin_attrs) /
	    sizeof(config_pkcs11_pin_attrs[0]); i++)
		if (strstr(v, config_pkcs11_pin_attrs[i]) != NULL) {
			config_error(p, p->lineno, "key %s: the URI carries "
			    "%.*s; give the token's PIN with key-pin-file "
			    "instead", v, (int)strlen(config_pkcs11_pin_attrs[i]) -
			    1, config_pkcs11_pin_attrs[i]);
			return -EINVAL;
		}
	snprintf(fc->key, sizeof(fc->key), "%s", v);
	fc->key_pkcs11 = 1;
	return 0;
}

/*
 * Once the file is read: a token key needs the module, and the module's
 * keys make sense only with one.  RSA key exchange is refused for a key
 * on a token (keyd would refuse it too: keyd/keystore.c says why).
 */
void
config_pkcs11_finish(struct config_parse *p)
{
	const struct config *cfg = p->cfg;
	const struct frontend *fe;
	unsigned i, c, tokens;

	for (i = 0; i < cfg->nfrontends && !p->failed; i++) {
		fe = &cfg->frontends[i];
		tokens = 0;
		for (c = 0; c < fe->ncerts && !p->failed; c++) {
			if (!fe->certs[c].key_pkcs11)
				continue;
			tokens++;
			if (cfg->pkcs11_module[0] == '\0')
				config_error(p, fe->certs[c].key_line, "key %s: "
				    "a key on a PKCS#11 token needs "
				    "pkcs11-module = in [moat]",
				    fe->certs[c].key);
			else if (fe->allow_rsa_kx)
				config_error(p, fe->certs[c].key_line, "key %s: "
				    "allow-rsa-kx cannot be used with a key on a "
				    "PKCS#11 token (keyd decrypts in constant "
				    "time only with keys it holds)",
				    fe->certs[c].key);
		}
		if (!p->failed && fe->key_pin_file[0] != '\0' && tokens == 0)
			config_error(p, fe->key_pin_line, "frontend %s: "
			    "key-pin-file, but no key = pkcs11: URI", fe->name);
	}
	if (!p->failed && cfg->npkcs11_allow > 0 &&
	    cfg->pkcs11_module[0] == '\0')
		config_error(p, p->lineno, "pkcs11-allow or pkcs11-allow-write "
		    "without pkcs11-module");
}
