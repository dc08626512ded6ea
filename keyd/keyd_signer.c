/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * keyd_signer.c -- the job queue and the signer threads of moat-keyd.
 *
 * The --threads signer threads (default: one per online CPU) do the
 * private-key operations; keyd's main thread only checks requests and
 * queues them (keyd_chan.c).  Jobs are queued per submitter queue (one per
 * worker channel); queues with jobs sit on one run queue, and a signer
 * takes ONE job from the queue at its head and puts that queue back at the
 * tail.  That is round-robin per request: a channel that floods keyd gets
 * its turn and no more, and the others keep being served.  A shared pool
 * rather than channels pinned to threads lets one busy worker use every
 * CPU.
 *
 * A finished job goes back through its completion callback, called by the
 * signer thread that ran it, with the reply payload ready to send: that is
 * where keyd_chan.c answers the worker.  This file knows nothing of
 * channels, so the only way back up is that function pointer.  The result
 * (a signature, or a decrypted premaster secret) lives only here, and is
 * wiped as soon as the callback returns.
 *
 * The signer threads are created after privdrop_apply(): capabilities, the
 * bounding set and no_new_privs belong to each thread, so threads made
 * earlier would keep what the main thread dropped.  Made afterwards they
 * inherit the dropped state, and the filter (loaded after them, with
 * SCMP_FLTATR_CTL_TSYNC) covers them all.
 *
 * Locking: signer.lock guards the run queue, every submitter queue's jobs
 * and flag, the depth and the thread counters.  It is never held while a
 * job runs or its callback is called.
 */
#include "config.h"

#include <sys/queue.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/gnutls.h>

#include "ipc.h"
#include "keyd_signer.h"
#include "keystore.h"
#include "log.h"

#define KEYD_SIGNER_REPLY_MAX	(2 * sizeof(uint32_t) + IPC_MAX_SIG)

void
keyd_signer_init(struct keyd_signer *sg, unsigned nthreads, unsigned delay_ms)
{
	memset(sg, 0, sizeof(*sg));
	pthread_mutex_init(&sg->lock, NULL);
	pthread_cond_init(&sg->cond, NULL);
	TAILQ_INIT(&sg->runq);
	sg->nthreads = nthreads;
	sg->delay_ms = delay_ms;
}

void
keyd_signer_queue_init(struct keyd_signer_queue *q)
{
	TAILQ_INIT(&q->jobs);
	q->in_runq = 0;
}

/* A job for key k (a reference is taken) over a copy of data. */
struct keyd_job *
keyd_signer_job_new(struct keystore_key *k, uint16_t type,
    const uint8_t *data, size_t len)
{
	struct keyd_job *job;

	if ((job = malloc(sizeof(*job) + len)) == NULL)
		return NULL;
	memset(job, 0, sizeof(*job));
	job->type = type;
	job->len = len;
	memcpy(job->data, data, len);
	keystore_key_ref(k);
	job->key = k;
	return job;
}

/* A job no signer will run (keyd_signer_take()): its reference and memory. */
void
keyd_signer_job_free(struct keyd_job *job)
{
	keystore_key_unref(job->key);
	free(job);
}

/* Main thread: hand a checked job to the signer threads. */
void
keyd_signer_submit(struct keyd_signer *sg, struct keyd_signer_queue *q,
    struct keyd_job *job)
{
	pthread_mutex_lock(&sg->lock);
	TAILQ_INSERT_TAIL(&q->jobs, job, entry);
	sg->depth++;
	if (!q->in_runq) {
		TAILQ_INSERT_TAIL(&sg->runq, q, run);
		q->in_runq = 1;
	}
	pthread_cond_signal(&sg->cond);
	pthread_mutex_unlock(&sg->lock);
}

/*
 * Main thread: take q's job with request id off the queues if no signer
 * has taken it yet (IPC_CANCEL); the caller frees it with
 * keyd_signer_job_free(), its callback never called.  NULL when it runs
 * already, is done, or never was.
 */
struct keyd_job *
keyd_signer_take(struct keyd_signer *sg, struct keyd_signer_queue *q,
    uint32_t id)
{
	struct keyd_job *job;

	pthread_mutex_lock(&sg->lock);
	TAILQ_FOREACH(job, &q->jobs, entry)
		if (job->id == id)
			break;
	if (job != NULL) {
		TAILQ_REMOVE(&q->jobs, job, entry);
		sg->depth--;
		if (TAILQ_EMPTY(&q->jobs) && q->in_runq) {
			TAILQ_REMOVE(&sg->runq, q, run);
			q->in_runq = 0;
		}
	}
	pthread_mutex_unlock(&sg->lock);
	return job;
}

/*
 * Main thread: drop every job of q that no signer has taken yet, without
 * calling their callbacks, and take q off the run queue.  Returns how many
 * were dropped.  Jobs already running still complete.
 */
