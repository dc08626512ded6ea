/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * roguelib.h -- take over a real, running moatd worker and speak on its
 * channels as the worker would, for tests/helpers/rogue_worker.c.
 *
 * A worker is started as
 *	moatd --worker INDEX --master-fd N --keyd-fd N --config-fd N
 * (daemon/main.c), so its channel numbers are on its command line.  As
 * root (ptrace rights over any process, non-dumpable ones included) we
 * stop it with SIGSTOP, so that only we read its channels from then on,
 * and copy its two channel descriptors with pidfd_getfd(2) (Linux 5.6).
 * The copies share the open file (and its O_NONBLOCK) with the worker's:
 * what we send, keyd and the master see coming from that worker.  At the
 * end the worker is killed, or resumed, as the caller says.
 *
 * Requests are paced (rogue_pace) and an -EBUSY answer is retried after a
 * pause, so that an attack that is not about the rate limit is not
 * spoilt by it; the flood mode sends without either.  Every wait is
 * bounded by keydlib's deadline.
 */
#ifndef MOAT_ROGUELIB_H
#define MOAT_ROGUELIB_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "ipc.h"

#define ROGUE_MAX_KEYS		IPC_MAX_KEYS
#define ROGUE_HIST_MAX		16

/* One taken-over worker. */
struct rogue_worker {
	pid_t		pid;
	int		index;		/* --worker */
	int		pidfd;
	int		their_master_fd; /* the numbers in the worker */
	int		their_keyd_fd;
	int		master_fd;	/* our copies */
	int		keyd_fd;
};

/* What came back for one request. */
struct rogue_answer {
	int		status;		/* 0, or the IPC_ERROR code */
	uint16_t	type;		/* the answer's type; 0: none */
	uint8_t		data[IPC_MAX_SIG];
	size_t		len;
	char		err[IPC_ERRMSG_MAX];
	double		ms;		/* from send to answer */
	unsigned	busy_retries;
};

/* A histogram of small integers: status codes, lengths. */
struct rogue_hist {
	long		key[ROGUE_HIST_MAX];
	unsigned	count[ROGUE_HIST_MAX];
	unsigned	n;
};

/* roguelib.c */
void	rogue_take(pid_t pid, struct rogue_worker *w);
void	rogue_end(struct rogue_worker *w, const char *how);
void	rogue_hold(pid_t pid, int stop);
void	rogue_pace_set(double per_second);
void	rogue_pace(void);
double	rogue_now_ms(void);
int	rogue_recv_keyd(struct rogue_worker *w, struct ipc_msg *msg,
	    int64_t deadline_ms);
void	rogue_answer_of(const struct ipc_msg *msg, struct rogue_answer *a);
int	rogue_call(struct rogue_worker *w, uint16_t type, const void *payload,
	    size_t len, struct rogue_answer *a);
int	rogue_sign(struct rogue_worker *w, uint32_t key_id, uint32_t algo,
	    uint32_t form, const uint8_t *data, size_t len,
	    struct rogue_answer *a);
unsigned rogue_key_list(struct rogue_worker *w, struct ipc_key_info *keys,
	    unsigned max);
const struct ipc_key_info *rogue_key_find(const struct ipc_key_info *keys,
	    unsigned n, uint32_t key_id);
unsigned rogue_stray(void);
void	rogue_json_hex(const uint8_t *p, size_t n);
int	rogue_hex_decode(const char *s, uint8_t *out, size_t cap, size_t *n);
void	rogue_hist_add(struct rogue_hist *h, long key);
void	rogue_hist_json(const struct rogue_hist *h);
size_t	rogue_make_ske_dh(uint8_t *p);
size_t	rogue_make_ske_offcurve(uint8_t *p);
size_t	rogue_make_x509(uint8_t *p);
uint32_t rogue_tls13_algo(const struct ipc_key_info *ki, unsigned *hash_len);

#endif
