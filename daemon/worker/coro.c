/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * coro.c -- coroutines on pooled, guarded stacks (ucontext).
 *
 * A handshake call that may need a signature runs here.  Each coroutine
 * gets a CORO_STACK_SIZE stack mmap'd with MAP_NORESERVE plus a PROT_NONE
 * guard region (CORO_GUARD_SIZE) below it, so an overflow faults instead
 * of silently writing into the heap; pages are committed only when
 * touched, so an idle stack costs address space, not memory.  The pool
 * keeps up to CORO_POOL_KEEP idle stacks for reuse and unmaps the rest: it
 * grows to the number of handshakes suspended at once and shrinks back
 * afterwards.
 *
 * makecontext()/swapcontext() are used rather than hand-written assembly:
 * they are portable and the cost (one rt_sigprocmask per switch, which the
 * seccomp filter allows) is small next to a signature.
 */
#include "config.h"

#include <sys/mman.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include "log.h"
#include "coro.h"

#define CORO_MAGIC		0x436f526fu	/* "CoRo" */
#define CORO_STACK_SIZE		(256u * 1024u)
/*
 * Below each stack: larger than any single frame the handshake's callees
 * make (GMP takes up to 64 KiB at once from the stack with alloca),
 * so an overflow lands in the guard instead of jumping past it.
 */
#define CORO_GUARD_SIZE		(128u * 1024u)
#define CORO_POOL_KEEP		16u

struct coro {
	unsigned	magic;
	ucontext_t	ctx;		/* the coroutine's own context */
	ucontext_t	back;		/* where yield and the end go back to */
	void		*map;		/* guard page + stack */
	size_t		maplen;
	size_t		guard;
	void		(*fn)(void *);
	void		(*done)(void *);
	void		*arg;
	int		finished;
	struct coro	*next;		/* idle pool */
};

static struct coro	*coro_pool;	/* idle, ready for reuse */
static unsigned		 coro_nidle;
static struct coro	*coro_cur;	/* running now, NULL on the loop stack */

static struct coro *
coro_alloc(void)
{
	struct coro *co;
	long pg;

	if (coro_pool != NULL) {
		co = coro_pool;
		coro_pool = co->next;
		coro_nidle--;
		return co;
	}
	if ((co = calloc(1, sizeof(*co))) == NULL)
		return NULL;
	pg = sysconf(_SC_PAGESIZE);
	if (pg <= 0)
		pg = 4096;
	co->guard = (CORO_GUARD_SIZE + (size_t)pg - 1) / (size_t)pg * (size_t)pg;
	co->maplen = CORO_STACK_SIZE + co->guard;
	co->map = mmap(NULL, co->maplen, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (co->map == MAP_FAILED) {
		free(co);
		return NULL;
	}
	/* Stacks grow down: the guard is the lowest part. */
	if (mprotect(co->map, co->guard, PROT_NONE) < 0) {
		munmap(co->map, co->maplen);
		free(co);
		return NULL;
	}
	co->magic = CORO_MAGIC;
	return co;
}

static void
coro_release(struct coro *co)
{
	co->fn = NULL;
	co->done = NULL;
	co->arg = NULL;
	if (coro_nidle < CORO_POOL_KEEP) {
		co->next = coro_pool;
		coro_pool = co;
		coro_nidle++;
		return;
	}
	munmap(co->map, co->maplen);
	co->magic = 0;
	free(co);
}

static void
coro_trampoline(void)
{
	struct coro *co = coro_cur;

	co->fn(co->arg);
	co->finished = 1;
	/* Never returns: the loop side releases this stack. */
	setcontext(&co->back);
	fatal("%s: setcontext", __func__);
}

/*
 * Switch into co from the loop's stack.  Returns 1 if it yielded (it is
 * suspended), 0 if it finished (its done callback has run).
 */
static int
coro_enter(struct coro *co)
{
	void (*done)(void *);
	void *arg;

	if (co == NULL || co->magic != CORO_MAGIC || co->finished)
		fatalx("%s: bad coroutine", __func__);
	if (coro_cur != NULL)
		fatalx("%s: nested coroutine switch", __func__);
	coro_cur = co;
	if (swapcontext(&co->back, &co->ctx) < 0)
		fatal("%s: swapcontext", __func__);
	coro_cur = NULL;
	if (!co->finished)
		return 1;

	done = co->done;
	arg = co->arg;
	coro_release(co);
	if (done != NULL)
		done(arg);
	return 0;
}

/*
 * Prepare co's context to start in the trampoline.  Kept out of line:
 * getcontext() is returns-twice to the compiler, though this one never
 * returns twice (the context is rewritten by makecontext() before use).
 */
static __attribute__((noinline)) int
coro_ctx_make(struct coro *co)
{
	if (getcontext(&co->ctx) < 0)
		return -1;
	co->ctx.uc_stack.ss_sp = (uint8_t *)co->map + co->guard;
	co->ctx.uc_stack.ss_size = CORO_STACK_SIZE;
	co->ctx.uc_link = NULL;
	makecontext(&co->ctx, coro_trampoline, 0);
	return 0;
}

/*
 * Run fn(arg) on a pooled stack.  Returns 0 when fn finished (done(arg) has
 * been called), 1 when it is suspended in coro_yield(), or -ENOMEM when no
 * stack could be had (neither fn nor done ran).
 */
int
coro_run(void (*fn)(void *), void (*done)(void *), void *arg)
{
	struct coro *co;

	if ((co = coro_alloc()) == NULL)
		return -ENOMEM;
	if (coro_ctx_make(co) < 0) {
		coro_release(co);
		return -errno;
	}
	co->fn = fn;
	co->done = done;
	co->arg = arg;
	co->finished = 0;
	return coro_enter(co);
}

/* Suspend the running coroutine; returns when someone resumes it. */
void
coro_yield(void)
{
	struct coro *co = coro_cur;

	if (co == NULL)
		fatalx("%s: not in a coroutine", __func__);
	coro_cur = NULL;
	if (swapcontext(&co->ctx, &co->back) < 0)
		fatal("%s: swapcontext", __func__);
	/* coro_enter() set coro_cur to us again before switching here. */
}

/* Continue a suspended coroutine; same return values as coro_run(). */
int
coro_resume(struct coro *co)
{
	return coro_enter(co);
}

struct coro *
coro_self(void)
{
	return coro_cur;
}

void *
coro_self_arg(void)
{
	return coro_cur != NULL ? coro_cur->arg : NULL;
}
