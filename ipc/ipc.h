/*
 * ipc.h -- the wire format spoken between moatd (master, workers) and
 * moat-keyd, and the framing that carries it.
 *
 * Transport: AF_UNIX SOCK_SEQPACKET socketpairs made by the master, so one
 * message is one datagram and no socket path exists.  Every message is a
 * fixed struct ipc_hdr followed by hdr.len payload bytes; file descriptors
 * travel beside it with SCM_RIGHTS.  Both ends run on the same host, so the
 * integers are in host byte order, but every field is fixed-width and every
 * payload is decoded by the functions in ipc_keyop.h, never by casting.
 *
 * Requests have even types and their answers the next odd type (as OpenSSH's
 * monitor.h does).  IPC_ERROR answers any request that cannot be served.
 * Each channel starts with IPC_HELLO in both directions; a version mismatch
 * closes the channel (keyd may be older than moatd after an upgrade).
 *
 * This header includes neither libev nor GnuTLS.
 */
#ifndef MOAT_IPC_H
#define MOAT_IPC_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#define IPC_MAGIC		0x4d54u		/* "MT" */
#define IPC_VERSION		1u
#define IPC_MAX_PAYLOAD		16384u		/* hard cap, checked before use */
#define IPC_MAX_MSG		(sizeof(struct ipc_hdr) + IPC_MAX_PAYLOAD)
#define IPC_MAX_FDS		4u
#define IPC_MAX_KEYS		64u
#define IPC_MAX_SIGN_ALGOS	16u
#define IPC_NAME_MAX		64u		/* key / frontend names incl. NUL */
#define IPC_PATH_MAX		256u		/* file names for messages incl. NUL */
#define IPC_ERRMSG_MAX		256u
#define IPC_MAX_SIGN_DATA	4096u		/* largest TLS signed content we allow */
#define IPC_MAX_SIG		1024u		/* RSA-4096 signature is 512 bytes */

enum ipc_type {
	IPC_ERROR		= 1,	/* answer: struct ipc_error */

	IPC_HELLO		= 2,	/* struct ipc_hello, both directions */
	IPC_HELLO_REPLY		= 3,

	/* worker -> keyd */
	IPC_KEY_LIST		= 4,	/* no payload */
	IPC_KEY_LIST_REPLY	= 5,	/* count + struct ipc_key_info[] */
	IPC_SIGN		= 6,	/* struct ipc_sign_req */
	IPC_SIGN_REPLY		= 7,	/* struct ipc_reply: signature */
	IPC_DECRYPT		= 8,	/* struct ipc_decrypt_req */
	IPC_DECRYPT_REPLY	= 9,	/* struct ipc_reply: plaintext */

	/* master -> keyd */
	IPC_KEY_LOAD		= 20,	/* struct ipc_key_load + fds: key, cert[, pass] */
	IPC_KEY_LOAD_REPLY	= 21,	/* struct ipc_key_loaded */
	IPC_CHANNEL_ADD		= 22,	/* struct ipc_channel + fd: one worker's end */
	IPC_CHANNEL_ADD_REPLY	= 23,	/* struct ipc_reply, status only */
	IPC_KEYD_STATS		= 24,	/* no payload */
	IPC_KEYD_STATS_REPLY	= 25,	/* struct ipc_keyd_stats */

	/* master -> worker */
	IPC_WORKER_CHANNEL	= 40,	/* no payload + fd: new keyd channel */
	IPC_WORKER_CHANNEL_REPLY = 41,	/* struct ipc_reply, status only */
	IPC_WORKER_STATS	= 42,	/* no payload */
	IPC_WORKER_STATS_REPLY	= 43,	/* struct ipc_worker_stats */
	IPC_WORKER_STOP		= 44,	/* no payload: stop accepting, drain */
	IPC_WORKER_REKEY	= 46,	/* struct ipc_rekey (renegotiation issue) */
	IPC_WORKER_REKEY_REPLY	= 47,	/* struct ipc_reply: status 0 and data =
					 * uint32_t conns asked, or status < 0 */
	IPC_WORKER_CERT		= 48,	/* struct ipc_worker_cert + fd: new chain */
	IPC_WORKER_CERT_REPLY	= 49,	/* struct ipc_reply: status 0 and data =
					 * uint32_t conns asked to renegotiate */
};