unsigned
keyd_signer_cancel(struct keyd_signer *sg, struct keyd_signer_queue *q)
{
	TAILQ_HEAD(, keyd_job) drop;
	struct keyd_job *job;
	unsigned n = 0;

	TAILQ_INIT(&drop);
	pthread_mutex_lock(&sg->lock);
	if (q->in_runq) {
		TAILQ_REMOVE(&sg->runq, q, run);
		q->in_runq = 0;
	}
	while ((job = TAILQ_FIRST(&q->jobs)) != NULL) {
		TAILQ_REMOVE(&q->jobs, job, entry);
		TAILQ_INSERT_TAIL(&drop, job, entry);
		sg->depth--;
		n++;
	}
	pthread_mutex_unlock(&sg->lock);

	while ((job = TAILQ_FIRST(&drop)) != NULL) {
		TAILQ_REMOVE(&drop, job, entry);
		keyd_signer_job_free(job);
	}
	return n;
}

unsigned
keyd_signer_depth(struct keyd_signer *sg)
{
	unsigned depth;

	pthread_mutex_lock(&sg->lock);
	depth = sg->depth;
	pthread_mutex_unlock(&sg->lock);
	return depth;
}

/* Signer thread: do one private-key operation and report it. */
static void
keyd_signer_run(struct keyd_signer *sg, struct keyd_job *job)
{
	struct ipc_sign_req sreq;
	struct ipc_decrypt_req dreq;
	struct ipc_reply rep;
	struct timespec ts;
	gnutls_datum_t out = { NULL, 0 };
	uint8_t buf[KEYD_SIGNER_REPLY_MAX];
	ssize_t len = -1;
	int r;

	if (sg->delay_ms > 0) {
		ts.tv_sec = sg->delay_ms / 1000;
		ts.tv_nsec = (long)(sg->delay_ms % 1000) * 1000000L;
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
	if (r < 0)
		job->done(job, NULL, 0, gnutls_strerror(r));
	else if (len < 0)
		job->done(job, NULL, 0, "result too large");
	else
		job->done(job, buf, (size_t)len, NULL);
	/* A decrypted premaster secret must not linger. */
	if (out.data != NULL) {
		gnutls_memset(out.data, 0, out.size);
		gnutls_free(out.data);
	}
	gnutls_memset(buf, 0, sizeof(buf));

	pthread_mutex_lock(&sg->lock);
	sg->depth--;
	pthread_mutex_unlock(&sg->lock);
	keyd_signer_job_free(job);
}

/* Signer thread: one job at a time, queues in round-robin order. */
static void *
keyd_signer_thread(void *arg)
{
	struct keyd_signer *sg = arg;
	struct keyd_signer_queue *q;
	struct keyd_job *job;

	pthread_mutex_lock(&sg->lock);
	sg->nrunning++;
	pthread_cond_broadcast(&sg->cond);
	pthread_mutex_unlock(&sg->lock);

	for (;;) {
		pthread_mutex_lock(&sg->lock);
		while (!sg->stopping && TAILQ_EMPTY(&sg->runq))
			pthread_cond_wait(&sg->cond, &sg->lock);
		if (sg->stopping) {
			pthread_mutex_unlock(&sg->lock);
			break;
		}
		/* A queue on the run queue always has a job queued. */
		q = TAILQ_FIRST(&sg->runq);
		TAILQ_REMOVE(&sg->runq, q, run);
		job = TAILQ_FIRST(&q->jobs);
		TAILQ_REMOVE(&q->jobs, job, entry);
		if (!TAILQ_EMPTY(&q->jobs))
			TAILQ_INSERT_TAIL(&sg->runq, q, run);
		else
			q->in_runq = 0;
		pthread_mutex_unlock(&sg->lock);

		keyd_signer_run(sg, job);
	}
	return NULL;
}

/* After privdrop_apply(), before the seccomp filter: see the top. */
void
keyd_signer_start(struct keyd_signer *sg)
{
	unsigned i;
	int r;

	if ((sg->threads = calloc(sg->nthreads, sizeof(pthread_t))) == NULL)
		fatal("%s: calloc", __func__);
	for (i = 0; i < sg->nthreads; i++) {
		if ((r = pthread_create(&sg->threads[i], NULL,
		    keyd_signer_thread, sg)) != 0) {
			errno = r;
			fatal("%s: pthread_create", __func__);
		}
		sg->nstarted++;
	}

	/*
	 * A new thread makes its own start-up calls (set_robust_list, rseq,
	 * sigprocmask) with every signal blocked; the filter must not land
	 * before that is done, or the thread dies on a call it never needs
	 * again.  Wait until every signer has reached its loop.
	 */
	pthread_mutex_lock(&sg->lock);
	while (sg->nrunning < sg->nstarted)
		pthread_cond_wait(&sg->cond, &sg->lock);
	pthread_mutex_unlock(&sg->lock);
}

/* Let the running jobs finish, then join every signer. */
void
keyd_signer_stop(struct keyd_signer *sg)
{
	unsigned i;

	pthread_mutex_lock(&sg->lock);
	sg->stopping = 1;
	pthread_cond_broadcast(&sg->cond);
	pthread_mutex_unlock(&sg->lock);
	for (i = 0; i < sg->nstarted; i++)
		pthread_join(sg->threads[i], NULL);
	free(sg->threads);
	sg->threads = NULL;
}
