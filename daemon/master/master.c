/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * master.c -- listeners, workers, signals and shutdown of the master.
 *
 * Start-up: chroot directory, listeners, control socket, keyd with every
 * key (master_keyd.c), then the workers, then READY=1.  A worker is forked
 * and executes moatd again (main.c): it keeps its channel to the master, its
 * own channel to keyd and the listeners, and gets the config as a sealed
 * memfd.  Nothing else of the master crosses the exec (every descriptor of
 * the master is close-on-exec), so the worker starts with a clean process
 * image and builds its own loop (STYLE.md point 8).
 *
 * Supervision: a child that dies is logged and started again after a
 * backoff that begins at 100 ms, doubles up to 5 s, and begins again once a
 * child has run 10 s.  SIGTERM or SIGINT: workers get IPC_WORKER_STOP and
 * drain-timeout to finish, stragglers get SIGKILL, then keyd is stopped.
 * SIGHUP rotates every frontend's certificate and key, as `moatctl reload`
 * does (control.c).
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

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

#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "master.h"
#include "privdrop.h"

#define MASTER_LISTEN_BACKLOG	1024

static void	master_worker_start(struct master *m, struct master_child *w);

uint32_t
master_next_id(struct master *m)
{
	if (++m->next_id == 0)
		m->next_id = 1;
	return m->next_id;
}

static unsigned
master_workers_running(const struct master *m)
{
	unsigned i, n = 0;

	for (i = 0; i < m->cfg->workers; i++)
		if (m->workers[i].pid > 0)
			n++;
	return n;
}

void
master_status_notify(struct master *m)
{
	if (!m->running)
		return;
	sd_notifyf(0, "STATUS=%s%u of %u workers running, keyd %s",
	    m->stopping ? "stopping: " : "", master_workers_running(m),
	    m->cfg->workers, m->keyd.ready ? "ready" : "down");
}

/* Schedule the next start of a dead child (see the comment on top). */
void
master_child_backoff(struct master_child *c)
{
	struct master *m = c->m;
	unsigned delay;

	if (ev_now(m->loop) - c->started >= MASTER_STABLE_S)
		c->backoff_ms = MASTER_BACKOFF_MIN_MS;
	delay = c->backoff_ms;
	c->backoff_ms = c->backoff_ms * 2 > MASTER_BACKOFF_MAX_MS ?
	    MASTER_BACKOFF_MAX_MS : c->backoff_ms * 2;
	if (c == &m->keyd)
		log_info("keyd: restarting in %u ms", delay);
	else
		log_info("worker %u: restarting in %u ms", c->index, delay);
	ev_timer_stop(m->loop, &c->restart);
	ev_timer_set(&c->restart, delay / 1000.0, 0.);
	ev_timer_start(m->loop, &c->restart);
}

/* --- listeners ---------------------------------------------------------- */

/* A socket systemd passed us for this address, or -1. */
static int
master_listen_inherited(const struct config_addr *a, int nsd)
{
	int fd;

	for (fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + nsd; fd++)
		if (sd_is_socket_sockaddr(fd, SOCK_STREAM,
		    (const struct sockaddr *)&a->ss, a->len, 1) > 0)
			return fd;
	return -1;
}

static int
master_listen_one(const struct config_addr *a)
{
	int fd, one = 1, r;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	/* [::]:443 must not take 0.0.0.0:443 away from another line */
	if (a->ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0)
		goto fail;
	if (listen(fd, MASTER_LISTEN_BACKLOG) < 0)
		goto fail;
	return fd;
fail:
	r = -errno;
	close(fd);
	return r;
}

