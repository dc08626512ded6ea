/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * metrics.c -- stats.c's gathering in the Prometheus text exposition
 * format (version 0.0.4), for `moatctl stats --prometheus` and for the
 * HTTP listener of metrics-listen (moat.conf(5)), which serves GET
 * /metrics and nothing else.
 *
 * The listener lives in the master's loop, so it must never block it nor
 * let clients make it work without bound: every socket is non-blocking;
 * each event reads, writes or accepts a bounded amount; at most
 * METRICS_CLIENTS_MAX clients are served at once (the listener stops
 * accepting until one leaves: the others wait in the kernel's backlog); a
 * request head larger than METRICS_REQUEST_MAX is refused; a client has
 * METRICS_READ_S to send its request, and METRICS_ANSWER_S to take the
 * answer (which waits for the workers and keyd at most
 * MASTER_REQ_TIMEOUT_S: the same gathering as `moatctl stats`).  One
 * request per connection: the answer says Connection: close, then the
 * write side is shut and what the client still sends is read and dropped
 * for METRICS_LINGER_S, so that closing does not reset the answer away.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "answer.h"
#include "conf.h"
#include "control_proto.h"
#include "ipc.h"
#include "log.h"
#include "master_types.h"
#include "metrics.h"
#include "stats.h"
#include "util.h"

#define METRICS_CLIENTS_MAX	8u
#define METRICS_BACKLOG		16
#define METRICS_REQUEST_MAX	4096u	/* request line and headers */
#define METRICS_READ_S		5.0
#define METRICS_ANSWER_S	(MASTER_REQ_TIMEOUT_S + 5.0)
#define METRICS_LINGER_S	1.0
#define METRICS_HEAD_MAX	256u	/* the answer's status line, headers */
#define METRICS_CTYPE		"text/plain; version=0.0.4"

/* --- the Prometheus text ------------------------------------------------ */

/* A counter or gauge of the worker totals, without labels. */
#define MW(name, type, help, f) \
	{ name, type, help, offsetof(struct ipc_worker_stats, f) }
static const struct metrics_worker_def {
	const char	*name;
	const char	*type;
	const char	*help;
	size_t		off;
} metrics_worker_defs[] = {
	MW("moat_connections_open", "gauge",
	    "Client connections open now.", conns_open),
	MW("moat_connections_refused_total", "counter",
	    "Connections closed at once: max-connections reached.",
	    conns_refused_limit),
	MW("moat_backend_errors_total", "counter",
	    "Backend connections that failed or broke.", backend_errors),
	MW("moat_worker_keyd_requests_total", "counter",
	    "Key operations the workers asked of keyd.", keyd_requests),
	MW("moat_worker_keyd_failures_total", "counter",
	    "Key operations refused, timed out or lost with the channel.",
	    keyd_failures),
	MW("moat_renegotiations_requested_total", "counter",
	    "TLS 1.2 renegotiations moat asked for (HelloRequest sent).",
	    renegotiations_requested),
	MW("moat_renegotiations_completed_total", "counter",
	    "Renegotiations that completed.", renegotiations_completed),
	MW("moat_renegotiations_refused_total", "counter",
	    "Renegotiations the client refused (no_renegotiation).",
	    renegotiations_refused),
	MW("moat_renegotiations_ignored_total", "counter",
	    "Renegotiations the client did not answer in time.",
	    renegotiations_ignored),
	MW("moat_key_updates_total", "counter",
	    "TLS 1.3 KeyUpdates moat sent for a rekey.", key_updates),
	MW("moat_client_renegotiations_refused_total", "counter",
	    "Renegotiations clients started that moat refused.",
	    client_renegotiations_refused),
	MW("moat_client_renegotiations_allowed_total", "counter",
	    "Renegotiations clients started that moat allowed.",
	    client_renegotiations_allowed),
	MW("moat_renegotiations_in_flight", "gauge",
	    "TLS 1.2 renegotiations under way (holding a rekey slot).",
	    renegotiations_in_flight),
	MW("moat_renegotiations_waiting", "gauge",
	    "Renegotiations waiting for a rekey slot.", renegotiations_waiting),
	MW("moat_tls_handshakes_waiting_keyd", "gauge",
	    "Handshakes parked on a key operation now.",
	    handshakes_waiting_keyd),
};

/*
 * The counters kept per frontend.  An entry whose help is NULL continues
 * the family above it with one more label (the TLS version).
 */
#define MF(name, help, label, f) \
	{ name, help, label, offsetof(struct ipc_frontend_stats, f) }
static const struct metrics_fe_def {
	const char	*name;
	const char	*help;
	const char	*label;		/* ",name=\"value\"" or "" */
	size_t		off;
} metrics_fe_defs[] = {
	MF("moat_connections_total", "Client connections accepted.", "",
	    conns_total),
	MF("moat_tls_handshakes_total", "First TLS handshakes completed.",
	    ",tls_version=\"1.2\"", handshakes_ok_tls12),
	MF("moat_tls_handshakes_total", NULL, ",tls_version=\"1.3\"",
	    handshakes_ok_tls13),
	MF("moat_tls_handshakes_failed_total", "First TLS handshakes that "
	    "failed, timed out or were aborted.", "", handshakes_failed),
	MF("moat_tls_handshakes_resumed_total", "Completed handshakes that "
	    "resumed a session (no key operation).", "", handshakes_resumed),
	MF("moat_client_to_backend_bytes_total", "Bytes from the clients "
	    "written to the backends.", "", bytes_client_to_backend),
	MF("moat_backend_to_client_bytes_total", "Bytes from the backends "
	    "written to the clients.", "", bytes_backend_to_client),
};

static const char *const metrics_sign_algos[IPC_STAT_NALGOS] = {
	[IPC_STAT_RSA_PKCS1] = "rsa_pkcs1",
	[IPC_STAT_RSA_PSS] = "rsa_pss",
	[IPC_STAT_ECDSA] = "ecdsa",
	[IPC_STAT_EDDSA] = "eddsa",
};

static void
metrics_family(struct answer *a, const char *name, const char *type,
    const char *help)
{
	answer_printf(a, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	    type);
}

static void
metrics_one(struct answer *a, const char *name, const char *type,
    const char *help, uint64_t v)
{
	metrics_family(a, name, type, help);
	answer_printf(a, "%s %llu\n", name, (unsigned long long)v);
}

/* A label value: backslash, double quote and newline escaped. */
static void
metrics_label_value(struct answer *a, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			answer_printf(a, "\\%c", *s);
		else if (*s == '\n')
			answer_printf(a, "\\n");
		else
			answer_printf(a, "%c", *s);
	}
}

