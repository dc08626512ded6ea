/*
 * keyd.c -- moat-keyd: holds the private keys and signs for the workers.
 *
 * The master starts it with fork + exec and gives it one control channel
 * (--control-fd).  Start-up: options, gnutls_global_init() (it reads the
 * system crypto policy, so before the sandbox), resolve the user and check
 * the chroot directory, create the libev loop (epoll fd, eventfd), drop
 * privileges (privdrop_apply), start the signer threads, load the seccomp
 * filter (sandbox_keyd.c, synchronised to every thread), then send
 * IPC_HELLO(KEYD) on the control channel and serve.  keyd never opens a
 * file: keys arrive as fds with IPC_KEY_LOAD, worker channels as fds with
 * IPC_CHANNEL_ADD.  EOF on the control channel (the master is gone) ends it.
 *
 * Threads.  The main thread runs the libev loop.  It reads the control
 * channel and every worker channel, answers what is cheap (hello, key list,
 * stats, errors), and checks every sign or decrypt request against the
 * policy (policy.c) and the channel's token bucket before queuing it.  The
 * --threads signer threads (default: one per online CPU) do the private-key
 * operations.  Jobs are queued per channel; channels with queued jobs sit
 * on one run queue, and a signer takes ONE job from the channel at its head
 * and puts that channel back at the tail.  That is round-robin per request:
 * a channel that floods keyd gets its turn and no more, and the others keep
 * being served.  The main thread reads at most KEYD_READ_BATCH messages
 * from a channel per loop turn, and stops reading a channel that has
 * KEYD_PENDING_MAX requests outstanding until half of them are answered, so
 * the kernel pushes back on that one worker only.  A shared pool rather
 * than channels pinned to threads lets one busy worker use every CPU.
 *
 * Replies are sent by the thread that finished the request.  If the socket
 * is full (EAGAIN) the reply waits on the channel's out queue, which the
 * main thread flushes when the channel becomes writable: no thread ever
 * blocks on a worker that does not read.  A worker whose out queue
 * overflows loses its channel.
 *
 * The signer threads are created after privdrop_apply(): capabilities, the
 * bounding set and no_new_privs belong to each thread, so threads made
 * earlier would keep what the main thread dropped.  Made afterwards they
 * inherit the dropped state, and the filter (loaded after them, with
 * SCMP_FLTATR_CTL_TSYNC) covers them all.
 *
 * Locking: keyd.lock guards the run queue, every channel's job queue, out
 * queue, flags, reference count and counters, and the totals.  The channel
 * list, the key store and every libev watcher belong to the main thread.
 * A channel lives while the main thread or a job holds a reference; its fd
 * is closed with the last one, so a late reply can never reach a reused fd.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>

#include "ipc.h"
#include "keystore.h"
#include "log.h"
#include "policy.h"
#include "privdrop.h"
#include "sandbox_keyd.h"

#define KEYD_READ_BATCH		32	/* messages per channel per loop turn */
#define KEYD_PENDING_MAX	4096	/* outstanding requests per channel */
#define KEYD_PENDING_RESUME	2048
#define KEYD_OUTQ_MAX		(KEYD_PENDING_MAX + 1024)
#define KEYD_MAX_THREADS	256
#define KEYD_RATE_DEFAULT	20000u	/* requests per second per channel */
#define KEYD_BURST_DEFAULT	5000u
#define KEYD_LOG_WINDOW_US	(10ull * 1000000ull)
#define KEYD_LOG_PER_WINDOW	10u
#define KEYD_CHAN_MAGIC		0x6b644348u	/* "kdCH" */
#define KEYD_REPLY_MAX		(2 * sizeof(uint32_t) + IPC_MAX_SIG)

#define KEYD_DEFAULT_USER	"moat-keyd"
#define KEYD_DEFAULT_CHROOT	"/var/lib/moat/empty"

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* A reply that found the socket full; the main thread sends it later. */
struct keyd_out {
	TAILQ_ENTRY(keyd_out)	entry;
	uint16_t		type;
	uint32_t		id;
	size_t			len;
	uint8_t			data[];
};

/* A checked request waiting for (or in) a signer thread. */
struct keyd_job {
	TAILQ_ENTRY(keyd_job)	entry;
	struct keyd_chan	*chan;	/* holds a reference */
	struct keystore_key	*key;	/* holds a reference */
	uint16_t		type;	/* IPC_SIGN or IPC_DECRYPT */
	uint32_t		id;
	uint32_t		sign_algo;
	uint32_t		form;
	uint64_t		t_recv;	/* monotonic us */
	size_t			len;
	uint8_t			data[];
};

/* What a failure counts as. */
enum keyd_fail {
	KEYD_FAIL_ERROR,	/* malformed input, failed operation */
	KEYD_FAIL_REFUSED,	/* the policy said no */
	KEYD_FAIL_LIMITED,	/* over the channel's rate */
};

