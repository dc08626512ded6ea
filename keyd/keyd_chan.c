/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * keyd_chan.c -- moat-keyd's worker channels.
 *
 * The master hands keyd one SOCK_SEQPACKET channel per worker
 * (IPC_CHANNEL_ADD, keyd.c).  The main thread reads every channel,
 * answers what is cheap (hello, key list, errors), counts every request
 * against the channel's token bucket, and checks every sign or decrypt
 * request against the policy (policy.c) and its key's token bucket before
 * it queues the job on the channel's own signer queue (keyd_signer.c).
 * What a limit refuses is counted and reported once a minute per channel
 * (keyd.c's header says how the limits are chosen).  It reads at most
 * KEYD_READ_BATCH messages from a channel per loop turn, and stops
 * reading a channel that has KEYD_PENDING_MAX requests outstanding until
 * half of them are answered, so the kernel pushes back on that one worker
 * only.
 *
 * Replies are sent by the signer thread that finished the request, from
 * the job's completion callback (keyd_chan_job_done).  If the socket is
 * full (EAGAIN) the reply waits on the channel's out queue, which the main
 * thread flushes when the channel becomes writable: no thread ever blocks
 * on a worker that does not read.  A worker whose out queue overflows
 * loses its channel.  Signer threads never touch a libev watcher: they
 * set a flag and wake the main thread with keyd.wake (keyd_chan_wake_cb).
 *
 * A channel lives while the main thread or a job holds a reference; its fd
 * is closed with the last one, so a late reply can never reach a reused
 * fd.  keyd_types.h says which lock guards what.
 */
#include "config.h"

#include <sys/queue.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <gnutls/gnutls.h>

#include "ipc.h"
#include "keyd_chan.h"
#include "keyd_limit.h"
#include "keyd_out.h"
#include "keyd_signer.h"
#include "keyd_types.h"
#include "keystore.h"
#include "log.h"
#include "policy.h"
#include "util.h"

#define KEYD_READ_BATCH		32	/* messages per channel per loop turn */
#define KEYD_CHAN_MAGIC		0x6b644348u	/* "kdCH" */


static const struct ipc_ends keyd_worker_ends = { IPC_ROLE_KEYD, IPC_ROLE_WORKER };

/* Last reference gone: nobody can use the fd any more. */
static void
keyd_chan_free(struct keyd_chan *ch)
{
	struct keyd_out *o;

	while ((o = TAILQ_FIRST(&ch->outq)) != NULL) {
		TAILQ_REMOVE(&ch->outq, o, entry);
		keyd_out_free(o);
	}
	if (ch->fd >= 0)
		close(ch->fd);
	ch->magic = 0;
	free(ch);
}

/* Main thread, once a minute: report what was refused since the last line. */
static void
keyd_chan_rl_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct keyd *kd = ev_userdata(loop);
	struct keyd_chan *ch;
	uint64_t count, now = keyd_out_now_us();

	TAILQ_FOREACH(ch, &kd->chans, entry)
		if (keyd_limit_report_take(&ch->rl, KEYD_LIMIT_REPORT_US, 0,
		    now, &count))
			keyd_out_rl_log(kd, ch, count, 0);
}

/* Main thread: stop serving ch, drop its queued jobs, release our ref. */
static void
keyd_chan_close(struct keyd *kd, struct keyd_chan *ch, const char *why)
{
	struct ipc_keyd_stats st;
	unsigned dropped;
	int last;

	ev_io_stop(kd->loop, &ch->rio);
	ev_io_stop(kd->loop, &ch->wio);
	TAILQ_REMOVE(&kd->chans, ch, entry);
	/* Jobs a signer already runs keep their references and finish. */
	dropped = keyd_signer_cancel(&kd->signer, &ch->sq);

	pthread_mutex_lock(&kd->lock);
	ch->dead = 1;
	ch->pending -= dropped;
	ch->refs -= (int)dropped;	/* the jobs'; ours keeps ch alive */
	kd->nchans--;
	st = ch->stats;
	last = --ch->refs == 0;
	pthread_mutex_unlock(&kd->lock);

	log_info("worker %u channel (generation %u) closed: %s; requests %llu, "
	    "refused %llu, errors %llu, rate limited %llu", ch->worker,
	    ch->generation, why, (unsigned long long)st.requests,
	    (unsigned long long)st.refused, (unsigned long long)st.errors,
	    (unsigned long long)st.rate_limited);
	if (last)
		keyd_chan_free(ch);
}

/*
 * A request of ch is over (answered or cancelled), with kd.lock held: 1 if
 * the main thread must be woken to read the paused channel again.
 */
