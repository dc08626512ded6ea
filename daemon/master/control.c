/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control.c -- the control socket and the commands moatctl sends.
 *
 * An AF_UNIX stream socket, owner root and mode 0600: whoever can connect
 * can stop renegotiations and read counters, so only root may.  A client
 * sends one line, "status [--json]", "stats [--json]", "rekey [FRONTEND]" or
 * "reload", and reads the answer until EOF.  A line of the answer that
 * starts with "error: " is a failure (moatctl prints it, and the indented
 * lines under it, to stderr and exits 1).  stats and rekey ask every worker
 * (and keyd) over their channels, match the answers by request id and give
 * them MASTER_REQ_TIMEOUT_S; a child that does not answer in time, or dies
 * first, is reported as such, never guessed.
 *
 * reload (and SIGHUP, without a client) rotates every frontend's
 * certificate and key from the same paths, one reload at a time, all of it
 * asynchronous in the loop:
 *   1. per frontend, check the files as start-up does (the key private to
 *      its owner, the chain parses), then send keyd IPC_KEY_LOAD into slot
 *      IPC_KEY_SLOT(index, key_generation + 1): the slot of the generation
 *      before the current one, which no worker uses any more.  keyd matches
 *      the key to the certificate and replaces the slot only if it loads.
 *      keyd gets MASTER_RELOAD_KEYD_S to answer.
 *   2. for each frontend keyd accepted, key_generation is raised (workers
 *      forked from now on start on it) and every live worker gets
 *      IPC_WORKER_CERT with the very chain keyd checked (our copy of the
 *      open file); each answers the connections it asked to renegotiate,
 *      within MASTER_REQ_TIMEOUT_S.
 *   3. one line per frontend is logged, and sent to the client if any.
 * A frontend that fails in step 1 is left exactly as it was.  Files that
 * did not change are rotated anyway: a reload always means "take what is
 * on disk now".  A worker that did not take generation g still uses the key
 * in the slot generation g + 1 would fill, so that frontend is not rotated
 * again while such a worker lives.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <systemd/sd-daemon.h>

#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "master.h"

#define CONTROL_LINE_MAX	256
#define CONTROL_OUT_MAX		(1024 * 1024)
#define CONTROL_IDLE_S		10.0

struct control_client {
	struct master		*m;
	struct control_client	*next;
	int			fd;
	ev_io			io;
	ev_timer		timer;
	char			in[CONTROL_LINE_MAX];
	size_t			inlen;
	char			*out;
	size_t			outlen, outoff, outcap;
	int			writing;
	struct master_req	*req;
};

static void control_client_flush(struct control_client *c);

/* --- answer buffer ------------------------------------------------------ */

static void control_printf(struct control_client *, const char *, ...)
	__attribute__((format(printf, 2, 3)));

