/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cred.h -- a frontend's certificate generations (struct worker_cred in
 * state.h): the chains with their keyd-backed keys, refcounted by the sessions
 * that use it, replaced by a rotation.
 */
#ifndef MOAT_CRED_H
#define MOAT_CRED_H

#include <stdint.h>

#include "ipc.h"
#include "state.h"

/* cred.c */
int	cred_frontend_load(struct worker_frontend *wf);
int	cred_frontend_rotate(struct worker_frontend *wf, const int *fds,
	    unsigned nfds, unsigned generation, uint32_t ocsp_mask);
void	cred_ref(struct worker_cred *wc);
void	cred_unref(struct worker_cred *wc);
int	cred_keys_update(struct worker *w, const struct ipc_key_info *keys,
	    unsigned n, int initial);
int	cred_served(const struct conn *c);

#endif
