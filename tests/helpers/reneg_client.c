/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * reneg_client.c -- a GnuTLS client that streams data through moat to an
 * echo backend and answers a server's HelloRequest as it is told:
 *
 *   accept  -- GNUTLS_E_REHANDSHAKE: run gnutls_handshake() (renegotiate)
 *   refuse  -- send the no_renegotiation warning alert and go on
 *   ignore  -- do nothing and go on
 *
 * With -c MS (repeatable, up to 8 times) the client itself renegotiates
 * (client-initiated, TLS 1.2: gnutls_handshake() on the established
 * session) once MS milliseconds after the start of the stream; a server
 * that refuses answers with the no_renegotiation warning alert, which the
 * client counts and then goes on streaming.
 *
 * With -i the client lets the server change its certificate in a
 * renegotiation (GNUTLS_ALLOW_ID_CHANGE; GnuTLS refuses that by default
 * with GNUTLS_E_SESSION_USER_ID_CHANGED), as the certificate-rotation test
 * needs.
 *
 * With -s FILE the client resumes the session saved in FILE, if there is
 * one, and at the end saves its session there for the next run; the JSON
 * line says whether the first handshake resumed ("resumed").
 *
 * When the first handshake is done it prints "ready" on stderr.
 *
 * It paces its writes over --duration-ms, then waits for every echoed byte,
 * and prints one JSON line: bytes and SHA-256 of both streams, whether the
 * received stream is exactly (or a prefix of) what was sent, how many
 * HelloRequests it saw, how many handshakes it made, the certificate
 * fingerprints the server showed, and how the connection ended.  The tests
 * compare this with moat's counters (gnutls_rehandshake(3) semantics).
 */
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
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#define CHUNK		4096
#define MAX_CERTS	16
#define MAX_CLIENT_RENEGS 8

enum mode { MODE_ACCEPT, MODE_REFUSE, MODE_IGNORE };

struct client {
	gnutls_session_t	session;
	int			fd;
	enum mode		mode;
	gnutls_hash_hd_t	h_sent, h_recv;
	unsigned char		*sent_log;	/* everything sent, for prefix check */
	size_t			sent_cap;
	size_t			sent, received;
	int			mismatch;	/* echo differs from what was sent */
	unsigned		hello_requests, handshakes, refused, ignored;
	unsigned		client_renegs, client_reneg_ok, client_reneg_refused;
	char			fps[MAX_CERTS][65];
	unsigned		nfps;
	const char		*end;		/* how it ended */
	char			end_detail[160];
	char			version[32];
};

/* RENEG_CLIENT_DEBUG=N: GnuTLS's own log at level N on stderr. */
static void
gnutls_log_stderr(int level, const char *msg)
{
	fprintf(stderr, "gnutls<%d>: %s", level, msg);
}

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
	fprintf(stderr, "usage: reneg_client -p PORT [-h HOST] [-m accept|refuse|ignore]\n"
	    "    [-v 1.2|1.3] [-d DURATION_MS] [-r BYTES_PER_TICK] [-t TIMEOUT_MS]\n"
	    "    [-c CLIENT_RENEG_AT_MS]... [-i] [-u] [-s SESSION_FILE]\n");
	exit(2);
}

/* Remember the server certificate's SHA-256 if it is new. */
static void
note_cert(struct client *c)
{
	const gnutls_datum_t *certs;
	unsigned n, i;
	unsigned char md[32];
	char hex[65];

	certs = gnutls_certificate_get_peers(c->session, &n);
	if (certs == NULL || n == 0)
		return;
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, certs[0].data, certs[0].size, md) < 0)
		return;
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	for (i = 0; i < c->nfps; i++)
		if (strcmp(c->fps[i], hex) == 0)
			return;
	if (c->nfps < MAX_CERTS)
		snprintf(c->fps[c->nfps++], sizeof(c->fps[0]), "%s", hex);
}

