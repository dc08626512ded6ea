/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control.h -- the control socket's transport (control.c; the protocol
 * itself is ipc/control_proto.h).
 *
 * The transport accepts a client, checks who it is, reads its one command
 * line and hands it to the function given to control_open(), which knows
 * the commands (control_cmd.c).  That function, or whoever it hands the
 * client on to, writes the answer into control_client_answer() and ends it
 * with control_client_done(): the answer is sent and the connection
 * closed.  A client can go away first (its idle timeout); whoever holds it
 * then is told through the hook set with control_client_on_gone().
 */
#ifndef MOAT_MASTER_CONTROL_H
#define MOAT_MASTER_CONTROL_H

#include <ev.h>

#include "answer.h"

struct control;
struct control_client;

/* control.c */
/* run gets each command line: NUL-terminated, no newline, its to modify. */
int	control_open(struct control **out, struct ev_loop *loop,
	    const char *path,
	    void (*run)(struct control_client *c, char *line, void *arg),
	    void *arg);
void	control_close(struct control *ctl);
void	control_free(struct control *ctl);
struct answer *control_client_answer(struct control_client *c);
void	control_client_done(struct control_client *c);
void	control_client_on_gone(struct control_client *c, void (*gone)(void *),
	    void *arg);

#endif
