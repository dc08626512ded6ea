/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * roguelib.c -- take over a running worker and play it on its channels
 * (roguelib.h says how and why).
 */
#include "config.h"

#include <sys/syscall.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "ipc.h"
#include "keydlib.h"
#include "roguelib.h"

#define ROGUE_BUSY_RETRIES	200
#define ROGUE_BUSY_PAUSE_US	20000

static const struct ipc_ends rogue_keyd_ends = {
	IPC_ROLE_WORKER, IPC_ROLE_KEYD };

static double	rogue_interval_ms;	/* 0: no pacing */
static double	rogue_last_ms;
static unsigned	rogue_strays;		/* answers to nobody we asked */

double
rogue_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int
rogue_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int
rogue_pidfd_getfd(int pidfd, int fd)
{
	return (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
}

static int
rogue_pidfd_signal(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* The worker's state letter in /proc/PID/stat, or 0. */
static char
rogue_state(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL || p[1] != ' ')
		return 0;
	return p[2];
}

/*
 * SIGSTOP pid and wait (bounded) until it is stopped, or SIGCONT it.  The
 * linger attack holds keyd still for the moment it takes to hand keyd the
 * socket and close our copy, so that keyd's copy is surely the last one.
 */
void
rogue_hold(pid_t pid, int stop)
{
	int i;

	if (kill(pid, stop ? SIGSTOP : SIGCONT) < 0)
		keydlib_die("%s %ld: %s", stop ? "SIGSTOP" : "SIGCONT",
		    (long)pid, strerror(errno));
	for (i = 0; stop && i < 500 && rogue_state(pid) != 'T' &&
	    rogue_state(pid) != 't'; i++)
		usleep(1000);
}

/* --worker, --master-fd and --keyd-fd from /proc/PID/cmdline. */
static void
rogue_cmdline(struct rogue_worker *w)
{
	char path[64], buf[4096], *p, *end, *prev = NULL;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)w->pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		keydlib_die("%s: %s", path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		keydlib_die("%s: empty", path);
	buf[n] = '\0';
	w->index = w->their_master_fd = w->their_keyd_fd = -2;
	for (p = buf, end = buf + n; p < end; p += strlen(p) + 1) {
		if (prev != NULL && strcmp(prev, "--worker") == 0)
			w->index = atoi(p);
		else if (prev != NULL && strcmp(prev, "--master-fd") == 0)
			w->their_master_fd = atoi(p);
		else if (prev != NULL && strcmp(prev, "--keyd-fd") == 0)
			w->their_keyd_fd = atoi(p);
		prev = p;
	}
	if (w->index < 0 || w->their_master_fd < 0)
		keydlib_die("pid %ld is not a moatd worker (no --worker or "
		    "--master-fd on its command line)", (long)w->pid);
	if (w->their_keyd_fd < 0)
		keydlib_die("worker pid %ld was started without a keyd channel "
		    "(--keyd-fd %d); it took one later, whose number is not "
		    "on its command line", (long)w->pid, w->their_keyd_fd);
}

/*
 * Stop the worker (so nobody else reads its channels), then copy its
 * channel descriptors.
 */
void
rogue_take(pid_t pid, struct rogue_worker *w)
{
	int i;

	memset(w, 0, sizeof(*w));
	w->pid = pid;
	rogue_cmdline(w);
	if ((w->pidfd = rogue_pidfd_open(pid)) < 0)
		keydlib_die("pidfd_open(%ld): %s", (long)pid, strerror(errno));
	if (rogue_pidfd_signal(w->pidfd, SIGSTOP) < 0)
		keydlib_die("SIGSTOP %ld: %s", (long)pid, strerror(errno));
	for (i = 0; i < 500 && rogue_state(pid) != 'T' &&
	    rogue_state(pid) != 't'; i++)
		usleep(10000);
	if (rogue_state(pid) != 'T' && rogue_state(pid) != 't')
		keydlib_die("worker %ld did not stop (state %c)", (long)pid,
		    rogue_state(pid));
	if ((w->master_fd = rogue_pidfd_getfd(w->pidfd, w->their_master_fd)) < 0)
		keydlib_die("pidfd_getfd(%ld, master fd %d): %s", (long)pid,
		    w->their_master_fd, strerror(errno));
	if ((w->keyd_fd = rogue_pidfd_getfd(w->pidfd, w->their_keyd_fd)) < 0)
		keydlib_die("pidfd_getfd(%ld, keyd fd %d): %s", (long)pid,
		    w->their_keyd_fd, strerror(errno));
	keydlib_set_nonblock(w->master_fd);
	keydlib_set_nonblock(w->keyd_fd);
}

/* how: "kill" (SIGKILL), "cont" (resume it) or "stop" (leave it stopped). */
void
rogue_end(struct rogue_worker *w, const char *how)
{
	if (w->pidfd <= 0)
		return;
	close(w->master_fd);
	close(w->keyd_fd);
	if (strcmp(how, "kill") == 0)
		(void)rogue_pidfd_signal(w->pidfd, SIGKILL);
	else if (strcmp(how, "cont") == 0)
		(void)rogue_pidfd_signal(w->pidfd, SIGCONT);
	close(w->pidfd);
	w->pidfd = -1;
}

void
rogue_pace_set(double per_second)
{
	rogue_interval_ms = per_second > 0 ? 1e3 / per_second : 0;
}

/* Wait until the next request may go, at the paced rate. */
void
rogue_pace(void)
{
	double now = rogue_now_ms(), next = rogue_last_ms + rogue_interval_ms;

	if (rogue_interval_ms > 0 && now < next)
		usleep((useconds_t)((next - now) * 1e3));
	rogue_last_ms = rogue_now_ms();
}

int
rogue_recv_keyd(struct rogue_worker *w, struct ipc_msg *msg,
    int64_t deadline_ms)
{
	return ipc_recv_wait(w->keyd_fd, &rogue_keyd_ends, msg, deadline_ms);
}

/* The status and bytes of a keyd answer (a reply or an IPC_ERROR). */
void
rogue_answer_of(const struct ipc_msg *msg, struct rogue_answer *a)
{
	struct ipc_error e;
	struct ipc_reply rep;

	a->type = msg->hdr.type;
	a->len = 0;
	a->err[0] = '\0';
	switch (msg->hdr.type) {
	case IPC_ERROR:
		if (ipc_error_decode(msg->payload, msg->hdr.len, &e) < 0) {
			a->status = -EBADMSG;
			snprintf(a->err, sizeof(a->err), "malformed IPC_ERROR");
		} else {
			a->status = e.code;
			snprintf(a->err, sizeof(a->err), "%s", e.msg);
		}
		break;
	case IPC_KEY_LIST_REPLY:
		a->status = 0;
		break;
	default:
		if (ipc_reply_decode(msg->payload, msg->hdr.len, &rep) < 0) {
			a->status = -EBADMSG;
			snprintf(a->err, sizeof(a->err), "malformed %s",
			    ipc_type_name(msg->hdr.type));
			break;
		}
		a->status = rep.status;
		if (rep.data_len <= sizeof(a->data)) {
			memcpy(a->data, rep.data, rep.data_len);
			a->len = rep.data_len;
		}
		break;
	}
}

/*
 * One request on the keyd channel and its answer (messages for other ids
 * are counted and dropped).  -EBUSY is retried after a pause.  Returns 0
 * with *a filled, or why no answer came (-ETIMEDOUT, -ENOTCONN for a
 * closed channel, a send error).
 */
int
rogue_call(struct rogue_worker *w, uint16_t type, const void *payload,
    size_t len, struct rogue_answer *a)
{
	static struct ipc_msg msg;
	uint32_t id;
	double t0;
	int r;

	memset(a, 0, sizeof(*a));
	for (;;) {
		rogue_pace();
		id = keydlib_id_next();
		t0 = rogue_now_ms();
		if ((r = ipc_send(w->keyd_fd, type, id, payload, len, NULL,
		    0)) < 0)
			return r;
		for (;;) {
			r = rogue_recv_keyd(w, &msg, keydlib_remaining_ms() +
			    ipc_now_ms());
			if (r == 0 || r == -ECONNRESET)
				return -ENOTCONN;
			if (r < 0)
				return r;
			if (msg.hdr.id == id && msg.hdr.type != IPC_HELLO)
				break;
			rogue_strays++;
		}
		a->ms = rogue_now_ms() - t0;
		rogue_answer_of(&msg, a);
		if (a->status != -EBUSY || a->busy_retries >= ROGUE_BUSY_RETRIES)
			return 0;
		a->busy_retries++;
		usleep(ROGUE_BUSY_PAUSE_US);
	}
}

int
rogue_sign(struct rogue_worker *w, uint32_t key_id, uint32_t algo,
    uint32_t form, const uint8_t *data, size_t len, struct rogue_answer *a)
{
	static uint8_t buf[IPC_MAX_PAYLOAD];

	return rogue_call(w, IPC_SIGN, buf, keydlib_sign_encode(buf, key_id,
	    algo, form, data, len), a);
}

/* keyd's list of keys, as the worker would get it. */
unsigned
rogue_key_list(struct rogue_worker *w, struct ipc_key_info *keys,
    unsigned max)
{
	static struct ipc_msg msg;
	uint32_t id;
	unsigned n = 0, tries;
	int r;

	for (tries = 0; tries < ROGUE_BUSY_RETRIES; tries++) {
		rogue_pace();
		id = keydlib_id_next();
		if ((r = ipc_send(w->keyd_fd, IPC_KEY_LIST, id, NULL, 0, NULL,
		    0)) < 0)
			keydlib_die("KEY_LIST: %s", strerror(-r));
		do {
			r = rogue_recv_keyd(w, &msg, keydlib_remaining_ms() +
			    ipc_now_ms());
			if (r <= 0)
				keydlib_die("KEY_LIST: %s", r == 0 ?
				    "keyd closed the channel" : strerror(-r));
		} while (msg.hdr.id != id || msg.hdr.type == IPC_HELLO);
		if (msg.hdr.type == IPC_KEY_LIST_REPLY)
			break;
		usleep(ROGUE_BUSY_PAUSE_US);	/* rate limited, say */
	}
	if (msg.hdr.type != IPC_KEY_LIST_REPLY ||
	    ipc_key_list_decode(msg.payload, msg.hdr.len, keys, max, &n) < 0)
		keydlib_die("KEY_LIST: no usable answer (%s)",
		    ipc_type_name(msg.hdr.type));
	return n;
}

const struct ipc_key_info *
rogue_key_find(const struct ipc_key_info *keys, unsigned n, uint32_t key_id)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (keys[i].key_id == key_id)
			return &keys[i];
	return NULL;
}

