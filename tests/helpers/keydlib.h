/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * keydlib.h -- plumbing for test helpers that talk to a real moat-keyd:
 * spawn it with a control channel, play the master on it (hello, key
 * loads and drops, worker channels, stats) and a worker on the channels
 * it hands out (hello, sign and decrypt requests, raw datagrams, a
 * lingering socket), build TLS-shaped content, and print JSON.
 * keyd_client.c is built on it; so can be a helper that plays a
 * misbehaving worker.
 *
 * A helper has nothing to recover from: every failure goes to
 * keydlib_die(), which says how keyd ended (or kills it) and exits 2.
 * Every wait is bounded by one deadline (keydlib_deadline_set).
 */
#ifndef MOAT_KEYDLIB_H
#define MOAT_KEYDLIB_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>

#include "ipc.h"

#define KEYDLIB_MAX_EXTRA	16	/* extra moat-keyd arguments */
#define KEYDLIB_DIGESTINFO	19	/* DER DigestInfo prefix bytes */

/* A GnuTLS external key whose callbacks ask keyd, as a worker's do. */
struct keydlib_ext {
	int				fd;	/* a worker channel */
	uint32_t			key_id;
	const struct ipc_key_info	*info;	/* from its KEY_LOAD_REPLY */
	struct ipc_msg			*msg;	/* receive buffer */
};

extern const uint8_t keydlib_digestinfo_prefix[3][KEYDLIB_DIGESTINFO];

/* keydlib.c */
void	keydlib_init(const char *prog);
void	keydlib_die(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	keydlib_deadline_set(unsigned seconds);
int	keydlib_remaining_ms(void);
uint32_t keydlib_id_next(void);
const struct ipc_ends *keydlib_ends(int fd);
int	keydlib_recv_wait(int fd, struct ipc_msg *msg);
void	keydlib_expect(int fd, struct ipc_msg *msg, uint16_t type,
	    const char *what);
void	keydlib_set_nonblock(int fd);
int	keydlib_spawn(const char *path, const char *user,
	    const char *chroot_dir, const char *threads, char **extra,
	    unsigned nextra);
pid_t	keydlib_pid(void);
void	keydlib_stop(int ctl);
void	keydlib_master_hello(int ctl, struct ipc_msg *msg);
int	keydlib_key_load(int ctl, uint32_t id, const char *key,
	    const char *cert, const char *pass, uint32_t flags,
	    struct ipc_msg *msg, struct ipc_key_loaded *res);
int	keydlib_key_drop(int ctl, uint32_t id, struct ipc_msg *msg);
size_t	keydlib_sign_encode(uint8_t *buf, uint32_t key_id, uint32_t algo,
	    uint32_t form, const uint8_t *data, size_t len);
int	keydlib_channel_add(int ctl, uint32_t worker, struct ipc_msg *msg);
void	keydlib_worker_hello(int fd, struct ipc_msg *msg);
void	keydlib_stats(int ctl, struct ipc_msg *msg, struct ipc_keyd_stats *st);
int	keydlib_sign_send(int fd, uint32_t id, uint32_t key_id, uint32_t algo,
	    uint32_t form, const uint8_t *data, size_t len);
int	keydlib_roundtrip(int fd, uint16_t type, const void *payload,
	    size_t len, struct ipc_msg *msg);
unsigned keydlib_refusals_seen(void);
int	keydlib_sign_roundtrip(int fd, uint32_t key_id, uint32_t algo,
	    uint32_t form, const uint8_t *data, size_t len,
	    struct ipc_msg *msg);
int	keydlib_decrypt_roundtrip(int fd, uint32_t key_id, const uint8_t *data,
	    size_t len, struct ipc_msg *msg);
int	keydlib_closed_after(int fd, const void *buf, size_t len,
	    struct ipc_msg *msg);
int	keydlib_wait_closed(int fd, struct ipc_msg *msg);
int	keydlib_lingering_socket(int *peer, int linger_s);
int	keydlib_send_lingering(int fd, int linger_s, struct ipc_msg *msg,
	    int64_t *ms, int *reset);
int	keydlib_ext_import(gnutls_privkey_t pk, struct keydlib_ext *x);
gnutls_pubkey_t keydlib_read_pubkey(const char *cert);
size_t	keydlib_rsa_kx(gnutls_pubkey_t pub, unsigned bits, int kind,
	    uint8_t secret[48], gnutls_datum_t *ct);
void	keydlib_rnd(void *p, size_t n);
size_t	keydlib_make_cv(uint8_t *p, unsigned hash_len);
size_t	keydlib_make_ske(uint8_t *p, int p256);
void	keydlib_json_str(const char *s);
void	keydlib_json_stats(const struct ipc_keyd_stats *st);

#endif