static void
control_printf(struct control_client *c, const char *fmt, ...)
{
	va_list ap;
	size_t need;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	need = c->outlen + (size_t)n + 1;
	if (need > CONTROL_OUT_MAX)
		return;
	if (need > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 4096;

		while (cap < need)
			cap *= 2;
		if ((p = realloc(c->out, cap)) == NULL)
			return;
		c->out = p;
		c->outcap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(c->out + c->outlen, c->outcap - c->outlen, fmt, ap);
	va_end(ap);
	c->outlen += (size_t)n;
}

/* A JSON string: quotes, backslashes and control bytes escaped. */
static void
control_json_str(struct control_client *c, const char *s)
{
	control_printf(c, "\"");
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			control_printf(c, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			control_printf(c, "\\u%04x", (unsigned)(unsigned char)*s);
		else
			control_printf(c, "%c", *s);
	}
	control_printf(c, "\"");
}

static void
control_uptime(char *buf, size_t size, double secs)
{
	unsigned long s = secs > 0 ? (unsigned long)secs : 0;

	if (s >= 86400)
		snprintf(buf, size, "%lud%02luh%02lum%02lus", s / 86400,
		    s % 86400 / 3600, s % 3600 / 60, s % 60);
	else if (s >= 3600)
		snprintf(buf, size, "%luh%02lum%02lus", s / 3600,
		    s % 3600 / 60, s % 60);
	else if (s >= 60)
		snprintf(buf, size, "%lum%02lus", s / 60, s % 60);
	else
		snprintf(buf, size, "%lus", s);
}

/* --- status ------------------------------------------------------------- */

static void
control_status(struct control_client *c, int json)
{
	struct master *m = c->m;
	const struct config *cfg = m->cfg;
	const struct frontend *fe;
	const struct master_child *w;
	ev_tstamp now = ev_now(m->loop);
	char up[32];
	unsigned i, j;

	if (json) {
		control_printf(c, "{\"version\":\"%s\",\"pid\":%ld,"
		    "\"uptime_s\":%.0f,\"stopping\":%s,\"workers\":[",
		    MOAT_VERSION, (long)getpid(), now - m->started,
		    m->stopping ? "true" : "false");
		for (i = 0; i < cfg->workers; i++) {
			w = &m->workers[i];
			control_printf(c, "%s{\"index\":%u,\"pid\":%ld,"
			    "\"running\":%s,\"uptime_s\":%.0f,\"restarts\":%u}",
			    i ? "," : "", i, (long)w->pid,
			    w->pid > 0 ? "true" : "false",
			    w->pid > 0 ? now - w->started : 0.0, w->restarts);
		}
		control_printf(c, "],\"keyd\":{\"pid\":%ld,\"running\":%s,"
		    "\"ready\":%s,\"uptime_s\":%.0f,\"restarts\":%u,"
		    "\"generation\":%u},\"frontends\":[", (long)m->keyd.pid,
		    m->keyd.pid > 0 ? "true" : "false",
		    m->keyd.ready ? "true" : "false",
		    m->keyd.pid > 0 ? now - m->keyd.started : 0.0,
		    m->keyd.restarts, m->keyd_generation);
		for (i = 0; i < cfg->nfrontends; i++) {
			fe = &cfg->frontends[i];
			control_printf(c, "%s{\"name\":", i ? "," : "");
			control_json_str(c, fe->name);
			control_printf(c, ",\"listen\":[");
			for (j = 0; j < fe->nlisten; j++) {
				control_printf(c, "%s", j ? "," : "");
				control_json_str(c, fe->listen[j].text);
			}
			control_printf(c, "],\"backend\":");
			control_json_str(c, fe->backend.text);
			control_printf(c, ",\"cert\":");
			control_json_str(c, fe->cert);
			control_printf(c, ",\"key_generation\":%u}",
			    fe->key_generation);
		}
		control_printf(c, "]}\n");
		return;
	}

	control_uptime(up, sizeof(up), now - m->started);
	control_printf(c, "moatd %s, pid %ld, up %s%s\n", MOAT_VERSION,
	    (long)getpid(), up, m->stopping ? ", stopping" : "");
	control_printf(c, "workers: %u\n", cfg->workers);
	for (i = 0; i < cfg->workers; i++) {
		w = &m->workers[i];
		if (w->pid > 0) {
			control_uptime(up, sizeof(up), now - w->started);
			control_printf(c, "  worker %u: pid %ld, up %s, "
			    "restarts %u\n", i, (long)w->pid, up, w->restarts);
		} else {
			control_printf(c, "  worker %u: not running, restarts "
			    "%u\n", i, w->restarts);
		}
	}
	if (m->keyd.pid > 0) {
		control_uptime(up, sizeof(up), now - m->keyd.started);
		control_printf(c, "keyd: pid %ld, up %s, restarts %u, "
		    "generation %u%s\n", (long)m->keyd.pid, up,
		    m->keyd.restarts, m->keyd_generation,
		    m->keyd.ready ? "" : ", starting");
	} else {
		control_printf(c, "keyd: not running, restarts %u\n",
		    m->keyd.restarts);
	}
	control_printf(c, "frontends: %u\n", cfg->nfrontends);
	for (i = 0; i < cfg->nfrontends; i++) {
		fe = &cfg->frontends[i];
		control_printf(c, "  %s: listen ", fe->name);
		for (j = 0; j < fe->nlisten; j++)
			control_printf(c, "%s%s", j ? ", " : "",
			    fe->listen[j].text);
		control_printf(c, "; backend %s; certificate generation %u\n",
		    fe->backend.text, fe->key_generation);
	}
}

/* --- stats -------------------------------------------------------------- */

/* The worker counters, in ipc_worker_stats order; names are the contract. */
#define WSTAT(f)	{ #f, offsetof(struct ipc_worker_stats, f) }
static const struct {
	const char	*name;
	size_t		off;
} control_wstats[] = {
	WSTAT(conns_open),
	WSTAT(conns_total),
	WSTAT(conns_refused_limit),
	WSTAT(handshakes_ok_tls12),
	WSTAT(handshakes_ok_tls13),
	WSTAT(handshakes_failed),
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
};
#define NWSTATS	(sizeof(control_wstats) / sizeof(control_wstats[0]))

static uint64_t
control_wstat(const struct ipc_worker_stats *s, size_t i)
{
	uint64_t v;

	memcpy(&v, (const char *)s + control_wstats[i].off, sizeof(v));
	return v;
}

static double
control_avg_ms(uint64_t total_us, uint64_t n)
{
	return n > 0 ? (double)total_us / (double)n / 1000.0 : 0.0;
}

/* One "name value" line of text, or one "name":value member of JSON. */
static void
control_kv(struct control_client *c, int json, int *first, const char *name,
    uint64_t v)
{
	if (json)
		control_printf(c, "%s\"%s\":%llu", *first ? "" : ",", name,
		    (unsigned long long)v);
	else
		control_printf(c, "%-32s %llu\n", name, (unsigned long long)v);
	*first = 0;
}

static void
control_kv_ms(struct control_client *c, int json, int *first,
    const char *name, double v)
{
	if (json)
		control_printf(c, "%s\"%s\":%.3f", *first ? "" : ",", name, v);
	else
		control_printf(c, "%-32s %.3f\n", name, v);
	*first = 0;
}

static void
control_stats_answer(struct control_client *c, struct master_req *r)
{
	struct ipc_worker_stats tot;
	const struct master_req_worker *w;
	const struct ipc_keyd_stats *k = &r->keyd;
	uint64_t v, t, signs;
	unsigned i, answered = 0;
	size_t j;
	int json = r->json, first = 1;

	memset(&tot, 0, sizeof(tot));
	for (i = 0; i < r->nworkers; i++) {
		w = &r->w[i];
		if (!w->answered || w->status < 0)
			continue;
		answered++;
		for (j = 0; j < NWSTATS; j++) {
			memcpy(&t, (char *)&tot + control_wstats[j].off,
			    sizeof(t));
			t += control_wstat(&w->stats, j);
			memcpy((char *)&tot + control_wstats[j].off, &t,
			    sizeof(t));
		}
		tot.keyd_latency_us_total += w->stats.keyd_latency_us_total;
		if (w->stats.keyd_latency_us_max > tot.keyd_latency_us_max)
			tot.keyd_latency_us_max = w->stats.keyd_latency_us_max;
	}

	if (json)
		control_printf(c, "{");
	control_kv(c, json, &first, "workers", r->nworkers);
	control_kv(c, json, &first, "workers_answered", answered);
	for (j = 0; j < NWSTATS; j++) {
		control_kv(c, json, &first, control_wstats[j].name,
		    control_wstat(&tot, j));
		if (strcmp(control_wstats[j].name, "keyd_failures") == 0) {
			control_kv_ms(c, json, &first, "keyd_latency_avg_ms",
			    control_avg_ms(tot.keyd_latency_us_total,
			    tot.keyd_requests));
			control_kv_ms(c, json, &first, "keyd_latency_max_ms",
			    (double)tot.keyd_latency_us_max / 1000.0);
		}
	}

	/* keyd's own view of the same traffic */
	if (json)
		control_printf(c, ",\"keyd_answered\":%s",
		    r->keyd_answered && r->keyd_status == 0 ? "true" : "false");
	else
		control_printf(c, "%-32s %s\n", "keyd_answered",
		    r->keyd_answered && r->keyd_status == 0 ? "yes" : "no");
	if (r->keyd_answered && r->keyd_status == 0) {
		signs = 0;
		for (i = 0; i < IPC_STAT_NALGOS; i++)
			signs += k->signs[i];
		control_kv(c, json, &first, "keyd_served_requests",
		    k->requests);
		control_kv(c, json, &first, "keyd_signs", signs);
		control_kv(c, json, &first, "keyd_signs_rsa_pkcs1",
		    k->signs[IPC_STAT_RSA_PKCS1]);
		control_kv(c, json, &first, "keyd_signs_rsa_pss",
		    k->signs[IPC_STAT_RSA_PSS]);
		control_kv(c, json, &first, "keyd_signs_ecdsa",
		    k->signs[IPC_STAT_ECDSA]);
		control_kv(c, json, &first, "keyd_signs_eddsa",
		    k->signs[IPC_STAT_EDDSA]);
		control_kv(c, json, &first, "keyd_decrypts", k->decrypts);
		control_kv(c, json, &first, "keyd_refused", k->refused);
		control_kv(c, json, &first, "keyd_errors", k->errors);
		control_kv(c, json, &first, "keyd_rate_limited",
		    k->rate_limited);
		control_kv_ms(c, json, &first, "keyd_served_latency_avg_ms",
		    control_avg_ms(k->latency_us_total, signs + k->decrypts));
		control_kv_ms(c, json, &first, "keyd_served_latency_max_ms",
		    (double)k->latency_us_max / 1000.0);
		control_kv(c, json, &first, "keyd_channels", k->channels);
		control_kv(c, json, &first, "keyd_queue_depth",
		    k->queue_depth);
		control_kv(c, json, &first, "keyd_threads", k->threads);
		control_kv(c, json, &first, "keyd_keys", k->keys);
	} else if (json) {
		control_printf(c, ",\"keyd_error\":");
		control_json_str(c, r->keyd_error);
	} else {
		control_printf(c, "%-32s %s\n", "keyd_error", r->keyd_error);
	}

	if (json)
		control_printf(c, ",\"per_worker\":[");
	for (i = 0; i < r->nworkers; i++) {
		w = &r->w[i];
		if (json) {
			control_printf(c, "%s{\"index\":%u,\"pid\":%ld,"
			    "\"answered\":%s", i ? "," : "", i, (long)w->pid,
			    w->answered && w->status == 0 ? "true" : "false");
		} else {
			control_printf(c, "worker %u (pid %ld):", i,
			    (long)w->pid);
		}
		if (!w->answered || w->status < 0) {
			if (json) {
				control_printf(c, ",\"error\":");
				control_json_str(c, w->error);
				control_printf(c, "}");
			} else {
				control_printf(c, " %s\n", w->error);
			}
			continue;
		}
		first = json ? 0 : 1;
		for (j = 0; j < NWSTATS; j++) {
			v = control_wstat(&w->stats, j);
			if (json)
				control_printf(c, ",\"%s\":%llu",
				    control_wstats[j].name,
				    (unsigned long long)v);
			else if (v != 0 || j < 6)
				control_printf(c, " %s %llu",
				    control_wstats[j].name,
				    (unsigned long long)v);
		}
		if (json)
			control_printf(c, ",\"keyd_latency_avg_ms\":%.3f,"
			    "\"keyd_latency_max_ms\":%.3f}",
			    control_avg_ms(w->stats.keyd_latency_us_total,
			    w->stats.keyd_requests),
			    (double)w->stats.keyd_latency_us_max / 1000.0);
		else
			control_printf(c, "\n");
	}
	if (json)
		control_printf(c, "]}\n");
}

/* --- rekey -------------------------------------------------------------- */

/* A worker's failure as stored ("error: ..."), without the prefix. */
static const char *
control_reason(const char *error)
{
	return strncmp(error, "error: ", 7) == 0 ? error + 7 : error;
}

/*
 * "rekey: N connections asked to renegotiate", then one indented line per
 * worker; a worker that could not do it is an "error: " line of its own.
 */
static void
control_rekey_answer(struct control_client *c, struct master_req *r)
{
	const struct master_req_worker *w;
	uint64_t asked = 0;
	unsigned i, ok = 0, running = 0;

	for (i = 0; i < r->nworkers; i++) {
		w = &r->w[i];
		if (w->pid == 0)
			continue;
		running++;
		if (w->answered && w->status == 0) {
			ok++;
			asked += w->asked;
		}
	}
	if (running == 0) {
		control_printf(c, "error: rekey failed: no worker is running\n");
		return;
	}
	if (ok == 0)
		control_printf(c, "error: rekey failed: no worker did it\n");
	else
		control_printf(c, "rekey: %llu connections asked to renegotiate "
		    "(%s%s%s%u of %u workers)\n", (unsigned long long)asked,
		    r->frontend[0] ? "frontend " : "", r->frontend,
		    r->frontend[0] ? ", " : "", ok, running);
	for (i = 0; i < r->nworkers; i++) {
		w = &r->w[i];
		if (w->pid == 0)
			control_printf(c, "  worker %u: not running\n", i);
		else if (w->answered && w->status == 0)
			control_printf(c, "  worker %u (pid %ld): %u "
			    "connections\n", i, (long)w->pid, w->asked);
	}
	for (i = 0; i < r->nworkers; i++) {
		w = &r->w[i];
		if (w->pid != 0 && !(w->answered && w->status == 0))
			control_printf(c, "error: worker %u (pid %ld): %s\n", i,
			    (long)w->pid, control_reason(w->error));
	}
}

/* --- requests to the children ------------------------------------------- */

static void	control_reload_timeout(struct master_req *r);
static int	control_reload_find(struct master *m, uint32_t id);
static void	control_reload_keyd_answer(struct master_req *r, unsigned i,
		    struct ipc_msg *msg);
static void	control_reload_worker_answer(struct master_req *r, unsigned i,
		    struct master_child *w, struct ipc_msg *msg);
static void	control_reload_child_gone(struct master *m,
		    struct master_child *c);

static void
control_req_finish(struct master_req *r)
{
	struct master *m = r->m;
	struct master_req **pp;
	struct control_client *c = r->client;

	ev_timer_stop(m->loop, &r->timer);
	for (pp = &m->reqs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	if (c != NULL) {
		c->req = NULL;
		if (r->kind == MASTER_REQ_STATS)
			control_stats_answer(c, r);
		else
			control_rekey_answer(c, r);
		control_client_flush(c);
	}
	free(r);
}

static void
control_req_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master_req *r = container_of(t, struct master_req, timer);
	unsigned i;

	if (r->kind == MASTER_REQ_RELOAD) {
		control_reload_timeout(r);
		return;
	}
	for (i = 0; i < r->nworkers; i++)
		if (r->w[i].pid > 0 && !r->w[i].answered) {
			r->w[i].status = -ETIMEDOUT;
			snprintf(r->w[i].error, sizeof(r->w[i].error),
			    "no answer within %.0f s", MASTER_REQ_TIMEOUT_S);
		}
	if (r->keyd_pid > 0 && !r->keyd_answered) {
		r->keyd_status = -ETIMEDOUT;
		snprintf(r->keyd_error, sizeof(r->keyd_error),
		    "no answer within %.0f s", MASTER_REQ_TIMEOUT_S);
	}
	control_req_finish(r);
}

static struct master_req *
control_req_find(struct master *m, uint32_t id)
{
	struct master_req *r;

	for (r = m->reqs; r != NULL; r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

static void
control_req_send(struct control_client *c, enum master_req_kind kind,
    int json, const char *frontend)
{
	struct master *m = c->m;
	struct master_req *r;
	struct master_child *w;
	struct ipc_rekey rk;
	unsigned i;
	int e;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		control_printf(c, "error: out of memory\n");
		control_client_flush(c);
		return;
	}
	r->m = m;
	r->kind = kind;
	r->json = json;
	r->id = master_next_id(m);
	r->client = c;
	r->nworkers = m->cfg->workers;
	snprintf(r->frontend, sizeof(r->frontend), "%s", frontend);
	memset(&rk, 0, sizeof(rk));
	snprintf(rk.frontend, sizeof(rk.frontend), "%s", frontend);

	for (i = 0; i < r->nworkers; i++) {
		w = &m->workers[i];
		snprintf(r->w[i].error, sizeof(r->w[i].error), "not running");
		r->w[i].status = -ESRCH;
		if (w->pid <= 0 || w->fd < 0)
			continue;
		r->w[i].pid = w->pid;
		if (kind == MASTER_REQ_STATS)
			e = ipc_send(w->fd, IPC_WORKER_STATS, r->id, NULL, 0,
			    NULL, 0);
		else
			e = ipc_send(w->fd, IPC_WORKER_REKEY, r->id, &rk,
			    sizeof(rk), NULL, 0);
		if (e < 0) {
			r->w[i].answered = 1;
			snprintf(r->w[i].error, sizeof(r->w[i].error),
			    "cannot ask it: %s", strerror(-e));
			continue;
		}
		r->pending++;
	}
	r->keyd_status = -ESRCH;
	snprintf(r->keyd_error, sizeof(r->keyd_error), "not running");
	if (kind == MASTER_REQ_STATS && m->keyd.ready && m->keyd.fd >= 0) {
		r->keyd_pid = m->keyd.pid;
		e = ipc_send(m->keyd.fd, IPC_KEYD_STATS, r->id, NULL, 0, NULL,
		    0);
		if (e < 0) {
			r->keyd_answered = 1;
			snprintf(r->keyd_error, sizeof(r->keyd_error),
			    "cannot ask it: %s", strerror(-e));
		} else {
			r->pending++;
		}
	}
	c->req = r;
	r->next = m->reqs;
	m->reqs = r;
	ev_timer_init(&r->timer, control_req_timeout_cb, MASTER_REQ_TIMEOUT_S,
	    0.);
	if (r->pending == 0) {
		control_req_finish(r);
		return;
	}
	ev_timer_start(m->loop, &r->timer);
}

static void
control_req_answered(struct master_req *r)
{
	if (r->pending > 0)
		r->pending--;
	if (r->pending == 0)
		control_req_finish(r);
}

void
control_dispatch_worker(struct master *m, struct master_child *w,
    struct ipc_msg *msg)
{
	struct master_req *r;
	struct master_req_worker *rw;
	struct ipc_reply rep;
	struct ipc_error ie;
	uint32_t asked;
	int fe;

	if ((fe = control_reload_find(m, msg->hdr.id)) >= 0) {
		control_reload_worker_answer(m->reload, (unsigned)fe, w, msg);
		return;
	}
	if ((r = control_req_find(m, msg->hdr.id)) == NULL) {
		log_debug("%s: worker %u: %s for no pending request", __func__,
		    w->index, ipc_type_name(msg->hdr.type));
		return;
	}
	if (w->index >= r->nworkers)
		return;
	rw = &r->w[w->index];
	if (rw->pid != w->pid || rw->answered)
		return;
	switch (msg->hdr.type) {
	case IPC_WORKER_STATS_REPLY:
		if (r->kind != MASTER_REQ_STATS ||
		    ipc_worker_stats_decode(msg->payload, msg->hdr.len,
		    &rw->stats) < 0)
			goto bad;
		rw->status = 0;
		break;
	case IPC_WORKER_REKEY_REPLY:
		if (r->kind != MASTER_REQ_REKEY ||
		    ipc_reply_decode(msg->payload, msg->hdr.len, &rep) < 0 ||
		    (rep.status == 0 && rep.data_len != sizeof(asked)))
			goto bad;
		if (rep.status < 0) {
			rw->status = rep.status;
			snprintf(rw->error, sizeof(rw->error), "error: %.240s",
			    strerror(-rep.status));
			break;
		}
		memcpy(&asked, rep.data, sizeof(asked));
		rw->asked = asked;
		rw->status = 0;
		break;
	case IPC_ERROR:
		if (ipc_error_decode(msg->payload, msg->hdr.len, &ie) < 0)
			goto bad;
		rw->status = ie.code;
		snprintf(rw->error, sizeof(rw->error), "error: %.240s",
		    ie.msg[0] != '\0' ? ie.msg : strerror(-ie.code));
		break;
	default:
		goto bad;
	}
	rw->answered = 1;
	control_req_answered(r);
	return;
bad:
	log_warnx("worker %u (pid %ld): malformed %s", w->index, (long)w->pid,
	    ipc_type_name(msg->hdr.type));
	rw->answered = 1;
	rw->status = -EBADMSG;
	snprintf(rw->error, sizeof(rw->error), "malformed answer");
	control_req_answered(r);
}

void
control_dispatch_keyd(struct master *m, struct ipc_msg *msg)
{
	struct master_req *r;
	struct ipc_error ie;
	int fe;

	if ((fe = control_reload_find(m, msg->hdr.id)) >= 0) {
		control_reload_keyd_answer(m->reload, (unsigned)fe, msg);
		return;
	}
	if (msg->hdr.type == IPC_KEY_LOAD_REPLY) {
		log_debug("%s: KEY_LOAD_REPLY for no reload in progress",
		    __func__);
		return;
	}
	r = control_req_find(m, msg->hdr.id);
	if (r == NULL || r->kind == MASTER_REQ_RELOAD ||
	    r->keyd_pid != m->keyd.pid || r->keyd_answered) {
		if (msg->hdr.type == IPC_ERROR &&
		    ipc_error_decode(msg->payload, msg->hdr.len, &ie) == 0)
			log_warnx("keyd: %s", ie.msg);
		return;
	}
	if (msg->hdr.type == IPC_KEYD_STATS_REPLY &&
	    ipc_keyd_stats_decode(msg->payload, msg->hdr.len, &r->keyd) == 0) {
		r->keyd_status = 0;
	} else if (msg->hdr.type == IPC_ERROR &&
	    ipc_error_decode(msg->payload, msg->hdr.len, &ie) == 0) {
		r->keyd_status = ie.code;
		snprintf(r->keyd_error, sizeof(r->keyd_error), "error: %.240s",
		    ie.msg);
	} else {
		r->keyd_status = -EBADMSG;
		snprintf(r->keyd_error, sizeof(r->keyd_error),
		    "malformed answer");
	}
	r->keyd_answered = 1;
	control_req_answered(r);
}

/* A child died: whatever it was asked, it will not answer. */
void
control_child_gone(struct master *m, struct master_child *c)
{
	struct master_req *r, *next;
	struct master_req_worker *rw;

	for (r = m->reqs; r != NULL; r = next) {
		next = r->next;
		if (r->kind == MASTER_REQ_RELOAD)
			continue;
		if (c == &m->keyd) {
			if (r->keyd_pid != c->pid || r->keyd_answered)
				continue;
			r->keyd_answered = 1;
			r->keyd_status = -ESRCH;
			snprintf(r->keyd_error, sizeof(r->keyd_error),
			    "exited before answering");
		} else {
			if (c->index >= r->nworkers)
				continue;
			rw = &r->w[c->index];
			if (rw->pid != c->pid || rw->answered)
				continue;
			rw->answered = 1;
			rw->status = -ESRCH;
			snprintf(rw->error, sizeof(rw->error),
			    "exited before answering");
		}
		control_req_answered(r);
	}
	control_reload_child_gone(m, c);
}

/* --- reload: certificate rotation (see the comment on top) ------------- */

static const struct frontend *
control_reload_frontend(const struct master_req *r, unsigned i)
{
	return &r->m->cfg->frontends[i];
}

/* The frontend of the reload in progress whose messages carry id, or -1. */
static int
control_reload_find(struct master *m, uint32_t id)
{
	struct master_req *r = m->reload;
	unsigned i;

	if (r == NULL)
		return -1;
	for (i = 0; i < m->cfg->nfrontends; i++)
		if (r->fe[i].id == id)
			return (int)i;
	return -1;
}

static void control_reload_fail(struct master_reload_fe *,
	    const char *, ...) __attribute__((format(printf, 2, 3)));

/* Step 1 failed for this frontend: nothing changes for it. */
static void
control_reload_fail(struct master_reload_fe *rf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rf->error, sizeof(rf->error), fmt, ap);
	va_end(ap);
	rf->state = MASTER_RELOAD_FAILED;
	if (rf->cert_fd >= 0)
		close(rf->cert_fd);
	rf->cert_fd = -1;
}

static void control_reload_worker_fail(struct master_req *, unsigned,
	    unsigned, const char *, ...) __attribute__((format(printf, 4, 5)));

/* Worker j did not take frontend i's new chain; it keeps the old one. */
static void
control_reload_worker_fail(struct master_req *r, unsigned i, unsigned j,
    const char *fmt, ...)
{
	struct master_reload_fe *rf = &r->fe[i];
	char why[IPC_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	rf->answered[j] = 1;
	if (rf->workers_failed++ == 0)
		snprintf(rf->worker_error, sizeof(rf->worker_error),
		    "worker %u (pid %ld): %s", j, (long)r->w[j].pid, why);
}

/* Step 1 for frontend i: check its files, send keyd the next key. */
static void
control_reload_begin(struct master_req *r, unsigned i)
{
	struct master *m = r->m;
	struct master_reload_fe *rf = &r->fe[i];
	const struct frontend *fe = control_reload_frontend(r, i);
	const struct master_child *w;
	char why[256];
	unsigned j;

	rf->id = master_next_id(m);
	rf->generation = fe->key_generation + 1;
	rf->cert_fd = -1;
	rf->state = MASTER_RELOAD_FAILED;
	for (j = 0; j < m->cfg->workers; j++) {
		w = &m->workers[j];
		if (w->pid > 0 && w->cert_generation[i] != fe->key_generation) {
			control_reload_fail(rf, "%s: worker %u (pid %ld) did not "
			    "take generation %u of it and still uses the key "
			    "this reload would replace (a worker takes the "
			    "current certificate when it restarts)", fe->cert,
			    j, (long)w->pid, fe->key_generation);
			return;
		}
	}
	if (!m->keyd.ready || m->keyd.fd < 0) {
		control_reload_fail(rf, "%s: keyd is not running (a new keyd "
		    "loads the current key)", fe->key);
		return;
	}
	if (config_check_secret_file(fe->key, why, sizeof(why)) < 0) {
		control_reload_fail(rf, "%s: %s", fe->key, why);
		return;
	}
	if (fe->key_passphrase_file[0] != '\0' &&
	    config_check_secret_file(fe->key_passphrase_file, why,
	    sizeof(why)) < 0) {
		control_reload_fail(rf, "%s: %s", fe->key_passphrase_file, why);
		return;
	}
	if (config_check_cert_file(fe->cert, why, sizeof(why)) < 0) {
		control_reload_fail(rf, "%s: %s", fe->cert, why);
		return;
	}
	if (master_keyd_load_send(m, fe, IPC_KEY_SLOT(i, rf->generation),
	    rf->id, &rf->cert_fd, rf->error, sizeof(rf->error)) < 0) {
		rf->state = MASTER_RELOAD_FAILED;
		return;
	}
	rf->state = MASTER_RELOAD_KEYD;
	r->pending++;
}

/* Step 3: one line per frontend, to the log and to the client. */
static void
control_reload_finish(struct master_req *r)
{
	struct master *m = r->m;
	struct control_client *c = r->client;
	const struct frontend *fe;
	struct master_reload_fe *rf;
	struct master_req **pp;
	char line[2048];
	unsigned i, failed = 0;
	int n;

	ev_timer_stop(m->loop, &r->timer);
	for (pp = &m->reqs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	m->reload = NULL;
	for (i = 0; i < m->cfg->nfrontends; i++) {
		rf = &r->fe[i];
		fe = control_reload_frontend(r, i);
		if (rf->cert_fd >= 0)
			close(rf->cert_fd);
		rf->cert_fd = -1;
		if (rf->state == MASTER_RELOAD_FAILED) {
			snprintf(line, sizeof(line), "frontend %s: reload "
			    "failed: %s", fe->name, rf->error);
			log_warnx("%s", line);
			failed++;
			if (c != NULL)
				control_printf(c, "error: %s\n", line);
			continue;
		}
		n = snprintf(line, sizeof(line), "frontend %s: reloaded "
		    "certificate %s and key %s (generation %u); %llu "
		    "connections asked to renegotiate", fe->name, fe->cert,
		    fe->key, rf->generation, (unsigned long long)rf->asked);
		if (rf->workers_failed > 0 && n > 0 &&
		    (size_t)n < sizeof(line))
			snprintf(line + n, sizeof(line) - (size_t)n, "; %u of %u "
			    "workers did not take it and keep the previous "
			    "certificate until they restart (%s)",
			    rf->workers_failed, rf->workers_asked,
			    rf->worker_error);
		if (rf->workers_failed > 0) {
			log_warnx("%s", line);
			failed++;
		} else {
			log_info("%s", line);
		}
		if (c != NULL)
			control_printf(c, "%s%s\n", rf->workers_failed > 0 ?
			    "error: " : "", line);
	}
	if (failed > 0)
		log_warnx("reload: %u of %u frontends failed", failed,
		    m->cfg->nfrontends);
	if (!m->stopping)
		sd_notify(0, "READY=1");
	master_status_notify(m);
	if (c != NULL) {
		c->req = NULL;
		control_client_flush(c);
	}
	free(r);
	if (m->reload_again && !m->stopping) {
		m->reload_again = 0;
		log_info("reload: starting the one asked for meanwhile");
		control_reload(m, NULL);
	}
}

/* Step 2: commit what keyd loaded, hand every live worker its chain. */
static void
control_reload_workers(struct master_req *r)
{
	struct master *m = r->m;
	struct master_reload_fe *rf;
	struct frontend *fe;
	struct master_child *w;
	struct ipc_worker_cert wc;
	unsigned i, j;
	int e;

	ev_timer_stop(m->loop, &r->timer);
	r->reload_workers = 1;
	r->pending = 0;
	for (j = 0; j < r->nworkers; j++) {
		w = &m->workers[j];
		r->w[j].pid = w->pid > 0 && w->fd >= 0 ? w->pid : 0;
	}
	for (i = 0; i < m->cfg->nfrontends; i++) {
		rf = &r->fe[i];
		if (rf->state != MASTER_RELOAD_WORKERS)
			continue;
		fe = &m->cfg->frontends[i];
		fe->key_generation = rf->generation;
		memset(&wc, 0, sizeof(wc));
		wc.frontend = i;
		wc.key_id = IPC_KEY_SLOT(i, rf->generation);
		wc.generation = rf->generation;
		for (j = 0; j < r->nworkers; j++) {
			w = &m->workers[j];
			if (r->w[j].pid == 0)
				continue;
			rf->workers_asked++;
			if ((e = ipc_send(w->fd, IPC_WORKER_CERT, rf->id, &wc,
			    sizeof(wc), &rf->cert_fd, 1)) < 0) {
				control_reload_worker_fail(r, i, j, "cannot ask "
				    "it: %s", strerror(-e));
				continue;
			}
			r->pending++;
		}
		close(rf->cert_fd);
		rf->cert_fd = -1;
	}
	if (r->pending == 0) {
		control_reload_finish(r);
		return;
	}
	ev_timer_set(&r->timer, MASTER_REQ_TIMEOUT_S, 0.);
	ev_timer_start(m->loop, &r->timer);
}

static void
control_reload_timeout(struct master_req *r)
{
	struct master_reload_fe *rf;
	unsigned i, j;

	for (i = 0; i < r->m->cfg->nfrontends; i++) {
		rf = &r->fe[i];
		if (!r->reload_workers && rf->state == MASTER_RELOAD_KEYD) {
			control_reload_fail(rf, "%s: keyd did not answer within "
			    "%.0f s", control_reload_frontend(r, i)->key,
			    MASTER_RELOAD_KEYD_S);
			continue;
		}
		if (!r->reload_workers || rf->state != MASTER_RELOAD_WORKERS)
			continue;
		for (j = 0; j < r->nworkers; j++)
			if (r->w[j].pid > 0 && !rf->answered[j])
				control_reload_worker_fail(r, i, j, "no answer "
				    "within %.0f s", MASTER_REQ_TIMEOUT_S);
	}
	if (r->reload_workers)
		control_reload_finish(r);
	else
		control_reload_workers(r);
}

/* keyd answered frontend i's IPC_KEY_LOAD. */
static void
control_reload_keyd_answer(struct master_req *r, unsigned i,
    struct ipc_msg *msg)
{
	struct master_reload_fe *rf = &r->fe[i];
	const struct frontend *fe = control_reload_frontend(r, i);
	struct ipc_key_loaded kr;
	struct ipc_error ie;

	if (r->reload_workers || rf->state != MASTER_RELOAD_KEYD)
		return;
	if (msg->hdr.type == IPC_KEY_LOAD_REPLY &&
	    ipc_key_loaded_decode(msg->payload, msg->hdr.len, &kr) == 0) {
		if (kr.status < 0)
			control_reload_fail(rf, "%s: %s", fe->key,
			    kr.msg[0] != '\0' ? kr.msg : strerror(-kr.status));
		else {
			rf->state = MASTER_RELOAD_WORKERS;
			log_debug("%s: frontend %s: keyd loaded key %s into slot "
			    "%u (generation %u, %u bits)", __func__, fe->name,
			    fe->key, IPC_KEY_SLOT(i, rf->generation),
			    rf->generation, kr.info.bits);
		}
	} else if (msg->hdr.type == IPC_ERROR &&
	    ipc_error_decode(msg->payload, msg->hdr.len, &ie) == 0) {
		control_reload_fail(rf, "%s: %s", fe->key, ie.msg[0] != '\0' ?
		    ie.msg : strerror(-ie.code));
	} else {
		log_warnx("keyd: malformed %s", ipc_type_name(msg->hdr.type));
		control_reload_fail(rf, "%s: malformed answer from keyd",
		    fe->key);
	}
	if (r->pending > 0)
		r->pending--;
	if (r->pending == 0)
		control_reload_workers(r);
}

/* Worker w answered frontend i's IPC_WORKER_CERT. */
static void
control_reload_worker_answer(struct master_req *r, unsigned i,
    struct master_child *w, struct ipc_msg *msg)
{
	struct master_reload_fe *rf = &r->fe[i];
	struct ipc_reply rep;
	struct ipc_error ie;
	uint32_t asked;

	if (!r->reload_workers || rf->state != MASTER_RELOAD_WORKERS ||
	    w->index >= r->nworkers || r->w[w->index].pid != w->pid ||
	    rf->answered[w->index])
		return;
	if (msg->hdr.type == IPC_WORKER_CERT_REPLY &&
	    ipc_reply_decode(msg->payload, msg->hdr.len, &rep) == 0 &&
	    (rep.status < 0 || rep.data_len == sizeof(asked))) {
		if (rep.status < 0) {
			control_reload_worker_fail(r, i, w->index, "%s",
			    strerror(-rep.status));
		} else {
			memcpy(&asked, rep.data, sizeof(asked));
			rf->answered[w->index] = 1;
			rf->asked += asked;
			rf->workers_ok++;
			w->cert_generation[i] = rf->generation;
		}
	} else if (msg->hdr.type == IPC_ERROR &&
	    ipc_error_decode(msg->payload, msg->hdr.len, &ie) == 0) {
		control_reload_worker_fail(r, i, w->index, "%s",
		    ie.msg[0] != '\0' ? ie.msg : strerror(-ie.code));
	} else {
		log_warnx("worker %u (pid %ld): malformed %s", w->index,
		    (long)w->pid, ipc_type_name(msg->hdr.type));
		control_reload_worker_fail(r, i, w->index, "malformed answer");
	}
	if (r->pending > 0)
		r->pending--;
	if (r->pending == 0)
		control_reload_finish(r);
}

/* A child died in the middle of a reload: it will not answer. */
static void
control_reload_child_gone(struct master *m, struct master_child *c)
{
	struct master_req *r = m->reload;
	struct master_reload_fe *rf;
	unsigned i;

	if (r == NULL)
		return;
	for (i = 0; i < m->cfg->nfrontends; i++) {
		rf = &r->fe[i];
		if (c == &m->keyd) {
			if (r->reload_workers || r->keyd_pid != c->pid ||
			    rf->state != MASTER_RELOAD_KEYD)
				continue;
			control_reload_fail(rf, "%s: keyd exited before "
			    "answering", control_reload_frontend(r, i)->key);
		} else {
			if (!r->reload_workers ||
			    rf->state != MASTER_RELOAD_WORKERS ||
			    c->index >= r->nworkers ||
			    r->w[c->index].pid != c->pid ||
			    rf->answered[c->index])
				continue;
			control_reload_worker_fail(r, i, c->index, "exited "
			    "before answering");
		}
		if (r->pending > 0)
			r->pending--;
	}
	if (r->pending > 0)
		return;
	if (r->reload_workers)
		control_reload_finish(r);
	else
		control_reload_workers(r);
}

/*
 * moatctl reload (c) or SIGHUP (c == NULL): rotate every frontend's
 * certificate and key.  One at a time: a SIGHUP during a reload starts
 * another one after it, a second moatctl reload is told to wait.
 */
void
control_reload(struct master *m, struct control_client *c)
{
	struct master_req *r;
	struct timespec ts;
	unsigned i;

	if (m->stopping) {
		if (c == NULL) {
			log_warnx("reload: moatd is stopping; ignored");
			return;
		}
		control_printf(c, "error: moatd is stopping\n");
		control_client_flush(c);
		return;
	}
	if (m->reload != NULL) {
		if (c == NULL) {
			m->reload_again = 1;
			log_info("reload: one is in progress; another will "
			    "follow it");
			return;
		}
		control_printf(c, "error: a reload is already in progress\n");
		control_client_flush(c);
		return;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		log_warnx("reload: out of memory");
		if (c != NULL) {
			control_printf(c, "error: out of memory\n");
			control_client_flush(c);
		}
		return;
	}
	r->m = m;
	r->kind = MASTER_REQ_RELOAD;
	r->id = master_next_id(m);
	r->client = c;
	r->nworkers = m->cfg->workers;
	r->keyd_pid = m->keyd.pid;
	for (i = 0; i < CONFIG_MAX_FRONTENDS; i++)
		r->fe[i].cert_fd = -1;
	if (c != NULL)
		c->req = r;
	r->next = m->reqs;
	m->reqs = r;
	m->reload = r;
	ev_timer_init(&r->timer, control_req_timeout_cb, MASTER_RELOAD_KEYD_S,
	    0.);
	/* MONOTONIC_USEC: what systemd >= 253 (Type=notify-reload) wants */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ull +
	    (unsigned long long)ts.tv_nsec / 1000ull);
	log_info("reload: rotating the certificates and keys of %u frontends",
	    m->cfg->nfrontends);
	for (i = 0; i < m->cfg->nfrontends; i++)
		control_reload_begin(r, i);
	if (r->pending == 0) {
		control_reload_workers(r);
		return;
	}
	ev_timer_start(m->loop, &r->timer);
}

/* --- clients ------------------------------------------------------------ */

static void
control_client_free(struct control_client *c)
{
	struct master *m = c->m;
	struct control_client **pp;

	for (pp = &m->clients; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	m->nclients--;
	if (c->req != NULL)
		c->req->client = NULL;
	if (m->loop != NULL) {
		ev_io_stop(m->loop, &c->io);
		ev_timer_stop(m->loop, &c->timer);
	}
	close(c->fd);
	free(c->out);
	free(c);
}

static void
control_client_write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct control_client *c = container_of(io, struct control_client, io);
	ssize_t n;

	while (c->outoff < c->outlen) {
		n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
		    MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			control_client_free(c);
			return;
		}
		c->outoff += (size_t)n;
	}
	control_client_free(c);
}

/* The answer is complete: send it, then close. */
static void
control_client_flush(struct control_client *c)
{
	struct master *m = c->m;

	c->writing = 1;
	ev_io_stop(m->loop, &c->io);
	ev_io_set(&c->io, c->fd, EV_WRITE);
	ev_set_cb(&c->io, control_client_write_cb);
	ev_io_start(m->loop, &c->io);
}

static void
control_command(struct control_client *c, char *line)
{
	struct master *m = c->m;
	char *argv[4], *save = NULL, *tok;
	int argc = 0, json = 0;

	for (tok = strtok_r(line, " \t\r", &save); tok != NULL && argc < 4;
	    tok = strtok_r(NULL, " \t\r", &save))
		argv[argc++] = tok;
	if (argc == 0) {
		control_printf(c, "error: empty command (expected status, "
		    "stats, rekey or reload)\n");
		goto flush;
	}
	if (argc == 2 && strcmp(argv[1], "--json") == 0)
		json = 1;
	if (strcmp(argv[0], "status") == 0 && (argc == 1 || json)) {
		control_status(c, json);
		goto flush;
	}
	if (strcmp(argv[0], "stats") == 0 && (argc == 1 || json)) {
		control_req_send(c, MASTER_REQ_STATS, json, "");
		return;
	}
	if (strcmp(argv[0], "rekey") == 0 && argc <= 2) {
		if (argc == 2 && config_frontend_by_name(m->cfg,
		    argv[1]) == NULL) {
			control_printf(c, "error: unknown frontend '%s'\n",
			    argv[1]);
			goto flush;
		}
		control_req_send(c, MASTER_REQ_REKEY, 0,
		    argc == 2 ? argv[1] : "");
		return;
	}
	if (strcmp(argv[0], "reload") == 0 && argc == 1) {
		control_reload(m, c);
		return;
	}
	control_printf(c, "error: unknown command '%s' (expected status "
	    "[--json], stats [--json], rekey [FRONTEND] or reload)\n",
	    argv[0]);
flush:
	control_client_flush(c);
}

static void
control_client_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct control_client *c = container_of(io, struct control_client, io);
	char *nl;
	ssize_t n;

	n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return;
	if (n < 0 || (n == 0 && c->inlen == 0)) {
		control_client_free(c);
		return;
	}
	c->inlen += (size_t)n;
	c->in[c->inlen] = '\0';
	if ((nl = strchr(c->in, '\n')) == NULL) {
		if (n > 0 && c->inlen < sizeof(c->in) - 1)
			return;
		if (n > 0) {
			control_printf(c, "error: command too long\n");
			control_client_flush(c);
			return;
		}
	} else {
		*nl = '\0';
	}
	/* one command per connection: stop reading, answer, close */
	ev_io_stop(loop, &c->io);
	control_command(c, c->in);
}

