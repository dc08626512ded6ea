/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rogue_worker.c -- a compromised worker (issue 8): takes over a real,
 * running moatd worker (roguelib.c: SIGSTOP, then pidfd_getfd(2) of its
 * keyd and master channels) and tries one attack on them.
 *
 * usage: rogue_worker [-T SECONDS] [-r PER-SECOND] [-e kill|cont|stop]
 *            [-K KEYD-PID] -p PID [-p PID] MODE [-k SLOT]... [-n N] [-d SECONDS]
 *            [-m MESSAGE] [-f FILE]
 *
 *   sign     for each slot -k: arbitrary digests (bare for ECDSA and
 *            RSA-PSS, a DER DigestInfo with GNUTLS_SIGN_RSA_RAW for RSA
 *            PKCS#1, a bare 32 bytes with RSA_RAW), the digest and the text
 *            of a JWT, non-TLS content (an HTTP request, an X.509-looking
 *            blob), DH-shaped ServerKeyExchange junk (a made-up 2048-bit
 *            p), ECDHE params with an off-curve P-256 point, each with
 *            every algorithm the key lists; and, as the control, a TLS 1.3
 *            server CertificateVerify content.  Each result says what a
 *            verifier must check the signature against (scheme, hash,
 *            message), so the test verifies it with the certificate.
 *   linger   a TCP socket to a listener that never accepts, its send
 *            buffer full, SO_LINGER {1, 3}, attached to a KEY_LIST on the
 *            keyd channel of the first -p, while sign requests on the
 *            second -p's channel (slot -k) are timed for -d seconds.
 *            keyd (-K) is held still while the socket is handed over, so
 *            that keyd's copy is the last one (its close() the one that
 *            waits).
 *   flood    -n each of KEY_LIST, a malformed SIGN and a valid SIGN (slot
 *            -k), interleaved, as fast as the socket takes them; answers
 *            counted by type and status.  No pacing, no retry.
 *   master   one message -m (WORKER_STATS, KEY_LOAD, ...) on the master
 *            channel; reports whether the master closed it.
 *   decrypt  IPC_DECRYPT (slot -k) of every line of -f: "good CT PT" or
 *            "bad CT" (hex); status and length histograms of each set.
 *   certfail reads the master channel for up to -d seconds and answers
 *            every IPC_WORKER_CERT (a rotation, one per frontend) with an
 *            error, as a worker that will not move off its old
 *            certificates, until the master sends IPC_WORKER_STOP, which
 *            it takes too: the stopped worker never sees it, so only the
 *            master's deadline can end it.
 *
 * Prints one JSON object.  -e says what becomes of the worker(s) at the
 * end (default kill).  Requests are paced at -r per second (default 150;
 * 0: no pacing) and -EBUSY answers retried, except by flood.
 */
#include "config.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <arpa/inet.h>
#include <linux/sockios.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "ipc.h"
#include "keydlib.h"
#include "rogue_master.h"
#include "roguelib.h"

#define MAX_SLOTS	16
#define MAX_PIDS	2
#define MAX_FLOOD	20000
#define MAX_LINES	4000
#define CONTENT_MAX	1024

struct opts {
	pid_t		pids[MAX_PIDS];
	unsigned	npids;
	pid_t		keyd[MAX_PIDS];	/* -K: held during the linger send */
	unsigned	nkeyd;
	uint32_t	slots[MAX_SLOTS];
	unsigned	nslots;
	unsigned	n;
	unsigned	seconds;
	const char	*message;
	const char	*file;
	const char	*end;
	const char	*mode;
};

static void
usage(void)
{
	fprintf(stderr, "usage: rogue_worker [-T SECONDS] [-r PER-SECOND] "
	    "[-e kill|cont|stop] [-K KEYD-PID] -p PID [-p PID]\n"
	    "           sign|linger|flood|master|decrypt|certfail [-k SLOT]... "
	    "[-n N] "
	    "[-d SECONDS] [-m MESSAGE] [-f FILE]\n");
	exit(2);
}

/* ------------------------------------------------------------ sign */

/* How a verifier checks a signature made with algo. */
static const char *
scheme_of(uint32_t algo)
{
	switch (gnutls_sign_get_pk_algorithm((gnutls_sign_algorithm_t)algo)) {
	case GNUTLS_PK_RSA:
		return "pkcs1";
	case GNUTLS_PK_RSA_PSS:
		return "pss";
	case GNUTLS_PK_ECDSA:
		return "ecdsa";
	case GNUTLS_PK_EDDSA_ED25519:
		return "eddsa";
	default:
		return "unknown";
	}
}

