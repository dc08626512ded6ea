/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_proxy_pump.c -- the proxy pump (daemon/worker/proxy.c) against
 * socketpairs: a real GnuTLS server session on one end of the client pair
 * (a GnuTLS client on the other), a backend pair whose far end the test
 * plays.  The test does what conn.c does with the pump's verdicts: it
 * waits for exactly the events proxy_run() asks for (c->wants), clears
 * the blocked bits, and runs it again.
 *
 * Checked: every byte both ways and in order, bounded memory when the
 * backend stops reading (back-pressure reaches the client), the half-close
 * in both directions (close_notify becomes the backend's EOF, the
 * backend's EOF becomes close_notify, only after everything before it),
 * and a client that vanishes without close_notify.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>
#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>

#include "log.h"
#include "proxy.h"
#include "state.h"
#include "testtls.h"

#define MIB		(1024u * 1024u)
#define MAX_STEPS	200000	/* loops are bounded in count */

struct rig {
	struct ev_loop		*loop;
	struct worker		w;
	struct frontend		fe;
	struct worker_frontend	wf;
	struct conn		c;
	gnutls_certificate_credentials_t scred, ccred;
	gnutls_pcert_st		pcert;
	gnutls_session_t	client;
	int			client_fd;	/* the client's end */
	int			backend_fd;	/* the backend's end (the test's) */
	enum proxy_verdict	last;
};

static uint8_t
pattern(uint64_t i, unsigned seed)
{
	return (uint8_t)((i * 131u + seed * 7u + (i >> 9)) & 0xff);
}

static void
nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

static int
setup(void **state)
{
	static struct rig rig;
	struct rig *g = &rig;
	gnutls_session_t server;
	int cs[2], bs[2];

	memset(g, 0, sizeof(*g));
	g->loop = ev_loop_new(EVFLAG_NOENV);
	assert_non_null(g->loop);
	g->w.magic = WORKER_MAGIC;
	g->w.loop = g->loop;
	g->fe.idle_timeout_ms = 60000;
	snprintf(g->fe.name, sizeof(g->fe.name), "test");
	g->wf.magic = WORKER_FE_MAGIC;
	g->wf.fe = &g->fe;
	g->wf.w = &g->w;

	testtls_server_cred(&g->scred, &g->pcert);
	assert_int_equal(gnutls_certificate_allocate_credentials(&g->ccred), 0);

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, cs), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, bs), 0);
	nonblock(cs[0]);
	nonblock(cs[1]);
	nonblock(bs[0]);
	nonblock(bs[1]);
	assert_int_equal(gnutls_init(&server, GNUTLS_SERVER | GNUTLS_NONBLOCK), 0);
	assert_int_equal(gnutls_init(&g->client, GNUTLS_CLIENT | GNUTLS_NONBLOCK),
	    0);
	assert_int_equal(gnutls_priority_set_direct(server,
	    "NORMAL:-VERS-ALL:+VERS-TLS1.3", NULL), 0);
	assert_int_equal(gnutls_set_default_priority(g->client), 0);
	assert_int_equal(gnutls_credentials_set(server, GNUTLS_CRD_CERTIFICATE,
	    g->scred), 0);
	assert_int_equal(gnutls_credentials_set(g->client,
	    GNUTLS_CRD_CERTIFICATE, g->ccred), 0);
	gnutls_transport_set_int(server, cs[0]);
	gnutls_transport_set_int(g->client, cs[1]);
	assert_int_equal(testtls_handshake(server, g->client), 0);

	g->c.magic = CONN_MAGIC;
	g->c.w = &g->w;
	g->c.wf = &g->wf;
	g->c.state = CONN_PROXY;
	g->c.cfd = cs[0];
	g->c.bfd = bs[0];
	g->c.session = server;
	snprintf(g->c.peer, sizeof(g->c.peer), "test-client");
	g->client_fd = cs[1];
	g->backend_fd = bs[1];
	assert_int_equal(proxy_start(&g->c), 0);
	*state = g;
	return 0;
}

