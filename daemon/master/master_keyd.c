/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * master_keyd.c -- start moat-keyd, hand it the keys and the workers'
 * channels, and read what it says.
 *
 * keyd is a separate binary (after an upgrade it may be older than moatd,
 * hence the versioned hello), exec'd with its control channel on fd 3 and
 * nothing else open but stdio.  Once sandboxed it says hello; the master
 * answers, then sends every frontend's key as descriptors it opened and
 * never read (IPC_KEY_LOAD), one at a time, each on the answer to the one
 * before.  All of it runs in the loop, under one deadline
 * (MASTER_KEYD_START_MS), so the master never waits for keyd: it answers
 * moatctl and tends its workers while a slow token or a large key loads.
 * Whoever started keyd (start-up, a restart, a reload's new generation)
 * learns the outcome through a callback.  Each worker gets its own channel
 * (IPC_CHANNEL_ADD).
 *
 * Certificate c's key of each frontend lives in slot IPC_KEY_SLOT(index, c,
 * key_generation).  A
 * certificate rotation (reload.c) sends the next generation's key into the
 * other slot from the loop, with master_keyd_load_send(), and keyd's answer
 * reaches it through the pending requests (req.c) that
 * master_dispatch_keyd() hands every answer to; a keyd that starts later
 * gets each frontend's current keys in their current slots only.
 *
 * A keyd that fails to start at boot stops moatd with keyd's reason.  Later,
 * a failed restart kills that keyd, and its death schedules the next attempt
 * with the same backoff as a crash.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "child.h"
#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "master_keyd.h"
#include "master_types.h"
#include "req.h"
#include "util.h"

#define MASTER_KEYD_FD	3	/* keyd's channel, as keyd is told */


static const char *
master_keyd_log_level(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_ERROR:	return "error";
	case LOG_LEVEL_WARN:	return "warn";
	case LOG_LEVEL_DEBUG:	return "debug";
	case LOG_LEVEL_INFO:
	default:		return "info";
	}
}

/* Runs in the forked child: make fd 3 the channel, close the rest, exec. */
static __dead void
master_keyd_exec(const struct master_child *k, int fd)
{
	const struct config *cfg = k->m->cfg;
	char threads[16], delay[16], rate[16], key_rate[16];
	const char *argv[24 + 2 * CONFIG_PKCS11_ALLOW_MAX];
	unsigned i;
	int n = 0;

	if (fd == MASTER_KEYD_FD) {
		if (fcntl(fd, F_SETFD, 0) < 0)
			fatal("%s: fcntl", __func__);
	} else if (dup2(fd, MASTER_KEYD_FD) < 0) {
		fatal("%s: dup2", __func__);
	}
	if (close_range(MASTER_KEYD_FD + 1, ~0u, 0) < 0) {
		for (n = MASTER_KEYD_FD + 1; n < 65536; n++)
			close(n);
	}

	snprintf(threads, sizeof(threads), "%u", cfg->keyd_threads);
	snprintf(delay, sizeof(delay), "%u", cfg->keyd_sign_delay_ms);
	/* unset is keyd's auto: what it measures it can sign (keyd/keyd.c) */
	snprintf(rate, sizeof(rate), "%u", cfg->keyd_rate);
	snprintf(key_rate, sizeof(key_rate), "%u", cfg->keyd_key_rate);
	n = 0;
	argv[n++] = cfg->keyd_path;
	argv[n++] = "--control-fd";
	argv[n++] = "3";
	argv[n++] = "--user";
	argv[n++] = cfg->keyd_user;
	argv[n++] = "--chroot";
	argv[n++] = cfg->chroot_dir;
	argv[n++] = "--threads";
	argv[n++] = threads;
	if (cfg->keyd_rate > 0) {
		argv[n++] = "--rate-limit";
		argv[n++] = rate;
	}
	if (cfg->keyd_key_rate > 0) {
		argv[n++] = "--key-rate";
		argv[n++] = key_rate;
	}
	if (cfg->keyd_sign_delay_ms > 0) {
		argv[n++] = "--sign-delay-ms";
		argv[n++] = delay;
	}
	if (cfg->pkcs11_module[0] != '\0') {
		argv[n++] = "--pkcs11-module";
		argv[n++] = cfg->pkcs11_module;
		for (i = 0; i < cfg->npkcs11_allow; i++) {
			argv[n++] = cfg->pkcs11_allow_write[i] ?
			    "--pkcs11-allow-write" : "--pkcs11-allow";
			argv[n++] = cfg->pkcs11_allow[i];
		}
	}
	argv[n++] = "--log-level";
	argv[n++] = master_keyd_log_level(cfg->log_level);
	argv[n] = NULL;
	child_exec(k, cfg->keyd_path, argv);
}

