/*
 * worker_proxy.c -- after the handshake: connect to the frontend's backend
 * and pump plaintext both ways.
 *
 * Memory per connection is bounded: two CONN_BUF_SIZE buffers, allocated
 * when proxying starts.  A side is read only while the buffer towards the
 * other side has room, so a slow reader holds the fast writer back
 * (back-pressure) instead of growing a queue.
 *
 * proxy_run() tries every step that can make progress -- TLS read into
 * c2b, c2b to the backend, backend read into b2c, b2c to TLS -- until none
 * can, then arms exactly the watchers that the blocked steps wait for.  The
 * CF_*_BLOCKED bits say "this call returned EAGAIN"; an event for that fd
 * clears them.  GnuTLS rules kept here:
 * - gnutls_record_recv() may hold decrypted data the kernel no longer
 *   signals (gnutls_record_check_pending()); the read step is retried
 *   whenever c2b has room until it says GNUTLS_E_AGAIN, so that data is
 *   never stranded.
 * - gnutls_record_send() that returned GNUTLS_E_AGAIN is called again with
 *   the same data and length (tls_send_len) before anything else is sent,
 *   and b2c is not compacted meanwhile.  No alert and no gnutls_bye() is
 *   started while such a send is pending (reneg_ctl_flush()).
 * - gnutls_record_recv() can need to write (a TLS 1.3 KeyUpdate answer);
 *   then it is retried when the client fd is writable, before any send.
 * Half-close both ways: close_notify or EOF from the client, once c2b is
 * flushed, becomes shutdown(backend, SHUT_WR); EOF from the backend, once
 * b2c is flushed, becomes gnutls_bye(GNUTLS_SHUT_WR) (our close_notify).
 * The connection ends when both directions are closed and flushed.  The
 * idle timeout restarts on every byte moved.
 *
 * Unix-socket backends inside the chroot: the worker is chrooted into an
 * empty directory, where a backend path like /run/app.sock does not exist.
 * Before the drop the worker opens the socket's directory (O_PATH) and
 * connects by fchdir() to it, connect() to the bare name, chdir("/") back
 * into the chroot.  That directory fd reaches outside the chroot, but the
 * seccomp filter leaves it only fchdir and connect (no open, no bind, no
 * exec), so what it adds is connecting to unix sockets the worker's user
 * may reach -- no more than it can do with TCP backends already.  Abstract
 * sockets (unix:@name) need none of this.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <gnutls/gnutls.h>

#include "conf.h"
#include "log.h"
#include "conn.h"
#include "worker_int.h"

#define PROXY_ROUNDS	8	/* pump rounds per wakeup, then yield to others */

/* Outcome of one pump step. */
#define STEP_IDLE	0
#define STEP_MOVED	1
#define STEP_CLOSED	(-1)	/* the conn is gone: do not touch it */

