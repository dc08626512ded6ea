/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pphdr.c -- a connection's PROXY headers on the wire; proxyproto.c
 * encodes and parses them.
 *
 * In (accept-proxy =).  A connection from an address of accept-proxy-from
 * must start with a PROXY header of an accepted version: it is read before
 * the handshake, and never a byte past it (the TLS bytes after it stay in
 * the socket for GnuTLS): the input is peeked, and only what the parser
 * says is header is taken.  A header cut short is taken as far as it goes
 * (every byte of it is header) and kept in c->ppin, so a level-triggered
 * watcher never spins on bytes left in the socket.  Its addresses replace
 * the socket's in the log line and the backend's header; a LOCAL (or v1
 * UNKNOWN) header keeps the socket's.  From any other address a header is
 * refused, and a connection that starts with TLS is served as it is.
 *
 * Out (proxy-protocol =).  The header is put at the front of c2b when
 * proxying starts, before any byte of the client's, so the pump writes it
 * with its partial writes and back-pressure like any other byte.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "conf.h"
#include "log.h"
#include "reason.h"
#include "sock.h"
#include "state.h"
#include "tls.h"
#include "pphdr.h"

_Static_assert(CONFIG_PROXY_V1 == PP_ACCEPT_V1 &&
    CONFIG_PROXY_V2 == PP_ACCEPT_V2, "accept-proxy bits are the parser's");

/* A socket address into a pp_addr side; IPv4-mapped IPv6 as IPv4. */
static int
pphdr_side(const struct sockaddr *sa, socklen_t salen, uint8_t *ip,
    uint16_t *port)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;

	if (sa->sa_family == AF_INET && salen >= (socklen_t)sizeof(*sin)) {
		sin = (const struct sockaddr_in *)(const void *)sa;
		memcpy(ip, &sin->sin_addr, 4);
		*port = ntohs(sin->sin_port);
		return AF_INET;
	}
	if (sa->sa_family == AF_INET6 && salen >= (socklen_t)sizeof(*sin6)) {
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		*port = ntohs(sin6->sin6_port);
		if (memcmp(&sin6->sin6_addr, mapped, sizeof(mapped)) == 0) {
			memcpy(ip, (const uint8_t *)&sin6->sin6_addr + 12, 4);
			return AF_INET;
		}
		memcpy(ip, &sin6->sin6_addr, 16);
		return AF_INET6;
	}
	return AF_UNSPEC;
}

/* At accept: the two ends of the socket, and the connection's unique id. */
void
pphdr_init(struct conn *c, const struct sockaddr *sa, socklen_t salen)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	int fs, fd = AF_UNSPEC;

	memset(&c->addr, 0, sizeof(c->addr));
	memset(&ss, 0, sizeof(ss));	/* what getsockname() leaves is zero */
	fs = pphdr_side(sa, salen, c->addr.src, &c->addr.sport);
	/* the address the client reached: only the backend's header needs it */
	if (c->wf->fe->proxy_protocol != 0 &&
	    getsockname(c->cfd, (struct sockaddr *)&ss, &sslen) == 0)
		fd = pphdr_side((struct sockaddr *)&ss, sslen, c->addr.dst,
		    &c->addr.dport);
	c->addr.family = fs == fd ? fs : AF_UNSPEC;
	/* unique among connections, not a secret: a nonce is enough */
	if (gnutls_rnd(GNUTLS_RND_NONCE, c->uid, sizeof(c->uid)) < 0)
		memset(c->uid, 0, sizeof(c->uid));
}

void
pphdr_uid_hex(const struct conn *c, char *out, size_t size)
{
	size_t i;

	if (size == 0)
		return;
	out[0] = '\0';
	for (i = 0; i < sizeof(c->uid) && 2 * i + 2 < size; i++)
		snprintf(out + 2 * i, 3, "%02x", c->uid[i]);
}

