/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_ipc.c -- libFuzzer target for the IPC codec: the header check and
 * every payload decoder (ipc/ipc_codec.c), plus the framing (ipc_recv over
 * a real socketpair).  An input is a whole datagram; if its header checks
 * out, the payload goes to the decoders of every type, otherwise the raw
 * bytes do.  Whatever decodes must encode back to the same bytes.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t	fuzz_buf[IPC_MAX_PAYLOAD];

/* Decode as every payload type; re-encode the variable ones and compare. */
static void
fuzz_decode_all(const uint8_t *p, size_t len)
{
	struct ipc_hello hello;
	struct ipc_error err;
	struct ipc_key_load kl;
	struct ipc_key_loaded kld;
	struct ipc_channel ch;
	struct ipc_keyd_stats ks;
	struct ipc_worker_stats ws;
	struct ipc_rekey rk;
	struct ipc_worker_cert wc;
	struct ipc_key_drop kd;
	struct ipc_backend_connect bc;
	struct ipc_worker_cred_gone cg;
	struct ipc_sign_req sr;
	struct ipc_decrypt_req dr;
	struct ipc_reply rep;
	static struct ipc_key_info keys[IPC_MAX_KEYS];
	unsigned n;
	ssize_t w;

	(void)ipc_hello_decode(p, len, &hello);
	(void)ipc_error_decode(p, len, &err);
	(void)ipc_key_load_decode(p, len, &kl);
	(void)ipc_key_loaded_decode(p, len, &kld);
	(void)ipc_channel_decode(p, len, &ch);
	(void)ipc_keyd_stats_decode(p, len, &ks);
	(void)ipc_worker_stats_decode(p, len, &ws);
	(void)ipc_rekey_decode(p, len, &rk);
	/* Decoded indices are always in range. */
	if (ipc_key_drop_decode(p, len, &kd) == 0 && kd.key_id >= IPC_MAX_KEYS)
		abort();
	if (ipc_backend_connect_decode(p, len, &bc) == 0 &&
	    bc.frontend >= IPC_KEY_SLOTS_PER_GEN)
		abort();
	if (ipc_worker_cred_gone_decode(p, len, &cg) == 0 &&
	    cg.frontend >= IPC_KEY_SLOTS_PER_GEN)
		abort();
	/* A decoded rotation names a real slot of a real frontend. */
	if (ipc_worker_cert_decode(p, len, &wc) == 0 &&
	    (wc.frontend >= IPC_KEY_SLOTS_PER_GEN ||
	    wc.key_id != IPC_KEY_SLOT(wc.frontend, 0, wc.generation)))
		abort();

	if (ipc_sign_decode(p, len, &sr) == 0) {
		if (sr.data < p || sr.data + sr.data_len > p + len)
			abort();
		w = ipc_sign_encode(fuzz_buf, sizeof(fuzz_buf), &sr);
		if (w < 0 || (size_t)w != len || memcmp(fuzz_buf, p, len) != 0)
			abort();
	}
	if (ipc_decrypt_decode(p, len, &dr) == 0) {
		w = ipc_decrypt_encode(fuzz_buf, sizeof(fuzz_buf), &dr);
		if (w < 0 || (size_t)w != len || memcmp(fuzz_buf, p, len) != 0)
			abort();
	}
	if (ipc_reply_decode(p, len, &rep) == 0) {
		w = ipc_reply_encode(fuzz_buf, sizeof(fuzz_buf), &rep);
		if (w < 0 || (size_t)w != len || memcmp(fuzz_buf, p, len) != 0)
			abort();
	}
	if (ipc_key_list_decode(p, len, keys, IPC_MAX_KEYS, &n) == 0) {
		if (n > IPC_MAX_KEYS)
			abort();
		w = ipc_key_list_encode(fuzz_buf, sizeof(fuzz_buf), keys, n);
		if (w < 0 || (size_t)w != len || memcmp(fuzz_buf, p, len) != 0)
			abort();
	}
}

/* Some channel on which the table lets `type` travel; 0 if there is none. */
static int
fuzz_ends_for(uint16_t type, struct ipc_ends *ends)
{
	static const enum ipc_role roles[] = {
		IPC_ROLE_MASTER, IPC_ROLE_WORKER, IPC_ROLE_KEYD
	};
	unsigned i, j;

	for (i = 0; i < 3; i++)
		for (j = 0; j < 3; j++)
			if (ipc_permit(type, roles[i], roles[j], 0) == 0) {
				ends->peer = roles[i];
				ends->self = roles[j];
				return 1;
			}
	return 0;
}

/* The same bytes as a datagram through ipc_recv(), which must agree. */
static void
fuzz_framing(const uint8_t *data, size_t size, int hdr_ok)
{
	static int sv[2] = { -1, -1 };
	static struct ipc_msg msg;
	struct ipc_ends ends = { IPC_ROLE_KEYD, IPC_ROLE_WORKER };
	struct ipc_hdr hdr;
	int r, permitted = 0;

	if (size == 0 || size > IPC_MAX_MSG + 64)
		return;
	if (sv[0] < 0 && ipc_socketpair(sv) < 0)
		return;
	if (send(sv[0], data, size, MSG_DONTWAIT) != (ssize_t)size)
		return;
	/* Receive as a process this type may go to, from a peer that may send it. */
	if (hdr_ok && ipc_hdr_decode(data, size, &hdr) == 0)
		permitted = fuzz_ends_for(hdr.type, &ends);
	r = ipc_recv(sv[1], &ends, &msg);
	if (size > IPC_MAX_MSG) {
		if (r != -EMSGSIZE)
			abort();
		return;
	}
	if ((r == 1) != (hdr_ok && permitted))
		abort();
	if (r == 1 && (msg.nfds != 0 || msg.hdr.len != size - sizeof(msg.hdr)))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipc_hdr hdr;
	int ok;

	ok = ipc_hdr_decode(data, size, &hdr) == 0;
	/* A header that checks out promises no fds here, so nfds must be 0. */
	fuzz_framing(data, size, ok && hdr.nfds == 0);
	if (ok) {
		if (hdr.len != size - sizeof(hdr) || hdr.len > IPC_MAX_PAYLOAD ||
		    !ipc_type_known(hdr.type))
			abort();
		fuzz_decode_all(data + sizeof(hdr), hdr.len);
	} else {
		fuzz_decode_all(data, size);
	}
	return 0;
}
