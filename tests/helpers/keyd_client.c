/*
 * keyd_client.c -- plays the master and a worker against a real moat-keyd.
 *
 * usage: keyd_client [-m sign|load|ratelimit] [-k ID,KEY,CERT[,pass=FILE]
 *            [,decrypt]]... [-n N] [-u USER] [-C CHROOT] [-t THREADS]
 *            [-x KEYD-ARG]... [-T SECONDS] [-w] MOAT-KEYD
 *
 * As the master it spawns moat-keyd (fork + exec, control channel on fd 3),
 * loads the keys with IPC_KEY_LOAD (it opens the files; keyd gets the fds)
 * and hands keyd worker channels.  As a worker it then exercises them:
 *   sign       N requests per key in flight at once (TLS 1.3 CertificateVerify
 *              content with random transcript hashes, plus TLS 1.2
 *              ServerKeyExchange content and bare digests: RSA DigestInfo,
 *              RSA-PSS and ECDSA), every signature verified with the
 *              certificate's public key; the same through a GnuTLS
 *              import_ext4 key, so the digests are the ones GnuTLS makes;
 *              requests the policy must refuse; a decrypt round trip; a
 *              malformed and an oversized datagram on other channels,
 *              after which another channel must still be served.
 *   load       only load the keys and report each KEY_LOAD_REPLY.
 *   ratelimit  N requests at once; reports how many keyd rate limited.
 * It prints one JSON object with the results and keyd's IPC_KEYD_STATS.
 * With -w it then keeps keyd running until stdin reaches EOF (so a test can
 * inspect /proc/PID), closes the control channel, and prints a second JSON
 * line with keyd's exit status.  Every wait is bounded by -T.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

#define MAX_SPECS	16
#define MAX_EXTRA	16
#define MAX_REQS	20000
#define CONTENT_MAX	512

struct spec {
	uint32_t		id;
	const char		*key;
	const char		*cert;
	const char		*pass;
	int			decrypt;
	gnutls_pubkey_t		pub;
	int			loaded;
	struct ipc_key_loaded	res;
	/* results of the sign mode */
	unsigned		sent, verified, failed;
	unsigned		batch_sent, batch_verified, batch_failed;
	unsigned		ext_total, ext_verified;
};

struct req {
	uint32_t	id;
	struct spec	*spec;
	uint32_t	sign_algo;	/* what keyd is asked */
	uint32_t	form;
	uint32_t	verify_algo;	/* what the signature is checked as */
	unsigned	verify_flags;
	uint8_t		msg[CONTENT_MAX];	/* what the signature covers */
	size_t		msg_len;
	uint8_t		data[CONTENT_MAX];	/* what keyd gets */
	size_t		data_len;
	int		done;
};

static struct spec	specs[MAX_SPECS];
static unsigned		nspecs;
static struct req	*reqs;
static uint64_t		deadline_ms;
static uint32_t		next_id = 1000;
static pid_t		keyd_pid = -1;
static unsigned		refusals_seen;	/* -EPERM/-EINVAL/-ENOENT answers */

static __attribute__((format(printf, 1, 2), noreturn)) void
die(const char *fmt, ...)
{
	va_list ap;
	int status;

	fprintf(stderr, "keyd_client: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	if (keyd_pid > 0) {
		/* Say how keyd ended if it did: that is usually the story. */
		usleep(100000);
		if (waitpid(keyd_pid, &status, WNOHANG) == keyd_pid)
			fprintf(stderr, "keyd_client: moat-keyd %s %d\n",
			    WIFSIGNALED(status) ? "killed by signal" :
			    "exited with", WIFSIGNALED(status) ?
			    WTERMSIG(status) : WEXITSTATUS(status));
		else
			kill(keyd_pid, SIGKILL);
	}
	exit(2);
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int
remaining_ms(void)
{
	uint64_t now = now_ms();

	return now >= deadline_ms ? 0 : (int)(deadline_ms - now);
}

/*
 * This client plays the master on ctl_fd and a worker on every other
 * channel; ipc_recv()'s permit check needs to know which.
 */
static int ctl_fd = -1;

static const struct ipc_ends *
ends_of(int fd)
{
	static const struct ipc_ends as_master = { IPC_ROLE_MASTER, IPC_ROLE_KEYD };
	static const struct ipc_ends as_worker = { IPC_ROLE_WORKER, IPC_ROLE_KEYD };

	return fd == ctl_fd ? &as_master : &as_worker;
}

/* Receive one message, waiting at most until the deadline. 0 = EOF. */
static int
recv_wait(int fd, struct ipc_msg *msg)
{
	return ipc_recv_wait(fd, ends_of(fd), msg, (int64_t)deadline_ms);
}

static void
expect(int fd, struct ipc_msg *msg, uint16_t type, const char *what)
{
	int r;

	if ((r = recv_wait(fd, msg)) <= 0)
		die("%s: %s", what, r == 0 ? "keyd closed the channel" :
		    strerror(-r));
	if (msg->hdr.type != type)
		die("%s: got %s", what, ipc_type_name(msg->hdr.type));
}

static void
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		die("fcntl: %s", strerror(errno));
}

