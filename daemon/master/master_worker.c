/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * master_worker.c -- start the workers, ask them to stop, and read what
 * they say (master_dispatch_worker()).
 *
 * A worker is moatd executed again in a forked child:
 *
 *	/proc/self/exe, argv: moatd --worker INDEX --master-fd N
 *	    --keyd-fd N|-1 --config-fd N
 *
 * Everything the master opens is close-on-exec; the child clears the flag
 * on exactly the worker's descriptors -- its channel to the master, its own
 * channel to keyd, every listener, each frontend's checked certificate
 * chain (frontends[].certs[].cert_fd: a worker reads its chain from it and never
 * opens a file by path), and the config -- so a worker holds no other
 * worker's channel, no keyd control channel and no control socket.
 * The config is the flat struct config behind a struct config_blob_hdr, in
 * a memfd sealed against any change, written at each start because a
 * reload moves frontends to new key generations; main.c reads it back.
 * Each frontend's session-ticket key follows the config in that memfd
 * (struct config_tickets, master_tickets.c).
 * The listeners' numbers are in it (frontends[].listen_fd) and stay the
 * same across the exec.  The environment is inherited (MOAT_SECCOMP_DEBUG).
 *
 * Without a ready keyd a worker still gets a keyd channel, already closed
 * on the other side, and takes the next keyd's from IPC_WORKER_CHANNEL
 * (master_keyd.c).
 */
#include "config.h"

#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "child.h"
#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "master_backend.h"
#include "master_gen.h"
#include "master_keyd.h"
#include "master_types.h"
#include "master_worker.h"
#include "req.h"
#include "sealed.h"

#define MASTER_WORKER_EXE	"/proc/self/exe"

/*
 * A worker's messages: its hello, its answer to a new keyd channel, and
 * answers to requests (stats, rekey, a reload's chains), which are the
 * pending requests'.
 */
static void
master_dispatch_worker(struct master_child *w, struct ipc_msg *msg)
{
	struct ipc_reply rep;
	int r;

	switch (msg->hdr.type) {
	case IPC_HELLO:
		if ((r = ipc_hello_check(msg, IPC_ROLE_WORKER)) < 0) {
			log_warnx("worker %u (pid %ld): bad hello: %s; killing "
			    "it", w->index, (long)w->pid, strerror(-r));
			child_kill(w, SIGKILL);
		}
		break;
	case IPC_WORKER_CHANNEL_REPLY:
		if (ipc_reply_decode(msg->payload, msg->hdr.len, &rep) < 0)
			log_warnx("worker %u: malformed %s", w->index,
			    ipc_type_name(msg->hdr.type));
		else if (rep.status < 0)
			log_warnx("worker %u refused its new keyd channel: %s",
			    w->index, strerror(-rep.status));
		break;
	case IPC_BACKEND_CONNECT:
		master_backend_request(w, msg);
		break;
	case IPC_WORKER_CRED_GONE:
		master_gen_released(w, msg);
		break;
	case IPC_WORKER_STATS_REPLY:
	case IPC_WORKER_REKEY_REPLY:
	case IPC_WORKER_CERT_REPLY:
	case IPC_ERROR:
		if (!req_answer(&w->m->reqs, w, msg))
			log_debug("%s: worker %u: %s for no pending request",
			    __func__, w->index, ipc_type_name(msg->hdr.type));
		break;
	default:
		log_warnx("worker %u: unexpected %s", w->index,
		    ipc_type_name(msg->hdr.type));
		break;
	}
}

