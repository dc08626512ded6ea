/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_proxyproto.c -- the PROXY header codec (daemon/worker/proxyproto.c):
 * v1 and v2 encoded and parsed back, the spec's examples, and the edges a
 * balancer or a liar can reach: a header cut at every byte (needs more,
 * never a wrong answer), lengths one past what is there, the v1 line's
 * 107-byte limit, a version not accepted, TLS where a header should be.
 */
#include "config.h"

#include <sys/socket.h>

#include <arpa/inet.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxyproto.h"

#define ALL (PP_ACCEPT_V1 | PP_ACCEPT_V2)

static struct pp_str
str(const char *s)
{
	struct pp_str r = { (const uint8_t *)s, strlen(s) };

	return r;
}

static void
addr4(struct pp_addr *a)
{
	memset(a, 0, sizeof(*a));
	a->family = AF_INET;
	inet_pton(AF_INET, "192.0.2.7", a->src);
	inet_pton(AF_INET, "198.51.100.1", a->dst);
	a->sport = 51234;
	a->dport = 443;
}

static void
test_v1_round_trip(void **state)
{
	struct pp_addr a;
	struct pp_header h;
	char buf[PP_V1_MAX + 1];
	ssize_t n;

	(void)state;
	addr4(&a);
	n = proxyproto_v1_encode(&a, buf, sizeof(buf));
	assert_int_equal(n, strlen("PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\r\n"));
	assert_memory_equal(buf, "PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\r\n", n);
	assert_int_equal(proxyproto_parse((uint8_t *)buf, (size_t)n, ALL, &h), n);
	assert_int_equal(h.version, 1);
	assert_int_equal(h.local, 0);
	assert_memory_equal(&h.addr, &a, sizeof(a));
	/* v2 only: the same line is refused */
	assert_int_equal(proxyproto_parse((uint8_t *)buf, (size_t)n,
	    PP_ACCEPT_V2, &h), -EBADMSG);

	/* the longest line there is fits exactly */
	a.family = AF_INET6;
	memset(a.src, 0xff, 16);
	memset(a.dst, 0xff, 16);
	a.sport = a.dport = 65535;
	n = proxyproto_v1_encode(&a, buf, sizeof(buf));
	assert_int_equal(n, 104);
	assert_int_equal(proxyproto_parse((uint8_t *)buf, (size_t)n, ALL, &h), n);
	assert_memory_equal(&h.addr, &a, sizeof(a));
	assert_int_equal(proxyproto_v1_encode(&a, buf, 104), -ENOSPC);

	a.family = AF_UNIX;
	n = proxyproto_v1_encode(&a, buf, sizeof(buf));
	assert_int_equal(n, 15);
	assert_memory_equal(buf, "PROXY UNKNOWN\r\n", 15);
	assert_int_equal(proxyproto_parse((uint8_t *)buf, 15, ALL, &h), 15);
	assert_int_equal(h.local, 1);
}

static void
test_v1_malformed(void **state)
{
	static const char *bad[] = {
		"PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\n",	/* no CR */
		"PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\rX",
		"PROXY TCP4  192.0.2.7 198.51.100.1 51234 443\r\n",	/* two spaces */
		"PROXY TCP4 192.0.2.7 198.51.100.1 51234\r\n",		/* a field short */
		"PROXY TCP4 192.0.2.7 198.51.100.1 51234 443 \r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 65536 443\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 051234 443\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 +1 443\r\n",
		"PROXY TCP4 ::1 ::1 1 2\r\n",				/* family */
		"PROXY TCP6 192.0.2.7 198.51.100.1 1 2\r\n",
		"PROXY TCP4 192.0.2.256 198.51.100.1 1 2\r\n",
		"PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n",
		"PROXY \r\n",
		"\x16\x03\x01\x02\x00\x01",				/* TLS */
	};
	char longline[200];
	struct pp_header h;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(proxyproto_parse((const uint8_t *)bad[i],
		    strlen(bad[i]), ALL, &h), -EBADMSG);
	/* no CRLF within 107 bytes: too long, however much follows */
	memset(longline, 'x', sizeof(longline));
	memcpy(longline, "PROXY UNKNOWN ", 14);
	assert_int_equal(proxyproto_parse((uint8_t *)longline, PP_V1_MAX, ALL,
	    &h), -EMSGSIZE);
	assert_int_equal(proxyproto_parse((uint8_t *)longline, PP_V1_MAX - 1,
	    ALL, &h), 0);
	/* CRLF as the 106th and 107th bytes: the longest line accepted */
	longline[105] = '\r';
	longline[106] = '\n';
	assert_int_equal(proxyproto_parse((uint8_t *)longline, sizeof(longline),
	    ALL, &h), PP_V1_MAX);
}