static void
control_client_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct control_client *c = container_of(t, struct control_client,
	    timer);

	log_debug("%s: control client idle; closing", __func__);
	control_client_free(c);
}

static void
control_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct master *m = ev_userdata(loop);
	struct control_client *c;
	uid_t uid;
	pid_t pid;
	int fd, r;

	fd = accept4(m->control_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		    errno != ECONNABORTED)
			log_warn("%s: accept", __func__);
		return;
	}
	/*
	 * The socket is root's, mode 0600; check the peer as well, as
	 * STYLE.md asks of every path socket: only root (or moatd's own
	 * user, when it runs unprivileged for a test) may steer moatd.
	 */
	if ((r = ipc_peer_uid(fd, &uid, &pid)) < 0 ||
	    (uid != 0 && uid != geteuid())) {
		if (r < 0)
			log_warnx("control: peer credentials: %s", strerror(-r));
		else
			log_warnx("control: refusing pid %ld, uid %ld",
			    (long)pid, (long)uid);
		close(fd);
		return;
	}
	if (m->nclients >= MASTER_CONTROL_CLIENTS ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		log_warnx("control: too many clients; refusing one");
		close(fd);
		return;
	}
	c->m = m;
	c->fd = fd;
	c->next = m->clients;
	m->clients = c;
	m->nclients++;
	ev_io_init(&c->io, control_client_read_cb, fd, EV_READ);
	ev_io_start(loop, &c->io);
	ev_timer_init(&c->timer, control_client_timeout_cb, CONTROL_IDLE_S, 0.);
	ev_timer_start(loop, &c->timer);
}

