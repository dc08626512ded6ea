/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conn_watch.c -- arming a connection's watchers and timers: conn.c's
 * helpers, and conn.c's alone (state.h: a connection's watchers belong to
 * it); they change no state and decide nothing.
 */
#include "config.h"

#include <ev.h>

#include "conn_watch.h"
#include "reneg.h"
#include "state.h"

/* A one-shot timeout (handshake, backend connect); 0 ms = none. */
void
conn_timer_once(struct conn *c, unsigned ms)
{
	ev_timer_stop(c->w->loop, &c->timer);
	if (ms == 0)
		return;
	ev_timer_set(&c->timer, ms / 1000., 0.);
	ev_timer_start(c->w->loop, &c->timer);
}

/* The idle timeout: restarted by conn_timer_touch() on traffic. */
void
conn_timer_idle(struct conn *c, unsigned ms)
{
	ev_timer_stop(c->w->loop, &c->timer);
	c->timer.repeat = ms / 1000.;
	if (ms > 0)
		ev_timer_again(c->w->loop, &c->timer);
}

void
conn_timer_touch(struct conn *c)
{
	c->t_moved = ev_now(c->w->loop);
	if ((c->state == CONN_PROXY || c->state == CONN_MAIL) &&
	    c->timer.repeat > 0.)
		ev_timer_again(c->w->loop, &c->timer);
}

/* The timer the renegotiation machine asked for, if it asked. */
void
conn_rekey_timer_sync(struct conn *c)
{
	struct reneg *r = &c->reneg;

	if (!r->timer_set)
		return;
	r->timer_set = 0;
	ev_timer_stop(c->w->loop, &c->rekey_timer);
	if (r->timer_s <= 0.)
		return;
	ev_timer_set(&c->rekey_timer, r->timer_s, 0.);
	ev_timer_start(c->w->loop, &c->rekey_timer);
}

static void
conn_watch(struct ev_loop *loop, ev_io *io, int fd, int events)
{
	if (events == 0) {
		ev_io_stop(loop, io);
		return;
	}
	if (ev_is_active(io) && io->fd == fd &&
	    (io->events & (EV_READ | EV_WRITE)) == events)
		return;
	ev_io_stop(loop, io);
	ev_io_set(io, fd, events);
	ev_io_start(loop, io);
}

void
conn_client_watch(struct conn *c, int events)
{
	conn_watch(c->w->loop, &c->cio, c->cfd, events);
}

void
conn_backend_watch(struct conn *c, int events)
{
	conn_watch(c->w->loop, &c->bio, c->bfd, events);
}
