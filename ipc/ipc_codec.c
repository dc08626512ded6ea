/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ipc_codec.c -- pure encode/decode of IPC payloads (see ipc_codec.h).
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "ipc_codec.h"

/* Fixed part of the variable payloads, as laid out on the wire. */
#define SIGN_FIXED	(5 * sizeof(uint32_t))	/* key, algo, form, flags, len */
#define DECRYPT_FIXED	(3 * sizeof(uint32_t))	/* key, flags, len */
#define REPLY_FIXED	(2 * sizeof(uint32_t))	/* status, len */
#define KEYLIST_FIXED	(sizeof(uint32_t))	/* count */

/* Both stats answers go in one message. */
_Static_assert(sizeof(struct ipc_worker_stats) <= IPC_MAX_PAYLOAD,
    "ipc_worker_stats does not fit in one message");
_Static_assert(sizeof(struct ipc_keyd_stats) <= IPC_MAX_PAYLOAD,
    "ipc_keyd_stats does not fit in one message");

/* Each is a bucket's upper bound, inclusive ("le"); ascending. */
const uint64_t ipc_lat_bounds_us[IPC_LAT_NBOUNDS] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
	250000, 500000, 1000000, 2500000, 5000000,
};

static uint32_t
get_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static void
put_u32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* A string field must hold its terminating NUL inside the field. */
static int
str_terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

/* Exact-size copy of a fixed payload. */
static int
fixed_decode(const uint8_t *p, size_t len, void *out, size_t size)
{
	if (p == NULL || len != size)
		return -EBADMSG;
	memcpy(out, p, size);
	return 0;
}

int
ipc_hello_decode(const uint8_t *p, size_t len, struct ipc_hello *out)
{
	int r;

	if ((r = fixed_decode(p, len, out, sizeof(*out))) < 0)
		return r;
	if (out->role < IPC_ROLE_MASTER || out->role > IPC_ROLE_KEYD)
		return -EBADMSG;
	return 0;
}

int
ipc_error_decode(const uint8_t *p, size_t len, struct ipc_error *out)
{
	int r;

	if ((r = fixed_decode(p, len, out, sizeof(*out))) < 0)
		return r;
	if (!str_terminated(out->msg, sizeof(out->msg)) || out->code >= 0)
		return -EBADMSG;
	return 0;
}

int
ipc_key_info_check(const struct ipc_key_info *ki)
{
	if (ki->nsign > IPC_MAX_SIGN_ALGOS || ki->bits > 16384 ||
	    ki->key_id >= IPC_MAX_KEYS)
		return -EBADMSG;
	if (!str_terminated(ki->name, sizeof(ki->name)))
		return -EBADMSG;
	return 0;
}

int
ipc_key_load_decode(const uint8_t *p, size_t len, struct ipc_key_load *out)
{
	int r;

	if ((r = fixed_decode(p, len, out, sizeof(*out))) < 0)
		return r;
	if (out->key_id >= IPC_MAX_KEYS ||
	    (out->flags & ~IPC_KEY_F_ALL) ||
	    !str_terminated(out->name, sizeof(out->name)) ||
	    !str_terminated(out->key_path, sizeof(out->key_path)) ||
	    !str_terminated(out->cert_path, sizeof(out->cert_path)))
		return -EBADMSG;
	return 0;
}

int
ipc_key_loaded_decode(const uint8_t *p, size_t len, struct ipc_key_loaded *out)
{
	int r;

	if ((r = fixed_decode(p, len, out, sizeof(*out))) < 0)
		return r;
	if (!str_terminated(out->msg, sizeof(out->msg)) || out->status > 0)
		return -EBADMSG;
	if (out->status == 0 && ipc_key_info_check(&out->info) < 0)
		return -EBADMSG;
	return 0;
}

int
ipc_channel_decode(const uint8_t *p, size_t len, struct ipc_channel *out)
{
	return fixed_decode(p, len, out, sizeof(*out));
}

int
ipc_keyd_stats_decode(const uint8_t *p, size_t len, struct ipc_keyd_stats *out)
{
	return fixed_decode(p, len, out, sizeof(*out));
}

