/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conf.h -- moat.conf as the master parsed and checked it.
 *
 * The file is INI (inih): one [moat] section and one [frontend NAME]
 * section per listener; doc/moat.conf.5 is the reference.  struct config is
 * flat (no pointers), so a worker gets it as bytes: the master writes it
 * behind a struct config_blob_hdr into a sealed memfd, and moatd --worker
 * reads it back (main.c).  keyd never sees it.
 */
#ifndef MOAT_CONF_H
#define MOAT_CONF_H

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <stdint.h>
#include <stdio.h>

#include <gnutls/gnutls.h>

#include "ipc.h"
#include "log.h"

#define CONFIG_MAX_FRONTENDS	IPC_MAX_FRONTENDS
/*
 * cert/key pairs: per frontend, and over all frontends (keyd holds two
 * generations of each at most, IPC_MAX_KEYS_HELD).
 */
#define CONFIG_MAX_CERTS	IPC_MAX_CERTS
#define CONFIG_MAX_CERTS_TOTAL	(IPC_MAX_KEYS_HELD / 2u)
#define CONFIG_MAX_LISTEN	8
#define CONFIG_NAME_MAX		IPC_NAME_MAX
#define CONFIG_PATH_MAX		IPC_PATH_MAX
#define CONFIG_PKCS11_ALLOW_MAX	8	/* = keyd's KEYD_PKCS11_MAX_ALLOW */
#define CONFIG_MAX_CONNECTIONS_DEFAULT 10000u	/* per worker, if the fd limit allows */
/*
 * First handshakes under way at once, per worker: each holds a session and,
 * while it waits for keyd, a coroutine stack (two mappings); at the cap the
 * worker stops accepting until one finishes.
 */
#define CONFIG_MAX_PENDING_HANDSHAKES_DEFAULT 2000u
/* TLS 1.2 renegotiations in flight at once, per worker (each a signature). */
#define CONFIG_REKEY_CONCURRENCY_DEFAULT 64u
#define CONFIG_REKEY_BYTES_MIN	(64u * 1024u)
#define CONFIG_BACKEND_NAME_MAX	256	/* backend-name: a DNS name, or an address */
#define CONFIG_CERT_MAX		(1024u * 1024u)	/* a certificate file larger is refused */
/*
 * Session tickets.  The lifetime bounds: GnuTLS caps its expiration at 7
 * days (gnutls_db_set_cache_expiration) and rotates its ticket keys every
 * 3 lifetimes (daemon/master/tickets.c says how), so a minute is the
 * shortest that still resumes a reconnect.  A ticket-key-file holds at
 * least 32 bytes of secret (what HKDF-SHA256 needs to give a 256-bit key)
 * and at most 4 KiB.
 */
#define CONFIG_TICKET_LIFETIME_DEFAULT	(2u * 3600u)
#define CONFIG_TICKET_LIFETIME_MIN	60u
#define CONFIG_TICKET_LIFETIME_MAX	(7u * 24u * 3600u)
#define CONFIG_TICKET_SECRET_MIN	32u
#define CONFIG_TICKET_SECRET_MAX	4096u
#define CONFIG_TICKET_KEY_SIZE		64u	/* GnuTLS's master key size */

#define MOAT_DEFAULT_PRIORITY \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:" \
	"-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:" \
	"-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:" \
	"-SIGN-RSA-SHA1:-SIGN-ECDSA-SHA1:-SIGN-RSA-SHA224:-SIGN-ECDSA-SHA224:" \
	"-SIGN-DSA-SHA1:-SIGN-DSA-SHA224:-SIGN-DSA-SHA256"

/* ALPN and the PROXY protocol (issue 10) */
#define CONFIG_ALPN_MAX		8	/* protocols in alpn = */
#define CONFIG_ALPN_LEN		32	/* each, NUL included (h2, http/1.1, ...) */
#define CONFIG_MAX_CIDR		16	/* networks in accept-proxy-from = */
#define CONFIG_PROXY_V1		0x1u	/* proxy-protocol = / accept-proxy = */
#define CONFIG_PROXY_V2		0x2u

/* A network of accept-proxy-from: the first `bits` bits of addr. */
struct config_cidr {
	int		family;		/* AF_INET or AF_INET6 */
	uint8_t		addr[16];	/* network order; the rest zero */
	unsigned	bits;
};

struct config_addr {
	struct sockaddr_storage	ss;
	socklen_t		len;
	char			text[CONFIG_PATH_MAX];	/* as written, for logs */
};

enum reneg_on {
	RENEG_KEEP	= 0,
	RENEG_CLOSE	= 1,
};

