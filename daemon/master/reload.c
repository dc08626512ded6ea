/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * reload.c -- `moatctl reload`, and SIGHUP without a client: the config
 * file is read and checked again, as at start.  A file that does not parse
 * or check is refused with its FILE:LINE reason, and nothing changes.  A
 * config that changes any setting goes to handover.c: a new keyd and new
 * workers take over, the running ones drain.  The same text as the
 * running config means "take the files behind it": a certificate rotation,
 * here, onto the live connections too.
 *
 * Every frontend's certificates and keys are rotated from the same paths,
 * one reload at a time, all of it asynchronous in the loop; a frontend's
 * cert/key pairs rotate together, as one generation:
 *   1. per pair, check the files as start-up does (the key private to
 *      its owner, the chain parses), then send keyd IPC_KEY_LOAD into slot
 *      IPC_KEY_SLOT(index, cert, key_generation + 1): the slot of the
 *      generation before the current one, which no worker uses any more.
 *      keyd matches the key to the certificate and replaces the slot only
 *      if it loads.  keyd gets MASTER_RELOAD_KEYD_S to answer.
 *   2. once every pair has its answer, for each frontend whose pairs keyd
 *      all accepted, key_generation is raised (workers started from now on
 *      begin on it) and every live worker gets IPC_WORKER_CERT with the
 *      very chains keyd checked (our copies of the open files); each
 *      answers the connections it asked to renegotiate, within
 *      MASTER_REQ_TIMEOUT_S.
 *      The OCSP responses are read again for the new chains
 *      (master_ocsp.c) and go with them.
 *   3. one line per frontend is logged, and sent to the client if any.
 * A frontend one of whose pairs fails in step 1 is left as it was (the
 * keys of its other pairs, loaded into a slot nobody uses, are dropped
 * when that slot's generation was dropped already).  Files that
 * did not change are rotated anyway: a reload always means "take what is
 * on disk now".  A worker that did not take generation g still uses the key
 * in the slot generation g + 1 would fill, so that frontend is not rotated
 * again while such a worker lives.
 *
 * Each step of each pair (keyd) or frontend (workers) is one request
 * (req.c): its answers, the children that do not answer and why, and its
 * end come back here through
 * reload_keyd_ops and reload_worker_ops.  r->steps counts the requests of
 * the step in flight, plus one while they are being sent, so that a request
 * that ends at once cannot end the step before the last one is sent.
 */
#include "config.h"

#include <sys/types.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <systemd/sd-daemon.h>

#include "answer.h"
#include "child.h"
#include "conf.h"
#include "control_proto.h"
#include "control.h"
#include "handover.h"
#include "ipc.h"
#include "log.h"
#include "master_gen.h"
#include "master_keyd.h"
#include "master_ocsp.h"
#include "master_types.h"
#include "master_worker.h"
#include "reload.h"
#include "req.h"
#include "util.h"

/* Where one frontend of a reload stands. */
enum reload_state {
	RELOAD_FAILED = 0,	/* nothing changed; error says why */
	RELOAD_KEYD,		/* IPC_KEY_LOAD sent, awaiting keyd */
	RELOAD_WORKERS,		/* key in its new slot; workers asked */
};

/* One cert/key pair of a frontend in step 1. */
struct reload_cert {
	struct req		req;		/* IPC_KEY_LOAD */
	struct reload_fe	*rf;
	unsigned		cert;		/* index in the frontend's certs */
	int			loaded;		/* keyd took it */
	int			cert_fd;	/* the chain keyd checked */
	int			cert_pk;	/* its leaf's key type */
	unsigned		keyd_flags;	/* what keyd may do with the key */
};

/* One frontend of a reload: keyd loads its keys, then workers its chains. */
struct reload_fe {
	struct req		req;		/* step 2: IPC_WORKER_CERT */
	struct reload		*r;
	unsigned		index;
	unsigned		generation;	/* the one it moves to */
	enum reload_state	state;
	unsigned		keyd_waiting;	/* pairs keyd has not answered */
	struct reload_cert	certs[CONFIG_MAX_CERTS];
	char			error[IPC_PATH_MAX + IPC_ERRMSG_MAX];
	uint64_t		asked;		/* connections to renegotiate */
	unsigned		workers_asked;
	unsigned		workers_ok;
	unsigned		workers_failed;
	/* the first worker that did not take it, and why */
	char			worker_error[IPC_ERRMSG_MAX + 64];
};

struct reload {
	struct master		*m;
	struct control_client	*client;	/* NULL: SIGHUP, or it left */
	int			workers_step;	/* step 2 begun */
	unsigned		steps;		/* see the comment on top */
	int			again;		/* a SIGHUP came meanwhile */
	struct reload_fe	fe[CONFIG_MAX_FRONTENDS];
};

static const struct req_ops reload_keyd_ops, reload_worker_ops;

static const struct frontend *
reload_frontend(const struct reload_fe *rf)
{
	return &rf->r->m->cfg->frontends[rf->index];
}

static void reload_fail(struct reload_fe *, const char *, ...)
	__attribute__((format(printf, 2, 3)));

static void
reload_close_fds(struct reload_fe *rf)
{
	unsigned c;

	for (c = 0; c < CONFIG_MAX_CERTS; c++) {
		if (rf->certs[c].cert_fd >= 0)
			close(rf->certs[c].cert_fd);
		rf->certs[c].cert_fd = -1;
	}
}

/*
 * A frontend failed after some of its pairs loaded: those keys sit in the
 * slots of the previous generation.  If that generation left keyd already
 * (master_gen.c), nothing will use or drop them: drop them now.
 */
static void
reload_undo(struct reload_fe *rf)
{
	struct master *m = rf->r->m;
	const struct frontend *fe = reload_frontend(rf);
	unsigned c;

	if (fe->key_generation > 0 && m->gen_dropped[rf->index] <
	    fe->key_generation)
		return;		/* master_gen_check() drops that slot later */
	for (c = 0; c < fe->ncerts; c++)
		if (rf->certs[c].loaded)
			(void)master_keyd_drop(m, IPC_KEY_SLOT(rf->index, c,
			    rf->generation));
}

/* Step 1 failed for this frontend: nothing changes for it. */
static void
reload_fail(struct reload_fe *rf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rf->error, sizeof(rf->error), fmt, ap);
	va_end(ap);
	rf->state = RELOAD_FAILED;
	reload_close_fds(rf);
}

