/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sandbox_worker.h -- the worker's seccomp allowlist (sandbox_worker.c).
 */
#ifndef MOAT_SANDBOX_WORKER_H
#define MOAT_SANDBOX_WORKER_H

/* sandbox_worker.c */
void	sandbox_worker_load(int debug);

#endif