/* verify = : what a client certificate must be */
enum config_verify {
	CONFIG_VERIFY_NONE	= 0,	/* none asked for */
	CONFIG_VERIFY_OPTIONAL	= 1,	/* asked; one presented must verify */
	CONFIG_VERIFY_REQUIRED	= 2,	/* a verified one or no handshake */
};

/* profile = (conf_profile.c has the table) */
enum config_profile {
	CONFIG_PROFILE_NONE	= 0,	/* priority =, or the default */
	CONFIG_PROFILE_MODERN,
	CONFIG_PROFILE_INTERMEDIATE,
	CONFIG_PROFILE_COMPAT,
	CONFIG_PROFILE_FIPS,
};

/*
 * One cert/key pair of a frontend (SNI and several certificates, issue 10):
 * GnuTLS picks among a frontend's pairs by the client's server name, then
 * by its signature algorithms; a client without SNI, or naming no
 * certificate's name, gets certs[0].
 */
struct frontend_cert {
	char			cert[CONFIG_PATH_MAX];	/* chain, PEM */
	char			key[CONFIG_PATH_MAX];	/* read by keyd only */
	int			key_pkcs11;	/* key is a pkcs11: URI */
	int			cert_line;	/* of cert =, for messages */
	int			key_line;	/* of key =, for messages */
	/*
	 * What keyd may do with this key (IPC_KEY_F_ALLOW_*), from the
	 * frontend's priority and the certificate's key type
	 * (config_keyd_flags()); keyd-sign = content-only forbids digests.
	 */
	int			cert_pk;	/* the leaf's gnutls_pk_algorithm_t */
	unsigned		keyd_flags;
	/*
	 * The master's descriptor of the chain it checked and keyd loaded for
	 * the current generation; a worker reads its chain from it (never
	 * by path), so what it gets is what was checked.
	 */
	int			cert_fd;
	/*
	 * OCSP stapling: the DER response file (ocsp =, "" = none), read by
	 * the master only; ocsp_fd is its sealed copy of a response it found
	 * good for this certificate (-1: none to staple), read by the
	 * workers like cert_fd.  master_ocsp.c says when it is re-read.
	 */
	char			ocsp[CONFIG_PATH_MAX];
	int			ocsp_line;	/* of ocsp =, for messages */
	int			ocsp_fd;
};

struct frontend {
	unsigned		index;
	/*
	 * Bumped by the master at each certificate rotation (SIGHUP); the
	 * key of certificate c lives in keyd slot IPC_KEY_SLOT(index, c,
	 * key_generation).  Workers started later get the current value.
	 */
	unsigned		key_generation;
	char			name[CONFIG_NAME_MAX];
	int			line;		/* of the section header */
	struct config_addr	listen[CONFIG_MAX_LISTEN];
	int			listen_fd[CONFIG_MAX_LISTEN];	/* master opens */
	unsigned		nlisten;
	struct config_addr	backend;	/* AF_INET, AF_INET6 or AF_UNIX */
	/* cert/key pairs in the order written; certs[0] is the default */
	struct frontend_cert	certs[CONFIG_MAX_CERTS];
	unsigned		ncerts;
	char			key_passphrase_file[CONFIG_PATH_MAX]; /* "" = none, all keys */
	char			key_pin_file[CONFIG_PATH_MAX]; /* the token keys' PIN */
	int			key_pin_line;
	/* as configured (or MOAT_DEFAULT_PRIORITY) plus ":+RSA" or ":-RSA"
	 * by allow-rsa-kx: the final string for gnutls_priority_init2() */
	char			priority[512];
	int			allow_rsa_kx;	/* RSA key exchange: keyd decrypts */
	int			keyd_sign_content_only;
	int			keyd_sign_line;	/* of keyd-sign =, for messages */
	unsigned		handshake_timeout_ms;
	unsigned		idle_timeout_ms;
	unsigned		backend_connect_timeout_ms;
	/* renegotiation (the seed; issue "Renegotiation and key update") */
	unsigned		rekey_interval_s;	/* 0 = off */
	uint64_t		rekey_bytes;		/* 0 = off */
	int			rekey_on_cert_change;
	enum reneg_on		on_refusal;
	enum reneg_on		on_ignore;
	unsigned		rekey_timeout_ms;
	int			client_renegotiation;	/* 0 refuse, 1 allow */
	unsigned		client_renegotiation_limit; /* per minute */
	/*
	 * ALPN and the PROXY protocol: the protocols offered in ALPN, in the
	 * order written (none: no ALPN); the header written to the backend
	 * (0, CONFIG_PROXY_V1 or CONFIG_PROXY_V2); the versions accepted from
	 * a balancer in front (0 = none) and the balancers allowed to send one.
	 */
	char			alpn[CONFIG_ALPN_MAX][CONFIG_ALPN_LEN];
	unsigned		nalpn;
	unsigned		proxy_protocol;
	unsigned		accept_proxy;
	int			accept_proxy_line;	/* for messages */
	struct config_cidr	accept_proxy_from[CONFIG_MAX_CIDR];
	unsigned		naccept_proxy_from;
	/* session resumption: tickets (tls.c; the keys are the master's) */
	int			tickets;		/* 0: tickets = no */
	unsigned		ticket_lifetime_s;	/* gnutls_db_set_cache_expiration */
	/*
	 * Client certificates and named profiles (issue 10): the CAs a
	 * client certificate must chain to and the CRL that revokes some,
	 * whose sealed copies the master makes at start-up (ca_fd, crl_fd:
	 * a worker reads them like cert_fd, never by path); what is asked
	 * of a client; the named profile behind priority (conf_profile.c).
	 */
	char			ca_file[CONFIG_PATH_MAX];	/* "" = none */
	char			crl_file[CONFIG_PATH_MAX];	/* "" = none */
	int			ca_fd;
	int			crl_fd;
	enum config_verify	verify;
	int			ca_line, crl_line, verify_line;
	int			profile;	/* enum config_profile */
	int			profile_line;
	/*
	 * TLS to the backend (conf_backend.c; the worker's btls.c): the CA
	 * bundle that verifies the backend's certificate (required with
	 * backend-tls: there is no unverified mode), the name verified and
	 * sent as SNI (default: the backend's host), and the master's sealed
	 * copy of the bundle as checked, which each worker reads (never by
	 * path) like its chain.
	 */
	int			backend_tls;		/* 0: plain TCP */
	int			backend_tls_line;	/* for messages */
	char			backend_ca[CONFIG_PATH_MAX];
	char			backend_name[CONFIG_BACKEND_NAME_MAX];
	int			backend_ca_fd;		/* master's memfd, or -1 */
	/* starttls = smtp|imap|pop3 (conf_mail.c): 0, implicit TLS */
	int			starttls;		/* CONFIG_STARTTLS_* */
	int			starttls_line;		/* for messages */
};