static void reload_worker_fail(struct reload_fe *, unsigned, pid_t,
	    const char *, ...) __attribute__((format(printf, 4, 5)));

/* Worker j did not take this frontend's new chain; it keeps the old one. */
static void
reload_worker_fail(struct reload_fe *rf, unsigned j, pid_t pid,
    const char *fmt, ...)
{
	char why[IPC_ERRMSG_MAX];
	va_list ap;

	struct master_child *w = &rf->r->m->workers[j];

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (rf->workers_failed++ == 0)
		snprintf(rf->worker_error, sizeof(rf->worker_error),
		    "worker %u (pid %ld): %s", j, (long)pid, why);
	/*
	 * A worker left on the old certificate would block every later
	 * rotation of this frontend (its key's slot is the next one's): it
	 * drains and is started again, on the new certificate.
	 */
	if (w->pid == pid && pid > 0) {
		log_warnx("worker %u (pid %ld) did not take the new certificate "
		    "(%s): restarting it", j, (long)pid, why);
		master_worker_stop(w);
	}
}

/* Step 3: one line per frontend, to the log and to the client. */
static void
reload_finish(struct reload *r)
{
	struct master *m = r->m;
	struct control_client *c = r->client;
	struct answer *a = c != NULL ? control_client_answer(c) : NULL;
	const struct frontend *fe;
	struct reload_fe *rf;
	char line[2048];
	unsigned i, failed = 0;
	int n, again;

	m->reload = NULL;
	master_gen_check(m);		/* the keys nobody holds any more */
	for (i = 0; i < m->cfg->nfrontends; i++) {
		rf = &r->fe[i];
		fe = reload_frontend(rf);
		reload_close_fds(rf);
		if (rf->state == RELOAD_FAILED) {
			reload_undo(rf);
			snprintf(line, sizeof(line), "frontend %s: reload "
			    "failed: %s", fe->name, rf->error);
			log_warnx("%s", line);
			failed++;
			if (a != NULL)
				answer_printf(a, CONTROL_ERROR_PREFIX "%s\n",
				    line);
			continue;
		}
		if (fe->ncerts == 1)
			n = snprintf(line, sizeof(line), "frontend %s: "
			    "reloaded certificate %s and key %s (generation "
			    "%u); %llu connections asked to renegotiate",
			    fe->name, fe->certs[0].cert, fe->certs[0].key,
			    rf->generation, (unsigned long long)rf->asked);
		else
			n = snprintf(line, sizeof(line), "frontend %s: "
			    "reloaded %u certificates and keys (generation "
			    "%u); %llu connections asked to renegotiate",
			    fe->name, fe->ncerts, rf->generation,
			    (unsigned long long)rf->asked);
		if (rf->workers_failed > 0 && n > 0 &&
		    (size_t)n < sizeof(line))
			snprintf(line + n, sizeof(line) - (size_t)n, "; %u of %u "
			    "workers did not take it and are being restarted "
			    "(%s)",
			    rf->workers_failed, rf->workers_asked,
			    rf->worker_error);
		if (rf->workers_failed > 0) {
			log_warnx("%s", line);
			failed++;
		} else {
			log_info("%s", line);
		}
		if (a != NULL)
			answer_printf(a, "%s%s\n", rf->workers_failed > 0 ?
			    CONTROL_ERROR_PREFIX : "", line);
	}
	if (failed > 0)
		log_warnx("reload: %u of %u frontends failed", failed,
		    m->cfg->nfrontends);
	if (!m->stopping)
		sd_notify(0, "READY=1");
	child_status_notify(m);
	if (c != NULL)
		control_client_done(c);
	again = r->again;
	free(r);
	if (again && !m->stopping) {
		log_info("reload: starting the one asked for meanwhile");
		reload_start(m, NULL);
	}
}

