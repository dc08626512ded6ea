/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * keydlib.c -- talk to a real moat-keyd as its master and as a worker
 * (keydlib.h).  One keyd per process: its pid, the control channel and
 * the deadline are kept here, so that keydlib_die() can say how keyd
 * ended and every receive knows which peer it reads.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "ipc.h"
#include "keydlib.h"

const uint8_t keydlib_digestinfo_prefix[3][KEYDLIB_DIGESTINFO] = {
	{ 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65,
	  0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 },
	{ 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65,
	  0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30 },
	{ 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65,
	  0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40 },
};

static const char	*keydlib_prog = "keydlib";
static uint64_t		keydlib_deadline_ms;
static uint32_t		keydlib_next_id = 1000;
static pid_t		keydlib_keyd_pid = -1;
static unsigned		keydlib_refusals;	/* -EPERM/-EINVAL/-ENOENT */
/*
 * The helper plays the master on the control channel and a worker on
 * every other channel; ipc_recv()'s permit check needs to know which.
 */
static int		keydlib_ctl_fd = -1;

/* The name keydlib_die() and the warnings start with. */
void
keydlib_init(const char *prog)
{
	keydlib_prog = prog;
}

void
keydlib_die(const char *fmt, ...)
{
	va_list ap;
	int status;

	fprintf(stderr, "%s: ", keydlib_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	if (keydlib_keyd_pid > 0) {
		/* Say how keyd ended if it did: that is usually the story. */
		usleep(100000);
		if (waitpid(keydlib_keyd_pid, &status, WNOHANG) ==
		    keydlib_keyd_pid)
			fprintf(stderr, "%s: moat-keyd %s %d\n", keydlib_prog,
			    WIFSIGNALED(status) ? "killed by signal" :
			    "exited with", WIFSIGNALED(status) ?
			    WTERMSIG(status) : WEXITSTATUS(status));
		else
			kill(keydlib_keyd_pid, SIGKILL);
	}
	exit(2);
}

static uint64_t
keydlib_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Every wait from now on ends at most seconds from now. */
void
keydlib_deadline_set(unsigned seconds)
{
	keydlib_deadline_ms = keydlib_now_ms() + (uint64_t)seconds * 1000u;
}

int
keydlib_remaining_ms(void)
{
	uint64_t now = keydlib_now_ms();

	return now >= keydlib_deadline_ms ? 0 :
	    (int)(keydlib_deadline_ms - now);
}

/* Request ids, one sequence for every channel. */
uint32_t
keydlib_id_next(void)
{
	return keydlib_next_id++;
}

const struct ipc_ends *
keydlib_ends(int fd)
{
	static const struct ipc_ends as_master = {
		IPC_ROLE_MASTER, IPC_ROLE_KEYD };
	static const struct ipc_ends as_worker = {
		IPC_ROLE_WORKER, IPC_ROLE_KEYD };

	return fd == keydlib_ctl_fd ? &as_master : &as_worker;
}

/* Receive one message, waiting at most until the deadline. 0 = EOF. */
int
keydlib_recv_wait(int fd, struct ipc_msg *msg)
{
	return ipc_recv_wait(fd, keydlib_ends(fd), msg,
	    (int64_t)keydlib_deadline_ms);
}

void
keydlib_expect(int fd, struct ipc_msg *msg, uint16_t type, const char *what)
{
	int r;

	if ((r = keydlib_recv_wait(fd, msg)) <= 0)
		keydlib_die("%s: %s", what, r == 0 ?
		    "keyd closed the channel" : strerror(-r));
	if (msg->hdr.type != type)
		keydlib_die("%s: got %s", what, ipc_type_name(msg->hdr.type));
}

void
keydlib_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		keydlib_die("fcntl: %s", strerror(errno));
}

/*
 * Start moat-keyd at path with its control channel on fd 3, as the master
 * does.  Returns our end of the control channel.
 */
