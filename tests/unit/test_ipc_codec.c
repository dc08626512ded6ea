/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_ipc_codec.c -- the IPC payload codec (ipc/ipc_codec.c): every
 * message type round-trips, and everything malformed is rejected with the
 * documented error.  The framing has test_ipc_frame.c.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ipc.h"
#include "testipc.h"

/* Wire sizes are part of the protocol: a change must be deliberate. */
_Static_assert(sizeof(struct ipc_hdr) == 16, "ipc_hdr size");
_Static_assert(sizeof(struct ipc_hello) == 12, "ipc_hello size");
_Static_assert(sizeof(struct ipc_key_info) == 144, "ipc_key_info size");

static void
test_hello(void **state)
{
	struct pair *p = *state;
	struct ipc_msg *m;
	struct ipc_hello h, out;

	memset(&h, 0, sizeof(h));
	h.version = IPC_VERSION;
	h.role = IPC_ROLE_WORKER;
	h.pid = 77;
	m = testipc_xfer(p, IPC_HELLO, 0, &h, sizeof(h));
	assert_int_equal(ipc_hello_decode(m->payload, m->hdr.len, &out), 0);
	assert_memory_equal(&h, &out, sizeof(h));
	assert_int_equal(ipc_hello_check(m, IPC_ROLE_WORKER), 0);
	assert_int_equal(ipc_hello_check(m, IPC_ROLE_KEYD), -EPERM);

	h.version = IPC_VERSION + 1;
	m = testipc_xfer(p, IPC_HELLO, 0, &h, sizeof(h));
	assert_int_equal(ipc_hello_check(m, IPC_ROLE_WORKER), -EPROTO);
	h.version = IPC_VERSION;
	h.role = 9;
	assert_int_equal(ipc_hello_decode((uint8_t *)&h, sizeof(h), &out),
	    -EBADMSG);
	assert_int_equal(ipc_hello_decode((uint8_t *)&h, sizeof(h) - 1, &out),
	    -EBADMSG);
	m = testipc_xfer(p, IPC_KEY_LIST, 3, NULL, 0);
	assert_int_equal(ipc_hello_check(m, IPC_ROLE_WORKER), -EPROTO);
}

static void
test_hello_send_order(void **state)
{
	struct pair *p = *state;
	static struct ipc_msg msg;

	assert_int_equal(ipc_hello_send(p->sv[0], IPC_ROLE_MASTER), 0);
	assert_int_equal(testipc_recv(p->sv[1], &msg), 1);
	assert_int_equal(msg.hdr.type, IPC_HELLO);
	assert_int_equal(ipc_hello_check(&msg, IPC_ROLE_MASTER), 0);
}

static void
test_error(void **state)
{
	struct pair *p = *state;
	static struct ipc_msg msg;
	struct ipc_error e, out;

	assert_int_equal(ipc_error_send(p->sv[0], 9, -EPERM, "no %s", "way"), 0);
	assert_int_equal(testipc_recv(p->sv[1], &msg), 1);
	assert_int_equal(msg.hdr.type, IPC_ERROR);
	assert_int_equal(msg.hdr.id, 9);
	assert_int_equal(ipc_error_decode(msg.payload, msg.hdr.len, &out), 0);
	assert_int_equal(out.code, -EPERM);
	assert_string_equal(out.msg, "no way");

	memset(&e, 'x', sizeof(e));
	e.code = -EINVAL;
	assert_int_equal(ipc_error_decode((uint8_t *)&e, sizeof(e), &out),
	    -EBADMSG);	/* unterminated */
	memset(&e, 0, sizeof(e));
	e.code = 0;
	assert_int_equal(ipc_error_decode((uint8_t *)&e, sizeof(e), &out),
	    -EBADMSG);	/* an error must be negative */
	e.code = -1;
	assert_int_equal(ipc_error_decode((uint8_t *)&e, sizeof(e) + 1, &out),
	    -EBADMSG);
}

