/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * master.h -- the master process of moatd.
 *
 * The master reads the config, opens the listeners and the control socket,
 * starts moat-keyd (master_keyd.c) and the workers (master.c), supervises
 * them with backoff, and answers moatctl (control.c).  It runs one libev
 * loop, the default one, and never touches TLS bytes or a private key: key
 * files are opened and their descriptors passed to keyd unread.
 */
#ifndef MOAT_MASTER_H
#define MOAT_MASTER_H

#include <sys/types.h>

#include <stddef.h>
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
#define MASTER_CONTROL_CLIENTS	16u

#ifndef container_of
#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#endif

struct master;
struct control_client;

/* A supervised child process: one worker slot, or keyd. */
struct master_child {
	struct master	*m;
	const char	*what;		/* "worker" or "keyd", for logs */
	unsigned	index;
	pid_t		pid;		/* 0 while not running */
	int		fd;		/* our end of its channel, or -1 */
	int		ready;		/* keyd: hello seen and keys loaded */
	ev_io		io;
	ev_child	child;
	ev_timer	restart;	/* the backoff before the next start */
	ev_tstamp	started;
	unsigned	restarts;
	unsigned	backoff_ms;	/* delay of the next restart */
	/* worker: the key generation it serves, per frontend index; set at
	 * fork, raised when it takes a rotated certificate (control.c) */
	unsigned	cert_generation[CONFIG_MAX_FRONTENDS];
};

enum master_req_kind {
	MASTER_REQ_STATS = 1,
	MASTER_REQ_REKEY,
	MASTER_REQ_RELOAD,
};

/* Where one frontend of a certificate rotation (reload) stands. */
enum master_reload_state {
	MASTER_RELOAD_FAILED = 0,	/* nothing changed; error says why */
	MASTER_RELOAD_KEYD,		/* IPC_KEY_LOAD sent, awaiting keyd */
	MASTER_RELOAD_WORKERS,		/* key in its new slot; workers asked */
};

/* One frontend of a reload: keyd loads its key, then workers its chain. */
struct master_reload_fe {
	uint32_t		id;		/* its KEY_LOAD and WORKER_CERTs */
	unsigned		generation;	/* the one it moves to */
	enum master_reload_state state;
	int			cert_fd;	/* the chain keyd checked, or -1 */
	char			error[IPC_PATH_MAX + IPC_ERRMSG_MAX];
	uint64_t		asked;		/* connections to renegotiate */
	unsigned		workers_asked;
	unsigned		workers_ok;
	unsigned		workers_failed;
	char			worker_error[IPC_ERRMSG_MAX + 64]; /* first one */
	uint8_t			answered[MASTER_MAX_WORKERS];
};

/* What one worker answered to a stats or rekey request. */
struct master_req_worker {
	pid_t			pid;		/* 0: not asked (not running) */
	int			answered;
	int			status;		/* < 0: IPC_ERROR or gone */
	char			error[IPC_ERRMSG_MAX];
	uint32_t		asked;		/* rekey: connections asked */
	struct ipc_worker_stats	stats;
};

/*
 * A moatctl command waiting for answers from the workers and keyd; a reload
 * (certificate rotation, control.c) may have no client: SIGHUP.
 */
struct master_req {
	struct master		*m;
	struct master_req	*next;
	enum master_req_kind	kind;
	uint32_t		id;
	int			json;
	char			frontend[IPC_NAME_MAX];	/* rekey: "" = all */
	struct control_client	*client;	/* NULL once it went away */
	ev_timer		timer;
	unsigned		nworkers;
	unsigned		pending;
	struct master_req_worker w[MASTER_MAX_WORKERS];
	pid_t			keyd_pid;	/* 0: not asked */
	int			keyd_answered;
	int			keyd_status;
	char			keyd_error[IPC_ERRMSG_MAX];
	struct ipc_keyd_stats	keyd;
	/* reload: one entry per frontend; pending counts keyd's answers,
	 * then the workers' */
	int			reload_workers;	/* second phase begun */
	struct master_reload_fe	fe[CONFIG_MAX_FRONTENDS];
};

struct master {
	uint32_t		magic;
	struct ev_loop		*loop;
	struct config		*cfg;
	ev_tstamp		started;
	int			running;	/* start-up done, READY sent */
	int			stopping;
	int			exit_code;
	uint32_t		next_id;	/* request ids on our channels */
	uint32_t		keyd_generation;
	struct master_child	keyd;
	ev_timer		keyd_kill;
	struct master_child	workers[MASTER_MAX_WORKERS];
	ev_signal		sig_term, sig_int, sig_hup;
	ev_timer		drain;
	int			control_fd;
	ev_io			control_io;
	struct control_client	*clients;
	unsigned		nclients;
	struct master_req	*reqs;
	struct master_req	*reload;	/* the one reload in progress */
	int			reload_again;	/* SIGHUP during it */
};

/* master.c */
int	master_main(struct config *cfg);
void	master_child_backoff(struct master_child *c);
uint32_t master_next_id(struct master *m);
int	master_chan_recv(int fd, enum ipc_role peer, struct ipc_msg **out);
void	master_status_notify(struct master *m);
void	master_stop_check(struct master *m);

/* master_keyd.c */
int	master_keyd_start(struct master *m, char *err, size_t errlen);
void	master_keyd_stop(struct master *m);
int	master_keyd_channel(struct master *m, unsigned worker, int *worker_fd);
void	master_keyd_dispatch(struct master *m, struct ipc_msg *msg);
int	master_keyd_load_send(struct master *m, const struct frontend *fe,
	    uint32_t key_id, uint32_t id, int *cert_fd, char *err,
	    size_t errlen);

/* control.c */
int	control_open(struct master *m);
void	control_close(struct master *m);
void	control_dispatch_worker(struct master *m, struct master_child *w,
	    struct ipc_msg *msg);
void	control_dispatch_keyd(struct master *m, struct ipc_msg *msg);
void	control_child_gone(struct master *m, struct master_child *c);
void	control_reload(struct master *m, struct control_client *c);

#endif