static void
read_pubkey(struct spec *s)
{
	gnutls_datum_t d;
	gnutls_x509_crt_t crt;
	int r;

	if ((r = gnutls_load_file(s->cert, &d)) < 0)
		die("%s: %s", s->cert, gnutls_strerror(r));
	if (gnutls_x509_crt_init(&crt) < 0 || gnutls_pubkey_init(&s->pub) < 0)
		die("gnutls init");
	if ((r = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM)) < 0 ||
	    (r = gnutls_pubkey_import_x509(s->pub, crt, 0)) < 0)
		die("%s: %s", s->cert, gnutls_strerror(r));
	gnutls_x509_crt_deinit(crt);
	gnutls_free(d.data);
}

static pid_t
spawn_keyd(const char *path, int ctl, const char *user, const char *chroot_dir,
    const char *threads, char **extra, unsigned nextra)
{
	char *argv[16 + MAX_EXTRA];
	unsigned n = 0, i;
	pid_t pid;

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

	if ((pid = fork()) < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		/* keyd must not hold our stdout: the test reads it to EOF. */
		if (dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
			_exit(127);
		if (ctl == 3) {
			if (fcntl(3, F_SETFD, 0) < 0)
				_exit(127);
		} else if (dup2(ctl, 3) < 0) {
			_exit(127);
		}
		execv(path, argv);
		_exit(127);
	}
	return pid;
}

static void
master_hello(int ctl, struct ipc_msg *msg)
{
	int r;

	expect(ctl, msg, IPC_HELLO, "keyd hello");
	if ((r = ipc_hello_check(msg, IPC_ROLE_KEYD)) < 0)
		die("keyd hello: %s", strerror(-r));
	if ((r = ipc_hello_send(ctl, IPC_ROLE_MASTER)) < 0)
		die("hello: %s", strerror(-r));
}

static void
load_key(int ctl, struct spec *s, struct ipc_msg *msg)
{
	struct ipc_key_load kl;
	int fds[3], nfds = 0, r;
	unsigned i;

	memset(&kl, 0, sizeof(kl));
	kl.key_id = s->id;
	snprintf(kl.name, sizeof(kl.name), "key%u", s->id);
	snprintf(kl.key_path, sizeof(kl.key_path), "%s", s->key);
	snprintf(kl.cert_path, sizeof(kl.cert_path), "%s", s->cert);
	if ((fds[nfds++] = open(s->key, O_RDONLY | O_CLOEXEC)) < 0)
		die("%s: %s", s->key, strerror(errno));
	if ((fds[nfds++] = open(s->cert, O_RDONLY | O_CLOEXEC)) < 0)
		die("%s: %s", s->cert, strerror(errno));
	if (s->pass != NULL) {
		kl.flags |= IPC_KEY_F_HAS_PASS;
		if ((fds[nfds++] = open(s->pass, O_RDONLY | O_CLOEXEC)) < 0)
			die("%s: %s", s->pass, strerror(errno));
	}
	if (s->decrypt)
		kl.flags |= IPC_KEY_F_ALLOW_DECRYPT;
	if ((r = ipc_send(ctl, IPC_KEY_LOAD, s->id, &kl, sizeof(kl), fds,
	    (unsigned)nfds)) < 0)
		die("KEY_LOAD: %s", strerror(-r));
	for (i = 0; i < (unsigned)nfds; i++)
		close(fds[i]);
	expect(ctl, msg, IPC_KEY_LOAD_REPLY, "KEY_LOAD_REPLY");
	if (msg->hdr.id != s->id)
		die("KEY_LOAD_REPLY for id %u, expected %u", msg->hdr.id, s->id);
	if ((r = ipc_key_loaded_decode(msg->payload, msg->hdr.len, &s->res)) < 0)
		die("KEY_LOAD_REPLY: malformed");
	s->loaded = s->res.status == 0;
	/* A key id loaded again replaces the key that had it. */
	for (i = 0; s->loaded && &specs[i] != s; i++)
		if (specs[i].id == s->id)
			specs[i].loaded = 0;
}

/* Give keyd a new worker channel; returns our (the worker's) end. */
static int
add_channel(int ctl, uint32_t worker, struct ipc_msg *msg)
{
	struct ipc_channel ic;
	struct ipc_reply rep;
	int sv[2], r;

	if ((r = ipc_socketpair(sv)) < 0)
		die("socketpair: %s", strerror(-r));
	memset(&ic, 0, sizeof(ic));
	ic.worker = worker;
	ic.generation = 1;
	if ((r = ipc_send(ctl, IPC_CHANNEL_ADD, worker, &ic, sizeof(ic), &sv[1],
	    1)) < 0)
		die("CHANNEL_ADD: %s", strerror(-r));
	close(sv[1]);
	expect(ctl, msg, IPC_CHANNEL_ADD_REPLY, "CHANNEL_ADD_REPLY");
	if (ipc_reply_decode(msg->payload, msg->hdr.len, &rep) < 0 ||
	    rep.status != 0)
		die("CHANNEL_ADD refused");
	set_nonblock(sv[0]);
	return sv[0];
}

static void
worker_hello(int fd, struct ipc_msg *msg)
{
	int r;

	expect(fd, msg, IPC_HELLO, "keyd hello on a worker channel");
	if ((r = ipc_hello_check(msg, IPC_ROLE_KEYD)) < 0)
		die("worker channel hello: %s", strerror(-r));
	if ((r = ipc_hello_send(fd, IPC_ROLE_WORKER)) < 0)
		die("worker hello: %s", strerror(-r));
}

static void
get_stats(int ctl, struct ipc_msg *msg, struct ipc_keyd_stats *st)
{
	int r;

	if ((r = ipc_send(ctl, IPC_KEYD_STATS, 7, NULL, 0, NULL, 0)) < 0)
		die("KEYD_STATS: %s", strerror(-r));
	expect(ctl, msg, IPC_KEYD_STATS_REPLY, "KEYD_STATS_REPLY");
	if (ipc_keyd_stats_decode(msg->payload, msg->hdr.len, st) < 0)
		die("KEYD_STATS_REPLY: malformed");
}

static unsigned
hash_len_of(gnutls_digest_algorithm_t d)
{
	return gnutls_hash_get_len(d);
}

static const uint8_t digestinfo_prefix[3][19] = {
	{ 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65,
	  0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 },
	{ 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65,
	  0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30 },
	{ 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65,
	  0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40 },
};

static void
rnd(void *p, size_t n)
{
	if (gnutls_rnd(GNUTLS_RND_NONCE, p, n) < 0)
		die("gnutls_rnd");
}

/* 64 spaces, the server context, NUL, a random 32/48-byte "transcript hash". */
static size_t
make_cv(uint8_t *p, unsigned hash_len)
{
	static const char ctx[] = "TLS 1.3, server CertificateVerify";

	memset(p, 0x20, 64);
	memcpy(p + 64, ctx, sizeof(ctx));	/* with its NUL */
	rnd(p + 64 + sizeof(ctx), hash_len);
	return 64 + sizeof(ctx) + hash_len;
}

/* Two randoms and ServerECDHParams for x25519 or secp256r1. */
static size_t
make_ske(uint8_t *p, int p256)
{
	rnd(p, 64);
	p[64] = 3;
	p[65] = 0;
	if (p256) {
		p[66] = 23;
		p[67] = 65;
		p[68] = 0x04;
		rnd(p + 69, 64);
		return 69 + 64;
	}
	p[66] = 29;
	p[67] = 32;
	rnd(p + 68, 32);
	return 68 + 32;
}

/* The TLS 1.3 algorithm a key signs a CertificateVerify with, by turn. */
static uint32_t
cv_algo(const struct spec *s, unsigned turn)
{
	static const uint32_t pss[] = { GNUTLS_SIGN_RSA_PSS_RSAE_SHA256,
	    GNUTLS_SIGN_RSA_PSS_RSAE_SHA384, GNUTLS_SIGN_RSA_PSS_RSAE_SHA512 };

	switch (s->res.info.pk_algo) {
	case GNUTLS_PK_RSA:
		return pss[turn % 3];
	case GNUTLS_PK_ECDSA:
		return s->res.info.bits == 384 ?
		    GNUTLS_SIGN_ECDSA_SECP384R1_SHA384 :
		    GNUTLS_SIGN_ECDSA_SECP256R1_SHA256;
	default:
		return GNUTLS_SIGN_EDDSA_ED25519;
	}
}

static void
req_digest(struct req *q, gnutls_digest_algorithm_t dig)
{
	uint8_t h[64];

	q->msg_len = 100;
	rnd(q->msg, q->msg_len);
	if (gnutls_hash_fast(dig, q->msg, q->msg_len, h) < 0)
		die("gnutls_hash_fast");
	memcpy(q->data, h, hash_len_of(dig));
	q->data_len = hash_len_of(dig);
}

/* Build request number i for key s; returns 0 if the key has no such kind. */
static int
build_req(struct req *q, struct spec *s, unsigned i, unsigned n)
{
	static const gnutls_digest_algorithm_t digs[] = { GNUTLS_DIG_SHA256,
	    GNUTLS_DIG_SHA384, GNUTLS_DIG_SHA512 };
	static const uint32_t rsa_pkcs1[] = { GNUTLS_SIGN_RSA_SHA256,
	    GNUTLS_SIGN_RSA_SHA384, GNUTLS_SIGN_RSA_SHA512 };
	static const uint32_t rsa_pss[] = { GNUTLS_SIGN_RSA_PSS_RSAE_SHA256,
	    GNUTLS_SIGN_RSA_PSS_RSAE_SHA384, GNUTLS_SIGN_RSA_PSS_RSAE_SHA512 };
	static const uint32_t ecdsa[] = { GNUTLS_SIGN_ECDSA_SHA256,
	    GNUTLS_SIGN_ECDSA_SHA384, GNUTLS_SIGN_ECDSA_SHA512 };
	unsigned kind, t = i % 3;
	uint32_t pk = s->res.info.pk_algo;

	memset(q, 0, sizeof(*q));
	q->id = next_id++;
	q->spec = s;
	/* i < n: CertificateVerify; then a quarter SKE, a quarter digests. */
	kind = i < n ? 0 : i < n + n / 4 ? 1 : 2;
	if (kind == 0) {
		q->form = IPC_SIGN_CONTENT;
		q->sign_algo = q->verify_algo = cv_algo(s, i);
		q->msg_len = make_cv(q->msg, i % 2 ? 48 : 32);
		if (pk == GNUTLS_PK_RSA)
			q->verify_flags = GNUTLS_VERIFY_RSA_PSS_FIXED_SALT_LENGTH;
	} else if (kind == 1) {
		q->form = IPC_SIGN_CONTENT;
		q->msg_len = make_ske(q->msg, i % 2);
		q->sign_algo = s->res.info.sign_algos[i %
		    s->res.info.nsign];
		q->verify_algo = q->sign_algo;
	} else {
		q->form = IPC_SIGN_DIGEST;
		if (pk == GNUTLS_PK_EDDSA_ED25519)
			return 0;
		req_digest(q, digs[t]);
		if (pk == GNUTLS_PK_RSA && i % 2) {
			/* PKCS#1 v1.5: GnuTLS passes RSA_RAW + DigestInfo. */
			memmove(q->data + 19, q->data, q->data_len);
			memcpy(q->data, digestinfo_prefix[t], 19);
			q->data_len += 19;
			q->sign_algo = GNUTLS_SIGN_RSA_RAW;
			q->verify_algo = rsa_pkcs1[t];
		} else if (pk == GNUTLS_PK_RSA) {
			q->sign_algo = q->verify_algo = rsa_pss[t];
		} else {
			q->sign_algo = q->verify_algo = ecdsa[t];
		}
		return 1;
	}
	memcpy(q->data, q->msg, q->msg_len);
	q->data_len = q->msg_len;
	return 1;
}

static int
send_sign(int fd, uint32_t id, uint32_t key_id, uint32_t algo, uint32_t form,
    const uint8_t *data, size_t len)
{
	struct ipc_sign_req sr;
	uint8_t buf[IPC_MAX_PAYLOAD];
	ssize_t n;

	memset(&sr, 0, sizeof(sr));
	sr.key_id = key_id;
	sr.sign_algo = algo;
	sr.form = form;
	sr.data = data;
	sr.data_len = len;
	if ((n = ipc_sign_encode(buf, sizeof(buf), &sr)) < 0)
		die("ipc_sign_encode: %s", strerror((int)-n));
	return ipc_send(fd, IPC_SIGN, id, buf, (size_t)n, NULL, 0);
}

static int
verify(const struct req *q, const uint8_t *sig, size_t len)
{
	gnutls_datum_t m = { (unsigned char *)q->msg, (unsigned)q->msg_len };
	gnutls_datum_t s = { (unsigned char *)sig, (unsigned)len };

	return gnutls_pubkey_verify_data2(q->spec->pub, q->verify_algo,
	    q->verify_flags, &m, &s) >= 0;
}

static struct req *
find_req(unsigned nreq, uint32_t id)
{
	unsigned i;

	for (i = 0; i < nreq; i++)
		if (reqs[i].id == id && !reqs[i].done)
			return &reqs[i];
	return NULL;
}

/*
 * Send every request before reading any answer (unless the socket fills),
 * so they are all in flight at once; then collect the answers by id.
 */
static void
run_batch(int fd, unsigned nreq, struct ipc_msg *msg, unsigned *max_inflight,
    unsigned *busy, unsigned *errs)
{
	struct pollfd pfd;
	struct ipc_reply rep;
	struct ipc_error e;
	struct req *q;
	unsigned sent = 0, got = 0, inflight;
	int r;

	while (got < nreq) {
		while (sent < nreq) {
			q = &reqs[sent];
			r = send_sign(fd, q->id, q->spec->id, q->sign_algo,
			    q->form, q->data, q->data_len);
			if (r == -EAGAIN)
				break;
			if (r < 0)
				die("send: %s", strerror(-r));
			q->spec->sent++;
			sent++;
		}
		inflight = sent - got;
		if (inflight > *max_inflight)
			*max_inflight = inflight;

		r = ipc_recv(fd, ends_of(fd), msg);
		if (r == -EAGAIN) {
			if (remaining_ms() == 0)
				die("timed out with %u of %u answers", got, nreq);
			pfd.fd = fd;
			pfd.events = POLLIN | (sent < nreq ? POLLOUT : 0);
			poll(&pfd, 1, remaining_ms());
			continue;
		}
		if (r <= 0)
			die("batch: %s", r == 0 ? "keyd closed the channel" :
			    strerror(-r));
		if ((q = find_req(nreq, msg->hdr.id)) == NULL)
			die("answer for unknown id %u", msg->hdr.id);
		q->done = 1;
		got++;
		if (msg->hdr.type == IPC_SIGN_REPLY &&
		    ipc_reply_decode(msg->payload, msg->hdr.len, &rep) == 0 &&
		    rep.status == 0 && verify(q, rep.data, rep.data_len)) {
			q->spec->verified++;
			continue;
		}
		q->spec->failed++;
		if (msg->hdr.type == IPC_ERROR &&
		    ipc_error_decode(msg->payload, msg->hdr.len, &e) == 0) {
			if (e.code == -EBUSY)
				(*busy)++;
			else
				(*errs)++;
			if (e.code != -EBUSY)
				fprintf(stderr, "keyd_client: request %u (key %u "
				    "algo %u form %u len %zu): %s\n", q->id,
				    q->spec->id, q->sign_algo, q->form,
				    q->data_len, e.msg);
		} else {
			(*errs)++;
			fprintf(stderr, "keyd_client: request %u (key %u algo "
			    "%u form %u): bad signature\n", q->id, q->spec->id,
			    q->sign_algo, q->form);
		}
	}
}

/* One request, one answer: returns 0 for a reply, the error code, or 1. */
static int
roundtrip(int fd, uint16_t type, const void *payload, size_t len,
    struct ipc_msg *msg)
{
	struct ipc_error e;
	uint32_t id = next_id++;
	int r;

	if ((r = ipc_send(fd, type, id, payload, len, NULL, 0)) < 0)
		die("send: %s", strerror(-r));
	if ((r = recv_wait(fd, msg)) <= 0)
		die("roundtrip: %s", r == 0 ? "channel closed" : strerror(-r));
	if (msg->hdr.id != id)
		die("answer for id %u, expected %u", msg->hdr.id, id);
	if (msg->hdr.type != IPC_ERROR)
		return 0;
	if (ipc_error_decode(msg->payload, msg->hdr.len, &e) < 0)
		die("malformed IPC_ERROR");
	if (e.code == -EPERM || e.code == -EINVAL || e.code == -ENOENT)
		refusals_seen++;
	return e.code;
}

static int
sign_roundtrip(int fd, uint32_t key_id, uint32_t algo, uint32_t form,
    const uint8_t *data, size_t len, struct ipc_msg *msg)
{
	struct ipc_sign_req sr;
	uint8_t buf[IPC_MAX_PAYLOAD];
	ssize_t n;

	memset(&sr, 0, sizeof(sr));
	sr.key_id = key_id;
	sr.sign_algo = algo;
	sr.form = form;
	sr.data = data;
	sr.data_len = len;
	if ((n = ipc_sign_encode(buf, sizeof(buf), &sr)) < 0)
		die("ipc_sign_encode");
	return roundtrip(fd, IPC_SIGN, buf, (size_t)n, msg);
}

/*
 * A GnuTLS external key whose callbacks go to keyd, the way the worker's
 * do: GnuTLS itself decides what reaches sign_hash / sign_data.
 */
struct ext {
	int		fd;
	struct spec	*spec;
	struct ipc_msg	*msg;
};

static int
ext_sign(struct ext *x, uint32_t algo, uint32_t form,
    const gnutls_datum_t *in, gnutls_datum_t *sig)
{
	struct ipc_reply rep;

	if (sign_roundtrip(x->fd, x->spec->id, algo, form, in->data, in->size,
	    x->msg) != 0)
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
ext_sign_data(gnutls_privkey_t key, gnutls_sign_algorithm_t algo,
    void *userdata, unsigned flags, const gnutls_datum_t *data,
    gnutls_datum_t *sig)
{
	return ext_sign(userdata, algo, IPC_SIGN_CONTENT, data, sig);
}

static int
ext_sign_hash(gnutls_privkey_t key, gnutls_sign_algorithm_t algo,
    void *userdata, unsigned flags, const gnutls_datum_t *hash,
    gnutls_datum_t *sig)
{
	return ext_sign(userdata, algo, IPC_SIGN_DIGEST, hash, sig);
}

static int
ext_info(gnutls_privkey_t key, unsigned flags, void *userdata)
{
	struct ext *x = userdata;
	uint32_t i, algo;

	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO)
		return (int)x->spec->res.info.pk_algo;
	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO_BITS)
		return (int)x->spec->res.info.bits;
	if (flags & GNUTLS_PRIVKEY_INFO_HAVE_SIGN_ALGO) {
		algo = GNUTLS_FLAGS_TO_SIGN_ALGO(flags);
		for (i = 0; i < x->spec->res.info.nsign; i++)
			if (x->spec->res.info.sign_algos[i] == algo)
				return 1;
		return 0;
	}
	return GNUTLS_E_UNIMPLEMENTED_FEATURE;
}

