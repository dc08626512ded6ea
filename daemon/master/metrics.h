/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * metrics.h -- stats.c's gathering in the Prometheus text format, for
 * `moatctl stats --prometheus` and the metrics-listen HTTP listener.
 */
#ifndef MOAT_MASTER_METRICS_H
#define MOAT_MASTER_METRICS_H

#include <stddef.h>

#include "answer.h"
#include "master_types.h"
#include "stats.h"

/* metrics.c */
void	metrics_answer(struct answer *a, const struct stats *s);
int	metrics_open(struct master *m, char *err, size_t errsize);
void	metrics_close(struct master *m);

#endif