static int
teardown(void **state)
{
	struct rig *g = *state;

	proxy_free(&g->c);
	gnutls_deinit(g->c.session);
	gnutls_deinit(g->client);
	close(g->c.cfd);
	close(g->c.bfd);
	if (g->client_fd >= 0)
		close(g->client_fd);
	if (g->backend_fd >= 0)
		close(g->backend_fd);
	gnutls_certificate_free_credentials(g->scred);
	gnutls_certificate_free_credentials(g->ccred);
	ev_loop_destroy(g->loop);
	return 0;
}

/*
 * One turn of what conn.c does: the events the pump waits for that are
 * ready now are handed to it, and it runs again (also when it asked to
 * come back: wants.more).
 */
static enum proxy_verdict
turn(struct rig *g)
{
	struct conn *c = &g->c;
	struct pollfd p[2];

	memset(p, 0, sizeof(p));
	p[0].fd = c->cfd;
	p[0].events = (short)(((c->wants.client & EV_READ) ? POLLIN : 0) |
	    ((c->wants.client & EV_WRITE) ? POLLOUT : 0));
	p[1].fd = c->bfd;
	p[1].events = (short)(((c->wants.backend & EV_READ) ? POLLIN : 0) |
	    ((c->wants.backend & EV_WRITE) ? POLLOUT : 0));
	assert_true(poll(p, 2, 0) >= 0);
	if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
		proxy_client_ready(c, EV_READ);
	if (p[0].revents & POLLOUT)
		proxy_client_ready(c, EV_WRITE);
	if (p[1].revents & (POLLIN | POLLHUP | POLLERR))
		proxy_backend_ready(c, EV_READ);
	if (p[1].revents & POLLOUT)
		proxy_backend_ready(c, EV_WRITE);
	g->last = proxy_run(c);
	return g->last;
}

/* The client's and the backend's sides, as far as they can go now. */
struct ends {
	uint64_t	c_sent, c_total;	/* client -> backend */
	size_t		c_pending;		/* a record_send to finish */
	uint64_t	b_got;
	uint64_t	b_sent, b_total;	/* backend -> client */
	uint64_t	c_got;
	int		backend_reads;
	int		client_eof;		/* close_notify seen */
	int		backend_eof;		/* EOF seen by the backend */
};

static void
client_side(struct rig *g, struct ends *e)
{
	uint8_t buf[16384];
	size_t n, i;
	ssize_t r;

	while (e->c_sent < e->c_total) {
		if (e->c_pending > 0) {
			/* GnuTLS holds the record: finish that one first */
			n = e->c_pending;
			r = gnutls_record_send(g->client, NULL, 0);
		} else {
			n = e->c_total - e->c_sent > sizeof(buf) ? sizeof(buf) :
			    (size_t)(e->c_total - e->c_sent);
			for (i = 0; i < n; i++)
				buf[i] = pattern(e->c_sent + i, 1);
			r = gnutls_record_send(g->client, buf, n);
		}
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
			e->c_pending = n;
			break;
		}
		if (r <= 0)
			fail_msg("client send: %s", gnutls_strerror((int)r));
		e->c_sent += (uint64_t)r;
		e->c_pending = 0;
	}
	for (;;) {
		r = gnutls_record_recv(g->client, buf, sizeof(buf));
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
			break;
		if (r == 0) {
			e->client_eof = 1;
			break;
		}
		if (r < 0)
			fail_msg("client recv: %s", gnutls_strerror((int)r));
		for (i = 0; i < (size_t)r; i++)
			if (buf[i] != pattern(e->c_got + i, 2))
				fail_msg("client: byte %llu differs",
				    (unsigned long long)(e->c_got + i));
		e->c_got += (uint64_t)r;
	}
}

