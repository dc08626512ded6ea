/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conf_value.c -- the values of moat.conf: numbers, durations, booleans,
 * strings, absolute paths and addresses, and config_error(), which keeps
 * the first error of a parse as "FILE:LINE: reason".
 *
 * Each parser takes the key's name for its message; none of them looks at
 * the file system or the network, except config_backend_resolve(), which
 * resolves a backend host name now because workers cannot later.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "conf_int.h"

void
config_error(struct config_parse *p, int line, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	if (p->failed)
		return;		/* the first error is the one to fix */
	p->failed = 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(p->err, p->errlen, "%s:%d: %s", p->cfg->path, line, msg);
	else
		snprintf(p->err, p->errlen, "%s: %s", p->cfg->path, msg);
}

/* --- value parsers ------------------------------------------------------ */

int
config_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -ERANGE;
	*out = v;
	return (int)(end - s);
}

int
config_uint(struct config_parse *p, const char *key, const char *v,
    unsigned min, unsigned max, unsigned *out)
{
	uint64_t n;
	int used;

	used = config_parse_u64(v, &n);
	if (used <= 0 || v[used] != '\0' || n < min || n > max) {
		config_error(p, p->lineno, "bad number '%s' for %s "
		    "(expected %u..%u)", v, key, min, max);
		return -EINVAL;
	}
	*out = (unsigned)n;
	return 0;
}

/*
 * A number with an optional unit: one of units, each a suffix and what it
 * multiplies by, up to one whose suffix is NULL; "" is the bare number's
 * own unit.  The product must not exceed max.  0 or -EINVAL.
 */
int
config_scaled(const char *v, const struct config_unit *units, uint64_t max,
    uint64_t *out)
{
	uint64_t n;
	int used;

	if ((used = config_parse_u64(v, &n)) <= 0)
		return -EINVAL;
	for (; units->suffix != NULL; units++) {
		if (strcmp(v + used, units->suffix) != 0)
			continue;
		if (n > max / units->mult)
			return -EINVAL;
		*out = n * units->mult;
		return 0;
	}
	return -EINVAL;
}

/*
 * A duration: a number with an optional unit ms, s, m or h; a bare number
 * is in the key's own unit (unit_ms: 1 for milliseconds, 1000 for seconds).
 */
int
config_duration(struct config_parse *p, const char *key, const char *v,
    uint64_t unit_ms, uint64_t max_ms, uint64_t *out_ms)
{
	const struct config_unit units[] = {
		{ "", unit_ms }, { "ms", 1 }, { "s", 1000 }, { "m", 60 * 1000 },
		{ "h", 3600 * 1000 }, { NULL, 0 },
	};

	if (config_scaled(v, units, max_ms, out_ms) == 0)
		return 0;
	config_error(p, p->lineno, "bad duration '%s' for %s (a number with an "
	    "optional unit ms, s, m or h; at most %llu s)", v, key,
	    (unsigned long long)(max_ms / 1000));
	return -EINVAL;
}

int
config_ms(struct config_parse *p, const char *key, const char *v,
    unsigned max_ms, unsigned *out)
{
	uint64_t ms;

	if (config_duration(p, key, v, 1, max_ms, &ms) < 0)
		return -EINVAL;
	*out = (unsigned)ms;
	return 0;
}

/* A timeout that must be set: 0 would mean "fail at once", never wanted. */
int
config_ms_nonzero(struct config_parse *p, const char *key, const char *v,
    unsigned max_ms, unsigned *out)
{
	if (config_ms(p, key, v, max_ms, out) < 0)
		return -EINVAL;
	if (*out == 0) {
		config_error(p, p->lineno, "%s must not be 0", key);
		return -EINVAL;
	}
	return 0;
}

int
config_bool(struct config_parse *p, const char *key, const char *v, int *out)
{
	if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0 ||
	    strcasecmp(v, "on") == 0 || strcmp(v, "1") == 0)
		*out = 1;
	else if (strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0 ||
	    strcasecmp(v, "off") == 0 || strcmp(v, "0") == 0)
		*out = 0;
	else {
		config_error(p, p->lineno, "bad value '%s' for %s (expected yes "
		    "or no)", v, key);
		return -EINVAL;
	}
	return 0;
}

