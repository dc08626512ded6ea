/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * proxyproto.c -- the PROXY protocol header (HAProxy's
 * doc/proxy-protocol.txt), encoded and parsed without I/O.  Every length
 * is checked before the bytes it covers are read or written: the capacity
 * of the output, the v1 line's 107 bytes, the v2 length field against
 * what is there, each TLV against what is left of its parent.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proxyproto.h"

static const uint8_t pp2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
};
static const char pp1_sig[] = "PROXY ";

#define PP2_VER		0x20
#define PP2_CMD_LOCAL	0x00
#define PP2_CMD_PROXY	0x01
#define PP2_FAM_UNSPEC	0x00
#define PP2_FAM_TCP4	0x11
#define PP2_FAM_TCP6	0x21
#define PP2_ADDR4_LEN	12
#define PP2_ADDR6_LEN	36
#define PP2_SSL_FIXED	5	/* client, verify */

/* --- v1 ------------------------------------------------------------------- */

/*
 * "PROXY TCP4 src dst sport dport\r\n", or "PROXY UNKNOWN\r\n" when the
 * family is neither IPv4 nor IPv6.  Returns the length, or -ENOSPC.
 */
ssize_t
proxyproto_v1_encode(const struct pp_addr *a, char *buf, size_t cap)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	int n;

	if (a->family != AF_INET && a->family != AF_INET6)
		n = snprintf(buf, cap, "PROXY UNKNOWN\r\n");
	else {
		if (inet_ntop(a->family, a->src, s, sizeof(s)) == NULL ||
		    inet_ntop(a->family, a->dst, d, sizeof(d)) == NULL)
			return -EINVAL;
		n = snprintf(buf, cap, "PROXY %s %s %s %u %u\r\n",
		    a->family == AF_INET ? "TCP4" : "TCP6", s, d,
		    (unsigned)a->sport, (unsigned)a->dport);
	}
	if (n < 0 || (size_t)n >= cap || n > PP_V1_MAX)
		return -ENOSPC;
	return n;
}

/* A port: 1 to 5 digits, no leading zero but "0" itself, at most 65535. */
static int
pp1_port(const char *s, size_t len, uint16_t *out)
{
	unsigned long v = 0;
	size_t i;

	if (len == 0 || len > 5 || (s[0] == '0' && len > 1))
		return -EBADMSG;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EBADMSG;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -EBADMSG;
	*out = (uint16_t)v;
	return 0;
}

/* An address of the family, copied out of the line to be NUL-terminated. */
static int
pp1_addr(int family, const char *s, size_t len, uint8_t *out)
{
	char tmp[INET6_ADDRSTRLEN];

	if (len == 0 || len >= sizeof(tmp))
		return -EBADMSG;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	return inet_pton(family, tmp, out) == 1 ? 0 : -EBADMSG;
}

/* The v1 line buf[0..len) (CRLF excluded), after "PROXY ". */
static int
pp1_fields(const char *p, size_t len, struct pp_header *out)
{
	const char *f[4];
	size_t flen[4], i, at;
	int family;

	if (len >= 7 && memcmp(p, "UNKNOWN", 7) == 0) {
		/* the rest of an UNKNOWN line is ignored (spec 2.1) */
		out->local = 1;
		out->addr.family = AF_UNSPEC;
		return 0;
	}
	if (len < 5 || (memcmp(p, "TCP4 ", 5) != 0 && memcmp(p, "TCP6 ", 5) != 0))
		return -EBADMSG;
	family = p[3] == '4' ? AF_INET : AF_INET6;
	at = 5;
	for (i = 0; i < 4; i++) {
		f[i] = p + at;
		while (at < len && p[at] != ' ')
			at++;
		flen[i] = (size_t)(p + at - f[i]);
		if (i < 3) {
			if (at >= len)
				return -EBADMSG;	/* a field is missing */
			at++;			/* exactly one space */
		}
	}
	if (at != len)
		return -EBADMSG;
	out->addr.family = family;
	if (pp1_addr(family, f[0], flen[0], out->addr.src) < 0 ||
	    pp1_addr(family, f[1], flen[1], out->addr.dst) < 0 ||
	    pp1_port(f[2], flen[2], &out->addr.sport) < 0 ||
	    pp1_port(f[3], flen[3], &out->addr.dport) < 0)
		return -EBADMSG;
	return 0;
}

static ssize_t
pp1_parse(const uint8_t *buf, size_t len, struct pp_header *out)
{
	size_t i, lim = len < PP_V1_MAX ? len : PP_V1_MAX;

	for (i = 0; i < lim; i++) {
		if (buf[i] == '\r')
			break;
		if (buf[i] == '\n' || buf[i] == '\0')
			return -EBADMSG;	/* no line of the spec's */
	}
	if (i + 1 >= lim)	/* no CR, or nothing after it yet */
		return len >= PP_V1_MAX ? -EMSGSIZE : 0;
	if (buf[i + 1] != '\n')
		return -EBADMSG;
	out->version = 1;
	if (pp1_fields((const char *)buf + 6, i - 6, out) < 0)
		return -EBADMSG;
	return (ssize_t)(i + 2);
}