static int
control_mkdir_parent(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *p;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((p = strrchr(dir, '/')) == NULL || p == dir)
		return 0;
	*p = '\0';
	for (p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/*
 * Bind the control socket.  A stale socket from a dead moatd is removed;
 * one that still answers belongs to a running moatd and is left alone.
 */
int
control_open(struct master *m)
{
	struct sockaddr_un sun;
	struct stat st;
	mode_t old;
	int fd = -1, probe, r;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(m->cfg->control) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, m->cfg->control, strlen(m->cfg->control) + 1);
	if ((r = control_mkdir_parent(m->cfg->control)) < 0)
		return r;
	if (lstat(sun.sun_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sun,
		    sizeof(sun)) == 0) {
			close(probe);
			log_warnx("control socket %s answers: is another moatd "
			    "running?", sun.sun_path);
			return -EADDRINUSE;
		}
		if (probe >= 0)
			close(probe);
		if (unlink(sun.sun_path) < 0)
			return -errno;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) < 0)
		return -errno;
	/* born 0600: no window where others could connect */
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r < 0)
		goto fail;
	if (chown(sun.sun_path, 0, 0) < 0 || chmod(sun.sun_path, 0600) < 0 ||
	    listen(fd, 16) < 0)
		goto fail;
	m->control_fd = fd;
	ev_io_init(&m->control_io, control_accept_cb, fd, EV_READ);
	ev_io_start(m->loop, &m->control_io);
	return 0;
fail:
	r = -errno;
	close(fd);
	return r;
}

/* Stop listening and remove the socket; answers in progress still go out. */
void
control_close(struct master *m)
{
	if (m->control_fd < 0)
		return;
	ev_io_stop(m->loop, &m->control_io);
	close(m->control_fd);
	m->control_fd = -1;
	unlink(m->cfg->control);
}