static int
wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;

	do {
		r = poll(&p, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	return r;
}

/* Application data from the server: check it against what was sent. */
static void
take_data(struct client *c, const char *buf, size_t n)
{
	if (c->received + n > c->sent ||
	    memcmp(buf, c->sent_log + c->received, n) != 0)
		c->mismatch = 1;
	gnutls_hash(c->h_recv, buf, n);
	c->received += n;
}

/*
 * Drive a handshake to its end on the non-blocking socket.  Returns 0 when
 * it completed, 1 when the server refused our renegotiation with the
 * no_renegotiation warning alert (the session goes on), or an error.
 */
static int
do_handshake(struct client *c, long long deadline)
{
	int r;
	char buf[CHUNK];

	for (;;) {
		r = gnutls_handshake(c->session);
		if (r == 0)
			break;
		if (r == GNUTLS_E_GOT_APPLICATION_DATA) {
			/* data sent before the server's new handshake started */
			ssize_t n = gnutls_record_recv(c->session, buf, sizeof(buf));
			if (n > 0)
				take_data(c, buf, (size_t)n);
			continue;
		}
		if (r == GNUTLS_E_WARNING_ALERT_RECEIVED &&
		    gnutls_alert_get(c->session) == GNUTLS_A_NO_RENEGOTIATION)
			return 1;	/* calling again would ask again */
		if (r != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED &&
		    gnutls_error_is_fatal(r))
			return r;
		if (now_ms() > deadline)
			return GNUTLS_E_TIMEDOUT;
		wait_fd(c->fd, gnutls_record_get_direction(c->session) ? POLLOUT : POLLIN, 100);
	}
	c->handshakes++;
	note_cert(c);
	snprintf(c->version, sizeof(c->version), "%s",
	    gnutls_protocol_get_name(gnutls_protocol_get_version(c->session)));
	return 0;
}

/* Read what is there; handle the server's HelloRequest per mode. */
static int
read_some(struct client *c, long long deadline)
{
	char buf[CHUNK];
	ssize_t n;
	int r;

	for (;;) {
		n = gnutls_record_recv(c->session, buf, sizeof(buf));
		if (n > 0) {
			take_data(c, buf, (size_t)n);
			continue;
		}
		if (n == 0) {
			c->end = "server_closed";
			return -1;
		}
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			return 0;
		if (n == GNUTLS_E_REHANDSHAKE) {
			c->hello_requests++;
			switch (c->mode) {
			case MODE_ACCEPT:
				if ((r = do_handshake(c, deadline)) != 0) {
					c->end = "rehandshake_failed";
					snprintf(c->end_detail, sizeof(c->end_detail),
					    "%s", r > 0 ? "no_renegotiation alert"
					    : gnutls_strerror(r));
					return -1;
				}
				break;
			case MODE_REFUSE:
				c->refused++;
				do {
					r = gnutls_alert_send(c->session, GNUTLS_AL_WARNING,
					    GNUTLS_A_NO_RENEGOTIATION);
				} while (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED);
				if (r < 0) {
					c->end = "alert_failed";
					return -1;
				}
				break;
			case MODE_IGNORE:
				c->ignored++;
				break;
			}
			continue;
		}
		if (n == GNUTLS_E_WARNING_ALERT_RECEIVED)
			continue;
		/* The server's two unclean ends, named apart from our errors. */
		if (n == GNUTLS_E_PREMATURE_TERMINATION)
			c->end = "server_unclean";
		else if (n == GNUTLS_E_FATAL_ALERT_RECEIVED)
			c->end = "server_alert";
		else
			c->end = "error";
		snprintf(c->end_detail, sizeof(c->end_detail), "%s",
		    gnutls_strerror((int)n));
		return -1;
	}
}

static int
connect_to(const char *host, int port)
{
	struct sockaddr_in sin;
	int fd, one = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		return -1;
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* -s: the saved session, if FILE holds one (0), or nothing to resume (1). */
static int
session_load(gnutls_session_t session, const char *path)
{
	gnutls_datum_t d = { NULL, 0 };
	int r;

	if (gnutls_load_file(path, &d) < 0 || d.size == 0) {
		gnutls_free(d.data);
		return 1;
	}
	r = gnutls_session_set_data(session, d.data, d.size);
	gnutls_free(d.data);
	return r < 0 ? r : 0;
}

/* -s: the session now, for the next run. */
static int
session_save(gnutls_session_t session, const char *path)
{
	gnutls_datum_t d = { NULL, 0 };
	FILE *fp;
	int r;

	if ((r = gnutls_session_get_data2(session, &d)) < 0)
		return r;
	if ((fp = fopen(path, "wb")) == NULL) {
		gnutls_free(d.data);
		return -1;
	}
	r = fwrite(d.data, 1, d.size, fp) == d.size ? 0 : -1;
	if (fclose(fp) != 0)
		r = -1;
	gnutls_free(d.data);
	return r;
}

static void
hexdigest(gnutls_hash_hd_t h, char out[65])
{
	unsigned char md[32];
	int i;

	gnutls_hash_deinit(h, md);
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int
main(int argc, char **argv)
{
	struct client c;
	gnutls_certificate_credentials_t cred;
	const char *host = "127.0.0.1", *vers = "1.2", *prio, *sfile = NULL;
	char prio_buf[256], hs[65], hr[65], chunk[CHUNK];
	int port = 0, duration = 2000, per_tick = 2048, timeout = 20000;
	int opt, r, stop_sending = 0, allow_id_change = 0, unsafe = 0;
	int resumed = 0;
	long long reneg_at[MAX_CLIENT_RENEGS];
	unsigned nreneg_at = 0, next_reneg = 0;
	long long start, deadline, next_tick;
	size_t pending = 0, i;
	unsigned seed = 1;

	memset(&c, 0, sizeof(c));
	c.mode = MODE_ACCEPT;
	c.end = "done";
	while ((opt = getopt(argc, argv, "h:p:m:v:d:r:t:c:ius:")) != -1) {
		switch (opt) {
		case 'h': host = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'm':
			if (strcmp(optarg, "accept") == 0) c.mode = MODE_ACCEPT;
			else if (strcmp(optarg, "refuse") == 0) c.mode = MODE_REFUSE;
			else if (strcmp(optarg, "ignore") == 0) c.mode = MODE_IGNORE;
			else usage();
			break;
		case 'v': vers = optarg; break;
		case 'd': duration = atoi(optarg); break;
		case 'r': per_tick = atoi(optarg); break;
		case 't': timeout = atoi(optarg); break;
		case 'i': allow_id_change = 1; break;
		case 'u': unsafe = 1; break;
		case 's': sfile = optarg; break;
		case 'c':
			if (nreneg_at == MAX_CLIENT_RENEGS || atoi(optarg) < 0)
				usage();
			reneg_at[nreneg_at++] = atoi(optarg);
			if (nreneg_at > 1 &&
			    reneg_at[nreneg_at - 1] < reneg_at[nreneg_at - 2])
				usage();	/* in increasing order */
			break;
		default: usage();
		}
	}
	if (port <= 0 || port > 65535 || duration < 0 || per_tick <= 0 ||
	    per_tick > CHUNK || timeout <= 0)
		usage();

	/* -u: no RFC 5746 extension, as a pre-2010 client would. */
	snprintf(prio_buf, sizeof(prio_buf), "NORMAL:-VERS-ALL:+VERS-TLS%s%s", vers,
	    unsafe ? ":%DISABLE_SAFE_RENEGOTIATION" : "");
	prio = prio_buf;
	gnutls_global_init();
	if (getenv("RENEG_CLIENT_DEBUG") != NULL) {
		gnutls_global_set_log_function(gnutls_log_stderr);
		gnutls_global_set_log_level(atoi(getenv("RENEG_CLIENT_DEBUG")));
	}
	gnutls_certificate_allocate_credentials(&cred);
	gnutls_init(&c.session, GNUTLS_CLIENT | GNUTLS_NONBLOCK |
	    (allow_id_change ? GNUTLS_ALLOW_ID_CHANGE : 0));
	if ((r = gnutls_priority_set_direct(c.session, prio, NULL)) < 0) {
		fprintf(stderr, "priority: %s\n", gnutls_strerror(r));
		return 2;
	}
	gnutls_credentials_set(c.session, GNUTLS_CRD_CERTIFICATE, cred);
	gnutls_server_name_set(c.session, GNUTLS_NAME_DNS, "localhost", 9);
	gnutls_hash_init(&c.h_sent, GNUTLS_DIG_SHA256);
	gnutls_hash_init(&c.h_recv, GNUTLS_DIG_SHA256);
	if (sfile != NULL && (r = session_load(c.session, sfile)) < 0) {
		fprintf(stderr, "session %s: %s\n", sfile, gnutls_strerror(r));
		return 2;
	}

	if ((c.fd = connect_to(host, port)) < 0) {
		perror("connect");
		return 2;
	}
	gnutls_transport_set_int(c.session, c.fd);
	start = now_ms();
	deadline = start + timeout;
	if ((r = do_handshake(&c, deadline)) != 0) {
		printf("{\"end\": \"handshake_failed\", \"detail\": \"%s\"}\n",
		    r > 0 ? "no_renegotiation alert" : gnutls_strerror(r));
		return 1;
	}
	resumed = gnutls_session_is_resumed(c.session) != 0;
	fprintf(stderr, "ready\n");
	fflush(stderr);

	c.sent_cap = 1 << 20;
	c.sent_log = malloc(c.sent_cap);
	if (c.sent_log == NULL)
		return 2;
	next_tick = now_ms();
	while (now_ms() < deadline) {
		long long t = now_ms();

		if (!stop_sending && t - start >= duration)
			stop_sending = 1;
		if (stop_sending && pending == 0 && c.received == c.sent)
			break;
		/*
		 * Our own renegotiation, between two writes, once every echo
		 * is back: GnuTLS abandons a client handshake that meets
		 * application data (GNUTLS_E_GOT_APPLICATION_DATA) and the
		 * next call sends a second ClientHello, which the server would
		 * rightly count as a second renegotiation.
		 */
		if (next_reneg < nreneg_at && pending == 0 &&
		    c.received == c.sent && t - start >= reneg_at[next_reneg]) {
			next_reneg++;
			c.client_renegs++;
			r = do_handshake(&c, deadline);
			if (r == 1)
				c.client_reneg_refused++;
			else if (r == 0)
				c.client_reneg_ok++;
			else {
				c.end = "client_reneg_failed";
				snprintf(c.end_detail, sizeof(c.end_detail), "%s",
				    gnutls_strerror(r));
				break;
			}
			continue;
		}
		/* Next chunk of a deterministic pseudo-random stream (held
		 * while our own renegotiation waits for the echoes). */
		if (!stop_sending && pending == 0 && t >= next_tick &&
		    !(next_reneg < nreneg_at && t - start >= reneg_at[next_reneg])) {
			if (c.sent + (size_t)per_tick > c.sent_cap) {
				unsigned char *p = realloc(c.sent_log, c.sent_cap * 2);
				if (p == NULL)
					return 2;
				c.sent_log = p;
				c.sent_cap *= 2;
			}
			for (i = 0; i < (size_t)per_tick; i++) {
				seed = seed * 1103515245u + 12345u;
				chunk[i] = (char)(seed >> 16);
			}
			memcpy(c.sent_log + c.sent, chunk, (size_t)per_tick);
			pending = (size_t)per_tick;
			next_tick = t + 10;
		}
		if (pending > 0) {
			/* GnuTLS: after E_AGAIN, send the same data again. */
			ssize_t n = gnutls_record_send(c.session, chunk, pending);
			if (n > 0) {
				gnutls_hash(c.h_sent, chunk, (size_t)n);
				c.sent += (size_t)n;
				memmove(chunk, chunk + n, pending - (size_t)n);
				pending -= (size_t)n;
			} else if (n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED) {
				c.end = "send_error";
				snprintf(c.end_detail, sizeof(c.end_detail), "%s",
				    gnutls_strerror((int)n));
				break;
			}
		}
		if (read_some(&c, deadline) < 0)
			break;
		wait_fd(c.fd, POLLIN | (pending ? POLLOUT : 0), 5);
	}
	if (strcmp(c.end, "done") == 0 && now_ms() >= deadline)
		c.end = "timeout";
	if (sfile != NULL && strcmp(c.end, "done") == 0 &&
	    session_save(c.session, sfile) < 0)
		c.end = "session_save_failed";
	if (strcmp(c.end, "done") == 0)
		gnutls_bye(c.session, GNUTLS_SHUT_WR);

	hexdigest(c.h_sent, hs);
	hexdigest(c.h_recv, hr);
	printf("{\"end\": \"%s\", \"detail\": \"%s\", \"version\": \"%s\", "
	    "\"sent\": %zu, \"received\": %zu, \"sha_sent\": \"%s\", "
	    "\"sha_received\": \"%s\", \"prefix_ok\": %s, \"complete\": %s, "
	    "\"hello_requests\": %u, \"handshakes\": %u, \"refused\": %u, "
	    "\"ignored\": %u, \"client_renegs\": %u, \"client_reneg_ok\": %u, "
	    "\"client_reneg_refused\": %u, \"resumed\": %s, \"certs\": [",
	    c.end, c.end_detail, c.version, c.sent, c.received, hs, hr,
	    c.mismatch ? "false" : "true",
	    (!c.mismatch && c.received == c.sent) ? "true" : "false",
	    c.hello_requests, c.handshakes, c.refused, c.ignored,
	    c.client_renegs, c.client_reneg_ok, c.client_reneg_refused,
	    resumed ? "true" : "false");
	for (i = 0; i < c.nfps; i++)
		printf("%s\"%s\"", i ? ", " : "", c.fps[i]);
	printf("]}\n");
	close(c.fd);
	gnutls_deinit(c.session);
	gnutls_certificate_free_credentials(cred);
	free(c.sent_log);
	return 0;
}
