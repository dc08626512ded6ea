/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * master_keyd.c -- start moat-keyd, hand it the keys and the workers'
 * channels, and read what it says.
 *
 * keyd is a separate binary (after an upgrade it may be older than moatd,
 * hence the versioned hello), exec'd with its control channel on fd 3 and
 * nothing else open but stdio.  Once sandboxed it says hello; the master
 * answers, then sends every frontend's key as descriptors it opened and
 * never read (IPC_KEY_LOAD), one at a time, and waits for each answer.  That
 * part is synchronous with a deadline: nothing can be served before the keys
 * are in place, and a keyd start is short.  From then on keyd's channel is
 * read in the loop; each worker gets its own channel (IPC_CHANNEL_ADD).
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

#define MASTER_KEYD_FD	3	/* keyd's channel, as keyd is told */

static const struct ipc_ends master_keyd_ends = {
	IPC_ROLE_MASTER, IPC_ROLE_KEYD
};

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

/*
 * keyd (re)start: hand keyd the current key of a frontend's certificate
 * `cert`, into its slot of the current generation, and wait for its word
 * (synchronous, see the top).  The first time, the certificate's descriptor
 * becomes the frontend's (certs[cert].cert_fd): new workers read their
 * chain from it.
 */
static int
master_keyd_load_key(struct master *m, struct frontend *fe, unsigned cert,
    int64_t deadline, char *err, size_t errlen)
{
	struct frontend_cert *fc = &fe->certs[cert];
	int cert_fd = -1;
	struct ipc_key_loaded kr;
	struct ipc_error ie;
	struct ipc_msg *msg = NULL;
	char why[IPC_PATH_MAX + IPC_ERRMSG_MAX];
	uint32_t id, slot;
	int r;

	slot = IPC_KEY_SLOT(fe->index, cert, fe->key_generation);
	id = req_next_id(&m->reqs);
	if ((r = master_keyd_load_send(m, fe, cert, fe->key_generation,
	    fc->keyd_flags, id, &cert_fd, why, sizeof(why))) < 0) {
		snprintf(err, errlen, "frontend %s: %s", fe->name, why);
		goto out;
	}
	if ((msg = malloc(sizeof(*msg))) == NULL) {
		r = -ENOMEM;
		snprintf(err, errlen, "frontend %s: %s", fe->name, strerror(-r));
		goto out;
	}
	if ((r = ipc_recv_wait(m->keyd.fd, &master_keyd_ends, msg, deadline)) <= 0) {
		if (r == 0)
			r = -EPIPE;
		snprintf(err, errlen, "frontend %s: %s: keyd did not answer: "
		    "%s", fe->name, fc->key, r == -EPIPE ? "keyd exited" :
		    strerror(-r));
		goto out;
	}
	ipc_msg_close_fds(msg);
	if (msg->hdr.id != id) {
		r = -EPROTO;
		snprintf(err, errlen, "keyd answered request %u while waiting "
		    "for %u", msg->hdr.id, id);
		goto out;
	}
	if (msg->hdr.type == IPC_ERROR &&
	    ipc_error_decode(msg->payload, msg->hdr.len, &ie) == 0) {
		r = ie.code;
		snprintf(err, errlen, "frontend %s: %s: %s", fe->name, fc->key,
		    ie.msg[0] != '\0' ? ie.msg : strerror(-r));
		goto out;
	}
	if (msg->hdr.type != IPC_KEY_LOAD_REPLY ||
	    ipc_key_loaded_decode(msg->payload, msg->hdr.len, &kr) < 0) {
		r = -EPROTO;
		snprintf(err, errlen, "frontend %s: %s: bad answer from keyd "
		    "(%s)", fe->name, fc->key, ipc_type_name(msg->hdr.type));
		goto out;
	}
	if (kr.status < 0) {
		r = kr.status;
		/* keyd's reason names the files itself when it can. */
		if (strstr(kr.msg, fc->key) != NULL)
			snprintf(err, errlen, "frontend %s: %s", fe->name, kr.msg);
		else
			snprintf(err, errlen, "frontend %s: %s: %s", fe->name,
			    fc->key, kr.msg[0] != '\0' ? kr.msg : strerror(-r));
		goto out;
	}
	log_debug("%s: frontend %s: key %s loaded into slot %u (generation "
	    "%u, %u bits, %u signature algorithms)", __func__, fe->name,
	    fc->key, slot, fe->key_generation, kr.info.bits, kr.info.nsign);
	if (fc->cert_fd < 0) {
		fc->cert_fd = cert_fd;
		cert_fd = -1;
	}
	r = 0;
out:
	if (cert_fd >= 0)
		close(cert_fd);
	free(msg);
	return r;
}