/* Step 2: commit what keyd loaded, hand every live worker its chain. */
static void
reload_workers(struct reload *r)
{
	struct master *m = r->m;
	struct ipc_worker_cert wc;
	struct master_child *w;
	struct frontend *fe;
	struct reload_fe *rf;
	int fds[2 * CONFIG_MAX_CERTS];
	unsigned i, j, c, nfds;
	int e;

	r->workers_step = 1;
	r->steps = 1;
	for (i = 0; i < m->cfg->nfrontends; i++) {
		rf = &r->fe[i];
		if (rf->state != RELOAD_WORKERS)
			continue;
		fe = &m->cfg->frontends[i];
		fe->key_generation = rf->generation;
		/* the checked chains are the frontend's now: new workers read them */
		for (c = 0; c < fe->ncerts; c++) {
			fe->certs[c].cert_pk = rf->certs[c].cert_pk;
			fe->certs[c].keyd_flags = rf->certs[c].keyd_flags;
			if (fe->certs[c].cert_fd >= 0)
				close(fe->certs[c].cert_fd);
			fe->certs[c].cert_fd = rf->certs[c].cert_fd;
			rf->certs[c].cert_fd = -1;
			fds[c] = fe->certs[c].cert_fd;
		}
		/* a rotation reads the OCSP responses again, for the new chains */
		(void)master_ocsp_read_fe(m, fe);
		memset(&wc, 0, sizeof(wc));
		wc.frontend = i;
		wc.key_id = IPC_KEY_SLOT(i, 0, rf->generation);
		wc.generation = rf->generation;
		nfds = master_ocsp_fds(fe, fds, &wc.ocsp_mask);
		req_init(&m->reqs, &rf->req, &reload_worker_ops);
		for (j = 0; j < m->cfg->workers; j++) {
			w = &m->workers[j];
			if (w->pid <= 0 || w->fd < 0)
				continue;
			rf->workers_asked++;
			if ((e = req_ask(&rf->req, w, IPC_WORKER_CERT, &wc,
			    sizeof(wc), fds, nfds)) < 0)
				reload_worker_fail(rf, j, w->pid, "cannot ask "
				    "it: %s", strerror(-e));
		}
		r->steps++;
		req_start(&rf->req, MASTER_REQ_TIMEOUT_S);
	}
	/* the last request may have ended already: then this ends the step */
	if (--r->steps == 0)
		reload_finish(r);
}

/* One request of the step in flight ended. */
static void
reload_step_end(struct reload *r)
{
	if (--r->steps > 0)
		return;
	if (r->workers_step)
		reload_finish(r);
	else
		reload_workers(r);
}