static void
backend_side(struct rig *g, struct ends *e)
{
	uint8_t buf[16384];
	size_t n, i;
	ssize_t r;

	while (e->b_sent < e->b_total) {
		n = e->b_total - e->b_sent > sizeof(buf) ? sizeof(buf) :
		    (size_t)(e->b_total - e->b_sent);
		for (i = 0; i < n; i++)
			buf[i] = pattern(e->b_sent + i, 2);
		r = send(g->backend_fd, buf, n, MSG_NOSIGNAL);
		if (r < 0 && errno == EAGAIN)
			break;
		assert_true(r > 0);
		e->b_sent += (uint64_t)r;
	}
	while (e->backend_reads && !e->backend_eof) {
		r = recv(g->backend_fd, buf, sizeof(buf), 0);
		if (r < 0 && errno == EAGAIN)
			break;
		if (r == 0) {
			e->backend_eof = 1;
			break;
		}
		assert_true(r > 0);
		for (i = 0; i < (size_t)r; i++)
			if (buf[i] != pattern(e->b_got + i, 1))
				fail_msg("backend: byte %llu differs",
				    (unsigned long long)(e->b_got + i));
		e->b_got += (uint64_t)r;
	}
}

/* Turn until done(e) or the pump ends the connection; bounded. */
static void
run_until(struct rig *g, struct ends *e, int (*done)(const struct ends *))
{
	int i;

	for (i = 0; i < MAX_STEPS; i++) {
		client_side(g, e);
		backend_side(g, e);
		if (done(e))
			break;
		/* once the pump is over only the ends go on reading */
		if (g->last != PROXY_CLOSE && g->last != PROXY_FINISHED)
			(void)turn(g);
	}
	if (!done(e))
		fail_msg("stuck: client sent %llu of %llu, backend got %llu; "
		    "backend sent %llu of %llu, client got %llu; verdict %d, "
		    "why \"%s\"", (unsigned long long)e->c_sent,
		    (unsigned long long)e->c_total,
		    (unsigned long long)e->b_got, (unsigned long long)e->b_sent,
		    (unsigned long long)e->b_total,
		    (unsigned long long)e->c_got, g->last, g->c.why.text);
}

/* Turn until the pump says the connection is over; bounded. */
static void
run_to_end(struct rig *g)
{
	int i;

	for (i = 0; i < MAX_STEPS && g->last != PROXY_FINISHED &&
	    g->last != PROXY_CLOSE; i++)
		(void)turn(g);
}

static int
all_moved(const struct ends *e)
{
	return e->b_got == e->c_total && e->c_got == e->b_total;
}

static int
backend_saw_eof(const struct ends *e)
{
	return e->backend_eof && all_moved(e);
}

static int
client_saw_eof(const struct ends *e)
{
	return e->client_eof && all_moved(e);
}

/* 4 MiB each way at once, then close_notify each way: every byte, once. */
static void
test_both_ways_then_half_close(void **state)
{
	struct rig *g = *state;
	struct ends e;

	memset(&e, 0, sizeof(e));
	e.c_total = e.b_total = 4 * MIB;
	e.backend_reads = 1;
	run_until(g, &e, all_moved);
	assert_int_equal(g->c.bytes_c2b, 4 * MIB);
	assert_int_equal(g->c.bytes_b2c, 4 * MIB);

	/* the client's close_notify: the backend's EOF, the other way open */
	assert_int_equal(gnutls_bye(g->client, GNUTLS_SHUT_WR), 0);
	run_until(g, &e, backend_saw_eof);
	assert_true(g->c.flags & CF_BACKEND_SHUT);
	assert_false(e.client_eof);

	/* the backend still talks, then ends: all of it, then close_notify */
	e.b_total += 100000;
	run_until(g, &e, all_moved);
	assert_int_equal(shutdown(g->backend_fd, SHUT_WR), 0);
	run_until(g, &e, client_saw_eof);
	assert_int_equal(e.c_got, 4 * MIB + 100000);
	/* both directions closed and flushed: the pump says so */
	run_to_end(g);
	assert_int_equal(g->last, PROXY_FINISHED);
	assert_string_equal(g->c.why.text, "client closed");
}