static int
keyd_chan_settled(struct keyd_chan *ch)
{
	ch->pending--;
	if (ch->paused && !ch->dead && ch->pending <= KEYD_PENDING_RESUME &&
	    !ch->resume_req) {
		ch->resume_req = 1;
		return 1;
	}
	return 0;
}

/*
 * Signer thread: the job's key operation is done (reply is the answer's
 * payload, or err says why there is none).  Answer the worker, count the
 * request and release the job's reference on the channel.
 */
static void
keyd_chan_job_done(struct keyd_job *job, const uint8_t *reply, size_t len,
    const char *err)
{
	struct keyd_chan *ch = job->arg;
	struct keyd *kd;
	uint64_t lat;
	int stat = -1, ok = err == NULL, last, wake = 0;

	if (ch == NULL || ch->magic != KEYD_CHAN_MAGIC)
		fatalx("%s: corrupt channel %p", __func__, (void *)ch);
	kd = ch->kd;
	if (job->type == IPC_SIGN)
		stat = policy_sign_stat(job->sign_algo);

	if (!ok) {
		keyd_out_log(kd, ch, "request %u: %s failed: %s", job->id,
		    ipc_type_name(job->type), err);
		keyd_out_error(kd, ch, job->id, -EIO, err);
	} else {
		(void)keyd_out_send(kd, ch, job->type == IPC_SIGN ?
		    IPC_SIGN_REPLY : IPC_DECRYPT_REPLY, job->id, reply, len);
	}

	lat = keyd_out_now_us() - job->t_recv;
	pthread_mutex_lock(&kd->lock);
	if (ok && job->type == IPC_SIGN && stat >= 0 && stat < IPC_STAT_NALGOS)
		KEYD_COUNT(kd, ch, signs[stat]);
	else if (ok)
		KEYD_COUNT(kd, ch, decrypts);
	else
		KEYD_COUNT(kd, ch, errors);
	KEYD_COUNT(kd, ch, latency_buckets[ipc_lat_bucket(lat)]);
	ch->stats.latency_us_total += lat;
	kd->totals.latency_us_total += lat;
	if (lat > ch->stats.latency_us_max)
		ch->stats.latency_us_max = lat;
	if (lat > kd->totals.latency_us_max)
		kd->totals.latency_us_max = lat;
	wake = keyd_chan_settled(ch);
	last = --ch->refs == 0;
	pthread_mutex_unlock(&kd->lock);

	if (wake)
		ev_async_send(kd->loop, &kd->wake);
	if (last)
		keyd_chan_free(ch);
}

/*
 * IPC_CANCEL: the worker gave up on request hdr.id (its client left, or
 * keyd-timeout passed).  If no signer has taken it yet it is dropped
 * unanswered: keyd's time goes to handshakes that still wait.  Nothing is
 * answered either way.
 */
static void
keyd_chan_cancel(struct keyd *kd, struct keyd_chan *ch,
    const struct ipc_msg *msg)
{
	struct keyd_job *job;
	int wake = 0;

	if (msg->hdr.len != 0) {
		keyd_out_fail(kd, ch, msg->hdr.id, -EBADMSG, KEYD_FAIL_ERROR,
		    "CANCEL carries no payload");
		return;
	}
	if ((job = keyd_signer_take(&kd->signer, &ch->sq, msg->hdr.id)) == NULL)
		return;		/* running, or answered already */
	keyd_signer_job_free(job);
	pthread_mutex_lock(&kd->lock);
	KEYD_COUNT(kd, ch, cancelled);
	wake = keyd_chan_settled(ch);
	ch->refs--;	/* the job's; ours keeps ch alive */
	pthread_mutex_unlock(&kd->lock);
	if (wake)
		ev_async_send(kd->loop, &kd->wake);
}

/*
 * Main thread: queue request msg, which the policy accepted, on ch for the
 * signer threads.  The job holds a reference on ch and on key k.
 */
