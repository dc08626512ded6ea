/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * reneg_swarm.c -- many TLS 1.2 connections that wait for the server's
 * HelloRequest, renegotiate, then prove the renegotiated session works.
 *
 * One process, one poll() loop, non-blocking sockets and GnuTLS sessions:
 *
 *   1. raise RLIMIT_NOFILE to the hard limit; open N connections (at most
 *      -c at a time in their first handshake) and complete every handshake;
 *   2. print "ready N" on stdout (flushed) -- the test now runs
 *      `moatctl rekey`;
 *   3. on GNUTLS_E_REHANDSHAKE drive gnutls_handshake() non-blocking to its
 *      end, then send a short message naming the connection and check that
 *      exactly it comes back (moat -> echo backend -> moat);
 *   4. when every connection is done (or failed), or the deadline -t passes,
 *      print one JSON summary line and exit 0 (2 on bad usage).
 *
 * Summary: {"connected", "ready", "hello_requests", "renegotiated",
 * "echoed_ok", "failed", "pending", "timed_out", "errors": {what: count}}.
 * The test decides what is a pass; this program only reports.
 */
#include <sys/resource.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#define MSG_LEN		32
#define MAX_ERRKINDS	16

enum st {
	ST_NEW,			/* not connected yet */
	ST_HANDSHAKE,		/* first handshake */
	ST_WAIT,		/* established, waiting for the HelloRequest */
	ST_REHANDSHAKE,		/* renegotiating */
	ST_SEND,		/* sending the message */
	ST_ECHO,		/* reading its echo */
	ST_DONE,
	ST_FAILED,
};

struct sc {
	gnutls_session_t	session;
	int			fd;
	enum st			st;
	unsigned		hello_requests;
	char			msg[MSG_LEN];
	size_t			sent, got;
	char			echo[MSG_LEN];
};

static struct {
	const char	*what;
	unsigned	n;
} errkinds[MAX_ERRKINDS];
static unsigned nerrkinds;

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
usage(void)
{
	fprintf(stderr, "usage: reneg_swarm -p PORT -n CONNECTIONS [-h HOST] "
	    "[-c CONCURRENT_HANDSHAKES] [-T CONNECT_TIMEOUT_MS] "
	    "[-t DEADLINE_MS]\n");
	exit(2);
}

/* Count one failure under a short name (a GnuTLS message or ours). */
static void
note_error(const char *what)
{
	unsigned i;

	for (i = 0; i < nerrkinds; i++)
		if (strcmp(errkinds[i].what, what) == 0) {
			errkinds[i].n++;
			return;
		}
	if (nerrkinds < MAX_ERRKINDS) {
		errkinds[nerrkinds].what = what;
		errkinds[nerrkinds++].n = 1;
	}
}