int
ipc_worker_stats_decode(const uint8_t *p, size_t len, struct ipc_worker_stats *out)
{
	return fixed_decode(p, len, out, sizeof(*out));
}

int
ipc_rekey_decode(const uint8_t *p, size_t len, struct ipc_rekey *out)
{
	int r;

	if ((r = fixed_decode(p, len, out, sizeof(*out))) < 0)
		return r;
	if (!str_terminated(out->frontend, sizeof(out->frontend)))
		return -EBADMSG;
	return 0;
}

int
ipc_worker_cert_decode(const uint8_t *p, size_t len, struct ipc_worker_cert *out)
{
	int r;

	if ((r = fixed_decode(p, len, out, sizeof(*out))) < 0)
		return r;
	if (out->frontend >= IPC_MAX_FRONTENDS ||
	    out->key_id != IPC_KEY_SLOT(out->frontend, 0, out->generation) ||
	    out->ocsp_mask >= (1u << IPC_MAX_CERTS))
		return -EBADMSG;
	return 0;
}

int
ipc_key_drop_decode(const uint8_t *p, size_t len, struct ipc_key_drop *out)
{
	int r;

	if ((r = fixed_decode(p, len, out, sizeof(*out))) < 0)
		return r;
	return out->key_id < IPC_MAX_KEYS ? 0 : -EBADMSG;
}

int
ipc_backend_connect_decode(const uint8_t *p, size_t len,
    struct ipc_backend_connect *out)
{
	int r;

	if ((r = fixed_decode(p, len, out, sizeof(*out))) < 0)
		return r;
	return out->frontend < IPC_KEY_SLOTS_PER_GEN ? 0 : -EBADMSG;
}

int
ipc_worker_cred_gone_decode(const uint8_t *p, size_t len,
    struct ipc_worker_cred_gone *out)
{
	int r;

	if ((r = fixed_decode(p, len, out, sizeof(*out))) < 0)
		return r;
	return out->frontend < IPC_KEY_SLOTS_PER_GEN ? 0 : -EBADMSG;
}

ssize_t
ipc_sign_encode(uint8_t *buf, size_t cap, const struct ipc_sign_req *req)
{
	if (req->data_len == 0 || req->data_len > IPC_MAX_SIGN_DATA ||
	    req->data == NULL)
		return -EINVAL;
	if (cap < SIGN_FIXED + req->data_len)
		return -ENOSPC;
	put_u32(buf, req->key_id);
	put_u32(buf + 4, req->sign_algo);
	put_u32(buf + 8, req->form);
	put_u32(buf + 12, req->flags);
	put_u32(buf + 16, (uint32_t)req->data_len);
	memcpy(buf + SIGN_FIXED, req->data, req->data_len);
	return (ssize_t)(SIGN_FIXED + req->data_len);
}

int
ipc_sign_decode(const uint8_t *p, size_t len, struct ipc_sign_req *out)
{
	uint32_t dlen;

	if (p == NULL || len < SIGN_FIXED)
		return -EBADMSG;
	dlen = get_u32(p + 16);
	if (dlen == 0 || dlen > IPC_MAX_SIGN_DATA || len != SIGN_FIXED + dlen)
		return -EBADMSG;
	out->key_id = get_u32(p);
	out->sign_algo = get_u32(p + 4);
	out->form = get_u32(p + 8);
	out->flags = get_u32(p + 12);
	if (out->key_id >= IPC_MAX_KEYS || out->flags != 0 ||
	    (out->form != IPC_SIGN_CONTENT && out->form != IPC_SIGN_DIGEST))
		return -EBADMSG;
	out->data = p + SIGN_FIXED;
	out->data_len = dlen;
	return 0;
}

ssize_t
ipc_decrypt_encode(uint8_t *buf, size_t cap, const struct ipc_decrypt_req *req)
{
	if (req->data_len == 0 || req->data_len > IPC_MAX_SIG || req->data == NULL)
		return -EINVAL;
	if (cap < DECRYPT_FIXED + req->data_len)
		return -ENOSPC;
	put_u32(buf, req->key_id);
	put_u32(buf + 4, req->flags);
	put_u32(buf + 8, (uint32_t)req->data_len);
	memcpy(buf + DECRYPT_FIXED, req->data, req->data_len);
	return (ssize_t)(DECRYPT_FIXED + req->data_len);
}