unsigned
rogue_stray(void)
{
	return rogue_strays;
}

void
rogue_json_hex(const uint8_t *p, size_t n)
{
	size_t i;

	putchar('"');
	for (i = 0; i < n; i++)
		printf("%02x", p[i]);
	putchar('"');
}

int
rogue_hex_decode(const char *s, uint8_t *out, size_t cap, size_t *n)
{
	size_t len = strlen(s), i;
	unsigned v;

	if (len % 2 != 0 || len / 2 > cap)
		return -EINVAL;
	for (i = 0; i < len / 2; i++) {
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = (uint8_t)v;
	}
	*n = len / 2;
	return 0;
}


void
rogue_hist_add(struct rogue_hist *h, long key)
{
	unsigned i;

	for (i = 0; i < h->n; i++)
		if (h->key[i] == key) {
			h->count[i]++;
			return;
		}
	if (h->n < ROGUE_HIST_MAX) {
		h->key[h->n] = key;
		h->count[h->n++] = 1;
	}
}

void
rogue_hist_json(const struct rogue_hist *h)
{
	unsigned i;

	putchar('{');
	for (i = 0; i < h->n; i++)
		printf("%s\"%ld\": %u", i ? ", " : "", h->key[i], h->count[i]);
	putchar('}');
}

/* Content for the sign attacks (rogue_worker.c says which is what). */

