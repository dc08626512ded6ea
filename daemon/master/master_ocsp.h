/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * master_ocsp.h -- OCSP stapling: the response files, read and checked by
 * the master, handed to the workers as sealed copies (master_ocsp.c).
 */
#ifndef MOAT_MASTER_OCSP_H
#define MOAT_MASTER_OCSP_H

#include <stdint.h>

#include "conf.h"
#include "master_types.h"

/* master_ocsp.c */
void	master_ocsp_start(struct master *m);
void	master_ocsp_stop(struct master *m);
int	master_ocsp_read_fe(struct master *m, struct frontend *fe);
unsigned master_ocsp_fds(const struct frontend *fe, int *fds,
	    uint32_t *mask);

#endif
