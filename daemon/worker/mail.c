/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mail.c -- a STARTTLS frontend's connection before the upgrade: the
 * plaintext dialogue between the client and the backend, moved line by
 * line through mailproto.c, which decides what passes.
 *
 * The backend is connected first (with its PROXY header, which says TLS:
 * starttls-required makes the upgrade the only way on).  Its greeting and
 * answers go to the client, rewritten where they list capabilities; the
 * client's commands go to the backend one at a time, each only after the
 * backend has answered the one before, so that nothing the backend says
 * can be mistaken for moat's own answers.  On STARTTLS moat answers itself.
 * Then, before the TLS handshake begins:
 *   - any byte the client sent after its STARTTLS line (read already, or
 *     waiting in the socket) is an injection attempt (CVE-2011-0411): the
 *     connection is closed and logged so, and nothing of it is executed;
 *   - whatever the backend sent that answers nothing is dropped, and
 *     proxy.c drops what it sends until the client's first command inside
 *     TLS (CF_MAIL_B2C_MUTE): so no plaintext of before the upgrade can
 *     reach the client inside TLS.
 * mail_run() says what conn.c is to do, as proxy_run() does.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "mail.h"
#include "mailproto.h"
#include "pphdr.h"
#include "reason.h"
#include "sock.h"
#include "state.h"

#define MAIL_COUT_SIZE	(16u * 1024u)	/* a long EHLO or CAPA reply */

_Static_assert(MAIL_PROTO_SMTP == CONFIG_STARTTLS_SMTP &&
    MAIL_PROTO_IMAP == CONFIG_STARTTLS_IMAP &&
    MAIL_PROTO_POP3 == CONFIG_STARTTLS_POP3, "starttls = numbers differ");

struct mail {
	struct mail_state	st;
	char			cin[MAIL_IMAP_CMD_MAX + 1];	/* client, unread lines */
	size_t			cin_len;
	char			bin[MAIL_LINE_MAX + 1];		/* backend, likewise */
	size_t			bin_len;
	char			cout[MAIL_COUT_SIZE];	/* to the client */
	size_t			cout_head, cout_len;
	char			bout[MAIL_OUT_MAX + PP_OUT_MAX]; /* to the backend */
	size_t			bout_head, bout_len;
	int			client_eof, backend_eof;
	int			upgrade;	/* STARTTLS answered: send, then TLS */
	int			refused;	/* the answer out, then the end */
	int			dropped;	/* backend output dropped (logged once) */
};

static int
mail_queue(char *buf, size_t size, size_t *head, size_t *len, const char *s,
    size_t n)
{
	if (*head > 0 && *len > 0)
		memmove(buf, buf + *head, *len);
	*head = 0;
	if (n > size - *len)
		return -ENOBUFS;
	memcpy(buf + *len, s, n);
	*len += n;
	return 0;
}

/* The backend is connected: the dialogue starts, PROXY header first. */
static int
mail_start(struct conn *c)
{
	struct mail *m;
	ssize_t n;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return -ENOMEM;
	mailproto_init(&m->st, c->wf->fe->starttls, 1);
	if ((n = pphdr_encode(c, (uint8_t *)m->bout, sizeof(m->bout))) < 0) {
		free(m);
		return (int)n;
	}
	m->bout_len = (size_t)n;
	c->mail = m;
	return 0;
}

void
mail_free(struct conn *c)
{
	if (c->mail != NULL) {
		explicit_bzero(c->mail, sizeof(*c->mail));
		free(c->mail);
	}
	c->mail = NULL;
}

