/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * worker.c -- one worker process: start-up, the loop, the master channel,
 * accept, and the counters the master reads.
 *
 * Start-up, in this order (STYLE.md point 6): log title; signals back to
 * their defaults (SIGPIPE ignored); drop every inherited descriptor that is
 * not ours; read each frontend's certificate chain and build its priority
 * cache and credentials (tls.c, cred.c); open unix-backend directories
 * (proxy.c); the blocking hello / key-list exchange with keyd (kchan.c, if
 * the master had a channel for us) that makes the keyd-backed keys usable;
 * then the privilege drop (user looked up before the chroot) and the
 * seccomp filter (sandbox_worker.c); only then the loop, with
 * ev_loop_new(EVFLAG_NOENV | EVBACKEND_EPOLL), and the worker's state in
 * ev_set_userdata().
 *
 * The master channel (dispatch table: worker_dispatch_master()):
 * IPC_HELLO (the master's; ours goes first), IPC_WORKER_STATS (answered
 * with the same id), IPC_WORKER_CHANNEL (a new keyd channel, fd attached),
 * IPC_WORKER_STOP (stop accepting, drain, exit 0), IPC_WORKER_REKEY (live
 * connections renegotiate, conn.c) and IPC_WORKER_CERT (a rotated
 * certificate chain, fd attached).  A malformed message from the master is
 * fatal (it is our own binary); EOF means the master is gone, and the
 * worker exits.
 *
 * Accepting: every listener of every frontend is watched; at
 * max-connections the listeners are stopped with one log line and started
 * again below it (the kernel keeps queueing meanwhile, other workers take
 * their share).  EMFILE and friends pause accepting for a second.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <gnutls/gnutls.h>

#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "util.h"
#include "privdrop.h"
#include "conn.h"
#include "sweep.h"
#include "defer.h"
#include "pace.h"
#include "btls.h"
#include "cred.h"
#include "kchan.h"
#include "proxy.h"
#include "sandbox_worker.h"
#include "state.h"
#include "tls.h"
#include "worker.h"

#define WORKER_ACCEPT_BATCH	32	/* accepts per wakeup, then let others run */
#define WORKER_MASTER_BATCH	16
#define WORKER_ACCEPT_PAUSE	1.0	/* seconds, after EMFILE and friends */
#define WORKER_LIMIT_LOG_EVERY	60.0	/* seconds between max-connections lines */

static struct worker	worker_state;	/* one per process */

static void	worker_listeners(struct worker *w, int on);
static void	worker_drain_schedule(struct worker *w, int hard);

/* --- helpers for the other files ------------------------------------------ */

/* Encode an ipc_reply and send it on the master channel. */
static void
worker_master_send_reply(struct worker *w, uint16_t type, uint32_t id,
    const struct ipc_reply *rep)
{
	uint8_t buf[64];
	ssize_t n;
	int r;

	if ((n = ipc_reply_encode(buf, sizeof(buf), rep)) < 0)
		fatalx("%s: encode", __func__);
	if ((r = ipc_send(w->master_fd, type, id, buf, (size_t)n, NULL, 0)) < 0)
		log_warnx("%s: %s to master: %s", __func__, ipc_type_name(type),
		    strerror(-r));
}

static void
worker_master_reply(struct worker *w, uint16_t type, uint32_t id, int status)
{
	struct ipc_reply rep;

	memset(&rep, 0, sizeof(rep));
	rep.status = status > 0 ? 0 : status;
	worker_master_send_reply(w, type, id, &rep);
}

/* An answer carrying a count (uint32_t): rekey and certificate rotation. */
static void
worker_master_reply_count(struct worker *w, uint16_t type, uint32_t id,
    uint32_t count)
{
	struct ipc_reply rep;

	memset(&rep, 0, sizeof(rep));
	rep.data = (const uint8_t *)&count;
	rep.data_len = sizeof(count);
	worker_master_send_reply(w, type, id, &rep);
}

