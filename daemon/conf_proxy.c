/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conf_proxy.c -- the frontend keys of ALPN and the PROXY protocol:
 * alpn, proxy-protocol, accept-proxy and accept-proxy-from (the table of
 * every key is conf_keys.c's).
 */
#include "config.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "conf.h"
#include "conf_int.h"
#include "util.h"

/* --- ALPN and the PROXY protocol ------------------------------------------ */

/* The next comma-separated item of *sp, its blanks trimmed; NULL at the end. */
static char *
config_list_next(char **sp)
{
	char *s = *sp, *e, *end;

	if (s == NULL)
		return NULL;
	if ((e = strchr(s, ',')) != NULL) {
		*e = '\0';
		*sp = e + 1;
	} else
		*sp = NULL;
	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	return s;
}

int
config_set_alpn(struct config_parse *p, const char *v)
{
	char buf[CONFIG_ALPN_MAX * CONFIG_ALPN_LEN + CONFIG_ALPN_MAX], *s, *it;
	unsigned i;

	if (strlen(v) >= sizeof(buf)) {
		config_error(p, p->lineno, "alpn list is too long");
		return -EINVAL;
	}
	memcpy(buf, v, strlen(v) + 1);
	s = buf;
	p->fe->nalpn = 0;
	while ((it = config_list_next(&s)) != NULL) {
		if (*it == '\0' || strlen(it) >= CONFIG_ALPN_LEN) {
			config_error(p, p->lineno, "bad alpn protocol '%s' (1 to "
			    "%d characters, comma-separated)", it,
			    CONFIG_ALPN_LEN - 1);
			return -EINVAL;
		}
		for (i = 0; it[i] != '\0'; i++)
			if (it[i] <= ' ' || it[i] > '~') {
				config_error(p, p->lineno, "bad alpn protocol "
				    "'%s' (printable ASCII only)", it);
				return -EINVAL;
			}
		for (i = 0; i < p->fe->nalpn; i++)
			if (strcmp(p->fe->alpn[i], it) == 0) {
				config_error(p, p->lineno, "alpn protocol '%s' "
				    "twice", it);
				return -EINVAL;
			}
		if (p->fe->nalpn == CONFIG_ALPN_MAX) {
			config_error(p, p->lineno, "more than %d alpn "
			    "protocols", CONFIG_ALPN_MAX);
			return -EINVAL;
		}
		memcpy(p->fe->alpn[p->fe->nalpn++], it, strlen(it) + 1);
	}
	return 0;
}

/* The PROXY protocol versions a word names; "any" only where allowed. */
static int
config_proxy_versions(struct config_parse *p, const char *key, const char *v,
    int any_ok, unsigned *out)
{
	static const struct {
		const char	*word;
		unsigned	versions;
	} words[] = {
		{ "no", 0 },
		{ "v1", CONFIG_PROXY_V1 },
		{ "v2", CONFIG_PROXY_V2 },
		{ "any", CONFIG_PROXY_V1 | CONFIG_PROXY_V2 },
	};
	size_t i, n = nitems(words) - (any_ok ? 0 : 1);

	for (i = 0; i < n; i++)
		if (strcmp(v, words[i].word) == 0) {
			*out = words[i].versions;
			return 0;
		}
	config_error(p, p->lineno, "bad value '%s' for %s (expected no, v1%s "
	    "v2%s)", v, key, any_ok ? "," : " or", any_ok ? " or any" : "");
	return -EINVAL;
}

int
config_set_proxy_protocol(struct config_parse *p, const char *v)
{
	return config_proxy_versions(p, "proxy-protocol", v, 0,
	    &p->fe->proxy_protocol);
}

int
config_set_accept_proxy(struct config_parse *p, const char *v)
{
	p->fe->accept_proxy_line = p->lineno;
	return config_proxy_versions(p, "accept-proxy", v, 1,
	    &p->fe->accept_proxy);
}

/* One network: an address, optionally /bits (all of them if absent). */
static int
config_cidr(const char *s, struct config_cidr *out)
{
	char addr[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	unsigned max, i;
	uint64_t bits;
	int used;

	if (alen == 0 || alen >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, addr, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else
		return -EINVAL;
	bits = max;
	if (slash != NULL && ((used = config_parse_u64(slash + 1, &bits)) <= 0 ||
	    slash[1 + used] != '\0' || bits > max))
		return -EINVAL;
	out->bits = (unsigned)bits;
	/* host bits set (10.0.0.1/8) are a typo more often than not */
	for (i = out->bits; i < max; i++)
		if (out->addr[i / 8] & (0x80u >> (i % 8)))
			return -EINVAL;
	return 0;
}

int
config_set_accept_proxy_from(struct config_parse *p, const char *v)
{
	char buf[CONFIG_MAX_CIDR * (INET6_ADDRSTRLEN + 8)], *s, *it;
	struct frontend *fe = p->fe;

	if (strlen(v) >= sizeof(buf)) {
		config_error(p, p->lineno, "accept-proxy-from list is too long");
		return -EINVAL;
	}
	memcpy(buf, v, strlen(v) + 1);
	s = buf;
	fe->naccept_proxy_from = 0;
	while ((it = config_list_next(&s)) != NULL) {
		if (fe->naccept_proxy_from == CONFIG_MAX_CIDR) {
			config_error(p, p->lineno, "more than %d networks in "
			    "accept-proxy-from", CONFIG_MAX_CIDR);
			return -EINVAL;
		}
		if (config_cidr(it, &fe->accept_proxy_from[
		    fe->naccept_proxy_from]) < 0) {
			config_error(p, p->lineno, "bad network '%s' in "
			    "accept-proxy-from (an address or address/bits, "
			    "no host bits set)", it);
			return -EINVAL;
		}
		fe->naccept_proxy_from++;
	}
	return 0;
}