/*
 * A histogram from per-bucket counts (ipc_codec.h): Prometheus' buckets
 * are cumulative, so each "le" adds all below it; +Inf is the count.
 */
static void
metrics_histogram(struct answer *a, const char *name, const char *help,
    const uint64_t *buckets, uint64_t sum_us)
{
	uint64_t n = 0;
	unsigned i;

	metrics_family(a, name, "histogram", help);
	for (i = 0; i < IPC_LAT_NBUCKETS; i++) {
		n += buckets[i];
		if (i < IPC_LAT_NBOUNDS)
			answer_printf(a, "%s_bucket{le=\"%g\"} %llu\n", name,
			    (double)ipc_lat_bounds_us[i] / 1e6,
			    (unsigned long long)n);
		else
			answer_printf(a, "%s_bucket{le=\"+Inf\"} %llu\n", name,
			    (unsigned long long)n);
	}
	answer_printf(a, "%s_sum %.6f\n%s_count %llu\n", name,
	    (double)sum_us / 1e6, name, (unsigned long long)n);
}

static void
metrics_frontends(struct answer *a, const struct stats *s,
    const struct ipc_worker_stats *tot)
{
	const struct metrics_fe_def *d;
	unsigned i;
	size_t j;

	for (j = 0; j < nitems(metrics_fe_defs); j++) {
		d = &metrics_fe_defs[j];
		if (d->help != NULL)
			metrics_family(a, d->name, "counter", d->help);
		for (i = 0; i < s->cfg->nfrontends && i < IPC_MAX_FRONTENDS;
		    i++) {
			answer_printf(a, "%s{frontend=\"", d->name);
			metrics_label_value(a, s->cfg->frontends[i].name);
			answer_printf(a, "\"%s} %llu\n", d->label,
			    (unsigned long long)stats_field(&tot->fe[i],
			    d->off));
		}
	}
}

