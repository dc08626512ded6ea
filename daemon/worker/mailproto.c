/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mailproto.c -- the plaintext dialogue before STARTTLS: which client lines
 * reach the backend, what moat answers itself, and how the backend's
 * capability lists are rewritten.
 *
 * The dialogue is in lockstep: one client command at a time, and the next
 * is looked at only once the backend has answered this one in full
 * (mail.c holds the client's further bytes meanwhile).  So every backend
 * line is the answer to a command we know, and moat's own answers can
 * never overtake or interleave with the backend's.
 *
 * Before the upgrade the client may only use the commands that lead to it
 * (starttls-required; RFC 3207 4, RFC 9051 6.2.1, RFC 2595 4):
 *	SMTP	EHLO, HELO, NOOP, RSET, QUIT, STARTTLS
 *	IMAP	CAPABILITY, NOOP, LOGOUT, STARTTLS
 *	POP3	CAPA, QUIT, STLS
 * Anything else gets the protocol's "STARTTLS first" answer from moat and
 * never reaches the backend: no credentials and no mail travel in
 * plaintext.  STARTTLS/STLS is answered by moat and never forwarded; moat
 * adds it to the capabilities the backend announces (SMTP's EHLO reply,
 * IMAP's greeting, CAPABILITY and [CAPABILITY] codes, POP3's CAPA) and
 * removes the backend's own, which would be the backend's TLS, not moat's.
 * A line longer than the protocol allows is refused and the connection
 * closed, as is a backend that answers what was not asked.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mailproto.h"

void
mailproto_init(struct mail_state *st, int proto, int required)
{
	memset(st, 0, sizeof(*st));
	st->proto = proto;
	st->required = required;
	st->wait = MAIL_W_GREETING;
	st->cmd = MAIL_C_GREETING;
}

size_t
mailproto_client_max(const struct mail_state *st)
{
	return st->proto == MAIL_PROTO_SMTP ? MAIL_SMTP_CMD_MAX :
	    st->proto == MAIL_PROTO_IMAP ? MAIL_IMAP_CMD_MAX :
	    MAIL_POP3_CMD_MAX;
}

size_t
mailproto_backend_max(const struct mail_state *st)
{
	return st->proto == MAIL_PROTO_SMTP ? MAIL_SMTP_REPLY_MAX :
	    st->proto == MAIL_PROTO_IMAP ? MAIL_IMAP_REPLY_MAX :
	    MAIL_POP3_REPLY_MAX;
}

const char *
mailproto_name(int proto)
{
	return proto == MAIL_PROTO_SMTP ? "smtp" : proto == MAIL_PROTO_IMAP ?
	    "imap" : proto == MAIL_PROTO_POP3 ? "pop3" : "-";
}

/* --- output --------------------------------------------------------------- */

static void
mail_put(struct mail_out *out, const char *s, size_t n)
{
	if (n > sizeof(out->buf) - out->len)
		n = sizeof(out->buf) - out->len;	/* cannot: lines are capped */
	memcpy(out->buf + out->len, s, n);
	out->len += n;
}

static void
mail_puts(struct mail_out *out, const char *s)
{
	mail_put(out, s, strlen(s));
}

static enum mail_verdict
mail_refuse(struct mail_state *st, struct mail_out *out, const char *answer,
    const char *why)
{
	out->len = 0;
	mail_puts(out, answer);
	out->why = why;
	st->wait = MAIL_W_CLOSED;
	return MAIL_REFUSED;
}

static enum mail_verdict
mail_backend_bad(struct mail_state *st, struct mail_out *out, const char *why)
{
	out->len = 0;
	out->why = why;
	st->wait = MAIL_W_CLOSED;
	return MAIL_BACKEND_BAD;
}

/* --- lines ---------------------------------------------------------------- */

/* The line without its end: LF or CRLF. */
static size_t
mail_text_len(const char *line, size_t len)
{
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	return len;
}

/* The first word of text (up to a space), as verb; the rest in *rest. */
static size_t
mail_word(const char *text, size_t len, const char **rest)
{
	size_t n = 0;

	while (n < len && text[n] != ' ')
		n++;
	*rest = n < len ? text + n + 1 : NULL;
	return n;
}

static int
mail_is(const char *w, size_t n, const char *verb)
{
	return strlen(verb) == n && strncasecmp(w, verb, n) == 0;
}

/* text is keyword kw, and nothing after it but blanks. */
static int
mail_is_kw(const char *text, size_t n, const char *kw)
{
	size_t k = strlen(kw);

	if (n < k || strncasecmp(text, kw, k) != 0)
		return 0;
	for (; k < n; k++)
		if (text[k] != ' ' && text[k] != '\t' && text[k] != '\r')
			return 0;
	return 1;
}

static void
mail_note_verb(struct mail_state *st, const char *w, size_t n)
{
	if (n >= sizeof(st->verb))
		n = sizeof(st->verb) - 1;
	memcpy(st->verb, w, n);
	st->verb[n] = '\0';
}

/* --- the client ----------------------------------------------------------- */

/* The line goes to the backend; its reply comes next. */
static enum mail_verdict
mail_forward(struct mail_state *st, const char *line, size_t len,
    enum mail_cmd cmd, struct mail_out *out)
{
	mail_put(out, line, len);
	st->wait = MAIL_W_REPLY;
	st->cmd = cmd;
	st->lines = 0;
	st->pop3_multi = 0;
	return MAIL_TO_BACKEND;
}

static enum mail_verdict
mail_starttls(struct mail_state *st, struct mail_out *out, const char *go)
{
	mail_puts(out, go);
	st->wait = MAIL_W_UPGRADE;
	return MAIL_STARTTLS;
}

static enum mail_verdict
mail_smtp_client(struct mail_state *st, const char *line, size_t len,
    const char *text, size_t tlen, struct mail_out *out)
{
	const char *rest;
	size_t n = mail_word(text, tlen, &rest);

	mail_note_verb(st, text, n);
	if (mail_is(text, n, "EHLO"))
		return mail_forward(st, line, len, MAIL_C_EHLO, out);
	if (mail_is(text, n, "HELO") || mail_is(text, n, "NOOP") ||
	    mail_is(text, n, "RSET") || mail_is(text, n, "QUIT"))
		return mail_forward(st, line, len, MAIL_C_OTHER, out);
	if (mail_is(text, n, "STARTTLS")) {
		if (rest != NULL) {
			mail_puts(out, "501 5.5.4 Syntax: STARTTLS\r\n");
			return MAIL_TO_CLIENT;
		}
		return mail_starttls(st, out, "220 2.0.0 Ready to start TLS\r\n");
	}
	mail_puts(out, "530 5.7.0 Must issue a STARTTLS command first\r\n");
	return MAIL_TO_CLIENT;
}

static int
mail_imap_tag_ok(const struct mail_state *st, const char *tag, size_t n)
{
	size_t i;

	if (n == 0 || n >= sizeof(st->tag))
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)tag[i] <= ' ' || tag[i] == '+' ||
		    tag[i] == '(' || tag[i] == ')' || tag[i] == '{' ||
		    tag[i] == '%' || tag[i] == '*' || tag[i] == '"' ||
		    tag[i] == '\\' || (unsigned char)tag[i] >= 0x7f)
			return 0;
	return 1;
}

