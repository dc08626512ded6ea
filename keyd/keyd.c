/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * keyd.c -- moat-keyd: holds the private keys and signs for the workers.
 *
 * The master starts it with fork + exec and gives it one control channel
 * (--control-fd).  Start-up: options, gnutls_global_init() (it reads the
 * system crypto policy, so before the sandbox), resolve the user and check
 * the chroot directory, create the libev loop (epoll fd, eventfd), drop
 * privileges (privdrop_apply), start the signer threads, load the seccomp
 * filter (sandbox_keyd.c, synchronised to every thread), then send
 * IPC_HELLO(KEYD) on the control channel and serve.  keyd never opens a
 * file: keys arrive as fds with IPC_KEY_LOAD (and leave, wiped, with
 * IPC_KEY_DROP), worker channels as fds with IPC_CHANNEL_ADD.  EOF on
 * the control channel (the master is gone) ends it.
 *
 * Which file does what: this one start-up, keyd_dispatch_master() and
 * shutdown; keyd_chan.c the worker channels (out queues, logging, rate
 * limits, keyd_dispatch_worker), with the limits' arithmetic (buckets, the
 * automatic rule below, the report) in keyd_limit.c; keyd_signer.c the job
 * queue and the signer threads; policy.c what keyd agrees to sign;
 * keystore.c the keys and the only code that uses them (and times them);
 * sandbox_keyd.c the seccomp allowlist.  Calls run one way:
 * keyd.c -> keyd_chan.c -> keyd_signer.c -> keystore.c -> policy.c; a
 * finished job comes back up only through its completion callback.  The
 * main thread runs the libev loop and owns the key store; keyd_types.h
 * says which lock guards what.
 *
 * Rate limits (moat.conf(5) may point here)
 * -----------------------------------------
 * Two token buckets bound what a compromised worker can make keyd do:
 * - per worker channel, every request of every type (KEY_LIST, refused
 *   and malformed ones included), --rate-limit N per second with a burst
 *   of --rate-burst N;
 * - per key, across all channels, the signatures and decryptions the
 *   policy let through, --key-rate N per second.
 * 0 (the default of all three) is auto, near what this machine can really
 * do: when a key loads, keyd times a handful of private-key operations
 * with it (keystore.c; dummy TLS 1.3 CertificateVerify content, never
 * sent), and the fastest, t seconds, gives the key's capacity
 *	C = threads / t		(--threads signer threads, all busy).
 * Auto key rate = C.  Auto channel rate = the largest C of the loaded keys
 * (more than keyd can sign with its fastest key no channel can use), at
 * least 100/s.  Every bucket holds 2 s of its rate (the worker's default
 * keyd-timeout: a request queued longer would time out anyway) unless
 * --rate-burst says otherwise for the channels; a given --key-rate gets
 * 2 s of itself.  The limits follow the keys: they are recomputed on
 * every KEY_LOAD and KEY_DROP and logged with the measured capacity.
 * What a limit refuses is answered -EBUSY, counted (rate_limited in
 * IPC_KEYD_STATS, and per channel in its closing line) and logged at most
 * once a minute per channel, one line with the count since the last one.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <gnutls/gnutls.h>

#include "ipc.h"
#include "keyd_chan.h"
#include "keyd_limit.h"
#include "keyd_pkcs11.h"
#include "keyd_signer.h"
#include "keyd_types.h"
#include "keystore.h"
#include "log.h"
#include "privdrop.h"
#include "sandbox_keyd.h"

#define KEYD_MAX_THREADS	256
#define KEYD_RATE_MAX		10000000ul	/* any of the three limits */

#define KEYD_DEFAULT_USER	"moat-keyd"
#define KEYD_DEFAULT_CHROOT	"/var/lib/moat/empty"

static const struct ipc_ends keyd_master_ends = { IPC_ROLE_KEYD, IPC_ROLE_MASTER };