/* keyd's own counters, present only when keyd answered (moat_keyd_up). */
static void
metrics_keyd(struct answer *a, const struct ipc_keyd_stats *k)
{
	unsigned i;

	metrics_one(a, "moat_keyd_requests_total", "counter",
	    "Requests keyd received from the workers.", k->requests);
	metrics_family(a, "moat_keyd_signs_total", "counter",
	    "Signatures keyd made, by algorithm.");
	for (i = 0; i < IPC_STAT_NALGOS; i++)
		answer_printf(a, "moat_keyd_signs_total{algorithm=\"%s\"} "
		    "%llu\n", metrics_sign_algos[i],
		    (unsigned long long)k->signs[i]);
	metrics_one(a, "moat_keyd_decrypts_total", "counter",
	    "RSA decryptions keyd made.", k->decrypts);
	metrics_one(a, "moat_keyd_refused_total", "counter",
	    "Requests keyd's signing policy refused.", k->refused);
	metrics_one(a, "moat_keyd_errors_total", "counter",
	    "Requests malformed, or whose key operation failed.", k->errors);
	metrics_one(a, "moat_keyd_rate_limited_total", "counter",
	    "Requests refused by keyd's rate limits.", k->rate_limited);
	metrics_one(a, "moat_keyd_cancelled_total", "counter",
	    "Requests the workers gave up on, dropped unserved.",
	    k->cancelled);
	metrics_histogram(a, "moat_keyd_operation_duration_seconds",
	    "Time from a request's arrival in keyd to its answer.",
	    k->latency_buckets, k->latency_us_total);
	metrics_one(a, "moat_keyd_queue_depth", "gauge",
	    "Requests received by keyd, not yet answered.", k->queue_depth);
	metrics_one(a, "moat_keyd_channels", "gauge",
	    "Open worker channels of keyd.", k->channels);
	metrics_one(a, "moat_keyd_threads", "gauge",
	    "keyd's signer threads.", k->threads);
	metrics_one(a, "moat_keyd_keys", "gauge",
	    "Private keys keyd holds.", k->keys);
}

void
metrics_answer(struct answer *a, const struct stats *s)
{
	struct ipc_worker_stats tot;
	const struct metrics_worker_def *d;
	unsigned answered;
	size_t j;
	int keyd_ok = s->keyd_answered && s->keyd_status == 0;

	answered = stats_sum(s, &tot);
	metrics_one(a, "moat_workers", "gauge", "Workers configured.",
	    s->nworkers);
	metrics_one(a, "moat_workers_answered", "gauge", "Workers whose "
	    "counters are in this answer (running, and answered in time).",
	    answered);
	metrics_frontends(a, s, &tot);
	for (j = 0; j < nitems(metrics_worker_defs); j++) {
		d = &metrics_worker_defs[j];
		metrics_one(a, d->name, d->type, d->help,
		    stats_field(&tot, d->off));
	}
	metrics_histogram(a, "moat_worker_keyd_duration_seconds",
	    "Key operations' round trips from the workers to keyd, answered.",
	    tot.keyd_latency_buckets, tot.keyd_latency_us_total);
	metrics_one(a, "moat_keyd_up", "gauge",
	    "1 when keyd answered with its counters.", keyd_ok ? 1 : 0);
	if (keyd_ok)
		metrics_keyd(a, &s->keyd);
}

/* --- the HTTP listener -------------------------------------------------- */

struct metrics_client {
	struct metrics		*mx;
	struct metrics_client	*prev, *next;
	int			fd;
	ev_io			io;
	ev_timer		timer;
	struct stats_req	*gather;	/* waiting for it, or NULL */
	char			in[METRICS_REQUEST_MAX];
	size_t			inlen;
	struct answer		out;
	size_t			sent;
};

struct metrics {
	struct master		*m;
	int			fd;
	ev_io			io;
	int			paused;		/* at METRICS_CLIENTS_MAX */
	struct metrics_client	*clients;
	unsigned		nclients;
};

static void
metrics_client_free(struct metrics_client *c)
{
	struct metrics *mx = c->mx;
	struct ev_loop *loop = mx->m->loop;

	if (c->gather != NULL)
		stats_gather_forget(c->gather);
	ev_io_stop(loop, &c->io);
	ev_timer_stop(loop, &c->timer);
	close(c->fd);
	answer_free(&c->out);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		mx->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	mx->nclients--;
	free(c);
	if (mx->paused && mx->fd >= 0) {
		mx->paused = 0;
		ev_io_start(loop, &mx->io);
	}
}

static void
metrics_client_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	metrics_client_free(container_of(t, struct metrics_client, timer));
}

