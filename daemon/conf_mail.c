/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conf_mail.c -- a frontend's STARTTLS keys: starttls = smtp|imap|pop3
 * (default: implicit TLS) and starttls-required.
 *
 * starttls-required = yes is the only value: before the upgrade a client
 * may use only the commands that lead to it (worker/mailproto.c), so no
 * password and no mail travel in plaintext.  "no" would have moat relay
 * the whole plaintext protocol (SMTP's DATA, IMAP's literals, AUTH's
 * continuations) for a client that never upgrades: that is a plain TCP
 * proxy's job, and it is refused with that reason rather than half done.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "conf.h"
#include "conf_int.h"
#include "util.h"

int
config_set_starttls(struct config_parse *p, const char *v)
{
	static const struct {
		const char	*name;
		int		proto;
	} protos[] = {
		{ "no", 0 },
		{ "smtp", CONFIG_STARTTLS_SMTP },
		{ "imap", CONFIG_STARTTLS_IMAP },
		{ "pop3", CONFIG_STARTTLS_POP3 },
	};
	size_t i;

	p->fe->starttls_line = p->lineno;
	for (i = 0; i < nitems(protos); i++)
		if (strcmp(v, protos[i].name) == 0) {
			p->fe->starttls = protos[i].proto;
			return 0;
		}
	config_error(p, p->lineno, "bad value '%s' for starttls (expected no, "
	    "smtp, imap or pop3)", v);
	return -EINVAL;
}

int
config_set_starttls_required(struct config_parse *p, const char *v)
{
	if (strcmp(v, "yes") == 0)
		return 0;
	config_error(p, p->lineno, "starttls-required = %s: only yes: before "
	    "the upgrade moat passes only the commands that lead to it; for "
	    "plaintext mail, point clients at the backend itself", v);
	return -EINVAL;
}

/* What STARTTLS cannot go with. */
void
config_mail_finish(struct config_parse *p, const struct frontend *fe)
{
	if (fe->starttls == 0)
		return;
	if (fe->backend_tls)
		config_error(p, fe->starttls_line, "frontend %s: starttls with "
		    "backend-tls: moat speaks the plaintext dialogue with the "
		    "backend itself; use a plain backend", fe->name);
	else if (fe->nalpn > 0)
		config_error(p, fe->starttls_line, "frontend %s: starttls with "
		    "alpn: mail clients that upgrade offer no ALPN", fe->name);
}