static void
keyd_chan_queue(struct keyd *kd, struct keyd_chan *ch, struct ipc_msg *msg,
    uint64_t t_recv, struct keystore_key *k, const uint8_t *data, size_t len,
    uint32_t sign_algo, uint32_t form)
{
	struct keyd_key_limit *kl = &kd->keylim[keystore_key_info(k)->key_id];
	struct keyd_job *job;
	int pause = 0;

	/* What the policy accepted still costs a signer: the key's limit. */
	if (!keyd_limit_bucket_take(&kl->bucket, kl->rate, kl->burst, t_recv)) {
		keyd_out_limited(kd, ch, msg->hdr.id,
		    "over the key's rate limit");
		return;
	}
	if ((job = keyd_signer_job_new(k, msg->hdr.type, data, len)) == NULL) {
		keyd_out_fail(kd, ch, msg->hdr.id, -ENOMEM, KEYD_FAIL_ERROR,
		    "out of memory");
		return;
	}
	job->done = keyd_chan_job_done;
	job->arg = ch;
	job->id = msg->hdr.id;
	job->t_recv = t_recv;
	job->sign_algo = sign_algo;
	job->form = form;
	pthread_mutex_lock(&kd->lock);
	ch->pending++;
	ch->refs++;	/* the job's, released by keyd_chan_job_done() */
	if (ch->pending >= KEYD_PENDING_MAX && !ch->paused) {
		ch->paused = 1;
		pause = 1;
	}
	pthread_mutex_unlock(&kd->lock);
	keyd_signer_submit(&kd->signer, &ch->sq, job);
	if (pause)
		ev_io_stop(kd->loop, &ch->rio);
}

static void
keyd_chan_sign(struct keyd *kd, struct keyd_chan *ch, struct ipc_msg *msg,
    uint64_t t_recv)
{
	struct ipc_sign_req req;
	struct keystore_key *k;
	const char *why;
	int r;

	if ((r = ipc_sign_decode(msg->payload, msg->hdr.len, &req)) < 0) {
		keyd_out_fail(kd, ch, msg->hdr.id, -EBADMSG, KEYD_FAIL_ERROR,
		    "malformed sign request");
		return;
	}
	k = keystore_get(&kd->ks, req.key_id);
	if ((r = policy_sign_check(k != NULL ? keystore_key_info(k) : NULL,
	    k != NULL ? keystore_key_flags(k) : 0, &req, &why)) < 0) {
		keyd_out_fail(kd, ch, msg->hdr.id, r, r == -EBADMSG ?
		    KEYD_FAIL_ERROR : KEYD_FAIL_REFUSED, "sign key %u algorithm "
		    "%u form %u (%zu bytes): %s", req.key_id, req.sign_algo,
		    req.form, req.data_len, why);
		return;
	}
	keyd_chan_queue(kd, ch, msg, t_recv, k, req.data, req.data_len,
	    req.sign_algo, req.form);
}

static void
keyd_chan_decrypt(struct keyd *kd, struct keyd_chan *ch, struct ipc_msg *msg,
    uint64_t t_recv)
{
	struct ipc_decrypt_req req;
	struct keystore_key *k;
	const char *why;
	int r;

	if ((r = ipc_decrypt_decode(msg->payload, msg->hdr.len, &req)) < 0) {
		keyd_out_fail(kd, ch, msg->hdr.id, -EBADMSG, KEYD_FAIL_ERROR,
		    "malformed decrypt request");
		return;
	}
	k = keystore_get(&kd->ks, req.key_id);
	if ((r = policy_decrypt_check(k != NULL ? keystore_key_info(k) : NULL,
	    k != NULL ? keystore_key_flags(k) : 0, &req, &why)) < 0) {
		keyd_out_fail(kd, ch, msg->hdr.id, r, r == -EBADMSG ?
		    KEYD_FAIL_ERROR : KEYD_FAIL_REFUSED, "decrypt key %u: %s",
		    req.key_id, why);
		return;
	}
	keyd_chan_queue(kd, ch, msg, t_recv, k, req.data, req.data_len, 0, 0);
}

static void
keyd_chan_key_list(struct keyd *kd, struct keyd_chan *ch, struct ipc_msg *msg)
{
	struct ipc_key_info keys[IPC_MAX_KEYS_HELD];
	uint8_t buf[sizeof(uint32_t) + sizeof(keys)];
	unsigned n;
	ssize_t len;

	if (msg->hdr.len != 0) {
		keyd_out_fail(kd, ch, msg->hdr.id, -EBADMSG, KEYD_FAIL_ERROR,
		    "KEY_LIST takes no payload");
		return;
	}
	n = keystore_list(&kd->ks, keys, IPC_MAX_KEYS_HELD);
	if ((len = ipc_key_list_encode(buf, sizeof(buf), keys, n)) < 0) {
		keyd_out_fail(kd, ch, msg->hdr.id, (int)len, KEYD_FAIL_ERROR,
		    "cannot encode the key list");
		return;
	}
	(void)keyd_out_send(kd, ch, IPC_KEY_LIST_REPLY, msg->hdr.id, buf,
	    (size_t)len);
}