static int
master_keyd_open_ro(const char *path)
{
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
		return -errno;
	return fd;
}

/*
 * Open certificate `cert` of a frontend, its key (and the passphrase)
 * read-only and send them to keyd as IPC_KEY_LOAD into the slot of that
 * generation, IPC_KEY_SLOT(index, cert, generation), request id; keyd replaces whatever
 * the slot held once the new key loads and matches the cert.  We never read
 * the key or the passphrase.  The certificate we do read, and refuse it
 * when it holds a private key or does not parse (conf_cert.c); keyd gets a
 * sealed copy of exactly what was checked, and so do the workers.  With
 * cert_fd, our copy of it is kept there (the caller closes it).  A key for
 * the frontend's current generation when it has a chain already (a keyd
 * restart) is checked against that chain, the one the workers serve, not
 * against whatever the file holds now: a key file replaced without a
 * reload then fails to load, loudly, instead of signing for a certificate
 * no worker shows.  On failure err is "FILE: reason".
 */
int
master_keyd_load_send(struct master *m, const struct frontend *fe,
    unsigned cert, unsigned generation, unsigned flags, uint32_t id,
    int *cert_fd, char *err, size_t errlen)
{
	const struct frontend_cert *fc = &fe->certs[cert];
	struct ipc_key_load kl;
	int fds[3] = { -1, -1, -1 };
	char why[256];
	const char *secret;
	unsigned nfds = 2, i;
	int r, pk, file, *cert_slot = &fds[1];

	if (cert_fd != NULL)
		*cert_fd = -1;
	if (m->keyd.fd < 0) {
		snprintf(err, errlen, "%s: keyd is not running", fc->key);
		return -ENOTCONN;
	}
	memset(&kl, 0, sizeof(kl));
	kl.key_id = IPC_KEY_SLOT(fe->index, cert, generation);
	snprintf(kl.name, sizeof(kl.name), "%s", fe->name);
	snprintf(kl.key_path, sizeof(kl.key_path), "%s", fc->key);
	snprintf(kl.cert_path, sizeof(kl.cert_path), "%s", fc->cert);
	kl.flags = flags & (IPC_KEY_F_ALLOW_DECRYPT | IPC_KEY_F_ALLOW_DIGEST |
	    IPC_KEY_F_ALLOW_DHE);
	/* a token key has no file: [cert(, PIN)], else [key, cert(, pass)] */
	if (fc->key_pkcs11) {
		kl.flags |= IPC_KEY_F_PKCS11;
		cert_slot = &fds[0];
		nfds = 1;
	} else if ((fds[0] = master_keyd_open_ro(fc->key)) < 0) {
		r = fds[0];
		snprintf(err, errlen, "%s: %s", fc->key, strerror(-r));
		goto out;
	}
	if (fc->cert_fd >= 0 && kl.key_id == IPC_KEY_SLOT(fe->index, cert,
	    fe->key_generation)) {
		if ((*cert_slot = fcntl(fc->cert_fd, F_DUPFD_CLOEXEC, 0)) < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: %s", fc->cert, strerror(-r));
			goto out;
		}
	} else {
		if ((file = master_keyd_open_ro(fc->cert)) < 0) {
			r = file;
			snprintf(err, errlen, "%s: %s", fc->cert, strerror(-r));
			goto out;
		}
		r = config_cert_snapshot(file, cert_slot, &pk, why, sizeof(why));
		close(file);
		if (r < 0) {
			snprintf(err, errlen, "%s: %s", fc->cert, why);
			goto out;
		}
	}
	secret = fc->key_pkcs11 ? fe->key_pin_file : fe->key_passphrase_file;
	if (secret[0] != '\0') {
		kl.flags |= IPC_KEY_F_HAS_PASS;
		if ((fds[nfds] = master_keyd_open_ro(secret)) < 0) {
			r = fds[nfds];
			snprintf(err, errlen, "%s: %s", secret, strerror(-r));
			goto out;
		}
		nfds++;
	}
	if ((r = ipc_send(m->keyd.fd, IPC_KEY_LOAD, id, &kl, sizeof(kl), fds,
	    nfds)) < 0) {
		snprintf(err, errlen, "%s: cannot send to keyd: %s", fc->key,
		    strerror(-r));
		goto out;
	}
	if (cert_fd != NULL) {
		*cert_fd = *cert_slot;
		*cert_slot = -1;
	}
	r = 0;
out:
	/* ours are copies: keyd holds its own now, and we never read them */
	for (i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return r;
}

/* keyd forgets (and wipes) the key in that slot; its answer is logged. */
int
master_keyd_drop(struct master *m, uint32_t slot)
{
	struct ipc_key_drop kd;

	if (m->keyd.fd < 0 || !m->keyd.ready)
		return -ENOTCONN;
	memset(&kd, 0, sizeof(kd));
	kd.key_id = slot;
	return ipc_send(m->keyd.fd, IPC_KEY_DROP, req_next_id(&m->reqs), &kd,
	    sizeof(kd), NULL, 0);
}

/* Give every running worker a channel to this keyd generation. */
static void
master_keyd_channels_refresh(struct master *m)
{
	struct master_child *w;
	unsigned i;
	int fd, r;

	for (i = 0; i < m->cfg->workers; i++) {
		w = &m->workers[i];
		if (w->pid == 0 || w->fd < 0)
			continue;
		if (master_keyd_channel(m, i, &fd) < 0) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		r = ipc_send(w->fd, IPC_WORKER_CHANNEL, req_next_id(&m->reqs),
		    NULL, 0, &fd, 1);
		close(fd);
		if (r < 0)
			log_warnx("worker %u (pid %ld): cannot send its new keyd "
			    "channel: %s", i, (long)w->pid, strerror(-r));
	}
}

/* --- the start: hello, then every key, in the loop ---------------------- */

/*
 * keyd's start in progress.  Everything that can end it (a bad hello, a
 * key keyd refuses, the deadline, keyd's exit) first records why and kills
 * keyd; the end itself comes once nothing more can arrive: at keyd's exit,
 * or when the key load in flight settles after it (child.c settles the
 * requests of a child that exited right after telling its exit).
 */
struct master_keyd_start {
	struct master		*m;
	struct req		req;		/* the key load in flight */
	int			in_flight;
	ev_timer		deadline;
	master_keyd_ready_fn	*done;
	unsigned		fe, cert;	/* the next pair to load */
	unsigned		nkeys;
	int			cert_fd;	/* the chain of the load in flight */
	int			failed;
	int			status;
	char			err[IPC_PATH_MAX + IPC_ERRMSG_MAX + 64];
};

static void
master_keyd_start_end(struct master_keyd_start *s)
{
	struct master *m = s->m;
	master_keyd_ready_fn *done = s->done;
	char err[sizeof(s->err)];
	int status = s->status;

	memcpy(err, s->err, sizeof(err));
	ev_timer_stop(m->loop, &s->deadline);
	if (s->cert_fd >= 0)
		close(s->cert_fd);
	m->keyd_start = NULL;
	free(s);
	if (done != NULL)
		done(m, status, err);
	else if (status < 0)
		log_warnx("keyd restart failed: %s", err);
}

static void	master_keyd_start_fail(struct master_keyd_start *s, int status,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
master_keyd_start_fail(struct master_keyd_start *s, int status,
    const char *fmt, ...)
{
	va_list ap;

	if (!s->failed) {
		s->failed = 1;
		s->status = status < 0 ? status : -EIO;
		va_start(ap, fmt);
		vsnprintf(s->err, sizeof(s->err), fmt, ap);
		va_end(ap);
	}
	child_kill(&s->m->keyd, SIGKILL);
}

static void
master_keyd_start_deadline_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master_keyd_start *s = container_of(t, struct master_keyd_start,
	    deadline);

	master_keyd_start_fail(s, -ETIMEDOUT, "keyd %s (pid %ld) did not load "
	    "its keys within %u ms", s->m->cfg->keyd_path,
	    (long)s->m->keyd.pid, MASTER_KEYD_START_MS);
}

/* Every key is in: keyd serves. */
static void
master_keyd_start_ready(struct master_keyd_start *s)
{
	struct master *m = s->m;
	struct master_child *k = &m->keyd;

	m->keyd_generation++;
	k->ready = 1;
	log_info("keyd (pid %ld) serving %u keys, generation %u", (long)k->pid,
	    s->nkeys, m->keyd_generation);
	master_keyd_channels_refresh(m);
	child_status_notify(m);
	s->status = 0;
	s->err[0] = '\0';
	master_keyd_start_end(s);
}

static const struct req_ops master_keyd_start_ops;

/*
 * The next pair's key, as IPC_KEY_LOAD into its slot of the current
 * generation; the first time, the chain keyd checked becomes the
 * frontend's (certs[].cert_fd): workers read theirs from it.
 */
static void
master_keyd_start_next(struct master_keyd_start *s)
{
	struct master *m = s->m;
	const struct config *cfg = m->cfg;
	const struct frontend *fe;
	char why[IPC_PATH_MAX + IPC_ERRMSG_MAX];
	int r;

	while (s->fe < cfg->nfrontends &&
	    s->cert >= cfg->frontends[s->fe].ncerts) {
		s->fe++;
		s->cert = 0;
	}
	if (s->fe == cfg->nfrontends) {
		master_keyd_start_ready(s);
		return;
	}
	fe = &cfg->frontends[s->fe];
	req_init(&m->reqs, &s->req, &master_keyd_start_ops);
	if ((r = master_keyd_load_send(m, fe, s->cert, fe->key_generation,
	    fe->certs[s->cert].keyd_flags, s->req.id, &s->cert_fd, why,
	    sizeof(why))) < 0 || (r = req_expect(&s->req, &m->keyd)) < 0) {
		master_keyd_start_fail(s, r, "frontend %s: %s", fe->name, why);
		return;
	}
	s->in_flight = 1;
	req_start(&s->req, MASTER_KEYD_START_MS / 1000.0);
}

/* keyd's word on the key in flight. */
static void
master_keyd_start_answered(struct req *rq, const struct req_peer *p,
    struct ipc_msg *msg)
{
	struct master_keyd_start *s = container_of(rq, struct master_keyd_start,
	    req);
	struct frontend *fe = &s->m->cfg->frontends[s->fe];
	struct frontend_cert *fc = &fe->certs[s->cert];
	struct ipc_key_loaded kr;
	struct ipc_error ie;

	if (msg->hdr.type == IPC_ERROR &&
	    ipc_error_decode(msg->payload, msg->hdr.len, &ie) == 0) {
		master_keyd_start_fail(s, ie.code, "frontend %s: %s: %s",
		    fe->name, fc->key, ie.msg[0] != '\0' ? ie.msg :
		    strerror(-ie.code));
		return;
	}
	if (msg->hdr.type != IPC_KEY_LOAD_REPLY ||
	    ipc_key_loaded_decode(msg->payload, msg->hdr.len, &kr) < 0) {
		master_keyd_start_fail(s, -EPROTO, "frontend %s: %s: bad "
		    "answer from keyd (%s)", fe->name, fc->key,
		    ipc_type_name(msg->hdr.type));
		return;
	}
	if (kr.status < 0) {
		/* keyd's reason names the files itself when it can */
		if (strstr(kr.msg, fc->key) != NULL)
			master_keyd_start_fail(s, kr.status, "frontend %s: %s",
			    fe->name, kr.msg);
		else
			master_keyd_start_fail(s, kr.status, "frontend %s: "
			    "%s: %s", fe->name, fc->key, kr.msg[0] != '\0' ?
			    kr.msg : strerror(-kr.status));
		return;
	}
	log_debug("%s: frontend %s: key %s loaded (generation %u, %u bits, "
	    "%u signature algorithms)", __func__, fe->name, fc->key,
	    fe->key_generation, kr.info.bits, kr.info.nsign);
	if (fc->cert_fd < 0) {
		fc->cert_fd = s->cert_fd;
		s->cert_fd = -1;
	}
	s->nkeys++;
	s->cert++;
}

static void
master_keyd_start_lost(struct req *rq, const struct req_peer *p, int error)
{
	struct master_keyd_start *s = container_of(rq, struct master_keyd_start,
	    req);
	const struct frontend *fe = &s->m->cfg->frontends[s->fe];

	master_keyd_start_fail(s, error, "frontend %s: %s: keyd did not "
	    "answer: %s", fe->name, fe->certs[s->cert].key,
	    error == -ESRCH ? "keyd exited (its log says why)" :
	    strerror(-error));
}

static void
master_keyd_start_settled(struct req *rq)
{
	struct master_keyd_start *s = container_of(rq, struct master_keyd_start,
	    req);

	s->in_flight = 0;
	if (s->cert_fd >= 0) {
		close(s->cert_fd);
		s->cert_fd = -1;
	}
	if (!s->failed)
		master_keyd_start_next(s);
	else if (s->m->keyd.pid <= 0)
		master_keyd_start_end(s);	/* else its exit ends it */
}

static const struct req_ops master_keyd_start_ops = {
	master_keyd_start_answered,
	master_keyd_start_lost,
	master_keyd_start_settled,
};

/* keyd's hello during its start: answer it, then the keys. */
static void
master_keyd_start_hello(struct master_keyd_start *s, struct ipc_msg *msg)
{
	struct master *m = s->m;
	int r;

	if ((r = ipc_hello_check(msg, IPC_ROLE_KEYD)) < 0) {
		master_keyd_start_fail(s, r, "keyd %s: bad hello (%s%s)",
		    m->cfg->keyd_path, r == -EPROTO ? "version mismatch or " :
		    "", ipc_type_name(msg->hdr.type));
		return;
	}
	if ((r = ipc_hello_send(m->keyd.fd, IPC_ROLE_MASTER)) < 0) {
		master_keyd_start_fail(s, r, "keyd: cannot send hello: %s",
		    strerror(-r));
		return;
	}
	master_keyd_start_next(s);
}

/* keyd exited during its start: that ends it, unless a load settles yet. */
static void
master_keyd_start_exited(struct master_keyd_start *s)
{
	if (!s->failed) {
		s->failed = 1;
		s->status = -EPIPE;
		snprintf(s->err, sizeof(s->err), "keyd %s (pid %ld) did not "
		    "start: it exited (its log says why)", s->m->cfg->keyd_path,
		    (long)s->m->keyd.pid);
	}
	if (!s->in_flight)
		master_keyd_start_end(s);
}

/*
 * Start keyd; its hello and every key follow in the loop, and done (may be
 * NULL: a restart, whose failure is logged) learns how it went, with a
 * reason.  On failure here (nothing started) err says why.
 */
int
master_keyd_start(struct master *m, master_keyd_ready_fn *done, char *err,
    size_t errlen)
{
	struct master_child *k = &m->keyd;
	struct config *cfg = m->cfg;
	struct master_keyd_start *s;
	int sv[2] = { -1, -1 };
	pid_t pid;
	int r;

	if (access(cfg->keyd_path, X_OK) < 0) {
		r = -errno;
		snprintf(err, errlen, "keyd %s: %s", cfg->keyd_path,
		    strerror(-r));
		return r;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "keyd: out of memory");
		return -ENOMEM;
	}
	if ((r = ipc_socketpair(sv)) < 0) {
		snprintf(err, errlen, "keyd: socketpair: %s", strerror(-r));
		free(s);
		return r;
	}
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0 || (pid = fork()) < 0) {
		r = -errno;
		snprintf(err, errlen, "keyd: %s", strerror(-r));
		close(sv[0]);
		close(sv[1]);
		free(s);
		return r;
	}
	if (pid == 0) {
		close(sv[0]);
		master_keyd_exec(k, sv[1]);
	}
	close(sv[1]);
	s->m = m;
	s->done = done;
	s->cert_fd = -1;
	m->keyd_start = s;
	child_started(k, pid, sv[0], ev_now(m->loop));
	child_watch(k);
	ev_timer_init(&s->deadline, master_keyd_start_deadline_cb,
	    MASTER_KEYD_START_MS / 1000.0, 0.);
	ev_timer_start(m->loop, &s->deadline);
	log_info("keyd %s started (pid %ld)", cfg->keyd_path, (long)pid);
	return 0;
}