static enum mail_verdict
mail_imap_client(struct mail_state *st, const char *line, size_t len,
    const char *text, size_t tlen, struct mail_out *out)
{
	const char *cmd, *rest;
	size_t n = mail_word(text, tlen, &cmd), m;
	char answer[160];

	if (!mail_imap_tag_ok(st, text, n) || cmd == NULL) {
		mail_puts(out, "* BAD Missing tag or command\r\n");
		return MAIL_TO_CLIENT;
	}
	memcpy(st->tag, text, n);
	st->tag[n] = '\0';
	m = mail_word(cmd, tlen - n - 1, &rest);
	mail_note_verb(st, cmd, m);
	if (mail_is(cmd, m, "CAPABILITY") || mail_is(cmd, m, "NOOP") ||
	    mail_is(cmd, m, "LOGOUT") || mail_is(cmd, m, "STARTTLS")) {
		if (rest != NULL) {
			snprintf(answer, sizeof(answer), "%s BAD %s takes no "
			    "arguments\r\n", st->tag, st->verb);
			mail_puts(out, answer);
			return MAIL_TO_CLIENT;
		}
		if (mail_is(cmd, m, "STARTTLS")) {
			snprintf(answer, sizeof(answer), "%s OK Begin TLS "
			    "negotiation now\r\n", st->tag);
			return mail_starttls(st, out, answer);
		}
		return mail_forward(st, line, len, mail_is(cmd, m,
		    "CAPABILITY") ? MAIL_C_CAPA : MAIL_C_OTHER, out);
	}
	snprintf(answer, sizeof(answer), "%s NO [PRIVACYREQUIRED] Must issue "
	    "a STARTTLS command first\r\n", st->tag);
	mail_puts(out, answer);
	return MAIL_TO_CLIENT;
}