static void
fail(struct sc *s, const char *what)
{
	note_error(what);
	s->st = ST_FAILED;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

static int
sc_open(struct sc *s, const char *host, int port,
    gnutls_certificate_credentials_t cred, gnutls_priority_t prio)
{
	struct sockaddr_in sin;
	int one = 1, r;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		return -1;
	if ((s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0) {
		fail(s, "socket");
		return -1;
	}
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(s->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 &&
	    errno != EINPROGRESS) {
		fail(s, "connect");
		return -1;
	}
	if ((r = gnutls_init(&s->session, GNUTLS_CLIENT | GNUTLS_NONBLOCK)) < 0) {
		fail(s, "gnutls_init");
		return -1;
	}
	gnutls_priority_set(s->session, prio);
	gnutls_credentials_set(s->session, GNUTLS_CRD_CERTIFICATE, cred);
	gnutls_server_name_set(s->session, GNUTLS_NAME_DNS, "localhost", 9);
	gnutls_transport_set_int(s->session, s->fd);
	s->st = ST_HANDSHAKE;
	return 0;
}

/* One step of a handshake; 1 when it completed. */
static int
sc_handshake(struct sc *s)
{
	char buf[256];
	int r, warnings = 0;

	for (;;) {
		r = gnutls_handshake(s->session);
		if (r == 0)
			return 1;
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
			return 0;
		if (r == GNUTLS_E_GOT_APPLICATION_DATA) {
			/* nothing was sent yet: the server must not send data */
			(void)gnutls_record_recv(s->session, buf, sizeof(buf));
			fail(s, "unexpected application data");
			return -1;
		}
		if (!gnutls_error_is_fatal(r) && ++warnings < 16)
			continue;	/* a warning alert: go on */
		fail(s, gnutls_strerror(r));
		return -1;
	}
}

/* Readable while established: expect the HelloRequest. */
static void
sc_wait(struct sc *s)
{
	char buf[256];
	ssize_t n;

	for (;;) {
		n = gnutls_record_recv(s->session, buf, sizeof(buf));
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			return;
		if (n == GNUTLS_E_REHANDSHAKE) {
			s->hello_requests++;
			s->st = ST_REHANDSHAKE;
			return;
		}
		if (n > 0) {
			fail(s, "data before the HelloRequest");
			return;
		}
		if (n == 0) {
			fail(s, "closed by the server while waiting");
			return;
		}
		if (n == GNUTLS_E_WARNING_ALERT_RECEIVED)
			continue;
		fail(s, gnutls_strerror((int)n));
		return;
	}
}

static void
sc_send(struct sc *s)
{
	ssize_t n;

	while (s->sent < MSG_LEN) {
		/* after E_AGAIN GnuTLS wants the same arguments again */
		n = gnutls_record_send(s->session, s->msg + s->sent,
		    MSG_LEN - s->sent);
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			return;
		if (n < 0) {
			fail(s, gnutls_strerror((int)n));
			return;
		}
		s->sent += (size_t)n;
	}
	s->st = ST_ECHO;
}

static void
sc_echo(struct sc *s, unsigned *echoed_ok)
{
	ssize_t n;

	while (s->got < MSG_LEN) {
		n = gnutls_record_recv(s->session, s->echo + s->got,
		    MSG_LEN - s->got);
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			return;
		if (n == GNUTLS_E_REHANDSHAKE) {
			s->hello_requests++;
			fail(s, "a second HelloRequest");
			return;
		}
		if (n == GNUTLS_E_WARNING_ALERT_RECEIVED)
			continue;
		if (n == 0) {
			fail(s, "closed by the server before the echo");
			return;
		}
		if (n < 0) {
			fail(s, gnutls_strerror((int)n));
			return;
		}
		s->got += (size_t)n;
	}
	if (memcmp(s->echo, s->msg, MSG_LEN) != 0) {
		fail(s, "echo differs");
		return;
	}
	(*echoed_ok)++;
	s->st = ST_DONE;
	(void)gnutls_bye(s->session, GNUTLS_SHUT_WR);	/* best effort */
	close(s->fd);
	s->fd = -1;
}

static short
sc_events(const struct sc *s)
{
	switch (s->st) {
	case ST_HANDSHAKE:
	case ST_REHANDSHAKE:
		return gnutls_record_get_direction(s->session) ? POLLOUT : POLLIN;
	case ST_SEND:
		return POLLOUT;
	case ST_WAIT:
	case ST_ECHO:
		return POLLIN;
	default:
		return 0;
	}
}

int
main(int argc, char **argv)
{
	struct sc *sc;
	struct pollfd *pfd;
	unsigned *idx;
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
	struct rlimit rl;
	const char *host = "127.0.0.1";
	int port = 0, n = 0, conc = 64, connect_timeout = 120000;
	int deadline_ms = 180000, opt, i, r;
	unsigned opened = 0, in_hs = 0, connected = 0, renegotiated = 0;
	unsigned echoed_ok = 0, failed = 0, pending = 0, hello_requests = 0;
	unsigned timed_out = 0, np;
	long long deadline;

	while ((opt = getopt(argc, argv, "h:p:n:c:T:t:")) != -1) {
		switch (opt) {
		case 'h': host = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'n': n = atoi(optarg); break;
		case 'c': conc = atoi(optarg); break;
		case 'T': connect_timeout = atoi(optarg); break;
		case 't': deadline_ms = atoi(optarg); break;
		default: usage();
		}
	}
	if (port <= 0 || port > 65535 || n <= 0 || n > 100000 || conc <= 0 ||
	    connect_timeout <= 0 || deadline_ms <= 0)
		usage();

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < (rlim_t)n + 16) {
		fprintf(stderr, "reneg_swarm: RLIMIT_NOFILE %lu is too low for "
		    "%d connections\n", (unsigned long)rl.rlim_cur, n);
		return 2;
	}

	gnutls_global_init();
	gnutls_certificate_allocate_credentials(&cred);
	if ((r = gnutls_priority_init(&prio,
	    "NORMAL:-VERS-ALL:+VERS-TLS1.2", NULL)) < 0) {
		fprintf(stderr, "priority: %s\n", gnutls_strerror(r));
		return 2;
	}
	sc = calloc((size_t)n, sizeof(*sc));
	pfd = calloc((size_t)n, sizeof(*pfd));
	idx = calloc((size_t)n, sizeof(*idx));
	if (sc == NULL || pfd == NULL || idx == NULL)
		return 2;
	for (i = 0; i < n; i++) {
		sc[i].fd = -1;
		sc[i].st = ST_NEW;
		snprintf(sc[i].msg, MSG_LEN, "swarm %08d renegotiated ok", i);
		memset(sc[i].msg + strlen(sc[i].msg), '.',
		    MSG_LEN - strlen(sc[i].msg));
		sc[i].msg[MSG_LEN - 1] = '\n';
	}

	/* Phase 1: every connection established. */
	deadline = now_ms() + connect_timeout;
	while (connected + failed < (unsigned)n && now_ms() < deadline) {
		while (opened < (unsigned)n && in_hs < (unsigned)conc) {
			struct sc *s = &sc[opened++];

			if (sc_open(s, host, port, cred, prio) < 0) {
				failed++;
				continue;
			}
			/* Send the ClientHello now: the direction is known after. */
			if ((r = sc_handshake(s)) == 0)
				in_hs++;
			else if (r > 0) {
				s->st = ST_WAIT;
				connected++;
			} else
				failed++;
		}
		np = 0;
		for (i = 0; i < (int)opened; i++)
			if (sc[i].st == ST_HANDSHAKE) {
				pfd[np].fd = sc[i].fd;
				pfd[np].events = sc_events(&sc[i]);
				pfd[np].revents = 0;
				idx[np++] = (unsigned)i;
			}
		if (np == 0)
			continue;
		if (poll(pfd, np, 100) < 0 && errno != EINTR) {
			perror("poll");
			return 2;
		}
		for (i = 0; i < (int)np; i++) {
			struct sc *s = &sc[idx[i]];

			if (pfd[i].revents == 0)
				continue;
			r = sc_handshake(s);
			if (r == 0)
				continue;
			in_hs--;
			if (r > 0) {
				s->st = ST_WAIT;
				connected++;
			} else
				failed++;
		}
	}
	for (i = 0; i < n; i++)
		if (sc[i].st == ST_HANDSHAKE || sc[i].st == ST_NEW) {
			fail(&sc[i], "first handshake timed out");
			failed++;
		}

	printf("ready %u\n", connected);
	fflush(stdout);

	/* Phase 2: wait for the HelloRequests and serve them. */
	deadline = now_ms() + deadline_ms;
	for (;;) {
		np = 0;
		for (i = 0; i < n; i++) {
			short ev = sc_events(&sc[i]);

			if (ev == 0)
				continue;
			pfd[np].fd = sc[i].fd;
			pfd[np].events = ev;
			pfd[np].revents = 0;
			idx[np++] = (unsigned)i;
		}
		if (np == 0 || now_ms() >= deadline)
			break;
		if (poll(pfd, np, 200) < 0 && errno != EINTR) {
			perror("poll");
			return 2;
		}
		for (i = 0; i < (int)np; i++) {
			struct sc *s = &sc[idx[i]];

			if (pfd[i].revents == 0)
				continue;
			switch (s->st) {
			case ST_WAIT:
				sc_wait(s);
				if (s->st != ST_REHANDSHAKE)
					break;
				/* FALLTHROUGH */
			case ST_REHANDSHAKE:
				r = sc_handshake(s);
				if (r <= 0)
					break;
				renegotiated++;
				s->st = ST_SEND;
				/* FALLTHROUGH */
			case ST_SEND:
				sc_send(s);
				if (s->st != ST_ECHO)
					break;
				/* FALLTHROUGH */
			case ST_ECHO:
				sc_echo(s, &echoed_ok);
				break;
			default:
				break;
			}
		}
	}

	failed = 0;
	for (i = 0; i < n; i++) {
		hello_requests += sc[i].hello_requests;
		if (sc[i].st == ST_FAILED)
			failed++;
		else if (sc[i].st != ST_DONE) {
			pending++;
			if (now_ms() >= deadline)
				timed_out++;
		}
	}
	printf("{\"connections\": %d, \"connected\": %u, \"ready\": %u, "
	    "\"hello_requests\": %u, \"renegotiated\": %u, \"echoed_ok\": %u, "
	    "\"failed\": %u, \"pending\": %u, \"timed_out\": %u, "
	    "\"errors\": {", n, connected, connected, hello_requests,
	    renegotiated, echoed_ok, failed, pending, timed_out);
	for (i = 0; i < (int)nerrkinds; i++) {
		const char *p;

		printf("%s\"", i ? ", " : "");
		for (p = errkinds[i].what; *p != '\0'; p++)
			if (*p == '"' || *p == '\\')
				printf("\\%c", *p);
			else if ((unsigned char)*p >= 0x20)
				putchar(*p);
		printf("\": %u", errkinds[i].n);
	}
	printf("}}\n");
	fflush(stdout);

	for (i = 0; i < n; i++) {
		if (sc[i].fd >= 0)
			close(sc[i].fd);
		if (sc[i].session != NULL)
			gnutls_deinit(sc[i].session);
	}
	gnutls_priority_deinit(prio);
	gnutls_certificate_free_credentials(cred);
	free(sc);
	free(pfd);
	free(idx);
	gnutls_global_deinit();
	return 0;
}
