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

#include "conf.h"
#include "ipc.h"
#include "conn.h"
#include "worker_keyop.h"

#define WORKER_MAGIC		0x576f726bu	/* "Work" */
#define WORKER_FE_MAGIC		0x57466e74u	/* "WFnt" */
#define WORKER_MAX_CHAIN	16u		/* certificates in one chain */

#define WORKER_CRED_MAGIC	0x43726564u	/* "Cred" */
#define WORKER_CERT_MAX		(1024u * 1024u)	/* a PEM chain larger is refused */

/*
 * One generation of a frontend's certificate chain with its keyd-backed
 * key (keyd slot key.index = IPC_KEY_SLOT(frontend, generation)).  Every
 * session holds a reference to the one it handshook with; a rotation makes
 * a new one, and the old one is freed when its last session ends or has
 * renegotiated onto the new one.
 */
struct worker_cred {
	unsigned		magic;
	unsigned		refs;		/* the frontend's + one per session */
	struct worker_frontend	*wf;
	unsigned		generation;
	gnutls_certificate_credentials_t cred;
	struct keyop_key	key;		/* the ext4 key's userdata: lives here */
	struct worker_cred	*prev, *next;	/* worker's list of live creds */
};

struct worker_frontend {
	unsigned		magic;
	const struct frontend	*fe;
	struct worker		*w;
	struct worker_cred	*cred;		/* current: new handshakes use it */
	gnutls_priority_t	prio;
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
	struct worker_cred	*creds;		/* every live generation */
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
struct worker_cred *tls_cred_new(struct worker_frontend *wf,
	    const gnutls_datum_t *pem, unsigned generation);
void	tls_cred_ref(struct worker_cred *wc);
void	tls_cred_unref(struct worker_cred *wc);
int	tls_frontend_rotate(struct worker_frontend *wf, int fd,
	    unsigned generation);
int	tls_session_new(struct conn *c);
int	tls_session_cred_switch(struct conn *c);
void	tls_handshake_step(struct conn *c);
const char *tls_version_name(const struct conn *c);
const char *tls_cipher_name(const struct conn *c);

/* worker_reneg.c */
void	reneg_conn_init(struct conn *c);
void	reneg_conn_start(struct conn *c);
void	reneg_conn_stop(struct conn *c);
int	reneg_request(struct conn *c, const char *why);
unsigned reneg_frontend(struct worker *w, const struct worker_frontend *only,
	    const char *why);
int	reneg_record_event(struct conn *c, int ret);
int	reneg_ctl_flush(struct conn *c);
void	reneg_bytes_check(struct conn *c);
int	reneg_data_allowed(const struct conn *c);
int	reneg_hs_wanted(const struct conn *c);
void	reneg_hs_start(struct conn *c);
void	reneg_hs_done(struct conn *c, int r);
void	reneg_hs_appdata(struct conn *c);

/* worker_proxy.c */
size_t	conn_buf_room(struct conn_buf *b);
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