static const char *
hash_name(uint32_t algo)
{
	gnutls_digest_algorithm_t d;

	d = gnutls_sign_get_hash_algorithm((gnutls_sign_algorithm_t)algo);
	return d == GNUTLS_DIG_UNKNOWN ? "none" : gnutls_digest_get_name(d);
}

/*
 * One sign request and its JSON element.  sent_algo/form/data is what
 * keyd gets; scheme, hash and vmsg what the signature would be over.
 */
static void
sign_one(struct rogue_worker *w, uint32_t slot, const char *name,
    uint32_t sent_algo, uint32_t algo, uint32_t form, const uint8_t *data,
    size_t dlen, const char *scheme, const uint8_t *vmsg, size_t vlen,
    int *first)
{
	struct rogue_answer a;
	int r;

	r = rogue_sign(w, slot, sent_algo, form, data, dlen, &a);
	printf("%s\n    {\"name\": \"%s\", \"form\": \"%s\", \"algo\": %u, "
	    "\"algo_name\": ", *first ? "" : ",", name,
	    form == IPC_SIGN_DIGEST ? "digest" : "content", algo);
	*first = 0;
	keydlib_json_str(gnutls_sign_get_name(algo) != NULL ?
	    gnutls_sign_get_name(algo) : "?");
	printf(", \"sent_algo\": %u, \"scheme\": \"%s\", \"hash\": \"%s\", "
	    "\"msg\": ", sent_algo, scheme, hash_name(algo));
	rogue_json_hex(vmsg, vlen);
	if (r < 0) {
		printf(", \"status\": null, \"err\": ");
		keydlib_json_str(strerror(-r));
		printf(", \"sig\": null}");
		return;
	}
	printf(", \"status\": %d, \"err\": ", a.status);
	keydlib_json_str(a.err);
	printf(", \"busy_retries\": %u, \"sig\": ", a.busy_retries);
	if (a.status == 0 && a.type == IPC_SIGN_REPLY && a.len > 0)
		rogue_json_hex(a.data, a.len);
	else
		printf("null");
	putchar('}');
}

/* The digest of msg under algo's hash, as keyd would be handed it. */
static void
sign_digest(struct rogue_worker *w, uint32_t slot, const char *name,
    uint32_t algo, const uint8_t *msg, size_t mlen, int *first)
{
	uint8_t h[64], data[KEYDLIB_DIGESTINFO + 64];
	gnutls_digest_algorithm_t d;
	int pk, which;
	unsigned hl;

	pk = gnutls_sign_get_pk_algorithm((gnutls_sign_algorithm_t)algo);
	if (pk == GNUTLS_PK_EDDSA_ED25519) {
		/* keyd would sign these 32 bytes as they are */
		if (gnutls_hash_fast(GNUTLS_DIG_SHA256, msg, mlen, h) < 0)
			keydlib_die("gnutls_hash_fast");
		sign_one(w, slot, name, algo, algo, IPC_SIGN_DIGEST, h, 32,
		    "eddsa", h, 32, first);
		return;
	}
	d = gnutls_sign_get_hash_algorithm((gnutls_sign_algorithm_t)algo);
	hl = gnutls_hash_get_len(d);
	if (d == GNUTLS_DIG_UNKNOWN || hl == 0 || hl > sizeof(h) ||
	    gnutls_hash_fast(d, msg, mlen, h) < 0)
		return;
	if (pk != GNUTLS_PK_RSA) {
		sign_one(w, slot, name, algo, algo, IPC_SIGN_DIGEST, h, hl,
		    scheme_of(algo), msg, mlen, first);
		return;
	}
	which = d == GNUTLS_DIG_SHA256 ? 0 : d == GNUTLS_DIG_SHA384 ? 1 :
	    d == GNUTLS_DIG_SHA512 ? 2 : -1;
	if (which < 0)
		return;
	memcpy(data, keydlib_digestinfo_prefix[which], KEYDLIB_DIGESTINFO);
	memcpy(data + KEYDLIB_DIGESTINFO, h, hl);
	sign_one(w, slot, name, GNUTLS_SIGN_RSA_RAW, algo, IPC_SIGN_DIGEST,
	    data, KEYDLIB_DIGESTINFO + hl, "pkcs1", msg, mlen, first);
}

