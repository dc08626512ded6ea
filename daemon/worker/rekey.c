/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rekey.c -- drives rekey-concurrency between the renegotiation machine
 * (reneg.c), the slots (pace.c) and the pump (proxy.c): a request the
 * machine queued is handed to the pump once it holds a slot, and a slot
 * freed passes to the connections waiting for one.  Split out of conn.c:
 * it changes no connection's state and arms no watcher; the pump is asked
 * to run next turn through defer.c, which conn.c serves.
 */
#include "config.h"

#include "defer.h"
#include "pace.h"
#include "proxy.h"
#include "reneg.h"
#include "state.h"
#include "rekey.h"

/* Send what the machine queued, and let the pump run next turn. */
static void
rekey_send(struct conn *c)
{
	proxy_queue_reneg(c);
	defer_conn(c, 0);	/* the pump runs next turn */
}

/* c's pacing slot is free: the connections that got one send now. */
void
rekey_release(struct conn *c)
{
	struct conn *n;

	if (pace_release(c) < 0)
		return;
	while ((n = pace_next(c->w)) != NULL)
		rekey_send(n);
}

/*
 * After anything the renegotiation machine was told: a slot held by a
 * renegotiation that is over is given back, and a request the machine
 * queued goes out, now or once pace.c has a slot for it.
 */
void
rekey_gate(struct conn *c)
{
	if (c->reneg_slot && c->reneg.state == RENEG_IDLE)
		rekey_release(c);
	if (c->reneg.state != RENEG_QUEUED ||
	    (c->ctl & (CTL_HELLO_REQUEST | CTL_KEY_UPDATE)))
		return;
	if (pace_take(c))
		rekey_send(c);
}
