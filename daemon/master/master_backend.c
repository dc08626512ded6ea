/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * master_backend.c -- unix-socket backends, connected by the master for
 * the workers (IPC_BACKEND_CONNECT).
 *
 * A worker has no file system: it is chrooted into an empty directory and
 * its seccomp filter lets it make only TCP sockets, so it cannot reach any
 * unix socket on the host -- the D-Bus system bus, a container runtime's
 * socket, another service's.  For a frontend whose backend is unix:PATH
 * (or unix:@name) the worker asks the master, which connects exactly that
 * configured backend and passes the connected socket back with SCM_RIGHTS
 * (IPC_BACKEND_CONNECT_REPLY, a struct ipc_reply with the request's id).
 * Nothing the worker sends names a path: only a frontend index.
 *
 * The connect is made with the workers' credentials (their user's uid,
 * gid and groups, put on for the one connect() call and taken off again):
 * the socket file's permissions are checked as they would be for a worker,
 * and the backend's SO_PEERCRED sees the worker user, not root.
 *
 * A unix socket whose listen backlog is full answers EAGAIN; the master
 * tries again every MASTER_BACKEND_RETRY_S until the frontend's
 * backend-connect-timeout, then answers -ETIMEDOUT.  Every other failure is
 * answered at once with its errno.
 *
 * TLS backends: the master opens each backend-ca once at start-up and
 * keeps a sealed copy of what it checked (master_backend_ca_open()); the
 * workers read the bundle from that descriptor, as they read their chain.
 * A changed bundle takes effect at the next start, not at a reload.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "privdrop.h"
#include "master_backend.h"
#include "master_types.h"
#include "util.h"

#define MASTER_BACKEND_RETRY_S	0.02	/* a full backlog: try again */
#define MASTER_BACKEND_WAITING	4096u	/* retries held at once */

/* One connect that met a full backlog and waits to be tried again. */
struct master_backend_wait {
	struct master_backend_wait *next;
	unsigned	worker;		/* the asker's slot ... */
	pid_t		pid;		/* ... and pid, when it asked */
	uint32_t	id;
	unsigned	frontend;
	ev_tstamp	deadline;
};

/* Answer request id of worker w with status and, on success, fd. */
static void
master_backend_answer(struct master_child *w, uint32_t id, int status, int fd)
{
	int r;

	if (w->fd >= 0 && (r = ipc_send_status(w->fd, IPC_BACKEND_CONNECT_REPLY,
	    id, status, fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0)) < 0)
		log_warnx("%s (pid %ld): backend connection not sent: %s",
		    w->name, (long)w->pid, strerror(-r));
	if (fd >= 0)
		close(fd);	/* the worker holds its own now */
}

/*
 * Put on the workers' credentials, or take them off again (on = 0).  The
 * master is single-threaded, so nothing else runs meanwhile; failing to
 * get its own user (root, or moat.service's) back is fatal, since the
 * master must never go on as anyone else.
 */
static int
master_backend_creds(struct master *m, int on)
{
	static gid_t saved[NGROUPS_MAX];
	static int nsaved = -1;

	if (on) {
		if ((nsaved = getgroups(NGROUPS_MAX, saved)) < 0)
			return -errno;
		if (setgroups(1, &m->worker_gid) < 0 ||
		    setegid(m->worker_gid) < 0 || seteuid(m->worker_uid) < 0) {
			master_backend_creds(m, 0);
			return -EPERM;
		}
		return 0;
	}
	if (seteuid(getuid()) < 0 || setegid(getgid()) < 0 ||
	    (nsaved >= 0 && setgroups((size_t)nsaved, saved) < 0))
		fatal("%s: cannot take the workers' credentials off", __func__);
	return 0;
}

/*
 * One connect() to frontend fe's backend as the workers would make it:
 * the connected socket in *fd (non-blocking), or a negative errno.
 */
static int
master_backend_connect(struct master *m, const struct frontend *fe, int *fd)
{
	const struct config_addr *a = &fe->backend;
	int s, r, err;

	*fd = -1;
	if (a->ss.ss_family != AF_UNIX)
		return -EINVAL;
	if ((s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) < 0)
		return -errno;
	if ((r = master_backend_creds(m, 1)) < 0) {
		close(s);
		return r;
	}
	r = connect(s, (const struct sockaddr *)&a->ss, a->len);
	err = errno;
	master_backend_creds(m, 0);
	if (r < 0 && err != EINPROGRESS) {
		close(s);
		return -err;
	}
	*fd = s;
	return 0;
}

/* Still the same worker that asked? */
static struct master_child *
master_backend_asker(struct master *m, const struct master_backend_wait *bw)
{
	struct master_child *w;

	if (bw->worker >= m->cfg->workers)
		return NULL;
	w = &m->workers[bw->worker];
	return w->pid == bw->pid && w->fd >= 0 ? w : NULL;
}