/*
 * keyd's messages once it serves: worker channels it took, and answers to
 * requests (stats, a reload's keys), which are the pending requests'.
 */
static void
master_dispatch_keyd(struct master_child *k, struct ipc_msg *msg)
{
	struct master *m = k->m;
	struct ipc_reply rep;
	struct ipc_error ie;

	switch (msg->hdr.type) {
	case IPC_CHANNEL_ADD_REPLY:
		if (ipc_reply_decode(msg->payload, msg->hdr.len, &rep) < 0)
			log_warnx("keyd: malformed CHANNEL_ADD_REPLY");
		else if (rep.status < 0)
			log_warnx("keyd refused a worker channel: %s",
			    strerror(-rep.status));
		break;
	case IPC_KEYD_STATS_REPLY:
	case IPC_KEY_LOAD_REPLY:
	case IPC_ERROR:
		if (req_answer(&m->reqs, k, msg))
			break;
		if (msg->hdr.type == IPC_KEY_LOAD_REPLY)
			log_debug("%s: KEY_LOAD_REPLY for no reload in progress",
			    __func__);
		else if (msg->hdr.type == IPC_ERROR &&
		    ipc_error_decode(msg->payload, msg->hdr.len, &ie) == 0)
			log_warnx("keyd: %s", ie.msg);
		break;
	case IPC_KEY_DROP_REPLY:
		if (ipc_reply_decode(msg->payload, msg->hdr.len, &rep) < 0)
			log_warnx("keyd: malformed KEY_DROP_REPLY");
		else if (rep.status < 0 && rep.status != -ENOENT)
			log_warnx("keyd could not drop a key: %s",
			    strerror(-rep.status));
		break;
	case IPC_HELLO:
		if (m->keyd_start != NULL && !k->ready)
			master_keyd_start_hello(m->keyd_start, msg);
		else
			log_warnx("keyd: a second hello");
		break;
	default:
		log_warnx("keyd: unexpected %s", ipc_type_name(msg->hdr.type));
		break;
	}
}

