/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * stats.c -- the counters of every worker and keyd, gathered by one
 * request, and `moatctl stats` in text and JSON (moatctl(8) documents the
 * output; its words and JSON fields are a contract).  metrics.c prints the
 * same gathering for Prometheus.
 *
 * A gathering asks every running worker and keyd over its channel, as one
 * request (req.c) with MASTER_REQ_TIMEOUT_S: a child that does not answer
 * in time, or exits first, is reported as such, never guessed.  Whoever
 * asked may go away meanwhile (stats_gather_forget()); the request still
 * ends, and its answer goes nowhere.
 */
#include "config.h"

#include <sys/types.h>

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "conf.h"
#include "control_proto.h"
#include "ipc.h"
#include "log.h"
#include "master_types.h"
#include "req.h"
#include "stats.h"
#include "util.h"

struct stats_req {
	struct req		req;
	struct master		*m;
	stats_done_fn		*done;		/* NULL once forgotten */
	void			*arg;
	struct stats		s;
};

/* Summing is adding the struct as words (stats_sum()); keep it so. */
_Static_assert(sizeof(struct ipc_worker_stats) % sizeof(uint64_t) == 0,
    "ipc_worker_stats is not made of uint64_t");

/* --- the gathering ------------------------------------------------------ */

/* "error: " and an IPC_ERROR's text, or the errno's when it has none. */
static void
stats_error_text(char *buf, size_t size, const struct ipc_error *ie)
{
	snprintf(buf, size, CONTROL_ERROR_PREFIX "%.240s", ie->msg[0] != '\0' ?
	    ie->msg : strerror(-ie->code));
}

/* keyd's answer to IPC_KEYD_STATS. */
static void
stats_keyd_answer(struct stats *s, struct ipc_msg *msg)
{
	struct ipc_error ie;

	s->keyd_answered = 1;
	if (msg->hdr.type == IPC_KEYD_STATS_REPLY &&
	    ipc_keyd_stats_decode(msg->payload, msg->hdr.len, &s->keyd) == 0) {
		s->keyd_status = 0;
	} else if (msg->hdr.type == IPC_ERROR &&
	    ipc_error_decode(msg->payload, msg->hdr.len, &ie) == 0) {
		s->keyd_status = ie.code;
		stats_error_text(s->keyd_error, sizeof(s->keyd_error), &ie);
	} else {
		s->keyd_status = -EBADMSG;
		snprintf(s->keyd_error, sizeof(s->keyd_error),
		    "malformed answer");
	}
}

/* A child's answer to IPC_WORKER_STATS or IPC_KEYD_STATS. */
static void
stats_answered(struct req *rq, const struct req_peer *p, struct ipc_msg *msg)
{
	struct stats_req *r = container_of(rq, struct stats_req, req);
	const struct master_child *c = p->child;
	struct stats_worker *w;
	struct ipc_error ie;

	if (c == &r->m->keyd) {
		stats_keyd_answer(&r->s, msg);
		return;
	}
	w = &r->s.w[c->index];
	w->answered = 1;
	if (msg->hdr.type == IPC_WORKER_STATS_REPLY &&
	    ipc_worker_stats_decode(msg->payload, msg->hdr.len,
	    &w->stats) == 0) {
		w->status = 0;
		return;
	}
	if (msg->hdr.type == IPC_ERROR &&
	    ipc_error_decode(msg->payload, msg->hdr.len, &ie) == 0) {
		w->status = ie.code;
		stats_error_text(w->error, sizeof(w->error), &ie);
		return;
	}
	log_warnx("worker %u (pid %ld): malformed %s", c->index, (long)p->pid,
	    ipc_type_name(msg->hdr.type));
	w->status = -EBADMSG;
	snprintf(w->error, sizeof(w->error), "malformed answer");
}

/* A child that will not answer: the deadline passed, or it exited. */
static void
stats_lost(struct req *rq, const struct req_peer *p, int error)
{
	struct stats_req *r = container_of(rq, struct stats_req, req);
	struct stats_worker *w;
	char why[64];

	if (error == -ETIMEDOUT)
		snprintf(why, sizeof(why), "no answer within %.0f s",
		    MASTER_REQ_TIMEOUT_S);
	else
		snprintf(why, sizeof(why), "exited before answering");
	if (p->child == &r->m->keyd) {
		r->s.keyd_answered = 1;
		r->s.keyd_status = error;
		snprintf(r->s.keyd_error, sizeof(r->s.keyd_error), "%s", why);
		return;
	}
	w = &r->s.w[p->child->index];
	w->answered = 1;
	w->status = error;
	snprintf(w->error, sizeof(w->error), "%s", why);
}