static void
test_fixed_payloads(void **state)
{
	struct pair *p = *state;
	struct ipc_msg *m;
	struct ipc_key_load kl, klo;
	struct ipc_key_loaded ld, ldo;
	struct ipc_channel ch, cho;
	struct ipc_keyd_stats ks, kso;
	struct ipc_worker_stats ws, wso;
	struct ipc_rekey rk, rko;
	struct ipc_worker_cert wc, wco;

	memset(&kl, 0, sizeof(kl));
	kl.key_id = 3;
	kl.flags = IPC_KEY_F_HAS_PASS | IPC_KEY_F_ALLOW_DECRYPT;
	strcpy(kl.name, "www");
	strcpy(kl.key_path, "/etc/moat/www.key");
	strcpy(kl.cert_path, "/etc/moat/www.crt");
	m = testipc_xfer(p, IPC_KEY_LOAD, 5, &kl, sizeof(kl));
	assert_int_equal(ipc_key_load_decode(m->payload, m->hdr.len, &klo), 0);
	assert_memory_equal(&kl, &klo, sizeof(kl));

	memset(&ld, 0, sizeof(ld));
	ld.info.key_id = 3;
	ld.info.pk_algo = 4;
	ld.info.bits = 256;
	ld.info.nsign = 2;
	ld.info.sign_algos[0] = 36;
	ld.info.sign_algos[1] = 37;
	strcpy(ld.info.name, "www");
	strcpy(ld.msg, "loaded");
	m = testipc_xfer(p, IPC_KEY_LOAD_REPLY, 5, &ld, sizeof(ld));
	assert_int_equal(ipc_key_loaded_decode(m->payload, m->hdr.len, &ldo), 0);
	assert_memory_equal(&ld, &ldo, sizeof(ld));

	ch.worker = 7;
	ch.generation = 2;
	m = testipc_xfer(p, IPC_CHANNEL_ADD, 6, &ch, sizeof(ch));
	assert_int_equal(ipc_channel_decode(m->payload, m->hdr.len, &cho), 0);
	assert_memory_equal(&ch, &cho, sizeof(ch));

	memset(&ks, 0, sizeof(ks));
	ks.requests = 1000;
	ks.signs[IPC_STAT_ECDSA] = 900;
	ks.refused = 3;
	ks.latency_us_max = 12345;
	ks.threads = 4;
	m = testipc_xfer(p, IPC_KEYD_STATS_REPLY, 8, &ks, sizeof(ks));
	assert_int_equal(ipc_keyd_stats_decode(m->payload, m->hdr.len, &kso), 0);
	assert_memory_equal(&ks, &kso, sizeof(ks));

	memset(&ws, 0, sizeof(ws));
	ws.conns_total = 77;
	ws.renegotiations_refused = 2;
	m = testipc_xfer(p, IPC_WORKER_STATS_REPLY, 9, &ws, sizeof(ws));
	assert_int_equal(ipc_worker_stats_decode(m->payload, m->hdr.len, &wso),
	    0);
	assert_memory_equal(&ws, &wso, sizeof(ws));

	memset(&rk, 0, sizeof(rk));
	strcpy(rk.frontend, "imap");
	m = testipc_xfer(p, IPC_WORKER_REKEY, 10, &rk, sizeof(rk));
	assert_int_equal(ipc_rekey_decode(m->payload, m->hdr.len, &rko), 0);
	assert_string_equal(rko.frontend, "imap");

	/* Certificate rotation: both slots of the first and the last frontend. */
	memset(&wc, 0, sizeof(wc));
	wc.frontend = 0;
	wc.generation = 0;
	wc.key_id = IPC_KEY_SLOT(0, 0, 0);
	m = testipc_xfer(p, IPC_WORKER_CERT, 15, &wc, sizeof(wc));
	assert_int_equal(ipc_worker_cert_decode(m->payload, m->hdr.len, &wco),
	    0);
	assert_memory_equal(&wc, &wco, sizeof(wc));
	assert_int_equal(wco.key_id, 0);
	wc.frontend = IPC_MAX_FRONTENDS - 1;
	wc.generation = 7;
	wc.key_id = IPC_KEY_SLOT(wc.frontend, 0, wc.generation);
	m = testipc_xfer(p, IPC_WORKER_CERT, 16, &wc, sizeof(wc));
	assert_int_equal(ipc_worker_cert_decode(m->payload, m->hdr.len, &wco),
	    0);
	assert_memory_equal(&wc, &wco, sizeof(wc));
	/* the last frontend's first certificate: its others follow */
	assert_int_equal(wco.key_id, IPC_MAX_KEYS - IPC_MAX_CERTS);
	assert_int_equal(IPC_KEY_SLOT(wc.frontend, IPC_MAX_CERTS - 1, 7),
	    IPC_MAX_KEYS - 1);

	/* No-payload requests. */
	testipc_xfer(p, IPC_KEY_LIST, 11, NULL, 0);
	testipc_xfer(p, IPC_KEYD_STATS, 12, NULL, 0);
	testipc_xfer(p, IPC_WORKER_STATS, 13, NULL, 0);
	testipc_xfer(p, IPC_WORKER_STOP, 14, NULL, 0);
}