struct keyd_chan {
	uint32_t		magic;
	TAILQ_ENTRY(keyd_chan)	entry;	/* keyd.chans (main thread) */
	TAILQ_ENTRY(keyd_chan)	run;	/* keyd.runq (locked) */
	TAILQ_HEAD(, keyd_job)	jobs;
	TAILQ_HEAD(, keyd_out)	outq;
	unsigned		noutq;
	unsigned		pending;	/* queued + running */
	int			refs;
	int			in_runq;
	int			dead;
	int			close_req;	/* out queue overflowed */
	int			want_write;
	int			paused;		/* not reading: too much pending */
	int			resume_req;
	int			hello_done;	/* main thread */
	int			fd;
	uint32_t		worker;
	uint32_t		generation;
	ev_io			rio;
	ev_io			wio;
	struct ipc_keyd_stats	stats;
	double			tokens;		/* main thread */
	uint64_t		tb_last;
	uint64_t		log_window;
	unsigned		log_count;
	uint64_t		log_suppressed;
};

struct keyd {
	struct ev_loop		*loop;
	ev_io			ctl_io;
	ev_async		wake;
	int			ctl_fd;
	int			master_hello;
	pthread_mutex_t		lock;
	pthread_cond_t		cond;
	TAILQ_HEAD(, keyd_chan)	chans;
	TAILQ_HEAD(, keyd_chan)	runq;
	unsigned		nchans;
	unsigned		queue_depth;
	struct ipc_keyd_stats	totals;
	int			stopping;
	pthread_t		*threads;
	unsigned		nthreads;
	unsigned		nstarted;
	unsigned		nrunning;	/* signers past thread start-up */
	unsigned		sign_delay_ms;
	double			rate;
	double			burst;
	int			seccomp_trap;
	struct keystore		ks;
	struct ipc_msg		msg;	/* main thread's receive buffer */
};

static const struct ipc_ends keyd_worker_ends = { IPC_ROLE_KEYD, IPC_ROLE_WORKER };
static const struct ipc_ends keyd_master_ends = { IPC_ROLE_KEYD, IPC_ROLE_MASTER };

#define KEYD_COUNT(kd, ch, field) do {					\
	(ch)->stats.field++;						\
	(kd)->totals.field++;						\
} while (0)

static uint64_t
keyd_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void
keyd_out_free(struct keyd_out *o)
{
	/* Replies may hold a decrypted premaster secret. */
	gnutls_memset(o->data, 0, o->len);
	free(o);
}

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

/*
 * Log a refusal or error on a channel, at most KEYD_LOG_PER_WINDOW lines
 * per window, then one line saying how many were left out.
 */