/* Is the socket's peer one of accept-proxy-from? */
static int
pphdr_allowed(const struct conn *c)
{
	const struct frontend *fe = c->wf->fe;
	const struct config_cidr *n;
	unsigned i, full, rest;

	for (i = 0; i < fe->naccept_proxy_from; i++) {
		n = &fe->accept_proxy_from[i];
		if (n->family != c->addr.family)
			continue;
		full = n->bits / 8;
		rest = n->bits % 8;
		if (memcmp(n->addr, c->addr.src, full) != 0)
			continue;
		if (rest != 0 && ((n->addr[full] ^ c->addr.src[full]) &
		    (0xffu << (8 - rest)) & 0xffu) != 0)
			continue;
		return 1;
	}
	return 0;
}

/* The header's addresses are the connection's from now on. */
static void
pphdr_apply(struct conn *c, const struct pp_header *h)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	char was[sizeof(c->peer)];

	if (h->local)
		return;		/* the balancer's own connection */
	memcpy(was, c->peer, sizeof(was));
	c->addr = h->addr;
	memset(&ss, 0, sizeof(ss));
	if (h->addr.family == AF_INET) {
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, h->addr.src, 4);
		sin->sin_port = htons(h->addr.sport);
		sock_peer_name(c->peer, sizeof(c->peer),
		    (struct sockaddr *)sin, sizeof(*sin));
	} else {
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, h->addr.src, 16);
		sin6->sin6_port = htons(h->addr.sport);
		sock_peer_name(c->peer, sizeof(c->peer),
		    (struct sockaddr *)sin6, sizeof(*sin6));
	}
	log_debug("%s: %s: PROXY v%d header from %s", __func__, c->peer,
	    h->version, was);
}

