/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * keyd_signer.h -- keyd's job queue and signer threads.
 *
 * A job carries a key (a reference), the bytes to sign or decrypt and a
 * completion callback; the signer knows nothing of who queued it.  Each
 * submitter (keyd_chan.c: one per worker channel) embeds a struct
 * keyd_signer_queue, and the signers serve those queues round-robin, one
 * job per turn.  keyd_signer.c explains the fairness and the threads.
 */
#ifndef MOAT_KEYD_SIGNER_H
#define MOAT_KEYD_SIGNER_H

#include <sys/queue.h>

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct keystore_key;

/* A checked request waiting for (or in) a signer thread. */
struct keyd_job {
	TAILQ_ENTRY(keyd_job)	entry;
	struct keystore_key	*key;	/* holds a reference */
	/*
	 * Called by the signer thread that ran the job, with the answer's
	 * IPC payload (an encoded struct ipc_reply), or with reply NULL and
	 * why the operation failed.  The reply is wiped, and the job and its
	 * key released, once it returns.
	 */
	void			(*done)(struct keyd_job *job,
				    const uint8_t *reply, size_t len,
				    const char *err);
	void			*arg;	/* done()'s; never read by the signer */
	uint16_t		type;	/* IPC_SIGN or IPC_DECRYPT */
	uint32_t		id;	/* the caller's request id */
	uint32_t		sign_algo;
	uint32_t		form;
	uint64_t		t_recv;	/* the caller's clock, monotonic us */
	size_t			len;
	uint8_t			data[];
};

/* One submitter's jobs; embedded in the submitter, guarded by the signer. */
struct keyd_signer_queue {
	TAILQ_ENTRY(keyd_signer_queue)	run;	/* signer.runq */
	TAILQ_HEAD(, keyd_job)		jobs;
	int				in_runq;
};

struct keyd_signer {
	pthread_mutex_t			lock;
	pthread_cond_t			cond;
	TAILQ_HEAD(, keyd_signer_queue)	runq;	/* queues with a job */
	unsigned			depth;	/* queued + running */
	int				stopping;
	pthread_t			*threads;
	unsigned			nthreads;
	unsigned			nstarted;
	unsigned			nrunning; /* past thread start-up */
	unsigned			delay_ms; /* --sign-delay-ms (tests) */
};

/* keyd_signer.c */
void	keyd_signer_init(struct keyd_signer *sg, unsigned nthreads,
	    unsigned delay_ms);
void	keyd_signer_start(struct keyd_signer *sg);
void	keyd_signer_stop(struct keyd_signer *sg);
unsigned keyd_signer_depth(struct keyd_signer *sg);
void	keyd_signer_queue_init(struct keyd_signer_queue *q);
struct keyd_job *keyd_signer_job_new(struct keystore_key *k, uint16_t type,
	    const uint8_t *data, size_t len);
void	keyd_signer_submit(struct keyd_signer *sg, struct keyd_signer_queue *q,
	    struct keyd_job *job);
unsigned keyd_signer_cancel(struct keyd_signer *sg,
	    struct keyd_signer_queue *q);
struct keyd_job *keyd_signer_take(struct keyd_signer *sg,
	    struct keyd_signer_queue *q, uint32_t id);
void	keyd_signer_job_free(struct keyd_job *job);

#endif
