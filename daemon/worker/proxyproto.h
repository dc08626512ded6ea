/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * proxyproto.h -- the PROXY protocol header, v1 (text) and v2 (binary,
 * with TLVs), as HAProxy's doc/proxy-protocol.txt defines it: pure
 * encoders and a parser (proxyproto.c), no I/O.  The worker writes one to
 * the backend (proxy-protocol =) and reads one from a balancer in front
 * (accept-proxy =); the fuzz target and the unit tests drive both ways.
 */
#ifndef MOAT_PROXYPROTO_H
#define MOAT_PROXYPROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PP_V1_MAX	107	/* the spec's longest v1 line, CRLF included */
#define PP_V2_FIXED	16	/* signature, ver/cmd, family, length */
/*
 * The longest header accepted from a balancer: the spec allows 16 + 65535
 * bytes, but the addresses and the TLVs a balancer sends fit easily in
 * this, and it bounds the peek buffer on the stack.
 */
#define PP_IN_MAX	2048
#define PP_OUT_MAX	1024	/* the longest header we write (all TLVs) */

/* Which versions a reader accepts (accept-proxy =). */
#define PP_ACCEPT_V1	0x1u
#define PP_ACCEPT_V2	0x2u

/* v2 TLV types (spec 2.2) */
#define PP2_TYPE_ALPN		0x01
#define PP2_TYPE_AUTHORITY	0x02
#define PP2_TYPE_CRC32C		0x03
#define PP2_TYPE_NOOP		0x04
#define PP2_TYPE_UNIQUE_ID	0x05
#define PP2_TYPE_SSL		0x20
#define PP2_SUBTYPE_SSL_VERSION	0x21
#define PP2_SUBTYPE_SSL_CN	0x22
#define PP2_SUBTYPE_SSL_CIPHER	0x23
#define PP2_CLIENT_SSL		0x01
#define PP2_CLIENT_CERT_CONN	0x02
#define PP2_CLIENT_CERT_SESS	0x04
#define PP2_UNIQUE_ID_MAX	128	/* spec 2.2.4 */

/* The connection's two ends; family AF_UNSPEC = unknown (v1 UNKNOWN). */
struct pp_addr {
	int		family;		/* AF_INET, AF_INET6 or AF_UNSPEC */
	uint8_t		src[16];	/* network order, 4 bytes for AF_INET */
	uint8_t		dst[16];
	uint16_t	sport;		/* host order */
	uint16_t	dport;
};

/* A byte string: a TLV's value, or absent (p == NULL). */
struct pp_str {
	const uint8_t	*p;
	size_t		len;
};

/*
 * What a v2 header carries besides the addresses.  The encoder writes
 * each present TLV; the parser points into its input.  ssl: the SSL TLV
 * is there, with client (PP2_CLIENT_*) and verify (0 only when a client
 * certificate was presented and verified: spec 2.2.5).
 */
struct pp_tlvs {
	struct pp_str	alpn;
	struct pp_str	authority;
	struct pp_str	unique_id;
	int		ssl;
	uint8_t		ssl_client;
	uint32_t	ssl_verify;
	struct pp_str	ssl_version;
	struct pp_str	ssl_cipher;
	struct pp_str	ssl_cn;		/* a client certificate's CN, when one is verified */
};

/* A parsed header. */
struct pp_header {
	int		version;	/* 1 or 2 */
	int		local;		/* LOCAL / UNKNOWN: keep the real peer */
	struct pp_addr	addr;
	struct pp_tlvs	tlvs;		/* v2 only; all absent for v1 */
};

/* proxyproto.c */
ssize_t	proxyproto_v1_encode(const struct pp_addr *a, char *buf, size_t cap);
ssize_t	proxyproto_v2_encode(const struct pp_addr *a, const struct pp_tlvs *t,
	    uint8_t *buf, size_t cap);
ssize_t	proxyproto_parse(const uint8_t *buf, size_t len, unsigned accept,
	    struct pp_header *out);

#endif