/* A backend that stops reading holds the client back; nothing is lost. */
static void
test_backpressure(void **state)
{
	struct rig *g = *state;
	struct ends e;
	uint64_t before;
	int i;

	memset(&e, 0, sizeof(e));
	e.c_total = 8 * MIB;
	e.backend_reads = 0;
	for (i = 0; i < 2000; i++) {
		client_side(g, &e);
		(void)turn(g);
	}
	/* the pump holds at most one buffer; the rest waits in the kernel */
	assert_true(g->c.c2b.tail - g->c.c2b.head <= CONN_BUF_SIZE);
	assert_true(e.c_sent < e.c_total);
	before = g->c.bytes_c2b;
	assert_true(before < e.c_total);
	/* with c2b full the pump does not ask to read the client */
	if (g->c.c2b.tail == CONN_BUF_SIZE && g->c.c2b.head == 0)
		assert_false(g->c.wants.client & EV_READ);
	for (i = 0; i < 100; i++) {
		client_side(g, &e);
		(void)turn(g);
	}
	assert_int_equal(g->c.bytes_c2b, before);	/* nothing moved */

	/* the backend reads again: everything arrives, in order */
	e.backend_reads = 1;
	run_until(g, &e, all_moved);
	assert_int_equal(e.b_got, 8 * MIB);
	assert_int_equal(g->c.bytes_c2b, 8 * MIB);
}

static int
backend_sent_all(const struct ends *e)
{
	return e->b_sent == e->b_total;
}

/*
 * The backend ends first, its EOF right behind its last bytes (the pump
 * still holds some): all of them reach the client, then close_notify.
 */
static void
test_backend_ends_first(void **state)
{
	struct rig *g = *state;
	struct ends e;

	memset(&e, 0, sizeof(e));
	e.b_total = 300000;
	e.backend_reads = 1;
	run_until(g, &e, backend_sent_all);
	assert_true(e.c_got < e.b_total);	/* still on its way */
	assert_int_equal(shutdown(g->backend_fd, SHUT_WR), 0);
	run_until(g, &e, client_saw_eof);
	assert_true(g->c.flags & CF_BYE_SENT);
	assert_string_equal(g->c.why.text, "backend closed");
	/* the client still sends; the backend gets it all */
	e.c_total = 200000;
	run_until(g, &e, all_moved);
	assert_int_equal(gnutls_bye(g->client, GNUTLS_SHUT_WR), 0);
	run_until(g, &e, backend_saw_eof);
	run_to_end(g);
	assert_int_equal(g->last, PROXY_FINISHED);
}

/* The client vanishes without close_notify: said so, backend told EOF. */
static void
test_client_vanishes(void **state)
{
	struct rig *g = *state;
	struct ends e;
	int i;

	memset(&e, 0, sizeof(e));
	e.c_total = 50000;
	e.backend_reads = 1;
	run_until(g, &e, all_moved);
	close(g->client_fd);
	g->client_fd = -1;
	for (i = 0; i < 1000 && !e.backend_eof; i++) {
		backend_side(g, &e);
		if (turn(g) == PROXY_CLOSE)
			break;
	}
	assert_true(e.backend_eof);
	assert_true(g->c.flags & CF_CLIENT_NO_NOTIFY);
	assert_string_equal(g->c.why.text, "client closed (no close_notify)");
	assert_int_equal(e.b_got, 50000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_both_ways_then_half_close,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_backpressure, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_backend_ends_first, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_client_vanishes, setup,
		    teardown),
	};

	log_init("test_proxy_pump", LOG_LEVEL_WARN);
	if (gnutls_global_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
