/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_proxyproto.c -- libFuzzer target for the PROXY header codec
 * (daemon/worker/proxyproto.c).  The first byte chooses:
 *	bit 0 clear	parse the rest, accepting v1 and/or v2 (bits 1-2;
 *			none set = both).  A header found (length r) must lie
 *			within the input, parse the same from its first r
 *			bytes alone and ask for more when cut by one.  It is
 *			then encoded again (v1 or v2 as found, with every TLV
 *			the parser kept) and parsed back: the same addresses,
 *			the same LOCAL/UNKNOWN, the same TLVs.
 *	bit 0 set	encode from fuzzed fields: a family, addresses and
 *			ports, each TLV present or not with a length and
 *			bytes taken from the input, into a buffer of a fuzzed
 *			capacity.  A refusal (-ENOSPC) must mean the header
 *			is longer than that capacity; a header made must
 *			parse back to the fields exactly.
 * Any difference aborts.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "proxyproto.h"

#define BIG	(PP_IN_MAX + 256)

static void
same_str(struct pp_str a, struct pp_str b)
{
	if ((a.p == NULL) != (b.p == NULL) || a.len != b.len ||
	    (a.len > 0 && memcmp(a.p, b.p, a.len) != 0))
		abort();
}

static void
same_addr(const struct pp_addr *a, const struct pp_addr *b)
{
	size_t n = a->family == AF_INET ? 4 : 16;

	if (a->family != b->family)
		abort();
	if (a->family == AF_UNSPEC)
		return;
	if (memcmp(a->src, b->src, n) != 0 || memcmp(a->dst, b->dst, n) != 0 ||
	    a->sport != b->sport || a->dport != b->dport)
		abort();
}

static void
same_tlvs(const struct pp_tlvs *a, const struct pp_tlvs *b)
{
	same_str(a->alpn, b->alpn);
	same_str(a->authority, b->authority);
	same_str(a->unique_id, b->unique_id);
	if (a->ssl != b->ssl)
		abort();
	if (a->ssl && (a->ssl_client != b->ssl_client ||
	    a->ssl_verify != b->ssl_verify))
		abort();
	same_str(a->ssl_version, b->ssl_version);
	same_str(a->ssl_cipher, b->ssl_cipher);
	same_str(a->ssl_cn, b->ssl_cn);
}

static void
parse_one(const uint8_t *data, size_t size, unsigned accept)
{
	static uint8_t out[BIG];
	struct pp_header h, h2;
	ssize_t r, r2, n;

	r = proxyproto_parse(data, size, accept, &h);
	if (r == 0 || r == -EBADMSG || r == -EMSGSIZE)
		return;
	if (r < 0 || (size_t)r > size)
		abort();
	if (proxyproto_parse(data, (size_t)r, accept, &h2) != r ||
	    proxyproto_parse(data, (size_t)r - 1, accept, &h2) != 0)
		abort();
	if (h.version == 1) {
		if (h.local)
			h.addr.family = AF_UNSPEC;
		n = proxyproto_v1_encode(&h.addr, (char *)out, sizeof(out));
	} else
		n = proxyproto_v2_encode(&h.addr, &h.tlvs, out, sizeof(out));
	if (n <= 0)
		abort();	/* what was parsed always fits again */
	r2 = proxyproto_parse(out, (size_t)n, PP_ACCEPT_V1 | PP_ACCEPT_V2, &h2);
	if (r2 != n || h2.version != h.version || h2.local != h.local)
		abort();
	if (!h.local)
		same_addr(&h.addr, &h2.addr);
	if (h.version == 2)
		same_tlvs(&h.tlvs, &h2.tlvs);
}

/* A TLV from the input, or absent: a presence byte, a length, bytes. */
static struct pp_str
take_str(struct fuzz_input *in, size_t max)
{
	struct pp_str s = { NULL, 0 };
	size_t n;

	if ((fuzz_byte(in) & 1) == 0)
		return s;
	n = fuzz_byte(in);
	if (n & 0x80)
		n = (n & 0x7f) << 8 | fuzz_byte(in);
	if (n > max)
		n = max;
	if (n > in->left)
		n = in->left;
	s.p = in->p;
	s.len = n;
	in->p += n;
	in->left -= n;
	return s;
}