static void
keyd_stats_fill(struct keyd *kd, struct ipc_keyd_stats *st)
{
	pthread_mutex_lock(&kd->lock);
	*st = kd->totals;
	st->channels = kd->nchans;
	pthread_mutex_unlock(&kd->lock);
	st->queue_depth = keyd_signer_depth(&kd->signer);
	st->threads = kd->signer.nthreads;
	st->keys = kd->ks.count;
}

static void
keyd_ctl_reply(struct keyd *kd, uint16_t type, uint32_t id, int status)
{
	int r;

	if ((r = ipc_send_status(kd->ctl_fd, type, id, status, NULL, 0)) < 0)
		log_warnx("%s: %s: %s", __func__, ipc_type_name(type),
		    strerror(-r));
}

/*
 * The limits after slot was loaded (op_seconds: one operation with its key
 * took that long, keystore.c; parallel: how many can run at once) or
 * dropped (0): the key's own, and the channels' that follow from all keys
 * (the rule is at the top).
 */
static void
keyd_key_limit(struct keyd *kd, uint32_t slot, double op_seconds,
    unsigned parallel)
{
	struct keyd_key_limit *kl;

	if (slot >= IPC_MAX_KEYS)
		return;
	kl = &kd->keylim[slot];
	keyd_limit_key_set(kl, op_seconds, parallel, kd->key_rate_opt);
	keyd_limit_chan_rate(kd->keylim, IPC_MAX_KEYS, kd->rate_opt,
	    kd->burst_opt, &kd->rate, &kd->burst);
	if (kl->rate > 0)
		log_info("key %u: %.0f operations/s with %u signer threads%s; "
		    "limit %.0f/s (burst %.0f) for the key, %.0f/s "
		    "(burst %.0f) per channel", slot, kl->capacity,
		    kd->signer.nthreads, parallel < kd->signer.nthreads ?
		    " (a token key: one operation at a time)" : "", kl->rate,
		    kl->burst, kd->rate, kd->burst);
}

static void
keyd_master_key_load(struct keyd *kd, struct ipc_msg *msg)
{
	struct ipc_key_load kl;
	struct ipc_key_loaded res;
	int r;

	memset(&res, 0, sizeof(res));
	if ((r = ipc_key_load_decode(msg->payload, msg->hdr.len, &kl)) < 0) {
		res.status = -EBADMSG;
		snprintf(res.msg, sizeof(res.msg), "malformed KEY_LOAD");
	} else if (keystore_load(&kd->ks, &kl, msg->fds, msg->nfds, &res) < 0) {
		log_warnx("%s: key %u (%s): %s", __func__, kl.key_id, kl.name,
		    res.msg);
	} else {
		log_info("key %u (%s) %s: %s %u bits, %u signature algorithms",
		    kl.key_id, kl.name, res.msg,
		    gnutls_pk_get_name(res.info.pk_algo), res.info.bits,
		    res.info.nsign);
		keyd_key_limit(kd, kl.key_id, keystore_key_op_seconds(
		    keystore_get(&kd->ks, kl.key_id)), keystore_key_parallel(
		    keystore_get(&kd->ks, kl.key_id), kd->signer.nthreads));
	}
	ipc_msg_close_fds(msg);
	if ((r = ipc_send(kd->ctl_fd, IPC_KEY_LOAD_REPLY, msg->hdr.id, &res,
	    sizeof(res), NULL, 0)) < 0)
		log_warnx("%s: reply: %s", __func__, strerror(-r));
}

/*
 * IPC_KEY_DROP: the master is done with a slot (the old key of a
 * rotation).  keyd forgets it now, so every later request naming the slot
 * gets -ENOENT, and the key is wiped once no queued job holds it.  The
 * answer is KEY_DROP_REPLY with 0, -ENOENT (nothing in that slot) or
 * -EBADMSG (a malformed request, or a slot out of range).
 */