static void
reload_keyd_done(struct req *rq)
{
	reload_step_end(container_of(rq, struct reload_cert, req)->rf->r);
}

static void
reload_worker_done(struct req *rq)
{
	reload_step_end(container_of(rq, struct reload_fe, req)->r);
}

/* keyd answered the IPC_KEY_LOAD of one of frontend rf's pairs. */
static void
reload_keyd_answer(struct req *rq, const struct req_peer *p,
    struct ipc_msg *msg)
{
	struct reload_cert *rc = container_of(rq, struct reload_cert, req);
	struct reload_fe *rf = rc->rf;
	const struct frontend_cert *fc = &reload_frontend(rf)->certs[rc->cert];
	struct ipc_key_loaded kr;
	struct ipc_error ie;

	if (msg->hdr.type == IPC_KEY_LOAD_REPLY &&
	    ipc_key_loaded_decode(msg->payload, msg->hdr.len, &kr) == 0) {
		if (kr.status < 0)
			reload_fail(rf, "%s: %s", fc->key,
			    kr.msg[0] != '\0' ? kr.msg : strerror(-kr.status));
		else {
			rc->loaded = 1;
			/* the last pair's answer decides, unless one failed */
			if (--rf->keyd_waiting == 0 &&
			    rf->state == RELOAD_KEYD)
				rf->state = RELOAD_WORKERS;
			log_debug("%s: frontend %s: keyd loaded key %s into slot "
			    "%u (generation %u, %u bits)", __func__,
			    reload_frontend(rf)->name, fc->key,
			    IPC_KEY_SLOT(rf->index, rc->cert, rf->generation),
			    rf->generation, kr.info.bits);
		}
	} else if (msg->hdr.type == IPC_ERROR &&
	    ipc_error_decode(msg->payload, msg->hdr.len, &ie) == 0) {
		reload_fail(rf, "%s: %s", fc->key, ie.msg[0] != '\0' ?
		    ie.msg : strerror(-ie.code));
	} else {
		log_warnx("keyd: malformed %s", ipc_type_name(msg->hdr.type));
		reload_fail(rf, "%s: malformed answer from keyd", fc->key);
	}
}

static void
reload_keyd_lost(struct req *rq, const struct req_peer *p, int error)
{
	struct reload_cert *rc = container_of(rq, struct reload_cert, req);
	const char *key = reload_frontend(rc->rf)->certs[rc->cert].key;

	if (error == -ETIMEDOUT)
		reload_fail(rc->rf, "%s: keyd did not answer within %.0f s",
		    key, MASTER_RELOAD_KEYD_S);
	else
		reload_fail(rc->rf, "%s: keyd exited before answering", key);
}

/* Worker p answered frontend rf's IPC_WORKER_CERT. */
static void
reload_worker_answer(struct req *rq, const struct req_peer *p,
    struct ipc_msg *msg)
{
	struct reload_fe *rf = container_of(rq, struct reload_fe, req);
	struct master_child *w = p->child;
	struct ipc_reply rep;
	struct ipc_error ie;
	uint32_t asked;

	if (msg->hdr.type == IPC_WORKER_CERT_REPLY &&
	    ipc_reply_decode(msg->payload, msg->hdr.len, &rep) == 0 &&
	    (rep.status < 0 || rep.data_len == sizeof(asked))) {
		if (rep.status < 0) {
			reload_worker_fail(rf, w->index, p->pid, "%s",
			    strerror(-rep.status));
		} else {
			memcpy(&asked, rep.data, sizeof(asked));
			rf->asked += asked;
			rf->workers_ok++;
			w->cert_generation[rf->index] = rf->generation;
			master_gen_took(w, rf->index, rf->generation);
		}
	} else if (msg->hdr.type == IPC_ERROR &&
	    ipc_error_decode(msg->payload, msg->hdr.len, &ie) == 0) {
		reload_worker_fail(rf, w->index, p->pid, "%s",
		    ie.msg[0] != '\0' ? ie.msg : strerror(-ie.code));
	} else {
		log_warnx("worker %u (pid %ld): malformed %s", w->index,
		    (long)p->pid, ipc_type_name(msg->hdr.type));
		reload_worker_fail(rf, w->index, p->pid, "malformed answer");
	}
}