static enum mail_verdict
mail_pop3_client(struct mail_state *st, const char *line, size_t len,
    const char *text, size_t tlen, struct mail_out *out)
{
	const char *rest;
	size_t n = mail_word(text, tlen, &rest);

	mail_note_verb(st, text, n);
	if (mail_is(text, n, "CAPA"))
		return mail_forward(st, line, len, MAIL_C_CAPA, out);
	if (mail_is(text, n, "QUIT"))
		return mail_forward(st, line, len, MAIL_C_OTHER, out);
	if (mail_is(text, n, "STLS")) {
		if (rest != NULL) {
			mail_puts(out, "-ERR STLS takes no arguments\r\n");
			return MAIL_TO_CLIENT;
		}
		return mail_starttls(st, out, "+OK Begin TLS negotiation\r\n");
	}
	mail_puts(out, "-ERR Must issue a STLS command first\r\n");
	return MAIL_TO_CLIENT;
}

/*
 * One whole client line (its end included, at most mailproto_client_max()),
 * while a command is due (MAIL_W_CLIENT).  A NUL byte or a bare line end is
 * answered as the protocol answers a syntax error.
 */
enum mail_verdict
mailproto_client_line(struct mail_state *st, const char *line, size_t len,
    struct mail_out *out)
{
	size_t tlen = mail_text_len(line, len);

	out->len = 0;
	out->why = NULL;
	if (st->wait != MAIL_W_CLIENT)
		return mail_refuse(st, out, "", "a command out of turn");
	if (len > mailproto_client_max(st))
		return mailproto_client_too_long(st, out);
	if (tlen == 0 || memchr(line, '\0', len) != NULL) {
		mail_puts(out, st->proto == MAIL_PROTO_SMTP ?
		    "500 5.5.2 Syntax error\r\n" : st->proto ==
		    MAIL_PROTO_IMAP ? "* BAD Syntax error\r\n" :
		    "-ERR Syntax error\r\n");
		return MAIL_TO_CLIENT;
	}
	switch (st->proto) {
	case MAIL_PROTO_SMTP:
		return mail_smtp_client(st, line, len, line, tlen, out);
	case MAIL_PROTO_IMAP:
		return mail_imap_client(st, line, len, line, tlen, out);
	default:
		return mail_pop3_client(st, line, len, line, tlen, out);
	}
}

/* A client line longer than the protocol allows: refused, then the end. */
enum mail_verdict
mailproto_client_too_long(struct mail_state *st, struct mail_out *out)
{
	out->len = 0;
	return mail_refuse(st, out, st->proto == MAIL_PROTO_SMTP ?
	    "500 5.5.2 Line too long\r\n" : st->proto == MAIL_PROTO_IMAP ?
	    "* BYE Line too long\r\n" : "-ERR Line too long\r\n",
	    "client line too long before STARTTLS");
}

/* --- the backend ---------------------------------------------------------- */

/*
 * An IMAP capability list (text[0..n), tokens apart by spaces), without
 * the backend's STARTTLS and with moat's.
 */
static void
mail_imap_caps(const char *text, size_t n, struct mail_out *out)
{
	size_t i = 0, j;

	while (i < n) {
		while (i < n && text[i] == ' ')
			i++;
		for (j = i; j < n && text[j] != ' '; j++)
			;
		if (j > i && !mail_is(text + i, j - i, "STARTTLS")) {
			mail_put(out, text + i, j - i);
			mail_puts(out, " ");
		}
		i = j;
	}
	mail_puts(out, "STARTTLS");
}