int
keydlib_spawn(const char *path, const char *user, const char *chroot_dir,
    const char *threads, char **extra, unsigned nextra)
{
	char *argv[16 + KEYDLIB_MAX_EXTRA];
	unsigned n = 0, i;
	pid_t pid;
	int sv[2], r;

	if (nextra > KEYDLIB_MAX_EXTRA)
		keydlib_die("too many moat-keyd arguments");
	argv[n++] = (char *)path;
	argv[n++] = "--control-fd";
	argv[n++] = "3";
	argv[n++] = "--user";
	argv[n++] = (char *)user;
	argv[n++] = "--chroot";
	argv[n++] = (char *)chroot_dir;
	if (threads != NULL) {
		argv[n++] = "--threads";
		argv[n++] = (char *)threads;
	}
	for (i = 0; i < nextra; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;

	if ((r = ipc_socketpair(sv)) < 0)
		keydlib_die("socketpair: %s", strerror(-r));
	if ((pid = fork()) < 0)
		keydlib_die("fork: %s", strerror(errno));
	if (pid == 0) {
		/* keyd must not hold our stdout: the test reads it to EOF. */
		if (dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
			_exit(127);
		if (sv[1] == 3) {
			if (fcntl(3, F_SETFD, 0) < 0)
				_exit(127);
		} else if (dup2(sv[1], 3) < 0) {
			_exit(127);
		}
		execv(path, argv);
		_exit(127);
	}
	keydlib_keyd_pid = pid;
	close(sv[1]);
	keydlib_ctl_fd = sv[0];
	return sv[0];
}

pid_t
keydlib_pid(void)
{
	return keydlib_keyd_pid;
}

/*
 * Close the control channel, wait (bounded) for keyd to exit and print
 * how it ended as one JSON line.
 */
void
keydlib_stop(int ctl)
{
	int status = 0, i;
	pid_t r = 0;

	close(ctl);
	for (i = 0; i < 400; i++) {	/* 20 s */
		if ((r = waitpid(keydlib_keyd_pid, &status, WNOHANG)) != 0)
			break;
		usleep(50000);
	}
	if (r == 0) {
		kill(keydlib_keyd_pid, SIGKILL);
		waitpid(keydlib_keyd_pid, &status, 0);
		printf("{\"keyd_exit\": null, \"keyd_signal\": null, "
		    "\"killed\": true}\n");
	} else {
		printf("{\"keyd_exit\": %d, \"keyd_signal\": %d, "
		    "\"killed\": false}\n",
		    WIFEXITED(status) ? WEXITSTATUS(status) : -1,
		    WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	}
	fflush(stdout);
	keydlib_keyd_pid = -1;
}

void
keydlib_master_hello(int ctl, struct ipc_msg *msg)
{
	int r;

	keydlib_expect(ctl, msg, IPC_HELLO, "keyd hello");
	if ((r = ipc_hello_check(msg, IPC_ROLE_KEYD)) < 0)
		keydlib_die("keyd hello: %s", strerror(-r));
	if ((r = ipc_hello_send(ctl, IPC_ROLE_MASTER)) < 0)
		keydlib_die("hello: %s", strerror(-r));
}

/*
 * Open the key files (keyd gets the fds), load them as key id with flags
 * (IPC_KEY_F_ALLOW_*, what the master would allow the key's frontend) and
 * decode the IPC_KEY_LOAD_REPLY into res.  Returns res->status.
 */
int
keydlib_key_load(int ctl, uint32_t id, const char *key, const char *cert,
    const char *pass, uint32_t flags, struct ipc_msg *msg,
    struct ipc_key_loaded *res)
{
	struct ipc_key_load kl;
	int fds[3], nfds = 0, r;
	unsigned i;

	memset(&kl, 0, sizeof(kl));
	kl.key_id = id;
	kl.flags = flags & ~IPC_KEY_F_HAS_PASS;
	snprintf(kl.name, sizeof(kl.name), "key%u", id);
	snprintf(kl.key_path, sizeof(kl.key_path), "%s", key);
	snprintf(kl.cert_path, sizeof(kl.cert_path), "%s", cert);
	if ((fds[nfds++] = open(key, O_RDONLY | O_CLOEXEC)) < 0)
		keydlib_die("%s: %s", key, strerror(errno));
	if ((fds[nfds++] = open(cert, O_RDONLY | O_CLOEXEC)) < 0)
		keydlib_die("%s: %s", cert, strerror(errno));
	if (pass != NULL) {
		kl.flags |= IPC_KEY_F_HAS_PASS;
		if ((fds[nfds++] = open(pass, O_RDONLY | O_CLOEXEC)) < 0)
			keydlib_die("%s: %s", pass, strerror(errno));
	}
	if ((r = ipc_send(ctl, IPC_KEY_LOAD, id, &kl, sizeof(kl), fds,
	    (unsigned)nfds)) < 0)
		keydlib_die("KEY_LOAD: %s", strerror(-r));
	for (i = 0; i < (unsigned)nfds; i++)
		close(fds[i]);
	keydlib_expect(ctl, msg, IPC_KEY_LOAD_REPLY, "KEY_LOAD_REPLY");
	if (msg->hdr.id != id)
		keydlib_die("KEY_LOAD_REPLY for id %u, expected %u",
		    msg->hdr.id, id);
	if (ipc_key_loaded_decode(msg->payload, msg->hdr.len, res) < 0)
		keydlib_die("KEY_LOAD_REPLY: malformed");
	return res->status;
}

/* IPC_KEY_DROP of slot id; returns the KEY_DROP_REPLY's status. */
int
keydlib_key_drop(int ctl, uint32_t id, struct ipc_msg *msg)
{
	struct ipc_key_drop kd;
	struct ipc_reply rep;
	uint32_t rid = keydlib_id_next();
	int r;

	memset(&kd, 0, sizeof(kd));
	kd.key_id = id;
	if ((r = ipc_send(ctl, IPC_KEY_DROP, rid, &kd, sizeof(kd), NULL,
	    0)) < 0)
		keydlib_die("KEY_DROP: %s", strerror(-r));
	keydlib_expect(ctl, msg, IPC_KEY_DROP_REPLY, "KEY_DROP_REPLY");
	if (msg->hdr.id != rid)
		keydlib_die("KEY_DROP_REPLY for id %u, expected %u",
		    msg->hdr.id, rid);
	if (ipc_reply_decode(msg->payload, msg->hdr.len, &rep) < 0)
		keydlib_die("KEY_DROP_REPLY: malformed");
	return rep.status;
}

/*
 * Give keyd a new worker channel and exchange the hellos on it, as a
 * worker does first; returns our (the worker's) end.
 */
int
keydlib_channel_add(int ctl, uint32_t worker, struct ipc_msg *msg)
{
	struct ipc_channel ic;
	struct ipc_reply rep;
	int sv[2], r;

	if ((r = ipc_socketpair(sv)) < 0)
		keydlib_die("socketpair: %s", strerror(-r));
	memset(&ic, 0, sizeof(ic));
	ic.worker = worker;
	ic.generation = 1;
	if ((r = ipc_send(ctl, IPC_CHANNEL_ADD, worker, &ic, sizeof(ic),
	    &sv[1], 1)) < 0)
		keydlib_die("CHANNEL_ADD: %s", strerror(-r));
	close(sv[1]);
	keydlib_expect(ctl, msg, IPC_CHANNEL_ADD_REPLY, "CHANNEL_ADD_REPLY");
	if (ipc_reply_decode(msg->payload, msg->hdr.len, &rep) < 0 ||
	    rep.status != 0)
		keydlib_die("CHANNEL_ADD refused");
	keydlib_set_nonblock(sv[0]);
	keydlib_worker_hello(sv[0], msg);
	return sv[0];
}

void
keydlib_worker_hello(int fd, struct ipc_msg *msg)
{
	int r;

	keydlib_expect(fd, msg, IPC_HELLO, "keyd hello on a worker channel");
	if ((r = ipc_hello_check(msg, IPC_ROLE_KEYD)) < 0)
		keydlib_die("worker channel hello: %s", strerror(-r));
	if ((r = ipc_hello_send(fd, IPC_ROLE_WORKER)) < 0)
		keydlib_die("worker hello: %s", strerror(-r));
}

void
keydlib_stats(int ctl, struct ipc_msg *msg, struct ipc_keyd_stats *st)
{
	int r;

	if ((r = ipc_send(ctl, IPC_KEYD_STATS, 7, NULL, 0, NULL, 0)) < 0)
		keydlib_die("KEYD_STATS: %s", strerror(-r));
	keydlib_expect(ctl, msg, IPC_KEYD_STATS_REPLY, "KEYD_STATS_REPLY");
	if (ipc_keyd_stats_decode(msg->payload, msg->hdr.len, st) < 0)
		keydlib_die("KEYD_STATS_REPLY: malformed");
}

/* An IPC_SIGN payload in buf (IPC_MAX_PAYLOAD bytes); returns its size. */
size_t
keydlib_sign_encode(uint8_t *buf, uint32_t key_id, uint32_t algo,
    uint32_t form, const uint8_t *data, size_t len)
{
	struct ipc_sign_req sr;
	ssize_t n;

	memset(&sr, 0, sizeof(sr));
	sr.key_id = key_id;
	sr.sign_algo = algo;
	sr.form = form;
	sr.data = data;
	sr.data_len = len;
	if ((n = ipc_sign_encode(buf, IPC_MAX_PAYLOAD, &sr)) < 0)
		keydlib_die("ipc_sign_encode: %s", strerror((int)-n));
	return (size_t)n;
}

/* Send one IPC_SIGN without waiting: returns ipc_send()'s answer. */
int
keydlib_sign_send(int fd, uint32_t id, uint32_t key_id, uint32_t algo,
    uint32_t form, const uint8_t *data, size_t len)
{
	uint8_t buf[IPC_MAX_PAYLOAD];
	size_t n;

	n = keydlib_sign_encode(buf, key_id, algo, form, data, len);
	return ipc_send(fd, IPC_SIGN, id, buf, n, NULL, 0);
}

/*
 * One request, one answer: returns 0 for a reply (in msg) or the code of
 * keyd's IPC_ERROR.  Refusals are counted (keydlib_refusals_seen).
 */
int
keydlib_roundtrip(int fd, uint16_t type, const void *payload, size_t len,
    struct ipc_msg *msg)
{
	struct ipc_error e;
	uint32_t id = keydlib_id_next();
	int r;

	if ((r = ipc_send(fd, type, id, payload, len, NULL, 0)) < 0)
		keydlib_die("send: %s", strerror(-r));
	if ((r = keydlib_recv_wait(fd, msg)) <= 0)
		keydlib_die("roundtrip: %s", r == 0 ? "channel closed" :
		    strerror(-r));
	if (msg->hdr.id != id)
		keydlib_die("answer for id %u, expected %u", msg->hdr.id, id);
	if (msg->hdr.type != IPC_ERROR)
		return 0;
	if (ipc_error_decode(msg->payload, msg->hdr.len, &e) < 0)
		keydlib_die("malformed IPC_ERROR");
	if (e.code == -EPERM || e.code == -EINVAL || e.code == -ENOENT)
		keydlib_refusals++;
	return e.code;
}

/* How many -EPERM, -EINVAL or -ENOENT answers keydlib_roundtrip() saw. */
unsigned
keydlib_refusals_seen(void)
{
	return keydlib_refusals;
}

int
keydlib_sign_roundtrip(int fd, uint32_t key_id, uint32_t algo, uint32_t form,
    const uint8_t *data, size_t len, struct ipc_msg *msg)
{
	uint8_t buf[IPC_MAX_PAYLOAD];
	size_t n;

	n = keydlib_sign_encode(buf, key_id, algo, form, data, len);
	return keydlib_roundtrip(fd, IPC_SIGN, buf, n, msg);
}

int
keydlib_decrypt_roundtrip(int fd, uint32_t key_id, const uint8_t *data,
    size_t len, struct ipc_msg *msg)
{
	struct ipc_decrypt_req dr;
	uint8_t buf[IPC_MAX_PAYLOAD];
	ssize_t n;

	memset(&dr, 0, sizeof(dr));
	dr.key_id = key_id;
	dr.data = data;
	dr.data_len = len;
	if ((n = ipc_decrypt_encode(buf, sizeof(buf), &dr)) < 0)
		keydlib_die("ipc_decrypt_encode");
	return keydlib_roundtrip(fd, IPC_DECRYPT, buf, (size_t)n, msg);
}

/*
 * Send raw bytes as one datagram, then wait for keyd to close the channel.
 * Returns 1 if it did, 0 if it kept the channel open until the deadline.
 */
int
keydlib_closed_after(int fd, const void *buf, size_t len, struct ipc_msg *msg)
{
	if (send(fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len)
		return 0;
	return keydlib_wait_closed(fd, msg);
}

/* Wait for keyd to close the channel: 1 if it did, 0 at the deadline. */
int
keydlib_wait_closed(int fd, struct ipc_msg *msg)
{
	int r;

	for (;;) {
		r = keydlib_recv_wait(fd, msg);
		if (r == 0 || r == -ECONNRESET)
			return 1;
		if (r < 0)
			return 0;	/* timed out: keyd kept it open */
	}
}

/*
 * What a compromised worker can attach to a message: a loopback TCP socket
 * whose peer (*peer, for the caller to keep open and close) never reads,
 * its send buffer full and SO_LINGER linger_s set, so that a plain close()
 * of its last reference blocks for linger_s seconds.
 */
int
keydlib_lingering_socket(int *peer, int linger_s)
{
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	struct linger lg = { 1, linger_s };
	static char junk[65536];
	int lfd, cfd, small = 4096;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &salen) < 0 ||
	    (cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(cfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)) < 0 ||
	    connect(cfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    (*peer = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
		keydlib_die("lingering socket: %s", strerror(errno));
	close(lfd);
	while (send(cfd, junk, sizeof(junk), MSG_NOSIGNAL | MSG_DONTWAIT) > 0)
		;
	if (errno != EAGAIN ||
	    setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
		keydlib_die("lingering socket: %s", strerror(errno));
	return cfd;
}

/*
 * Send a KEY_LIST on worker channel fd with a lingering socket attached
 * (linger_s), as a compromised worker can, and wait for keyd to close the
 * channel.  Returns 1 if it did; *ms is how long that took, *reset whether
 * the socket's peer saw a reset (an abortive close, not a lingering one).
 */
int
keydlib_send_lingering(int fd, int linger_s, struct ipc_msg *msg,
    int64_t *ms, int *reset)
{
	static char buf[65536];
	int sock, peer, closed, r;
	int64_t t0;

	sock = keydlib_lingering_socket(&peer, linger_s);
	t0 = ipc_now_ms();
	if ((r = ipc_send(fd, IPC_KEY_LIST, keydlib_id_next(), NULL, 0, &sock,
	    1)) < 0)
		keydlib_die("KEY_LIST with a descriptor: %s", strerror(-r));
	close(sock);	/* keyd's copy is the last reference */
	closed = keydlib_wait_closed(fd, msg);
	*ms = ipc_now_ms() - t0;
	while (recv(peer, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
	*reset = errno == ECONNRESET;
	close(peer);
	return closed;
}

/*
 * The external key's callbacks: GnuTLS itself decides what reaches
 * sign_hash or sign_data, as in a worker.
 */
static int
keydlib_ext_sign(struct keydlib_ext *x, uint32_t algo, uint32_t form,
    const gnutls_datum_t *in, gnutls_datum_t *sig)
{
	struct ipc_reply rep;

	if (keydlib_sign_roundtrip(x->fd, x->key_id, algo, form, in->data,
	    in->size, x->msg) != 0)
		return GNUTLS_E_PK_SIGN_FAILED;
	if (ipc_reply_decode(x->msg->payload, x->msg->hdr.len, &rep) < 0 ||
	    rep.status != 0)
		return GNUTLS_E_PK_SIGN_FAILED;
	if ((sig->data = gnutls_malloc(rep.data_len)) == NULL)
		return GNUTLS_E_MEMORY_ERROR;
	memcpy(sig->data, rep.data, rep.data_len);
	sig->size = (unsigned)rep.data_len;
	return 0;
}

static int
keydlib_ext_sign_data(gnutls_privkey_t key, gnutls_sign_algorithm_t algo,
    void *userdata, unsigned flags, const gnutls_datum_t *data,
    gnutls_datum_t *sig)
{
	return keydlib_ext_sign(userdata, algo, IPC_SIGN_CONTENT, data, sig);
}

static int
keydlib_ext_sign_hash(gnutls_privkey_t key, gnutls_sign_algorithm_t algo,
    void *userdata, unsigned flags, const gnutls_datum_t *hash,
    gnutls_datum_t *sig)
{
	return keydlib_ext_sign(userdata, algo, IPC_SIGN_DIGEST, hash, sig);
}

static int
keydlib_ext_info(gnutls_privkey_t key, unsigned flags, void *userdata)
{
	struct keydlib_ext *x = userdata;
	uint32_t i, algo;

	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO)
		return (int)x->info->pk_algo;
	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO_BITS)
		return (int)x->info->bits;
	if (flags & GNUTLS_PRIVKEY_INFO_HAVE_SIGN_ALGO) {
		algo = GNUTLS_FLAGS_TO_SIGN_ALGO(flags);
		for (i = 0; i < x->info->nsign; i++)
			if (x->info->sign_algos[i] == algo)
				return 1;
		return 0;
	}
	return GNUTLS_E_UNIMPLEMENTED_FEATURE;
}

/* Make pk (initialised) an external key that signs through x's channel. */
int
keydlib_ext_import(gnutls_privkey_t pk, struct keydlib_ext *x)
{
	return gnutls_privkey_import_ext4(pk, x, keydlib_ext_sign_data,
	    keydlib_ext_sign_hash, NULL, NULL, keydlib_ext_info, 0);
}

/*
 * A ClientKeyExchange ciphertext for an RSA key of bits (pub): kind 0 the
 * encryption of a random 48-byte premaster, 1 random bytes below the
 * modulus (bad padding), 2 the encryption of a 47-byte secret.  The
 * secret goes to secret; returns its length (0 for kind 1).  pub NULL (a
 * key that is not RSA): 256 random bytes.  ct is gnutls_malloc'd.
 */
size_t
keydlib_rsa_kx(gnutls_pubkey_t pub, unsigned bits, int kind,
    uint8_t secret[48], gnutls_datum_t *ct)
{
	gnutls_datum_t pt = { secret, kind == 2 ? 47 : 48 };

	keydlib_rnd(secret, 48);
	if (pub != NULL && kind != 1) {
		if (gnutls_pubkey_encrypt_data(pub, 0, &pt, ct) < 0)
			keydlib_die("gnutls_pubkey_encrypt_data");
		return pt.size;
	}
	ct->size = pub != NULL ? (bits + 7) / 8 : 256;
	if ((ct->data = gnutls_malloc(ct->size)) == NULL)
		keydlib_die("gnutls_malloc");
	keydlib_rnd(ct->data, ct->size);
	ct->data[0] = 0;	/* below any modulus of that size */
	return 0;
}

/* The public key of the first certificate of a PEM file. */
gnutls_pubkey_t
keydlib_read_pubkey(const char *cert)
{
	gnutls_datum_t d;
	gnutls_x509_crt_t crt;
	gnutls_pubkey_t pub;
	int r;

	if ((r = gnutls_load_file(cert, &d)) < 0)
		keydlib_die("%s: %s", cert, gnutls_strerror(r));
	if (gnutls_x509_crt_init(&crt) < 0 || gnutls_pubkey_init(&pub) < 0)
		keydlib_die("gnutls init");
	if ((r = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM)) < 0 ||
	    (r = gnutls_pubkey_import_x509(pub, crt, 0)) < 0)
		keydlib_die("%s: %s", cert, gnutls_strerror(r));
	gnutls_x509_crt_deinit(crt);
	gnutls_free(d.data);
	return pub;
}

void
keydlib_rnd(void *p, size_t n)
{
	if (gnutls_rnd(GNUTLS_RND_NONCE, p, n) < 0)
		keydlib_die("gnutls_rnd");
}

/* 64 spaces, the server context, NUL, a random 32/48-byte "transcript hash". */
size_t
keydlib_make_cv(uint8_t *p, unsigned hash_len)
{
	static const char ctx[] = "TLS 1.3, server CertificateVerify";

	memset(p, 0x20, 64);
	memcpy(p + 64, ctx, sizeof(ctx));	/* with its NUL */
	keydlib_rnd(p + 64 + sizeof(ctx), hash_len);
	return 64 + sizeof(ctx) + hash_len;
}

/*
 * A fresh secp256r1 public point, 0x04 || X || Y, into p (65 bytes): keyd
 * signs only points on the curve, as a handshake's always are.
 */
static void
keydlib_p256_point(uint8_t *p)
{
	gnutls_privkey_t priv;
	gnutls_pubkey_t pub;
	gnutls_ecc_curve_t curve;
	gnutls_datum_t x, y;

	if (gnutls_privkey_init(&priv) < 0 || gnutls_pubkey_init(&pub) < 0 ||
	    gnutls_privkey_generate(priv, GNUTLS_PK_ECDSA,
	    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0 ||
	    gnutls_pubkey_import_privkey(pub, priv, 0, 0) < 0 ||
	    gnutls_pubkey_export_ecc_raw2(pub, &curve, &x, &y,
	    GNUTLS_EXPORT_FLAG_NO_LZ) < 0)
		keydlib_die("cannot make a P-256 point");
	if (x.size > 32 || y.size > 32)
		keydlib_die("P-256 coordinate of %u/%u bytes", x.size, y.size);
	memset(p, 0, 65);
	p[0] = 0x04;
	memcpy(p + 1 + 32 - x.size, x.data, x.size);
	memcpy(p + 1 + 64 - y.size, y.data, y.size);
	gnutls_free(x.data);
	gnutls_free(y.data);
	gnutls_pubkey_deinit(pub);
	gnutls_privkey_deinit(priv);
}

/* Two randoms and ServerECDHParams for x25519 or secp256r1. */
size_t
keydlib_make_ske(uint8_t *p, int p256)
{
	keydlib_rnd(p, 64);
	p[64] = 3;
	p[65] = 0;
	if (p256) {
		p[66] = 23;
		p[67] = 65;
		keydlib_p256_point(p + 68);
		return 68 + 65;
	}
	p[66] = 29;
	p[67] = 32;
	keydlib_rnd(p + 68, 32);
	return 68 + 32;
}

void
keydlib_json_str(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

/* keyd's IPC_KEYD_STATS as the member "stats" of a JSON object. */
void
keydlib_json_stats(const struct ipc_keyd_stats *st)
{
	printf("\"stats\": {\"requests\": %llu, \"sign_rsa_pkcs1\": %llu, "
	    "\"sign_rsa_pss\": %llu, \"sign_ecdsa\": %llu, "
	    "\"sign_eddsa\": %llu, \"decrypts\": %llu, \"refused\": %llu, "
	    "\"errors\": %llu, \"rate_limited\": %llu, "
	    "\"latency_us_total\": %llu, \"latency_us_max\": %llu, "
	    "\"channels\": %u, \"queue_depth\": %u, \"threads\": %u, "
	    "\"keys\": %u}",
	    (unsigned long long)st->requests,
	    (unsigned long long)st->signs[IPC_STAT_RSA_PKCS1],
	    (unsigned long long)st->signs[IPC_STAT_RSA_PSS],
	    (unsigned long long)st->signs[IPC_STAT_ECDSA],
	    (unsigned long long)st->signs[IPC_STAT_EDDSA],
	    (unsigned long long)st->decrypts, (unsigned long long)st->refused,
	    (unsigned long long)st->errors,
	    (unsigned long long)st->rate_limited,
	    (unsigned long long)st->latency_us_total,
	    (unsigned long long)st->latency_us_max, st->channels,
	    st->queue_depth, st->threads, st->keys);
}