static void
test_fixed_rejects(void **state)
{
	struct ipc_key_load kl, klo;
	struct ipc_key_loaded ld, ldo;
	struct ipc_channel cho;
	struct ipc_keyd_stats kso;
	struct ipc_worker_stats wso;
	struct ipc_rekey rk, rko;
	struct ipc_worker_cert wc, wco;
	uint8_t big[sizeof(struct ipc_worker_stats) + 1];

	memset(&kl, 0, sizeof(kl));
	assert_int_equal(ipc_key_load_decode((uint8_t *)&kl, sizeof(kl), &klo),
	    0);
	assert_int_equal(ipc_key_load_decode((uint8_t *)&kl, sizeof(kl) - 1,
	    &klo), -EBADMSG);
	assert_int_equal(ipc_key_load_decode(NULL, sizeof(kl), &klo), -EBADMSG);
	kl.key_id = IPC_MAX_KEYS;
	assert_int_equal(ipc_key_load_decode((uint8_t *)&kl, sizeof(kl), &klo),
	    -EBADMSG);
	kl.key_id = 0;
	kl.flags = 0x80;
	assert_int_equal(ipc_key_load_decode((uint8_t *)&kl, sizeof(kl), &klo),
	    -EBADMSG);
	kl.flags = 0;
	memset(kl.name, 'a', sizeof(kl.name));
	assert_int_equal(ipc_key_load_decode((uint8_t *)&kl, sizeof(kl), &klo),
	    -EBADMSG);
	memset(&kl, 0, sizeof(kl));
	memset(kl.key_path, 'a', sizeof(kl.key_path));
	assert_int_equal(ipc_key_load_decode((uint8_t *)&kl, sizeof(kl), &klo),
	    -EBADMSG);
	memset(&kl, 0, sizeof(kl));
	memset(kl.cert_path, 'a', sizeof(kl.cert_path));
	assert_int_equal(ipc_key_load_decode((uint8_t *)&kl, sizeof(kl), &klo),
	    -EBADMSG);

	memset(&ld, 0, sizeof(ld));
	ld.status = 1;
	assert_int_equal(ipc_key_loaded_decode((uint8_t *)&ld, sizeof(ld), &ldo),
	    -EBADMSG);
	ld.status = 0;
	ld.info.nsign = IPC_MAX_SIGN_ALGOS + 1;
	assert_int_equal(ipc_key_loaded_decode((uint8_t *)&ld, sizeof(ld), &ldo),
	    -EBADMSG);
	ld.info.nsign = 0;
	ld.info.key_id = IPC_MAX_KEYS;
	assert_int_equal(ipc_key_loaded_decode((uint8_t *)&ld, sizeof(ld), &ldo),
	    -EBADMSG);
	ld.info.key_id = 0;
	memset(ld.info.name, 'n', sizeof(ld.info.name));
	assert_int_equal(ipc_key_loaded_decode((uint8_t *)&ld, sizeof(ld), &ldo),
	    -EBADMSG);
	/* A failed load carries no info to check, only its message. */
	ld.status = -EINVAL;
	assert_int_equal(ipc_key_loaded_decode((uint8_t *)&ld, sizeof(ld), &ldo),
	    0);
	memset(ld.msg, 'm', sizeof(ld.msg));
	assert_int_equal(ipc_key_loaded_decode((uint8_t *)&ld, sizeof(ld), &ldo),
	    -EBADMSG);

	memset(big, 0, sizeof(big));
	assert_int_equal(ipc_channel_decode(big, sizeof(cho) + 1, &cho),
	    -EBADMSG);
	assert_int_equal(ipc_channel_decode(big, sizeof(cho) - 1, &cho),
	    -EBADMSG);
	assert_int_equal(ipc_keyd_stats_decode(big, sizeof(kso) - 1, &kso),
	    -EBADMSG);
	assert_int_equal(ipc_worker_stats_decode(big, sizeof(big), &wso),
	    -EBADMSG);
	memset(&rk, 'r', sizeof(rk));
	assert_int_equal(ipc_rekey_decode((uint8_t *)&rk, sizeof(rk), &rko),
	    -EBADMSG);

	/* IPC_WORKER_CERT: exact size, frontend in range, key_id its slot. */
	memset(&wc, 0, sizeof(wc));
	wc.frontend = 2;
	wc.generation = 1;
	wc.key_id = IPC_KEY_SLOT(2, 0, 1);
	assert_int_equal(ipc_worker_cert_decode((uint8_t *)&wc, sizeof(wc),
	    &wco), 0);
	assert_int_equal(ipc_worker_cert_decode((uint8_t *)&wc, sizeof(wc) - 1,
	    &wco), -EBADMSG);
	memset(big, 0, sizeof(big));
	assert_int_equal(ipc_worker_cert_decode(big, sizeof(wc) + 1, &wco),
	    -EBADMSG);
	assert_int_equal(ipc_worker_cert_decode(NULL, sizeof(wc), &wco),
	    -EBADMSG);
	wc.key_id = IPC_KEY_SLOT(2, 0, 0);	/* the other generation's slot */
	assert_int_equal(ipc_worker_cert_decode((uint8_t *)&wc, sizeof(wc),
	    &wco), -EBADMSG);
	wc.key_id = IPC_KEY_SLOT(3, 0, 1);	/* another frontend's slot */
	assert_int_equal(ipc_worker_cert_decode((uint8_t *)&wc, sizeof(wc),
	    &wco), -EBADMSG);
	wc.key_id = IPC_KEY_SLOT(2, 1, 1);	/* not its first certificate's */
	assert_int_equal(ipc_worker_cert_decode((uint8_t *)&wc, sizeof(wc),
	    &wco), -EBADMSG);
	wc.key_id = IPC_KEY_SLOT(2, 0, 1);	/* OCSP for all 8, not a 9th */
	wc.ocsp_mask = (1u << IPC_MAX_CERTS) - 1;
	assert_int_equal(ipc_worker_cert_decode((uint8_t *)&wc, sizeof(wc),
	    &wco), 0);
	wc.ocsp_mask = 1u << IPC_MAX_CERTS;
	assert_int_equal(ipc_worker_cert_decode((uint8_t *)&wc, sizeof(wc),
	    &wco), -EBADMSG);
	wc.ocsp_mask = 0;
	wc.key_id = IPC_MAX_KEYS;	/* no slot at all */
	assert_int_equal(ipc_worker_cert_decode((uint8_t *)&wc, sizeof(wc),
	    &wco), -EBADMSG);
	wc.frontend = IPC_MAX_FRONTENDS;	/* its slot would be a key id */
	wc.generation = 0;
	wc.key_id = IPC_KEY_SLOT(wc.frontend, 0, 0);
	assert_int_equal(ipc_worker_cert_decode((uint8_t *)&wc, sizeof(wc),
	    &wco), -EBADMSG);
	wc.frontend = UINT32_MAX;
	wc.key_id = IPC_KEY_SLOT(wc.frontend, 0, 0);
	assert_int_equal(ipc_worker_cert_decode((uint8_t *)&wc, sizeof(wc),
	    &wco), -EBADMSG);
}