static int
master_keyd_hello_wait(struct master *m, int64_t deadline, char *err, size_t errlen)
{
	struct ipc_msg *msg;
	int r;

	if ((msg = malloc(sizeof(*msg))) == NULL)
		return -ENOMEM;
	if ((r = ipc_recv_wait(m->keyd.fd, &master_keyd_ends, msg, deadline)) <= 0) {
		snprintf(err, errlen, "keyd %s (pid %ld) did not start: %s",
		    m->cfg->keyd_path, (long)m->keyd.pid, r == 0 ?
		    "it exited (its log says why)" : strerror(-r));
		r = r == 0 ? -EPIPE : r;
		goto out;
	}
	ipc_msg_close_fds(msg);
	if ((r = ipc_hello_check(msg, IPC_ROLE_KEYD)) < 0) {
		snprintf(err, errlen, "keyd %s: bad hello (%s%s)",
		    m->cfg->keyd_path, r == -EPROTO ? "version mismatch or " :
		    "", ipc_type_name(msg->hdr.type));
		goto out;
	}
	if ((r = ipc_hello_send(m->keyd.fd, IPC_ROLE_MASTER)) < 0)
		snprintf(err, errlen, "keyd: cannot send hello: %s",
		    strerror(-r));
out:
	free(msg);
	return r;
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
}

static void
master_keyd_kill_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master *m = ev_userdata(loop);

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

	if (master_keyd_start(k->m, err, sizeof(err)) < 0)
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

/*
 * Start keyd and load every key.  On failure err says why and a keyd that
 * was started has been killed (its ev_child watcher sees it die).
 */
int
master_keyd_start(struct master *m, char *err, size_t errlen)
{
	struct master_child *k = &m->keyd;
	struct config *cfg = m->cfg;
	int sv[2] = { -1, -1 };
	int64_t deadline;
	unsigned i, j, nkeys;
	pid_t pid;
	int r;

	if (access(cfg->keyd_path, X_OK) < 0) {
		r = -errno;
		snprintf(err, errlen, "keyd %s: %s", cfg->keyd_path,
		    strerror(-r));
		return r;
	}
	if ((r = ipc_socketpair(sv)) < 0) {
		snprintf(err, errlen, "keyd: socketpair: %s", strerror(-r));
		return r;
	}
	if ((pid = fork()) < 0) {
		r = -errno;
		snprintf(err, errlen, "keyd: fork: %s", strerror(-r));
		close(sv[0]);
		close(sv[1]);
		return r;
	}
	if (pid == 0) {
		close(sv[0]);
		master_keyd_exec(k, sv[1]);
	}
	close(sv[1]);
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0) {
		r = -errno;
		snprintf(err, errlen, "keyd: fcntl: %s", strerror(-r));
		close(sv[0]);
		kill(pid, SIGKILL);
		goto fail_reaped;
	}
	child_started(k, pid, sv[0], ev_time());
	log_info("keyd %s started (pid %ld)", cfg->keyd_path, (long)pid);

	deadline = ipc_now_ms() + MASTER_KEYD_START_MS;
	if ((r = master_keyd_hello_wait(m, deadline, err, errlen)) < 0)
		goto fail;
	nkeys = 0;
	for (i = 0; i < cfg->nfrontends; i++)
		for (j = 0; j < cfg->frontends[i].ncerts; j++, nkeys++)
			if ((r = master_keyd_load_key(m, &cfg->frontends[i], j,
			    deadline, err, errlen)) < 0)
				goto fail;

	m->keyd_generation++;
	k->ready = 1;
	child_watch(k);
	log_info("keyd (pid %ld) serving %u keys, generation %u", (long)pid,
	    nkeys, m->keyd_generation);
	master_keyd_channels_refresh(m);
	child_status_notify(m);
	return 0;

fail:
	child_chan_close(k);
	kill(pid, SIGKILL);
	return r;
fail_reaped:
	waitpid(pid, NULL, 0);
	return r;
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