/* Every algorithm of the key, over CertificateVerify and SKE content. */
static void
run_ext(int fd, struct spec *s, struct ipc_msg *msg)
{
	struct ext x = { fd, s, msg };
	gnutls_privkey_t pk;
	gnutls_datum_t m, sig;
	uint8_t content[CONTENT_MAX];
	unsigned i, j, flags;
	int r;

	if (gnutls_privkey_init(&pk) < 0 ||
	    gnutls_privkey_import_ext4(pk, &x, ext_sign_data, ext_sign_hash,
	    NULL, NULL, ext_info, 0) < 0)
		die("gnutls_privkey_import_ext4");
	for (i = 0; i < s->res.info.nsign; i++) {
		for (j = 0; j < 2; j++) {
			uint32_t algo = s->res.info.sign_algos[i];

			/* TLS 1.3 takes no PKCS#1 v1.5 nor curve-less ECDSA. */
			if (j == 0 && cv_algo(s, 0) != algo &&
			    cv_algo(s, 1) != algo && cv_algo(s, 2) != algo)
				continue;
			m.data = content;
			m.size = (unsigned)(j == 0 ? make_cv(content, 32) :
			    make_ske(content, 0));
			flags = gnutls_sign_get_pk_algorithm(algo) ==
			    GNUTLS_PK_RSA_PSS ?
			    GNUTLS_PRIVKEY_FLAG_RSA_PSS_FIXED_SALT_LENGTH : 0;
			s->ext_total++;
			r = gnutls_privkey_sign_data2(pk, algo, flags, &m, &sig);
			if (r < 0) {
				fprintf(stderr, "keyd_client: ext4 key %u %s: %s\n",
				    s->id, gnutls_sign_get_name(algo),
				    gnutls_strerror(r));
				continue;
			}
			if (gnutls_pubkey_verify_data2(s->pub, algo, 0, &m,
			    &sig) >= 0)
				s->ext_verified++;
			gnutls_free(sig.data);
		}
	}
	gnutls_privkey_deinit(pk);
}