/*
 * An IMAP server line: a "* CAPABILITY" answer, or a "[CAPABILITY ...]"
 * response code in it, rewritten; any other line as it came.
 */
static void
mail_imap_rewrite(const char *line, size_t len, struct mail_out *out)
{
	size_t tlen = mail_text_len(line, len);
	const char *code, *end;

	if (tlen >= 13 && strncasecmp(line, "* CAPABILITY ", 13) == 0) {
		mail_put(out, line, 13);
		mail_imap_caps(line + 13, tlen - 13, out);
		mail_put(out, line + tlen, len - tlen);
		return;
	}
	code = memchr(line, '[', tlen);
	if (code != NULL && (size_t)(line + tlen - code) > 12 &&
	    strncasecmp(code, "[CAPABILITY ", 12) == 0 &&
	    (end = memchr(code, ']', (size_t)(line + tlen - code))) != NULL) {
		mail_put(out, line, (size_t)(code - line) + 12);
		mail_imap_caps(code + 12, (size_t)(end - code) - 12, out);
		mail_put(out, end, (size_t)(line + len - end));
		return;
	}
	mail_put(out, line, len);
}

/* SMTP: a reply line is NNN, then '-' (more follow) or ' ' / its end. */
static int
mail_smtp_reply(const char *text, size_t tlen, int *last)
{
	if (tlen < 3 || text[0] < '2' || text[0] > '5' || text[1] < '0' ||
	    text[1] > '9' || text[2] < '0' || text[2] > '9')
		return -1;
	if (tlen > 3 && text[3] != '-' && text[3] != ' ')
		return -1;
	*last = tlen == 3 || text[3] == ' ';
	return 0;
}

/* One line of a reply is through; the last one lets the client speak. */
static void
mail_reply_line_done(struct mail_state *st, int last)
{
	st->lines++;
	if (last) {
		st->wait = MAIL_W_CLIENT;
		st->cmd = MAIL_C_NONE;
	}
}

static void	mail_smtp_ehlo_line(const struct mail_state *st,
		    const char *line, size_t len, size_t tlen, int last,
		    struct mail_out *out);

static enum mail_verdict
mail_smtp_backend(struct mail_state *st, const char *line, size_t len,
    size_t tlen, struct mail_out *out)
{
	int last;

	if (mail_smtp_reply(line, tlen, &last) < 0)
		return mail_backend_bad(st, out, "backend: not an SMTP reply");
	/* every line of a reply has its code (RFC 5321 4.2.1) */
	if (st->lines == 0)
		memcpy(st->code, line, 3);
	else if (memcmp(st->code, line, 3) != 0)
		return mail_backend_bad(st, out, "backend: an SMTP reply whose "
		    "lines have different codes");
	if (st->cmd == MAIL_C_GREETING && strncmp(line, "220", 3) != 0 &&
	    strncmp(line, "554", 3) != 0)
		return mail_backend_bad(st, out, "backend: not an SMTP "
		    "greeting");
	if (st->cmd == MAIL_C_EHLO && strncmp(line, "250", 3) == 0)
		mail_smtp_ehlo_line(st, line, len, tlen, last, out);
	else
		mail_put(out, line, len);
	mail_reply_line_done(st, last);
	return MAIL_TO_CLIENT;
}

/*
 * A line of a 250 reply to EHLO: the first names the server, the others
 * are extensions; the backend's STARTTLS goes, ours comes last.
 */
static void
mail_smtp_ehlo_line(const struct mail_state *st, const char *line, size_t len,
    size_t tlen, int last, struct mail_out *out)
{
	if (st->lines == 0 && last) {
		/* "250 domain" alone: our extension follows it */
		mail_puts(out, "250-");
		if (tlen > 4)
			mail_put(out, line + 4, tlen - 4);
		mail_puts(out, "\r\n250 STARTTLS\r\n");
	} else if (st->lines > 0 && tlen > 4 &&
	    mail_is_kw(line + 4, tlen - 4, "STARTTLS")) {
		if (last)
			mail_puts(out, "250 STARTTLS\r\n");	/* ours, last */
		/* else: the backend's own, dropped; ours comes last */
	} else {
		if (last)
			mail_puts(out, "250-STARTTLS\r\n");
		mail_put(out, line, len);
	}
}