/* keyd closed its channel: a keyd that does so is no keyd (child.c). */
static void
master_keyd_closed(struct master_child *k)
{
	if (!k->m->stopping)
		log_warnx("keyd (pid %ld) closed its channel", (long)k->pid);
}

static void
master_keyd_exited(struct master_child *k, int st)
{
	struct master *m = k->m;

	if (m->stopping)
		log_info("keyd (pid %ld) stopped (%s %d)", (long)k->pid,
		    WIFEXITED(st) ? "status" : "signal",
		    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	else if (WIFEXITED(st))
		log_warnx("keyd (pid %ld) exited with status %d",
		    (long)k->pid, WEXITSTATUS(st));
	else
		log_warnx("keyd (pid %ld) killed by signal %d (%s)",
		    (long)k->pid, WTERMSIG(st), strsignal(WTERMSIG(st)));
	ev_timer_stop(m->loop, &m->keyd_kill);
	if (m->keyd_start != NULL)
		master_keyd_start_exited(m->keyd_start);
}

static void
master_keyd_kill_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master *m = container_of(t, struct master, keyd_kill);

	if (m->keyd.pid > 0) {
		log_warnx("keyd (pid %ld) did not stop; killing it",
		    (long)m->keyd.pid);
		child_kill(&m->keyd, SIGKILL);
	}
}

