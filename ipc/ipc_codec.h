/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ipc_codec.h -- the payloads of the IPC messages (ipc_msgs.h lists the
 * messages) and their pure encoding and decoding.
 *
 * No I/O and no allocation: every decoder takes the bytes as received and
 * either fills its output (pointers into those bytes for variable parts) or
 * returns -EBADMSG.  Every length is checked twice, the minimum first and
 * then the exact total, before anything is read.  Both ends run on the same
 * host, so integers are in host byte order, but every field is fixed-width
 * and every payload goes through a decoder here, never a cast.  This file
 * is a fuzz target (tests/fuzz/fuzz_ipc.c).
 *
 * This header includes neither libev nor GnuTLS.
 */
#ifndef MOAT_IPC_CODEC_H
#define MOAT_IPC_CODEC_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "ipc_msgs.h"

/* of the whole protocol; 4: PKCS#11 keys; 5: latency buckets, per frontend */
#define IPC_VERSION		5u
/*
 * Key slots: IPC_KEY_SLOT() below.  A slot number is below IPC_MAX_KEYS;
 * keyd holds at most IPC_MAX_KEYS_HELD keys at once (two generations of
 * every certificate the config may name), so that its whole list fits in
 * one IPC_KEY_LIST_REPLY (IPC_MAX_PAYLOAD).
 */
#define IPC_MAX_FRONTENDS	32u
#define IPC_MAX_KEYS		(2u * IPC_MAX_FRONTENDS * IPC_MAX_CERTS)
#define IPC_MAX_KEYS_HELD	96u
#define IPC_MAX_SIGN_ALGOS	16u
#define IPC_NAME_MAX		64u		/* key / frontend names incl. NUL */
#define IPC_PATH_MAX		256u		/* file names for messages incl. NUL */
#define IPC_ERRMSG_MAX		256u
#define IPC_MAX_SIGN_DATA	4096u		/* largest TLS signed content we allow */
#define IPC_MAX_SIG		1024u		/* RSA-4096 signature is 512 bytes */

struct ipc_hello {
	uint32_t	version;	/* IPC_VERSION of the sender */
	uint32_t	role;		/* enum ipc_role */
	uint32_t	pid;
};

struct ipc_error {
	int32_t		code;		/* negative errno or a GnuTLS code */
	char		msg[IPC_ERRMSG_MAX]; /* NUL-terminated (checked) */
};

/* What a worker learns about each key keyd holds (IPC_KEY_LIST_REPLY). */
struct ipc_key_info {
	uint32_t	key_id;		/* index of the frontend that owns it */
	uint32_t	pk_algo;	/* gnutls_pk_algorithm_t */
	uint32_t	bits;
	uint32_t	nsign;		/* entries used in sign_algos */
	uint32_t	sign_algos[IPC_MAX_SIGN_ALGOS]; /* gnutls_sign_algorithm_t */
	char		name[IPC_NAME_MAX];
};

/*
 * How the bytes of a sign request relate to what is signed.  GnuTLS 3.7
 * hands an external key the whole content only for EdDSA; for RSA and ECDSA
 * it hands the digest (keyd/policy.h explains it).  The worker sends content
 * whenever it has it, so keyd can check what it signs.
 */
enum ipc_sign_form {
	IPC_SIGN_CONTENT	= 1,	/* whole TLS signed content; keyd hashes */
	IPC_SIGN_DIGEST		= 2,	/* a bare digest (RSA: DigestInfo) */
};

/* IPC_SIGN, decoded (data points into the received buffer). */
struct ipc_sign_req {
	uint32_t	key_id;
	uint32_t	sign_algo;	/* gnutls_sign_algorithm_t */
	uint32_t	form;		/* enum ipc_sign_form */
	uint32_t	flags;		/* 0; reserved */
	const uint8_t	*data;
	size_t		data_len;	/* 1..IPC_MAX_SIGN_DATA */
};

/* IPC_DECRYPT, decoded. */
struct ipc_decrypt_req {
	uint32_t	key_id;
	uint32_t	flags;
	const uint8_t	*data;
	size_t		data_len;	/* 1..IPC_MAX_SIG */
};

/* Any status answer with optional bytes (sign, decrypt, channel, rekey). */
struct ipc_reply {
	int32_t		status;		/* 0 or negative error */
	const uint8_t	*data;
	size_t		data_len;
};