/*
 * At max-connections, or with max-pending-handshakes first handshakes
 * under way, stop accepting until one closes or finishes: new clients wait
 * in the listen queue (or go to another worker).  One line a minute: at
 * the limit this flips on every close.
 */
static void
worker_limit_check(struct worker *w)
{
	unsigned max = w->cfg->max_connections;
	unsigned maxp = w->cfg->max_pending_handshakes;
	int conns = max > 0 && w->nconns >= max;
	int parked = maxp > 0 && w->hs_open >= maxp;

	if ((conns || parked) && !w->at_limit) {
		w->at_limit = 1;
		w->stats.conns_refused_limit++;
		if (ev_now(w->loop) - w->limit_logged >= WORKER_LIMIT_LOG_EVERY) {
			w->limit_logged = ev_now(w->loop);
			if (conns)
				log_warnx("max-connections (%u) reached: not "
				    "accepting until a connection closes "
				    "(%llu time(s) so far)", max,
				    (unsigned long long)w->stats.conns_refused_limit);
			else
				log_warnx("max-pending-handshakes (%u) under way: "
				    "not accepting until one finishes "
				    "(%llu time(s) so far)", maxp,
				    (unsigned long long)w->stats.conns_refused_limit);
		}
		worker_listeners(w, 0);
	} else if (!conns && !parked && w->at_limit) {
		w->at_limit = 0;
		log_debug("below the connection limits again: accepting");
		worker_listeners(w, 1);
	}
}

/* conn.c's hook: a connection is gone. */
static void
worker_conn_gone(struct worker *w)
{
	worker_limit_check(w);
	if (w->stopping && w->nconns == 0)
		ev_break(w->loop, EVBREAK_ALL);
}

/*
 * The drain's two ends, before the master's drain-timeout kills us: at
 * drain-timeout less two margins every connection with nothing in flight
 * closes with close_notify (sweep_drain()), at less one margin
 * whatever is left is cut, without it.  A margin is a fifth of drain-timeout, at most a
 * second.  So a long-lived idle connection (IMAP IDLE) ends cleanly and
 * with its log line, never by SIGKILL.
 */
static void
worker_drain_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = container_of(t, struct worker, drain_end);
	int hard = t->data != NULL;

	log_info("drain: %u connection(s) still open: %s", w->nconns,
	    hard ? "cutting what still moves data" :
	    "closing those with nothing in flight");
	sweep_drain(w, hard);
	if (!hard && w->nconns > 0)
		worker_drain_schedule(w, 1);
}

static void
worker_drain_schedule(struct worker *w, int hard)
{
	double total = w->cfg->drain_timeout_ms / 1000.;
	double margin = total / 5. < 1. ? total / 5. : 1.;

	ev_timer_stop(w->loop, &w->drain_end);
	w->drain_end.data = hard ? w : NULL;
	ev_timer_set(&w->drain_end, hard ? margin : total - 2. * margin, 0.);
	ev_timer_start(w->loop, &w->drain_end);
}

/*
 * Stop accepting for good and exit with exit_code once the last connection
 * has finished; what is still open near the end of the drain is closed
 * (worker_drain_cb()).
 */
static void
worker_stop(struct worker *w, int exit_code, const char *why)
{
	struct worker_frontend *wf;
	unsigned i, j;

	if (exit_code > w->exit_code)
		w->exit_code = exit_code;
	if (w->stopping)
		return;
	w->stopping = 1;
	worker_listeners(w, 0);
	ev_timer_stop(w->loop, &w->accept_retry);
	for (i = 0; i < w->nfe; i++) {
		wf = &w->fe[i];
		for (j = 0; j < wf->nlisten; j++) {
			if (wf->lio[j].fd >= 0)
				close(wf->lio[j].fd);
			wf->lio[j].fd = -1;
		}
		wf->nlisten = 0;
	}
	log_info("stopping (%s): %u connection(s) left", why, w->nconns);
	if (w->nconns == 0) {
		ev_break(w->loop, EVBREAK_ALL);
		return;
	}
	worker_drain_schedule(w, 0);
}