static void
stats_done(struct req *rq)
{
	struct stats_req *r = container_of(rq, struct stats_req, req);

	if (r->done != NULL)
		r->done(&r->s, r->arg);
	free(r);
}

static const struct req_ops stats_req_ops = {
	stats_answered,
	stats_lost,
	stats_done,
};

/*
 * Ask every running worker and keyd; done() follows stats_gather_start(),
 * maybe within it (nobody to ask).  NULL: no memory, and no done() call.
 */
struct stats_req *
stats_gather_new(struct master *m, stats_done_fn *done, void *arg)
{
	struct stats_req *r;
	struct stats_worker *w;
	struct master_child *c;
	unsigned i;
	int e;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	req_init(&m->reqs, &r->req, &stats_req_ops);
	r->m = m;
	r->done = done;
	r->arg = arg;
	r->s.cfg = m->cfg;
	r->s.nworkers = m->cfg->workers;
	for (i = 0; i < r->s.nworkers; i++) {
		c = &m->workers[i];
		w = &r->s.w[i];
		snprintf(w->error, sizeof(w->error), "not running");
		w->status = -ESRCH;
		if (c->pid <= 0 || c->fd < 0)
			continue;
		w->pid = c->pid;
		if ((e = req_ask(&r->req, c, IPC_WORKER_STATS, NULL, 0, NULL,
		    0)) < 0) {
			w->answered = 1;
			snprintf(w->error, sizeof(w->error),
			    "cannot ask it: %s", strerror(-e));
		}
	}
	r->s.keyd_status = -ESRCH;
	snprintf(r->s.keyd_error, sizeof(r->s.keyd_error), "not running");
	if (m->keyd.ready && m->keyd.fd >= 0 &&
	    (e = req_ask(&r->req, &m->keyd, IPC_KEYD_STATS, NULL, 0, NULL,
	    0)) < 0) {
		r->s.keyd_answered = 1;
		snprintf(r->s.keyd_error, sizeof(r->s.keyd_error),
		    "cannot ask it: %s", strerror(-e));
	}
	return r;
}

void
stats_gather_start(struct stats_req *r)
{
	req_start(&r->req, MASTER_REQ_TIMEOUT_S);
}

/* Whoever asked went away: the request ends all the same, unheard. */
void
stats_gather_forget(struct stats_req *r)
{
	r->done = NULL;
	r->arg = NULL;
}

/*
 * The worker counters summed over the workers that answered (their
 * number is returned); the one maximum is the largest, not a sum.
 */
unsigned
stats_sum(const struct stats *s, struct ipc_worker_stats *tot)
{
	const struct stats_worker *w;
	uint64_t a, b, max = 0;
	unsigned i, answered = 0;
	size_t off;

	memset(tot, 0, sizeof(*tot));
	for (i = 0; i < s->nworkers; i++) {
		w = &s->w[i];
		if (!w->answered || w->status < 0)
			continue;
		answered++;
		for (off = 0; off < sizeof(*tot); off += sizeof(a)) {
			memcpy(&a, (char *)tot + off, sizeof(a));
			memcpy(&b, (const char *)&w->stats + off, sizeof(b));
			a += b;
			memcpy((char *)tot + off, &a, sizeof(a));
		}
		if (w->stats.keyd_latency_us_max > max)
			max = w->stats.keyd_latency_us_max;
	}
	tot->keyd_latency_us_max = max;
	return answered;
}

/* --- moatctl stats: text and JSON ----------------------------------------- */

/* The worker counters, in ipc_worker_stats order; names are the contract. */
#define WSTAT(f)	{ #f, offsetof(struct ipc_worker_stats, f) }
static const struct {
	const char	*name;
	size_t		off;
} stats_wstats[] = {
	WSTAT(conns_open),
	WSTAT(conns_total),
	WSTAT(conns_refused_limit),
	WSTAT(handshakes_ok_tls12),
	WSTAT(handshakes_ok_tls13),
	WSTAT(handshakes_failed),
	WSTAT(handshakes_resumed),
	WSTAT(bytes_client_to_backend),
	WSTAT(bytes_backend_to_client),
	WSTAT(backend_errors),
	WSTAT(keyd_requests),
	WSTAT(keyd_failures),
	WSTAT(renegotiations_requested),
	WSTAT(renegotiations_completed),
	WSTAT(renegotiations_refused),
	WSTAT(renegotiations_ignored),
	WSTAT(key_updates),
	WSTAT(client_renegotiations_refused),
	WSTAT(client_renegotiations_allowed),
	WSTAT(renegotiations_in_flight),
	WSTAT(renegotiations_waiting),
	WSTAT(handshakes_waiting_keyd),
};
#define NWSTATS	nitems(stats_wstats)