static void
master_worker_exited(struct master_child *w, int st)
{
	if (w->stop_asked && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		log_info("worker %u (pid %ld) exited", w->index, (long)w->pid);
	else if (WIFEXITED(st))
		log_warnx("worker %u (pid %ld) exited with status %d",
		    w->index, (long)w->pid, WEXITSTATUS(st));
	else
		log_warnx("worker %u (pid %ld) killed by signal %d (%s)",
		    w->index, (long)w->pid, WTERMSIG(st),
		    strsignal(WTERMSIG(st)));
	master_gen_exited(w);
}

static const struct child_ops master_worker_ops = {
	master_worker_start,
	master_dispatch_worker,
	NULL,			/* its exit says it all */
	master_worker_exited,
};

void
master_worker_init(struct master *m)
{
	char name[24];
	unsigned i;

	for (i = 0; i < m->cfg->workers; i++) {
		snprintf(name, sizeof(name), "worker %u", i);
		child_init(&m->workers[i], m, &master_worker_ops,
		    IPC_ROLE_WORKER, i, name);
	}
}

/* One descriptor the worker keeps across its exec. */
static int
master_worker_inherit(int fd)
{
	return fd < 0 || fcntl(fd, F_SETFD, 0) == 0 ? 0 : -errno;
}

/* Runs in the forked child: the worker's descriptors, then moatd again. */
static __dead void
master_worker_exec(const struct master_child *w, int master_fd, int keyd_fd,
    int conf_fd)
{
	const struct config *cfg = w->m->cfg;
	const struct frontend *fe;
	char idx[16], mfd[16], kfd[16], cfd[16];
	const char *argv[10];
	unsigned i, j;
	int r = 0, n = 0;

	r |= master_worker_inherit(master_fd);
	r |= master_worker_inherit(keyd_fd);
	r |= master_worker_inherit(conf_fd);
	for (i = 0; i < cfg->nfrontends; i++) {
		fe = &cfg->frontends[i];
		for (j = 0; j < fe->nlisten; j++)
			r |= master_worker_inherit(fe->listen_fd[j]);
		/* the chains, as checked (a worker never opens one by path) */
		for (j = 0; j < fe->ncerts; j++) {
			r |= master_worker_inherit(fe->certs[j].cert_fd);
			/* and its OCSP response, as checked (master_ocsp.c) */
			if (fe->certs[j].ocsp_fd >= 0)
				r |= master_worker_inherit(fe->certs[j].ocsp_fd);
		}
		r |= master_worker_inherit(fe->ca_fd);	/* conf_mtls.c */
		r |= master_worker_inherit(fe->crl_fd);
		/* its backend-ca, as checked (btls.c reads it) */
		r |= master_worker_inherit(fe->backend_ca_fd);
	}
	if (r != 0) {
		log_warn("%s: fcntl", w->name);
		_exit(127);
	}
	snprintf(idx, sizeof(idx), "%u", w->index);
	snprintf(mfd, sizeof(mfd), "%d", master_fd);
	snprintf(kfd, sizeof(kfd), "%d", keyd_fd);
	snprintf(cfd, sizeof(cfd), "%d", conf_fd);
	argv[n++] = "moatd";
	argv[n++] = "--worker";
	argv[n++] = idx;
	argv[n++] = "--master-fd";
	argv[n++] = mfd;
	argv[n++] = "--keyd-fd";
	argv[n++] = kfd;
	argv[n++] = "--config-fd";
	argv[n++] = cfd;
	argv[n] = NULL;
	child_exec(w, MASTER_WORKER_EXE, argv);
}

/*
 * The config a new worker starts with (see the comment on top), and the
 * ticket keys after it (master_tickets.c says why there).  The keys are
 * copied nowhere in this process: write() copies them into the memfd,
 * whose pages the kernel frees once the worker has read and closed it and
 * this process has closed its descriptor, right after the fork.
 */
static int
master_worker_conf_fd(const struct config *cfg,
    const struct config_tickets *tickets)
{
	const struct config_blob_hdr hdr = {
		CONFIG_BLOB_MAGIC, CONFIG_BLOB_VERSION, sizeof(*cfg)
	};
	struct iovec part[3] = {
		{ (void *)&hdr, sizeof(hdr) }, { (void *)cfg, sizeof(*cfg) },
		{ (void *)tickets, sizeof(*tickets) }
	};

	return sealed_memfd("moatd-config", part, 3);
}

void
master_worker_start(struct master_child *w)
{
	struct master *m = w->m;
	int mw[2] = { -1, -1 }, keyd_fd = -1, conf_fd = -1, r;
	unsigned i;
	pid_t pid;

	if ((r = ipc_socketpair(mw)) < 0) {
		log_warnx("worker %u: socketpair: %s", w->index, strerror(-r));
		goto fail;
	}
	if (fcntl(mw[0], F_SETFL, O_NONBLOCK) < 0) {
		log_warn("worker %u: fcntl", w->index);
		goto fail;
	}
	/* no ready keyd: the worker waits for IPC_WORKER_CHANNEL */
	if (master_keyd_channel(m, w->index, &keyd_fd) < 0 && keyd_fd < 0)
		goto fail;
	if ((r = ipc_hello_send(mw[0], IPC_ROLE_MASTER)) < 0) {
		log_warnx("worker %u: hello: %s", w->index, strerror(-r));
		goto fail;
	}
	/* it gets the config: every frontend's current certificate */
	for (i = 0; i < m->cfg->nfrontends; i++)
		w->cert_generation[i] = m->cfg->frontends[i].key_generation;
	master_gen_started(w);
	if ((conf_fd = master_worker_conf_fd(m->cfg, m->tickets)) < 0) {
		log_warnx("worker %u: config memfd: %s", w->index,
		    strerror(-conf_fd));
		goto fail;
	}
	if ((pid = fork()) < 0) {
		log_warn("worker %u: fork", w->index);
		goto fail;
	}
	if (pid == 0)
		master_worker_exec(w, mw[1], keyd_fd, conf_fd);
	close(mw[1]);
	close(keyd_fd);
	close(conf_fd);
	child_started(w, pid, mw[0], ev_now(m->loop));
	child_watch(w);
	log_info("worker %u started (pid %ld)", w->index, (long)pid);
	child_status_notify(m);
	return;
fail:
	if (mw[0] >= 0)
		close(mw[0]);
	if (mw[1] >= 0)
		close(mw[1]);
	if (keyd_fd >= 0)
		close(keyd_fd);
	if (conf_fd >= 0)
		close(conf_fd);
	if (!m->running)
		fatalx("worker %u: cannot start", w->index);
	w->started = ev_now(m->loop);
	child_backoff(w);
}

/*
 * IPC_WORKER_STOP (drain, exit 0), or SIGKILL when it cannot be asked.  At
 * shutdown nothing restarts it; a worker stopped because it could not take
 * a rotation (reload.c) restarts after its exit, and is killed if it has
 * not exited within drain-timeout.
 */
void
master_worker_stop(struct master_child *w)
{
	struct master *m = w->m;

	ev_timer_stop(m->loop, &w->restart);
	if (w->pid <= 0 || w->stop_asked)
		return;		/* gone, or draining (and on a deadline) */
	w->stop_asked = 1;
	if (w->fd < 0 || ipc_send(w->fd, IPC_WORKER_STOP, req_next_id(&m->reqs),
	    NULL, 0, NULL, 0) < 0) {
		log_warnx("worker %u (pid %ld): cannot ask it to stop; killing "
		    "it", w->index, (long)w->pid);
		child_kill(w, SIGKILL);
		return;
	}
	/* At shutdown master.c's drain timer does this for every worker. */
	if (!m->stopping)
		child_stop_deadline(w, m->cfg->drain_timeout_ms / 1000.0);
}
