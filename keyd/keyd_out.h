/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * keyd_out.h -- what moat-keyd says to a worker (keyd_out.c).
 */
#ifndef MOAT_KEYD_OUT_H
#define MOAT_KEYD_OUT_H

#include <stddef.h>
#include <stdint.h>

#include "keyd_types.h"

/* keyd_out.c */
uint64_t keyd_out_now_us(void);
void	keyd_out_free(struct keyd_out *o);
void	keyd_out_log(struct keyd *kd, struct keyd_chan *ch, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
int	keyd_out_send(struct keyd *kd, struct keyd_chan *ch, uint16_t type,
	    uint32_t id, const void *payload, size_t len);
void	keyd_out_error(struct keyd *kd, struct keyd_chan *ch, uint32_t id,
	    int code, const char *msg);
void	keyd_out_fail(struct keyd *kd, struct keyd_chan *ch, uint32_t id,
	    int code, enum keyd_fail kind, const char *fmt, ...)
	    __attribute__((format(printf, 6, 7)));
void	keyd_out_rl_log(struct keyd *kd, struct keyd_chan *ch, uint64_t count,
	    int first);
void	keyd_out_limited(struct keyd *kd, struct keyd_chan *ch, uint32_t id,
	    const char *what);

#endif