/* The per-frontend ones, in ipc_frontend_stats order; the same names. */
#define FSTAT(f)	{ #f, offsetof(struct ipc_frontend_stats, f) }
static const struct {
	const char	*name;
	size_t		off;
} stats_fstats[] = {
	FSTAT(conns_total),
	FSTAT(handshakes_ok_tls12),
	FSTAT(handshakes_ok_tls13),
	FSTAT(handshakes_failed),
	FSTAT(handshakes_resumed),
	FSTAT(bytes_client_to_backend),
	FSTAT(bytes_backend_to_client),
};

/* The uint64_t counter at offset off of a stats struct (the tables' way). */
uint64_t
stats_field(const void *s, size_t off)
{
	uint64_t v;

	memcpy(&v, (const char *)s + off, sizeof(v));
	return v;
}

static double
stats_avg_ms(uint64_t total_us, uint64_t n)
{
	return n > 0 ? (double)total_us / (double)n / 1000.0 : 0.0;
}

/* One "name value" line of text, or one "name":value member of JSON. */
static void
stats_kv(struct answer *a, int json, int *first, const char *name,
    uint64_t v)
{
	if (json)
		answer_printf(a, "%s\"%s\":%llu", *first ? "" : ",", name,
		    (unsigned long long)v);
	else
		answer_printf(a, "%-32s %llu\n", name, (unsigned long long)v);
	*first = 0;
}

static void
stats_kv_ms(struct answer *a, int json, int *first, const char *name,
    double v)
{
	if (json)
		answer_printf(a, "%s\"%s\":%.3f", *first ? "" : ",", name, v);
	else
		answer_printf(a, "%-32s %.3f\n", name, v);
	*first = 0;
}

/* A histogram's buckets, each counted alone (JSON only: text has avg/max). */
static void
stats_buckets(struct answer *a, const char *name, const uint64_t *b)
{
	unsigned i;

	answer_printf(a, ",\"%s\":[", name);
	for (i = 0; i < IPC_LAT_NBUCKETS; i++)
		answer_printf(a, "%s%llu", i ? "," : "",
		    (unsigned long long)b[i]);
	answer_printf(a, "]");
}

static void
stats_keyd_part(struct answer *a, const struct stats *s, int json,
    int *first)
{
	const struct ipc_keyd_stats *k = &s->keyd;
	uint64_t signs = 0;
	unsigned i;

	for (i = 0; i < IPC_STAT_NALGOS; i++)
		signs += k->signs[i];
	stats_kv(a, json, first, "keyd_served_requests", k->requests);
	stats_kv(a, json, first, "keyd_signs", signs);
	stats_kv(a, json, first, "keyd_signs_rsa_pkcs1",
	    k->signs[IPC_STAT_RSA_PKCS1]);
	stats_kv(a, json, first, "keyd_signs_rsa_pss",
	    k->signs[IPC_STAT_RSA_PSS]);
	stats_kv(a, json, first, "keyd_signs_ecdsa", k->signs[IPC_STAT_ECDSA]);
	stats_kv(a, json, first, "keyd_signs_eddsa", k->signs[IPC_STAT_EDDSA]);
	stats_kv(a, json, first, "keyd_decrypts", k->decrypts);
	stats_kv(a, json, first, "keyd_refused", k->refused);
	stats_kv(a, json, first, "keyd_errors", k->errors);
	stats_kv(a, json, first, "keyd_rate_limited", k->rate_limited);
	stats_kv(a, json, first, "keyd_cancelled", k->cancelled);
	stats_kv_ms(a, json, first, "keyd_served_latency_avg_ms",
	    stats_avg_ms(k->latency_us_total, signs + k->decrypts));
	stats_kv_ms(a, json, first, "keyd_served_latency_max_ms",
	    (double)k->latency_us_max / 1000.0);
	if (json) {
		/* the sum behind the histogram: every request done */
		stats_kv(a, json, first, "keyd_served_latency_us_total",
		    k->latency_us_total);
		stats_buckets(a, "keyd_served_latency_buckets",
		    k->latency_buckets);
	}
	stats_kv(a, json, first, "keyd_channels", k->channels);
	stats_kv(a, json, first, "keyd_queue_depth", k->queue_depth);
	stats_kv(a, json, first, "keyd_threads", k->threads);
	stats_kv(a, json, first, "keyd_keys", k->keys);
}