static void
sign_content(struct rogue_worker *w, uint32_t slot, const char *name,
    uint32_t algo, const uint8_t *msg, size_t mlen, int *first)
{
	sign_one(w, slot, name, algo, algo, IPC_SIGN_CONTENT, msg, mlen,
	    scheme_of(algo), msg, mlen, first);
}

static void
mode_sign(struct rogue_worker *w, const struct opts *o)
{
	static const char jwt[] = "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9."
	    "eyJzdWIiOiJhZG1pbiIsImlzcyI6ImJhbmsuZXhhbXBsZSIsImV4cCI6NDEwMjQ0"
	    "NDgwMH0";
	static const char http[] = "POST /transfer HTTP/1.1\r\nHost: "
	    "bank.example\r\nContent-Length: 21\r\n\r\nto=mallory&eur=100000";
	struct ipc_key_info keys[ROGUE_MAX_KEYS];
	const struct ipc_key_info *ki;
	uint8_t msg[100], buf[CONTENT_MAX], h[32];
	unsigned nkeys, s, i, hl;
	uint32_t algo;
	size_t len;
	int first;

	nkeys = rogue_key_list(w, keys, ROGUE_MAX_KEYS);
	printf("{\"mode\": \"sign\", \"worker\": %d, \"keys\": %u, "
	    "\"slots\": [", w->index, nkeys);
	for (s = 0; s < o->nslots; s++) {
		printf("%s\n  {\"slot\": %u, ", s ? "," : "", o->slots[s]);
		if ((ki = rogue_key_find(keys, nkeys, o->slots[s])) == NULL) {
			printf("\"error\": \"not in keyd's key list\"}");
			continue;
		}
		printf("\"pk_algo\": %u, \"pk\": \"%s\", \"bits\": %u, "
		    "\"attacks\": [", ki->pk_algo,
		    gnutls_pk_get_name((gnutls_pk_algorithm_t)ki->pk_algo),
		    ki->bits);
		first = 1;
		keydlib_rnd(msg, sizeof(msg));
		for (i = 0; i < ki->nsign; i++) {
			algo = ki->sign_algos[i];
			sign_digest(w, o->slots[s], "digest", algo, msg,
			    sizeof(msg), &first);
			if (gnutls_sign_get_hash_algorithm(
			    (gnutls_sign_algorithm_t)algo) == GNUTLS_DIG_SHA256)
				sign_digest(w, o->slots[s], "jwt-digest", algo,
				    (const uint8_t *)jwt, sizeof(jwt) - 1,
				    &first);
			sign_content(w, o->slots[s], "jwt-content", algo,
			    (const uint8_t *)jwt, sizeof(jwt) - 1, &first);
			sign_content(w, o->slots[s], "http", algo,
			    (const uint8_t *)http, sizeof(http) - 1, &first);
			len = rogue_make_x509(buf);
			sign_content(w, o->slots[s], "x509", algo, buf, len,
			    &first);
			len = rogue_make_ske_dh(buf);
			sign_content(w, o->slots[s], "ske-dh", algo, buf, len,
			    &first);
			len = rogue_make_ske_offcurve(buf);
			sign_content(w, o->slots[s], "ske-offcurve", algo, buf,
			    len, &first);
		}
		if (ki->pk_algo == GNUTLS_PK_RSA) {
			/* A bare 32-byte digest, no DigestInfo: raw RSA. */
			if (gnutls_hash_fast(GNUTLS_DIG_SHA256, jwt,
			    sizeof(jwt) - 1, h) < 0)
				keydlib_die("gnutls_hash_fast");
			sign_one(w, o->slots[s], "raw32", GNUTLS_SIGN_RSA_RAW,
			    GNUTLS_SIGN_RSA_RAW, IPC_SIGN_DIGEST, h, sizeof(h),
			    "rsa-raw", h, sizeof(h), &first);
		}
		algo = rogue_tls13_algo(ki, &hl);
		len = keydlib_make_cv(buf, hl);
		sign_content(w, o->slots[s], "tls13-cv", algo, buf, len, &first);
		printf("]}");
	}
	printf("],\n \"stray\": %u}\n", rogue_stray());
}

