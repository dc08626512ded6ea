/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conn_watch.h -- arming a connection's watchers and timers, for conn.c
 * only (conn_watch.c).
 */
#ifndef MOAT_CONN_WATCH_H
#define MOAT_CONN_WATCH_H

struct conn;

void	conn_timer_once(struct conn *c, unsigned ms);
void	conn_timer_idle(struct conn *c, unsigned ms);
void	conn_timer_touch(struct conn *c);
void	conn_rekey_timer_sync(struct conn *c);
void	conn_client_watch(struct conn *c, int events);
void	conn_backend_watch(struct conn *c, int events);

#endif