/* Encrypt with the certificate, decrypt through keyd, compare. */
static int
decrypt_roundtrip(int fd, struct spec *s, struct ipc_msg *msg)
{
	struct ipc_decrypt_req dr;
	struct ipc_reply rep;
	uint8_t secret[48], buf[IPC_MAX_PAYLOAD];
	gnutls_datum_t pt = { secret, sizeof(secret) }, ct;
	ssize_t n;
	int r;

	rnd(secret, sizeof(secret));
	if (s->res.info.pk_algo != GNUTLS_PK_RSA) {
		/* Cannot encrypt to this key; keyd must refuse before trying. */
		ct.size = 256;
		if ((ct.data = gnutls_malloc(ct.size)) == NULL)
			die("gnutls_malloc");
		rnd(ct.data, ct.size);
	} else if (gnutls_pubkey_encrypt_data(s->pub, 0, &pt, &ct) < 0) {
		die("gnutls_pubkey_encrypt_data");
	}
	memset(&dr, 0, sizeof(dr));
	dr.key_id = s->id;
	dr.data = ct.data;
	dr.data_len = ct.size;
	if ((n = ipc_decrypt_encode(buf, sizeof(buf), &dr)) < 0)
		die("ipc_decrypt_encode");
	gnutls_free(ct.data);
	if ((r = roundtrip(fd, IPC_DECRYPT, buf, (size_t)n, msg)) != 0)
		return r;
	if (msg->hdr.type != IPC_DECRYPT_REPLY ||
	    ipc_reply_decode(msg->payload, msg->hdr.len, &rep) < 0 ||
	    rep.data_len != sizeof(secret) ||
	    memcmp(rep.data, secret, sizeof(secret)) != 0)
		return 1;
	return 0;
}