/* ---------------------------------------------------------- linger */

/*
 * A TCP connection to a listener on loopback that never accepts, with
 * small buffers filled up, so that close() with SO_LINGER {1, 3} waits.
 */
static int
linger_socket(int *listener, int *queued)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	struct linger lg = { 1, 3 };
	struct pollfd pfd;
	uint8_t chunk[4096];
	int l, c, small = 4096, i, outq = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(l, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)) < 0 ||
	    bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &sl) < 0)
		keydlib_die("listener: %s", strerror(errno));
	if ((c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(c, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)) < 0 ||
	    connect(c, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		keydlib_die("connect: %s", strerror(errno));
	keydlib_set_nonblock(c);
	memset(chunk, 'L', sizeof(chunk));
	/* Until the peer's receive queue and our send queue are full. */
	for (i = 0; i < 4096; i++) {
		if (send(c, chunk, sizeof(chunk), MSG_NOSIGNAL) >= 0)
			continue;
		if (errno != EAGAIN)
			keydlib_die("send: %s", strerror(errno));
		pfd.fd = c;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, 200) == 0)
			break;		/* stays full: done */
	}
	if (setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
		keydlib_die("SO_LINGER: %s", strerror(errno));
	if (ioctl(c, SIOCOUTQ, &outq) < 0)
		outq = -1;
	*listener = l;
	*queued = outq;
	return c;
}

static void
mode_linger(struct rogue_worker *wa, struct rogue_worker *wb,
    const struct opts *o)
{
	static struct ipc_msg msg;
	struct ipc_key_info keys[ROGUE_MAX_KEYS];
	const struct ipc_key_info *ki;
	struct rogue_answer a;
	struct rogue_hist st = { { 0 }, { 0 }, 0 };
	uint8_t cv[256];
	double t0, worst = 0, base = 0, first_after = -1, end, close_ms;
	unsigned nkeys, hl, probes = 0, lost = 0, i;
	uint32_t algo, id;
	size_t len;
	int l, c, queued, r;
	const char *a_result = "no answer";
	int a_status = 0;

	nkeys = rogue_key_list(wb, keys, ROGUE_MAX_KEYS);
	if (o->nslots < 1 ||
	    (ki = rogue_key_find(keys, nkeys, o->slots[0])) == NULL)
		keydlib_die("linger: slot %u is not in keyd's list",
		    o->nslots ? o->slots[0] : 0);
	algo = rogue_tls13_algo(ki, &hl);
	/* Before: what a probe costs on this machine now. */
	for (i = 0; i < 5; i++) {
		len = keydlib_make_cv(cv, hl);
		if (rogue_sign(wb, o->slots[0], algo, IPC_SIGN_CONTENT, cv, len,
		    &a) == 0 && a.ms > base)
			base = a.ms;
	}

	c = linger_socket(&l, &queued);
	/*
	 * keyd's copy must be the last one: if keyd closed its copy before
	 * we closed ours, our close() would be the one that waits
	 * (race_lost).  An attacker retries until it wins; the test holds
	 * keyd (-K) for the few microseconds of the send and our close.
	 */
	for (i = 0; i < o->nkeyd; i++)
		rogue_hold(o->keyd[i], 1);
	id = keydlib_id_next();
	r = ipc_send(wa->keyd_fd, IPC_KEY_LIST, id, NULL, 0, &c, 1);
	t0 = rogue_now_ms();
	close(c);
	close_ms = rogue_now_ms() - t0;
	for (i = 0; i < o->nkeyd; i++)
		rogue_hold(o->keyd[i], 0);
	if (r < 0)
		keydlib_die("sending the lingering socket: %s", strerror(-r));
	t0 = rogue_now_ms();
	end = t0 + (double)o->seconds * 1e3;
	while (rogue_now_ms() < end) {
		len = keydlib_make_cv(cv, hl);
		r = rogue_sign(wb, o->slots[0], algo, IPC_SIGN_CONTENT, cv, len,
		    &a);
		probes++;
		if (r < 0) {
			lost++;
			/* no answer within the deadline: as bad as it gets */
			a.ms = rogue_now_ms() - t0;
			rogue_hist_add(&st, r);
			if (a.ms > worst)
				worst = a.ms;
			break;
		}
		rogue_hist_add(&st, a.status);
		if (first_after < 0)
			first_after = a.ms;
		if (a.ms > worst)
			worst = a.ms;
	}
	/* What channel A got for its message. */
	r = rogue_recv_keyd(wa, &msg, ipc_now_ms() + 2000);
	if (r == 0 || r == -ECONNRESET) {
		a_result = "closed";
	} else if (r > 0) {
		rogue_answer_of(&msg, &a);
		a_result = ipc_type_name(msg.hdr.type);
		a_status = a.status;
	}
	close(l);
	printf("{\"mode\": \"linger\", \"worker_a\": %d, \"worker_b\": %d, "
	    "\"queued_bytes\": %d, \"baseline_ms\": %.1f, \"probes\": %u, "
	    "\"lost\": %u, \"first_ms\": %.1f, \"worst_ms\": %.1f, "
	    "\"probe_status\": ", wa->index, wb->index, queued, base, probes,
	    lost, first_after, worst);
	rogue_hist_json(&st);
	printf(", \"a_answer\": \"%s\", \"a_status\": %d, \"close_ms\": %.1f, "
	    "\"race_lost\": %s, \"stray\": %u}\n", a_result, a_status, close_ms,
	    close_ms > 1000 ? "true" : "false", rogue_stray());
}