static void
master_listen(struct master *m)
{
	struct config *cfg = m->cfg;
	struct frontend *fe;
	unsigned i, j;
	int nsd, fd, fl;

	/* socket activation: take matching sockets, open the others */
	if ((nsd = sd_listen_fds(1)) < 0)
		nsd = 0;
	for (i = 0; i < cfg->nfrontends; i++) {
		fe = &cfg->frontends[i];
		for (j = 0; j < fe->nlisten; j++) {
			if ((fd = master_listen_inherited(&fe->listen[j],
			    nsd)) >= 0) {
				fl = fcntl(fd, F_GETFL);
				if (fl < 0 || fcntl(fd, F_SETFL,
				    fl | O_NONBLOCK) < 0 ||
				    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
					fatal("frontend %s: socket from systemd "
					    "for %s", fe->name,
					    fe->listen[j].text);
				log_info("frontend %s: listening on %s "
				    "(from systemd)", fe->name,
				    fe->listen[j].text);
			} else if ((fd = master_listen_one(
			    &fe->listen[j])) < 0) {
				fatalx("frontend %s: cannot listen on %s: %s",
				    fe->name, fe->listen[j].text,
				    strerror(-fd));
			} else {
				log_info("frontend %s: listening on %s",
				    fe->name, fe->listen[j].text);
			}
			fe->listen_fd[j] = fd;
		}
	}
}

static void
master_listen_close(struct master *m)
{
	struct frontend *fe;
	unsigned i, j;

	for (i = 0; i < m->cfg->nfrontends; i++) {
		fe = &m->cfg->frontends[i];
		for (j = 0; j < fe->nlisten; j++) {
			if (fe->listen_fd[j] >= 0)
				close(fe->listen_fd[j]);
			fe->listen_fd[j] = -1;
		}
	}
}

/* --- workers ------------------------------------------------------------ */

static void
master_worker_dispatch(struct master *m, struct master_child *w,
    struct ipc_msg *msg)
{
	struct ipc_reply rep;
	int r;

	switch (msg->hdr.type) {
	case IPC_HELLO:
		if ((r = ipc_hello_check(msg, IPC_ROLE_WORKER)) < 0) {
			log_warnx("worker %u (pid %ld): bad hello: %s; killing "
			    "it", w->index, (long)w->pid, strerror(-r));
			kill(w->pid, SIGKILL);
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
	case IPC_WORKER_STATS_REPLY:
	case IPC_WORKER_REKEY_REPLY:
	case IPC_WORKER_CERT_REPLY:
	case IPC_ERROR:
		control_dispatch_worker(m, w, msg);
		break;
	default:
		log_warnx("worker %u: unexpected %s", w->index,
		    ipc_type_name(msg->hdr.type));
		break;
	}
}

/*
 * Read one message from a child's channel (a worker's or keyd's).  Returns
 * 1 with *out allocated (free it after ipc_msg_close_fds()), -EAGAIN when
 * there is nothing to take now, 0 when the child closed its end (a reset
 * is a child that died with our message unread), or a negative errno for a
 * message that breaks the protocol.  The message is 16 KiB, hence the heap.
 */
int
master_chan_recv(int fd, enum ipc_role peer, struct ipc_msg **out)
{
	const struct ipc_ends ends = { IPC_ROLE_MASTER, peer };
	struct ipc_msg *msg;
	int r;

	*out = NULL;
	if ((msg = malloc(sizeof(*msg))) == NULL) {
		log_warnx("%s: out of memory", __func__);
		return -EAGAIN;		/* level-triggered: we come back */
	}
	r = ipc_recv(fd, &ends, msg);
	if (r == -ECONNRESET)
		r = 0;
	if (r <= 0) {
		free(msg);
		return r;
	}
	*out = msg;
	return 1;
}

static void
master_worker_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct master *m = ev_userdata(loop);
	struct master_child *w = container_of(io, struct master_child, io);
	struct ipc_msg *msg;
	int r;

	if ((r = master_chan_recv(w->fd, IPC_ROLE_WORKER, &msg)) == -EAGAIN)
		return;
	if (r <= 0) {
		/* without its channel a worker can be neither asked nor stopped */
		if (r < 0)
			log_warnx("worker %u (pid %ld): bad message: %s; "
			    "killing it", w->index, (long)w->pid,
			    strerror(-r));
		ev_io_stop(loop, &w->io);
		close(w->fd);
		w->fd = -1;
		if (w->pid > 0)
			kill(w->pid, SIGKILL);
		return;
	}
	master_worker_dispatch(m, w, msg);
	ipc_msg_close_fds(msg);
	free(msg);
}

static void
master_worker_child_cb(struct ev_loop *loop, ev_child *ch, int revents)
{
	struct master *m = ev_userdata(loop);
	struct master_child *w = container_of(ch, struct master_child, child);
	int st = ch->rstatus;

	ev_child_stop(loop, ch);
	if (m->stopping && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		log_info("worker %u (pid %ld) exited", w->index,
		    (long)ch->rpid);
	else if (WIFEXITED(st))
		log_warnx("worker %u (pid %ld) exited with status %d",
		    w->index, (long)ch->rpid, WEXITSTATUS(st));
	else
		log_warnx("worker %u (pid %ld) killed by signal %d (%s)",
		    w->index, (long)ch->rpid, WTERMSIG(st),
		    strsignal(WTERMSIG(st)));
	control_child_gone(m, w);
	if (w->fd >= 0) {
		ev_io_stop(loop, &w->io);
		close(w->fd);
		w->fd = -1;
	}
	w->pid = 0;
	master_status_notify(m);
	if (m->stopping) {
		master_stop_check(m);
		return;
	}
	master_child_backoff(w);
}

static void
master_worker_restart_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master *m = ev_userdata(loop);
	struct master_child *w = container_of(t, struct master_child, restart);

	if (m->stopping || w->pid > 0)
		return;
	w->restarts++;
	master_worker_start(m, w);
}

/* One descriptor the worker keeps across its exec. */
static int
master_worker_inherit(int fd)
{
	return fd < 0 || fcntl(fd, F_SETFD, 0) == 0 ? 0 : -errno;
}

/*
 * Runs in the forked child: every descriptor of the master is close-on-exec,
 * so clearing the flag on exactly the worker's own (its channels, every
 * listener, the config) is what decides what the worker holds.
 */
static __dead void
master_worker_exec(const struct master *m, const struct master_child *w,
    int master_fd, int keyd_fd, int conf_fd)
{
	const struct frontend *fe;
	char idx[16], mfd[16], kfd[16], cfd[16];
	const char *argv[10];
	unsigned i, j;
	int r = 0, n = 0;

	/* its own process group: a terminal's ^C is the master's */
	setpgid(0, 0);
	r |= master_worker_inherit(master_fd);
	r |= master_worker_inherit(keyd_fd);
	r |= master_worker_inherit(conf_fd);
	for (i = 0; i < m->cfg->nfrontends; i++) {
		fe = &m->cfg->frontends[i];
		for (j = 0; j < fe->nlisten; j++)
			r |= master_worker_inherit(fe->listen_fd[j]);
	}
	if (r != 0) {
		log_warn("worker %u: fcntl", w->index);
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
	execv("/proc/self/exe", (char *const *)argv);
	log_warn("worker %u: cannot execute /proc/self/exe", w->index);
	_exit(127);
}

/*
 * The config a new worker starts with, as main.c reads it back: a memfd of
 * a struct config_blob_hdr and the struct config, sealed so that nothing
 * can change or resize it once written.  Written for each start, since a
 * reload moves frontends to new key generations.
 */
static int
master_worker_conf_fd(const struct config *cfg)
{
	const struct config_blob_hdr hdr = {
		CONFIG_BLOB_MAGIC, CONFIG_BLOB_VERSION, sizeof(*cfg)
	};
	const struct {
		const void	*p;
		size_t		len;
	} part[2] = { { &hdr, sizeof(hdr) }, { cfg, sizeof(*cfg) } };
	size_t i, off;
	ssize_t n;
	int fd, r;

	if ((fd = memfd_create("moatd-config", MFD_CLOEXEC |
	    MFD_ALLOW_SEALING)) < 0)
		return -errno;
	for (i = 0; i < 2; i++) {
		for (off = 0; off < part[i].len; off += (size_t)n) {
			n = write(fd, (const char *)part[i].p + off,
			    part[i].len - off);
			if (n < 0 && errno == EINTR) {
				n = 0;
				continue;
			}
			if (n <= 0)
				goto fail;
		}
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_WRITE | F_SEAL_SHRINK |
	    F_SEAL_GROW) < 0)
		goto fail;
	return fd;
fail:
	r = errno != 0 ? -errno : -EIO;
	close(fd);
	return r;
}

static void
master_worker_start(struct master *m, struct master_child *w)
{
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
	if ((conf_fd = master_worker_conf_fd(m->cfg)) < 0) {
		log_warnx("worker %u: config memfd: %s", w->index,
		    strerror(-conf_fd));
		goto fail;
	}
	if ((pid = fork()) < 0) {
		log_warn("worker %u: fork", w->index);
		goto fail;
	}
	if (pid == 0)
		master_worker_exec(m, w, mw[1], keyd_fd, conf_fd);
	close(mw[1]);
	close(keyd_fd);
	close(conf_fd);
	w->pid = pid;
	w->fd = mw[0];
	w->started = ev_now(m->loop);
	ev_io_set(&w->io, w->fd, EV_READ);
	ev_io_start(m->loop, &w->io);
	ev_child_set(&w->child, pid, 0);
	ev_child_start(m->loop, &w->child);
	log_info("worker %u started (pid %ld)", w->index, (long)pid);
	master_status_notify(m);
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
	master_child_backoff(w);
}

/* --- signals and shutdown ----------------------------------------------- */

void
master_stop_check(struct master *m)
{
	if (!m->stopping || master_workers_running(m) > 0)
		return;
	ev_timer_stop(m->loop, &m->drain);
	if (m->keyd.pid > 0) {
		if (!ev_is_active(&m->keyd_kill))
			master_keyd_stop(m);
		return;
	}
	ev_break(m->loop, EVBREAK_ALL);
}

static void
master_kill_workers(struct master *m)
{
	unsigned i;

	for (i = 0; i < m->cfg->workers; i++)
		if (m->workers[i].pid > 0)
			kill(m->workers[i].pid, SIGKILL);
}

static void
master_drain_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master *m = ev_userdata(loop);

	log_warnx("drain timeout (%u ms): killing %u workers",
	    m->cfg->drain_timeout_ms, master_workers_running(m));
	master_kill_workers(m);
}

