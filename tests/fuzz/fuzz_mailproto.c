/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_mailproto.c -- libFuzzer target for the plaintext dialogue before
 * STARTTLS (daemon/worker/mailproto.c), SMTP, IMAP and POP3.
 *
 * The first byte picks the protocol.  The rest is a script: a control
 * byte says whose line comes next (client or backend) and how long it is
 * (up to past each limit), then the line's bytes, with a line end added
 * or not.  Each line goes to mailproto_client_line() or mailproto_backend_line() as
 * mail.c would hand it over: cut after its first LF, or without one only
 * when over-long; the client's only when a command is due.
 * The oracles, any of which failing aborts:
 *   - nothing a client line sends to the backend is other than the line
 *     itself, and it is one of the commands allowed before STARTTLS;
 *     STARTTLS/STLS itself never goes to the backend;
 *   - STARTTLS answered means the dialogue waits for the handshake and
 *     takes no more client commands;
 *   - an over-long client line is refused and ends the dialogue;
 *   - nothing for the client is longer than MAIL_OUT_MAX or holds a NUL,
 *     and backend output while no answer is due is never passed on;
 *   - every SMTP 250 reply to EHLO passed on lists STARTTLS exactly once
 *     among its extensions (the lines after the first): as its last line
 *     or the one before it.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_input.h"
#include "mailproto.h"

static int
allowed(int proto, const char *line, size_t len)
{
	static const char *const smtp[] = { "EHLO", "HELO", "NOOP", "RSET",
	    "QUIT", NULL };
	static const char *const imap[] = { "CAPABILITY", "NOOP", "LOGOUT",
	    NULL };
	static const char *const pop3[] = { "CAPA", "QUIT", NULL };
	const char *const *v = proto == MAIL_PROTO_SMTP ? smtp :
	    proto == MAIL_PROTO_IMAP ? imap : pop3;
	const char *w = line, *end = line + len;
	size_t n;

	if (proto == MAIL_PROTO_IMAP) {	/* past the tag */
		while (w < end && *w != ' ')
			w++;
		if (w == end)
			return 0;
		w++;
	}
	for (n = 0; w + n < end && w[n] != ' ' && w[n] != '\r' &&
	    w[n] != '\n'; n++)
		;
	for (; *v != NULL; v++)
		if (strlen(*v) == n && strncasecmp(w, *v, n) == 0)
			return 1;
	return 0;
}

/* An SMTP 250 EHLO reply as passed on: STARTTLS once, at its end. */
static void
check_ehlo(const char *r, size_t n)
{
	const char *p = r, *end = r + n, *lf;
	unsigned found = 0, at = 0, lines = 0;

	if (n < 3 || strncmp(r, "250", 3) != 0)
		return;
	for (; p < end && (lf = memchr(p, '\n', (size_t)(end - p))) != NULL;
	    p = lf + 1) {
		/* the first line names the server, extensions follow it */
		if (lines++ > 0 && (size_t)(lf - p) >= 12 &&
		    strncasecmp(p + 4, "STARTTLS", 8) == 0 &&
		    strspn(p + 12, " \t\r") == (size_t)(lf - p) - 12) {
			found++;
			at = lines;
		}
	}
	if (found != 1 || (at != lines && at != lines - 1)) {
		fwrite(r, 1, n, stderr);
		abort();
	}
}

static void
check_out(const struct mail_out *out)
{
	if (out->len > sizeof(out->buf) || memchr(out->buf, '\0', out->len))
		abort();
}

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	struct mail_state st;
	struct mail_out out;
	enum mail_verdict v;
	enum mail_wait was;
	char line[MAIL_LINE_MAX + 16];
	static char ehlo[1 << 16];
	size_t len, i, max, ehlo_len = 0;
	enum mail_cmd cmd;
	const char *lf;
	unsigned ctl, steps;
	int proto = 1 + (int)(fuzz_byte(&in) % 3);

	mailproto_init(&st, proto, 1);
	for (steps = 0; steps < 256 && in.left > 0; steps++) {
		ctl = fuzz_byte(&in);
		max = ctl & 1 ? mailproto_backend_max(&st) : mailproto_client_max(&st);
		len = (fuzz_byte(&in) | fuzz_byte(&in) << 8) % (max + 8);
		for (i = 0; i < len && i + 2 < sizeof(line); i++)
			line[i] = (char)fuzz_byte(&in);
		len = i;
		if (ctl & 2) {
			line[len++] = '\r';
			line[len++] = '\n';
		}
		/* as mail.c hands lines over: up to the first LF, or, with
		 * none, only once longer than the protocol allows */
		if ((lf = memchr(line, '\n', len)) != NULL)
			len = (size_t)(lf - line) + 1;
		else if (len <= max)
			continue;
		was = st.wait;
		cmd = st.cmd;
		if (ctl & 1) {
			v = mailproto_backend_line(&st, line, len, &out);
			check_out(&out);
			if (proto == MAIL_PROTO_SMTP && cmd == MAIL_C_EHLO &&
			    v == MAIL_TO_CLIENT) {
				if (out.len <= sizeof(ehlo) - ehlo_len) {
					memcpy(ehlo + ehlo_len, out.buf, out.len);
					ehlo_len += out.len;
				}
				if (st.wait == MAIL_W_CLIENT) {
					check_ehlo(ehlo, ehlo_len);
					ehlo_len = 0;
				}
			}
			if ((was == MAIL_W_CLIENT || was == MAIL_W_UPGRADE) &&
			    out.len != 0)
				abort();	/* unasked output passed on */
			if (v == MAIL_TO_BACKEND || v == MAIL_STARTTLS)
				abort();
		} else {
			if (st.wait != MAIL_W_CLIENT)
				continue;	/* mail.c holds it */
			v = mailproto_client_line(&st, line, len, &out);
			check_out(&out);
			if (len > max && v != MAIL_REFUSED)
				abort();
			if (v == MAIL_TO_BACKEND && (out.len != len ||
			    memcmp(out.buf, line, len) != 0 ||
			    !allowed(proto, line, len)))
				abort();
			if (v == MAIL_STARTTLS && st.wait != MAIL_W_UPGRADE)
				abort();
			if (v == MAIL_REFUSED && st.wait != MAIL_W_CLOSED)
				abort();
			ehlo_len = 0;
		}
		if (st.wait == MAIL_W_CLOSED)
			break;
	}
	return 0;
}