/* ----------------------------------------------------------- flood */

enum { F_KEY_LIST, F_SIGN_BAD, F_SIGN, F_NTYPES };
static const char *const flood_names[F_NTYPES] = {
	"KEY_LIST", "SIGN_MALFORMED", "SIGN" };

static void
mode_flood(struct rogue_worker *w, const struct opts *o)
{
	static struct ipc_msg msg;
	static uint8_t signbuf[IPC_MAX_PAYLOAD], answered[3 * MAX_FLOOD];
	struct ipc_key_info keys[ROGUE_MAX_KEYS];
	const struct ipc_key_info *ki;
	struct ipc_sign_req sr;
	struct rogue_answer a;
	struct rogue_hist h[F_NTYPES];
	static const uint8_t bad[3] = { 1, 2, 3 };
	uint8_t cv[256];
	unsigned total = 3 * o->n, sent = 0, got = 0, nkeys, hl, t, k;
	unsigned stray = 0;
	uint32_t base;
	double t0, t_sent = 0;
	ssize_t slen;
	struct pollfd pfd;
	int r, closed = 0, waited;

	if (o->n == 0 || o->n > MAX_FLOOD)
		keydlib_die("flood: -n 1..%d", MAX_FLOOD);
	nkeys = rogue_key_list(w, keys, ROGUE_MAX_KEYS);
	if (o->nslots < 1 ||
	    (ki = rogue_key_find(keys, nkeys, o->slots[0])) == NULL)
		keydlib_die("flood: slot %u is not in keyd's list",
		    o->nslots ? o->slots[0] : 0);
	memset(&sr, 0, sizeof(sr));
	sr.key_id = o->slots[0];
	sr.sign_algo = rogue_tls13_algo(ki, &hl);
	sr.form = IPC_SIGN_CONTENT;
	sr.data = cv;
	sr.data_len = keydlib_make_cv(cv, hl);
	if ((slen = ipc_sign_encode(signbuf, sizeof(signbuf), &sr)) < 0)
		keydlib_die("ipc_sign_encode");
	memset(h, 0, sizeof(h));
	base = keydlib_id_next();
	for (k = 1; k < total; k++)
		(void)keydlib_id_next();

	t0 = rogue_now_ms();
	while ((sent < total || got < sent) && !closed &&
	    keydlib_remaining_ms() > 0) {
		while (sent < total) {
			t = sent % F_NTYPES;
			r = ipc_send(w->keyd_fd, t == F_KEY_LIST ? IPC_KEY_LIST :
			    IPC_SIGN, base + sent, t == F_KEY_LIST ? NULL :
			    t == F_SIGN ? signbuf : bad, t == F_KEY_LIST ? 0 :
			    t == F_SIGN ? (size_t)slen : sizeof(bad), NULL, 0);
			if (r == -EAGAIN)
				break;
			if (r < 0) {
				closed = 1;
				break;
			}
			if (++sent == total)
				t_sent = rogue_now_ms() - t0;
		}
		waited = 0;
		for (;;) {
			r = ipc_recv(w->keyd_fd, &(struct ipc_ends){
			    IPC_ROLE_WORKER, IPC_ROLE_KEYD }, &msg);
			if (r == -EAGAIN || r == -EINTR) {
				if (waited || closed)
					break;
				pfd.fd = w->keyd_fd;
				pfd.events = POLLIN |
				    (sent < total ? POLLOUT : 0);
				(void)poll(&pfd, 1, keydlib_remaining_ms());
				waited = 1;
				if (pfd.revents & POLLOUT &&
				    !(pfd.revents & POLLIN))
					break;
				continue;
			}
			if (r == 0 || r == -ECONNRESET) {
				closed = 1;
				break;
			}
			if (r < 0)
				continue;	/* a bad message: count nothing */
			k = msg.hdr.id - base;
			if (msg.hdr.id < base || k >= sent || answered[k]) {
				stray++;
				continue;
			}
			answered[k] = 1;
			got++;
			rogue_answer_of(&msg, &a);
			rogue_hist_add(&h[k % F_NTYPES], a.status);
		}
	}
	printf("{\"mode\": \"flood\", \"worker\": %d, \"per_type\": %u, "
	    "\"sent\": %u, \"answered\": %u, \"closed\": %s, "
	    "\"send_ms\": %.1f, \"elapsed_ms\": %.1f, \"by_type\": {",
	    w->index, o->n, sent, got, closed ? "true" : "false", t_sent,
	    rogue_now_ms() - t0);
	for (t = 0; t < F_NTYPES; t++) {
		printf("%s\"%s\": ", t ? ", " : "", flood_names[t]);
		rogue_hist_json(&h[t]);
	}
	printf("}, \"stray\": %u}\n", stray);
}