static void
full_tlvs(struct pp_tlvs *t)
{
	static const uint8_t id[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };

	memset(t, 0, sizeof(*t));
	t->alpn = str("h2");
	t->authority = str("www.example.test");
	t->unique_id.p = id;
	t->unique_id.len = sizeof(id);
	t->ssl = 1;
	t->ssl_client = PP2_CLIENT_SSL;
	t->ssl_verify = 1;
	t->ssl_version = str("TLSv1.3");
	t->ssl_cipher = str("TLS_AES_256_GCM_SHA384");
}

static void
assert_str(struct pp_str a, struct pp_str b)
{
	assert_int_equal(a.p == NULL, b.p == NULL);
	assert_int_equal(a.len, b.len);
	if (a.len > 0)
		assert_memory_equal(a.p, b.p, a.len);
}

static void
test_v2_round_trip(void **state)
{
	struct pp_addr a;
	struct pp_tlvs t;
	struct pp_header h;
	uint8_t buf[PP_OUT_MAX];
	ssize_t n, i;

	(void)state;
	addr4(&a);
	full_tlvs(&t);
	n = proxyproto_v2_encode(&a, &t, buf, sizeof(buf));
	/* 16 + 12 addresses + ALPN 5 + authority 19 + id 19 + SSL 3+5+10+25 */
	assert_int_equal(n, 16 + 12 + 5 + 19 + 19 + 43);
	assert_int_equal(buf[12], 0x21);
	assert_int_equal(buf[13], 0x11);
	assert_int_equal(buf[14] << 8 | buf[15], n - 16);
	assert_int_equal(proxyproto_parse(buf, (size_t)n, ALL, &h), n);
	assert_int_equal(h.version, 2);
	assert_int_equal(h.local, 0);
	assert_memory_equal(&h.addr, &a, sizeof(a));
	assert_str(h.tlvs.alpn, t.alpn);
	assert_str(h.tlvs.authority, t.authority);
	assert_str(h.tlvs.unique_id, t.unique_id);
	assert_int_equal(h.tlvs.ssl, 1);
	assert_int_equal(h.tlvs.ssl_client, PP2_CLIENT_SSL);
	assert_int_equal(h.tlvs.ssl_verify, 1);
	assert_str(h.tlvs.ssl_version, t.ssl_version);
	assert_str(h.tlvs.ssl_cipher, t.ssl_cipher);
	assert_null(h.tlvs.ssl_cn.p);

	/* cut anywhere: "more", never a header and never malformed */
	for (i = 0; i < n; i++)
		assert_int_equal(proxyproto_parse(buf, (size_t)i, ALL, &h), 0);
	/* bytes after it are not its */
	memcpy(buf + n, "\x16\x03", 2);
	assert_int_equal(proxyproto_parse(buf, (size_t)n + 2, ALL, &h), n);
	/* too small a buffer, at every size */
	for (i = 0; i < n; i++)
		assert_int_equal(proxyproto_v2_encode(&a, &t, buf, (size_t)i),
		    -ENOSPC);
}

