/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * child.c -- supervision of one child process, worker or keyd.
 *
 * The channel: each readable event takes one message (16 KiB, hence the
 * heap) and hands it to the kind's dispatcher; a message that breaks the
 * protocol, or a channel that closes, leaves a child that can be neither
 * asked nor stopped, so it is killed.  A reset reads as a close: the child
 * died with our message unread.
 *
 * The exit: logged by the kind, then whatever it was asked is settled
 * (req.c) and, unless the master is stopping, it starts again after a
 * backoff that begins at 100 ms, doubles up to 5 s, and begins again once
 * the child has run 10 s.  While stopping, master.c sees who is left.
 *
 * A child asked to stop outside a shutdown (a worker that could not take
 * a rotation) gets a deadline, child_stop_deadline(): one that ignores
 * the request, or cannot hear it, is killed when it passes, so it cannot
 * hold its old certificate's key, or its slot, for ever.
 *
 * child_exec() is the last step in a forked child, for both kinds: the
 * master's signal handling is not the child's, nor is the terminal's ^C.
 */
#include "config.h"

#include <sys/types.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <systemd/sd-daemon.h>

#include "child.h"
#include "ipc.h"
#include "log.h"
#include "req.h"
#include "util.h"

/*
 * One message from c's channel: 1 with *out allocated (free it after
 * ipc_msg_close_fds()), -EAGAIN when there is nothing to take now, 0 when
 * the child closed its end, or a negative errno for a message that breaks
 * the protocol (ipc_recv() checked that this peer may send it).
 */
static int
child_recv(struct master_child *c, struct ipc_msg **out)
{
	const struct ipc_ends ends = { IPC_ROLE_MASTER, c->role };
	struct ipc_msg *msg;
	int r;

	*out = NULL;
	if ((msg = malloc(sizeof(*msg))) == NULL) {
		log_warnx("%s: out of memory", __func__);
		return -EAGAIN;		/* level-triggered: we come back */
	}
	r = ipc_recv(c->fd, &ends, msg);
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
child_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct master_child *c = container_of(io, struct master_child, io);
	struct ipc_msg *msg;
	int r;

	if ((r = child_recv(c, &msg)) == -EAGAIN)
		return;
	if (r <= 0) {
		if (r < 0)
			log_warnx("%s (pid %ld): bad message: %s; killing it",
			    c->name, (long)c->pid, strerror(-r));
		else if (c->ops->closed != NULL)
			c->ops->closed(c);
		child_chan_close(c);
		child_kill(c, SIGKILL);
		return;
	}
	c->ops->dispatch(c, msg);
	ipc_msg_close_fds(msg);
	free(msg);
}

static void
child_exit_cb(struct ev_loop *loop, ev_child *ch, int revents)
{
	struct master_child *c = container_of(ch, struct master_child, child);
	struct master *m = c->m;
	pid_t pid = c->pid;

	ev_child_stop(loop, ch);
	ev_timer_stop(loop, &c->stop_deadline);
	c->ops->exited(c, ch->rstatus);
	/* gone before its requests settle: a new one cannot ask it */
	child_chan_close(c);
	c->pid = 0;
	req_child_gone(&m->reqs, c, pid);
	child_status_notify(m);
	if (!m->stopping)
		child_backoff(c);
}

static void
child_restart_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master_child *c = container_of(t, struct master_child, restart);

	if (c->m->stopping || c->pid > 0)
		return;
	c->restarts++;
	c->ops->start(c);
}

static void
child_stop_deadline_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master_child *c = container_of(t, struct master_child,
	    stop_deadline);

	if (c->pid <= 0)
		return;
	log_warnx("%s (pid %ld) did not stop when asked; killing it", c->name,
	    (long)c->pid);
	child_kill(c, SIGKILL);
}

/* c was asked to stop: if it still runs after seconds, SIGKILL. */
void
child_stop_deadline(struct master_child *c, double seconds)
{
	ev_timer_stop(c->m->loop, &c->stop_deadline);
	ev_timer_set(&c->stop_deadline, seconds, 0.);
	ev_timer_start(c->m->loop, &c->stop_deadline);
}

void
child_init(struct master_child *c, struct master *m,
    const struct child_ops *ops, enum ipc_role role, unsigned index,
    const char *name)
{
	memset(c, 0, sizeof(*c));
	c->m = m;
	c->ops = ops;
	c->role = role;
	c->index = index;
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->fd = -1;
	c->backoff_ms = MASTER_BACKOFF_MIN_MS;
	ev_init(&c->io, child_read_cb);
	ev_init(&c->child, child_exit_cb);
	ev_init(&c->restart, child_restart_cb);
	ev_init(&c->stop_deadline, child_stop_deadline_cb);
}