static void
reload_worker_lost(struct req *rq, const struct req_peer *p, int error)
{
	struct reload_fe *rf = container_of(rq, struct reload_fe, req);

	if (error == -ETIMEDOUT)
		reload_worker_fail(rf, p->child->index, p->pid, "no answer "
		    "within %.0f s", MASTER_REQ_TIMEOUT_S);
	else
		reload_worker_fail(rf, p->child->index, p->pid, "exited "
		    "before answering");
}

static const struct req_ops reload_keyd_ops = {
	reload_keyd_answer,
	reload_keyd_lost,
	reload_keyd_done,
};

static const struct req_ops reload_worker_ops = {
	reload_worker_answer,
	reload_worker_lost,
	reload_worker_done,
};

/* Step 1 for one pair: check its files; 0, or the frontend failed. */
static int
reload_cert_check(struct reload_fe *rf, struct reload_cert *rc)
{
	const struct frontend *fe = reload_frontend(rf);
	const struct frontend_cert *fc = &fe->certs[rc->cert];
	char why[256];

	if (!fc->key_pkcs11 &&
	    config_check_secret_file(fc->key, why, sizeof(why)) < 0) {
		reload_fail(rf, "%s: %s", fc->key, why);
		return -EINVAL;
	}
	if (config_check_cert_file(fc->cert, &rc->cert_pk, why,
	    sizeof(why)) < 0 ||
	    config_keyd_flags(fe, rc->cert_pk, &rc->keyd_flags, why,
	    sizeof(why)) < 0) {
		reload_fail(rf, "%s: %s", fc->cert, why);
		return -EINVAL;
	}
	return 0;
}

/* Step 1 for frontend rf: check its files, send keyd the next keys. */
static void
reload_begin(struct reload_fe *rf)
{
	struct reload *r = rf->r;
	struct master *m = r->m;
	const struct frontend *fe = reload_frontend(rf);
	const struct master_child *w;
	struct reload_cert *rc;
	char why[256];
	unsigned j, c;

	rf->generation = fe->key_generation + 1;
	rf->state = RELOAD_FAILED;
	for (j = 0; j < m->cfg->workers; j++) {
		w = &m->workers[j];
		if (w->pid > 0 && w->cert_generation[rf->index] !=
		    fe->key_generation) {
			reload_fail(rf, "%s: worker %u (pid %ld) did not take "
			    "generation %u of it and still uses the key this "
			    "reload would replace (a worker takes the current "
			    "certificate when it restarts)", fe->certs[0].cert,
			    j, (long)w->pid, fe->key_generation);
			return;
		}
	}
	if (!m->keyd.ready || m->keyd.fd < 0) {
		reload_fail(rf, "%s: keyd is not running (a new keyd loads the "
		    "current key)", fe->certs[0].key);
		return;
	}
	if (fe->key_passphrase_file[0] != '\0' &&
	    config_check_secret_file(fe->key_passphrase_file, why,
	    sizeof(why)) < 0) {
		reload_fail(rf, "%s: %s", fe->key_passphrase_file, why);
		return;
	}
	if (fe->key_pin_file[0] != '\0' &&
	    config_check_secret_file(fe->key_pin_file, why, sizeof(why)) < 0) {
		reload_fail(rf, "%s: %s", fe->key_pin_file, why);
		return;
	}
	/* every pair's files first: a bad one sends keyd nothing */
	for (c = 0; c < fe->ncerts; c++)
		if (reload_cert_check(rf, &rf->certs[c]) < 0)
			return;
	rf->state = RELOAD_KEYD;
	for (c = 0; c < fe->ncerts && rf->state == RELOAD_KEYD; c++) {
		rc = &rf->certs[c];
		req_init(&m->reqs, &rc->req, &reload_keyd_ops);
		if (master_keyd_load_send(m, fe, c, rf->generation,
		    rc->keyd_flags, rc->req.id, &rc->cert_fd, rf->error,
		    sizeof(rf->error)) < 0) {
			rf->state = RELOAD_FAILED;
			reload_close_fds(rf);
			break;
		}
		if (req_expect(&rc->req, &m->keyd) < 0) {
			reload_fail(rf, "%s: keyd is not running",
			    fe->certs[c].key);
			break;
		}
		rf->keyd_waiting++;
		r->steps++;
		req_start(&rc->req, MASTER_RELOAD_KEYD_S);
	}
}