/* Each frontend's share of the totals: "per_frontend", or a line each. */
static void
stats_frontends(struct answer *a, const struct stats *s,
    const struct ipc_worker_stats *tot, int json)
{
	const struct ipc_frontend_stats *f;
	unsigned i;
	size_t j;

	if (json)
		answer_printf(a, ",\"per_frontend\":[");
	for (i = 0; i < s->cfg->nfrontends && i < IPC_MAX_FRONTENDS; i++) {
		f = &tot->fe[i];
		if (json) {
			answer_printf(a, "%s{\"name\":", i ? "," : "");
			answer_json_str(a, s->cfg->frontends[i].name);
		} else {
			answer_printf(a, "frontend %s:",
			    s->cfg->frontends[i].name);
		}
		for (j = 0; j < nitems(stats_fstats); j++)
			answer_printf(a, json ? ",\"%s\":%llu" : " %s %llu",
			    stats_fstats[j].name, (unsigned long long)
			    stats_field(f, stats_fstats[j].off));
		answer_printf(a, json ? "}" : "\n");
	}
	if (json)
		answer_printf(a, "]");
}

static void
stats_per_worker(struct answer *a, const struct stats *s, int json)
{
	const struct stats_worker *w;
	uint64_t v;
	unsigned i;
	size_t j;

	if (json)
		answer_printf(a, ",\"per_worker\":[");
	for (i = 0; i < s->nworkers; i++) {
		w = &s->w[i];
		if (json)
			answer_printf(a, "%s{\"index\":%u,\"pid\":%ld,"
			    "\"answered\":%s", i ? "," : "", i, (long)w->pid,
			    w->answered && w->status == 0 ? "true" : "false");
		else
			answer_printf(a, "worker %u (pid %ld):", i,
			    (long)w->pid);
		if (!w->answered || w->status < 0) {
			if (json) {
				answer_printf(a, ",\"error\":");
				answer_json_str(a, w->error);
				answer_printf(a, "}");
			} else {
				answer_printf(a, " %s\n", w->error);
			}
			continue;
		}
		for (j = 0; j < NWSTATS; j++) {
			v = stats_field(&w->stats, stats_wstats[j].off);
			if (json)
				answer_printf(a, ",\"%s\":%llu",
				    stats_wstats[j].name,
				    (unsigned long long)v);
			else if (v != 0 || j < 6)
				answer_printf(a, " %s %llu",
				    stats_wstats[j].name,
				    (unsigned long long)v);
		}
		if (json)
			answer_printf(a, ",\"keyd_latency_avg_ms\":%.3f,"
			    "\"keyd_latency_max_ms\":%.3f}",
			    stats_avg_ms(w->stats.keyd_latency_us_total,
			    w->stats.keyd_requests),
			    (double)w->stats.keyd_latency_us_max / 1000.0);
		else
			answer_printf(a, "\n");
	}
	if (json)
		answer_printf(a, "]");
}

void
stats_answer(struct answer *a, const struct stats *s, int json)
{
	struct ipc_worker_stats tot;
	unsigned answered;
	size_t j;
	int first = 1, keyd_ok = s->keyd_answered && s->keyd_status == 0;

	answered = stats_sum(s, &tot);
	if (json)
		answer_printf(a, "{");
	stats_kv(a, json, &first, "workers", s->nworkers);
	stats_kv(a, json, &first, "workers_answered", answered);
	for (j = 0; j < NWSTATS; j++) {
		stats_kv(a, json, &first, stats_wstats[j].name,
		    stats_field(&tot, stats_wstats[j].off));
		if (strcmp(stats_wstats[j].name, "keyd_failures") != 0)
			continue;
		stats_kv_ms(a, json, &first, "keyd_latency_avg_ms",
		    stats_avg_ms(tot.keyd_latency_us_total,
		    tot.keyd_requests));
		stats_kv_ms(a, json, &first, "keyd_latency_max_ms",
		    (double)tot.keyd_latency_us_max / 1000.0);
		if (json) {
			stats_kv(a, json, &first, "keyd_latency_us_total",
			    tot.keyd_latency_us_total);
			stats_buckets(a, "keyd_latency_buckets",
			    tot.keyd_latency_buckets);
		}
	}

	/* keyd's own view of the same traffic */
	if (json)
		answer_printf(a, ",\"keyd_answered\":%s",
		    keyd_ok ? "true" : "false");
	else
		answer_printf(a, "%-32s %s\n", "keyd_answered",
		    keyd_ok ? "yes" : "no");
	if (keyd_ok) {
		stats_keyd_part(a, s, json, &first);
	} else if (json) {
		answer_printf(a, ",\"keyd_error\":");
		answer_json_str(a, s->keyd_error);
	} else {
		answer_printf(a, "%-32s %s\n", "keyd_error", s->keyd_error);
	}
	stats_frontends(a, s, &tot, json);
	stats_per_worker(a, s, json);
	if (json)
		answer_printf(a, "}\n");
}
