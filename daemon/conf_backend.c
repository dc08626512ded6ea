/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conf_backend.c -- the keys of TLS to the backend: backend-tls,
 * backend-ca, backend-name (conf_keys.c's table names these setters), and
 * the check at the end of a frontend that they make sense together.
 *
 * There is no "backend-verify = no".  A backend session whose certificate
 * nobody checks protects against a passive listener only, and a config
 * that says "TLS to the backend" would read as more than that; a backend
 * with a self-signed certificate is verified by naming that certificate
 * as its backend-ca (GnuTLS trusts a certificate found in the trust list).
 */
#include "config.h"

#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "conf_int.h"

int
config_set_backend_tls(struct config_parse *p, const char *v)
{
	p->fe->backend_tls_line = p->lineno;
	return config_bool(p, "backend-tls", v, &p->fe->backend_tls);
}

/* A PEM bundle of CA certificates, checked as a chain is (conf_cert.c). */
int
config_set_backend_ca(struct config_parse *p, const char *v)
{
	int pk;

	if (config_abspath(p, "backend-ca", v, p->fe->backend_ca,
	    sizeof(p->fe->backend_ca)) < 0)
		return -EINVAL;
	return config_cert_file(p, "backend-ca file", v, &pk);
}

/* A name GnuTLS can check a certificate against: no spaces, no controls. */
int
config_set_backend_name(struct config_parse *p, const char *v)
{
	const char *s;

	if (config_string(p, "backend-name", v, p->fe->backend_name,
	    sizeof(p->fe->backend_name)) < 0)
		return -EINVAL;
	for (s = v; *s != '\0'; s++)
		if (*s <= ' ' || *s >= 0x7f || *s == '/') {
			config_error(p, p->lineno, "backend-name '%s': a DNS "
			    "name or an address, nothing else", v);
			return -EINVAL;
		}
	return 0;
}

/*
 * The host part of a backend written as host:port or [v6]:port, into
 * out; 0, or -EINVAL for a unix: backend (no host to name).
 */
static int
config_backend_host(const char *text, char *out, size_t size)
{
	const char *colon, *end;

	if (strncmp(text, "unix:", 5) == 0)
		return -EINVAL;
	if (text[0] == '[') {
		if ((end = strchr(text, ']')) == NULL)
			return -EINVAL;
		text++;
	} else {
		if ((colon = strrchr(text, ':')) == NULL)
			return -EINVAL;
		end = colon;
	}
	if (end == text || (size_t)(end - text) >= size)
		return -EINVAL;
	memcpy(out, text, (size_t)(end - text));
	out[end - text] = '\0';
	return 0;
}

/*
 * At the end of the config: backend-tls needs a backend-ca and a name
 * to verify, and the other keys mean nothing without it.
 */
void
config_backend_tls_finish(struct config_parse *p, struct frontend *fe)
{
	if (!fe->backend_tls) {
		if (fe->backend_ca[0] != '\0' || fe->backend_name[0] != '\0')
			config_error(p, fe->line, "frontend %s: backend-ca and "
			    "backend-name need backend-tls = yes", fe->name);
		return;
	}
	if (fe->backend_ca[0] == '\0') {
		config_error(p, fe->backend_tls_line, "frontend %s: "
		    "backend-tls needs backend-ca (the CA bundle that verifies "
		    "the backend's certificate; moat does not talk TLS to a "
		    "backend it cannot verify)", fe->name);
		return;
	}
	if (fe->backend_name[0] == '\0' && config_backend_host(fe->backend.text,
	    fe->backend_name, sizeof(fe->backend_name)) < 0)
		config_error(p, fe->backend_tls_line, "frontend %s: "
		    "backend-tls to %s needs backend-name (the name in the "
		    "backend's certificate)", fe->name, fe->backend.text);
}
