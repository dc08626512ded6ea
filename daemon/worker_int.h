/*
 * worker_int.h -- the worker process's internal state and prototypes
 * (worker.h is its only entry from the master).
 *
 * One struct worker per process, kept with ev_set_userdata() on the loop;
 * one struct worker_frontend per [frontend] section: its certificate
 * credentials, priority cache, keyd-backed key, backend and listeners.
 */
#ifndef MOAT_WORKER_INT_H
#define MOAT_WORKER_INT_H

#include <sys/socket.h>
#include <sys/un.h>

#include <stdint.h>

#include <ev.h>
#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>

#include "config.h"
#include "ipc.h"
#include "conn.h"
#include "worker_keyop.h"

#define WORKER_MAGIC		0x576f726bu	/* "Work" */
#define WORKER_FE_MAGIC		0x57466e74u	/* "WFnt" */
#define WORKER_MAX_CHAIN	16u		/* certificates in one chain */

struct worker_frontend {
	unsigned		magic;
	const struct frontend	*fe;
	struct worker		*w;
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t	prio;
	struct keyop_key	key;
	gnutls_pcert_st		pcert[WORKER_MAX_CHAIN];  /* until set_key takes it */
	unsigned		npcert;
	/*
	 * A unix-socket backend with a path cannot be reached by name from
	 * inside the empty chroot; the worker keeps its directory open and
	 * connects relative to it (worker_proxy.c explains).
	 */
	int			backend_dirfd;	/* -1: not needed */
	struct sockaddr_un	backend_rel;	/* basename only */
	socklen_t		backend_rel_len;
	ev_io			lio[CONFIG_MAX_LISTEN];
	unsigned		nlisten;
};

struct worker {
	unsigned		magic;
	const struct config	*cfg;
	unsigned		index;
	struct ev_loop		*loop;
	int			master_fd;
	ev_io			master_io;
	ev_signal		sigterm;
	ev_signal		sigint;
	ev_timer		accept_retry;	/* after EMFILE and friends */
	struct keyop_chan	keyd;
	struct worker_frontend	fe[CONFIG_MAX_FRONTENDS];
	unsigned		nfe;
	struct conn		*conns;		/* live connections */
	unsigned		nconns;
	int			accepting;	/* listeners started */
	int			at_limit;	/* paused by max_connections */
	ev_tstamp		limit_logged;	/* last max-connections line */
	int			stopping;	/* listeners closed, draining */
	int			exit_code;	/* when the drain ends */
	struct ipc_worker_stats	stats;
};

/* worker.c */
void	worker_conn_added(struct worker *w);
void	worker_conn_removed(struct worker *w);
void	worker_master_reply(struct worker *w, uint16_t type, uint32_t id,
	    int status);
void	worker_stop(struct worker *w, int exit_code, const char *why);

/* worker_tls.c */
int	tls_frontend_init(struct worker_frontend *wf);
int	tls_frontend_key(struct worker_frontend *wf);
int	tls_session_new(struct conn *c);
void	tls_handshake_step(struct conn *c);
int	tls_record_event(struct conn *c, int ret);
int	tls_alert_flush(struct conn *c);
const char *tls_version_name(const struct conn *c);
const char *tls_cipher_name(const struct conn *c);

/* worker_proxy.c */
int	proxy_backend_prepare(struct worker_frontend *wf);
void	proxy_connect(struct conn *c);
void	proxy_connected(struct conn *c);
void	proxy_run(struct conn *c);
void	proxy_client_event(struct conn *c, int revents);
void	proxy_backend_event(struct conn *c, int revents);
void	proxy_free(struct conn *c);

/* sandbox_worker.c */
void	sandbox_worker_load(int debug, int need_fchdir);

#endif
