/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mailproto.h -- the plaintext dialogue before STARTTLS, line by line, for
 * SMTP, IMAP and POP3 (mailproto.c).  No I/O: mail.c feeds it whole lines
 * and writes what it returns; tests/fuzz/fuzz_mailproto.c drives it too.
 */
#ifndef MOAT_MAILPROTO_H
#define MOAT_MAILPROTO_H

#include <stddef.h>

/* starttls = as conf.h numbers it (CONFIG_STARTTLS_*; mail.c checks) */
#define MAIL_PROTO_SMTP		1
#define MAIL_PROTO_IMAP		2
#define MAIL_PROTO_POP3		3

/* The longest client line (CRLF included) each protocol allows. */
#define MAIL_SMTP_CMD_MAX	512	/* RFC 5321 4.5.3.1.4 */
#define MAIL_IMAP_CMD_MAX	1024	/* pre-TLS commands take no literal */
#define MAIL_POP3_CMD_MAX	255	/* RFC 2449 4 */
/* The longest backend line before the upgrade. */
#define MAIL_SMTP_REPLY_MAX	512	/* RFC 5321 4.5.3.1.5 */
#define MAIL_IMAP_REPLY_MAX	8192	/* a long CAPABILITY list */
#define MAIL_POP3_REPLY_MAX	512	/* RFC 2449 4 */
#define MAIL_LINE_MAX		8192	/* the largest of them: buffers */

/* The most a line turns into (a rewritten capability line and ours). */
#define MAIL_OUT_MAX		(MAIL_LINE_MAX + 64)

/* Where the dialogue is. */
enum mail_wait {
	MAIL_W_GREETING = 0,	/* the backend's greeting is due */
	MAIL_W_CLIENT,		/* a command from the client is due */
	MAIL_W_REPLY,		/* the backend answers the command sent */
	MAIL_W_UPGRADE,		/* STARTTLS answered: the TLS handshake */
	MAIL_W_CLOSED,		/* a line was refused: the end */
};

/* The command whose reply is being read. */
enum mail_cmd {
	MAIL_C_NONE = 0,
	MAIL_C_GREETING,
	MAIL_C_EHLO,		/* SMTP: its 250 reply lists extensions */
	MAIL_C_CAPA,		/* IMAP CAPABILITY, POP3 CAPA */
	MAIL_C_OTHER,
};

struct mail_state {
	int		proto;		/* MAIL_PROTO_* */
	int		required;	/* starttls-required */
	enum mail_wait	wait;
	enum mail_cmd	cmd;
	unsigned	lines;		/* of the reply so far */
	int		pop3_multi;	/* POP3: a multi-line reply is open */
	char		code[4];	/* SMTP: the reply's code, from its first line */
	char		tag[64];	/* IMAP: the tag of the command sent */
	char		verb[16];	/* the last command (logs) */
};

/* What to do with a line: where its output goes, what comes next. */
enum mail_verdict {
	MAIL_TO_BACKEND = 1,	/* out: the line, for the backend */
	MAIL_TO_CLIENT,		/* out: for the client (maybe empty) */
	MAIL_STARTTLS,		/* out: our go-ahead; then the handshake */
	MAIL_REFUSED,		/* out: the protocol's error; then close */
	MAIL_BACKEND_BAD,	/* the backend broke the protocol: close */
};

struct mail_out {
	char		buf[MAIL_OUT_MAX];
	size_t		len;
	const char	*why;		/* MAIL_REFUSED, MAIL_BACKEND_BAD */
};

void	mailproto_init(struct mail_state *st, int proto, int required);
size_t	mailproto_client_max(const struct mail_state *st);
size_t	mailproto_backend_max(const struct mail_state *st);
enum mail_verdict mailproto_client_line(struct mail_state *st, const char *line,
	    size_t len, struct mail_out *out);
enum mail_verdict mailproto_client_too_long(struct mail_state *st,
	    struct mail_out *out);
enum mail_verdict mailproto_backend_line(struct mail_state *st, const char *line,
	    size_t len, struct mail_out *out);
const char *mailproto_name(int proto);

#endif