/*
 * A reload hands a running child over to another generation (handover.c):
 * the process, its channel and its watchers move from src to dst, which
 * belongs to `to'; src is empty afterwards.  libev holds watchers by
 * address, so each is stopped and started again at its new place, within
 * this one callback: no exit can be reaped in between.  What src was asked
 * and has not answered is settled as gone: the asker cannot follow it.
 */
void
child_move(struct master_child *dst, struct master_child *src,
    struct master *to)
{
	struct ev_loop *loop = src->m->loop;
	int reading = ev_is_active(&src->io);
	int watching = ev_is_active(&src->child);
	int deadline = ev_is_active(&src->stop_deadline);
	ev_tstamp left = deadline ? ev_timer_remaining(loop,
	    &src->stop_deadline) : 0.;

	ev_io_stop(loop, &src->io);
	ev_child_stop(loop, &src->child);
	ev_timer_stop(loop, &src->restart);
	ev_timer_stop(loop, &src->stop_deadline);
	if (src->pid > 0)
		req_child_gone(&src->m->reqs, src, src->pid);
	memcpy(dst, src, sizeof(*dst));
	dst->m = to;
	ev_init(&dst->io, child_read_cb);
	ev_init(&dst->child, child_exit_cb);
	ev_init(&dst->restart, child_restart_cb);
	ev_init(&dst->stop_deadline, child_stop_deadline_cb);
	if (reading)
		child_watch(dst);
	if (watching) {
		ev_child_set(&dst->child, dst->pid, 0);
		ev_child_start(loop, &dst->child);
	}
	if (deadline)
		child_stop_deadline(dst, left);
	child_init(src, src->m, src->ops, src->role, src->index, src->name);
}

/* Forked as pid, our end of its channel fd: watch for its exit. */
void
child_started(struct master_child *c, pid_t pid, int fd, ev_tstamp started)
{
	c->pid = pid;
	c->fd = fd;
	c->ready = 0;
	c->stop_asked = 0;
	c->started = started;
	ev_child_set(&c->child, pid, 0);
	ev_child_start(c->m->loop, &c->child);
}

/* Read its channel in the loop from now on. */
void
child_watch(struct master_child *c)
{
	ev_io_set(&c->io, c->fd, EV_READ);
	ev_io_start(c->m->loop, &c->io);
}

void
child_chan_close(struct master_child *c)
{
	if (c->fd >= 0) {
		ev_io_stop(c->m->loop, &c->io);
		close(c->fd);
		c->fd = -1;
	}
	c->ready = 0;
}

void
child_kill(struct master_child *c, int sig)
{
	if (c->pid > 0)
		kill(c->pid, sig);
}

/* Schedule the next start of a dead child (see the comment on top). */
void
child_backoff(struct master_child *c)
{
	struct master *m = c->m;
	unsigned delay;

	if (ev_now(m->loop) - c->started >= MASTER_STABLE_S)
		c->backoff_ms = MASTER_BACKOFF_MIN_MS;
	delay = c->backoff_ms;
	c->backoff_ms = c->backoff_ms * 2 > MASTER_BACKOFF_MAX_MS ?
	    MASTER_BACKOFF_MAX_MS : c->backoff_ms * 2;
	log_info("%s: restarting in %u ms", c->name, delay);
	ev_timer_stop(m->loop, &c->restart);
	ev_timer_set(&c->restart, delay / 1000.0, 0.);
	ev_timer_start(m->loop, &c->restart);
}

/*
 * In the forked child, once its descriptors are in place: default signal
 * handling and an empty mask (libev's handlers and the master's mask are
 * not the child's business), its own process group (a terminal's ^C is for
 * the master to handle), then the program.
 */
__dead void
child_exec(const struct master_child *c, const char *path,
    const char *const argv[])
{
	sigset_t none;
	int sig;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	setpgid(0, 0);
	execv(path, (char *const *)argv);
	log_warn("%s: cannot execute %s", c->name, path);
	_exit(127);
}

unsigned
child_workers_running(const struct master *m)
{
	unsigned i, n = 0;

	for (i = 0; i < m->cfg->workers; i++)
		if (m->workers[i].pid > 0)
			n++;
	return n;
}

/* Workers of the generations a reload retired that still run. */
unsigned
child_workers_draining(const struct master *m)
{
	const struct master *g;
	unsigned n = 0;

	for (g = m->retired; g != NULL; g = g->retired_next)
		n += child_workers_running(g);
	return n;
}

/* systemd's STATUS= line: the running generation, and what still drains. */
void
child_status_notify(struct master *m)
{
	char draining[48] = "";
	unsigned n;

	if (!m->running)
		return;		/* also: a retired generation (handover.c) */
	if ((n = child_workers_draining(m)) > 0)
		snprintf(draining, sizeof(draining), ", %u from before a "
		    "reload draining", n);
	sd_notifyf(0, "STATUS=%s%u of %u workers running%s, keyd %s",
	    m->stopping ? "stopping: " : "", child_workers_running(m),
	    m->cfg->workers, draining, m->keyd.ready ? "ready" : "down");
}