int
ipc_decrypt_decode(const uint8_t *p, size_t len, struct ipc_decrypt_req *out)
{
	uint32_t dlen;

	if (p == NULL || len < DECRYPT_FIXED)
		return -EBADMSG;
	dlen = get_u32(p + 8);
	if (dlen == 0 || dlen > IPC_MAX_SIG || len != DECRYPT_FIXED + dlen)
		return -EBADMSG;
	out->key_id = get_u32(p);
	out->flags = get_u32(p + 4);
	if (out->key_id >= IPC_MAX_KEYS || out->flags != 0)
		return -EBADMSG;
	out->data = p + DECRYPT_FIXED;
	out->data_len = dlen;
	return 0;
}

ssize_t
ipc_reply_encode(uint8_t *buf, size_t cap, const struct ipc_reply *rep)
{
	if (rep->status > 0 || rep->data_len > IPC_MAX_SIG ||
	    (rep->data_len > 0 && rep->data == NULL) ||
	    (rep->status < 0 && rep->data_len > 0))
		return -EINVAL;
	if (cap < REPLY_FIXED + rep->data_len)
		return -ENOSPC;
	put_u32(buf, (uint32_t)rep->status);
	put_u32(buf + 4, (uint32_t)rep->data_len);
	if (rep->data_len > 0)
		memcpy(buf + REPLY_FIXED, rep->data, rep->data_len);
	return (ssize_t)(REPLY_FIXED + rep->data_len);
}

int
ipc_reply_decode(const uint8_t *p, size_t len, struct ipc_reply *out)
{
	uint32_t dlen;

	if (p == NULL || len < REPLY_FIXED)
		return -EBADMSG;
	dlen = get_u32(p + 4);
	if (dlen > IPC_MAX_SIG || len != REPLY_FIXED + dlen)
		return -EBADMSG;
	out->status = (int32_t)get_u32(p);
	if (out->status > 0 || (out->status < 0 && dlen > 0))
		return -EBADMSG;
	out->data = dlen > 0 ? p + REPLY_FIXED : NULL;
	out->data_len = dlen;
	return 0;
}

ssize_t
ipc_key_list_encode(uint8_t *buf, size_t cap, const struct ipc_key_info *keys,
    unsigned n)
{
	size_t need;

	if (n > IPC_MAX_KEYS_HELD || (n > 0 && keys == NULL))
		return -EINVAL;
	need = KEYLIST_FIXED + (size_t)n * sizeof(*keys);
	if (cap < need)
		return -ENOSPC;
	put_u32(buf, n);
	if (n > 0)
		memcpy(buf + KEYLIST_FIXED, keys, (size_t)n * sizeof(*keys));
	return (ssize_t)need;
}

int
ipc_key_list_decode(const uint8_t *p, size_t len, struct ipc_key_info *keys,
    unsigned max, unsigned *n)
{
	uint32_t count, i;

	if (p == NULL || len < KEYLIST_FIXED)
		return -EBADMSG;
	count = get_u32(p);
	if (count > IPC_MAX_KEYS_HELD || count > max ||
	    len != KEYLIST_FIXED + (size_t)count * sizeof(*keys))
		return -EBADMSG;
	for (i = 0; i < count; i++) {
		memcpy(&keys[i], p + KEYLIST_FIXED + i * sizeof(*keys),
		    sizeof(*keys));
		if (ipc_key_info_check(&keys[i]) < 0)
			return -EBADMSG;
	}
	*n = count;
	return 0;
}

/* The bucket of a latency of us microseconds: the first bound it is not above. */
unsigned
ipc_lat_bucket(uint64_t us)
{
	unsigned i;

	for (i = 0; i < IPC_LAT_NBOUNDS; i++)
		if (us <= ipc_lat_bounds_us[i])
			break;
	return i;
}