/*
 * IPC_WORKER_CERT carries the chain as an fd that the master shares with
 * keyd (whose read() moved the offset): the worker reads it with pread().
 * The answer is a reply with a uint32_t count, or a status.
 */
/* The small fixed payloads of key drops, backend connects and gone creds. */
static void
test_small_payloads(void **state)
{
	struct pair *p = *state;
	struct ipc_msg *m;
	struct ipc_key_drop kd = { 33 }, kdo;
	struct ipc_backend_connect bc = { 2 }, bco;
	struct ipc_worker_cred_gone cg = { 3, 7 }, cgo;
	struct ipc_key_load kl, klo;
	uint8_t big[16];

	m = testipc_xfer(p, IPC_KEY_DROP, 5, &kd, sizeof(kd));
	assert_int_equal(ipc_key_drop_decode(m->payload, m->hdr.len, &kdo), 0);
	assert_int_equal(kdo.key_id, 33);
	m = testipc_xfer(p, IPC_BACKEND_CONNECT, 6, &bc, sizeof(bc));
	assert_int_equal(ipc_backend_connect_decode(m->payload, m->hdr.len,
	    &bco), 0);
	assert_int_equal(bco.frontend, 2);
	m = testipc_xfer(p, IPC_WORKER_CRED_GONE, 7, &cg, sizeof(cg));
	assert_int_equal(ipc_worker_cred_gone_decode(m->payload, m->hdr.len,
	    &cgo), 0);
	assert_int_equal(cgo.frontend, 3);
	assert_int_equal(cgo.generation, 7);

	/* out of range, or not the exact size */
	kd.key_id = IPC_MAX_KEYS;
	assert_int_equal(ipc_key_drop_decode((uint8_t *)&kd, sizeof(kd), &kdo),
	    -EBADMSG);
	bc.frontend = IPC_KEY_SLOTS_PER_GEN;
	assert_int_equal(ipc_backend_connect_decode((uint8_t *)&bc, sizeof(bc),
	    &bco), -EBADMSG);
	cg.frontend = IPC_KEY_SLOTS_PER_GEN;
	assert_int_equal(ipc_worker_cred_gone_decode((uint8_t *)&cg, sizeof(cg),
	    &cgo), -EBADMSG);
	memset(big, 0, sizeof(big));
	assert_int_equal(ipc_key_drop_decode(big, sizeof(kd) + 1, &kdo),
	    -EBADMSG);
	assert_int_equal(ipc_backend_connect_decode(big, sizeof(bc) - 1, &bco),
	    -EBADMSG);
	assert_int_equal(ipc_worker_cred_gone_decode(big, sizeof(cg) + 4, &cgo),
	    -EBADMSG);

	/* every key flag the master may set is accepted, no other */
	memset(&kl, 0, sizeof(kl));
	kl.flags = IPC_KEY_F_HAS_PASS | IPC_KEY_F_ALLOW_DECRYPT |
	    IPC_KEY_F_ALLOW_DIGEST | IPC_KEY_F_ALLOW_DHE;
	assert_int_equal(ipc_key_load_decode((uint8_t *)&kl, sizeof(kl), &klo),
	    0);
	kl.flags = IPC_KEY_F_ALL + 1;
	assert_int_equal(ipc_key_load_decode((uint8_t *)&kl, sizeof(kl), &klo),
	    -EBADMSG);
}