static void
encode_one(struct fuzz_input *in)
{
	static uint8_t out[BIG], big[BIG * 4];
	struct pp_addr a;
	struct pp_tlvs t;
	struct pp_header h;
	unsigned v = fuzz_byte(in), i;
	size_t cap;
	ssize_t n, full;

	memset(&a, 0, sizeof(a));
	memset(&t, 0, sizeof(t));
	a.family = (v & 6) == 0 ? AF_INET : (v & 6) == 2 ? AF_INET6 :
	    AF_UNSPEC;
	for (i = 0; i < 16; i++) {
		a.src[i] = (uint8_t)fuzz_byte(in);
		a.dst[i] = (uint8_t)fuzz_byte(in);
	}
	if (a.family == AF_INET) {
		memset(a.src + 4, 0, 12);
		memset(a.dst + 4, 0, 12);
	}
	a.sport = (uint16_t)(fuzz_byte(in) << 8 | fuzz_byte(in));
	a.dport = (uint16_t)(fuzz_byte(in) << 8 | fuzz_byte(in));
	cap = (size_t)fuzz_byte(in) << 3 | (fuzz_byte(in) & 7);
	if (cap > sizeof(out))
		cap = sizeof(out);
	if (a.family == AF_UNSPEC && !(v & 1))
		a.family = AF_UNIX;	/* v1 UNKNOWN from a unix client */

	if (v & 1) {
		t.alpn = take_str(in, 300);
		t.authority = take_str(in, 300);
		t.unique_id = take_str(in, PP2_UNIQUE_ID_MAX);
		t.ssl = (int)(fuzz_byte(in) & 1);
		t.ssl_client = (uint8_t)fuzz_byte(in);
		t.ssl_verify = (uint32_t)fuzz_byte(in) << 24 | fuzz_byte(in);
		t.ssl_version = take_str(in, 64);
		t.ssl_cipher = take_str(in, 64);
		t.ssl_cn = take_str(in, 300);
		if (!t.ssl) {
			memset(&t.ssl_version, 0, sizeof(t.ssl_version));
			memset(&t.ssl_cipher, 0, sizeof(t.ssl_cipher));
			memset(&t.ssl_cn, 0, sizeof(t.ssl_cn));
			t.ssl_client = 0;
			t.ssl_verify = 0;
		}
		n = proxyproto_v2_encode(&a, &t, out, cap);
		full = proxyproto_v2_encode(&a, &t, big, sizeof(big));
	} else {
		n = proxyproto_v1_encode(&a, (char *)out, cap);
		full = proxyproto_v1_encode(&a, (char *)big, sizeof(big));
	}
	if (full <= 0)
		abort();	/* a big enough buffer always takes it */
	if (n == -ENOSPC) {
		/* v2 fits in exactly its length; v1 also needs snprintf's NUL */
		if ((v & 1) ? (size_t)full <= cap : (size_t)full < cap)
			abort();
		return;
	}
	if (n != full || memcmp(out, big, (size_t)n) != 0)
		abort();
	if ((size_t)full > PP_IN_MAX)
		return;		/* longer than a reader takes: not its to parse */
	if (proxyproto_parse(out, (size_t)n, PP_ACCEPT_V1 | PP_ACCEPT_V2, &h)
	    != n)
		abort();
	if (v & 1) {
		if (h.version != 2 || h.local != (a.family == AF_UNSPEC))
			abort();
		same_tlvs(&t, &h.tlvs);
	} else if (h.version != 1 || h.local != (a.family == AF_UNIX))
		abort();
	if (!h.local)
		same_addr(&a, &h.addr);
}

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in;
	unsigned accept;

	if (size == 0)
		return 0;
	if (data[0] & 1) {
		in.p = data + 1;
		in.left = size - 1;
		encode_one(&in);
		return 0;
	}
	accept = (data[0] >> 1) & 3;
	parse_one(data + 1, size - 1,
	    accept != 0 ? accept : PP_ACCEPT_V1 | PP_ACCEPT_V2);
	return 0;
}