/*
 * IPC_KEY_LOAD: the master opened the files; keyd never opens a file.
 * fds: [key, cert(, passphrase)], or for a key on a PKCS#11 token
 * (IPC_KEY_F_PKCS11) [cert(, PIN)]; IPC_KEY_F_HAS_PASS says the last one.
 */
struct ipc_key_load {
	uint32_t	key_id;
	uint32_t	flags;		/* IPC_KEY_F_* */
	char		name[IPC_NAME_MAX];	/* frontend name, for logs */
	char		key_path[IPC_PATH_MAX];	/* for error messages only */
	char		cert_path[IPC_PATH_MAX]; /* idem; "" if not given */
};
#define IPC_KEY_F_HAS_PASS	0x1u	/* third fd: passphrase file */
#define IPC_KEY_F_ALLOW_DECRYPT	0x2u	/* frontend enabled RSA key exchange */
#define IPC_KEY_F_ALLOW_DIGEST	0x4u	/* serves TLS 1.2: bare digests signed */
#define IPC_KEY_F_ALLOW_DHE	0x8u	/* frontend enabled DHE: DH-shaped content */
#define IPC_KEY_F_PKCS11	0x10u	/* key_path is a pkcs11: URI; fds are
					   [cert(, PIN file)] */
#define IPC_KEY_F_ALL		0x1fu

struct ipc_key_loaded {
	int32_t		status;		/* 0 or negative error */
	struct ipc_key_info info;	/* valid when status == 0 */
	char		msg[IPC_ERRMSG_MAX];	/* why it failed, NUL-terminated */
};

struct ipc_channel {
	uint32_t	worker;		/* worker index, for stats and logs */
	uint32_t	generation;
};

/*
 * Latency histograms (keyd's key operations, the workers' round trips to
 * keyd): IPC_LAT_NBOUNDS fixed upper bounds in microseconds, counted per
 * bucket and not cumulatively (a bucket holds the values above the bound
 * before it), so that summing workers is adding arrays; the last bucket
 * holds what is above the largest bound (Prometheus' +Inf).  Fixed and in
 * the wire struct: the master prints "le" from the same table.
 */
#define IPC_LAT_NBOUNDS		15u
#define IPC_LAT_NBUCKETS	(IPC_LAT_NBOUNDS + 1u)

extern const uint64_t ipc_lat_bounds_us[IPC_LAT_NBOUNDS];

/* Counters keyd keeps per channel; the master sums them for moatctl stats. */
enum ipc_sign_stat {
	IPC_STAT_RSA_PKCS1 = 0,
	IPC_STAT_RSA_PSS,
	IPC_STAT_ECDSA,
	IPC_STAT_EDDSA,
	IPC_STAT_NALGOS,
};

struct ipc_keyd_stats {
	uint64_t	requests;
	uint64_t	signs[IPC_STAT_NALGOS];
	uint64_t	decrypts;
	uint64_t	refused;	/* signing policy said no */
	uint64_t	errors;		/* malformed input, failed operations */
	uint64_t	rate_limited;
	uint64_t	cancelled;	/* given up by the worker, dropped unserved */
	uint64_t	latency_us_total;	/* sum over served requests */
	uint64_t	latency_us_max;
	uint64_t	latency_buckets[IPC_LAT_NBUCKETS];	/* every request done */
	uint32_t	channels;	/* open worker channels */
	uint32_t	queue_depth;	/* requests received, not yet answered */
	uint32_t	threads;
	uint32_t	keys;
};

/*
 * The counters a worker also keeps per frontend (by index), under the
 * names of the worker-wide ones they are part of: WORKER_COUNT() in the
 * worker's state.h adds to both, so each is the sum of its frontends.
 */
struct ipc_frontend_stats {
	uint64_t	conns_total;
	uint64_t	handshakes_ok_tls12;
	uint64_t	handshakes_ok_tls13;
	uint64_t	handshakes_failed;
	uint64_t	handshakes_resumed;
	uint64_t	bytes_client_to_backend;
	uint64_t	bytes_backend_to_client;
};