/* Send what is queued for fd; -errno on an error, 0 otherwise. */
static int
mail_flush(int fd, char *buf, size_t *head, size_t *len)
{
	ssize_t n;

	while (*len > 0) {
		n = send(fd, buf + *head, *len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		*head += (size_t)n;
		*len -= (size_t)n;
	}
	*head = 0;
	return 0;
}

/* Read into buf[*len..size); 0 at EOF, -EAGAIN, -errno, or bytes read. */
static ssize_t
mail_read(int fd, char *buf, size_t size, size_t *len)
{
	ssize_t n;

	if (*len >= size)
		return -EAGAIN;
	do
		n = recv(fd, buf + *len, size - *len, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	*len += (size_t)n;
	return n;
}

/* The first whole line of buf (its length with the LF), or 0. */
static size_t
mail_line(const char *buf, size_t len)
{
	const char *lf = memchr(buf, '\n', len);

	return lf != NULL ? (size_t)(lf - buf) + 1 : 0;
}

static void
mail_consume(char *buf, size_t *len, size_t n)
{
	memmove(buf, buf + n, *len - n);
	*len -= n;
}

/* The client's next command, if it is due and whole. */
static enum mail_result
mail_client_step(struct conn *c, struct mail *m)
{
	struct mail_out out;
	enum mail_verdict v;
	size_t n;
	int r;

	if (m->st.wait != MAIL_W_CLIENT || m->bout_len > 0 || m->upgrade ||
	    m->refused)
		return MAIL_GO_ON;
	if ((n = mail_line(m->cin, m->cin_len)) == 0) {
		if (m->cin_len < mailproto_client_max(&m->st))
			return MAIL_GO_ON;
		v = mailproto_client_too_long(&m->st, &out);
	} else {
		v = mailproto_client_line(&m->st, m->cin, n, &out);
		mail_consume(m->cin, &m->cin_len, n);
	}
	switch (v) {
	case MAIL_TO_BACKEND:
		r = mail_queue(m->bout, sizeof(m->bout), &m->bout_head,
		    &m->bout_len, out.buf, out.len);
		break;
	case MAIL_STARTTLS:
		if (m->cin_len > 0 || sock_peek(c->cfd) == SOCK_PEEK_DATA) {
			log_warnx("%s: STARTTLS injection attempt: bytes after "
			    "the %s line, before the TLS handshake; closing",
			    c->peer, m->st.verb);
			reason_set(&c->why, "STARTTLS injection attempt (bytes "
			    "after %s)", m->st.verb);
			return MAIL_CLOSE;
		}
		m->upgrade = 1;
		/* FALLTHROUGH */
	case MAIL_TO_CLIENT:
	case MAIL_REFUSED:
	default:
		if (v == MAIL_REFUSED) {
			m->refused = 1;
			reason_set(&c->why, "%s", out.why);
		}
		r = mail_queue(m->cout, sizeof(m->cout), &m->cout_head,
		    &m->cout_len, out.buf, out.len);
		break;
	}
	if (r < 0) {
		reason_set(&c->why, "before STARTTLS: %s", strerror(-r));
		return MAIL_CLOSE;
	}
	return MAIL_MOVED;
}

/* The backend's next line, while an answer is due, or to drop it. */
static enum mail_result
mail_backend_step(struct conn *c, struct mail *m)
{
	struct mail_out out;
	enum mail_verdict v;
	size_t n;

	if ((n = mail_line(m->bin, m->bin_len)) == 0) {
		if (m->bin_len < mailproto_backend_max(&m->st))
			return MAIL_GO_ON;
		n = m->bin_len;		/* mailproto.c refuses it */
	}
	v = mailproto_backend_line(&m->st, m->bin, n, &out);
	mail_consume(m->bin, &m->bin_len, n);
	if (v == MAIL_BACKEND_BAD) {
		c->w->stats.backend_errors++;
		reason_set(&c->why, "before STARTTLS: %s", out.why);
		return MAIL_CLOSE;
	}
	if (out.why != NULL && !m->dropped) {
		m->dropped = 1;
		log_info("%s: %s (%s)", c->peer, out.why, m->st.verb);
	}
	if (mail_queue(m->cout, sizeof(m->cout), &m->cout_head, &m->cout_len,
	    out.buf, out.len) < 0) {
		reason_set(&c->why, "before STARTTLS: backend reply too long");
		return MAIL_CLOSE;
	}
	return MAIL_MOVED;
}

/* Whatever the backend has sent until now answers nothing: dropped. */
static void
mail_backend_discard(struct conn *c, struct mail *m)
{
	if ((sock_input_discard(c->bfd) > 0 || m->bin_len > 0) && !m->dropped)
		log_info("%s: backend output after %s dropped", c->peer,
		    m->st.verb);
	m->bin_len = 0;
}

/*
 * Move what can move, both ways; then say what conn.c does next, with the
 * events to wait for in c->wants.
 */
enum mail_result
mail_run(struct conn *c)
{
	struct mail *m;
	enum mail_result r;
	ssize_t n;
	int e, moved = 0, turns;

	memset(&c->wants, 0, sizeof(c->wants));
	if (c->mail == NULL && (e = mail_start(c)) < 0) {
		reason_set(&c->why, "STARTTLS set-up: %s", strerror(-e));
		return MAIL_CLOSE;
	}
	m = c->mail;
	for (turns = 0; turns < 64; turns++) {
		if ((e = mail_flush(c->cfd, m->cout, &m->cout_head,
		    &m->cout_len)) < 0) {
			reason_set(&c->why, "client error before STARTTLS: %s",
			    strerror(-e));
			return MAIL_CLOSE;
		}
		if ((e = mail_flush(c->bfd, m->bout, &m->bout_head,
		    &m->bout_len)) < 0) {
			c->w->stats.backend_errors++;
			reason_set(&c->why, "backend error before STARTTLS: %s",
			    strerror(-e));
			return MAIL_CLOSE;
		}
		if (m->cout_len == 0 && m->refused)
			return MAIL_CLOSE;
		if (m->cout_len == 0 && m->upgrade) {
			mail_backend_discard(c, m);
			c->upgraded = 1;
			c->flags |= CF_MAIL_B2C_MUTE;	/* see the top */
			mail_free(c);		/* its part is done */
			return MAIL_UPGRADE;
		}
		if ((r = mail_client_step(c, m)) == MAIL_CLOSE)
			return r;
		moved |= r == MAIL_MOVED;
		if (r == MAIL_MOVED)
			continue;
		if (m->bin_len > 0 && (r = mail_backend_step(c, m)) != MAIL_GO_ON) {
			if (r == MAIL_CLOSE)
				return r;
			moved = 1;
			continue;
		}
		/* nothing whole to take: read more, where there is room */
		if (!m->client_eof) {
			n = mail_read(c->cfd, m->cin, sizeof(m->cin) - 1,
			    &m->cin_len);
			if (n == 0)
				m->client_eof = 1;
			else if (n < 0 && n != -EAGAIN) {
				reason_set(&c->why, "client error before "
				    "STARTTLS: %s", strerror((int)-n));
				return MAIL_CLOSE;
			} else if (n > 0) {
				moved = 1;
				continue;
			}
		}
		if (!m->backend_eof) {
			n = mail_read(c->bfd, m->bin, sizeof(m->bin) - 1,
			    &m->bin_len);
			if (n == 0)
				m->backend_eof = 1;
			else if (n < 0 && n != -EAGAIN) {
				c->w->stats.backend_errors++;
				reason_set(&c->why, "backend error before "
				    "STARTTLS: %s", strerror((int)-n));
				return MAIL_CLOSE;
			} else if (n > 0) {
				moved = 1;
				continue;
			}
		}
		break;
	}
	if (m->client_eof) {
		reason_set(&c->why, "client closed before STARTTLS%s%s",
		    m->st.verb[0] ? " after " : "", m->st.verb);
		return MAIL_CLOSE;
	}
	/* a backend gone for good: once what it said whole is passed on */
	if (m->backend_eof && m->cout_len == 0 &&
	    mail_line(m->bin, m->bin_len) == 0) {
		reason_set(&c->why, "backend closed before STARTTLS%s%s",
		    m->st.verb[0] ? " after " : "", m->st.verb);
		return MAIL_CLOSE;
	}
	c->wants.moved = moved;
	c->wants.more = turns == 64;
	c->wants.client = (m->cout_len > 0 ? EV_WRITE : 0) |
	    (!m->client_eof && m->cin_len < sizeof(m->cin) - 1 ? EV_READ : 0);
	c->wants.backend = (m->bout_len > 0 ? EV_WRITE : 0) |
	    (!m->backend_eof && m->bin_len < sizeof(m->bin) - 1 ? EV_READ : 0);
	return MAIL_GO_ON;
}

/*
 * After the upgrade (CF_MAIL_B2C_MUTE, proxy.c): what the backend sends
 * before the client's first command inside TLS answers nothing the client
 * asked in TLS, and is dropped.
 */
void
mail_b2c_dropped(struct conn *c, size_t n)
{
	if (n > 0 && !(c->flags & CF_CLIENT_GONE))
		log_info("%s: %zu byte(s) of backend output after STARTTLS, "
		    "before the client's first command in TLS, dropped",
		    c->peer, n);
}

/*
 * The client's first command inside TLS goes to the backend now: what
 * came from the backend until this moment is dropped, and from now on
 * its output is the answer.  Nothing can answer a command not sent yet.
 */
void
mail_b2c_unmute(struct conn *c)
{
	mail_b2c_dropped(c, sock_input_discard(c->bfd));
	c->flags &= ~CF_MAIL_B2C_MUTE;
}