/* The input's end or error while a header is due. */
static enum pphdr_verdict
pphdr_recv_failed(struct conn *c, ssize_t n)
{
	if (n == 0) {
		reason_set(&c->why, "client closed before the PROXY header");
		return PPHDR_FAILED;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return PPHDR_WAIT;
	reason_set(&c->why, "client error before the PROXY header: %s",
	    strerror(errno));
	return PPHDR_FAILED;
}

/* Take exactly n more bytes of the header out of the socket. */
static int
pphdr_take(struct conn *c, uint8_t *to, size_t n)
{
	ssize_t r = recv(c->cfd, to, n, 0);

	if (r < 0 || (size_t)r != n) {
		/* what was peeked is there; anything else is the kernel's */
		reason_set(&c->why, "client error reading the PROXY header");
		return -EIO;
	}
	return 0;
}

/*
 * Read the balancer's header (the client fd is readable, or the
 * connection begins).  See the top of the file.
 */
enum pphdr_verdict
pphdr_in(struct conn *c)
{
	uint8_t buf[PP_IN_MAX];
	struct pp_header h;
	size_t have = c->ppin_len;
	ssize_t n, r;
	int allowed = pphdr_allowed(c);

	if (have > 0)
		memcpy(buf, c->ppin, have);
	n = recv(c->cfd, buf + have, sizeof(buf) - have, MSG_PEEK);
	if (n <= 0)
		return pphdr_recv_failed(c, n);
	r = proxyproto_parse(buf, have + (size_t)n,
	    allowed ? c->wf->fe->accept_proxy : PP_ACCEPT_V1 | PP_ACCEPT_V2,
	    &h);
	if (!allowed) {
		if (r == -EBADMSG)
			return PPHDR_DONE;	/* no header: a client's TLS */
		reason_set(&c->why, "PROXY header from a non-allowed address");
		return PPHDR_FAILED;
	}
	if (r == -EMSGSIZE) {
		reason_set(&c->why, "PROXY header too long (at most %u bytes)",
		    PP_IN_MAX);
		return PPHDR_FAILED;
	}
	if (r < 0) {
		reason_set(&c->why, "PROXY header missing or malformed");
		return PPHDR_FAILED;
	}
	if (r == 0) {
		/* all of it is header so far: take it, wait for the rest */
		if (c->ppin == NULL && (c->ppin = malloc(PP_IN_MAX)) == NULL) {
			reason_set(&c->why, "out of memory");
			return PPHDR_FAILED;
		}
		if (pphdr_take(c, c->ppin + have, (size_t)n) < 0)
			return PPHDR_FAILED;
		c->ppin_len += (size_t)n;
		return PPHDR_WAIT;
	}
	if ((size_t)r < have || pphdr_take(c, buf + have, (size_t)r - have) < 0)
		return PPHDR_FAILED;
	pphdr_free(c);
	pphdr_apply(c, &h);
	return PPHDR_DONE;
}

void
pphdr_free(struct conn *c)
{
	free(c->ppin);
	c->ppin = NULL;
	c->ppin_len = 0;
}

static struct pp_str
pphdr_str(const char *s)
{
	struct pp_str r = { NULL, 0 };

	if (s != NULL && s[0] != '\0' && strcmp(s, "-") != 0) {
		r.p = (const uint8_t *)s;
		r.len = strlen(s);
	}
	return r;
}

/*
 * The backend's header into buf (at least PP_OUT_MAX bytes): its length,
 * 0 without proxy-protocol, or -errno.  The SSL TLV's client flags and verify say whether a client
 * certificate was presented and verified (verify 0 only then, spec
 * 2.2.5), and SSL_CN carries its CN.
 */
ssize_t
pphdr_encode(struct conn *c, uint8_t *buf, size_t size)
{
	const struct frontend *fe = c->wf->fe;
	struct pp_tlvs t;
	char ver[16];
	const char *v;

	if (fe->proxy_protocol == 0)
		return 0;
	if (size < PP_OUT_MAX)
		return -EINVAL;
	if (fe->proxy_protocol == CONFIG_PROXY_V1)
		return proxyproto_v1_encode(&c->addr, (char *)buf,
		    PP_V1_MAX + 1);
	memset(&t, 0, sizeof(t));
	t.alpn = pphdr_str(c->alpn);
	t.authority = pphdr_str(c->sni);
	t.unique_id.p = c->uid;
	t.unique_id.len = sizeof(c->uid);
	t.ssl = 1;
	/* verify is 0 only for a certificate presented and verified */
	t.ssl_client = (uint8_t)(PP2_CLIENT_SSL | c->cert_flags);
	t.ssl_verify = c->cert_verified ? 0 : 1;
	/*
	 * A STARTTLS frontend's header goes out before the upgrade, which
	 * starttls-required makes the only way on (mail.c): it says TLS, but
	 * no version, cipher or client certificate yet.
	 */
	if (c->t_handshake > 0) {
		/* "TLS1.3" as OpenSSL names it, "TLSv1.3", as backends expect */
		v = tls_version_name(c);
		if (strncmp(v, "TLS", 3) == 0 && v[3] != 'v')
			snprintf(ver, sizeof(ver), "TLSv%s", v + 3);
		else
			snprintf(ver, sizeof(ver), "%s", v);
		t.ssl_version = pphdr_str(ver);
		t.ssl_cipher = pphdr_str(tls_cipher_name(c));
		t.ssl_cn = pphdr_str(c->cn);	/* mtls.c */
	}
	return proxyproto_v2_encode(&c->addr, &t, buf, PP_OUT_MAX);
}

/* The header, as the first bytes of c2b (proxying starts). */
int
pphdr_out(struct conn *c)
{
	ssize_t n;

	if (c->upgraded)
		return 0;	/* STARTTLS: it went before the dialogue (mail.c) */
	if (c->c2b.tail != 0 || CONN_BUF_SIZE < PP_OUT_MAX)
		return -EINVAL;
	if ((n = pphdr_encode(c, c->c2b.data, CONN_BUF_SIZE)) < 0)
		return (int)n;
	c->c2b.head = 0;
	c->c2b.tail = (size_t)n;
	return 0;
}