static void
master_backend_retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master *m = container_of(t, struct master, backend_retry);
	struct master_backend_wait *bw, **pp;
	struct master_child *w;
	ev_tstamp now = ev_now(loop);
	int r, fd;

	for (pp = &m->backend_waiting; (bw = *pp) != NULL;) {
		if ((w = master_backend_asker(m, bw)) == NULL) {
			r = 1;		/* that worker is gone: drop it */
		} else if ((r = master_backend_connect(m,
		    &m->cfg->frontends[bw->frontend], &fd)) == -EAGAIN) {
			if (now < bw->deadline) {
				pp = &bw->next;
				continue;
			}
			master_backend_answer(w, bw->id, -ETIMEDOUT, -1);
		} else
			master_backend_answer(w, bw->id, r, fd);
		*pp = bw->next;
		free(bw);
		m->backend_nwaiting--;
	}
	if (m->backend_waiting == NULL)
		ev_timer_stop(loop, t);
}

/* IPC_BACKEND_CONNECT from worker w. */
void
master_backend_request(struct master_child *w, const struct ipc_msg *msg)
{
	struct master *m = w->m;
	struct ipc_backend_connect bc;
	struct master_backend_wait *bw;
	const struct frontend *fe;
	int r, fd = -1;

	if (ipc_backend_connect_decode(msg->payload, msg->hdr.len, &bc) < 0 ||
	    bc.frontend >= m->cfg->nfrontends) {
		log_warnx("%s (pid %ld): malformed %s", w->name, (long)w->pid,
		    ipc_type_name(msg->hdr.type));
		master_backend_answer(w, msg->hdr.id, -EINVAL, -1);
		return;
	}
	fe = &m->cfg->frontends[bc.frontend];
	r = master_backend_connect(m, fe, &fd);
	if (r != -EAGAIN) {
		master_backend_answer(w, msg->hdr.id, r, fd);
		return;
	}
	if (m->backend_nwaiting >= MASTER_BACKEND_WAITING ||
	    (bw = calloc(1, sizeof(*bw))) == NULL) {
		master_backend_answer(w, msg->hdr.id, -EAGAIN, -1);
		return;
	}
	bw->worker = w->index;
	bw->pid = w->pid;
	bw->id = msg->hdr.id;
	bw->frontend = bc.frontend;
	bw->deadline = ev_now(m->loop) + fe->backend_connect_timeout_ms / 1000.;
	bw->next = m->backend_waiting;
	m->backend_waiting = bw;
	m->backend_nwaiting++;
	if (!ev_is_active(&m->backend_retry)) {
		ev_timer_set(&m->backend_retry, MASTER_BACKEND_RETRY_S,
		    MASTER_BACKEND_RETRY_S);
		ev_timer_start(m->loop, &m->backend_retry);
	}
}

/* At start-up: the workers' credentials, and the retry timer. */
int
master_backend_init(struct master *m)
{
	struct privdrop pd;
	int r;

	if ((r = privdrop_lookup(m->cfg->user, &pd)) < 0)
		return r;
	m->worker_uid = pd.uid;
	m->worker_gid = pd.gid;
	master_backend_init_retry(m);
	return 0;
}

/* A generation's retry timer (handover.c: the uid and gid are the same). */
void
master_backend_init_retry(struct master *m)
{
	ev_init(&m->backend_retry, master_backend_retry_cb);
}

/* A generation goes: nobody is left to answer. */
void
master_backend_drop_waiting(struct master *m)
{
	struct master_backend_wait *bw;

	ev_timer_stop(m->loop, &m->backend_retry);
	while ((bw = m->backend_waiting) != NULL) {
		m->backend_waiting = bw->next;
		free(bw);
	}
	m->backend_nwaiting = 0;
}

/*
 * Each TLS frontend's backend-ca, checked (PEM certificates, no private
 * key) into a sealed memfd, fe->backend_ca_fd, which every worker inherits.
 * 0, or -errno with the reason in err.
 */
int
master_backend_ca_open(struct config *cfg, char *err, size_t errlen)
{
	struct frontend *fe;
	char why[256];
	unsigned i;
	int fd, pk, r;

	for (i = 0; i < cfg->nfrontends; i++) {
		fe = &cfg->frontends[i];
		if (!fe->backend_tls || fe->backend_ca_fd >= 0)
			continue;
		if ((fd = open(fe->backend_ca, O_RDONLY | O_CLOEXEC |
		    O_NOCTTY)) < 0) {
			r = -errno;
			snprintf(err, errlen, "frontend %s: backend-ca %s: %s",
			    fe->name, fe->backend_ca, strerror(-r));
			return r;
		}
		r = config_cert_snapshot(fd, &fe->backend_ca_fd, &pk, why,
		    sizeof(why));
		close(fd);
		if (r < 0) {
			snprintf(err, errlen, "frontend %s: backend-ca %s: %s",
			    fe->name, fe->backend_ca, why);
			return r;
		}
	}
	return 0;
}