/* Send raw bytes as one datagram, then wait for keyd to close the channel. */
static int
channel_closed_after(int fd, const void *buf, size_t len, struct ipc_msg *msg)
{
	int r;

	if (send(fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len)
		return 0;
	for (;;) {
		r = recv_wait(fd, msg);
		if (r == 0 || r == -ECONNRESET)
			return 1;
		if (r < 0)
			return 0;	/* timed out: keyd kept it open */
	}
}

static struct spec *
spec_by_pk(uint32_t pk)
{
	unsigned i;

	for (i = 0; i < nspecs; i++)
		if (specs[i].loaded && specs[i].res.info.pk_algo == pk)
			return &specs[i];
	return NULL;
}

static void
json_str(const char *s)
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

static void
json_keys(void)
{
	unsigned i, j;
	struct spec *s;

	printf("\"keys\": [");
	for (i = 0; i < nspecs; i++) {
		s = &specs[i];
		printf("%s{\"key_id\": %u, \"status\": %d, \"msg\": ",
		    i ? ", " : "", s->id, s->res.status);
		json_str(s->res.msg);
		printf(", \"pk_algo\": %u, \"bits\": %u, \"sign_algos\": [",
		    s->res.info.pk_algo, s->res.info.bits);
		for (j = 0; j < s->res.info.nsign && j < IPC_MAX_SIGN_ALGOS; j++)
			printf("%s\"%s\"", j ? ", " : "",
			    gnutls_sign_get_name(s->res.info.sign_algos[j]) ?
			    gnutls_sign_get_name(s->res.info.sign_algos[j]) : "?");
		printf("], \"sent\": %u, \"verified\": %u, \"failed\": %u, "
		    "\"ext4_total\": %u, \"ext4_verified\": %u}",
		    s->batch_sent, s->batch_verified, s->batch_failed,
		    s->ext_total, s->ext_verified);
	}
	printf("]");
}

static void
json_stats(const struct ipc_keyd_stats *st)
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

/* The policy checks a compromised worker would hit; codes go to JSON. */
static void
run_refusals(int fd, struct ipc_msg *msg)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: example.org\r\n\r\n";
	struct spec *ec = spec_by_pk(GNUTLS_PK_ECDSA);
	struct spec *rsa = spec_by_pk(GNUTLS_PK_RSA);
	struct spec *ed = spec_by_pk(GNUTLS_PK_EDDSA_ED25519);
	struct spec *any = ec != NULL ? ec : rsa != NULL ? rsa : ed;
	uint8_t buf[CONTENT_MAX], payload[64];
	size_t n;
	int r;

	if (any == NULL)
		return;
	printf("\"refusals\": {");
	r = sign_roundtrip(fd, any->id, cv_algo(any, 0), IPC_SIGN_CONTENT,
	    (const uint8_t *)http, sizeof(http) - 1, msg);
	printf("\"not_tls\": %d", r);
	/* A CertificateVerify for the client side is not ours to sign. */
	n = make_cv(buf, 32);
	memcpy(buf + 64 + 9, "client", 6);
	r = sign_roundtrip(fd, any->id, cv_algo(any, 0), IPC_SIGN_CONTENT, buf,
	    n, msg);
	printf(", \"client_cv\": %d", r);
	/* Valid CertificateVerify with a trailing byte. */
	n = make_cv(buf, 32);
	buf[n++] = 0;
	r = sign_roundtrip(fd, any->id, cv_algo(any, 0), IPC_SIGN_CONTENT, buf,
	    n, msg);
	printf(", \"trailing_byte\": %d", r);
	r = sign_roundtrip(fd, 63, cv_algo(any, 0), IPC_SIGN_CONTENT, buf,
	    n - 1, msg);
	printf(", \"unknown_key\": %d", r);
	if (ec != NULL) {
		rnd(buf, 20);
		r = sign_roundtrip(fd, ec->id, GNUTLS_SIGN_ECDSA_SHA256,
		    IPC_SIGN_DIGEST, buf, 20, msg);
		printf(", \"ecdsa_sha1_sized_digest\": %d", r);
		r = sign_roundtrip(fd, ec->id, GNUTLS_SIGN_EDDSA_ED25519,
		    IPC_SIGN_CONTENT, buf, make_cv(buf, 32), msg);
		printf(", \"wrong_algo\": %d", r);
		r = decrypt_roundtrip(fd, ec, msg);
		printf(", \"decrypt_ecdsa\": %d", r);
	}
	if (rsa != NULL) {
		rnd(buf, 32);
		r = sign_roundtrip(fd, rsa->id, GNUTLS_SIGN_RSA_RAW,
		    IPC_SIGN_DIGEST, buf, 32 + 19, msg);
		printf(", \"rsa_raw_not_digestinfo\": %d", r);
		r = sign_roundtrip(fd, rsa->id, GNUTLS_SIGN_RSA_SHA256,
		    IPC_SIGN_CONTENT, buf, make_cv(buf, 32), msg);
		printf(", \"pkcs1_in_tls13\": %d", r);
		r = decrypt_roundtrip(fd, rsa, msg);
		printf(", \"decrypt_rsa\": %d", r);
	}
	if (ed != NULL) {
		rnd(buf, 32);
		r = sign_roundtrip(fd, ed->id, GNUTLS_SIGN_EDDSA_ED25519,
		    IPC_SIGN_DIGEST, buf, 32, msg);
		printf(", \"eddsa_digest\": %d", r);
	}
	/* A SIGN whose inner length disagrees with the payload. */
	memset(payload, 0, sizeof(payload));
	payload[16] = 200;
	r = roundtrip(fd, IPC_SIGN, payload, sizeof(payload), msg);
	printf(", \"malformed_payload\": %d}", r);
}