static void
keyd_master_key_drop(struct keyd *kd, struct ipc_msg *msg)
{
	struct ipc_key_drop kdrop;
	int r;

	ipc_msg_close_fds(msg);
	if ((r = ipc_key_drop_decode(msg->payload, msg->hdr.len, &kdrop)) < 0) {
		log_warnx("%s: malformed KEY_DROP", __func__);
		keyd_ctl_reply(kd, IPC_KEY_DROP_REPLY, msg->hdr.id, -EBADMSG);
		return;
	}
	if ((r = keystore_drop(&kd->ks, kdrop.key_id)) == 0) {
		log_info("key %u dropped", kdrop.key_id);
		keyd_key_limit(kd, kdrop.key_id, 0, kd->signer.nthreads);
	} else {
		log_warnx("%s: key %u: no such key", __func__, kdrop.key_id);
	}
	keyd_ctl_reply(kd, IPC_KEY_DROP_REPLY, msg->hdr.id, r);
}

static void
keyd_master_channel_add(struct keyd *kd, struct ipc_msg *msg)
{
	struct ipc_channel ic;
	int r, fd;

	if ((r = ipc_channel_decode(msg->payload, msg->hdr.len, &ic)) < 0 ||
	    msg->nfds != 1) {
		log_warnx("%s: malformed CHANNEL_ADD (%u fds)", __func__,
		    msg->nfds);
		ipc_msg_close_fds(msg);
		keyd_ctl_reply(kd, IPC_CHANNEL_ADD_REPLY, msg->hdr.id, -EBADMSG);
		return;
	}
	fd = msg->fds[0];
	msg->nfds = 0;	/* the fd is keyd_chan_add()'s now */
	r = keyd_chan_add(kd, fd, &ic);
	keyd_ctl_reply(kd, IPC_CHANNEL_ADD_REPLY, msg->hdr.id, r);
}

/* One message from the master.  The master is trusted; keep it simple. */
static void
keyd_dispatch_master(struct keyd *kd, struct ipc_msg *msg)
{
	struct ipc_keyd_stats st;
	int r;

	if (!kd->master_hello) {
		if ((r = ipc_hello_check(msg, IPC_ROLE_MASTER)) < 0)
			fatalx("%s: bad hello from the master (%s): %s",
			    __func__, ipc_type_name(msg->hdr.type),
			    strerror(-r));
		kd->master_hello = 1;
		ipc_msg_close_fds(msg);
		return;
	}
	switch (msg->hdr.type) {
	case IPC_KEY_LOAD:
		keyd_master_key_load(kd, msg);
		break;
	case IPC_CHANNEL_ADD:
		keyd_master_channel_add(kd, msg);
		break;
	case IPC_KEY_DROP:
		keyd_master_key_drop(kd, msg);
		break;
	case IPC_KEYD_STATS:
		ipc_msg_close_fds(msg);
		keyd_stats_fill(kd, &st);
		if ((r = ipc_send(kd->ctl_fd, IPC_KEYD_STATS_REPLY, msg->hdr.id,
		    &st, sizeof(st), NULL, 0)) < 0)
			log_warnx("%s: stats reply: %s", __func__, strerror(-r));
		break;
	default:
		ipc_msg_close_fds(msg);
		log_warnx("%s: unexpected %s from the master", __func__,
		    ipc_type_name(msg->hdr.type));
		(void)ipc_error_send(kd->ctl_fd, msg->hdr.id, -EOPNOTSUPP,
		    "%s is not a keyd request", ipc_type_name(msg->hdr.type));
		break;
	}
}