/*
 * One message from a worker.  Returns -1 if the channel was closed.  Bad
 * payloads of known types get IPC_ERROR; a bad hello closes the channel.
 */
static int
keyd_dispatch_worker(struct keyd *kd, struct keyd_chan *ch,
    struct ipc_msg *msg)
{
	uint64_t t_recv = keyd_out_now_us();
	unsigned i;
	int r;

	if (msg->nfds > 0) {
		/* ipc_recv() refuses these already; never a plain close. */
		for (i = 0; i < msg->nfds; i++)
			ipc_fd_discard(msg->fds[i]);
		msg->nfds = 0;
		keyd_out_fail(kd, ch, msg->hdr.id, -EBADMSG, KEYD_FAIL_ERROR,
		    "%s carried file descriptors", ipc_type_name(msg->hdr.type));
		return 0;
	}
	if (!ch->hello_done) {
		if ((r = ipc_hello_check(msg, IPC_ROLE_WORKER)) < 0) {
			log_warnx("%s: worker %u: bad hello (%s, %s)", __func__,
			    ch->worker, ipc_type_name(msg->hdr.type),
			    strerror(-r));
			pthread_mutex_lock(&kd->lock);
			KEYD_COUNT(kd, ch, errors);
			pthread_mutex_unlock(&kd->lock);
			keyd_chan_close(kd, ch, "bad hello");
			return -1;
		}
		ch->hello_done = 1;
		return 0;
	}

	pthread_mutex_lock(&kd->lock);
	KEYD_COUNT(kd, ch, requests);
	pthread_mutex_unlock(&kd->lock);
	/*
	 * Every request counts against the channel's bucket, whatever its
	 * type and however malformed: each costs the main thread work.
	 */
	if (!keyd_limit_bucket_take(&ch->bucket, kd->rate, kd->burst,
	    t_recv)) {
		keyd_out_limited(kd, ch, msg->hdr.id,
		    "over the channel's rate limit");
		return 0;
	}

	switch (msg->hdr.type) {
	case IPC_KEY_LIST:
		keyd_chan_key_list(kd, ch, msg);
		break;
	case IPC_SIGN:
		keyd_chan_sign(kd, ch, msg, t_recv);
		break;
	case IPC_DECRYPT:
		keyd_chan_decrypt(kd, ch, msg, t_recv);
		break;
	case IPC_CANCEL:
		keyd_chan_cancel(kd, ch, msg);
		break;
	default:
		keyd_out_fail(kd, ch, msg->hdr.id, -EOPNOTSUPP,
		    KEYD_FAIL_ERROR, "%s is not a worker request",
		    ipc_type_name(msg->hdr.type));
		break;
	}
	return 0;
}

static void
keyd_chan_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct keyd *kd = ev_userdata(loop);
	struct keyd_chan *ch = container_of(w, struct keyd_chan, rio);
	int i, r;

	if (ch->magic != KEYD_CHAN_MAGIC)
		fatalx("%s: corrupt channel %p", __func__, (void *)ch);

	for (i = 0; i < KEYD_READ_BATCH; i++) {
		r = ipc_recv(ch->fd, &keyd_worker_ends, &kd->msg);
		if (r == -EAGAIN || r == -EINTR)
			return;
		if (r == 0) {
			keyd_chan_close(kd, ch, "closed by the worker");
			return;
		}
		if (r < 0) {
			/* A bad header: we cannot trust this stream any more. */
			log_warnx("%s: worker %u: bad message: %s; closing its "
			    "channel", __func__, ch->worker, strerror(-r));
			pthread_mutex_lock(&kd->lock);
			KEYD_COUNT(kd, ch, errors);
			pthread_mutex_unlock(&kd->lock);
			keyd_chan_close(kd, ch, "bad message");
			return;
		}
		if (keyd_dispatch_worker(kd, ch, &kd->msg) < 0)
			return;
		if (ch->paused)
			return;
	}
}

static void
keyd_chan_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct keyd *kd = ev_userdata(loop);
	struct keyd_chan *ch = container_of(w, struct keyd_chan, wio);
	struct keyd_out *o;
	int r;

	for (;;) {
		pthread_mutex_lock(&kd->lock);
		if ((o = TAILQ_FIRST(&ch->outq)) == NULL) {
			ch->want_write = 0;
			pthread_mutex_unlock(&kd->lock);
			ev_io_stop(loop, w);
			return;
		}
		TAILQ_REMOVE(&ch->outq, o, entry);
		ch->noutq--;
		pthread_mutex_unlock(&kd->lock);

		r = ipc_send(ch->fd, o->type, o->id, o->data, o->len, NULL, 0);
		if (r == -EAGAIN) {
			pthread_mutex_lock(&kd->lock);
			TAILQ_INSERT_HEAD(&ch->outq, o, entry);
			ch->noutq++;
			pthread_mutex_unlock(&kd->lock);
			return;
		}
		keyd_out_free(o);
		if (r < 0) {
			log_warnx("%s: worker %u: send: %s", __func__, ch->worker,
			    strerror(-r));
			keyd_chan_close(kd, ch, "send failed");
			return;
		}
	}
}