static void
test_worker_cert(void **state)
{
	struct pair *p = *state;
	static struct ipc_msg msg;
	struct ipc_msg *m;
	struct ipc_worker_cert wc, wco;
	struct ipc_reply rep, out;
	char path[] = "/tmp/moat-test-cert-XXXXXX", got[32];
	const char pem[] = "-----BEGIN CERTIFICATE-----\n";
	uint8_t buf[64];
	uint32_t asked = 1000, v;
	ssize_t n;
	int fd;

	assert_true((fd = mkstemp(path)) >= 0);
	unlink(path);
	assert_int_equal(write(fd, pem, sizeof(pem) - 1), sizeof(pem) - 1);
	memset(&wc, 0, sizeof(wc));
	wc.frontend = 5;
	wc.generation = 3;
	wc.key_id = IPC_KEY_SLOT(5, 0, 3);
	assert_int_equal(wc.key_id, 5 * IPC_MAX_CERTS + IPC_KEY_SLOTS_PER_GEN);
	assert_int_equal(ipc_send(p->sv[0], IPC_WORKER_CERT, 21, &wc,
	    sizeof(wc), &fd, 1), 0);
	assert_int_equal(testipc_recv(p->sv[1], &msg), 1);
	assert_int_equal(msg.hdr.type, IPC_WORKER_CERT);
	assert_int_equal(msg.hdr.id, 21);
	assert_int_equal(msg.nfds, 1);
	assert_int_equal(ipc_worker_cert_decode(msg.payload, msg.hdr.len,
	    &wco), 0);
	assert_memory_equal(&wc, &wco, sizeof(wc));
	/* the offset is at the end (shared), pread from 0 still reads it all */
	assert_int_equal(pread(msg.fds[0], got, sizeof(got), 0),
	    sizeof(pem) - 1);
	assert_memory_equal(got, pem, sizeof(pem) - 1);
	ipc_msg_close_fds(&msg);
	close(fd);

	memset(&rep, 0, sizeof(rep));
	rep.data = (const uint8_t *)&asked;
	rep.data_len = sizeof(asked);
	n = ipc_reply_encode(buf, sizeof(buf), &rep);
	assert_true(n > 0);
	m = testipc_xfer(p, IPC_WORKER_CERT_REPLY, 21, buf, (size_t)n);
	assert_int_equal(ipc_reply_decode(m->payload, m->hdr.len, &out), 0);
	assert_int_equal(out.status, 0);
	assert_int_equal(out.data_len, sizeof(v));
	memcpy(&v, out.data, sizeof(v));
	assert_int_equal(v, 1000);

	rep.status = -EINVAL;
	rep.data = NULL;
	rep.data_len = 0;
	n = ipc_reply_encode(buf, sizeof(buf), &rep);
	m = testipc_xfer(p, IPC_WORKER_CERT_REPLY, 22, buf, (size_t)n);
	assert_int_equal(ipc_reply_decode(m->payload, m->hdr.len, &out), 0);
	assert_int_equal(out.status, -EINVAL);
	assert_int_equal(out.data_len, 0);
}