int
config_string(struct config_parse *p, const char *key, const char *v,
    char *out, size_t size)
{
	if (*v == '\0') {
		config_error(p, p->lineno, "empty value for %s", key);
		return -EINVAL;
	}
	if (strlen(v) >= size) {
		config_error(p, p->lineno, "value of %s is too long (at most %zu "
		    "characters)", key, size - 1);
		return -ENAMETOOLONG;
	}
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

int
config_abspath(struct config_parse *p, const char *key, const char *v,
    char *out, size_t size)
{
	if (config_string(p, key, v, out, size) < 0)
		return -EINVAL;
	if (*v != '/') {
		config_error(p, p->lineno, "%s must be an absolute path: %s",
		    key, v);
		return -EINVAL;
	}
	return 0;
}

/*
 * Parse "a.b.c.d:port", "[v6]:port" or (allow_unix) "unix:/path" as
 * numeric literals.  Returns 0, -EINVAL (syntax), -ERANGE (port) or
 * -EADDRNOTAVAIL (the host part is not an address literal).
 */
int
config_addr_parse(const char *text, int allow_unix, struct config_addr *out)
{
	struct sockaddr_in *sin;
	struct sockaddr_in6 *sin6;
	struct sockaddr_un *sun;
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *hs, *he;
	uint64_t port;
	int used;

	memset(out, 0, sizeof(*out));
	if (strlen(text) >= sizeof(out->text))
		return -ENAMETOOLONG;
	snprintf(out->text, sizeof(out->text), "%s", text);

	if (strncmp(text, "unix:", 5) == 0) {
		if (!allow_unix)
			return -EINVAL;
		sun = (struct sockaddr_un *)&out->ss;
		if (text[5] != '/' || strlen(text + 5) >= sizeof(sun->sun_path))
			return -EINVAL;
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, text + 5, strlen(text + 5) + 1);
		out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
		    strlen(text + 5) + 1);
		return 0;
	}

	if (text[0] == '[') {
		hs = text + 1;
		if ((he = strchr(hs, ']')) == NULL || he[1] != ':')
			return -EINVAL;
		colon = he + 1;
	} else {
		hs = text;
		if ((colon = strrchr(text, ':')) == NULL)
			return -EINVAL;
		he = colon;
	}
	if (he == hs || (size_t)(he - hs) >= sizeof(host))
		return -EADDRNOTAVAIL;
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';

	used = config_parse_u64(colon + 1, &port);
	if (used <= 0 || colon[1 + used] != '\0' || port == 0 || port > 65535)
		return -ERANGE;

	if (text[0] == '[') {
		sin6 = (struct sockaddr_in6 *)&out->ss;
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -EADDRNOTAVAIL;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		out->len = sizeof(*sin6);
	} else {
		sin = (struct sockaddr_in *)&out->ss;
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return -EADDRNOTAVAIL;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		out->len = sizeof(*sin);
	}
	return 0;
}

/* A backend may also name a host: resolve it now, workers cannot later. */
int
config_backend_resolve(const char *text, struct config_addr *out)
{
	struct addrinfo hints, *res = NULL;
	char host[256];
	const char *colon;
	int r;

	if ((colon = strrchr(text, ':')) == NULL ||
	    (size_t)(colon - text) >= sizeof(host) || colon == text)
		return -EINVAL;
	memcpy(host, text, (size_t)(colon - text));
	host[colon - text] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
	if ((r = getaddrinfo(host, colon + 1, &hints, &res)) != 0)
		return -EADDRNOTAVAIL;
	memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
	out->len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int
config_addr_error(struct config_parse *p, const char *key, const char *text,
    int r)
{
	switch (r) {
	case -ERANGE:
		config_error(p, p->lineno, "bad port in %s '%s' (expected "
		    "1..65535)", key, text);
		break;
	case -EADDRNOTAVAIL:
		config_error(p, p->lineno, "bad address in %s '%s'", key, text);
		break;
	case -ENAMETOOLONG:
		config_error(p, p->lineno, "%s '%s' is too long", key, text);
		break;
	default:
		config_error(p, p->lineno, "bad %s '%s' (expected %s)", key,
		    text, strcmp(key, "backend") == 0 ?
		    "host:port, [v6]:port or unix:/path" :
		    "a.b.c.d:port or [v6]:port");
		break;
	}
	return -EINVAL;
}

/* Two listen addresses that bind() would find the same. */
int
config_addr_equal(const struct config_addr *a, const struct config_addr *b)
{
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}
