/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * coro.h -- suspendable calls for a single-threaded worker.
 *
 * GnuTLS 3.7 calls an external key's sign callback synchronously, deep
 * inside gnutls_handshake(), and the callback cannot return "try again".
 * To keep the loop serving while keyd works, every handshake call runs on a
 * small stack of its own (a coroutine); the key callback yields back to the
 * loop and the loop resumes it when keyd answers.  coro.c says how
 * the stacks are made and pooled.
 *
 * Rules: coroutines are started and resumed only from the loop's own stack
 * (never from inside another coroutine), and only the coroutine itself may
 * yield.  When the coroutine's function returns, the stack goes back to the
 * pool and its done() callback runs on the loop's stack.
 */
#ifndef MOAT_CORO_H
#define MOAT_CORO_H

#include <stddef.h>

struct coro;

/* coro.c */
int	coro_run(void (*fn)(void *), void (*done)(void *), void *arg);
void	coro_yield(void);
int	coro_resume(struct coro *co);
struct coro *coro_self(void);
void	*coro_self_arg(void);

#endif