/* --- accept ------------------------------------------------------------- */

static void
worker_listeners(struct worker *w, int on)
{
	struct worker_frontend *wf;
	unsigned i, j;

	if (w->loop == NULL)
		return;
	on = on && !w->stopping && !w->at_limit &&
	    !ev_is_active(&w->accept_retry);
	for (i = 0; i < w->nfe; i++) {
		wf = &w->fe[i];
		for (j = 0; j < wf->nlisten; j++) {
			if (on)
				ev_io_start(w->loop, &wf->lio[j]);
			else
				ev_io_stop(w->loop, &wf->lio[j]);
		}
	}
	w->accepting = on;
}

static void
worker_accept_retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = ev_userdata(loop);

	ev_timer_stop(loop, t);
	worker_listeners(w, 1);
}

static void
worker_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct worker *w = ev_userdata(loop);
	struct worker_frontend *wf = io->data;
	struct sockaddr_storage ss;
	socklen_t len;
	int i, fd, one = 1;

	for (i = 0; i < WORKER_ACCEPT_BATCH && w->accepting; i++) {
		len = sizeof(ss);
		ss.ss_family = AF_UNSPEC;	/* accept4() fills it in */
		fd = accept4(io->fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			switch (errno) {
			case EAGAIN:
#if EAGAIN != EWOULDBLOCK
			case EWOULDBLOCK:
#endif
				return;		/* another worker was quicker */
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
			case ENETDOWN:
			case ENOPROTOOPT:
			case EHOSTDOWN:
			case ENONET:
			case EHOSTUNREACH:
			case EOPNOTSUPP:
			case ENETUNREACH:
				continue;	/* that client's problem */
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				log_warn("%s: frontend %s: accept; pausing "
				    "%.0f s", __func__, wf->fe->name,
				    WORKER_ACCEPT_PAUSE);
				worker_listeners(w, 0);
				ev_timer_set(&w->accept_retry,
				    WORKER_ACCEPT_PAUSE, 0.);
				ev_timer_start(loop, &w->accept_retry);
				return;
			default:
				log_warn("%s: frontend %s: accept", __func__,
				    wf->fe->name);
				return;
			}
		}
		if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
			    sizeof(one));
		(void)conn_new(wf, fd, (struct sockaddr *)&ss, len);
		worker_limit_check(w);
	}
}

/* --- the keyd channel's news (kchan.c's hooks) ------------------------------ */

static int
worker_keyd_keys(void *arg, const struct ipc_key_info *keys, unsigned n,
    int initial)
{
	return cred_keys_update(arg, keys, n, initial);
}

/* The channel the master handed (IPC_WORKER_CHANNEL id) is ready or failed. */
static void
worker_keyd_ready(void *arg, uint32_t id, int status)
{
	worker_master_reply(arg, IPC_WORKER_CHANNEL_REPLY, id, status);
}

static void
worker_keyd_violation(void *arg)
{
	worker_stop(arg, 1, "keyd protocol violation");
}

/* --- the master channel --------------------------------------------------- */

static void
worker_stats_send(struct worker *w, uint32_t id)
{
	struct conn *c;
	unsigned parked = 0;
	int r;

	for (c = w->conns; c != NULL; c = c->next)
		parked += c->parked != 0;
	w->stats.conns_open = w->nconns;
	w->stats.renegotiations_in_flight = w->reneg_inflight;
	w->stats.renegotiations_waiting = pace_waiting(w);
	w->stats.handshakes_waiting_keyd = parked;
	r = ipc_send(w->master_fd, IPC_WORKER_STATS_REPLY, id, &w->stats,
	    sizeof(w->stats), NULL, 0);
	if (r < 0)
		log_warnx("%s: %s", __func__, strerror(-r));
}

