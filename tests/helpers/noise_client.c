/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * noise_client.c -- a TLS 1.2 GnuTLS client that sends records carrying no
 * data, as fast as the socket takes them, to see whether one connection
 * can keep a worker busy (issue 9, point 4):
 *
 *   noise_client PORT alerts N   -- N warning alerts (user_canceled is the
 *                                   one warning TLS 1.2 peers accept), all
 *                                   written before reading anything
 *   noise_client PORT renegs N   -- up to N client-initiated renegotiations,
 *                                   each refused by the server with the
 *                                   no_renegotiation warning alert
 *
 * It prints one JSON line: how many it sent (alerts) or saw refused
 * (renegs), and how the connection ended ("closed" when the server closed
 * or reset it, "open" when all N went and it still answers an echo).
 * Bounded: every wait has a 20 s deadline.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#define DEADLINE_MS	20000

static int
tcp_connect(int port)
{
	struct sockaddr_in sin;
	int fd;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Does the server still answer?  An echo of 4 bytes within the deadline. */
static int
echo_ok(gnutls_session_t s)
{
	char buf[64];
	ssize_t n;
	size_t got = 0;

	if (gnutls_record_send(s, "ping", 4) != 4)
		return 0;
	while (got < 4) {
		n = gnutls_record_recv(s, buf, sizeof(buf));
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED ||
		    n == GNUTLS_E_WARNING_ALERT_RECEIVED || n == GNUTLS_E_REHANDSHAKE)
			continue;
		if (n <= 0)
			return 0;
		got += (size_t)n;
	}
	return 1;
}

static int
send_alerts(gnutls_session_t s, long n, long *sent)
{
	for (*sent = 0; *sent < n; (*sent)++)
		if (gnutls_alert_send(s, GNUTLS_AL_WARNING,
		    GNUTLS_A_USER_CANCELED) < 0)
			return 0;	/* the server closed on us */
	return echo_ok(s);
}

static int
send_renegs(gnutls_session_t s, long n, long *refused)
{
	int r;

	for (*refused = 0; *refused < n;) {
		r = gnutls_handshake(s);
		if (r == GNUTLS_E_WARNING_ALERT_RECEIVED &&
		    gnutls_alert_get(s) == GNUTLS_A_NO_RENEGOTIATION) {
			(*refused)++;
			continue;
		}
		if (r == 0)
			return echo_ok(s);	/* the server allowed one */
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED ||
		    !gnutls_error_is_fatal(r))
			continue;
		return 0;			/* closed, or a fatal alert */
	}
	return echo_ok(s);
}

int
main(int argc, char **argv)
{
	gnutls_certificate_credentials_t cred;
	gnutls_session_t s;
	long n, count = 0;
	int fd, port, open_end, alerts;

	if (argc != 4 || (strcmp(argv[2], "alerts") != 0 &&
	    strcmp(argv[2], "renegs") != 0)) {
		fprintf(stderr, "usage: noise_client PORT alerts|renegs N\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);	/* a server that closes is an answer */
	port = atoi(argv[1]);
	alerts = strcmp(argv[2], "alerts") == 0;
	n = atol(argv[3]);
	if (port <= 0 || port > 65535 || n < 0) {
		fprintf(stderr, "noise_client: bad arguments\n");
		return 2;
	}
	if ((fd = tcp_connect(port)) < 0) {
		perror("noise_client: connect");
		return 1;
	}
	if (gnutls_certificate_allocate_credentials(&cred) < 0 ||
	    gnutls_init(&s, GNUTLS_CLIENT) < 0 ||
	    gnutls_priority_set_direct(s, "NORMAL:-VERS-ALL:+VERS-TLS1.2",
	    NULL) < 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred) < 0) {
		fprintf(stderr, "noise_client: GnuTLS set-up failed\n");
		return 1;
	}
	gnutls_transport_set_int(s, fd);
	gnutls_record_set_timeout(s, DEADLINE_MS);
	gnutls_handshake_set_timeout(s, DEADLINE_MS);
	if (gnutls_handshake(s) < 0) {
		fprintf(stderr, "noise_client: first handshake failed\n");
		return 1;
	}
	open_end = alerts ? send_alerts(s, n, &count) : send_renegs(s, n, &count);
	printf("{\"mode\": \"%s\", \"asked\": %ld, \"%s\": %ld, \"end\": \"%s\"}\n",
	    argv[2], n, alerts ? "sent" : "refused", count,
	    open_end ? "open" : "closed");
	gnutls_deinit(s);
	gnutls_certificate_free_credentials(cred);
	close(fd);
	return 0;
}