/* Signer threads ask the main thread to touch watchers through this. */
static void
keyd_chan_wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct keyd *kd = ev_userdata(loop);
	struct keyd_chan *ch, *next;
	int close_req, want_write, resume;

	for (ch = TAILQ_FIRST(&kd->chans); ch != NULL; ch = next) {
		next = TAILQ_NEXT(ch, entry);
		pthread_mutex_lock(&kd->lock);
		close_req = ch->close_req;
		want_write = ch->want_write;
		resume = ch->resume_req;
		ch->resume_req = 0;
		if (resume)
			ch->paused = 0;
		pthread_mutex_unlock(&kd->lock);

		if (close_req) {
			log_warnx("worker %u does not read its replies",
			    ch->worker);
			keyd_chan_close(kd, ch, "out queue overflow");
			continue;
		}
		if (want_write && !ev_is_active(&ch->wio))
			ev_io_start(loop, &ch->wio);
		if (resume && !ev_is_active(&ch->rio))
			ev_io_start(loop, &ch->rio);
	}
}

/*
 * Main thread, once the loop exists: the channel list and the wake-up
 * watcher.  Started now, so libev creates its eventfd before the sandbox.
 */
void
keyd_chan_init(struct keyd *kd)
{
	TAILQ_INIT(&kd->chans);
	ev_async_init(&kd->wake, keyd_chan_wake_cb);
	ev_async_start(kd->loop, &kd->wake);
	ev_timer_init(&kd->rl_timer, keyd_chan_rl_timer_cb,
	    (double)KEYD_LIMIT_REPORT_US / 1e6,
	    (double)KEYD_LIMIT_REPORT_US / 1e6);
	ev_timer_start(kd->loop, &kd->rl_timer);
}

/*
 * Serve the worker channel fd the master handed over (IPC_CHANNEL_ADD):
 * make it non-blocking, send our hello and start reading.  Returns 0 or a
 * negative errno; the fd is ours either way (closed on failure).
 */
int
keyd_chan_add(struct keyd *kd, int fd, const struct ipc_channel *ic)
{
	struct keyd_chan *ch;
	int r, flags;

	if ((flags = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
	    (ch = calloc(1, sizeof(*ch))) == NULL) {
		r = -errno;
		log_warn("%s: worker %u", __func__, ic->worker);
		close(fd);
		return r;
	}
	ch->magic = KEYD_CHAN_MAGIC;
	ch->kd = kd;
	ch->fd = fd;
	ch->refs = 1;
	ch->worker = ic->worker;
	ch->generation = ic->generation;
	keyd_limit_bucket_init(&ch->bucket, kd->burst, keyd_out_now_us());
	keyd_signer_queue_init(&ch->sq);
	TAILQ_INIT(&ch->outq);
	ev_io_init(&ch->rio, keyd_chan_read_cb, fd, EV_READ);
	ev_io_init(&ch->wio, keyd_chan_write_cb, fd, EV_WRITE);

	if ((r = ipc_hello_send(fd, IPC_ROLE_KEYD)) < 0) {
		log_warnx("%s: worker %u: hello: %s", __func__, ic->worker,
		    strerror(-r));
		keyd_chan_free(ch);
		return r;
	}
	TAILQ_INSERT_TAIL(&kd->chans, ch, entry);
	pthread_mutex_lock(&kd->lock);
	kd->nchans++;
	pthread_mutex_unlock(&kd->lock);
	ev_io_start(kd->loop, &ch->rio);
	log_info("serving worker %u (generation %u)", ic->worker,
	    ic->generation);
	return 0;
}

/* Shutdown, after the signers have stopped: close every channel. */
void
keyd_chan_close_all(struct keyd *kd)
{
	struct keyd_chan *ch;

	while ((ch = TAILQ_FIRST(&kd->chans)) != NULL)
		keyd_chan_close(kd, ch, "keyd exiting");
	ev_async_stop(kd->loop, &kd->wake);
	ev_timer_stop(kd->loop, &kd->rl_timer);
}
