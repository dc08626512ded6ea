/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * handover.c -- a reload of the whole configuration: a new generation of
 * keyd and workers takes over the listeners, and the running one drains.
 *
 * reload.c has read and checked the new config (a FILE:LINE error ends the
 * reload there) and found that its text changed (an unchanged text is a
 * certificate rotation, reload.c).  Then, asynchronously, and with nothing running touched until
 * the new generation is known to work:
 *   1. Settings the master itself holds (user, keyd-user, chroot,
 *      control) must not change: that takes a restart, and the reload is
 *      refused saying so.  The listeners: the running config's socket is
 *      kept for each address the new one lists again, new addresses are
 *      opened (a failure refuses the reload); the client-certificate CAs,
 *      CRLs and backend CAs are sealed for the new config as at start.
 *   2. A new keyd starts with the new config in a generation of its own (a
 *      struct master that owns it until the hand-over) and loads every key
 *      (master_keyd.c).  If it cannot, it is killed and the reload refused
 *      with keyd's reason.
 *   3. The hand-over, within one loop callback: the running keyd and
 *      workers move into a retired generation (a struct master with the
 *      old config, ticket keys and request table, child.c moves them), the
 *      new keyd, config and ticket keys become the master's, and the new
 *      workers start.  Then each retired worker gets IPC_WORKER_STOP: it
 *      stops accepting and serves its connections until they end or
 *      drain-timeout passes (the worker closes what is left with
 *      close_notify and a log line; the master kills it just after).  The
 *      listeners stay open in the master throughout, so a SYN that comes
 *      meanwhile waits in the backlog for a new worker: none is refused.
 *   4. Once a retired generation's last worker has exited, its keyd is
 *      stopped; once keyd is gone too, the generation is freed.
 * The ticket keys of the frontends both configs have are kept (a ticket
 * issued before resumes after), unless ticket-key-file is given, whose
 * keys are derived again from the file.  The retired generation takes no
 * certificate rotation, stats or rekey: its connections are on their way
 * out.
 */
#include "config.h"

#include <sys/types.h>

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <systemd/sd-daemon.h>

#include "answer.h"
#include "child.h"
#include "conf.h"
#include "control_proto.h"
#include "control.h"
#include "handover.h"
#include "log.h"
#include "master_backend.h"
#include "master_keyd.h"
#include "master_listen.h"
#include "master_ocsp.h"
#include "master_tickets.h"
#include "master_types.h"
#include "master_worker.h"
#include "req.h"
#include "util.h"

struct handover {
	struct master		*m;
	struct master		*next;		/* the new generation */
	struct control_client	*client;	/* NULL: SIGHUP, or it left */
	handover_done_fn	*done;
	int			again;		/* a SIGHUP came meanwhile */
};

/* --- is it a rotation or a hand-over? ----------------------------------- */

/*
 * 1 when the file's text changed since the running config was read (a
 * hand-over), 0 when it is the same text (a rotation of the files behind
 * it, reload.c).  The parser hashes every byte it reads (conf_load.c):
 * comparing the text, not the parsed struct, is a rule an admin can
 * predict, and it cannot mistake two settings for one.
 */
int
handover_needed(const struct config *running, const struct config *cfg)
{
	return memcmp(running->text_sha256, cfg->text_sha256,
	    sizeof(cfg->text_sha256)) != 0;
}

/* --- generations -------------------------------------------------------- */

/* The master's copies of a config's sealed files; listeners are not here. */
static void
handover_close_fds(struct config *cfg)
{
	struct frontend *fe;
	unsigned i, j;

	for (i = 0; i < cfg->nfrontends; i++) {
		fe = &cfg->frontends[i];
		for (j = 0; j < fe->ncerts; j++) {
			if (fe->certs[j].cert_fd >= 0)
				close(fe->certs[j].cert_fd);
			if (fe->certs[j].ocsp_fd >= 0)
				close(fe->certs[j].ocsp_fd);
			fe->certs[j].cert_fd = fe->certs[j].ocsp_fd = -1;
		}
		if (fe->ca_fd >= 0)
			close(fe->ca_fd);
		if (fe->crl_fd >= 0)
			close(fe->crl_fd);
		if (fe->backend_ca_fd >= 0)
			close(fe->backend_ca_fd);
		fe->ca_fd = fe->crl_fd = fe->backend_ca_fd = -1;
	}
}

/* An empty generation for cfg, in the master's loop. */
static struct master *
handover_gen_new(struct master *m, struct config *cfg)
{
	struct master *g;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		return NULL;
	g->magic = MASTER_MAGIC;
	g->loop = m->loop;
	g->cfg = cfg;
	g->started = ev_now(m->loop);
	g->worker_uid = m->worker_uid;
	g->worker_gid = m->worker_gid;
	g->keyd_generation = m->keyd_generation;
	req_table_init(&g->reqs, m->loop);
	master_keyd_init(g);
	master_worker_init(g);
	master_backend_init_retry(g);
	return g;
}