static void
keyd_chan_log(struct keyd *kd, struct keyd_chan *ch, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
keyd_chan_log(struct keyd *kd, struct keyd_chan *ch, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	uint64_t now = keyd_now_us(), dropped = 0;
	int show;

	pthread_mutex_lock(&kd->lock);
	if (now - ch->log_window >= KEYD_LOG_WINDOW_US) {
		dropped = ch->log_suppressed;
		ch->log_window = now;
		ch->log_count = 0;
		ch->log_suppressed = 0;
	}
	show = ch->log_count < KEYD_LOG_PER_WINDOW;
	if (show)
		ch->log_count++;
	else
		ch->log_suppressed++;
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
static int
keyd_chan_send(struct keyd *kd, struct keyd_chan *ch, uint16_t type,
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
static void
keyd_chan_error(struct keyd *kd, struct keyd_chan *ch, uint32_t id, int code,
    const char *msg)
{
	struct ipc_error e;

	memset(&e, 0, sizeof(e));
	e.code = code < 0 ? code : -EINVAL;
	snprintf(e.msg, sizeof(e.msg), "%s", msg);
	(void)keyd_chan_send(kd, ch, IPC_ERROR, id, &e, sizeof(e));
}

/* Count, log and answer a request that will not be served. */
static void
keyd_chan_fail(struct keyd *kd, struct keyd_chan *ch, uint32_t id, int code,
    enum keyd_fail kind, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void
keyd_chan_fail(struct keyd *kd, struct keyd_chan *ch, uint32_t id, int code,
    enum keyd_fail kind, const char *fmt, ...)
{
	char msg[IPC_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	pthread_mutex_lock(&kd->lock);
	switch (kind) {
	case KEYD_FAIL_REFUSED:
		KEYD_COUNT(kd, ch, refused);
		break;
	case KEYD_FAIL_LIMITED:
		KEYD_COUNT(kd, ch, rate_limited);
		break;
	case KEYD_FAIL_ERROR:
		KEYD_COUNT(kd, ch, errors);
		break;
	}
	pthread_mutex_unlock(&kd->lock);

	keyd_chan_log(kd, ch, "request %u %s (%s): %s", id,
	    kind == KEYD_FAIL_REFUSED ? "refused" :
	    kind == KEYD_FAIL_LIMITED ? "rate limited" : "failed",
	    strerror(code < 0 ? -code : EINVAL), msg);
	keyd_chan_error(kd, ch, id, code, msg);
}

/* Main thread: stop serving ch, drop its queued jobs, release our ref. */
static void
keyd_chan_close(struct keyd *kd, struct keyd_chan *ch, const char *why)
{
	TAILQ_HEAD(, keyd_job) drop;
	struct keyd_job *job;
	struct ipc_keyd_stats st;
	int last;

	ev_io_stop(kd->loop, &ch->rio);
	ev_io_stop(kd->loop, &ch->wio);
	TAILQ_REMOVE(&kd->chans, ch, entry);
	TAILQ_INIT(&drop);

	pthread_mutex_lock(&kd->lock);
	ch->dead = 1;
	if (ch->in_runq) {
		TAILQ_REMOVE(&kd->runq, ch, run);
		ch->in_runq = 0;
	}
	while ((job = TAILQ_FIRST(&ch->jobs)) != NULL) {
		TAILQ_REMOVE(&ch->jobs, job, entry);
		TAILQ_INSERT_TAIL(&drop, job, entry);
		ch->pending--;
		kd->queue_depth--;
		ch->refs--;	/* the job's; ours keeps ch alive */
	}
	kd->nchans--;
	st = ch->stats;
	last = --ch->refs == 0;
	pthread_mutex_unlock(&kd->lock);

	while ((job = TAILQ_FIRST(&drop)) != NULL) {
		TAILQ_REMOVE(&drop, job, entry);
		keystore_key_unref(job->key);
		free(job);
	}
	log_info("worker %u channel (generation %u) closed: %s; requests %llu, "
	    "refused %llu, errors %llu, rate limited %llu", ch->worker,
	    ch->generation, why, (unsigned long long)st.requests,
	    (unsigned long long)st.refused, (unsigned long long)st.errors,
	    (unsigned long long)st.rate_limited);
	if (last)
		keyd_chan_free(ch);
}

/* Token bucket: kd->rate per second, up to kd->burst at once. */
static int
keyd_rate_ok(struct keyd *kd, struct keyd_chan *ch)
{
	uint64_t now;

	if (kd->rate <= 0)
		return 1;
	now = keyd_now_us();
	ch->tokens += (double)(now - ch->tb_last) * kd->rate / 1e6;
	if (ch->tokens > kd->burst)
		ch->tokens = kd->burst;
	ch->tb_last = now;
	if (ch->tokens < 1.0)
		return 0;
	ch->tokens -= 1.0;
	return 1;
}

/* Main thread: hand a checked request to the signer threads. */
static void
keyd_job_queue(struct keyd *kd, struct keyd_chan *ch, struct keyd_job *job)
{
	int pause = 0;

	job->chan = ch;
	pthread_mutex_lock(&kd->lock);
	TAILQ_INSERT_TAIL(&ch->jobs, job, entry);
	ch->pending++;
	ch->refs++;
	kd->queue_depth++;
	if (!ch->in_runq) {
		TAILQ_INSERT_TAIL(&kd->runq, ch, run);
		ch->in_runq = 1;
	}
	if (ch->pending >= KEYD_PENDING_MAX && !ch->paused) {
		ch->paused = 1;
		pause = 1;
	}
	pthread_cond_signal(&kd->cond);
	pthread_mutex_unlock(&kd->lock);
	if (pause)
		ev_io_stop(kd->loop, &ch->rio);
}

static struct keyd_job *
keyd_job_new(struct keystore_key *k, uint16_t type, uint32_t id,
    const uint8_t *data, size_t len, uint64_t t_recv)
{
	struct keyd_job *job;

	if ((job = malloc(sizeof(*job) + len)) == NULL)
		return NULL;
	memset(job, 0, sizeof(*job));
	job->type = type;
	job->id = id;
	job->t_recv = t_recv;
	job->len = len;
	memcpy(job->data, data, len);
	keystore_key_ref(k);
	job->key = k;
	return job;
}

static void
keyd_worker_sign(struct keyd *kd, struct keyd_chan *ch, struct ipc_msg *msg,
    uint64_t t_recv)
{
	struct ipc_sign_req req;
	struct keystore_key *k;
	struct keyd_job *job;
	const char *why;
	int r;

	if ((r = ipc_sign_decode(msg->payload, msg->hdr.len, &req)) < 0) {
		keyd_chan_fail(kd, ch, msg->hdr.id, -EBADMSG, KEYD_FAIL_ERROR,
		    "malformed sign request");
		return;
	}
	k = keystore_get(&kd->ks, req.key_id);
	if ((r = policy_sign_check(k != NULL ? keystore_key_info(k) : NULL,
	    &req, &why)) < 0) {
		keyd_chan_fail(kd, ch, msg->hdr.id, r, r == -EBADMSG ?
		    KEYD_FAIL_ERROR : KEYD_FAIL_REFUSED, "sign key %u algorithm "
		    "%u form %u (%zu bytes): %s", req.key_id, req.sign_algo,
		    req.form, req.data_len, why);
		return;
	}
	if ((job = keyd_job_new(k, IPC_SIGN, msg->hdr.id, req.data,
	    req.data_len, t_recv)) == NULL) {
		keyd_chan_fail(kd, ch, msg->hdr.id, -ENOMEM, KEYD_FAIL_ERROR,
		    "out of memory");
		return;
	}
	job->sign_algo = req.sign_algo;
	job->form = req.form;
	keyd_job_queue(kd, ch, job);
}

static void
keyd_worker_decrypt(struct keyd *kd, struct keyd_chan *ch,
    struct ipc_msg *msg, uint64_t t_recv)
{
	struct ipc_decrypt_req req;
	struct keystore_key *k;
	struct keyd_job *job;
	const char *why;
	int r;

	if ((r = ipc_decrypt_decode(msg->payload, msg->hdr.len, &req)) < 0) {
		keyd_chan_fail(kd, ch, msg->hdr.id, -EBADMSG, KEYD_FAIL_ERROR,
		    "malformed decrypt request");
		return;
	}
	k = keystore_get(&kd->ks, req.key_id);
	if ((r = policy_decrypt_check(k != NULL ? keystore_key_info(k) : NULL,
	    k != NULL ? keystore_key_flags(k) : 0, &req, &why)) < 0) {
		keyd_chan_fail(kd, ch, msg->hdr.id, r, r == -EBADMSG ?
		    KEYD_FAIL_ERROR : KEYD_FAIL_REFUSED, "decrypt key %u: %s",
		    req.key_id, why);
		return;
	}
	if ((job = keyd_job_new(k, IPC_DECRYPT, msg->hdr.id, req.data,
	    req.data_len, t_recv)) == NULL) {
		keyd_chan_fail(kd, ch, msg->hdr.id, -ENOMEM, KEYD_FAIL_ERROR,
		    "out of memory");
		return;
	}
	keyd_job_queue(kd, ch, job);
}

static void
keyd_worker_key_list(struct keyd *kd, struct keyd_chan *ch,
    struct ipc_msg *msg)
{
	struct ipc_key_info keys[IPC_MAX_KEYS];
	uint8_t buf[sizeof(uint32_t) + sizeof(keys)];
	unsigned n;
	ssize_t len;

	if (msg->hdr.len != 0) {
		keyd_chan_fail(kd, ch, msg->hdr.id, -EBADMSG, KEYD_FAIL_ERROR,
		    "KEY_LIST takes no payload");
		return;
	}
	n = keystore_list(&kd->ks, keys, IPC_MAX_KEYS);
	if ((len = ipc_key_list_encode(buf, sizeof(buf), keys, n)) < 0) {
		keyd_chan_fail(kd, ch, msg->hdr.id, (int)len, KEYD_FAIL_ERROR,
		    "cannot encode the key list");
		return;
	}
	(void)keyd_chan_send(kd, ch, IPC_KEY_LIST_REPLY, msg->hdr.id, buf,
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
	uint64_t t_recv = keyd_now_us();
	int r;

	if (msg->nfds > 0) {
		ipc_msg_close_fds(msg);
		keyd_chan_fail(kd, ch, msg->hdr.id, -EBADMSG, KEYD_FAIL_ERROR,
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

	switch (msg->hdr.type) {
	case IPC_KEY_LIST:
		keyd_worker_key_list(kd, ch, msg);
		break;
	case IPC_SIGN:
	case IPC_DECRYPT:
		/* Key operations are what the per-channel limit bounds. */
		if (!keyd_rate_ok(kd, ch)) {
			keyd_chan_fail(kd, ch, msg->hdr.id, -EBUSY,
			    KEYD_FAIL_LIMITED, "over the channel's rate limit");
			break;
		}
		if (msg->hdr.type == IPC_SIGN)
			keyd_worker_sign(kd, ch, msg, t_recv);
		else
			keyd_worker_decrypt(kd, ch, msg, t_recv);
		break;
	default:
		keyd_chan_fail(kd, ch, msg->hdr.id, -EOPNOTSUPP,
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
keyd_wake_cb(struct ev_loop *loop, ev_async *w, int revents)
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

/* Signer thread: the request is done; count it and release it. */
static void
keyd_job_done(struct keyd *kd, struct keyd_job *job, int ok, int stat)
{
	struct keyd_chan *ch = job->chan;
	uint64_t lat = keyd_now_us() - job->t_recv;
	int last, wake = 0;

	pthread_mutex_lock(&kd->lock);
	if (ok && job->type == IPC_SIGN && stat >= 0 && stat < IPC_STAT_NALGOS)
		KEYD_COUNT(kd, ch, signs[stat]);
	else if (ok)
		KEYD_COUNT(kd, ch, decrypts);
	else
		KEYD_COUNT(kd, ch, errors);
	ch->stats.latency_us_total += lat;
	kd->totals.latency_us_total += lat;
	if (lat > ch->stats.latency_us_max)
		ch->stats.latency_us_max = lat;
	if (lat > kd->totals.latency_us_max)
		kd->totals.latency_us_max = lat;
	ch->pending--;
	kd->queue_depth--;
	if (ch->paused && !ch->dead && ch->pending <= KEYD_PENDING_RESUME &&
	    !ch->resume_req) {
		ch->resume_req = 1;
		wake = 1;
	}
	last = --ch->refs == 0;
	pthread_mutex_unlock(&kd->lock);

	if (wake)
		ev_async_send(kd->loop, &kd->wake);
	keystore_key_unref(job->key);
	free(job);
	if (last)
		keyd_chan_free(ch);
}

/* Signer thread: do one private-key operation and answer it. */
static void
keyd_job_run(struct keyd *kd, struct keyd_job *job)
{
	struct keyd_chan *ch = job->chan;
	struct ipc_sign_req sreq;
	struct ipc_decrypt_req dreq;
	struct ipc_reply rep;
	struct timespec ts;
	gnutls_datum_t out = { NULL, 0 };
	uint8_t buf[KEYD_REPLY_MAX];
	ssize_t len = -1;
	int r, stat = -1, ok = 0;

	if (ch->magic != KEYD_CHAN_MAGIC)
		fatalx("%s: corrupt channel %p", __func__, (void *)ch);
	if (kd->sign_delay_ms > 0) {
		ts.tv_sec = kd->sign_delay_ms / 1000;
		ts.tv_nsec = (long)(kd->sign_delay_ms % 1000) * 1000000L;
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}

	if (job->type == IPC_SIGN) {
		memset(&sreq, 0, sizeof(sreq));
		sreq.key_id = keystore_key_info(job->key)->key_id;
		sreq.sign_algo = job->sign_algo;
		sreq.form = job->form;
		sreq.data = job->data;
		sreq.data_len = job->len;
		stat = policy_sign_stat(job->sign_algo);
		r = keystore_sign(job->key, &sreq, &out);
	} else {
		memset(&dreq, 0, sizeof(dreq));
		dreq.key_id = keystore_key_info(job->key)->key_id;
		dreq.data = job->data;
		dreq.data_len = job->len;
		r = keystore_decrypt(job->key, &dreq, &out);
	}

	if (r >= 0) {
		memset(&rep, 0, sizeof(rep));
		rep.data = out.data;
		rep.data_len = out.size;
		len = ipc_reply_encode(buf, sizeof(buf), &rep);
	}
	if (r < 0 || len < 0) {
		keyd_chan_log(kd, ch, "request %u: %s failed: %s", job->id,
		    ipc_type_name(job->type), r < 0 ? gnutls_strerror(r) :
		    "result too large");
		keyd_chan_error(kd, ch, job->id, -EIO, r < 0 ?
		    gnutls_strerror(r) : "result too large");
	} else {
		ok = 1;
		(void)keyd_chan_send(kd, ch, job->type == IPC_SIGN ?
		    IPC_SIGN_REPLY : IPC_DECRYPT_REPLY, job->id, buf,
		    (size_t)len);
	}
	if (out.data != NULL) {
		gnutls_memset(out.data, 0, out.size);
		gnutls_free(out.data);
	}
	gnutls_memset(buf, 0, sizeof(buf));
	keyd_job_done(kd, job, ok, stat);
}

/* Signer thread: one job at a time, channels in round-robin order. */
static void *
keyd_signer(void *arg)
{
	struct keyd *kd = arg;
	struct keyd_chan *ch;
	struct keyd_job *job;

	pthread_mutex_lock(&kd->lock);
	kd->nrunning++;
	pthread_cond_broadcast(&kd->cond);
	pthread_mutex_unlock(&kd->lock);

	for (;;) {
		pthread_mutex_lock(&kd->lock);
		while (!kd->stopping && TAILQ_EMPTY(&kd->runq))
			pthread_cond_wait(&kd->cond, &kd->lock);
		if (kd->stopping) {
			pthread_mutex_unlock(&kd->lock);
			break;
		}
		/* A channel on the run queue always has a job queued. */
		ch = TAILQ_FIRST(&kd->runq);
		TAILQ_REMOVE(&kd->runq, ch, run);
		job = TAILQ_FIRST(&ch->jobs);
		TAILQ_REMOVE(&ch->jobs, job, entry);
		if (!TAILQ_EMPTY(&ch->jobs))
			TAILQ_INSERT_TAIL(&kd->runq, ch, run);
		else
			ch->in_runq = 0;
		pthread_mutex_unlock(&kd->lock);

		keyd_job_run(kd, job);
	}
	return NULL;
}

static void
keyd_stats_fill(struct keyd *kd, struct ipc_keyd_stats *st)
{
	pthread_mutex_lock(&kd->lock);
	*st = kd->totals;
	st->channels = kd->nchans;
	st->queue_depth = kd->queue_depth;
	pthread_mutex_unlock(&kd->lock);
	st->threads = kd->nthreads;
	st->keys = kd->ks.count;
}

static void
keyd_ctl_reply(struct keyd *kd, uint16_t type, uint32_t id, int status)
{
	struct ipc_reply rep;
	uint8_t buf[2 * sizeof(uint32_t)];
	ssize_t len;
	int r;

	memset(&rep, 0, sizeof(rep));
	rep.status = status < 0 ? status : 0;
	if ((len = ipc_reply_encode(buf, sizeof(buf), &rep)) < 0)
		fatalx("%s: cannot encode a status reply", __func__);
	if ((r = ipc_send(kd->ctl_fd, type, id, buf, (size_t)len, NULL, 0)) < 0)
		log_warnx("%s: %s: %s", __func__, ipc_type_name(type),
		    strerror(-r));
}

static void
keyd_master_key_load(struct keyd *kd, struct ipc_msg *msg)
{
	struct ipc_key_load kl;
	struct ipc_key_loaded res;
	int r;

	memset(&res, 0, sizeof(res));
	if ((r = ipc_key_load_decode(msg->payload, msg->hdr.len, &kl)) < 0) {
		res.status = -EBADMSG;
		snprintf(res.msg, sizeof(res.msg), "malformed KEY_LOAD");
	} else if (keystore_load(&kd->ks, &kl, msg->fds, msg->nfds, &res) < 0) {
		log_warnx("%s: key %u (%s): %s", __func__, kl.key_id, kl.name,
		    res.msg);
	} else {
		log_info("key %u (%s) %s: %s %u bits, %u signature algorithms",
		    kl.key_id, kl.name, res.msg,
		    gnutls_pk_get_name(res.info.pk_algo), res.info.bits,
		    res.info.nsign);
	}
	ipc_msg_close_fds(msg);
	if ((r = ipc_send(kd->ctl_fd, IPC_KEY_LOAD_REPLY, msg->hdr.id, &res,
	    sizeof(res), NULL, 0)) < 0)
		log_warnx("%s: reply: %s", __func__, strerror(-r));
}

static void
keyd_master_channel_add(struct keyd *kd, struct ipc_msg *msg)
{
	struct ipc_channel ic;
	struct keyd_chan *ch;
	int r, fd, flags;

	if ((r = ipc_channel_decode(msg->payload, msg->hdr.len, &ic)) < 0 ||
	    msg->nfds != 1) {
		log_warnx("%s: malformed CHANNEL_ADD (%u fds)", __func__,
		    msg->nfds);
		ipc_msg_close_fds(msg);
		keyd_ctl_reply(kd, IPC_CHANNEL_ADD_REPLY, msg->hdr.id, -EBADMSG);
		return;
	}
	fd = msg->fds[0];
	msg->nfds = 0;	/* the fd is ours now */
	if ((flags = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
	    (ch = calloc(1, sizeof(*ch))) == NULL) {
		r = -errno;
		log_warn("%s: worker %u", __func__, ic.worker);
		close(fd);
		keyd_ctl_reply(kd, IPC_CHANNEL_ADD_REPLY, msg->hdr.id, r);
		return;
	}
	ch->magic = KEYD_CHAN_MAGIC;
	ch->fd = fd;
	ch->refs = 1;
	ch->worker = ic.worker;
	ch->generation = ic.generation;
	ch->tokens = kd->burst;
	ch->tb_last = keyd_now_us();
	TAILQ_INIT(&ch->jobs);
	TAILQ_INIT(&ch->outq);
	ev_io_init(&ch->rio, keyd_chan_read_cb, fd, EV_READ);
	ev_io_init(&ch->wio, keyd_chan_write_cb, fd, EV_WRITE);

	if ((r = ipc_hello_send(fd, IPC_ROLE_KEYD)) < 0) {
		log_warnx("%s: worker %u: hello: %s", __func__, ic.worker,
		    strerror(-r));
		keyd_chan_free(ch);
		keyd_ctl_reply(kd, IPC_CHANNEL_ADD_REPLY, msg->hdr.id, r);
		return;
	}
	TAILQ_INSERT_TAIL(&kd->chans, ch, entry);
	pthread_mutex_lock(&kd->lock);
	kd->nchans++;
	pthread_mutex_unlock(&kd->lock);
	ev_io_start(kd->loop, &ch->rio);
	log_info("serving worker %u (generation %u)", ic.worker,
	    ic.generation);
	keyd_ctl_reply(kd, IPC_CHANNEL_ADD_REPLY, msg->hdr.id, 0);
}

/* One message from the master.  The master is trusted; keep it simple. */
static void
keyd_dispatch_master(struct keyd *kd, struct ipc_msg *msg)
{
	struct ipc_keyd_stats st;
	int r;

	if (!kd->master_hello) {
		if ((r = ipc_hello_check(msg, IPC_ROLE_MASTER)) < 0)
			fatalx("%s: bad hello from the master (%s): %s",
			    __func__, ipc_type_name(msg->hdr.type),
			    strerror(-r));
		kd->master_hello = 1;
		ipc_msg_close_fds(msg);
		return;
	}
	switch (msg->hdr.type) {
	case IPC_KEY_LOAD:
		keyd_master_key_load(kd, msg);
		break;
	case IPC_CHANNEL_ADD:
		keyd_master_channel_add(kd, msg);
		break;
	case IPC_KEYD_STATS:
		ipc_msg_close_fds(msg);
		keyd_stats_fill(kd, &st);
		if ((r = ipc_send(kd->ctl_fd, IPC_KEYD_STATS_REPLY, msg->hdr.id,
		    &st, sizeof(st), NULL, 0)) < 0)
			log_warnx("%s: stats reply: %s", __func__, strerror(-r));
		break;
	default:
		ipc_msg_close_fds(msg);
		log_warnx("%s: unexpected %s from the master", __func__,
		    ipc_type_name(msg->hdr.type));
		(void)ipc_error_send(kd->ctl_fd, msg->hdr.id, -EOPNOTSUPP,
		    "%s is not a keyd request", ipc_type_name(msg->hdr.type));
		break;
	}
}

static void
keyd_ctl_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct keyd *kd = ev_userdata(loop);
	int r;

	r = ipc_recv(kd->ctl_fd, &keyd_master_ends, &kd->msg);
	if (r == -EAGAIN || r == -EINTR)
		return;
	if (r == 0) {
		log_info("control channel closed, exiting");
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	if (r < 0) {
		log_warnx("%s: bad message from the master: %s; exiting",
		    __func__, strerror(-r));
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	keyd_dispatch_master(kd, &kd->msg);
}

static __dead void
keyd_usage(void)
{
	fprintf(stderr, "usage: moat-keyd --control-fd FD [--user USER] "
	    "[--chroot DIR] [--threads N]\n"
	    "                 [--sign-delay-ms N] [--rate-limit N] "
	    "[--rate-burst N]\n"
	    "                 [--log-level LEVEL] [--seccomp-trap]\n");
	exit(2);
}

static unsigned long
keyd_number(const char *opt, const char *s, unsigned long min,
    unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		fatalx("%s: %s must be a number from %lu to %lu", opt, s, min,
		    max);
	return v;
}

static void
keyd_start_threads(struct keyd *kd)
{
	unsigned i;
	int r;

	if ((kd->threads = calloc(kd->nthreads, sizeof(pthread_t))) == NULL)
		fatal("%s: calloc", __func__);
	for (i = 0; i < kd->nthreads; i++) {
		if ((r = pthread_create(&kd->threads[i], NULL, keyd_signer,
		    kd)) != 0) {
			errno = r;
			fatal("%s: pthread_create", __func__);
		}
		kd->nstarted++;
	}

	/*
	 * A new thread makes its own start-up calls (set_robust_list, rseq,
	 * sigprocmask) with every signal blocked; the filter must not land
	 * before that is done, or the thread dies on a call it never needs
	 * again.  Wait until every signer has reached its loop.
	 */
	pthread_mutex_lock(&kd->lock);
	while (kd->nrunning < kd->nstarted)
		pthread_cond_wait(&kd->cond, &kd->lock);
	pthread_mutex_unlock(&kd->lock);
}

static void
keyd_shutdown(struct keyd *kd)
{
	struct keyd_chan *ch;
	unsigned i;

	pthread_mutex_lock(&kd->lock);
	kd->stopping = 1;
	pthread_cond_broadcast(&kd->cond);
	pthread_mutex_unlock(&kd->lock);
	for (i = 0; i < kd->nstarted; i++)
		pthread_join(kd->threads[i], NULL);
	while ((ch = TAILQ_FIRST(&kd->chans)) != NULL)
		keyd_chan_close(kd, ch, "keyd exiting");
	keystore_clear(&kd->ks);
	ev_async_stop(kd->loop, &kd->wake);
	ev_io_stop(kd->loop, &kd->ctl_io);
	ev_loop_destroy(kd->loop);
	free(kd->threads);
}

int
main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "control-fd",		required_argument, NULL, 'c' },
		{ "user",		required_argument, NULL, 'u' },
		{ "chroot",		required_argument, NULL, 'C' },
		{ "threads",		required_argument, NULL, 't' },
		{ "sign-delay-ms",	required_argument, NULL, 'd' },
		{ "rate-limit",		required_argument, NULL, 'r' },
		{ "rate-burst",		required_argument, NULL, 'b' },
		{ "log-level",		required_argument, NULL, 'l' },
		{ "seccomp-trap",	no_argument,	   NULL, 'T' },
		{ "help",		no_argument,	   NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	static struct keyd keyd;
	struct keyd *kd = &keyd;
	struct privdrop pd;
	enum log_level level = LOG_LEVEL_INFO;
	const char *user = KEYD_DEFAULT_USER, *chroot_dir = KEYD_DEFAULT_CHROOT;
	sigset_t none;
	long ncpu;
	int c, r, type;
	socklen_t tlen = sizeof(type);

	log_init("moat-keyd", LOG_LEVEL_INFO);
	kd->ctl_fd = -1;
	kd->rate = KEYD_RATE_DEFAULT;
	kd->burst = KEYD_BURST_DEFAULT;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			kd->ctl_fd = (int)keyd_number("--control-fd", optarg, 0,
			    INT_MAX);
			break;
		case 'u':
			user = optarg;
			break;
		case 'C':
			chroot_dir = optarg;
			break;
		case 't':
			kd->nthreads = (unsigned)keyd_number("--threads", optarg,
			    0, KEYD_MAX_THREADS);
			break;
		case 'd':
			kd->sign_delay_ms = (unsigned)keyd_number(
			    "--sign-delay-ms", optarg, 0, 60000);
			break;
		case 'r':
			kd->rate = (double)keyd_number("--rate-limit", optarg, 0,
			    10000000);
			break;
		case 'b':
			kd->burst = (double)keyd_number("--rate-burst", optarg, 1,
			    10000000);
			break;
		case 'l':
			if (log_level_parse(optarg, &level) < 0)
				fatalx("--log-level: unknown level %s", optarg);
			log_setlevel(level);
			break;
		case 'T':
			kd->seccomp_trap = 1;
			break;
		default:
			keyd_usage();
		}
	}
	if (optind != argc || kd->ctl_fd < 0)
		keyd_usage();

	/* The master may have blocked signals for its own loop. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (getsockopt(kd->ctl_fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0)
		fatal("control fd %d", kd->ctl_fd);
	if (type != SOCK_SEQPACKET)
		fatalx("control fd %d is not a SOCK_SEQPACKET socket",
		    kd->ctl_fd);
	/* Replies to the master may block; requests are read one by one. */
	if ((c = fcntl(kd->ctl_fd, F_GETFL)) < 0 ||
	    fcntl(kd->ctl_fd, F_SETFL, c & ~O_NONBLOCK) < 0 ||
	    fcntl(kd->ctl_fd, F_SETFD, FD_CLOEXEC) < 0)
		fatal("control fd %d", kd->ctl_fd);

	if (kd->nthreads == 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		kd->nthreads = ncpu < 1 ? 1 : ncpu > KEYD_MAX_THREADS ?
		    KEYD_MAX_THREADS : (unsigned)ncpu;
	}

	if ((r = gnutls_global_init()) < 0)
		fatalx("gnutls_global_init: %s", gnutls_strerror(r));
	memset(&pd, 0, sizeof(pd));
	if ((r = privdrop_lookup(user, &pd)) < 0) {
		errno = -r;
		fatal("user %s", user);
	}
	if ((r = privdrop_prepare_chroot(chroot_dir)) < 0) {
		errno = -r;
		fatal("chroot directory %s", chroot_dir);
	}
	pd.chroot_dir = chroot_dir;

	pthread_mutex_init(&kd->lock, NULL);
	pthread_cond_init(&kd->cond, NULL);
	TAILQ_INIT(&kd->chans);
	TAILQ_INIT(&kd->runq);
	if ((kd->loop = ev_loop_new(EVFLAG_NOENV | EVBACKEND_EPOLL)) == NULL)
		fatalx("cannot create the event loop (epoll)");
	ev_set_userdata(kd->loop, kd);
	/* Started now: libev creates its eventfd here, not in the sandbox. */
	ev_async_init(&kd->wake, keyd_wake_cb);
	ev_async_start(kd->loop, &kd->wake);
	ev_io_init(&kd->ctl_io, keyd_ctl_cb, kd->ctl_fd, EV_READ);
	ev_io_start(kd->loop, &kd->ctl_io);

	privdrop_apply(&pd);
	keyd_start_threads(kd);
	if ((r = sandbox_keyd_apply(kd->seccomp_trap)) < 0) {
		errno = -r;
		fatal("cannot load the seccomp filter");
	}

	if ((r = ipc_hello_send(kd->ctl_fd, IPC_ROLE_KEYD)) < 0) {
		errno = -r;
		fatal("hello to the master");
	}
	log_info("ready: user %s, chroot %s, %u signer threads%s", user,
	    chroot_dir, kd->nthreads, kd->sign_delay_ms > 0 ?
	    ", sign delay set (tests only)" : "");

	ev_run(kd->loop, 0);

	keyd_shutdown(kd);
	gnutls_global_deinit();
	return 0;
}
