/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * connlog.c -- the one log line of a connection, written by conn.c when
 * it ends.
 *
 * The close line (info level, key=value so tests and people can grep it):
 *
 *   conn client=ADDR:PORT frontend=NAME sni=NAME tls=VERSION cipher=SUITE
 *        handshake_ms=N resumed=yes|no c2b=BYTES b2c=BYTES duration_ms=N
 *        notify=yes|no reason="WHY" alpn=PROTOCOL id=HEX cn=NAME cert=N
 *        starttls=smtp|imap|pop3|no
 *
 * "-" stands for what was never known (no SNI sent, handshake not done).
 * resumed says whether the first handshake resumed a session from a
 * ticket (no signature by keyd); "no" when no handshake finished.
 * c2b counts plaintext bytes written to the backend, b2c plaintext bytes
 * handed to TLS for the client.  notify says whether the client got our
 * close_notify: only after a normal end of the backend with everything it
 * sent delivered, or at a drain (proxy.c says when); every other end is
 * unclean on purpose.  reason is the first cause recorded:
 * "client closed", "backend closed", "idle timeout", "handshake timeout",
 * "handshake failed: <GnuTLS error or keyd reason>", "backend connect
 * failed: <errno>", "backend connect timeout", "client error: ...",
 * "backend error: ...", "worker stopping", "worker stopping: drain
 * timeout", "client closed during the handshake", and the renegotiation
 * endings:
 * "client refused renegotiation", "client ignored renegotiation request",
 * "renegotiation failed: ...", "renegotiation handshake timeout", and
 * those of a balancer's PROXY header (pphdr.c): "PROXY header from a
 * non-allowed address", "PROXY header missing or malformed", "PROXY header
 * too long ...", "PROXY header timeout".  With accept-proxy, client is the
 * address the balancer's header gave.  alpn is the protocol ALPN chose;
 * id the connection's unique id, also sent in a PROXY v2 header.  c2b
 * counts the PROXY header written to the backend, if any.  cn is the
 * client certificate's subject CN (verify =; mtls.c), "-" without one.
 * cert is the index of the certificate the client was shown, in the
 * order of the frontend's cert = lines (0 is the default).  starttls
 * names the protocol a STARTTLS frontend's connection upgraded from
 * ("no": it did not get there, or the frontend is implicit TLS); its
 * reasons before the upgrade are mail.c's and mailproto.c's ("client
 * closed before STARTTLS after EHLO", "STARTTLS injection attempt ...",
 * "client line too long before STARTTLS", "idle timeout before STARTTLS").
 */
#include "config.h"

#include <stdio.h>

#include <ev.h>
#include <gnutls/gnutls.h>

#include "conf.h"
#include "log.h"
#include "state.h"
#include "cred.h"
#include "pphdr.h"
#include "tls.h"
#include "connlog.h"
#include "mailproto.h"

/* The connection's one line, when it ends. */
void
connlog_write(const struct conn *c)
{
	char hs[32], id[2 * sizeof(c->uid) + 1], cert[16];
	const char *ver = "-", *cipher = "-";
	ev_tstamp now = ev_time();
	int served;

	if (c->session != NULL) {
		ver = tls_version_name(c);
		cipher = tls_cipher_name(c);
	}
	if (c->t_handshake > 0)
		snprintf(hs, sizeof(hs), "%ld",
		    (long)((c->t_handshake - c->t_start) * 1000. + 0.5));
	else
		snprintf(hs, sizeof(hs), "-");
	pphdr_uid_hex(c, id, sizeof(id));
	if ((served = cred_served(c)) >= 0)
		snprintf(cert, sizeof(cert), "%d", served);
	else
		snprintf(cert, sizeof(cert), "-");
	log_info("conn client=%s frontend=%s sni=%s tls=%s cipher=%s "
	    "handshake_ms=%s resumed=%s c2b=%llu b2c=%llu duration_ms=%ld "
	    "notify=%s reason=\"%s\" alpn=%s id=%s cn=%s cert=%s starttls=%s",
	    c->peer, c->wf->fe->name, c->sni[0] != '\0' ? c->sni : "-",
	    ver, cipher, hs, c->resumed ? "yes" : "no",
	    (unsigned long long)c->bytes_c2b,
	    (unsigned long long)c->bytes_b2c,
	    (long)((now - c->t_start) * 1000. + 0.5),
	    (c->flags & CF_BYE_SENT) ? "yes" : "no",
	    c->why.text[0] != '\0' ? c->why.text : "closed",
	    c->alpn[0] != '\0' ? c->alpn : "-", id,
	    c->cn[0] != '\0' ? c->cn : "-", cert, c->upgraded ?
	    mailproto_name(c->wf->fe->starttls) : "no");
}