/* --- v2 ------------------------------------------------------------------- */

/* Appends to a bounded buffer; a write past cap only marks it full. */
struct pp_out {
	uint8_t		*p;
	size_t		cap;
	size_t		len;
	int		full;
};

static void
pp_put(struct pp_out *o, const void *data, size_t n)
{
	if (o->full || n > o->cap - o->len) {
		o->full = 1;
		return;
	}
	memcpy(o->p + o->len, data, n);
	o->len += n;
}

static void
pp_put16(struct pp_out *o, size_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	pp_put(o, b, 2);
}

static void
pp_tlv(struct pp_out *o, uint8_t type, const struct pp_str *s)
{
	if (s->p == NULL)
		return;
	if (s->len > 0xffff) {
		o->full = 1;
		return;
	}
	pp_put(o, &type, 1);
	pp_put16(o, s->len);
	pp_put(o, s->p, s->len);
}

/* The SSL TLV: client, verify, then its sub-TLVs (spec 2.2.5). */
static void
pp_tlv_ssl(struct pp_out *o, const struct pp_tlvs *t)
{
	uint8_t type = PP2_TYPE_SSL, v[PP2_SSL_FIXED];
	size_t at;

	if (!t->ssl)
		return;
	pp_put(o, &type, 1);
	at = o->len;
	pp_put16(o, 0);		/* the length, set below */
	v[0] = t->ssl_client;
	v[1] = (uint8_t)(t->ssl_verify >> 24);
	v[2] = (uint8_t)(t->ssl_verify >> 16);
	v[3] = (uint8_t)(t->ssl_verify >> 8);
	v[4] = (uint8_t)t->ssl_verify;
	pp_put(o, v, sizeof(v));
	pp_tlv(o, PP2_SUBTYPE_SSL_VERSION, &t->ssl_version);
	/* the client certificate's CN: set once client certificates land */
	pp_tlv(o, PP2_SUBTYPE_SSL_CN, &t->ssl_cn);
	pp_tlv(o, PP2_SUBTYPE_SSL_CIPHER, &t->ssl_cipher);
	if (o->full || o->len - at - 2 > 0xffff) {
		o->full = 1;
		return;
	}
	o->p[at] = (uint8_t)((o->len - at - 2) >> 8);
	o->p[at + 1] = (uint8_t)(o->len - at - 2);
}

/*
 * A v2 PROXY command for a, with t's TLVs (t may be NULL).  AF_UNSPEC is
 * sent as the UNSPEC family with no addresses.  Returns the length, or
 * -ENOSPC if cap (or the 16-bit length field) is too small.
 */
ssize_t
proxyproto_v2_encode(const struct pp_addr *a, const struct pp_tlvs *t,
    uint8_t *buf, size_t cap)
{
	struct pp_out o = { buf, cap, 0, 0 };
	uint8_t vc[2] = { PP2_VER | PP2_CMD_PROXY, PP2_FAM_UNSPEC };

	if (a->family == AF_INET)
		vc[1] = PP2_FAM_TCP4;
	else if (a->family == AF_INET6)
		vc[1] = PP2_FAM_TCP6;
	pp_put(&o, pp2_sig, sizeof(pp2_sig));
	pp_put(&o, vc, 2);
	pp_put16(&o, 0);	/* the length, set below */
	if (a->family == AF_INET || a->family == AF_INET6) {
		size_t alen = a->family == AF_INET ? 4 : 16;

		pp_put(&o, a->src, alen);
		pp_put(&o, a->dst, alen);
		pp_put16(&o, a->sport);
		pp_put16(&o, a->dport);
	}
	if (t != NULL) {
		pp_tlv(&o, PP2_TYPE_ALPN, &t->alpn);
		pp_tlv(&o, PP2_TYPE_AUTHORITY, &t->authority);
		pp_tlv(&o, PP2_TYPE_UNIQUE_ID, &t->unique_id);
		pp_tlv_ssl(&o, t);
	}
	if (o.full || o.len - PP_V2_FIXED > 0xffff)
		return -ENOSPC;
	buf[14] = (uint8_t)((o.len - PP_V2_FIXED) >> 8);
	buf[15] = (uint8_t)(o.len - PP_V2_FIXED);
	return (ssize_t)o.len;
}

static size_t
pp_get16(const uint8_t *p)
{
	return (size_t)p[0] << 8 | p[1];
}

/*
 * The TLVs in p[0..len): each a type, a 16-bit length and that many bytes,
 * which must fit in what is left.  Known ones are kept (the first of a
 * type); unknown ones, NOOP and CRC32C are skipped.  in_ssl: these are the
 * SSL TLV's sub-TLVs.
 */