static void
usage(void)
{
	fprintf(stderr, "usage: keyd_client [-m sign|load|ratelimit] "
	    "[-k ID,KEY,CERT[,pass=FILE][,decrypt]]... [-n N] [-u USER]\n"
	    "       [-C CHROOT] [-t THREADS] [-x KEYD-ARG]... [-T SECONDS] [-w] "
	    "MOAT-KEYD\n");
	exit(2);
}

static void
parse_spec(char *arg)
{
	struct spec *s;
	char *tok, *save = NULL;
	unsigned field = 0;

	if (nspecs >= MAX_SPECS)
		die("too many keys");
	s = &specs[nspecs++];
	for (tok = strtok_r(arg, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save), field++) {
		if (field == 0)
			s->id = (uint32_t)strtoul(tok, NULL, 10);
		else if (field == 1)
			s->key = tok;
		else if (field == 2)
			s->cert = tok;
		else if (strncmp(tok, "pass=", 5) == 0)
			s->pass = tok + 5;
		else if (strcmp(tok, "decrypt") == 0)
			s->decrypt = 1;
		else
			die("bad key option %s", tok);
	}
	if (s->key == NULL || s->cert == NULL)
		usage();
}

/* Close the control channel and wait (bounded) for keyd to exit. */
static void
stop_keyd(int ctl)
{
	int status = 0, i;
	pid_t r = 0;

	close(ctl);
	for (i = 0; i < 400; i++) {	/* 20 s */
		if ((r = waitpid(keyd_pid, &status, WNOHANG)) != 0)
			break;
		usleep(50000);
	}
	if (r == 0) {
		kill(keyd_pid, SIGKILL);
		waitpid(keyd_pid, &status, 0);
		printf("{\"keyd_exit\": null, \"keyd_signal\": null, "
		    "\"killed\": true}\n");
	} else {
		printf("{\"keyd_exit\": %d, \"keyd_signal\": %d, "
		    "\"killed\": false}\n",
		    WIFEXITED(status) ? WEXITSTATUS(status) : -1,
		    WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	}
	fflush(stdout);
	keyd_pid = -1;
}

int
main(int argc, char *argv[])
{
	const char *mode = "sign", *user = "moat-keyd";
	const char *chroot_dir = "/var/lib/moat/empty", *threads = NULL;
	char *extra[MAX_EXTRA], waitbuf[256];
	unsigned nextra = 0, n = 100, nreq = 0, i, j, per, max_inflight = 0;
	unsigned busy = 0, errs = 0, timeout_s = 120;
	int c, ctl, sv[2], r, wait_stdin = 0, a, b, d, oversize_closed,
	    bad_closed, master_req_closed, other_ok;
	static struct ipc_msg msg;
	struct ipc_keyd_stats st;
	struct ipc_key_info list[IPC_MAX_KEYS];
	unsigned nlist = 0;
	uint8_t junk[IPC_MAX_MSG + 512];

	while ((c = getopt(argc, argv, "m:k:n:u:C:t:x:T:w")) != -1) {
		switch (c) {
		case 'm': mode = optarg; break;
		case 'k': parse_spec(optarg); break;
		case 'n': n = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'u': user = optarg; break;
		case 'C': chroot_dir = optarg; break;
		case 't': threads = optarg; break;
		case 'x':
			if (nextra >= MAX_EXTRA)
				usage();
			extra[nextra++] = optarg;
			break;
		case 'T': timeout_s = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'w': wait_stdin = 1; break;
		default: usage();
		}
	}
	if (optind != argc - 1 || n == 0 || n > 4000)
		usage();
	signal(SIGPIPE, SIG_IGN);
	if (gnutls_global_init() < 0)
		die("gnutls_global_init");
	deadline_ms = now_ms() + (uint64_t)timeout_s * 1000u;
	for (i = 0; i < nspecs; i++)
		read_pubkey(&specs[i]);

	if ((r = ipc_socketpair(sv)) < 0)
		die("socketpair: %s", strerror(-r));
	keyd_pid = spawn_keyd(argv[optind], sv[1], user, chroot_dir, threads,
	    extra, nextra);
	close(sv[1]);
	ctl = ctl_fd = sv[0];
	master_hello(ctl, &msg);
	for (i = 0; i < nspecs; i++)
		load_key(ctl, &specs[i], &msg);

	printf("{\"mode\": ");
	json_str(mode);
	printf(", \"keyd_pid\": %d, ", (int)keyd_pid);

	if (strcmp(mode, "load") == 0) {
		json_keys();
		goto stats;
	}

	a = add_channel(ctl, 0, &msg);
	worker_hello(a, &msg);
	if ((r = roundtrip(a, IPC_KEY_LIST, NULL, 0, &msg)) != 0 ||
	    msg.hdr.type != IPC_KEY_LIST_REPLY ||
	    ipc_key_list_decode(msg.payload, msg.hdr.len, list, IPC_MAX_KEYS,
	    &nlist) < 0)
		die("KEY_LIST failed");
	printf("\"key_list\": %u, ", nlist);

	if ((reqs = calloc(MAX_REQS, sizeof(*reqs))) == NULL)
		die("calloc");
	per = strcmp(mode, "ratelimit") == 0 ? n : n + n / 4 + n / 4;
	for (i = 0; i < nspecs; i++) {
		if (!specs[i].loaded)
			continue;
		for (j = 0; j < per && nreq < MAX_REQS; j++)
			nreq += (unsigned)build_req(&reqs[nreq], &specs[i], j, n);
		if (strcmp(mode, "ratelimit") == 0)
			break;	/* one key is enough to meet the limit */
	}
	run_batch(a, nreq, &msg, &max_inflight, &busy, &errs);
	printf("\"requests\": %u, \"max_in_flight\": %u, \"busy\": %u, "
	    "\"errors\": %u, ", nreq, max_inflight, busy, errs);
	for (i = 0; i < nspecs; i++) {
		specs[i].batch_sent = specs[i].sent;
		specs[i].batch_verified = specs[i].verified;
		specs[i].batch_failed = specs[i].failed;
	}
	if (strcmp(mode, "ratelimit") == 0) {
		json_keys();
		goto stats;
	}

	for (i = 0; i < nspecs; i++)
		if (specs[i].loaded)
			run_ext(a, &specs[i], &msg);
	run_refusals(a, &msg);
	printf(", \"refusals_seen\": %u, ", refusals_seen);

	/* A datagram with a bad header closes that channel only. */
	b = add_channel(ctl, 1, &msg);
	worker_hello(b, &msg);
	memset(junk, 0xa5, 64);
	bad_closed = channel_closed_after(b, junk, 64, &msg);
	d = add_channel(ctl, 2, &msg);
	worker_hello(d, &msg);
	memset(junk, 0, sizeof(junk));
	oversize_closed = channel_closed_after(d, junk, sizeof(junk), &msg);
	close(b);
	close(d);

	/*
	 * A message only the master may send, from a worker's channel: the
	 * permit check closes that channel before the payload is looked at.
	 */
	d = add_channel(ctl, 4, &msg);
	worker_hello(d, &msg);
	memset(junk, 0, 64);
	{
		size_t hn = sizeof(struct ipc_hdr);
		struct ipc_hdr h;

		memset(&h, 0, sizeof(h));
		h.magic = IPC_MAGIC;
		h.version = IPC_VERSION;
		h.type = IPC_KEY_LOAD;
		h.id = next_id++;
		h.len = 64;
		memcpy(junk, &h, hn);
		master_req_closed = channel_closed_after(d, junk, hn + 64, &msg);
	}
	close(d);

	/* ... and every other channel is still served. */
	other_ok = 0;
	b = add_channel(ctl, 3, &msg);
	worker_hello(b, &msg);
	for (i = 0; i < nspecs; i++) {
		struct req q;

		if (!specs[i].loaded)
			continue;
		build_req(&q, &specs[i], 0, 1);
		reqs[0] = q;
		specs[i].sent = specs[i].verified = specs[i].failed = 0;
		run_batch(b, 1, &msg, &max_inflight, &busy, &errs);
		reqs[0] = q;
		reqs[0].id = next_id++;
		run_batch(a, 1, &msg, &max_inflight, &busy, &errs);
		other_ok += specs[i].verified == 2;
	}
	printf("\"bad_header_closed\": %s, \"oversize_closed\": %s, "
	    "\"master_request_closed\": %s, \"other_channels_ok\": %u, ",
	    bad_closed ? "true" : "false", oversize_closed ? "true" : "false",
	    master_req_closed ? "true" : "false", other_ok);
	json_keys();
	close(b);

stats:
	get_stats(ctl, &msg, &st);
	printf(", ");
	json_stats(&st);
	printf("}\n");
	fflush(stdout);

	if (wait_stdin)
		while (read(STDIN_FILENO, waitbuf, sizeof(waitbuf)) > 0)
			;
	stop_keyd(ctl);
	free(reqs);
	for (i = 0; i < nspecs; i++)
		gnutls_pubkey_deinit(specs[i].pub);
	gnutls_global_deinit();
	return 0;
}