/* starttls = (struct frontend.starttls); worker/mailproto.c speaks them */
#define CONFIG_STARTTLS_SMTP	1
#define CONFIG_STARTTLS_IMAP	2
#define CONFIG_STARTTLS_POP3	3

struct config {
	char		path[CONFIG_PATH_MAX];
	unsigned	workers;		/* resolved: auto = CPUs */
	char		user[CONFIG_NAME_MAX];
	char		keyd_user[CONFIG_NAME_MAX];
	char		control[CONFIG_PATH_MAX];
	char		chroot_dir[CONFIG_PATH_MAX];
	char		keyd_path[CONFIG_PATH_MAX];	/* moat-keyd binary */
	unsigned	keyd_threads;		/* resolved: auto = CPUs */
	unsigned	keyd_timeout_ms;	/* deadline of one key operation */
	unsigned	keyd_sign_delay_ms;	/* tests only: slow keyd down */
	unsigned	keyd_rate;		/* per worker channel, per s; 0 = auto */
	unsigned	keyd_key_rate;		/* per key, per s; 0 = auto */
	unsigned	max_connections;	/* per worker */
	unsigned	max_pending_handshakes;	/* per worker, waiting for keyd */
	unsigned	rekey_concurrency;	/* per worker, TLS 1.2 in flight */
	unsigned	drain_timeout_ms;	/* SIGTERM: wait this long */
	unsigned	ocsp_check_ms;		/* OCSP files: stat this often */
	enum log_level	log_level;
	char		ticket_key_file[CONFIG_PATH_MAX]; /* "" = a random key */
	/* the master's Prometheus listener (metrics.c); len 0: off */
	struct config_addr metrics_listen;
	/* keys on a PKCS#11 token: keyd's module, the paths it may read */
	char		pkcs11_module[CONFIG_PATH_MAX];	/* "" = none */
	char		pkcs11_allow[CONFIG_PKCS11_ALLOW_MAX][CONFIG_PATH_MAX];
	int		pkcs11_allow_write[CONFIG_PKCS11_ALLOW_MAX];
	unsigned	npkcs11_allow;
	struct frontend	frontends[CONFIG_MAX_FRONTENDS];
	unsigned	nfrontends;
	/* SHA-256 of the file's text as parsed: a reload whose text is the
	 * same rotates the files behind it (daemon/master/reload.c) */
	uint8_t		text_sha256[32];
};