static void
master_shutdown(struct master *m, const char *why)
{
	struct master_child *w;
	unsigned i;
	int r;

	if (m->stopping) {
		log_warnx("%s again: killing the workers now", why);
		master_kill_workers(m);
		return;
	}
	m->stopping = 1;
	sd_notify(0, "STOPPING=1");
	log_info("%s: stopping; %u workers drain for up to %u ms", why,
	    master_workers_running(m), m->cfg->drain_timeout_ms);
	/* new connections would queue where nobody accepts them any more */
	master_listen_close(m);
	control_close(m);
	ev_timer_stop(m->loop, &m->keyd.restart);
	for (i = 0; i < m->cfg->workers; i++) {
		w = &m->workers[i];
		ev_timer_stop(m->loop, &w->restart);
		if (w->pid <= 0)
			continue;
		if (w->fd < 0 || (r = ipc_send(w->fd, IPC_WORKER_STOP,
		    master_next_id(m), NULL, 0, NULL, 0)) < 0) {
			log_warnx("worker %u (pid %ld): cannot ask it to stop; "
			    "killing it", w->index, (long)w->pid);
			kill(w->pid, SIGKILL);
		}
	}
	master_status_notify(m);
	ev_timer_set(&m->drain, m->cfg->drain_timeout_ms / 1000.0, 0.);
	ev_timer_start(m->loop, &m->drain);
	master_stop_check(m);
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
		log_info("SIGHUP: reloading certificates and keys");
		control_reload(m, NULL);
		break;
	}
}