static void
test_v2_malformed(void **state)
{
	struct pp_addr a;
	struct pp_tlvs t;
	struct pp_header h;
	uint8_t buf[PP_OUT_MAX], b2[PP_OUT_MAX];
	ssize_t n;

	(void)state;
	addr4(&a);
	full_tlvs(&t);
	n = proxyproto_v2_encode(&a, &t, buf, sizeof(buf));
	assert_true(n > 0);
	memcpy(b2, buf, (size_t)n);
	b2[12] = 0x11;				/* version 1 binary */
	assert_int_equal(proxyproto_parse(b2, (size_t)n, ALL, &h), -EBADMSG);
	memcpy(b2, buf, (size_t)n);
	b2[12] = 0x22;				/* command 2 */
	assert_int_equal(proxyproto_parse(b2, (size_t)n, ALL, &h), -EBADMSG);
	memcpy(b2, buf, (size_t)n);
	b2[13] = 0x12;				/* UDP */
	assert_int_equal(proxyproto_parse(b2, (size_t)n, ALL, &h), -EBADMSG);
	/* TCP6 in a header only as long as TCP4's addresses */
	memcpy(b2, buf, 28);
	b2[13] = 0x21;
	b2[14] = 0;
	b2[15] = 12;
	assert_int_equal(proxyproto_parse(b2, 28, ALL, &h), -EBADMSG);
	/* the first TLV (ALPN) claims one byte more than the header holds */
	memcpy(b2, buf, (size_t)n);
	b2[16 + 12 + 2] = (uint8_t)(n - 16 - 12 - 3 + 1);
	assert_int_equal(proxyproto_parse(b2, (size_t)n, ALL, &h), -EBADMSG);
	/* the header's length one short: the last TLV is cut */
	memcpy(b2, buf, (size_t)n);
	b2[15]--;
	assert_int_equal(proxyproto_parse(b2, (size_t)n - 1, ALL, &h), -EBADMSG);
	/* addresses longer than the header */
	memcpy(b2, buf, 16);
	b2[14] = 0;
	b2[15] = 11;
	assert_int_equal(proxyproto_parse(b2, 27, ALL, &h), -EBADMSG);
	/* longer than moat accepts */
	b2[14] = (PP_IN_MAX >> 8) & 0xff;
	b2[15] = 0xff;
	assert_int_equal(proxyproto_parse(b2, 16, ALL, &h), -EMSGSIZE);
	/* v1 only */
	assert_int_equal(proxyproto_parse(buf, (size_t)n, PP_ACCEPT_V1, &h),
	    -EBADMSG);
	/* an SSL TLV shorter than its client and verify fields */
	{
		static const uint8_t ssl[] = {
			0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51,
			0x55, 0x49, 0x54, 0x0a, 0x21, 0x00, 0x00, 0x07,
			0x20, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00,
		};

		assert_int_equal(proxyproto_parse(ssl, sizeof(ssl), ALL, &h),
		    -EBADMSG);
	}
}

static void
test_v2_local_and_unknown_tlvs(void **state)
{
	/* LOCAL with TCP4 addresses and a NOOP and an unknown TLV */
	static const uint8_t local[] = {
		0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51,
		0x55, 0x49, 0x54, 0x0a, 0x20, 0x11, 0x00, 0x14,
		10, 0, 0, 1, 10, 0, 0, 2, 0x12, 0x34, 0x01, 0xbb,
		0x04, 0x00, 0x01, 0x00,
		0xe0, 0x00, 0x01, 0x7f,
		0x16, 0x03,	/* TLS follows */
	};
	struct pp_header h;
	struct pp_addr a;
	uint8_t buf[PP_OUT_MAX];
	ssize_t n;

	(void)state;
	assert_int_equal(proxyproto_parse(local, sizeof(local), ALL, &h),
	    sizeof(local) - 2);
	assert_int_equal(h.local, 1);
	assert_int_equal(h.addr.family, AF_UNSPEC);
	assert_null(h.tlvs.alpn.p);

	/* UNSPEC out: no addresses, only TLVs */
	memset(&a, 0, sizeof(a));
	a.family = AF_UNSPEC;
	n = proxyproto_v2_encode(&a, NULL, buf, sizeof(buf));
	assert_int_equal(n, 16);
	assert_int_equal(buf[13], 0x00);
	assert_int_equal(proxyproto_parse(buf, 16, ALL, &h), 16);
	assert_int_equal(h.local, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_round_trip),
		cmocka_unit_test(test_v1_malformed),
		cmocka_unit_test(test_v2_round_trip),
		cmocka_unit_test(test_v2_malformed),
		cmocka_unit_test(test_v2_local_and_unknown_tlvs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
