/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * noise.c -- the budget of records that carry no data (noise.h says why).
 */
#include "config.h"

#include "noise.h"

/* A wakeup of the pump begins: the connection's budget is whole again. */
void
noise_turn_begin(struct conn *c)
{
	c->noise_turn = 0;
}

int
noise_turn_spent(const struct conn *c)
{
	return c->noise_turn >= NOISE_PER_TURN;
}

/*
 * The pump read a record that carried no data; unasked: not an answer to
 * a request of ours (a HelloRequest's no_renegotiation).
 */
enum noise_verdict
noise_record(struct conn *c, int unasked)
{
	c->noise_turn++;
	if (unasked && ++c->noise_total > NOISE_MAX)
		return NOISE_END;
	return noise_turn_spent(c) ? NOISE_YIELD : NOISE_GO_ON;
}