static void
keyd_ctl_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct keyd *kd = ev_userdata(loop);
	int r;

	r = ipc_recv(kd->ctl_fd, &keyd_master_ends, &kd->msg);
	if (r == -EAGAIN || r == -EINTR)
		return;
	if (r == 0) {
		log_info("control channel closed, exiting");
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	if (r < 0) {
		log_warnx("%s: bad message from the master: %s; exiting",
		    __func__, strerror(-r));
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	keyd_dispatch_master(kd, &kd->msg);
}

static __dead void
keyd_usage(void)
{
	fprintf(stderr, "usage: moat-keyd --control-fd FD [--user USER] "
	    "[--chroot DIR] [--threads N]\n"
	    "                 [--sign-delay-ms N] [--rate-limit N] "
	    "[--rate-burst N] [--key-rate N]\n"
	    "                 [--pkcs11-module PATH [--pkcs11-allow PATH]...\n"
	    "                  [--pkcs11-allow-write PATH]...]\n"
	    "                 [--log-level LEVEL] [--seccomp-trap]\n");
	exit(2);
}

static unsigned long
keyd_number(const char *opt, const char *s, unsigned long min,
    unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		fatalx("%s: %s must be a number from %lu to %lu", opt, s, min,
		    max);
	return v;
}

/* Signers first: a running job still answers its channel. */
static void
keyd_shutdown(struct keyd *kd)
{
	keyd_signer_stop(&kd->signer);
	keyd_chan_close_all(kd);
	keystore_clear(&kd->ks);
	ev_io_stop(kd->loop, &kd->ctl_io);
	ev_loop_destroy(kd->loop);
}

int
main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "control-fd",		required_argument, NULL, 'c' },
		{ "user",		required_argument, NULL, 'u' },
		{ "chroot",		required_argument, NULL, 'C' },
		{ "threads",		required_argument, NULL, 't' },
		{ "sign-delay-ms",	required_argument, NULL, 'd' },
		{ "rate-limit",		required_argument, NULL, 'r' },
		{ "rate-burst",		required_argument, NULL, 'b' },
		{ "key-rate",		required_argument, NULL, 'k' },
		{ "log-level",		required_argument, NULL, 'l' },
		{ "seccomp-trap",	no_argument,	   NULL, 'T' },
		{ "pkcs11-module",	required_argument, NULL, 'm' },
		{ "pkcs11-allow",	required_argument, NULL, 'a' },
		{ "pkcs11-allow-write",	required_argument, NULL, 'w' },
		{ "help",		no_argument,	   NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	static struct keyd keyd;
	struct keyd *kd = &keyd;
	struct privdrop pd;
	enum log_level level = LOG_LEVEL_INFO;
	const char *user = KEYD_DEFAULT_USER, *chroot_dir = KEYD_DEFAULT_CHROOT;
	const char *module = NULL;
	struct keyd_pkcs11_path allow[KEYD_PKCS11_MAX_ALLOW];
	char err[KEYD_PKCS11_PATH_MAX + 256];
	unsigned nallow = 0, i, sandbox_mode = SANDBOX_KEYD_PLAIN;
	sigset_t none;
	unsigned nthreads = 0, sign_delay_ms = 0;
	long ncpu;
	int c, r, type;
	socklen_t tlen = sizeof(type);

	log_init("moat-keyd", LOG_LEVEL_INFO);
	kd->ctl_fd = -1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			kd->ctl_fd = (int)keyd_number("--control-fd", optarg, 0,
			    INT_MAX);
			break;
		case 'u':
			user = optarg;
			break;
		case 'C':
			chroot_dir = optarg;
			break;
		case 't':
			nthreads = (unsigned)keyd_number("--threads", optarg, 0,
			    KEYD_MAX_THREADS);
			break;
		case 'd':
			sign_delay_ms = (unsigned)keyd_number("--sign-delay-ms",
			    optarg, 0, 60000);
			break;
		case 'r':
			kd->rate_opt = (double)keyd_number("--rate-limit",
			    optarg, 0, KEYD_RATE_MAX);
			break;
		case 'b':
			kd->burst_opt = (double)keyd_number("--rate-burst",
			    optarg, 0, KEYD_RATE_MAX);
			break;
		case 'k':
			kd->key_rate_opt = (double)keyd_number("--key-rate",
			    optarg, 0, KEYD_RATE_MAX);
			break;
		case 'l':
			if (log_level_parse(optarg, &level) < 0)
				fatalx("--log-level: unknown level %s", optarg);
			log_setlevel(level);
			break;
		case 'T':
			kd->seccomp_trap = 1;
			break;
		case 'm':
			module = optarg;
			break;
		case 'a':
		case 'w':
			if (nallow == KEYD_PKCS11_MAX_ALLOW)
				fatalx("--pkcs11-allow: more than %u paths",
				    KEYD_PKCS11_MAX_ALLOW);
			allow[nallow].path = optarg;
			allow[nallow++].writable = c == 'w';
			break;
		default:
			keyd_usage();
		}
	}
	if (optind != argc || kd->ctl_fd < 0 || (module == NULL && nallow > 0))
		keyd_usage();

	/* The master may have blocked signals for its own loop. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (getsockopt(kd->ctl_fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0)
		fatal("control fd %d", kd->ctl_fd);
	if (type != SOCK_SEQPACKET)
		fatalx("control fd %d is not a SOCK_SEQPACKET socket",
		    kd->ctl_fd);
	/* Replies to the master may block; requests are read one by one. */
	if ((c = fcntl(kd->ctl_fd, F_GETFL)) < 0 ||
	    fcntl(kd->ctl_fd, F_SETFL, c & ~O_NONBLOCK) < 0 ||
	    fcntl(kd->ctl_fd, F_SETFD, FD_CLOEXEC) < 0)
		fatal("control fd %d", kd->ctl_fd);

	if (nthreads == 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		nthreads = ncpu < 1 ? 1 : ncpu > KEYD_MAX_THREADS ?
		    KEYD_MAX_THREADS : (unsigned)ncpu;
	}

	if ((r = gnutls_global_init()) < 0)
		fatalx("gnutls_global_init: %s", gnutls_strerror(r));
	memset(&pd, 0, sizeof(pd));
	if ((r = privdrop_lookup(user, &pd)) < 0) {
		errno = -r;
		fatal("user %s", user);
	}
	if ((r = privdrop_prepare_chroot(chroot_dir)) < 0) {
		errno = -r;
		fatal("chroot directory %s", chroot_dir);
	}
	pd.chroot_dir = chroot_dir;
	/* the module before the root it will see: it is loaded from / */
	if (module != NULL) {
		if (keyd_pkcs11_load(module, err, sizeof(err)) < 0 ||
		    keyd_pkcs11_root(chroot_dir, allow, nallow, err,
		    sizeof(err)) < 0)
			fatalx("%s", err);
		sandbox_mode = SANDBOX_KEYD_PKCS11_READ;
		for (i = 0; i < nallow; i++)
			if (allow[i].writable)
				sandbox_mode = SANDBOX_KEYD_PKCS11_WRITE;
	}

	pthread_mutex_init(&kd->lock, NULL);
	keyd_signer_init(&kd->signer, nthreads, sign_delay_ms);
	/* No key yet: the channels' limit is the options' or the floor. */
	keyd_limit_chan_rate(kd->keylim, IPC_MAX_KEYS, kd->rate_opt,
	    kd->burst_opt, &kd->rate, &kd->burst);
	if ((kd->loop = ev_loop_new(EVFLAG_NOENV | EVBACKEND_EPOLL)) == NULL)
		fatalx("cannot create the event loop (epoll)");
	ev_set_userdata(kd->loop, kd);
	/* Started now: libev creates its eventfd here, not in the sandbox. */
	keyd_chan_init(kd);
	ev_io_init(&kd->ctl_io, keyd_ctl_cb, kd->ctl_fd, EV_READ);
	ev_io_start(kd->loop, &kd->ctl_io);

	privdrop_apply(&pd);
	keyd_signer_start(&kd->signer);
	if ((r = sandbox_keyd_apply(kd->seccomp_trap, sandbox_mode)) < 0) {
		errno = -r;
		fatal("cannot load the seccomp filter");
	}

	if ((r = ipc_hello_send(kd->ctl_fd, IPC_ROLE_KEYD)) < 0) {
		errno = -r;
		fatal("hello to the master");
	}
	log_info("ready: user %s, chroot %s, %u signer threads%s", user,
	    chroot_dir, kd->signer.nthreads, sign_delay_ms > 0 ?
	    ", sign delay set (tests only)" : "");
	if (module != NULL)
		keyd_pkcs11_say(module, allow, nallow);

	ev_run(kd->loop, 0);

	keyd_shutdown(kd);
	gnutls_global_deinit();
	return 0;
}
