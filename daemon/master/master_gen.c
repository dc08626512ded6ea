/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * master_gen.c -- a rotated certificate's old key leaves keyd once nobody
 * needs it.
 *
 * A certificate rotation (reload.c) loads the new key into the frontend's
 * other keyd slot and moves every worker to it; sessions that began on the
 * old certificate keep it until they end or renegotiate onto the new one.
 * Each worker tells the master when its last session on a generation is
 * gone (IPC_WORKER_CRED_GONE, from cred.c).  The master keeps, per worker
 * and frontend, the generations it still holds (a bit per generation
 * modulo 32: a session would have to outlive 32 rotations for two to
 * share a bit, and then the key is merely kept longer).  Once no running
 * worker holds the frontend's previous generation, and no rotation is in
 * progress (which would be loading the next key into that very slot), the
 * master sends keyd IPC_KEY_DROP for it: keyd forgets and wipes that key,
 * and the old certificate is no longer signable by anyone.
 *
 * A worker that dies holds nothing any more; a new worker starts on the
 * current generation only.  A worker that could not take a rotation is
 * stopped (reload.c) and still holds its generation until it exits.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "master_gen.h"
#include "master_keyd.h"
#include "master_types.h"

static uint32_t
master_gen_bit(unsigned generation)
{
	return 1u << (generation % 32u);
}

/* A new worker: it holds what it starts on, the current generations. */
void
master_gen_started(struct master_child *w)
{
	const struct config *cfg = w->m->cfg;
	unsigned i;

	for (i = 0; i < cfg->nfrontends; i++)
		w->gen_held[i] = master_gen_bit(cfg->frontends[i].key_generation);
}

/* The worker took generation g of a frontend (IPC_WORKER_CERT answered). */
void
master_gen_took(struct master_child *w, unsigned frontend, unsigned generation)
{
	if (frontend < CONFIG_MAX_FRONTENDS)
		w->gen_held[frontend] |= master_gen_bit(generation);
}

/* IPC_WORKER_CRED_GONE: the worker holds that generation no more. */
void
master_gen_released(struct master_child *w, const struct ipc_msg *msg)
{
	struct ipc_worker_cred_gone cg;

	if (ipc_worker_cred_gone_decode(msg->payload, msg->hdr.len, &cg) < 0 ||
	    cg.frontend >= w->m->cfg->nfrontends) {
		log_warnx("%s (pid %ld): malformed %s", w->name, (long)w->pid,
		    ipc_type_name(msg->hdr.type));
		return;
	}
	w->gen_held[cg.frontend] &= ~master_gen_bit(cg.generation);
	log_debug("%s: frontend %u generation %u released", w->name,
	    cg.frontend, cg.generation);
	master_gen_check(w->m);
}

void
master_gen_exited(struct master_child *w)
{
	memset(w->gen_held, 0, sizeof(w->gen_held));
	master_gen_check(w->m);
}

/* Drop every frontend's previous key that no running worker holds. */
void
master_gen_check(struct master *m)
{
	const struct config *cfg = m->cfg;
	const struct frontend *fe;
	unsigned i, j, c, prev;
	int held, r;

	if (m->reload != NULL || !m->keyd.ready || m->keyd.fd < 0)
		return;		/* after the rotation, or the next keyd's start */
	for (i = 0; i < cfg->nfrontends; i++) {
		fe = &cfg->frontends[i];
		if (fe->key_generation == 0 ||
		    m->gen_dropped[i] >= fe->key_generation)
			continue;	/* no previous one, or dropped already */
		prev = fe->key_generation - 1;
		held = 0;
		for (j = 0; j < cfg->workers; j++)
			if (m->workers[j].pid > 0 &&
			    (m->workers[j].gen_held[i] & master_gen_bit(prev)))
				held = 1;
		if (held)
			continue;
		/* every certificate of the frontend rotated with it */
		for (c = 0, r = 0; c < fe->ncerts && r == 0; c++)
			if ((r = master_keyd_drop(m, IPC_KEY_SLOT(i, c,
			    prev))) < 0)
				log_warnx("frontend %s: cannot drop the key of "
				    "certificate %u, generation %u: %s",
				    fe->name, c, prev, strerror(-r));
		if (r < 0)
			continue;
		m->gen_dropped[i] = fe->key_generation;
		if (fe->ncerts == 1)
			log_info("frontend %s: no session uses certificate "
			    "generation %u any more; keyd dropped its key",
			    fe->name, prev);
		else
			log_info("frontend %s: no session uses certificate "
			    "generation %u any more; keyd dropped its %u keys",
			    fe->name, prev, fe->ncerts);
	}
}