/* Counters every worker keeps; IPC_WORKER_STATS_REPLY. */
struct ipc_worker_stats {
	uint64_t	conns_open;
	uint64_t	conns_total;
	uint64_t	conns_refused_limit;
	uint64_t	handshakes_ok_tls12;
	uint64_t	handshakes_ok_tls13;
	uint64_t	handshakes_failed;
	uint64_t	handshakes_resumed;	/* of the ok ones: a ticket, no keyd */
	uint64_t	bytes_client_to_backend;
	uint64_t	bytes_backend_to_client;
	uint64_t	backend_errors;
	uint64_t	keyd_requests;
	uint64_t	keyd_failures;	/* refused, timed out or channel lost */
	uint64_t	keyd_latency_us_total;
	uint64_t	keyd_latency_us_max;
	/* renegotiation (the seed); names are the moatctl contract */
	uint64_t	renegotiations_requested;
	uint64_t	renegotiations_completed;
	uint64_t	renegotiations_refused;
	uint64_t	renegotiations_ignored;
	uint64_t	key_updates;
	uint64_t	client_renegotiations_refused;
	uint64_t	client_renegotiations_allowed;
	/* gauges: what is under way right now */
	uint64_t	renegotiations_in_flight;	/* TLS 1.2, holding a slot */
	uint64_t	renegotiations_waiting;		/* for a slot */
	uint64_t	handshakes_waiting_keyd;	/* parked on a key operation */
	/* the successful keyd round trips, as keyd_latency_us_total sums */
	uint64_t	keyd_latency_buckets[IPC_LAT_NBUCKETS];
	struct ipc_frontend_stats fe[IPC_MAX_FRONTENDS];
};

struct ipc_rekey {
	char		frontend[IPC_NAME_MAX];	/* "" = every frontend */
};

/*
 * Certificate rotation.  Each certificate of each frontend owns two key
 * slots in keyd and alternates between them with every rotation of its
 * frontend (all of a frontend's certificates rotate together, as one
 * generation), so the key a live session's old certificate needs stays in
 * keyd while new handshakes use the new one (a handshake that started
 * before the swap still finishes).  Generation 0 of frontend f's
 * certificate c is slot f * IPC_MAX_CERTS + c.
 */
#define IPC_KEY_SLOTS_PER_GEN	(IPC_MAX_KEYS / 2u)
#define IPC_KEY_SLOT(frontend, cert, generation) \
	((uint32_t)(frontend) * IPC_MAX_CERTS + (uint32_t)(cert) + \
	 IPC_KEY_SLOTS_PER_GEN * ((uint32_t)(generation) & 1u))

/*
 * IPC_WORKER_CERT: one descriptor per certificate of the frontend, in the
 * config's order, then one per bit of ocsp_mask (the OCSP response to
 * staple with certificate c when bit c is set), in the same order; read
 * each with pread() from offset 0 (the fds are shared).  The current
 * generation again: new OCSP responses, the same chains and keys.
 */
struct ipc_worker_cert {
	uint32_t	frontend;	/* index */
	uint32_t	key_id;		/* IPC_KEY_SLOT(frontend, 0, generation) */
	uint32_t	generation;
	uint32_t	ocsp_mask;	/* below 1 << IPC_MAX_CERTS */
};

/* IPC_KEY_DROP: keyd forgets (and wipes) the key in that slot. */
struct ipc_key_drop {
	uint32_t	key_id;
};

/*
 * IPC_BACKEND_CONNECT: the worker asks the master to connect the
 * frontend's unix-socket backend for it; the answer (IPC_BACKEND_CONNECT_REPLY,
 * a struct ipc_reply with the same id) carries the connected socket.
 */
struct ipc_backend_connect {
	uint32_t	frontend;	/* index */
};

/*
 * IPC_WORKER_CRED_GONE: the worker's last session on that certificate
 * generation of that frontend has ended (or renegotiated away); its key
 * slot is no longer needed by this worker.
 */
struct ipc_worker_cred_gone {
	uint32_t	frontend;	/* index */
	uint32_t	generation;
};

/* ipc_codec.c */
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
int	ipc_key_drop_decode(const uint8_t *p, size_t len,
	    struct ipc_key_drop *out);
int	ipc_backend_connect_decode(const uint8_t *p, size_t len,
	    struct ipc_backend_connect *out);
int	ipc_worker_cred_gone_decode(const uint8_t *p, size_t len,
	    struct ipc_worker_cred_gone *out);
int	ipc_key_info_check(const struct ipc_key_info *ki);
unsigned ipc_lat_bucket(uint64_t us);

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