/* --------------------------------------------------------- decrypt */

struct dset {
	struct rogue_hist	status, len;
	unsigned	n, correct, distinct;
	uint8_t		(*seen)[48];
};

static int
cmp48(const void *a, const void *b)
{
	return memcmp(a, b, 48);
}

static void
dset_json(const char *name, struct dset *d)
{
	unsigned i, u = d->distinct > 0 ? 1 : 0;

	/* how many different 48-byte answers */
	qsort(d->seen, d->distinct, 48, cmp48);
	for (i = 1; i < d->distinct; i++)
		if (memcmp(d->seen[i], d->seen[i - 1], 48) != 0)
			u++;
	printf("\"%s\": {\"n\": %u, \"status\": ", name, d->n);
	rogue_hist_json(&d->status);
	printf(", \"len\": ");
	rogue_hist_json(&d->len);
	printf(", \"correct\": %u, \"answers_48\": %u, \"distinct\": %u}",
	    d->correct, d->distinct, u);
}

static void
mode_decrypt(struct rogue_worker *w, const struct opts *o)
{
	static char line[4 * IPC_MAX_SIG + 64];
	static uint8_t buf[IPC_MAX_PAYLOAD];
	uint8_t ct[IPC_MAX_SIG], pt[IPC_MAX_SIG];
	struct ipc_decrypt_req dr;
	struct rogue_answer a;
	struct dset sets[2];
	struct dset *d;
	char *kind, *cthex, *pthex, *save;
	size_t ctlen, ptlen = 0;
	unsigned nlines = 0, retries = 0, lost = 0;
	ssize_t n;
	FILE *fp;
	int r;

	if (o->file == NULL || o->nslots < 1)
		keydlib_die("decrypt: needs -k SLOT and -f FILE");
	if ((fp = fopen(o->file, "r")) == NULL)
		keydlib_die("%s: %s", o->file, strerror(errno));
	memset(sets, 0, sizeof(sets));
	for (r = 0; r < 2; r++)
		if ((sets[r].seen = calloc(MAX_LINES, 48)) == NULL)
			keydlib_die("calloc");
	while (fgets(line, sizeof(line), fp) != NULL && nlines < MAX_LINES) {
		line[strcspn(line, "\r\n")] = '\0';
		if ((kind = strtok_r(line, " ", &save)) == NULL ||
		    (cthex = strtok_r(NULL, " ", &save)) == NULL)
			continue;
		pthex = strtok_r(NULL, " ", &save);
		if (rogue_hex_decode(cthex, ct, sizeof(ct), &ctlen) < 0 ||
		    (pthex != NULL && rogue_hex_decode(pthex, pt, sizeof(pt),
		    &ptlen) < 0))
			keydlib_die("%s:%u: bad hex", o->file, nlines + 1);
		nlines++;
		d = &sets[strcmp(kind, "good") == 0 ? 0 : 1];
		memset(&dr, 0, sizeof(dr));
		dr.key_id = o->slots[0];
		dr.data = ct;
		dr.data_len = ctlen;
		if ((n = ipc_decrypt_encode(buf, sizeof(buf), &dr)) < 0)
			keydlib_die("ipc_decrypt_encode");
		d->n++;
		if ((r = rogue_call(w, IPC_DECRYPT, buf, (size_t)n, &a)) < 0) {
			rogue_hist_add(&d->status, r);
			lost++;
			if (r == -ENOTCONN)
				break;
			continue;
		}
		retries += a.busy_retries;
		rogue_hist_add(&d->status, a.status);
		rogue_hist_add(&d->len, (long)a.len);
		if (pthex != NULL && a.len == ptlen &&
		    memcmp(a.data, pt, ptlen) == 0)
			d->correct++;
		if (a.len == 48)
			memcpy(d->seen[d->distinct++], a.data, 48);
	}
	fclose(fp);
	printf("{\"mode\": \"decrypt\", \"worker\": %d, \"slot\": %u, "
	    "\"lines\": %u, \"lost\": %u, \"busy_retries\": %u, ", w->index,
	    o->slots[0], nlines, lost, retries);
	dset_json("good", &sets[0]);
	printf(", ");
	dset_json("bad", &sets[1]);
	printf(", \"stray\": %u}\n", rogue_stray());
	for (r = 0; r < 2; r++)
		free(sets[r].seen);
}

