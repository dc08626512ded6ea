/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * master_types.h -- the state of the master process that more than one
 * file of daemon/master/ reads: struct master, the supervised children and
 * the head of the pending-request table.
 *
 * No .c file is its twin, and it includes nothing of daemon/master/: each
 * file's functions are declared in that file's own header, which includes
 * this one, so headers cannot make a circle.  The files, top to bottom
 * (a file calls only files below it; the few calls back up are function
 * pointers handed down):
 *
 *	master.c	signals, listeners, shutdown, master_main()
 *	control_cmd.c	the command table: status, stats, rekey, reload
 *	metrics.c	stats in the Prometheus format, metrics-listen
 *	stats.c		the workers' and keyd's counters, gathered
 *	reload.c	reload: the config again; certificate rotation
 *	handover.c	reload of a changed config: a new generation
 *	master_watchdog.c WatchdogSec=: ping while the children answer
 *	master_listen.c	listeners: opened, from systemd, kept by a reload
 *	master_worker.c	starting workers, master_dispatch_worker()
 *	master_keyd.c	starting keyd, keys, worker channels,
 *			master_dispatch_keyd()
 *	master_tickets.c the session-ticket keys the workers get
 *	control.c	the control socket: accept, one line in, the answer out
 *	child.c		what every child has: channel, exit, backoff, STATUS
 *	req.c		requests to the children: ids, deadlines, answers
 *	answer.c	the answer buffer
 */
#ifndef MOAT_MASTER_TYPES_H
#define MOAT_MASTER_TYPES_H

#include <sys/types.h>

#include <stdint.h>

#include <ev.h>

#include "conf.h"
#include "ipc.h"

#define MASTER_MAGIC		0x4d535452u	/* "MSTR" */
#define MASTER_MAX_WORKERS	256u
#define MASTER_BACKOFF_MIN_MS	100u
#define MASTER_BACKOFF_MAX_MS	5000u
#define MASTER_STABLE_S		10.0	/* ran this long: backoff starts over */
#define MASTER_KEYD_START_MS	10000	/* keyd's hello and every key load */
#define MASTER_KEYD_STOP_S	2.0	/* SIGTERM, then SIGKILL */
#define MASTER_REQ_TIMEOUT_S	2.0	/* stats, rekey and new-cert answers */
#define MASTER_RELOAD_KEYD_S	5.0	/* keyd's answers to a reload's keys */
#define MASTER_MAX_SD_FDS	64u	/* sockets systemd may pass */

struct master;
struct master_backend_wait;
struct master_child;
struct control;
struct reload;
struct master_ocsp;
struct master_keyd_start;
struct handover;
struct master_watchdog;
struct metrics;
struct req;

/*
 * What child.c asks of one kind of child (master_worker.c, master_keyd.c
 * fill it in): start it again after the backoff, take one message from its
 * channel, say that its channel closed (may be NULL), log how it exited.
 */
struct child_ops {
	void	(*start)(struct master_child *c);
	void	(*dispatch)(struct master_child *c, struct ipc_msg *msg);
	void	(*closed)(struct master_child *c);
	void	(*exited)(struct master_child *c, int status);
};

/* A supervised child process: one worker slot, or keyd. */
struct master_child {
	struct master		*m;
	const struct child_ops	*ops;
	enum ipc_role		role;		/* the peer of its channel */
	char			name[24];	/* "worker 3", "keyd": logs */
	unsigned		index;
	pid_t			pid;		/* 0 while not running */
	int			fd;		/* our end of its channel */
	int			ready;		/* keyd: keys loaded */
	ev_io			io;
	ev_child		child;
	ev_timer		restart;	/* backoff, then a start */
	ev_timer		stop_deadline;	/* asked to stop: SIGKILL next */
	int			stop_asked;	/* this pid has its STOP */
	ev_tstamp		started;
	unsigned		restarts;
	unsigned		backoff_ms;	/* delay of the next restart */
	/* worker: the key generation it serves, per frontend index; set at
	 * start, raised when it takes a rotated certificate (reload.c) */
	unsigned		cert_generation[CONFIG_MAX_FRONTENDS];
	/* worker: the generations it still holds, a bit each (master_gen.c) */
	uint32_t		gen_held[CONFIG_MAX_FRONTENDS];
};

/* The requests waiting for answers (req.c), and every message's id. */
struct req_table {
	struct ev_loop		*loop;
	struct req		*head;
	uint32_t		next_id;
};

struct master {
	uint32_t		magic;
	struct ev_loop		*loop;
	struct config		*cfg;
	ev_tstamp		started;
	int			running;	/* start-up done, READY sent */
	int			stopping;
	int			exit_code;
	struct req_table	reqs;
	uint32_t		keyd_generation;
	struct master_child	keyd;
	struct master_keyd_start *keyd_start;	/* in progress (master_keyd.c) */
	ev_timer		keyd_kill;	/* SIGTERM sent, SIGKILL next */
	struct master_child	workers[MASTER_MAX_WORKERS];
	ev_signal		sig_term, sig_int, sig_hup;
	ev_timer		drain;
	ev_prepare		stop_check;	/* stopping: who is left */
	int			keyd_stop_sent;
	struct control		*control;	/* the socket (control.c) */
	/* unix-socket backends connected for the workers (master_backend.c) */
	uid_t			worker_uid;
	gid_t			worker_gid;
	struct master_backend_wait *backend_waiting;	/* full backlogs */
	unsigned		backend_nwaiting;
	ev_timer		backend_retry;
	struct reload		*reload;	/* in progress (reload.c) */
	struct master_ocsp	*ocsp;		/* OCSP files (master_ocsp.c) */
	struct metrics		*metrics;	/* metrics-listen (metrics.c) */
	/* per frontend: generations below this were dropped from keyd */
	unsigned		gen_dropped[CONFIG_MAX_FRONTENDS];
	/* each frontend's ticket key, for every worker (master_tickets.c) */
	struct config_tickets	*tickets;
	/* socket activation: systemd's sockets and names (master_listen.c) */
	int			sd_fd[MASTER_MAX_SD_FDS];
	char			sd_name[MASTER_MAX_SD_FDS][CONFIG_NAME_MAX];
	unsigned		nsd;
	/*
	 * A reload of the whole config (handover.c): the one in progress (in
	 * a new generation: the reload it belongs to), and the generations
	 * retired by earlier ones, each a struct master of its own whose
	 * workers drain, linked through retired_next.
	 */
	struct handover		*handover;
	struct master		*retired;
	struct master		*retired_next;
	ev_prepare		retire_check;
	/* WatchdogSec= (master_watchdog.c) */
	struct master_watchdog	*watchdog;
};

#endif