/* 64 "random" bytes, then ServerDHParams with a made-up 2048-bit p. */
size_t
rogue_make_ske_dh(uint8_t *p)
{
	size_t o = 64;

	keydlib_rnd(p, 64);
	p[o++] = 0x01;			/* p: 256 bytes */
	p[o++] = 0x00;
	keydlib_rnd(p + o, 256);
	p[o] |= 0x80;			/* 2048 bits exactly */
	p[o + 255] |= 0x01;		/* odd */
	o += 256;
	p[o++] = 0x00;			/* g = 2 */
	p[o++] = 0x01;
	p[o++] = 0x02;
	p[o++] = 0x01;			/* Ys: 256 bytes, below p */
	p[o++] = 0x00;
	keydlib_rnd(p + o, 256);
	p[o] = (uint8_t)((p[66] >> 1) | 0x01);
	return o + 256;
}

/* 64 "random" bytes, then ServerECDHParams: secp256r1, (X, Y) random. */
size_t
rogue_make_ske_offcurve(uint8_t *p)
{
	keydlib_rnd(p, 64);
	p[64] = 3;			/* named_curve */
	p[65] = 0;
	p[66] = 23;			/* secp256r1 */
	p[67] = 65;
	p[68] = 0x04;			/* uncompressed */
	keydlib_rnd(p + 69, 64);	/* on the curve with p ~ 2^-256 */
	return 69 + 64;
}