/* The client left before the answer: the reload goes on without it. */
static void
reload_client_gone(void *arg)
{
	struct reload *r = arg;

	r->client = NULL;
}

/* A line for the client, or for the log when the reload came by SIGHUP. */
static void
reload_refuse(struct control_client *c, const char *why)
{
	if (c == NULL) {
		log_warnx("reload: %s", why);
		return;
	}
	answer_printf(control_client_answer(c), CONTROL_ERROR_PREFIX "%s\n",
	    why);
	control_client_done(c);
}

/* A hand-over ended; a SIGHUP that came meanwhile asks for another. */
static void
reload_handover_done(struct master *m, int again)
{
	if (again && !m->stopping) {
		log_info("reload: starting the one asked for meanwhile");
		reload_start(m, NULL);
	}
}

/*
 * The config file again, checked as at start: 0 when its text is the
 * running config's (a rotation of the files behind it follows), 1 when it
 * changed and handover.c took it, -1 when it was refused (a parse
 * error, FILE:LINE: reason, leaves everything running as it is).
 */
static int
reload_read_config(struct master *m, struct control_client *c)
{
	struct config *cfg;
	char err[1024], why[1100];

	if ((cfg = calloc(1, sizeof(*cfg))) == NULL) {
		reload_refuse(c, "out of memory");
		return -1;
	}
	if (config_load(m->cfg->path, cfg, err, sizeof(err)) < 0) {
		free(cfg);
		snprintf(why, sizeof(why), "reload refused: %s; the running "
		    "configuration stays", err);
		reload_refuse(c, why);
		return -1;
	}
	if (!handover_needed(m->cfg, cfg)) {
		free(cfg);
		return 0;
	}
	log_info("reload: %s changed: a new generation takes over", cfg->path);
	handover_start(m, c, cfg, reload_handover_done);
	return 1;
}

/*
 * moatctl reload (c) or SIGHUP (c == NULL): rotate every frontend's
 * certificate and key.  One at a time: a SIGHUP during a reload starts
 * another one after it, a second moatctl reload is told to wait.
 */
void
reload_start(struct master *m, struct control_client *c)
{
	struct reload *r;
	struct timespec ts;
	unsigned i, j;

	if (m->stopping) {
		reload_refuse(c, c == NULL ? "moatd is stopping; ignored" :
		    "moatd is stopping");
		return;
	}
	if (m->reload != NULL || m->handover != NULL) {
		if (c == NULL) {
			if (m->reload != NULL)
				m->reload->again = 1;
			else
				handover_again(m);
			log_info("reload: one is in progress; another will "
			    "follow it");
			return;
		}
		reload_refuse(c, "a reload is already in progress");
		return;
	}
	/* MONOTONIC_USEC: what systemd >= 253 (Type=notify-reload) wants */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ull +
	    (unsigned long long)ts.tv_nsec / 1000ull);
	switch (reload_read_config(m, c)) {
	case 0:
		break;		/* the same text: rotate the files */
	case 1:
		return;		/* a hand-over took it (handover.c) */
	default:
		sd_notify(0, "READY=1");
		return;		/* refused, the client told */
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		log_warnx("reload: out of memory");
		if (c != NULL)
			reload_refuse(c, "out of memory");
		return;
	}
	r->m = m;
	r->client = c;
	for (i = 0; i < CONFIG_MAX_FRONTENDS; i++) {
		r->fe[i].r = r;
		r->fe[i].index = i;
		for (j = 0; j < CONFIG_MAX_CERTS; j++) {
			r->fe[i].certs[j].rf = &r->fe[i];
			r->fe[i].certs[j].cert = j;
			r->fe[i].certs[j].cert_fd = -1;
		}
	}
	if (c != NULL)
		control_client_on_gone(c, reload_client_gone, r);
	m->reload = r;
	log_info("reload: rotating the certificates and keys of %u frontends",
	    m->cfg->nfrontends);
	r->steps = 1;
	for (i = 0; i < m->cfg->nfrontends; i++)
		reload_begin(&r->fe[i]);
	if (--r->steps == 0)
		reload_workers(r);
}