/* The answer is out: shut the write side, drop input until EOF. */
static void
metrics_client_linger_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct metrics_client *c = container_of(io, struct metrics_client, io);
	char buf[512];
	ssize_t n;

	n = read(c->fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0)
		return;
	metrics_client_free(c);
}

static void
metrics_client_write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct metrics_client *c = container_of(io, struct metrics_client, io);
	ssize_t n;

	n = send(c->fd, c->out.buf + c->sent, c->out.len - c->sent,
	    MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		metrics_client_free(c);
		return;
	}
	c->sent += (size_t)n;
	if (c->sent < c->out.len)
		return;
	(void)shutdown(c->fd, SHUT_WR);
	ev_io_stop(loop, &c->io);
	ev_io_set(&c->io, c->fd, EV_READ);
	ev_set_cb(&c->io, metrics_client_linger_cb);
	ev_io_start(loop, &c->io);
	ev_timer_stop(loop, &c->timer);
	ev_timer_set(&c->timer, METRICS_LINGER_S, 0.);
	ev_timer_start(loop, &c->timer);
}

/* The status line, the headers and the body; then the writes begin. */
static void
metrics_client_send(struct metrics_client *c, const char *status,
    const char *headers, const char *ctype, const char *body, size_t len)
{
	struct ev_loop *loop = c->mx->m->loop;

	answer_init(&c->out, METRICS_HEAD_MAX + len + 1);
	answer_printf(&c->out, "HTTP/1.1 %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n%s\r\n", status,
	    ctype, len, headers);
	if (c->out.buf != NULL && len > 0)
		answer_printf(&c->out, "%.*s", (int)len, body);
	if (c->out.buf == NULL || c->out.len == 0) {
		/* no memory even for the head: nothing to say */
		metrics_client_free(c);
		return;
	}
	ev_io_stop(loop, &c->io);
	ev_io_set(&c->io, c->fd, EV_WRITE);
	ev_set_cb(&c->io, metrics_client_write_cb);
	ev_io_start(loop, &c->io);
}

/* An error: its status line is its whole body. */
static void
metrics_client_error(struct metrics_client *c, const char *status,
    const char *headers)
{
	char body[64];
	int n;

	n = snprintf(body, sizeof(body), "%s\n", status);
	if (n < 0 || (size_t)n >= sizeof(body))
		n = 0;
	metrics_client_send(c, status, headers, "text/plain", body, (size_t)n);
}

static void
metrics_client_stats_done(const struct stats *s, void *arg)
{
	struct metrics_client *c = arg;
	struct answer body;

	c->gather = NULL;
	answer_init(&body, CONTROL_ANSWER_MAX);
	metrics_answer(&body, s);
	if (body.buf == NULL)
		metrics_client_error(c, "503 Service Unavailable", "");
	else
		metrics_client_send(c, "200 OK", "", METRICS_CTYPE, body.buf,
		    body.len);
	answer_free(&body);
}

/*
 * The request head is in (NUL-terminated): "GET /metrics HTTP/1.x" is
 * answered with the gathering, anything else with an error.  The headers
 * are not read: nothing in them changes the answer.
 */
static void
metrics_client_request(struct metrics_client *c)
{
	struct ev_loop *loop = c->mx->m->loop;
	char *line = c->in, *save = NULL, *method, *target, *version, *eol;

	if ((eol = strpbrk(line, "\r\n")) != NULL)
		*eol = '\0';
	method = strtok_r(line, " ", &save);
	target = strtok_r(NULL, " ", &save);
	version = strtok_r(NULL, " ", &save);
	if (method == NULL || target == NULL || version == NULL ||
	    strtok_r(NULL, " ", &save) != NULL ||
	    strncmp(version, "HTTP/", 5) != 0) {
		metrics_client_error(c, "400 Bad Request", "");
		return;
	}
	if (strcmp(version, "HTTP/1.0") != 0 &&
	    strcmp(version, "HTTP/1.1") != 0) {
		metrics_client_error(c, "505 HTTP Version Not Supported", "");
		return;
	}
	if (strcmp(target, "/metrics") != 0 &&
	    strncmp(target, "/metrics?", 9) != 0) {
		metrics_client_error(c, "404 Not Found", "");
		return;
	}
	if (strcmp(method, "GET") != 0) {
		metrics_client_error(c, "405 Method Not Allowed",
		    "Allow: GET\r\n");
		return;
	}
	/* the gathering answers within MASTER_REQ_TIMEOUT_S, maybe now */
	ev_io_stop(loop, &c->io);
	ev_timer_stop(loop, &c->timer);
	ev_timer_set(&c->timer, METRICS_ANSWER_S, 0.);
	ev_timer_start(loop, &c->timer);
	if ((c->gather = stats_gather_new(c->mx->m, metrics_client_stats_done,
	    c)) == NULL) {
		metrics_client_error(c, "503 Service Unavailable", "");
		return;
	}
	stats_gather_start(c->gather);
}