static void
handover_gen_free(struct master *g)
{
	master_backend_drop_waiting(g);
	handover_close_fds(g->cfg);
	free(g->cfg);
	master_tickets_free(g->tickets);
	g->magic = 0;
	free(g);
}

/* After each loop iteration while generations retire: who is left. */
static void
handover_retire_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	struct master *m = container_of(p, struct master, retire_check);
	struct master *g, **pp;

	for (pp = &m->retired; (g = *pp) != NULL;) {
		if (child_workers_running(g) > 0) {
			pp = &g->retired_next;
			continue;
		}
		if (g->keyd.pid > 0) {
			if (!g->keyd_stop_sent) {
				g->keyd_stop_sent = 1;
				master_keyd_stop(g);
			}
			pp = &g->retired_next;
			continue;
		}
		*pp = g->retired_next;
		log_info("reload: the generation of %s that started at %.0f "
		    "is gone", g->cfg->path, g->started);
		handover_gen_free(g);
		child_status_notify(m);
	}
	if (m->retired == NULL)
		ev_prepare_stop(loop, p);
}

/* g stops: its workers drain, then its keyd goes (handover_retire_cb). */
static void
handover_retire(struct master *m, struct master *g)
{
	unsigned i;

	for (i = 0; i < g->cfg->workers; i++)
		master_worker_stop(&g->workers[i]);	/* with drain-timeout */
	g->stopping = 1;
	g->retired_next = m->retired;
	m->retired = g;
	if (!ev_is_active(&m->retire_check)) {
		ev_prepare_init(&m->retire_check, handover_retire_cb);
		ev_prepare_start(m->loop, &m->retire_check);
	}
}

/* A second SIGTERM, or the drain timer at shutdown. */
void
handover_kill_retired(struct master *m)
{
	struct master *g;
	unsigned i;

	for (g = m->retired; g != NULL; g = g->retired_next)
		for (i = 0; i < g->cfg->workers; i++)
			child_kill(&g->workers[i], SIGKILL);
}

/* --- the reload --------------------------------------------------------- */

static void
handover_client_gone(void *arg)
{
	struct handover *h = arg;

	h->client = NULL;
}

/* The end: one line to the client (or the log), READY=1 again. */
static void __attribute__((format(printf, 3, 4)))
handover_end(struct handover *h, int ok, const char *fmt, ...)
{
	struct master *m = h->m;
	handover_done_fn *done = h->done;
	char line[2048];
	va_list ap;
	int again = h->again;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (ok)
		log_info("reload: %s", line);
	else
		log_warnx("reload refused: %s", line);
	if (h->client != NULL) {
		control_client_on_gone(h->client, NULL, NULL);
		answer_printf(control_client_answer(h->client), "%sreload%s: "
		    "%s\n", ok ? "" : CONTROL_ERROR_PREFIX, ok ? "" :
		    " refused", line);
		control_client_done(h->client);
	}
	m->handover = NULL;
	if (!m->stopping)
		sd_notify(0, "READY=1");
	child_status_notify(m);
	free(h);
	if (done != NULL)
		done(m, again);
}

/*
 * A new generation that will not serve: it goes once its keyd is gone
 * (alive: keyd still runs and is killed; a keyd that failed has exited).
 */
static void
handover_discard(struct handover *h, int alive)
{
	struct master *m = h->m, *next = h->next;

	h->next = NULL;
	next->handover = NULL;
	master_listen_handover(m, next->cfg, m->cfg);
	if (alive)
		child_kill(&next->keyd, SIGKILL);
	handover_retire(m, next);
}

/* Shutdown: a new keyd still loading is killed; its end ends the reload. */
void
handover_stop(struct master *m)
{
	if (m->handover != NULL && m->handover->next != NULL)
		child_kill(&m->handover->next->keyd, SIGKILL);
}

/* Step 3 (see the top): the new generation takes over. */
static void
handover_take_over(struct handover *h)
{
	struct master *m = h->m, *next = h->next, *old;
	unsigned i, drained;

	if ((old = handover_gen_new(m, m->cfg)) == NULL) {
		handover_discard(h, 1);
		handover_end(h, 0, "out of memory");
		return;
	}
	old->tickets = m->tickets;
	old->keyd_generation = m->keyd_generation;
	memcpy(old->gen_dropped, m->gen_dropped, sizeof(old->gen_dropped));
	child_move(&old->keyd, &m->keyd, old);
	for (i = 0; i < old->cfg->workers; i++)
		child_move(&old->workers[i], &m->workers[i], old);
	master_ocsp_stop(m);

	m->cfg = next->cfg;
	m->tickets = next->tickets;
	m->keyd_generation = next->keyd_generation;
	memset(m->gen_dropped, 0, sizeof(m->gen_dropped));
	child_move(&m->keyd, &next->keyd, m);
	next->cfg = NULL;
	next->tickets = NULL;
	next->magic = 0;
	free(next);
	h->next = NULL;
	master_listen_handover(m, old->cfg, m->cfg);

	master_worker_init(m);
	master_ocsp_start(m);
	for (i = 0; i < m->cfg->workers; i++)
		master_worker_start(&m->workers[i]);
	drained = child_workers_running(old);
	handover_retire(m, old);
	handover_end(h, 1, "%s taken: %u frontends, %u workers, keyd pid %ld; "
	    "the %u workers before drain for up to %u ms", m->cfg->path,
	    m->cfg->nfrontends, m->cfg->workers, (long)m->keyd.pid, drained,
	    old->cfg->drain_timeout_ms);
}