/* Fixed header of every message; hdr.len payload bytes follow. */
struct ipc_hdr {
	uint16_t	magic;		/* IPC_MAGIC */
	uint8_t		version;	/* IPC_VERSION */
	uint8_t		flags;		/* 0; reserved */
	uint16_t	type;		/* enum ipc_type */
	uint16_t	nfds;		/* fds attached with SCM_RIGHTS */
	uint32_t	id;		/* request id; an answer echoes it */
	uint32_t	len;		/* payload bytes, <= IPC_MAX_PAYLOAD */
};

/* Roles, sent in the hello so a peer knows who speaks. */
enum ipc_role {
	IPC_ROLE_MASTER	= 1,
	IPC_ROLE_WORKER	= 2,
	IPC_ROLE_KEYD	= 3,
};

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
 * it hands the digest (keyd/keyop.h explains it).  The worker sends content
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

/* IPC_KEY_LOAD: the master opened the files; keyd never opens a file. */
struct ipc_key_load {
	uint32_t	key_id;
	uint32_t	flags;		/* IPC_KEY_F_* */
	char		name[IPC_NAME_MAX];	/* frontend name, for logs */
	char		key_path[IPC_PATH_MAX];	/* for error messages only */
	char		cert_path[IPC_PATH_MAX]; /* idem; "" if not given */
};
#define IPC_KEY_F_HAS_PASS	0x1u	/* third fd: passphrase file */
#define IPC_KEY_F_ALLOW_DECRYPT	0x2u	/* frontend enabled RSA key exchange */

struct ipc_key_loaded {
	int32_t		status;		/* 0 or negative error */
	struct ipc_key_info info;	/* valid when status == 0 */
	char		msg[IPC_ERRMSG_MAX];	/* why it failed, NUL-terminated */
};

struct ipc_channel {
	uint32_t	worker;		/* worker index, for stats and logs */
	uint32_t	generation;
};

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
	uint64_t	latency_us_total;	/* sum over served requests */
	uint64_t	latency_us_max;
	uint32_t	channels;	/* open worker channels */
	uint32_t	queue_depth;	/* requests received, not yet answered */
	uint32_t	threads;
	uint32_t	keys;
};

/* Counters every worker keeps; IPC_WORKER_STATS_REPLY. */
struct ipc_worker_stats {
	uint64_t	conns_open;
	uint64_t	conns_total;
	uint64_t	conns_refused_limit;
	uint64_t	handshakes_ok_tls12;
	uint64_t	handshakes_ok_tls13;
	uint64_t	handshakes_failed;
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
};

struct ipc_rekey {
	char		frontend[IPC_NAME_MAX];	/* "" = every frontend */
};

/*
 * Certificate rotation.  Each frontend owns two key slots in keyd and
 * alternates between them with every rotation, so the key a live session's
 * old certificate needs stays in keyd while new handshakes use the new one
 * (a handshake that started before the swap still finishes).  Generation 0
 * is slot = frontend index.
 */
#define IPC_KEY_SLOTS_PER_GEN	(IPC_MAX_KEYS / 2u)	/* = max frontends */
#define IPC_KEY_SLOT(frontend, generation) \
	((uint32_t)(frontend) + IPC_KEY_SLOTS_PER_GEN * ((uint32_t)(generation) & 1u))

/* IPC_WORKER_CERT: read the chain with pread() from offset 0 (fd shared). */
struct ipc_worker_cert {
	uint32_t	frontend;	/* index */
	uint32_t	key_id;		/* IPC_KEY_SLOT(frontend, generation) */
	uint32_t	generation;
};

/* A received message: header, payload in buf, fds taken over by the caller. */
struct ipc_msg {
	struct ipc_hdr	hdr;
	uint8_t		*payload;	/* points into buf */
	int		fds[IPC_MAX_FDS];
	unsigned	nfds;
	uint8_t		buf[IPC_MAX_MSG];
};

/* ipc.c */
int	ipc_send(int fd, uint16_t type, uint32_t id, const void *payload,
	    size_t len, const int *fds, unsigned nfds);
int	ipc_recv(int fd, struct ipc_msg *msg);
void	ipc_msg_close_fds(struct ipc_msg *msg);
int	ipc_socketpair(int sv[2]);
int	ipc_peer_uid(int fd, uid_t *uid, pid_t *pid);
int	ipc_hello_send(int fd, enum ipc_role role);
int	ipc_hello_check(const struct ipc_msg *msg, enum ipc_role expect);
int	ipc_error_send(int fd, uint32_t id, int code, const char *fmt, ...)
	    __attribute__((format(printf, 4, 5)));
const char *ipc_type_name(uint16_t type);

#endif