int
proxy_backend_prepare(struct worker_frontend *wf)
{
	const struct config_addr *a = &wf->fe->backend;
	const struct sockaddr_un *sun;
	char dir[sizeof(sun->sun_path) + 1];
	const char *base, *slash;
	size_t plen;

	wf->backend_dirfd = -1;
	if (a->ss.ss_family != AF_UNIX)
		return 0;
	sun = (const struct sockaddr_un *)(const void *)&a->ss;
	if (sun->sun_path[0] == '\0')
		return 0;	/* abstract: no file system involved */
	plen = strnlen(sun->sun_path, sizeof(sun->sun_path));
	if (plen == sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	memcpy(dir, sun->sun_path, plen);
	dir[plen] = '\0';
	if ((slash = strrchr(dir, '/')) == NULL) {
		base = sun->sun_path;
		strcpy(dir, ".");
	} else {
		base = sun->sun_path + (slash - dir) + 1;
		if (slash == dir)
			dir[1] = '\0';		/* "/sock" -> "/" */
		else
			dir[slash - dir] = '\0';
	}
	if (*base == '\0')
		return -EINVAL;
	if ((wf->backend_dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -errno;
	memset(&wf->backend_rel, 0, sizeof(wf->backend_rel));
	wf->backend_rel.sun_family = AF_UNIX;
	strcpy(wf->backend_rel.sun_path, base);
	wf->backend_rel_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    strlen(base) + 1);
	return 0;
}

/* Move waiting bytes to the front if the tail is at the end; the room left. */
size_t
conn_buf_room(struct conn_buf *b)
{
	if (b->head == b->tail)
		b->head = b->tail = 0;
	else if (b->tail == CONN_BUF_SIZE && b->head > 0) {
		memmove(b->data, b->data + b->head, b->tail - b->head);
		b->tail -= b->head;
		b->head = 0;
	}
	return CONN_BUF_SIZE - b->tail;
}

static void
proxy_start(struct conn *c)
{
	uint8_t *p;

	if ((p = malloc(2 * CONN_BUF_SIZE)) == NULL) {
		worker_conn_close(c, "out of memory");
		return;
	}
	c->c2b.data = p;
	c->b2c.data = p + CONN_BUF_SIZE;
	c->c2b.head = c->c2b.tail = 0;
	c->b2c.head = c->b2c.tail = 0;
	c->state = CONN_PROXY;
	conn_backend_watch(c, 0);
	conn_timer_idle(c, c->wf->fe->idle_timeout_ms);
	reneg_conn_start(c);
	proxy_run(c);
}

/* Handshake done: connect to the backend (non-blocking). */
void
proxy_connect(struct conn *c)
{
	const struct frontend *fe = c->wf->fe;
	const struct config_addr *a = &fe->backend;
	int fd, one = 1, r, err;

	c->state = CONN_CONNECTING;
	conn_client_watch(c, 0);	/* client data waits in the kernel */

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		c->w->stats.backend_errors++;
		worker_conn_close(c, "backend connect failed: socket: %s",
		    strerror(errno));
		return;
	}
	c->bfd = fd;
	if (a->ss.ss_family == AF_INET || a->ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	if (c->wf->backend_dirfd >= 0) {
		if (fchdir(c->wf->backend_dirfd) < 0) {
			c->w->stats.backend_errors++;
			worker_conn_close(c, "backend connect failed: fchdir: %s",
			    strerror(errno));
			return;
		}
		r = connect(fd, (const struct sockaddr *)&c->wf->backend_rel,
		    c->wf->backend_rel_len);
		err = errno;
		/* Never stay outside the chroot. */
		if (chdir("/") < 0)
			fatal("%s: chdir / after backend connect", __func__);
		errno = err;
	} else
		r = connect(fd, (const struct sockaddr *)&a->ss, a->len);

	if (r == 0) {
		proxy_start(c);
		return;
	}
	if (errno == EINPROGRESS) {
		conn_backend_watch(c, EV_WRITE);
		conn_timer_once(c, fe->backend_connect_timeout_ms);
		return;
	}
	c->w->stats.backend_errors++;
	worker_conn_close(c, "backend connect failed: %s", strerror(errno));
}

/* The backend socket became writable while connecting. */
void
proxy_connected(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->bfd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == EINPROGRESS || err == EALREADY)
		return;
	if (err != 0) {
		c->w->stats.backend_errors++;
		worker_conn_close(c, "backend connect failed: %s", strerror(err));
		return;
	}
	proxy_start(c);
}

static const char *
proxy_client_closed_why(const struct conn *c)
{
	return (c->flags & CF_CLIENT_NO_NOTIFY) ?
	    "client closed (no close_notify)" : "client closed";
}

/* A TLS error; after the client closed it is just the end of the road. */
static int
proxy_tls_error(struct conn *c, int r)
{
	if (c->flags & CF_CLIENT_EOF)
		worker_conn_close(c, "%s", proxy_client_closed_why(c));
	else if (r == GNUTLS_E_PREMATURE_TERMINATION)
		worker_conn_close(c, "client reset the connection");	/* ECONNRESET */
	else
		worker_conn_close(c, "client error: %s", gnutls_strerror(r));
	return STEP_CLOSED;
}

static void
proxy_client_eof(struct conn *c, unsigned extra)
{
	c->flags |= CF_CLIENT_EOF | extra;
	if (!(c->flags & CF_BACKEND_EOF))
		conn_why(c, "%s", proxy_client_closed_why(c));
}

/*
 * Client -> c2b.  Stops at a ClientHello that starts a renegotiation
 * handshake: from there GnuTLS's handshake reads (worker_reneg.c).
 */
static int
proxy_tls_read(struct conn *c)
{
	struct conn_buf *b = &c->c2b;
	int moved = STEP_IDLE, r;
	ssize_t n;

	while (!(c->flags & (CF_CLIENT_EOF | CF_TLS_RD_BLOCKED | CF_TLS_RD_WANTS_WR)) &&
	    c->reneg < RENEG_HS_WANTED) {
		if (conn_buf_room(b) == 0)
			break;
		n = gnutls_record_recv(c->session, b->data + b->tail,
		    CONN_BUF_SIZE - b->tail);
		if (n > 0) {
			b->tail += (size_t)n;
			moved = STEP_MOVED;
			continue;
		}
		if (n == 0) {
			proxy_client_eof(c, 0);
			return STEP_MOVED;
		}
		switch (n) {
		case GNUTLS_E_AGAIN:
		case GNUTLS_E_INTERRUPTED:
			c->flags |= gnutls_record_get_direction(c->session) ?
			    CF_TLS_RD_WANTS_WR : CF_TLS_RD_BLOCKED;
			return moved;
		case GNUTLS_E_PREMATURE_TERMINATION:
			proxy_client_eof(c, CF_CLIENT_NO_NOTIFY);
			return STEP_MOVED;
		case GNUTLS_E_REHANDSHAKE:
		case GNUTLS_E_WARNING_ALERT_RECEIVED:
		case GNUTLS_E_UNEXPECTED_PACKET:
			if ((r = reneg_record_event(c, (int)n)) > 0)
				return STEP_CLOSED;
			if (r < 0)
				return proxy_tls_error(c, r);
			moved = STEP_MOVED;
			continue;
		default:
			if (n == GNUTLS_E_FATAL_ALERT_RECEIVED) {
				worker_conn_close(c, "client error: alert %s",
				    gnutls_alert_get_name(gnutls_alert_get(c->session)));
				return STEP_CLOSED;
			}
			if (!gnutls_error_is_fatal((int)n)) {
				log_debug("%s: %s: %s", __func__, c->peer,
				    gnutls_strerror((int)n));
				moved = STEP_MOVED;
				continue;
			}
			return proxy_tls_error(c, (int)n);
		}
	}
	return moved;
}

/* c2b -> backend, then the backend's write side closes after client EOF. */
static int
proxy_backend_write(struct conn *c)
{
	struct conn_buf *b = &c->c2b;
	int moved = STEP_IDLE;
	ssize_t n;

	while (b->head < b->tail && !(c->flags & CF_BE_WR_BLOCKED)) {
		n = send(c->bfd, b->data + b->head, b->tail - b->head, MSG_NOSIGNAL);
		if (n > 0) {
			b->head += (size_t)n;
			c->bytes_c2b += (uint64_t)n;
			c->w->stats.bytes_client_to_backend += (uint64_t)n;
			moved = STEP_MOVED;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->flags |= CF_BE_WR_BLOCKED;
			break;
		}
		c->w->stats.backend_errors++;
		worker_conn_close(c, "backend error: %s",
		    n < 0 ? strerror(errno) : "short send");
		return STEP_CLOSED;
	}
	if (b->head == b->tail && (c->flags & CF_CLIENT_EOF) &&
	    !(c->flags & CF_BACKEND_SHUT)) {
		/* ENOTCONN: the backend is gone already; its EOF will tell. */
		(void)shutdown(c->bfd, SHUT_WR);
		c->flags |= CF_BACKEND_SHUT;
		moved = STEP_MOVED;
	}
	return moved;
}

/* Backend -> b2c. */
static int
proxy_backend_read(struct conn *c)
{
	struct conn_buf *b = &c->b2c;
	int moved = STEP_IDLE;
	ssize_t n;

	while (!(c->flags & (CF_BACKEND_EOF | CF_BE_RD_BLOCKED))) {
		/* A pending record_send still points into b2c: no moving. */
		if (c->tls_send_len == 0) {
			if (b->head == b->tail)
				b->head = b->tail = 0;
			else if (b->tail == CONN_BUF_SIZE && b->head > 0) {
				memmove(b->data, b->data + b->head, b->tail - b->head);
				b->tail -= b->head;
				b->head = 0;
			}
		}
		if (b->tail == CONN_BUF_SIZE)
			break;
		n = recv(c->bfd, b->data + b->tail, CONN_BUF_SIZE - b->tail, 0);
		if (n > 0) {
			b->tail += (size_t)n;
			moved = STEP_MOVED;
			continue;
		}
		if (n == 0) {
			c->flags |= CF_BACKEND_EOF;
			if (!(c->flags & CF_CLIENT_EOF))
				conn_why(c, "backend closed");
			return STEP_MOVED;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			c->flags |= CF_BE_RD_BLOCKED;
			break;
		}
		c->w->stats.backend_errors++;
		worker_conn_close(c, "backend error: %s", strerror(errno));
		return STEP_CLOSED;
	}
	return moved;
}

/*
 * Queued control messages (alert, HelloRequest, KeyUpdate), then b2c ->
 * client, then our close_notify after the backend's EOF.  From a
 * HelloRequest until the client's answer, and while the renegotiation
 * handshake runs, only a half-done record send is finished
 * (reneg_data_allowed() says why).
 */
static int
proxy_tls_write(struct conn *c)
{
	struct conn_buf *b = &c->b2c;
	int moved = STEP_IDLE, own;
	ssize_t n;
	size_t len;
	int r;

	reneg_bytes_check(c);
	/* A recv that must write goes first (see the header comment). */
	while (!(c->flags & (CF_TLS_WR_BLOCKED | CF_TLS_RD_WANTS_WR))) {
		/* Data and close_notify wait while a HelloRequest is out. */
		own = reneg_data_allowed(c);
		if (c->reneg < RENEG_HS_WANTED && c->ctl != 0 &&
		    c->tls_send_len == 0) {
			r = reneg_ctl_flush(c);
			if (r == GNUTLS_E_AGAIN) {
				c->flags |= CF_TLS_WR_BLOCKED;
				break;
			}
			if (r < 0)
				return proxy_tls_error(c, r);
			moved = STEP_MOVED;
			continue;
		}
		if (c->tls_send_len > 0 || (own && b->head < b->tail)) {
			len = c->tls_send_len > 0 ? c->tls_send_len : b->tail - b->head;
			n = gnutls_record_send(c->session, b->data + b->head, len);
			if (n > 0) {
				b->head += (size_t)n;
				c->tls_send_len = 0;
				c->bytes_b2c += (uint64_t)n;
				c->w->stats.bytes_backend_to_client += (uint64_t)n;
				moved = STEP_MOVED;
				continue;
			}
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
				c->tls_send_len = len;
				c->flags |= CF_TLS_WR_BLOCKED;
				break;
			}
			return proxy_tls_error(c, (int)n);
		}
		if (own && (c->flags & CF_BACKEND_EOF) && !(c->flags & CF_BYE_SENT)) {
			r = gnutls_bye(c->session, GNUTLS_SHUT_WR);
			if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
				c->flags |= CF_TLS_WR_BLOCKED;
				break;
			}
			if (r < 0)
				return proxy_tls_error(c, r);
			c->flags |= CF_BYE_SENT;
			moved = STEP_MOVED;
		}
		break;
	}
	return moved;
}