static enum mail_verdict
mail_imap_backend(struct mail_state *st, const char *line, size_t len,
    size_t tlen, struct mail_out *out)
{
	size_t taglen = strlen(st->tag);

	if (st->cmd == MAIL_C_GREETING) {
		if (tlen >= 9 && strncasecmp(line, "* PREAUTH", 9) == 0)
			return mail_backend_bad(st, out, "backend: PREAUTH "
			    "greeting: no STARTTLS can follow it");
		if (!(tlen >= 4 && strncasecmp(line, "* OK", 4) == 0) &&
		    !(tlen >= 5 && strncasecmp(line, "* BYE", 5) == 0))
			return mail_backend_bad(st, out, "backend: not an IMAP "
			    "greeting");
		mail_imap_rewrite(line, len, out);
		mail_reply_line_done(st, 1);
		return MAIL_TO_CLIENT;
	}
	if (tlen >= 2 && line[0] == '*' && line[1] == ' ') {
		mail_imap_rewrite(line, len, out);
		mail_reply_line_done(st, 0);
		return MAIL_TO_CLIENT;
	}
	if (tlen > taglen && strncmp(line, st->tag, taglen) == 0 &&
	    line[taglen] == ' ') {
		mail_imap_rewrite(line, len, out);
		mail_reply_line_done(st, 1);
		return MAIL_TO_CLIENT;
	}
	return mail_backend_bad(st, out, "backend: an IMAP line that answers "
	    "no command sent");
}

static enum mail_verdict
mail_pop3_backend(struct mail_state *st, const char *line, size_t len,
    size_t tlen, struct mail_out *out)
{
	if (st->pop3_multi) {
		if (tlen == 1 && line[0] == '.') {
			mail_puts(out, "STLS\r\n");
			mail_put(out, line, len);
			st->pop3_multi = 0;
			mail_reply_line_done(st, 1);
		} else {
			if (!mail_is_kw(line, tlen, "STLS"))
				mail_put(out, line, len);
			mail_reply_line_done(st, 0);
		}
		return MAIL_TO_CLIENT;
	}
	if (!(tlen >= 3 && strncmp(line, "+OK", 3) == 0) &&
	    !(tlen >= 4 && strncmp(line, "-ERR", 4) == 0))
		return mail_backend_bad(st, out, "backend: not a POP3 answer");
	mail_put(out, line, len);
	if (st->cmd == MAIL_C_CAPA && line[0] == '+') {
		st->pop3_multi = 1;
		mail_reply_line_done(st, 0);
	} else {
		mail_reply_line_done(st, 1);
	}
	return MAIL_TO_CLIENT;
}

/*
 * One whole backend line (end included, at most mailproto_backend_max()).
 * Output while no answer is due (after a reply, or once STARTTLS was
 * answered) answers nothing the client asked: it is dropped, and out->why
 * says so (mail.c logs it once), so that nothing the backend says then
 * can pass for moat's answer or reach the client inside TLS.
 */
enum mail_verdict
mailproto_backend_line(struct mail_state *st, const char *line, size_t len,
    struct mail_out *out)
{
	size_t tlen = mail_text_len(line, len);

	out->len = 0;
	out->why = NULL;
	if (st->wait == MAIL_W_CLIENT || st->wait == MAIL_W_UPGRADE) {
		out->why = "backend output that answers no command, dropped";
		return MAIL_TO_CLIENT;
	}
	if (st->wait == MAIL_W_CLOSED)
		return mail_backend_bad(st, out, "closed");
	if (len > mailproto_backend_max(st))
		return mail_backend_bad(st, out, "backend line too long");
	if (memchr(line, '\0', len) != NULL)
		return mail_backend_bad(st, out, "backend sent a NUL byte");
	switch (st->proto) {
	case MAIL_PROTO_SMTP:
		return mail_smtp_backend(st, line, len, tlen, out);
	case MAIL_PROTO_IMAP:
		return mail_imap_backend(st, line, len, tlen, out);
	default:
		return mail_pop3_backend(st, line, len, tlen, out);
	}
}