static void
metrics_client_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct metrics_client *c = container_of(io, struct metrics_client, io);
	ssize_t n;

	/* never full here: a full buffer was refused when it filled */
	n = read(c->fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		metrics_client_free(c);
		return;
	}
	c->inlen += (size_t)n;
	c->in[c->inlen] = '\0';
	/* a NUL byte ends the strings below early: refuse it */
	if (memchr(c->in + c->inlen - (size_t)n, '\0', (size_t)n) != NULL) {
		metrics_client_error(c, "400 Bad Request", "");
		return;
	}
	if (strstr(c->in, "\r\n\r\n") != NULL || strstr(c->in, "\n\n") != NULL)
		metrics_client_request(c);
	else if (c->inlen == sizeof(c->in) - 1)
		metrics_client_error(c, "431 Request Header Fields Too Large",
		    "");
}

static void
metrics_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct metrics *mx = container_of(io, struct metrics, io);
	struct metrics_client *c;
	int fd;

	/* at most the free slots, so one event's work is bounded */
	while (mx->nclients < METRICS_CLIENTS_MAX) {
		fd = accept4(mx->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("%s: accept", __func__);
			return;
		}
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			log_warnx("%s: out of memory", __func__);
			close(fd);
			return;
		}
		c->mx = mx;
		c->fd = fd;
		ev_io_init(&c->io, metrics_client_read_cb, fd, EV_READ);
		ev_timer_init(&c->timer, metrics_client_timeout_cb,
		    METRICS_READ_S, 0.);
		ev_io_start(loop, &c->io);
		ev_timer_start(loop, &c->timer);
		c->next = mx->clients;
		if (mx->clients != NULL)
			mx->clients->prev = c;
		mx->clients = c;
		mx->nclients++;
	}
	/* full: the next ones wait in the backlog until a client leaves */
	mx->paused = 1;
	ev_io_stop(loop, &mx->io);
}

/* metrics-listen: bind and listen, or nothing when it is not set. */
int
metrics_open(struct master *m, char *err, size_t errsize)
{
	const struct config_addr *a = &m->cfg->metrics_listen;
	struct metrics *mx;
	int one = 1, r;

	if (a->len == 0)
		return 0;
	if ((mx = calloc(1, sizeof(*mx))) == NULL) {
		snprintf(err, errsize, "metrics-listen: out of memory");
		return -ENOMEM;
	}
	mx->m = m;
	mx->fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (mx->fd < 0 ||
	    setsockopt(mx->fd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) < 0 ||
	    (a->ss.ss_family == AF_INET6 && setsockopt(mx->fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(mx->fd, (const struct sockaddr *)&a->ss, a->len) < 0 ||
	    listen(mx->fd, METRICS_BACKLOG) < 0) {
		r = -errno;
		snprintf(err, errsize, "metrics-listen %s: %s", a->text,
		    strerror(-r));
		if (mx->fd >= 0)
			close(mx->fd);
		free(mx);
		return r;
	}
	ev_io_init(&mx->io, metrics_accept_cb, mx->fd, EV_READ);
	ev_io_start(m->loop, &mx->io);
	m->metrics = mx;
	log_info("metrics on http://%s/metrics", a->text);
	return 0;
}

/* Shutdown: no more scrapes; the clients' gatherings end unheard. */
void
metrics_close(struct master *m)
{
	struct metrics *mx = m->metrics;
	struct metrics_client *c, *next;

	if (mx == NULL)
		return;
	ev_io_stop(m->loop, &mx->io);
	close(mx->fd);
	mx->fd = -1;	/* and the listener stays stopped as clients go */
	for (c = mx->clients; c != NULL; c = next) {
		next = c->next;
		metrics_client_free(c);
	}
	free(mx);
	m->metrics = NULL;
}