static int
proxy_finished(const struct conn *c)
{
	unsigned all = CF_CLIENT_EOF | CF_BACKEND_EOF | CF_BACKEND_SHUT | CF_BYE_SENT;

	return (c->flags & all) == all && c->ctl == 0 &&
	    c->reneg < RENEG_HS_WANTED &&
	    c->c2b.head == c->c2b.tail && c->b2c.head == c->b2c.tail &&
	    c->tls_send_len == 0;
}

/*
 * Pump until nothing moves, then arm the watchers the blocked steps wait
 * for.  The caller must not touch c afterwards: it may be closed.
 */
void
proxy_run(struct conn *c)
{
	int rounds, moved, any = 0, r;
	int cev, bev;

	for (rounds = 0; rounds < PROXY_ROUNDS; rounds++) {
		moved = 0;
		if ((r = proxy_tls_read(c)) == STEP_CLOSED)
			return;
		moved |= r;
		if ((r = proxy_backend_write(c)) == STEP_CLOSED)
			return;
		moved |= r;
		if ((r = proxy_backend_read(c)) == STEP_CLOSED)
			return;
		moved |= r;
		if ((r = proxy_tls_write(c)) == STEP_CLOSED)
			return;
		moved |= r;
		any |= moved;
		if (!moved)
			break;
	}
	if (proxy_finished(c)) {
		/* The side that closed first said why (proxy_client_eof()). */
		worker_conn_close(c, "closed");
		return;
	}
	if (any)
		conn_timer_touch(c);

	bev = 0;
	if ((c->flags & CF_BE_RD_BLOCKED) && !(c->flags & CF_BACKEND_EOF))
		bev |= EV_READ;
	if (c->flags & CF_BE_WR_BLOCKED)
		bev |= EV_WRITE;
	conn_backend_watch(c, bev);

	/* A renegotiation handshake owns the client side (worker_reneg.c). */
	if (reneg_hs_wanted(c)) {
		reneg_hs_start(c);
		return;
	}
	if (c->reneg == RENEG_HANDSHAKE) {
		/* The backend side goes on; the pump never touches the session. */
		if (rounds == PROXY_ROUNDS)
			ev_feed_event(c->w->loop, &c->bio, EV_CUSTOM);
		if ((c->flags & CF_HS_APPDATA) && !c->in_coro &&
		    conn_buf_room(&c->c2b) > 0)
			reneg_hs_appdata(c);
		return;
	}

	cev = 0;
	if ((c->flags & CF_TLS_RD_BLOCKED) && !(c->flags & CF_CLIENT_EOF) &&
	    (c->c2b.tail < CONN_BUF_SIZE || c->c2b.head > 0))
		cev |= EV_READ;
	if (c->flags & (CF_TLS_WR_BLOCKED | CF_TLS_RD_WANTS_WR))
		cev |= EV_WRITE;
	conn_client_watch(c, cev);

	/* Still moving after PROXY_ROUNDS: let others run, come back next turn. */
	if (rounds == PROXY_ROUNDS)
		ev_feed_event(c->w->loop, &c->cio, EV_CUSTOM);
}

void
proxy_client_event(struct conn *c, int revents)
{
	if (revents & EV_READ)
		c->flags &= ~CF_TLS_RD_BLOCKED;
	if (revents & EV_WRITE)
		c->flags &= ~(CF_TLS_WR_BLOCKED | CF_TLS_RD_WANTS_WR);
	proxy_run(c);
}

void
proxy_backend_event(struct conn *c, int revents)
{
	if (revents & EV_READ)
		c->flags &= ~CF_BE_RD_BLOCKED;
	if (revents & EV_WRITE)
		c->flags &= ~CF_BE_WR_BLOCKED;
	proxy_run(c);
}

void
proxy_free(struct conn *c)
{
	free(c->c2b.data);	/* one block holds both buffers */
	c->c2b.data = NULL;
	c->b2c.data = NULL;
}
