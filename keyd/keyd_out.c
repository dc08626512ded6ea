/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * keyd_out.c -- what moat-keyd says to a worker: answers sent from any
 * thread (a full socket queues them for the main thread, which flushes
 * them when the channel is writable: keyd_chan.c), errors and refusals
 * answered, counted and logged -- at most KEYD_LOG_PER_WINDOW lines per
 * window, and what a rate limit refuses in one line a minute at most, so
 * that a flood never becomes a flood of logs.
 */
#include "config.h"

#include <sys/queue.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>
#include <gnutls/gnutls.h>

#include "ipc.h"
#include "keyd_limit.h"
#include "keyd_out.h"
#include "keyd_types.h"
#include "log.h"

#define KEYD_OUTQ_MAX		(KEYD_PENDING_MAX + 1024)
#define KEYD_LOG_WINDOW_US	(10ull * 1000000ull)
#define KEYD_LOG_PER_WINDOW	10u

uint64_t
keyd_out_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void
keyd_out_free(struct keyd_out *o)
{
	/* Replies may hold a decrypted premaster secret. */
	gnutls_memset(o->data, 0, o->len);
	free(o);
}

/*
 * Log a refusal or error on a channel, at most KEYD_LOG_PER_WINDOW lines
 * per window, then one line saying how many were left out.
 */
void
keyd_out_log(struct keyd *kd, struct keyd_chan *ch, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	uint64_t now = keyd_out_now_us(), dropped;
	int show;

	pthread_mutex_lock(&kd->lock);
	show = keyd_limit_window_take(&ch->logwin, KEYD_LOG_WINDOW_US,
	    KEYD_LOG_PER_WINDOW, now, &dropped);
	pthread_mutex_unlock(&kd->lock);

	if (dropped > 0)
		log_warnx("worker %u: %llu more refusals not logged",
		    ch->worker, (unsigned long long)dropped);
	if (!show)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_warnx("worker %u: %s", ch->worker, line);
}

/*
 * Send one message on a worker channel from any thread.  A full socket
 * queues the message for the main thread; a dead channel drops it.
 */
int
keyd_out_send(struct keyd *kd, struct keyd_chan *ch, uint16_t type,
    uint32_t id, const void *payload, size_t len)
{
	struct keyd_out *o;
	int r, queued, wake = 0;

	pthread_mutex_lock(&kd->lock);
	if (ch->dead) {
		pthread_mutex_unlock(&kd->lock);
		return -EPIPE;
	}
	queued = !TAILQ_EMPTY(&ch->outq);
	pthread_mutex_unlock(&kd->lock);

	if (!queued) {
		r = ipc_send(ch->fd, type, id, payload, len, NULL, 0);
		if (r != -EAGAIN)
			return r;
	}
	if ((o = malloc(sizeof(*o) + len)) == NULL)
		return -ENOMEM;
	o->type = type;
	o->id = id;
	o->len = len;
	if (len > 0)
		memcpy(o->data, payload, len);

	pthread_mutex_lock(&kd->lock);
	if (ch->dead || ch->noutq >= KEYD_OUTQ_MAX) {
		if (!ch->dead) {
			ch->close_req = 1;
			wake = 1;
		}
		pthread_mutex_unlock(&kd->lock);
		keyd_out_free(o);
		if (wake)
			ev_async_send(kd->loop, &kd->wake);
		return -ENOBUFS;
	}
	TAILQ_INSERT_TAIL(&ch->outq, o, entry);
	ch->noutq++;
	if (!ch->want_write) {
		ch->want_write = 1;
		wake = 1;
	}
	pthread_mutex_unlock(&kd->lock);
	if (wake)
		ev_async_send(kd->loop, &kd->wake);
	return 0;
}

/* Answer request id with IPC_ERROR. */
void
keyd_out_error(struct keyd *kd, struct keyd_chan *ch, uint32_t id, int code,
    const char *msg)
{
	struct ipc_error e;

	memset(&e, 0, sizeof(e));
	e.code = code < 0 ? code : -EINVAL;
	snprintf(e.msg, sizeof(e.msg), "%s", msg);
	(void)keyd_out_send(kd, ch, IPC_ERROR, id, &e, sizeof(e));
}

/* Count, log and answer a request that will not be served. */
void
keyd_out_fail(struct keyd *kd, struct keyd_chan *ch, uint32_t id, int code,
    enum keyd_fail kind, const char *fmt, ...)
{
	char msg[IPC_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	pthread_mutex_lock(&kd->lock);
	if (kind == KEYD_FAIL_REFUSED)
		KEYD_COUNT(kd, ch, refused);
	else
		KEYD_COUNT(kd, ch, errors);
	pthread_mutex_unlock(&kd->lock);

	keyd_out_log(kd, ch, "request %u %s (%s): %s", id,
	    kind == KEYD_FAIL_REFUSED ? "refused" : "failed",
	    strerror(code < 0 ? -code : EINVAL), msg);
	keyd_out_error(kd, ch, id, code, msg);
}

/* The line of a rate-limit report: refusals since the last line. */
void
keyd_out_rl_log(struct keyd *kd, struct keyd_chan *ch, uint64_t count,
    int first)
{
	log_warnx("worker %u: %llu request%s rate limited since %s (channel "
	    "limit %.0f/s, burst %.0f; and each key's own)", ch->worker,
	    (unsigned long long)count, count == 1 ? "" : "s", first ?
	    "the channel opened" : "the last such line", kd->rate, kd->burst);
}

/*
 * Main thread: refuse request id for a rate (the channel's, or the key's
 * across all channels: what).  Counted as rate_limited, answered -EBUSY,
 * and reported in one line a minute at most (keyd_limit_report_take), not
 * one line per request: a flood must not become a flood of logs.
 */
void
keyd_out_limited(struct keyd *kd, struct keyd_chan *ch, uint32_t id,
    const char *what)
{
	uint64_t count;
	int first = !ch->rl.started;

	pthread_mutex_lock(&kd->lock);
	KEYD_COUNT(kd, ch, rate_limited);
	pthread_mutex_unlock(&kd->lock);
	if (keyd_limit_report_take(&ch->rl, KEYD_LIMIT_REPORT_US, 1,
	    keyd_out_now_us(), &count))
		keyd_out_rl_log(kd, ch, count, first);
	keyd_out_error(kd, ch, id, -EBUSY, what);
}