/* `moatctl rekey [FRONTEND]`: every live connection renegotiates now. */
static void
worker_rekey(struct worker *w, const struct ipc_msg *msg)
{
	struct ipc_rekey rk;
	const struct worker_frontend *only = NULL;
	unsigned i;

	if (ipc_rekey_decode(msg->payload, msg->hdr.len, &rk) < 0)
		fatalx("%s: malformed rekey from the master", __func__);
	if (rk.frontend[0] != '\0') {
		for (i = 0; i < w->nfe; i++)
			if (strcmp(w->fe[i].fe->name, rk.frontend) == 0)
				only = &w->fe[i];
		if (only == NULL) {
			(void)ipc_error_send(w->master_fd, msg->hdr.id, -ENOENT,
			    "no frontend %s", rk.frontend);
			return;
		}
	}
	worker_master_reply_count(w, IPC_WORKER_REKEY_REPLY, msg->hdr.id,
	    sweep_rekey(w, only, "moatctl rekey"));
}

/*
 * Certificate rotation: the new chain arrives as a descriptor; with
 * rekey-on-cert-change the frontend's live connections renegotiate onto it.
 */
static void
worker_cert(struct worker *w, const struct ipc_msg *msg)
{
	struct ipc_worker_cert wc;
	struct worker_frontend *wf;
	uint32_t n = 0;
	int r;

	if (ipc_worker_cert_decode(msg->payload, msg->hdr.len, &wc) < 0 ||
	    msg->nfds == 0)
		fatalx("%s: malformed certificate message from the master",
		    __func__);
	if (wc.frontend >= w->nfe) {
		(void)ipc_error_send(w->master_fd, msg->hdr.id, -ENOENT,
		    "no frontend %u", wc.frontend);
		return;
	}
	wf = &w->fe[wc.frontend];
	if ((r = cred_frontend_rotate(wf, msg->fds, msg->nfds,
	    wc.generation, wc.ocsp_mask)) < 0) {
		log_warnx("frontend %s: certificate generation %u not taken: %s",
		    wf->fe->name, wc.generation, strerror(-r));
		(void)ipc_error_send(w->master_fd, msg->hdr.id, r,
		    "certificate not taken: %s", strerror(-r));
		return;
	}
	/* r == 1: new OCSP responses only, the same certificates */
	if (r == 0 && wf->fe->rekey_on_cert_change)
		n = sweep_rekey(w, wf, "certificate change");
	worker_master_reply_count(w, IPC_WORKER_CERT_REPLY, msg->hdr.id, n);
}

/* conn.c's hook: ask the master to connect a unix: backend for us. */
static int
worker_backend_ask(struct worker *w, unsigned frontend, uint32_t *id)
{
	struct ipc_backend_connect bc;

	if (++w->backend_next_id == 0)
		w->backend_next_id = 1;
	*id = w->backend_next_id;
	memset(&bc, 0, sizeof(bc));
	bc.frontend = frontend;
	return ipc_send(w->master_fd, IPC_BACKEND_CONNECT, *id, &bc,
	    sizeof(bc), NULL, 0);
}

/*
 * cred.c's hook: no session uses that certificate generation any more;
 * the master drops its key from keyd once no worker holds it.
 */
static void
worker_cred_gone(struct worker *w, unsigned frontend, unsigned generation)
{
	struct ipc_worker_cred_gone cg;
	int r;

	memset(&cg, 0, sizeof(cg));
	cg.frontend = frontend;
	cg.generation = generation;
	if ((r = ipc_send(w->master_fd, IPC_WORKER_CRED_GONE, 0, &cg,
	    sizeof(cg), NULL, 0)) < 0)
		log_warnx("%s: %s", __func__, strerror(-r));
}

/* The master's answer: a connected unix-socket backend, or why not. */
static void
worker_backend_reply(struct worker *w, struct ipc_msg *msg)
{
	struct ipc_reply rep;
	int fd = -1;

	if (ipc_reply_decode(msg->payload, msg->hdr.len, &rep) < 0 ||
	    (rep.status == 0) != (msg->nfds == 1))
		fatalx("%s: malformed backend answer from the master", __func__);
	if (msg->nfds == 1) {
		fd = msg->fds[0];
		msg->nfds = 0;		/* conn.c's now */
	}
	conn_backend_arrived(w, msg->hdr.id, rep.status, fd);
}