/* The new keyd holds every key, or could not load one (master_keyd.c). */
static void
handover_keyd_ready(struct master *next, int status, const char *err)
{
	struct handover *h = next->handover;

	if (h == NULL)
		return;
	if (status < 0) {
		handover_discard(h, 0);
		handover_end(h, 0, "%s", err);
		return;
	}
	if (h->m->stopping) {
		handover_discard(h, 1);
		handover_end(h, 0, "moatd is stopping");
		return;
	}
	if (h->m->keyd_start != NULL || h->m->reload != NULL) {
		/* the running keyd restarts: its start cannot move */
		handover_discard(h, 1);
		handover_end(h, 0, "the running keyd restarted meanwhile; "
		    "reload again");
		return;
	}
	handover_take_over(h);
}

/* What the master holds itself cannot change under it. */
static int
handover_fixed(const struct config *a, const struct config *b, char *why,
    size_t whylen)
{
	static const struct {
		const char	*key;
		size_t		off;
	} fixed[] = {
		{ "user", offsetof(struct config, user) },
		{ "keyd-user", offsetof(struct config, keyd_user) },
		{ "chroot", offsetof(struct config, chroot_dir) },
		{ "control", offsetof(struct config, control) },
	};
	const char *was, *now;
	size_t i;

	for (i = 0; i < nitems(fixed); i++) {
		was = (const char *)a + fixed[i].off;
		now = (const char *)b + fixed[i].off;
		if (strcmp(was, now) != 0) {
			snprintf(why, whylen, "%s changed from %s to %s: that "
			    "takes a restart", fixed[i].key, was, now);
			return -EINVAL;
		}
	}
	if (b->workers > MASTER_MAX_WORKERS) {
		snprintf(why, whylen, "%s: at most %u workers", b->path,
		    MASTER_MAX_WORKERS);
		return -EINVAL;
	}
	return 0;
}

/* While a hand-over runs, a SIGHUP asks for another one after it. */
void
handover_again(struct master *m)
{
	if (m->handover != NULL)
		m->handover->again = 1;
}

/*
 * moatctl reload (c) or SIGHUP (c == NULL) with a changed config: steps 1
 * and 2 here, the rest when the new keyd has answered.  cfg is ours.
 */
void
handover_start(struct master *m, struct control_client *c, struct config *cfg,
    handover_done_fn *done)
{
	struct handover *h;
	char err[1024];

	if ((h = calloc(1, sizeof(*h))) == NULL) {
		free(cfg);
		log_warnx("reload: out of memory");
		if (c != NULL) {
			answer_printf(control_client_answer(c),
			    CONTROL_ERROR_PREFIX "reload: out of memory\n");
			control_client_done(c);
		}
		return;
	}
	h->m = m;
	h->client = c;
	h->done = done;
	m->handover = h;
	if (c != NULL)
		control_client_on_gone(c, handover_client_gone, h);
	if (handover_fixed(m->cfg, cfg, err, sizeof(err)) < 0) {
		free(cfg);
		handover_end(h, 0, "%s", err);
		return;
	}
	if (master_listen_open(m, cfg, m->cfg, err, sizeof(err)) < 0) {
		free(cfg);
		handover_end(h, 0, "%s", err);
		return;
	}
	if ((h->next = handover_gen_new(m, cfg)) == NULL) {
		master_listen_handover(m, cfg, m->cfg);
		free(cfg);
		handover_end(h, 0, "out of memory");
		return;
	}
	h->next->handover = h;
	if (config_mtls_open(cfg, 1, err, sizeof(err)) < 0 ||
	    master_backend_ca_open(cfg, err, sizeof(err)) < 0 ||
	    master_tickets_carry(m->cfg, m->tickets, cfg, &h->next->tickets,
	    err, sizeof(err)) < 0 ||
	    master_keyd_start(h->next, handover_keyd_ready, err,
	    sizeof(err)) < 0) {
		master_listen_handover(m, cfg, m->cfg);
		handover_gen_free(h->next);
		h->next = NULL;
		handover_end(h, 0, "%s", err);
		return;
	}
	log_info("reload: %s changed: a new keyd (pid %ld) loads its keys",
	    cfg->path, (long)h->next->keyd.pid);
}