static int
pp2_tlvs(const uint8_t *p, size_t len, int in_ssl, struct pp_tlvs *t)
{
	size_t at = 0, n;
	struct pp_str s, *slot;

	while (at < len) {
		if (len - at < 3)
			return -EBADMSG;
		n = pp_get16(p + at + 1);
		if (n > len - at - 3)
			return -EBADMSG;
		s.p = p + at + 3;
		s.len = n;
		slot = NULL;
		switch (p[at] | (in_ssl ? 0x100 : 0)) {
		case PP2_TYPE_ALPN:
			slot = &t->alpn;
			break;
		case PP2_TYPE_AUTHORITY:
			slot = &t->authority;
			break;
		case PP2_TYPE_UNIQUE_ID:
			if (n > PP2_UNIQUE_ID_MAX)
				return -EBADMSG;
			slot = &t->unique_id;
			break;
		case PP2_TYPE_SSL:
			if (n < PP2_SSL_FIXED || t->ssl)
				return -EBADMSG;
			t->ssl = 1;
			t->ssl_client = s.p[0];
			t->ssl_verify = (uint32_t)s.p[1] << 24 |
			    (uint32_t)s.p[2] << 16 | (uint32_t)s.p[3] << 8 |
			    s.p[4];
			if (pp2_tlvs(s.p + PP2_SSL_FIXED, n - PP2_SSL_FIXED, 1,
			    t) < 0)
				return -EBADMSG;
			break;
		case 0x100 | PP2_SUBTYPE_SSL_VERSION:
			slot = &t->ssl_version;
			break;
		case 0x100 | PP2_SUBTYPE_SSL_CN:
			slot = &t->ssl_cn;
			break;
		case 0x100 | PP2_SUBTYPE_SSL_CIPHER:
			slot = &t->ssl_cipher;
			break;
		default:
			break;
		}
		if (slot != NULL && slot->p == NULL)
			*slot = s;
		at += 3 + n;
	}
	return 0;
}

static ssize_t
pp2_parse(const uint8_t *buf, size_t len, struct pp_header *out)
{
	size_t body, alen = 0;
	uint8_t cmd, fam;

	if (len < PP_V2_FIXED)
		return 0;
	if ((buf[12] & 0xf0) != PP2_VER)
		return -EBADMSG;
	cmd = buf[12] & 0x0f;
	fam = buf[13];
	body = pp_get16(buf + 14);
	if (body > PP_IN_MAX - PP_V2_FIXED)
		return -EMSGSIZE;
	if (len - PP_V2_FIXED < body)
		return 0;
	out->version = 2;
	if (cmd != PP2_CMD_LOCAL && cmd != PP2_CMD_PROXY)
		return -EBADMSG;
	switch (fam) {
	case PP2_FAM_TCP4:
		alen = PP2_ADDR4_LEN;
		break;
	case PP2_FAM_TCP6:
		alen = PP2_ADDR6_LEN;
		break;
	case PP2_FAM_UNSPEC:
		break;
	default:
		/* UDP and unix sources: nothing moat could use */
		if (cmd == PP2_CMD_PROXY)
			return -EBADMSG;
		break;
	}
	if (body < alen)
		return -EBADMSG;
	if (cmd == PP2_CMD_LOCAL || fam == PP2_FAM_UNSPEC) {
		/* the balancer's own connection (a health check): real peer */
		out->local = 1;
		out->addr.family = AF_UNSPEC;
	} else {
		const uint8_t *a = buf + PP_V2_FIXED;
		size_t one = (alen - 4) / 2;

		out->addr.family = fam == PP2_FAM_TCP4 ? AF_INET : AF_INET6;
		memcpy(out->addr.src, a, one);
		memcpy(out->addr.dst, a + one, one);
		out->addr.sport = (uint16_t)pp_get16(a + 2 * one);
		out->addr.dport = (uint16_t)pp_get16(a + 2 * one + 2);
	}
	if (pp2_tlvs(buf + PP_V2_FIXED + alen, body - alen, 0, &out->tlvs) < 0)
		return -EBADMSG;
	return (ssize_t)(PP_V2_FIXED + body);
}

/* --- either ---------------------------------------------------------------- */

/*
 * The header at the start of buf[0..len), of a version accept allows.
 * Returns its length (the bytes after it are the connection's own), 0 if
 * more bytes are needed to tell, -EMSGSIZE if it is longer than moat
 * accepts, -EBADMSG if it is malformed, not a PROXY header or of a version
 * not accepted.  Only a prefix of a signature asks for more.
 */
ssize_t
proxyproto_parse(const uint8_t *buf, size_t len, unsigned accept,
    struct pp_header *out)
{
	size_t n;

	memset(out, 0, sizeof(*out));
	n = len < sizeof(pp2_sig) ? len : sizeof(pp2_sig);
	if ((accept & PP_ACCEPT_V2) && memcmp(buf, pp2_sig, n) == 0)
		return n < sizeof(pp2_sig) ? 0 : pp2_parse(buf, len, out);
	n = len < sizeof(pp1_sig) - 1 ? len : sizeof(pp1_sig) - 1;
	if ((accept & PP_ACCEPT_V1) && memcmp(buf, pp1_sig, n) == 0)
		return n < sizeof(pp1_sig) - 1 ? 0 : pp1_parse(buf, len, out);
	return -EBADMSG;
}
