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

#include "config.h"
#include "ipc.h"

#define MASTER_MAGIC		0x4d535452u	/* "MSTR" */
#define MASTER_MAX_WORKERS	256u
#define MASTER_BACKOFF_MIN_MS	100u
#define MASTER_BACKOFF_MAX_MS	5000u
#define MASTER_STABLE_S		10.0	/* ran this long: backoff starts over */
#define MASTER_KEYD_START_MS	10000	/* keyd's hello and every key load */
#define MASTER_KEYD_STOP_S	2.0	/* SIGTERM, then SIGKILL */
#define MASTER_REQ_TIMEOUT_S	2.0	/* stats and rekey answers */
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
};

enum master_req_kind {
	MASTER_REQ_STATS = 1,
	MASTER_REQ_REKEY,
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

/* A moatctl command waiting for answers from the workers and keyd. */
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
};

/* master.c */
int	master_main(struct config *cfg);
void	master_child_backoff(struct master_child *c);
uint32_t master_next_id(struct master *m);
void	master_status_notify(struct master *m);
void	master_stop_check(struct master *m);

/* master_keyd.c */
int	master_keyd_start(struct master *m, char *err, size_t errlen);
void	master_keyd_stop(struct master *m);
int	master_keyd_channel(struct master *m, unsigned worker, int *worker_fd);
void	master_keyd_dispatch(struct master *m, struct ipc_msg *msg);
void	master_keyd_close_in_child(struct master *m);

/* control.c */
int	control_open(struct master *m);
void	control_close(struct master *m);
void	control_close_in_child(struct master *m);
void	control_dispatch_worker(struct master *m, struct master_child *w,
	    struct ipc_msg *msg);
void	control_dispatch_keyd(struct master *m, struct ipc_msg *msg);
void	control_child_gone(struct master *m, struct master_child *c);

#endif
