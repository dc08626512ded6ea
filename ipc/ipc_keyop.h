/*
 * ipc_keyop.h -- pure encoding and decoding of IPC payloads.
 *
 * No I/O and no allocation: every decoder takes the bytes as received and
 * either fills its output (pointers into those bytes for variable parts) or
 * returns -EBADMSG.  Every length is checked twice, the minimum first and
 * then the exact total, before anything is read.  This file is the fuzz
 * target (tests/fuzz/fuzz_ipc.c).
 */
#ifndef MOAT_IPC_KEYOP_H
#define MOAT_IPC_KEYOP_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "ipc.h"

/* Header check of a whole datagram: magic, version, known type, exact length. */
int	ipc_hdr_decode(const uint8_t *buf, size_t n, struct ipc_hdr *hdr);
int	ipc_type_known(uint16_t type);

/* Fixed-size payloads: exact size, then NUL checks on the strings. */
int	ipc_hello_decode(const uint8_t *p, size_t len, struct ipc_hello *out);
int	ipc_error_decode(const uint8_t *p, size_t len, struct ipc_error *out);
int	ipc_key_load_decode(const uint8_t *p, size_t len, struct ipc_key_load *out);
int	ipc_key_loaded_decode(const uint8_t *p, size_t len, struct ipc_key_loaded *out);
int	ipc_channel_decode(const uint8_t *p, size_t len, struct ipc_channel *out);
int	ipc_keyd_stats_decode(const uint8_t *p, size_t len, struct ipc_keyd_stats *out);
int	ipc_worker_stats_decode(const uint8_t *p, size_t len, struct ipc_worker_stats *out);
int	ipc_rekey_decode(const uint8_t *p, size_t len, struct ipc_rekey *out);
int	ipc_worker_cert_decode(const uint8_t *p, size_t len,
	    struct ipc_worker_cert *out);
int	ipc_key_info_check(const struct ipc_key_info *ki);

/* Variable payloads: encoders return bytes written or -ENOSPC / -EINVAL. */
ssize_t	ipc_sign_encode(uint8_t *buf, size_t cap, const struct ipc_sign_req *req);
int	ipc_sign_decode(const uint8_t *p, size_t len, struct ipc_sign_req *out);
ssize_t	ipc_decrypt_encode(uint8_t *buf, size_t cap, const struct ipc_decrypt_req *req);
int	ipc_decrypt_decode(const uint8_t *p, size_t len, struct ipc_decrypt_req *out);
ssize_t	ipc_reply_encode(uint8_t *buf, size_t cap, const struct ipc_reply *rep);
int	ipc_reply_decode(const uint8_t *p, size_t len, struct ipc_reply *out);
ssize_t	ipc_key_list_encode(uint8_t *buf, size_t cap,
	    const struct ipc_key_info *keys, unsigned n);
int	ipc_key_list_decode(const uint8_t *p, size_t len,
	    struct ipc_key_info *keys, unsigned max, unsigned *n);

#endif