static void
worker_dispatch_master(struct ev_loop *loop, ev_io *io, int revents)
{
	static const struct ipc_ends ends = { IPC_ROLE_WORKER, IPC_ROLE_MASTER };
	static struct ipc_msg msg;
	struct worker *w = ev_userdata(loop);
	int i, r;

	for (i = 0; i < WORKER_MASTER_BATCH; i++) {
		r = ipc_recv(w->master_fd, &ends, &msg);
		if (r == -EAGAIN || r == -EINTR)
			return;
		if (r == 0) {
			log_warnx("master went away; exiting with %u "
			    "connection(s)", w->nconns);
			_exit(1);
		}
		if (r < 0)
			fatalx("%s: bad message from the master: %s", __func__,
			    strerror(-r));

		switch (msg.hdr.type) {
		case IPC_HELLO:
			if ((r = ipc_hello_check(&msg, IPC_ROLE_MASTER)) < 0)
				fatalx("%s: master's hello: %s", __func__,
				    strerror(-r));
			break;
		case IPC_WORKER_STATS:
			worker_stats_send(w, msg.hdr.id);
			break;
		case IPC_WORKER_CHANNEL:
			if (msg.nfds != 1) {
				ipc_msg_close_fds(&msg);
				worker_master_reply(w, IPC_WORKER_CHANNEL_REPLY,
				    msg.hdr.id, -EBADMSG);
				break;
			}
			kchan_replace(&w->keyd, msg.fds[0], msg.hdr.id);
			msg.nfds = 0;	/* the channel owns it now */
			break;
		case IPC_WORKER_STOP:
			worker_stop(w, 0, "asked by the master");
			break;
		case IPC_WORKER_REKEY:
			worker_rekey(w, &msg);
			break;
		case IPC_WORKER_CERT:
			worker_cert(w, &msg);
			break;
		case IPC_BACKEND_CONNECT_REPLY:
			worker_backend_reply(w, &msg);
			break;
		default:
			log_warnx("%s: unexpected %s from the master", __func__,
			    ipc_type_name(msg.hdr.type));
			(void)ipc_error_send(w->master_fd, msg.hdr.id,
			    -EOPNOTSUPP, "worker does not handle %s",
			    ipc_type_name(msg.hdr.type));
			break;
		}
		ipc_msg_close_fds(&msg);
	}
}

