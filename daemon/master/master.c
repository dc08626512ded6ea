/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * master.c -- signals, listeners, start-up and shutdown of the master.
 *
 * Start-up: chroot directory, listeners, control socket, keyd with every
 * key (master_keyd.c), then the workers (master_worker.c), then READY=1.
 * From then on the children look after themselves (child.c): a child that
 * dies is logged and started again after a backoff.
 *
 * SIGTERM or SIGINT: the listeners and the control socket close, workers
 * get IPC_WORKER_STOP and drain-timeout to finish, stragglers get SIGKILL,
 * then keyd is stopped.  Who is still there is looked at once per loop
 * iteration, after the iteration's events (an ev_prepare watcher), so no
 * child's exit has to call up here; generations retired by a reload
 * (handover.c) and a reload's new keyd still loading are waited for too.
 * SIGHUP reloads the configuration, as `moatctl reload` does (reload.c).
 *
 * This file calls down only: into the files below it in master_types.h.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <systemd/sd-daemon.h>

#include "child.h"
#include "conf.h"
#include "control_cmd.h"
#include "control.h"
#include "log.h"
#include "master.h"
#include "master_backend.h"
#include "master_keyd.h"
#include "master_listen.h"
#include "master_watchdog.h"
#include "handover.h"
#include "master_tickets.h"
#include "master_types.h"
#include "master_worker.h"
#include "privdrop.h"
#include "master_ocsp.h"
#include "metrics.h"
#include "reload.h"
#include "req.h"

/* --- signals and shutdown ----------------------------------------------- */

/*
 * While stopping, after each loop iteration: once no worker runs, keyd is
 * asked to stop; once it is gone too, the loop ends.
 */
static void
master_stop_check_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	struct master *m = ev_userdata(loop);

	if (child_workers_running(m) > 0 || m->retired != NULL ||
	    m->handover != NULL)
		return;
	ev_timer_stop(loop, &m->drain);
	if (m->keyd.pid > 0) {
		if (!m->keyd_stop_sent) {
			m->keyd_stop_sent = 1;
			master_keyd_stop(m);
		}
		return;
	}
	ev_prepare_stop(loop, p);
	ev_break(loop, EVBREAK_ALL);
}

static void
master_kill_workers(struct master *m)
{
	unsigned i;

	for (i = 0; i < m->cfg->workers; i++)
		child_kill(&m->workers[i], SIGKILL);
	handover_kill_retired(m);
}

static void
master_drain_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master *m = ev_userdata(loop);

	log_warnx("drain timeout (%u ms): killing %u workers",
	    m->cfg->drain_timeout_ms, child_workers_running(m) +
	    child_workers_draining(m));
	master_kill_workers(m);
}

static void
master_shutdown(struct master *m, const char *why)
{
	unsigned i;

	if (m->stopping) {
		log_warnx("%s again: killing the workers now", why);
		master_kill_workers(m);
		return;
	}
	m->stopping = 1;
	sd_notify(0, "STOPPING=1");
	log_info("%s: stopping; %u workers drain for up to %u ms", why,
	    child_workers_running(m), m->cfg->drain_timeout_ms);
	/* new connections would queue where nobody accepts them any more */
	master_listen_close(m, m->cfg);
	control_close(m->control);
	metrics_close(m);
	ev_timer_stop(m->loop, &m->keyd.restart);
	master_watchdog_stop(m);
	handover_stop(m);
	for (i = 0; i < m->cfg->workers; i++)
		master_worker_stop(&m->workers[i]);
	child_status_notify(m);
	ev_timer_set(&m->drain, m->cfg->drain_timeout_ms / 1000.0, 0.);
	ev_timer_start(m->loop, &m->drain);
	ev_prepare_start(m->loop, &m->stop_check);
}

static void
master_signal_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
	struct master *m = ev_userdata(loop);

	switch (s->signum) {
	case SIGTERM:
		master_shutdown(m, "SIGTERM");
		break;
	case SIGINT:
		master_shutdown(m, "SIGINT");
		break;
	case SIGHUP:
		log_info("SIGHUP: reloading the configuration");
		reload_start(m, NULL);
		break;
	}
}

/* --- start-up ----------------------------------------------------------- */

/*
 * keyd holds every key (or could not load one): the workers start, and
 * systemd hears READY=1.  Until then the loop already answers moatctl
 * status and signals; a SIGTERM meanwhile simply stops.
 */