static void
test_sign(void **state)
{
	struct pair *p = *state;
	struct ipc_msg *m;
	struct ipc_sign_req req, out;
	uint8_t data[IPC_MAX_SIGN_DATA], buf[IPC_MAX_PAYLOAD];
	ssize_t n;
	uint32_t v;

	memset(data, 0x5a, sizeof(data));
	memset(&req, 0, sizeof(req));
	req.key_id = 2;
	req.sign_algo = 36;
	req.form = IPC_SIGN_CONTENT;
	req.data = data;
	req.data_len = 130;
	n = ipc_sign_encode(buf, sizeof(buf), &req);
	assert_int_equal(n, 20 + 130);
	m = testipc_xfer(p, IPC_SIGN, 77, buf, (size_t)n);
	assert_int_equal(ipc_sign_decode(m->payload, m->hdr.len, &out), 0);
	assert_int_equal(out.key_id, 2);
	assert_int_equal(out.sign_algo, 36);
	assert_int_equal(out.form, IPC_SIGN_CONTENT);
	assert_int_equal(out.data_len, 130);
	assert_memory_equal(out.data, data, 130);

	/* Largest allowed content fits one message. */
	req.data_len = IPC_MAX_SIGN_DATA;
	req.form = IPC_SIGN_DIGEST;
	n = ipc_sign_encode(buf, sizeof(buf), &req);
	assert_true(n > 0);
	assert_int_equal(ipc_sign_decode(buf, (size_t)n, &out), 0);
	assert_int_equal(out.form, IPC_SIGN_DIGEST);

	/* Encoder refuses what the decoder would. */
	req.data_len = IPC_MAX_SIGN_DATA + 1;
	assert_int_equal(ipc_sign_encode(buf, sizeof(buf), &req), -EINVAL);
	req.data_len = 0;
	assert_int_equal(ipc_sign_encode(buf, sizeof(buf), &req), -EINVAL);
	req.data_len = 32;
	assert_int_equal(ipc_sign_encode(buf, 20 + 31, &req), -ENOSPC);

	/* Truncated, length mismatch, trailing bytes, bad fields. */
	n = ipc_sign_encode(buf, sizeof(buf), &req);
	assert_int_equal(ipc_sign_decode(buf, 19, &out), -EBADMSG);
	assert_int_equal(ipc_sign_decode(buf, (size_t)n - 1, &out), -EBADMSG);
	assert_int_equal(ipc_sign_decode(buf, (size_t)n + 1, &out), -EBADMSG);
	v = 0xffffffffu;	/* data length that wraps */
	memcpy(buf + 16, &v, 4);
	assert_int_equal(ipc_sign_decode(buf, (size_t)n, &out), -EBADMSG);
	v = 0;		/* empty data */
	memcpy(buf + 16, &v, 4);
	assert_int_equal(ipc_sign_decode(buf, 20, &out), -EBADMSG);
	n = ipc_sign_encode(buf, sizeof(buf), &req);
	v = 3;		/* unknown form */
	memcpy(buf + 8, &v, 4);
	assert_int_equal(ipc_sign_decode(buf, (size_t)n, &out), -EBADMSG);
	n = ipc_sign_encode(buf, sizeof(buf), &req);
	v = 1;		/* reserved flags */
	memcpy(buf + 12, &v, 4);
	assert_int_equal(ipc_sign_decode(buf, (size_t)n, &out), -EBADMSG);
	n = ipc_sign_encode(buf, sizeof(buf), &req);
	v = IPC_MAX_KEYS;
	memcpy(buf, &v, 4);
	assert_int_equal(ipc_sign_decode(buf, (size_t)n, &out), -EBADMSG);
	assert_int_equal(ipc_sign_decode(NULL, 0, &out), -EBADMSG);
}

static void
test_decrypt(void **state)
{
	struct pair *p = *state;
	struct ipc_msg *m;
	struct ipc_decrypt_req req, out;
	uint8_t data[IPC_MAX_SIG + 1], buf[IPC_MAX_PAYLOAD];
	ssize_t n;

	memset(data, 0x33, sizeof(data));
	memset(&req, 0, sizeof(req));
	req.key_id = 1;
	req.data = data;
	req.data_len = 256;
	n = ipc_decrypt_encode(buf, sizeof(buf), &req);
	assert_int_equal(n, 12 + 256);
	m = testipc_xfer(p, IPC_DECRYPT, 3, buf, (size_t)n);
	assert_int_equal(ipc_decrypt_decode(m->payload, m->hdr.len, &out), 0);
	assert_int_equal(out.key_id, 1);
	assert_int_equal(out.data_len, 256);
	assert_memory_equal(out.data, data, 256);

	assert_int_equal(ipc_decrypt_decode(buf, (size_t)n - 1, &out), -EBADMSG);
	assert_int_equal(ipc_decrypt_decode(buf, 11, &out), -EBADMSG);
	req.data_len = IPC_MAX_SIG + 1;
	assert_int_equal(ipc_decrypt_encode(buf, sizeof(buf), &req), -EINVAL);
	req.data_len = 16;
	req.flags = 1;
	n = ipc_decrypt_encode(buf, sizeof(buf), &req);
	assert_int_equal(ipc_decrypt_decode(buf, (size_t)n, &out), -EBADMSG);
}

