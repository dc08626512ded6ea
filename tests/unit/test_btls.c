/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_btls.c -- a connection with two sessions: the client-facing one (a
 * GnuTLS server, as tls.c makes it) and the backend's (btls.c, a GnuTLS
 * client verified against a backend-ca), both TLS 1.2 over socketpairs
 * whose far ends the test plays.  The pump (proxy_run()) drives the
 * backend's handshake, as in the worker.
 *
 * Checked: gnutls_rehandshake(3) on an established client session fails
 * with GNUTLS_E_INVALID_REQUEST (so a HelloRequest could never be sent
 * towards a backend anyway); a HelloRequest queued by the renegotiation
 * machine goes out on the client-facing session and nothing at all
 * reaches the backend; and hello.c, moat's one gnutls_rehandshake() call,
 * stops the worker rather than send on a session that is not the
 * connection's client-facing one.
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
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

#include "btls.h"
#include "hello.h"
#include "proxy.h"
#include "state.h"
#include "testtls.h"

#define TLS12	"NORMAL:-VERS-ALL:+VERS-TLS1.2"

struct rig {
	struct worker		w;
	struct frontend		fe;
	struct worker_frontend	wf;
	struct conn		c;
	gnutls_certificate_credentials_t scred, ccred;
	gnutls_pcert_st		pcert;
	gnutls_session_t	client;		/* the test's TLS client */
	gnutls_session_t	bserver;	/* the test's TLS backend */
	int			client_fd, backend_fd;
};

static void
nonblock(int fd)
{
	assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

static gnutls_session_t
server_session(struct rig *g, int fd)
{
	gnutls_session_t s;

	assert_int_equal(gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NONBLOCK), 0);
	assert_int_equal(gnutls_priority_set_direct(s, TLS12, NULL), 0);
	assert_int_equal(gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE,
	    g->scred), 0);
	gnutls_transport_set_int(s, fd);
	return s;
}

/* backend-ca as the master hands it over: a descriptor holding the PEM. */
static int
ca_fd(const gnutls_pcert_st *pcert)
{
	gnutls_datum_t pem;
	int fd;

	assert_int_equal(gnutls_pem_base64_encode2("CERTIFICATE", &pcert->cert,
	    &pem), 0);
	assert_true((fd = memfd_create("ca", MFD_CLOEXEC)) >= 0);
	assert_int_equal(write(fd, pem.data, pem.size), (ssize_t)pem.size);
	gnutls_free(pem.data);
	return fd;
}

static int
setup(void **state)
{
	static struct rig rig;
	struct rig *g = &rig;
	int cs[2], bs[2], i, rs = GNUTLS_E_AGAIN;

	memset(g, 0, sizeof(*g));
	g->w.magic = WORKER_MAGIC;
	assert_non_null(g->w.loop = ev_loop_new(EVFLAG_NOENV));
	g->fe.idle_timeout_ms = 60000;
	g->fe.backend_tls = 1;
	snprintf(g->fe.backend_name, sizeof(g->fe.backend_name), "localhost");
	snprintf(g->fe.name, sizeof(g->fe.name), "test");
	g->wf.magic = WORKER_FE_MAGIC;
	g->wf.fe = &g->fe;
	g->wf.w = &g->w;

	testtls_server_cred(&g->scred, &g->pcert);
	assert_int_equal(gnutls_certificate_allocate_credentials(&g->ccred), 0);
	g->fe.backend_ca_fd = ca_fd(&g->pcert);
	assert_int_equal(btls_frontend_init(&g->wf), 0);

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, cs), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, bs), 0);
	for (i = 0; i < 2; i++) {
		nonblock(cs[i]);
		nonblock(bs[i]);
	}
	/* The client-facing pair, handshaken like tls.c's session. */
	g->c.session = server_session(g, cs[0]);
	assert_int_equal(gnutls_init(&g->client, GNUTLS_CLIENT |
	    GNUTLS_NONBLOCK), 0);
	assert_int_equal(gnutls_set_default_priority(g->client), 0);
	assert_int_equal(gnutls_credentials_set(g->client,
	    GNUTLS_CRD_CERTIFICATE, g->ccred), 0);
	gnutls_transport_set_int(g->client, cs[1]);
	assert_int_equal(testtls_handshake(g->c.session, g->client), 0);
	gnutls_session_set_ptr(g->c.session, &g->c);	/* as tls.c does */

	g->c.magic = CONN_MAGIC;
	g->c.w = &g->w;
	g->c.wf = &g->wf;
	g->c.state = CONN_PROXY;
	g->c.cfd = cs[0];
	g->c.bfd = bs[0];
	snprintf(g->c.peer, sizeof(g->c.peer), "test-client");
	g->client_fd = cs[1];
	g->backend_fd = bs[1];
	assert_int_equal(proxy_start(&g->c), 0);
	assert_int_equal(btls_start(&g->c), 0);

	/* The pump makes the backend's handshake; the test's backend answers. */
	g->bserver = server_session(g, bs[1]);
	for (i = 0; i < 1000 && (rs != 0 || !btls_ready(&g->c)); i++) {
		proxy_backend_ready(&g->c, EV_READ | EV_WRITE);
		assert_int_equal(proxy_run(&g->c), PROXY_WAIT);
		if (rs != 0)
			rs = gnutls_handshake(g->bserver);
		assert_false(rs < 0 && gnutls_error_is_fatal(rs));
	}
	assert_int_equal(rs, 0);
	assert_true(btls_ready(&g->c));
	assert_int_equal(gnutls_protocol_get_version(g->bserver), GNUTLS_TLS1_2);
	*state = g;
	return 0;
}