/* A TBSCertificate-looking DER blob for "bank.example". */
size_t
rogue_make_x509(uint8_t *p)
{
	static const uint8_t head[] = {
		0x30, 0x81, 0xd2, 0xa0, 0x03, 0x02, 0x01, 0x02, 0x02, 0x08 };
	static const uint8_t alg[] = {
		0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04,
		0x03, 0x02, 0x30, 0x17, 0x31, 0x15, 0x30, 0x13, 0x06, 0x03,
		0x55, 0x04, 0x03, 0x0c, 0x0c };
	static const char cn[] = "bank.example";
	size_t o = 0;

	memcpy(p, head, sizeof(head));
	o += sizeof(head);
	keydlib_rnd(p + o, 8);		/* serial */
	o += 8;
	memcpy(p + o, alg, sizeof(alg));
	o += sizeof(alg);
	memcpy(p + o, cn, sizeof(cn) - 1);
	o += sizeof(cn) - 1;
	keydlib_rnd(p + o, 160);	/* validity, subject, key ... */
	return o + 160;
}

/* The algorithm a key signs a TLS 1.3 CertificateVerify with. */
uint32_t
rogue_tls13_algo(const struct ipc_key_info *ki, unsigned *hash_len)
{
	static const uint32_t want[] = {
		GNUTLS_SIGN_RSA_PSS_RSAE_SHA256, GNUTLS_SIGN_RSA_PSS_SHA256,
		GNUTLS_SIGN_ECDSA_SECP256R1_SHA256,
		GNUTLS_SIGN_ECDSA_SECP384R1_SHA384, GNUTLS_SIGN_EDDSA_ED25519 };
	unsigned i, j;

	for (j = 0; j < sizeof(want) / sizeof(want[0]); j++)
		for (i = 0; i < ki->nsign; i++)
			if (ki->sign_algos[i] == want[j]) {
				*hash_len = want[j] ==
				    GNUTLS_SIGN_ECDSA_SECP384R1_SHA384 ? 48 : 32;
				return want[j];
			}
	*hash_len = 32;
	return ki->nsign > 0 ? ki->sign_algos[0] : 0;
}