static void
test_reply(void **state)
{
	struct pair *p = *state;
	struct ipc_msg *m;
	struct ipc_reply rep, out;
	uint8_t sig[IPC_MAX_SIG + 1], buf[IPC_MAX_PAYLOAD];
	ssize_t n;
	int32_t st;

	memset(sig, 0x77, sizeof(sig));
	memset(&rep, 0, sizeof(rep));
	rep.data = sig;
	rep.data_len = 512;
	n = ipc_reply_encode(buf, sizeof(buf), &rep);
	assert_int_equal(n, 8 + 512);
	m = testipc_xfer(p, IPC_SIGN_REPLY, 4, buf, (size_t)n);
	assert_int_equal(ipc_reply_decode(m->payload, m->hdr.len, &out), 0);
	assert_int_equal(out.status, 0);
	assert_int_equal(out.data_len, 512);
	assert_memory_equal(out.data, sig, 512);

	/* Status only (CHANNEL_ADD_REPLY and friends). */
	rep.status = -ENOENT;
	rep.data = NULL;
	rep.data_len = 0;
	n = ipc_reply_encode(buf, sizeof(buf), &rep);
	m = testipc_xfer(p, IPC_CHANNEL_ADD_REPLY, 5, buf, (size_t)n);
	assert_int_equal(ipc_reply_decode(m->payload, m->hdr.len, &out), 0);
	assert_int_equal(out.status, -ENOENT);
	assert_null(out.data);
	m = testipc_xfer(p, IPC_DECRYPT_REPLY, 6, buf, (size_t)n);
	m = testipc_xfer(p, IPC_WORKER_CHANNEL_REPLY, 6, buf, (size_t)n);
	m = testipc_xfer(p, IPC_WORKER_REKEY_REPLY, 6, buf, (size_t)n);

	rep.status = 1;
	assert_int_equal(ipc_reply_encode(buf, sizeof(buf), &rep), -EINVAL);
	rep.status = -1;
	rep.data = sig;
	rep.data_len = 4;
	assert_int_equal(ipc_reply_encode(buf, sizeof(buf), &rep), -EINVAL);
	rep.status = 0;
	rep.data_len = IPC_MAX_SIG + 1;
	assert_int_equal(ipc_reply_encode(buf, sizeof(buf), &rep), -EINVAL);

	/* Decoder: positive status, error with data, lengths. */
	st = 1;
	memset(buf, 0, 8);
	memcpy(buf, &st, 4);
	assert_int_equal(ipc_reply_decode(buf, 8, &out), -EBADMSG);
	st = -5;
	memcpy(buf, &st, 4);
	buf[4] = 2;
	assert_int_equal(ipc_reply_decode(buf, 10, &out), -EBADMSG);
	buf[4] = 0;
	assert_int_equal(ipc_reply_decode(buf, 8, &out), 0);
	assert_int_equal(ipc_reply_decode(buf, 9, &out), -EBADMSG);
	assert_int_equal(ipc_reply_decode(buf, 7, &out), -EBADMSG);
}