static void
master_keyd_ready(struct master *m, int status, const char *err)
{
	unsigned i;

	if (m->stopping)
		return;
	if (status < 0) {
		control_close(m->control);
		fatalx("%s", err);
	}
	/* after keyd: the responses are checked against the chains it took */
	master_ocsp_start(m);
	for (i = 0; i < m->cfg->workers; i++)
		master_worker_start(&m->workers[i]);
	m->running = 1;
	sd_notifyf(0, "READY=1\nMAINPID=%ld", (long)getpid());
	child_status_notify(m);
	master_watchdog_start(m);
	log_info("moatd %s ready: %u frontends, %u workers, control %s",
	    MOAT_VERSION, m->cfg->nfrontends, m->cfg->workers,
	    m->cfg->control);
}

int
master_main(struct config *cfg)
{
	struct master *m;
	char err[1024];
	int r;

	/* root, or the capabilities: main.c checked (privdrop_can_sandbox) */
	if (cfg->workers > MASTER_MAX_WORKERS)
		fatalx("%s: at most %u workers", cfg->path, MASTER_MAX_WORKERS);
	if ((m = calloc(1, sizeof(*m))) == NULL)
		fatal("%s: calloc", __func__);
	m->magic = MASTER_MAGIC;
	m->cfg = cfg;

	signal(SIGPIPE, SIG_IGN);
	if ((m->loop = ev_default_loop(EVFLAG_NOENV | EVBACKEND_EPOLL)) == NULL)
		fatalx("cannot create the event loop (epoll)");
	ev_set_userdata(m->loop, m);
	m->started = ev_now(m->loop);
	req_table_init(&m->reqs, m->loop);
	if (master_tickets_init(cfg, &m->tickets, err, sizeof(err)) < 0)
		fatalx("%s", err);
	master_keyd_init(m);
	master_worker_init(m);
	if ((r = master_backend_init(m)) < 0)
		fatalx("user %s: %s", cfg->user, strerror(-r));
	if (master_backend_ca_open(cfg, err, sizeof(err)) < 0)
		fatalx("%s", err);

	if ((r = privdrop_prepare_chroot(cfg->chroot_dir)) < 0)
		fatalx("chroot directory %s: %s (it must be an empty directory "
		    "owned by root, not writable by others)", cfg->chroot_dir,
		    strerror(-r));
	if (master_listen_systemd(m, err, sizeof(err)) < 0 ||
	    master_listen_open(m, cfg, NULL, err, sizeof(err)) < 0 ||
	    master_listen_claimed(m, cfg, err, sizeof(err)) < 0)
		fatalx("%s", err);
	if ((r = control_open(&m->control, m->loop, cfg->control,
	    control_cmd_run, m)) < 0)
		fatalx("control socket %s: %s", cfg->control, strerror(-r));
	if (metrics_open(m, err, sizeof(err)) < 0) {
		control_close(m->control);
		fatalx("%s", err);
	}

	ev_signal_init(&m->sig_term, master_signal_cb, SIGTERM);
	ev_signal_init(&m->sig_int, master_signal_cb, SIGINT);
	ev_signal_init(&m->sig_hup, master_signal_cb, SIGHUP);
	ev_signal_start(m->loop, &m->sig_term);
	ev_signal_start(m->loop, &m->sig_int);
	ev_signal_start(m->loop, &m->sig_hup);
	ev_init(&m->drain, master_drain_cb);
	ev_prepare_init(&m->stop_check, master_stop_check_cb);

	log_info("%s", config_fips_mode_text());
	/* the CAs and CRLs of client certificates, sealed for the workers */
	if (config_mtls_open(cfg, 1, err, sizeof(err)) < 0) {
		control_close(m->control);
		fatalx("%s", err);
	}
	if (master_keyd_start(m, master_keyd_ready, err, sizeof(err)) < 0) {
		control_close(m->control);
		fatalx("%s", err);
	}
	/* the rest once keyd has every key: master_keyd_ready() */
	ev_run(m->loop, 0);

	metrics_close(m);
	control_free(m->control);
	master_ocsp_stop(m);
	log_info("moatd stopped");
	r = m->exit_code;
	master_tickets_free(m->tickets);
	free(m->cfg);		/* a reload may have replaced cfg (handover.c) */
	m->magic = 0;
	free(m);
	return r;
}