static int
teardown(void **state)
{
	struct rig *g = *state;

	btls_free(&g->c);
	btls_frontend_free(&g->wf);
	proxy_free(&g->c);
	gnutls_deinit(g->c.session);
	gnutls_deinit(g->client);
	gnutls_deinit(g->bserver);
	close(g->c.cfd);
	close(g->c.bfd);
	close(g->client_fd);
	close(g->backend_fd);
	gnutls_certificate_free_credentials(g->scred);
	gnutls_certificate_free_credentials(g->ccred);
	/* scred owns the key and the certificate (gnutls_certificate_set_key) */
	ev_loop_destroy(g->w.loop);
	return 0;
}

/* What the far end of a socketpair could read now (0: nothing). */
static ssize_t
waiting(int fd)
{
	uint8_t buf[4096];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);

	if (n < 0)
		assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
	return n < 0 ? 0 : n;
}

/* GnuTLS itself: no HelloRequest from a client session (gnutls_rehandshake(3)). */
static void
test_rehandshake_on_client_session_is_invalid(void **state)
{
	struct rig *g = *state;

	assert_int_equal(gnutls_rehandshake(g->client), GNUTLS_E_INVALID_REQUEST);
	assert_int_equal(waiting(g->c.cfd), 0);
}

/*
 * The renegotiation machine's HelloRequest, through the pump as the
 * worker sends it: on the client-facing session, never on the backend's.
 */
static void
test_hello_request_never_reaches_backend(void **state)
{
	struct rig *g = *state;
	uint8_t buf[64];
	ssize_t n;

	assert_int_equal(waiting(g->backend_fd), 0);
	g->c.reneg.state = RENEG_QUEUED;
	g->c.reneg.queued = RENEG_SEND_HELLO_REQUEST;
	g->c.ctl = CTL_HELLO_REQUEST;
	proxy_client_ready(&g->c, EV_READ | EV_WRITE);
	proxy_backend_ready(&g->c, EV_READ | EV_WRITE);
	assert_int_equal(proxy_run(&g->c), PROXY_WAIT);
	assert_int_equal(g->c.ctl, 0);
	assert_int_equal(g->c.reneg.state, RENEG_WAIT_ANSWER);

	assert_true(waiting(g->client_fd) > 0);
	assert_int_equal(gnutls_record_recv(g->client, buf, sizeof(buf)),
	    GNUTLS_E_REHANDSHAKE);
	assert_int_equal(waiting(g->backend_fd), 0);
	n = gnutls_record_recv(g->bserver, buf, sizeof(buf));
	assert_int_equal(n, GNUTLS_E_AGAIN);
}

/* hello.c refuses a session that is not c's client-facing one: it exits. */
static void
test_hello_request_refuses_other_session(void **state)
{
	struct rig *g = *state;
	gnutls_session_t saved = g->c.session;
	int status;
	pid_t pid;

	fflush(NULL);
	assert_true((pid = fork()) >= 0);
	if (pid == 0) {
		g->c.session = g->client;	/* a client session, not c's */
		(void)hello_request(&g->c);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	assert_int_equal(waiting(g->backend_fd), 0);
	assert_int_equal(waiting(g->c.cfd), 0);
	assert_ptr_equal(g->c.session, saved);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_rehandshake_on_client_session_is_invalid, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_hello_request_never_reaches_backend, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_hello_request_refuses_other_session, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