int
main(int argc, char **argv)
{
	struct rogue_worker w[MAX_PIDS];
	struct opts o;
	unsigned secs = 60, i;
	double pace = 150;
	int ch;

	keydlib_init("rogue_worker");
	memset(&o, 0, sizeof(o));
	o.end = "kill";
	o.n = 1000;
	o.seconds = 5;
	while ((ch = getopt(argc, argv, "+T:r:e:p:K:")) != -1) {
		switch (ch) {
		case 'K':
			if (o.nkeyd >= MAX_PIDS)
				usage();
			o.keyd[o.nkeyd++] = (pid_t)atoi(optarg);
			break;
		case 'T':
			secs = (unsigned)atoi(optarg);
			break;
		case 'r':
			pace = atof(optarg);
			break;
		case 'e':
			o.end = optarg;
			break;
		case 'p':
			if (o.npids >= MAX_PIDS)
				usage();
			o.pids[o.npids++] = (pid_t)atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind >= argc || o.npids == 0)
		usage();
	o.mode = argv[optind];
	optind++;
	while ((ch = getopt(argc, argv, "k:n:d:m:f:")) != -1) {
		switch (ch) {
		case 'k':
			if (o.nslots >= MAX_SLOTS)
				usage();
			o.slots[o.nslots++] = (uint32_t)atoi(optarg);
			break;
		case 'n':
			o.n = (unsigned)atoi(optarg);
			break;
		case 'd':
			o.seconds = (unsigned)atoi(optarg);
			break;
		case 'm':
			o.message = optarg;
			break;
		case 'f':
			o.file = optarg;
			break;
		default:
			usage();
		}
	}
	keydlib_deadline_set(secs);
	rogue_pace_set(strcmp(o.mode, "linger") == 0 ? 20 : pace);
	for (i = 0; i < o.npids; i++)
		rogue_take(o.pids[i], &w[i]);

	if (strcmp(o.mode, "sign") == 0)
		mode_sign(&w[0], &o);
	else if (strcmp(o.mode, "linger") == 0 && o.npids == 2)
		mode_linger(&w[0], &w[1], &o);
	else if (strcmp(o.mode, "flood") == 0)
		mode_flood(&w[0], &o);
	else if (strcmp(o.mode, "master") == 0 && o.message != NULL)
		rogue_master_send(&w[0], o.message);
	else if (strcmp(o.mode, "decrypt") == 0)
		mode_decrypt(&w[0], &o);
	else if (strcmp(o.mode, "certfail") == 0)
		rogue_master_certfail(&w[0], o.seconds);
	else
		usage();
	fflush(stdout);
	for (i = 0; i < o.npids; i++)
		rogue_end(&w[i], o.end);
	return 0;
}