/* The backoff ran out (child.c): start keyd again. */
static void
master_keyd_restart(struct master_child *k)
{
	char err[512];

	if (master_keyd_start(k->m, NULL, err, sizeof(err)) < 0)
		log_warnx("keyd restart failed: %s", err);
}

static const struct child_ops master_keyd_ops = {
	master_keyd_restart,
	master_dispatch_keyd,
	master_keyd_closed,
	master_keyd_exited,
};

void
master_keyd_init(struct master *m)
{
	child_init(&m->keyd, m, &master_keyd_ops, IPC_ROLE_KEYD, 0, "keyd");
	ev_init(&m->keyd_kill, master_keyd_kill_cb);
}

/* Stop keyd: close its channel, SIGTERM, SIGKILL if it lingers. */
void
master_keyd_stop(struct master *m)
{
	ev_timer_stop(m->loop, &m->keyd.restart);
	child_chan_close(&m->keyd);
	if (m->keyd.pid <= 0)
		return;
	child_kill(&m->keyd, SIGTERM);
	ev_timer_set(&m->keyd_kill, MASTER_KEYD_STOP_S, 0.);
	ev_timer_start(m->loop, &m->keyd_kill);
}

/*
 * A new worker<->keyd channel: keyd gets one end (IPC_CHANNEL_ADD), the
 * worker the other (*worker_fd).  Without a ready keyd the worker still gets
 * an end, already closed on the other side; it takes the next keyd's channel
 * from IPC_WORKER_CHANNEL.
 */
int
master_keyd_channel(struct master *m, unsigned worker, int *worker_fd)
{
	struct ipc_channel ch;
	int sv[2], r;

	*worker_fd = -1;
	if ((r = ipc_socketpair(sv)) < 0) {
		log_warnx("worker %u: keyd channel: socketpair: %s", worker,
		    strerror(-r));
		return r;
	}
	*worker_fd = sv[0];
	if (!m->keyd.ready || m->keyd.fd < 0) {
		close(sv[1]);
		return -ENOTCONN;
	}
	memset(&ch, 0, sizeof(ch));
	ch.worker = worker;
	ch.generation = m->keyd_generation;
	r = ipc_send(m->keyd.fd, IPC_CHANNEL_ADD, req_next_id(&m->reqs), &ch,
	    sizeof(ch), &sv[1], 1);
	close(sv[1]);
	if (r < 0) {
		log_warnx("worker %u: cannot hand keyd its channel: %s", worker,
		    strerror(-r));
		return r;
	}
	return 0;
}