/* --- start-up ----------------------------------------------------------- */

int
master_main(struct config *cfg)
{
	struct master *m;
	struct master_child *w;
	char err[1024];
	unsigned i;
	int r;

	if (geteuid() != 0)
		fatalx("moatd must be started as root: it binds, chroots and "
		    "drops to users %s and %s", cfg->user, cfg->keyd_user);
	if (cfg->workers > MASTER_MAX_WORKERS)
		fatalx("%s: at most %u workers", cfg->path, MASTER_MAX_WORKERS);
	if ((m = calloc(1, sizeof(*m))) == NULL)
		fatal("%s: calloc", __func__);
	m->magic = MASTER_MAGIC;
	m->cfg = cfg;
	m->control_fd = -1;
	m->keyd.fd = -1;

	signal(SIGPIPE, SIG_IGN);
	if ((m->loop = ev_default_loop(EVFLAG_NOENV | EVBACKEND_EPOLL)) == NULL)
		fatalx("cannot create the event loop (epoll)");
	ev_set_userdata(m->loop, m);
	m->started = ev_now(m->loop);

	if ((r = privdrop_prepare_chroot(cfg->chroot_dir)) < 0)
		fatalx("chroot directory %s: %s (it must be an empty directory "
		    "owned by root, not writable by others)", cfg->chroot_dir,
		    strerror(-r));
	master_listen(m);
	if ((r = control_open(m)) < 0)
		fatalx("control socket %s: %s", cfg->control, strerror(-r));

	ev_signal_init(&m->sig_term, master_signal_cb, SIGTERM);
	ev_signal_init(&m->sig_int, master_signal_cb, SIGINT);
	ev_signal_init(&m->sig_hup, master_signal_cb, SIGHUP);
	ev_signal_start(m->loop, &m->sig_term);
	ev_signal_start(m->loop, &m->sig_int);
	ev_signal_start(m->loop, &m->sig_hup);
	ev_init(&m->drain, master_drain_cb);

	if (master_keyd_start(m, err, sizeof(err)) < 0) {
		control_close(m);
		fatalx("%s", err);
	}

	for (i = 0; i < cfg->workers; i++) {
		w = &m->workers[i];
		w->m = m;
		w->what = "worker";
		w->index = i;
		w->fd = -1;
		w->backoff_ms = MASTER_BACKOFF_MIN_MS;
		ev_init(&w->io, master_worker_read_cb);
		ev_init(&w->child, master_worker_child_cb);
		ev_init(&w->restart, master_worker_restart_cb);
	}
	for (i = 0; i < cfg->workers; i++)
		master_worker_start(m, &m->workers[i]);

	m->running = 1;
	sd_notifyf(0, "READY=1\nMAINPID=%ld", (long)getpid());
	master_status_notify(m);
	log_info("moatd %s ready: %u frontends, %u workers, control %s",
	    MOAT_VERSION, cfg->nfrontends, cfg->workers, cfg->control);

	ev_run(m->loop, 0);

	control_close(m);
	log_info("moatd stopped");
	r = m->exit_code;
	m->magic = 0;
	free(m);
	return r;
}