#define MOAT_DEFAULT_CHROOT	"/var/lib/moat/empty"
#define MOAT_DEFAULT_USER	"moat"
#define MOAT_DEFAULT_KEYD_USER	"moat-keyd"

/*
 * What precedes struct config in the memfd a worker reads its config from.
 * The worker is this very binary (/proc/self/exe), so the layout matches;
 * the check is against a descriptor that is not what we think it is.
 */
#define CONFIG_BLOB_MAGIC	0x4d434647u	/* "MCFG" */
#define CONFIG_BLOB_VERSION	4u

struct config_blob_hdr {
	uint32_t	magic;		/* CONFIG_BLOB_MAGIC */
	uint32_t	version;	/* CONFIG_BLOB_VERSION */
	uint64_t	size;		/* sizeof(struct config) that follows */
};

/*
 * After struct config in the same memfd: each frontend's session-ticket
 * master key (daemon/master/tickets.c derives them, tls.c uses them).
 * Secret: every copy is wiped once used.
 */
struct config_tickets {
	uint8_t		key[CONFIG_MAX_FRONTENDS][CONFIG_TICKET_KEY_SIZE];
};

struct privdrop;

/*
 * What the parser asks of the system about the names a config holds:
 * users, secret files, certificate chains, executables, backend host
 * names.  config_load() uses config_sys_real (privdrop_lookup(), the checks
 * of conf_check.c, access(X_OK), getaddrinfo()); a parse given others
 * touches no file, user database or network (tests/fuzz/fuzz_conf.c).
 * Each returns 0 or -errno; the file checks say why without the path.
 */
struct config_sys {
	int	(*user)(const char *name, struct privdrop *out);
	int	(*secret_file)(const char *path, char *why, size_t whylen);
	int	(*cert_file)(const char *path, int *pk, char *why,
		    size_t whylen);
	int	(*executable)(const char *path);
	int	(*resolve)(const char *text, struct config_addr *out);
};

/* conf_load.c */
extern const struct config_sys config_sys_real;
/* Parse and check FILE; on error print "FILE:LINE: reason" to err. */
int	config_load(const char *path, struct config *cfg, char *err, size_t errlen);
/* The same, of the text fp reads, named `name` in messages. */
int	config_load_stream(FILE *fp, const char *name,
	    const struct config_sys *sys, struct config *cfg, char *err,
	    size_t errlen);
const struct frontend *config_frontend_by_name(const struct config *cfg,
	    const char *name);

/* conf_check.c */
/* moatd -t only: load each key in this process and match it to its cert. */
int	config_check_keys(const struct config *cfg, FILE *warnings, char *err,
	    size_t errlen);
/* Start-up and certificate rotation: 0, or -errno and why (no path). */
int	config_check_secret_file(const char *path, char *why, size_t whylen);
int	config_check_cert_file(const char *path, int *pk, char *why,
	    size_t whylen);
/* A PSK key exchange in prio: tickets could resume without (EC)DHE. */
int	config_priority_plain_psk(gnutls_priority_t prio);
/* The ticket-key-file's secret (the master, and moatd -t); wipe *out. */
int	config_ticket_secret_read(const char *path, gnutls_datum_t *out,
	    char *why, size_t whylen);

/* conf_cert.c */
int	config_cert_read(int fd, gnutls_datum_t *out);
int	config_cert_snapshot(int fd, int *memfd, int *pk, char *why,
	    size_t whylen);
int	config_keyd_flags(const struct frontend *fe, int cert_pk,
	    unsigned *flags, char *why, size_t whylen);

/* conf_profile.c */
/* The profile called name (CONFIG_PROFILE_*), or -1. */
int	config_profile_find(const char *name);
const char *config_profile_name(int profile);
const char *config_profile_priority(int profile);
/* A fips profile's final priority: only approved algorithms in it. */
int	config_profile_fips_check(const char *priority, char *why,
	    size_t whylen);
/* "GnuTLS FIPS 140 mode: ..." for the start-up log and moatd -t */
const char *config_fips_mode_text(void);

/* conf_mtls.c */
/*
 * Start-up and moatd -t: the ca-file and crl-file of every frontend read,
 * checked, and (keep) sealed into fe->ca_fd / fe->crl_fd; a fips
 * frontend's certificate key checked.  0, or -1 with "FILE:LINE: why".
 */
int	config_mtls_open(struct config *cfg, int keep, char *err,
	    size_t errlen);

/* conf_value.c */
int	config_addr_parse(const char *text, int allow_unix, struct config_addr *out);

#endif