static void
test_key_list(void **state)
{
	struct pair *p = *state;
	struct ipc_msg *m;
	struct ipc_key_info keys[IPC_MAX_KEYS], out[IPC_MAX_KEYS];
	uint8_t buf[IPC_MAX_PAYLOAD];
	unsigned n = 0, i;
	ssize_t len;

	memset(keys, 0, sizeof(keys));
	for (i = 0; i < 3; i++) {
		keys[i].key_id = i * 5;
		keys[i].pk_algo = 1;
		keys[i].bits = 2048;
		keys[i].nsign = 1;
		keys[i].sign_algos[0] = 6;
		snprintf(keys[i].name, sizeof(keys[i].name), "k%u", i);
	}
	len = ipc_key_list_encode(buf, sizeof(buf), keys, 3);
	assert_int_equal(len, 4 + 3 * sizeof(keys[0]));
	m = testipc_xfer(p, IPC_KEY_LIST_REPLY, 2, buf, (size_t)len);
	assert_int_equal(ipc_key_list_decode(m->payload, m->hdr.len, out,
	    IPC_MAX_KEYS, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(out, keys, 3 * sizeof(keys[0]));

	/* All the keys keyd may hold still fit in one message; no more. */
	len = ipc_key_list_encode(buf, sizeof(buf), keys, IPC_MAX_KEYS_HELD);
	assert_true(len > 0 && (size_t)len <= IPC_MAX_PAYLOAD);
	assert_int_equal(ipc_key_list_encode(buf, sizeof(buf), keys,
	    IPC_MAX_KEYS_HELD + 1), -EINVAL);
	/* Empty list. */
	len = ipc_key_list_encode(buf, sizeof(buf), NULL, 0);
	assert_int_equal(len, 4);
	assert_int_equal(ipc_key_list_decode(buf, 4, out, IPC_MAX_KEYS, &n), 0);
	assert_int_equal(n, 0);

	len = ipc_key_list_encode(buf, sizeof(buf), keys, 3);
	assert_int_equal(ipc_key_list_decode(buf, (size_t)len, out, 2, &n),
	    -EBADMSG);	/* more than the caller can hold */
	assert_int_equal(ipc_key_list_decode(buf, (size_t)len - 1, out,
	    IPC_MAX_KEYS, &n), -EBADMSG);
	assert_int_equal(ipc_key_list_decode(buf, 3, out, IPC_MAX_KEYS, &n),
	    -EBADMSG);
	assert_int_equal(ipc_key_list_encode(buf, sizeof(buf), keys,
	    IPC_MAX_KEYS + 1), -EINVAL);
	assert_int_equal(ipc_key_list_encode(buf, 10, keys, 3), -ENOSPC);
	/* An entry with an unterminated name spoils the list. */
	keys[1].name[IPC_NAME_MAX - 1] = 'x';
	memset(keys[1].name, 'x', IPC_NAME_MAX);
	len = ipc_key_list_encode(buf, sizeof(buf), keys, 3);
	assert_int_equal(ipc_key_list_decode(buf, (size_t)len, out,
	    IPC_MAX_KEYS, &n), -EBADMSG);
}

static void
test_type_names(void **state)
{
	assert_string_equal(ipc_type_name(IPC_SIGN), "SIGN");
	assert_string_equal(ipc_type_name(IPC_KEYD_STATS_REPLY),
	    "KEYD_STATS_REPLY");
	assert_string_equal(ipc_type_name(12345), "UNKNOWN");
	assert_true(ipc_type_known(IPC_WORKER_REKEY_REPLY));
	assert_true(ipc_type_known(IPC_WORKER_CERT));
	assert_true(ipc_type_known(IPC_WORKER_CERT_REPLY));
	assert_string_equal(ipc_type_name(IPC_WORKER_CERT), "WORKER_CERT");
	assert_string_equal(ipc_type_name(IPC_WORKER_CERT_REPLY),
	    "WORKER_CERT_REPLY");
	assert_false(ipc_type_known(IPC_WORKER_STOP + 1));
	assert_false(ipc_type_known(IPC_WORKER_CRED_GONE + 1));
}

/* The latency buckets: ascending bounds, each inclusive, then +Inf. */
static void
test_lat_buckets(void **state)
{
	unsigned i;

	for (i = 1; i < IPC_LAT_NBOUNDS; i++)
		assert_true(ipc_lat_bounds_us[i - 1] < ipc_lat_bounds_us[i]);
	assert_int_equal(ipc_lat_bucket(0), 0);
	for (i = 0; i < IPC_LAT_NBOUNDS; i++) {
		assert_int_equal(ipc_lat_bucket(ipc_lat_bounds_us[i]), i);
		assert_int_equal(ipc_lat_bucket(ipc_lat_bounds_us[i] + 1),
		    i + 1);
	}
	assert_int_equal(ipc_lat_bucket(UINT64_MAX), IPC_LAT_NBUCKETS - 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hello, testipc_pair_setup,
		    testipc_pair_teardown),
		cmocka_unit_test_setup_teardown(test_hello_send_order, testipc_pair_setup,
		    testipc_pair_teardown),
		cmocka_unit_test_setup_teardown(test_error, testipc_pair_setup,
		    testipc_pair_teardown),
		cmocka_unit_test_setup_teardown(test_fixed_payloads, testipc_pair_setup,
		    testipc_pair_teardown),
		cmocka_unit_test(test_fixed_rejects),
		cmocka_unit_test_setup_teardown(test_small_payloads, testipc_pair_setup,
		    testipc_pair_teardown),
		cmocka_unit_test_setup_teardown(test_worker_cert, testipc_pair_setup,
		    testipc_pair_teardown),
		cmocka_unit_test_setup_teardown(test_sign, testipc_pair_setup,
		    testipc_pair_teardown),
		cmocka_unit_test_setup_teardown(test_decrypt, testipc_pair_setup,
		    testipc_pair_teardown),
		cmocka_unit_test_setup_teardown(test_reply, testipc_pair_setup,
		    testipc_pair_teardown),
		cmocka_unit_test_setup_teardown(test_key_list, testipc_pair_setup,
		    testipc_pair_teardown),
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_lat_buckets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