static void
worker_signal_cb(struct ev_loop *loop, ev_signal *sig, int revents)
{
	struct worker *w = ev_userdata(loop);

	worker_stop(w, 0, sig->signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* --- start-up --------------------------------------------------------------- */

/*
 * Signal dispositions and mask are inherited from the master: put them back
 * to the defaults, and ignore SIGPIPE (sends also use MSG_NOSIGNAL).
 * SIGHUP is the master's business (reload).
 */
static void
worker_signals_reset(void)
{
	struct sigaction sa;
	sigset_t none;
	int sig;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	for (sig = 1; sig < NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		sa.sa_handler = (sig == SIGPIPE || sig == SIGHUP) ?
		    SIG_IGN : SIG_DFL;
		(void)sigaction(sig, &sa, NULL);
	}
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		fatal("%s: sigprocmask", __func__);
}

static int
worker_fd_cmp(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/*
 * Close every descriptor the worker did not get on purpose: another
 * worker's channel or the master's control socket must never be reachable
 * from a worker (defence in depth; the master closes them too).
 */
static void
worker_fds_sweep(const struct config *cfg, int master_fd, int keyd_fd)
{
	int keep[2 + CONFIG_MAX_FRONTENDS * (CONFIG_MAX_LISTEN +
	    2 * CONFIG_MAX_CERTS + 3)];
	unsigned n = 0, i, j;
	unsigned lo = 3;

	keep[n++] = master_fd;
	if (keyd_fd >= 0)
		keep[n++] = keyd_fd;
	for (i = 0; i < cfg->nfrontends; i++) {
		for (j = 0; j < cfg->frontends[i].nlisten; j++)
			if (cfg->frontends[i].listen_fd[j] >= 0)
				keep[n++] = cfg->frontends[i].listen_fd[j];
		/* read by cred.c, closed before the sandbox */
		for (j = 0; j < cfg->frontends[i].ncerts; j++) {
			if (cfg->frontends[i].certs[j].cert_fd >= 0)
				keep[n++] = cfg->frontends[i].certs[j].cert_fd;
			if (cfg->frontends[i].certs[j].ocsp_fd >= 0)
				keep[n++] = cfg->frontends[i].certs[j].ocsp_fd;
		}
		/* read by mtls.c, closed before the sandbox */
		if (cfg->frontends[i].ca_fd >= 0)
			keep[n++] = cfg->frontends[i].ca_fd;
		if (cfg->frontends[i].crl_fd >= 0)
			keep[n++] = cfg->frontends[i].crl_fd;
		/* read by btls.c, closed before the sandbox */
		if (cfg->frontends[i].backend_ca_fd >= 0)
			keep[n++] = cfg->frontends[i].backend_ca_fd;
	}
	qsort(keep, n, sizeof(keep[0]), worker_fd_cmp);
	for (i = 0; i < n; i++) {
		if (keep[i] < (int)lo)
			continue;
		if ((unsigned)keep[i] > lo && close_range(lo, (unsigned)keep[i] - 1, 0) < 0)
			fatal("%s: close_range", __func__);
		lo = (unsigned)keep[i] + 1;
	}
	if (close_range(lo, ~0u, 0) < 0)
		fatal("%s: close_range", __func__);
}

static void
worker_nofile_raise(const struct config *cfg)
{
	struct rlimit rl;
	rlim_t need = 2 * (rlim_t)cfg->max_connections + 64 +
	    (rlim_t)cfg->nfrontends * CONFIG_MAX_LISTEN;

	/*
	 * Before the drop: raising the hard limit needs CAP_SYS_RESOURCE
	 * (root may not have it in a container); then take what there is.
	 */
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
		return;
	if (rl.rlim_max < need) {
		struct rlimit hard = { need, need };

		if (setrlimit(RLIMIT_NOFILE, &hard) == 0)
			return;
		if (rl.rlim_max < 2 * (rlim_t)cfg->max_connections + 16)
			log_warnx("%s: %lu descriptors allowed, "
			    "max-connections %u needs %lu", __func__,
			    (unsigned long)rl.rlim_max, cfg->max_connections,
			    (unsigned long)need);
	}
	rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_warn("%s: RLIMIT_NOFILE %lu", __func__,
		    (unsigned long)rl.rlim_cur);
}

static void
worker_frontends_init(struct worker *w, struct config_tickets *tickets)
{
	const struct config *cfg = w->cfg;
	struct worker_frontend *wf;
	unsigned i;

	for (i = 0; i < cfg->nfrontends; i++) {
		wf = &w->fe[i];
		wf->magic = WORKER_FE_MAGIC;
		wf->fe = &cfg->frontends[i];
		wf->w = w;
		if (tls_frontend_init(wf, tickets->key[i]) < 0 ||
		    cred_frontend_load(wf) < 0 || btls_frontend_init(wf) < 0)
			fatalx("frontend %s: TLS set-up failed", wf->fe->name);
	}
	gnutls_memset(tickets, 0, sizeof(*tickets));
	free(tickets);
	w->nfe = cfg->nfrontends;
}

static void
worker_loop_init(struct worker *w)
{
	struct worker_frontend *wf;
	unsigned i, j;
	int fl;

	w->loop = ev_loop_new(EVFLAG_NOENV | EVBACKEND_EPOLL);
	if (w->loop == NULL)
		fatalx("%s: ev_loop_new (epoll)", __func__);
	ev_set_userdata(w->loop, w);

	if ((fl = fcntl(w->master_fd, F_GETFL)) < 0 ||
	    fcntl(w->master_fd, F_SETFL, fl | O_NONBLOCK) < 0)
		fatal("%s: master fd", __func__);
	ev_io_init(&w->master_io, worker_dispatch_master, w->master_fd, EV_READ);
	ev_io_start(w->loop, &w->master_io);

	kchan_attach(&w->keyd, w->loop);

	ev_signal_init(&w->sigterm, worker_signal_cb, SIGTERM);
	ev_signal_start(w->loop, &w->sigterm);
	ev_signal_init(&w->sigint, worker_signal_cb, SIGINT);
	ev_signal_start(w->loop, &w->sigint);
	ev_init(&w->accept_retry, worker_accept_retry_cb);
	ev_init(&w->drain_end, worker_drain_cb);
	defer_init(w);

	for (i = 0; i < w->nfe; i++) {
		wf = &w->fe[i];
		wf->nlisten = 0;
		for (j = 0; j < wf->fe->nlisten; j++) {
			if (wf->fe->listen_fd[j] < 0)
				continue;
			ev_io_init(&wf->lio[wf->nlisten], worker_accept_cb,
			    wf->fe->listen_fd[j], EV_READ);
			wf->lio[wf->nlisten].data = wf;
			wf->nlisten++;
		}
	}
	worker_listeners(w, 1);
}

__dead void
worker_main(const struct config *cfg, struct config_tickets *tickets,
    unsigned index, int master_fd, int keyd_fd)
{
	struct worker *w = &worker_state;
	const struct kchan_hooks hooks = {
		worker_keyd_keys, worker_keyd_ready, worker_keyd_violation, w
	};
	struct privdrop pd;
	char title[64];
	int debug, r;

	snprintf(title, sizeof(title), "moatd[worker %u]", index);
	log_procinit(title);
	log_setlevel(cfg->log_level);
	worker_signals_reset();
	worker_fds_sweep(cfg, master_fd, keyd_fd);
	debug = getenv("MOAT_SECCOMP_DEBUG") != NULL;

	memset(w, 0, sizeof(*w));
	w->magic = WORKER_MAGIC;
	w->cfg = cfg;
	w->index = index;
	w->master_fd = master_fd;
	w->conn_gone = worker_conn_gone;
	w->load_changed = worker_limit_check;
	w->backend_ask = worker_backend_ask;
	w->cred_gone = worker_cred_gone;
	kchan_init(&w->keyd, cfg->keyd_timeout_ms, &w->stats, &hooks);
	if ((r = ipc_hello_send(master_fd, IPC_ROLE_WORKER)) < 0)
		fatalx("hello to the master: %s", strerror(-r));

	worker_frontends_init(w, tickets);

	if ((r = kchan_start(&w->keyd, keyd_fd)) < 0)
		fatalx("keyd channel start-up: %s", strerror(-r));

	worker_nofile_raise(cfg);
	memset(&pd, 0, sizeof(pd));
	if ((r = privdrop_lookup(cfg->user, &pd)) < 0)
		fatalx("user %s: %s", cfg->user, strerror(-r));
	pd.chroot_dir = cfg->chroot_dir[0] != '\0' ? cfg->chroot_dir : NULL;
	if (pd.chroot_dir == NULL)
		fatalx("no chroot directory configured");
	privdrop_apply(&pd);
	sandbox_worker_load(debug);

	worker_loop_init(w);
	log_info("worker %u serving %u frontend(s) as %s in %s (keyd %s)",
	    index, w->nfe, cfg->user, cfg->chroot_dir,
	    kchan_ready(&w->keyd) ? "ready" : "not yet connected");
	ev_run(w->loop, 0);

	log_info("worker %u exiting (%d)", index, w->exit_code);
	_exit(w->exit_code);
}
