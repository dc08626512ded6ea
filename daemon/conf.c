/*
 * conf.c -- read moat.conf (inih) and check everything that can be checked
 * before a process starts, so that a mistake reaches the operator as
 * "FILE:LINE: reason" from `moatd -t` rather than as a dead worker.
 *
 * Debian's libinih is built without INI_HANDLER_LINENO and with a fixed
 * 200-byte line buffer, so every line reaches inih through config_read_line():
 * it counts lines, parses section headers itself (inih's handler never sees
 * a header, nor an empty section, and cuts names at 50 bytes), strips leading
 * blanks (an indented line must not silently continue the previous value),
 * and for a line too long for inih's buffer hands inih only "name =" while
 * keeping the value (a priority string easily passes 200 characters).
 *
 * The master never reads a private key: config_load() only stat()s and
 * open()s the key file.  config_check_keys() loads keys and is called by
 * `moatd -t` alone, in a process that exits right after.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <ini.h>

#include "conf.h"
#include "privdrop.h"

#define CONFIG_MAX_WORKERS	256u
#define CONFIG_MAX_NAME_PART	100	/* "name =" of an over-long line */
#define NELEM(a)		(sizeof(a) / sizeof((a)[0]))

enum config_section {
	SECTION_NONE = 0,
	SECTION_MOAT,
	SECTION_FRONTEND,
};

struct config_parse;

/* One key of a section: its name and the function that stores its value. */
struct config_key {
	const char	*name;
	int		(*set)(struct config_parse *, const char *);
};

struct config_parse {
	struct config		*cfg;
	FILE			*fp;
	char			*err;
	size_t			errlen;
	int			failed;
	int			lineno;		/* of the line being parsed */
	char			*line;		/* getline() buffer */
	size_t			linecap;
	const char		*long_value;	/* value of an over-long line */
	enum config_section	section;
	struct frontend		*fe;		/* the current [frontend] */
	int			moat_line;
	int			moat_seen[16];	/* line each [moat] key was set */
	int			fe_seen[CONFIG_MAX_FRONTENDS][24];
	int			priority_line[CONFIG_MAX_FRONTENDS];
	int			listen_line[CONFIG_MAX_FRONTENDS];
	int			user_line, keyd_user_line, keyd_line;
	int			workers_auto, keyd_threads_auto;
	int			max_connections_set;
	char			priority[CONFIG_MAX_FRONTENDS][512];
};

static void config_error(struct config_parse *, int, const char *, ...)
	__attribute__((format(printf, 3, 4)));

static void
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

static int
parse_u64(const char *s, uint64_t *out)
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

static int
config_uint(struct config_parse *p, const char *key, const char *v,
    unsigned min, unsigned max, unsigned *out)
{
	uint64_t n;
	int used;

	used = parse_u64(v, &n);
	if (used <= 0 || v[used] != '\0' || n < min || n > max) {
		config_error(p, p->lineno, "bad number '%s' for %s "
		    "(expected %u..%u)", v, key, min, max);
		return -EINVAL;
	}
	*out = (unsigned)n;
	return 0;
}

/*
 * A duration: a number with an optional unit ms, s, m or h; a bare number
 * is in the key's own unit (unit_ms: 1 for milliseconds, 1000 for seconds).
 */
static int
config_duration(struct config_parse *p, const char *key, const char *v,
    uint64_t unit_ms, uint64_t max_ms, uint64_t *out_ms)
{
	uint64_t n, mult = unit_ms;
	int used;
	const char *u;

	used = parse_u64(v, &n);
	if (used <= 0)
		goto bad;
	u = v + used;
	if (*u == '\0')
		mult = unit_ms;
	else if (strcmp(u, "ms") == 0)
		mult = 1;
	else if (strcmp(u, "s") == 0)
		mult = 1000;
	else if (strcmp(u, "m") == 0)
		mult = 60 * 1000;
	else if (strcmp(u, "h") == 0)
		mult = 3600 * 1000;
	else
		goto bad;
	if (n > max_ms / mult)
		goto bad;
	*out_ms = n * mult;
	return 0;
bad:
	config_error(p, p->lineno, "bad duration '%s' for %s (a number with an "
	    "optional unit ms, s, m or h; at most %llu s)", v, key,
	    (unsigned long long)(max_ms / 1000));
	return -EINVAL;
}

static int
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
static int
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

static int
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

static int
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

static int
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

	used = parse_u64(colon + 1, &port);
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
static int
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

static int
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

static int
config_user_check(struct config_parse *p, int line, const char *key,
    const char *user, int is_default)
{
	struct privdrop pd;
	int r;

	if ((r = privdrop_lookup(user, &pd)) == -EPERM) {
		config_error(p, line, "%s '%s' is root: a sandbox user must not "
		    "be uid 0", key, user);
		return r;
	}
	if (r < 0) {
		config_error(p, line, "unknown user '%s' for %s%s%s", user, key,
		    is_default ? " (the default; create it or set " : "",
		    is_default ? "another in [moat])" : "");
		return r;
	}
	return 0;
}

/*
 * A file holding a secret (a key, a passphrase): a regular file we can open,
 * neither readable nor writable by group or others.  0, or a negative errno
 * with the reason, without the path, in why.  Start-up (config_load) and a
 * certificate rotation (control.c) make this same check.
 */
int
config_check_secret_file(const char *path, char *why, size_t whylen)
{
	struct stat st;
	int fd, r;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		r = -errno;
		snprintf(why, whylen, "%s", strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(why, whylen, "not a regular file");
		return -EINVAL;
	}
	close(fd);
	if (st.st_mode & 044) {
		snprintf(why, whylen, "readable by others (mode %04o); chmod 600 "
		    "it", (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	if (st.st_mode & 022) {
		snprintf(why, whylen, "writable by others (mode %04o); chmod 600 "
		    "it", (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/*
 * A certificate chain: readable, and PEM that GnuTLS parses into at least
 * one certificate.  0, or a negative errno with the reason in why: -EINVAL
 * when the file was read but does not parse.
 */
int
config_check_cert_file(const char *path, char *why, size_t whylen)
{
	gnutls_x509_crt_t *crts = NULL;
	gnutls_datum_t data = { NULL, 0 };
	unsigned ncrt = 0, i;
	int r;

	if (access(path, R_OK) < 0) {
		r = -errno;
		snprintf(why, whylen, "%s", strerror(-r));
		return r;
	}
	if ((r = gnutls_load_file(path, &data)) < 0) {
		snprintf(why, whylen, "%s", gnutls_strerror(r));
		return -EIO;
	}
	r = gnutls_x509_crt_list_import2(&crts, &ncrt, &data,
	    GNUTLS_X509_FMT_PEM, 0);
	gnutls_free(data.data);
	if (r < 0 || ncrt == 0) {
		snprintf(why, whylen, "does not parse as a PEM certificate "
		    "chain: %s", r < 0 ? gnutls_strerror(r) : "no certificate");
		return -EINVAL;
	}
	for (i = 0; i < ncrt; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	return 0;
}

static int
config_secret_file(struct config_parse *p, const char *what, const char *path)
{
	char why[256];
	int r;

	if ((r = config_check_secret_file(path, why, sizeof(why))) < 0)
		config_error(p, p->lineno, "%s %s%s%s", what, path,
		    r == -EPERM ? " is " : ": ", why);
	return r;
}

/* --- [moat] ------------------------------------------------------------- */

static int
set_workers(struct config_parse *p, const char *v)
{
	if (strcmp(v, "auto") == 0) {
		p->workers_auto = 1;
		return 0;
	}
	p->workers_auto = 0;
	return config_uint(p, "workers", v, 1, CONFIG_MAX_WORKERS,
	    &p->cfg->workers);
}

static int
set_user(struct config_parse *p, const char *v)
{
	p->user_line = p->lineno;
	if (config_string(p, "user", v, p->cfg->user, sizeof(p->cfg->user)) < 0)
		return -EINVAL;
	return config_user_check(p, p->lineno, "user", v, 0);
}

static int
set_keyd_user(struct config_parse *p, const char *v)
{
	p->keyd_user_line = p->lineno;
	if (config_string(p, "keyd-user", v, p->cfg->keyd_user,
	    sizeof(p->cfg->keyd_user)) < 0)
		return -EINVAL;
	return config_user_check(p, p->lineno, "keyd-user", v, 0);
}

static int
set_control(struct config_parse *p, const char *v)
{
	struct sockaddr_un sun;

	if (config_abspath(p, "control", v, p->cfg->control,
	    sizeof(p->cfg->control)) < 0)
		return -EINVAL;
	if (strlen(v) >= sizeof(sun.sun_path)) {
		config_error(p, p->lineno, "control socket path is too long "
		    "(at most %zu characters)", sizeof(sun.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	return 0;
}

static int
set_chroot(struct config_parse *p, const char *v)
{
	return config_abspath(p, "chroot", v, p->cfg->chroot_dir,
	    sizeof(p->cfg->chroot_dir));
}

static int
set_keyd(struct config_parse *p, const char *v)
{
	p->keyd_line = p->lineno;
	if (config_abspath(p, "keyd", v, p->cfg->keyd_path,
	    sizeof(p->cfg->keyd_path)) < 0)
		return -EINVAL;
	if (access(v, X_OK) < 0) {
		config_error(p, p->lineno, "keyd %s: %s", v, strerror(errno));
		return -errno;
	}
	return 0;
}

static int
set_keyd_threads(struct config_parse *p, const char *v)
{
	if (strcmp(v, "auto") == 0) {
		p->keyd_threads_auto = 1;
		return 0;
	}
	p->keyd_threads_auto = 0;
	return config_uint(p, "keyd-threads", v, 1, 256, &p->cfg->keyd_threads);
}

static int
set_keyd_timeout(struct config_parse *p, const char *v)
{
	return config_ms_nonzero(p, "keyd-timeout", v, 60000,
	    &p->cfg->keyd_timeout_ms);
}

static int
set_keyd_sign_delay(struct config_parse *p, const char *v)
{
	return config_uint(p, "keyd-sign-delay-ms", v, 0, 10000,
	    &p->cfg->keyd_sign_delay_ms);
}

static int
set_max_connections(struct config_parse *p, const char *v)
{
	p->max_connections_set = 1;
	return config_uint(p, "max-connections", v, 1, 1000000,
	    &p->cfg->max_connections);
}

static int
set_drain_timeout(struct config_parse *p, const char *v)
{
	return config_ms(p, "drain-timeout", v, 3600 * 1000,
	    &p->cfg->drain_timeout_ms);
}

static int
set_log_level(struct config_parse *p, const char *v)
{
	if (log_level_parse(v, &p->cfg->log_level) < 0) {
		config_error(p, p->lineno, "bad log-level '%s' (expected error, "
		    "warn, info or debug)", v);
		return -EINVAL;
	}
	return 0;
}

static const struct config_key moat_keys[] = {
	{ "workers",		set_workers },
	{ "user",		set_user },
	{ "keyd-user",		set_keyd_user },
	{ "control",		set_control },
	{ "chroot",		set_chroot },
	{ "keyd",		set_keyd },
	{ "keyd-threads",	set_keyd_threads },
	{ "keyd-timeout",	set_keyd_timeout },
	{ "keyd-sign-delay-ms",	set_keyd_sign_delay },
	{ "max-connections",	set_max_connections },
	{ "drain-timeout",	set_drain_timeout },
	{ "log-level",		set_log_level },
};

/* --- [frontend NAME] ---------------------------------------------------- */

static int
config_listen_dup(const struct config_addr *a, const struct config_addr *b)
{
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

static int
set_listen(struct config_parse *p, const char *v)
{
	struct frontend *fe = p->fe;
	char buf[1024], *tok, *save = NULL, *s, *e;
	unsigned i;
	int r;

	if (strlen(v) >= sizeof(buf)) {
		config_error(p, p->lineno, "listen list is too long");
		return -EINVAL;
	}
	memcpy(buf, v, strlen(v) + 1);
	fe->nlisten = 0;
	p->listen_line[fe->index] = p->lineno;
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		s = tok + strspn(tok, " \t");
		e = s + strlen(s);
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			*--e = '\0';
		if (*s == '\0')
			continue;
		if (fe->nlisten == CONFIG_MAX_LISTEN) {
			config_error(p, p->lineno, "too many listen addresses "
			    "(at most %d)", CONFIG_MAX_LISTEN);
			return -E2BIG;
		}
		if ((r = config_addr_parse(s, 0, &fe->listen[fe->nlisten])) < 0)
			return config_addr_error(p, "listen", s, r);
		for (i = 0; i < fe->nlisten; i++) {
			if (config_listen_dup(&fe->listen[i],
			    &fe->listen[fe->nlisten])) {
				config_error(p, p->lineno, "duplicate listen "
				    "address %s", s);
				return -EEXIST;
			}
		}
		fe->nlisten++;
	}
	if (fe->nlisten == 0) {
		config_error(p, p->lineno, "empty value for listen");
		return -EINVAL;
	}
	return 0;
}

static int
set_backend(struct config_parse *p, const char *v)
{
	int r;

	r = config_addr_parse(v, 1, &p->fe->backend);
	if (r == -EADDRNOTAVAIL && v[0] != '[')
		r = config_backend_resolve(v, &p->fe->backend);
	if (r < 0)
		return config_addr_error(p, "backend", v, r);
	return 0;
}

static int
set_cert(struct config_parse *p, const char *v)
{
	char why[256];
	int r;

	p->fe->cert_line = p->lineno;
	if (config_abspath(p, "cert", v, p->fe->cert, sizeof(p->fe->cert)) < 0)
		return -EINVAL;
	if ((r = config_check_cert_file(v, why, sizeof(why))) < 0)
		config_error(p, p->lineno, "cert file %s%s%s", v,
		    r == -EINVAL ? " " : ": ", why);
	return r;
}

static int
set_key(struct config_parse *p, const char *v)
{
	p->fe->key_line = p->lineno;
	if (strncmp(v, "pkcs11:", 7) == 0) {
		config_error(p, p->lineno, "key %s: pkcs11: URIs are not "
		    "supported by this version; use a PEM file", v);
		return -EOPNOTSUPP;
	}
	if (config_abspath(p, "key", v, p->fe->key, sizeof(p->fe->key)) < 0)
		return -EINVAL;
	return config_secret_file(p, "key file", v);
}

static int
set_key_passphrase_file(struct config_parse *p, const char *v)
{
	if (config_abspath(p, "key-passphrase-file", v,
	    p->fe->key_passphrase_file,
	    sizeof(p->fe->key_passphrase_file)) < 0)
		return -EINVAL;
	return config_secret_file(p, "key-passphrase-file", v);
}

static int
set_priority(struct config_parse *p, const char *v)
{
	p->priority_line[p->fe->index] = p->lineno;
	/* room for the ":-RSA" that allow-rsa-kx appends */
	return config_string(p, "priority", v, p->priority[p->fe->index],
	    sizeof(p->priority[0]) - 8);
}

static int
set_allow_rsa_kx(struct config_parse *p, const char *v)
{
	return config_bool(p, "allow-rsa-kx", v, &p->fe->allow_rsa_kx);
}

static int
set_handshake_timeout(struct config_parse *p, const char *v)
{
	return config_ms_nonzero(p, "handshake-timeout", v, 3600 * 1000,
	    &p->fe->handshake_timeout_ms);
}

static int
set_idle_timeout(struct config_parse *p, const char *v)
{
	return config_ms(p, "idle-timeout", v, 7 * 24 * 3600 * 1000u,
	    &p->fe->idle_timeout_ms);
}

static int
set_backend_connect_timeout(struct config_parse *p, const char *v)
{
	return config_ms_nonzero(p, "backend-connect-timeout", v, 3600 * 1000,
	    &p->fe->backend_connect_timeout_ms);
}

static int
set_rekey_interval(struct config_parse *p, const char *v)
{
	uint64_t ms;

	if (config_duration(p, "rekey-interval", v, 1000,
	    (uint64_t)30 * 24 * 3600 * 1000, &ms) < 0)
		return -EINVAL;
	if (ms % 1000 != 0) {
		config_error(p, p->lineno, "rekey-interval '%s' is not a whole "
		    "number of seconds", v);
		return -EINVAL;
	}
	p->fe->rekey_interval_s = (unsigned)(ms / 1000);
	return 0;
}

static int
set_rekey_bytes(struct config_parse *p, const char *v)
{
	uint64_t n, mult = 1;
	int used;
	const char *u;

	used = parse_u64(v, &n);
	if (used <= 0)
		goto bad;
	u = v + used;
	if (*u == '\0')
		mult = 1;
	else if (strcmp(u, "K") == 0 || strcmp(u, "k") == 0)
		mult = 1024;
	else if (strcmp(u, "M") == 0)
		mult = 1024 * 1024;
	else if (strcmp(u, "G") == 0)
		mult = 1024 * 1024 * 1024;
	else
		goto bad;
	if (n > UINT64_MAX / mult)
		goto bad;
	p->fe->rekey_bytes = n * mult;
	return 0;
bad:
	config_error(p, p->lineno, "bad size '%s' for rekey-bytes (a number "
	    "with an optional unit K, M or G)", v);
	return -EINVAL;
}

static int
set_rekey_on_cert_change(struct config_parse *p, const char *v)
{
	return config_bool(p, "rekey-on-cert-change", v,
	    &p->fe->rekey_on_cert_change);
}

static int
config_reneg_on(struct config_parse *p, const char *key, const char *v,
    enum reneg_on *out)
{
	if (strcmp(v, "keep") == 0)
		*out = RENEG_KEEP;
	else if (strcmp(v, "close") == 0)
		*out = RENEG_CLOSE;
	else {
		config_error(p, p->lineno, "bad value '%s' for %s (expected keep "
		    "or close)", v, key);
		return -EINVAL;
	}
	return 0;
}

static int
set_on_refusal(struct config_parse *p, const char *v)
{
	return config_reneg_on(p, "on-refusal", v, &p->fe->on_refusal);
}

static int
set_on_ignore(struct config_parse *p, const char *v)
{
	return config_reneg_on(p, "on-ignore", v, &p->fe->on_ignore);
}

static int
set_rekey_timeout(struct config_parse *p, const char *v)
{
	return config_ms_nonzero(p, "rekey-timeout", v, 3600 * 1000,
	    &p->fe->rekey_timeout_ms);
}

static int
set_client_renegotiation(struct config_parse *p, const char *v)
{
	if (strcmp(v, "refuse") == 0)
		p->fe->client_renegotiation = 0;
	else if (strcmp(v, "allow") == 0)
		p->fe->client_renegotiation = 1;
	else {
		config_error(p, p->lineno, "bad value '%s' for "
		    "client-renegotiation (expected refuse or allow)", v);
		return -EINVAL;
	}
	return 0;
}

static int
set_client_renegotiation_limit(struct config_parse *p, const char *v)
{
	return config_uint(p, "client-renegotiation-limit", v, 0, 1000,
	    &p->fe->client_renegotiation_limit);
}

static const struct config_key frontend_keys[] = {
	{ "listen",			set_listen },
	{ "backend",			set_backend },
	{ "cert",			set_cert },
	{ "key",			set_key },
	{ "key-passphrase-file",	set_key_passphrase_file },
	{ "priority",			set_priority },
	{ "allow-rsa-kx",		set_allow_rsa_kx },
	{ "handshake-timeout",		set_handshake_timeout },
	{ "idle-timeout",		set_idle_timeout },
	{ "backend-connect-timeout",	set_backend_connect_timeout },
	{ "rekey-interval",		set_rekey_interval },
	{ "rekey-bytes",		set_rekey_bytes },
	{ "rekey-on-cert-change",	set_rekey_on_cert_change },
	{ "on-refusal",			set_on_refusal },
	{ "on-ignore",			set_on_ignore },
	{ "rekey-timeout",		set_rekey_timeout },
	{ "client-renegotiation",	set_client_renegotiation },
	{ "client-renegotiation-limit",	set_client_renegotiation_limit },
};

_Static_assert(NELEM(moat_keys) <= NELEM(((struct config_parse *)0)->moat_seen),
    "moat_seen too small");
_Static_assert(NELEM(frontend_keys) <=
    NELEM(((struct config_parse *)0)->fe_seen[0]), "fe_seen too small");

/* Keys every [frontend] must set, by index in frontend_keys. */
static const unsigned frontend_required[] = { 0, 1, 2, 3 };

/* --- sections and lines ------------------------------------------------- */

static void
config_frontend_defaults(struct frontend *fe, unsigned index)
{
	unsigned i;

	memset(fe, 0, sizeof(*fe));
	fe->index = index;
	for (i = 0; i < CONFIG_MAX_LISTEN; i++)
		fe->listen_fd[i] = -1;
	fe->handshake_timeout_ms = 10 * 1000;
	fe->idle_timeout_ms = 600 * 1000;
	fe->backend_connect_timeout_ms = 5 * 1000;
	fe->rekey_on_cert_change = 0;	/* see moat.conf(5): clients may refuse */
	fe->on_refusal = RENEG_KEEP;
	fe->on_ignore = RENEG_KEEP;
	fe->rekey_timeout_ms = 10 * 1000;
	fe->client_renegotiation = 0;
	fe->client_renegotiation_limit = 3;
}

static int
config_name_valid(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' &&
		    *s != '.')
			return 0;
	return 1;
}

static int
config_section_begin(struct config_parse *p, char *s)
{
	struct config *cfg = p->cfg;
	char *end, *name, *rest;
	unsigned i;

	if ((end = strchr(s, ']')) == NULL) {
		config_error(p, p->lineno, "malformed section header (no "
		    "closing ']')");
		return -EINVAL;
	}
	rest = end + 1 + strspn(end + 1, " \t");
	if (*rest != '\0' && *rest != ';' && *rest != '#') {
		config_error(p, p->lineno, "text after section header: %s",
		    rest);
		return -EINVAL;
	}
	*end = '\0';
	name = s + 1 + strspn(s + 1, " \t");
	while (end > name && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';

	if (strcmp(name, "moat") == 0) {
		if (p->moat_line > 0) {
			config_error(p, p->lineno, "duplicate [moat] section "
			    "(first on line %d)", p->moat_line);
			return -EEXIST;
		}
		p->moat_line = p->lineno;
		p->section = SECTION_MOAT;
		return 0;
	}
	if (strncmp(name, "frontend", 8) != 0 ||
	    (name[8] != '\0' && name[8] != ' ' && name[8] != '\t')) {
		config_error(p, p->lineno, "unknown section [%s] (expected "
		    "[moat] or [frontend NAME])", name);
		return -EINVAL;
	}
	name += 8 + strspn(name + 8, " \t");
	if (*name == '\0') {
		config_error(p, p->lineno, "[frontend] needs a name: "
		    "[frontend NAME]");
		return -EINVAL;
	}
	if (!config_name_valid(name) || strlen(name) >= CONFIG_NAME_MAX) {
		config_error(p, p->lineno, "bad frontend name '%s' (letters, "
		    "digits, '.', '-', '_'; at most %d characters)", name,
		    CONFIG_NAME_MAX - 1);
		return -EINVAL;
	}
	for (i = 0; i < cfg->nfrontends; i++) {
		if (strcmp(cfg->frontends[i].name, name) == 0) {
			config_error(p, p->lineno, "duplicate frontend name "
			    "'%s' (first on line %d)", name,
			    cfg->frontends[i].line);
			return -EEXIST;
		}
	}
	if (cfg->nfrontends == CONFIG_MAX_FRONTENDS) {
		config_error(p, p->lineno, "too many frontends (at most %d)",
		    CONFIG_MAX_FRONTENDS);
		return -E2BIG;
	}
	p->fe = &cfg->frontends[cfg->nfrontends];
	config_frontend_defaults(p->fe, cfg->nfrontends);
	memcpy(p->fe->name, name, strlen(name) + 1);
	p->fe->line = p->lineno;
	cfg->nfrontends++;
	p->section = SECTION_FRONTEND;
	return 0;
}

/* The ini_reader: one line per call, counted (see the comment on top). */
static char *
config_read_line(char *str, int num, void *stream)
{
	struct config_parse *p = stream;
	ssize_t n;
	char *s, *eq, *v, *e;

	p->long_value = NULL;
	if (p->failed)
		return NULL;
	errno = 0;
	if ((n = getline(&p->line, &p->linecap, p->fp)) < 0) {
		if (errno != 0)
			config_error(p, p->lineno + 1, "read error: %s",
			    strerror(errno));
		return NULL;
	}
	p->lineno++;
	if (memchr(p->line, '\0', (size_t)n) != NULL) {
		config_error(p, p->lineno, "NUL byte in line");
		return NULL;
	}
	while (n > 0 && (p->line[n - 1] == '\n' || p->line[n - 1] == '\r'))
		p->line[--n] = '\0';
	s = p->line;
	if (p->lineno == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3;
	s += strspn(s, " \t");

	if (*s == '[') {
		if (config_section_begin(p, s) < 0)
			return NULL;
		/* inih need not see it: the handler uses p->section */
		snprintf(str, (size_t)num, "\n");
		return str;
	}
	if (strlen(s) + 3 <= (size_t)num) {
		snprintf(str, (size_t)num, "%s\n", s);
		return str;
	}
	if (*s == ';' || *s == '#') {
		snprintf(str, (size_t)num, "\n");
		return str;
	}
	eq = strpbrk(s, "=:");
	if (eq == NULL || eq - s > CONFIG_MAX_NAME_PART) {
		config_error(p, p->lineno, "line too long");
		return NULL;
	}
	/* the value as inih would cut it: blanks and a " ;" comment off */
	v = eq + 1 + strspn(eq + 1, " \t");
	for (e = v; *e != '\0'; e++)
		if (*e == ';' && e > v && (e[-1] == ' ' || e[-1] == '\t'))
			break;
	*e = '\0';
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	p->long_value = v;
	snprintf(str, (size_t)num, "%.*s=\n", (int)(eq - s), s);
	return str;
}

static int
config_handler(void *user, const char *section, const char *name,
    const char *value)
{
	struct config_parse *p = user;
	const struct config_key *keys;
	int *seen;
	size_t nkeys, i;

	if (p->failed)
		return 1;
	if (p->long_value != NULL)
		value = p->long_value;
	switch (p->section) {
	case SECTION_MOAT:
		keys = moat_keys;
		nkeys = NELEM(moat_keys);
		seen = p->moat_seen;
		break;
	case SECTION_FRONTEND:
		keys = frontend_keys;
		nkeys = NELEM(frontend_keys);
		seen = p->fe_seen[p->fe->index];
		break;
	default:
		config_error(p, p->lineno, "'%s' outside a section (start with "
		    "[moat] or [frontend NAME])", name);
		return 1;
	}
	for (i = 0; i < nkeys; i++)
		if (strcmp(keys[i].name, name) == 0)
			break;
	if (i == nkeys) {
		if (p->section == SECTION_MOAT)
			config_error(p, p->lineno, "unknown key '%s' in [moat]",
			    name);
		else
			config_error(p, p->lineno, "unknown key '%s' in "
			    "[frontend %s]", name, p->fe->name);
		return 1;
	}
	if (seen[i] > 0) {
		config_error(p, p->lineno, "duplicate key '%s' (first set on "
		    "line %d)", name, seen[i]);
		return 1;
	}
	seen[i] = p->lineno;
	if (*value == '\0') {
		config_error(p, p->lineno, "empty value for %s", name);
		return 1;
	}
	keys[i].set(p, value);
	return 1;	/* errors are kept in p; inih reports syntax only */
}

/* --- whole-file checks -------------------------------------------------- */

static void
config_defaults(struct config *cfg)
{
	cfg->workers = 0;
	snprintf(cfg->user, sizeof(cfg->user), "%s", MOAT_DEFAULT_USER);
	snprintf(cfg->keyd_user, sizeof(cfg->keyd_user), "%s",
	    MOAT_DEFAULT_KEYD_USER);
	snprintf(cfg->control, sizeof(cfg->control), "%s",
	    MOAT_DEFAULT_CONTROL);
	snprintf(cfg->chroot_dir, sizeof(cfg->chroot_dir), "%s",
	    MOAT_DEFAULT_CHROOT);
	cfg->keyd_timeout_ms = 2000;
	cfg->keyd_sign_delay_ms = 0;
	cfg->max_connections = CONFIG_MAX_CONNECTIONS_DEFAULT;
	cfg->drain_timeout_ms = 10 * 1000;
	cfg->log_level = LOG_LEVEL_INFO;
}

static unsigned
config_ncpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > (long)CONFIG_MAX_WORKERS ? CONFIG_MAX_WORKERS : (unsigned)n;
}

/*
 * Unset max-connections: 10000, or as many as the descriptor limit holds
 * (two per connection, client and backend, and some to spare), so that a
 * default start never promises more than the worker can keep.
 */
static unsigned
config_max_connections_default(void)
{
	struct rlimit rl;
	rlim_t fit;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_max == RLIM_INFINITY)
		return CONFIG_MAX_CONNECTIONS_DEFAULT;
	fit = rl.rlim_max > 256 ? (rl.rlim_max - 128) / 2 : 64;
	return fit < CONFIG_MAX_CONNECTIONS_DEFAULT ? (unsigned)fit :
	    CONFIG_MAX_CONNECTIONS_DEFAULT;
}

/*
 * Where moat-keyd lives when the config does not say: $MOAT_KEYD, then the
 * installed libexec path, then the build tree next to this binary.
 */
static void
config_keyd_default(struct config_parse *p)
{
	struct config *cfg = p->cfg;
	char self[PATH_MAX], *slash;
	const char *env;
	ssize_t n;

	if ((env = getenv("MOAT_KEYD")) != NULL && *env != '\0') {
		snprintf(cfg->keyd_path, sizeof(cfg->keyd_path), "%s", env);
		return;
	}
	snprintf(cfg->keyd_path, sizeof(cfg->keyd_path), "%s/moat-keyd",
	    MOAT_LIBEXECDIR);
	if (access(cfg->keyd_path, X_OK) == 0)
		return;
	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) <= 0)
		return;
	self[n] = '\0';
	if ((slash = strrchr(self, '/')) == NULL)
		return;
	*slash = '\0';
	if (snprintf(cfg->keyd_path, sizeof(cfg->keyd_path),
	    "%s/../keyd/moat-keyd", self) >= (int)sizeof(cfg->keyd_path))
		return;
	if (access(cfg->keyd_path, X_OK) < 0)
		snprintf(cfg->keyd_path, sizeof(cfg->keyd_path),
		    "%s/moat-keyd", MOAT_LIBEXECDIR);
}

static int
config_priority(struct config_parse *p, struct frontend *fe)
{
	gnutls_priority_t prio;
	const char *base, *errpos = NULL;
	size_t pos, shown;
	int line, r;

	base = p->priority[fe->index][0] != '\0' ? p->priority[fe->index] :
	    MOAT_DEFAULT_PRIORITY;
	line = p->priority_line[fe->index] > 0 ? p->priority_line[fe->index] :
	    fe->line;
	/* RSA key exchange means keyd decrypts: only where asked for. */
	snprintf(fe->priority, sizeof(fe->priority), "%s:%s", base,
	    fe->allow_rsa_kx ? "+RSA" : "-RSA");
	r = gnutls_priority_init2(&prio, fe->priority, &errpos, 0);
	if (r < 0) {
		if (errpos != NULL && errpos >= fe->priority &&
		    (size_t)(errpos - fe->priority) < strlen(base)) {
			pos = (size_t)(errpos - fe->priority);
			shown = strlen(base) - pos;
			config_error(p, line, "bad priority string at position "
			    "%zu ('%.*s'): %s", pos + 1,
			    (int)(shown > 24 ? 24 : shown), errpos,
			    gnutls_strerror(r));
		} else
			config_error(p, line, "bad priority string: %s",
			    gnutls_strerror(r));
		return -EINVAL;
	}
	gnutls_priority_deinit(prio);
	return 0;
}

static void
config_finish(struct config_parse *p)
{
	struct config *cfg = p->cfg;
	struct frontend *fe, *fo;
	unsigned i, j, k, l;
	int eof_line = p->moat_line > 0 ? p->moat_line : 1;

	for (i = 0; i < cfg->nfrontends && !p->failed; i++) {
		fe = &cfg->frontends[i];
		for (j = 0; j < NELEM(frontend_required); j++) {
			if (p->fe_seen[i][frontend_required[j]] == 0) {
				config_error(p, fe->line, "frontend %s: missing "
				    "required key '%s'", fe->name,
				    frontend_keys[frontend_required[j]].name);
				break;
			}
		}
		if (!p->failed)
			config_priority(p, fe);
	}
	if (!p->failed && cfg->nfrontends == 0)
		config_error(p, eof_line, "no [frontend NAME] section: nothing "
		    "to serve");

	/* the same address twice would fail at bind(); say where instead */
	for (i = 0; i < cfg->nfrontends && !p->failed; i++) {
		fe = &cfg->frontends[i];
		for (j = 0; j < i && !p->failed; j++) {
			fo = &cfg->frontends[j];
			for (k = 0; k < fe->nlisten && !p->failed; k++)
				for (l = 0; l < fo->nlisten; l++)
					if (config_listen_dup(&fe->listen[k],
					    &fo->listen[l])) {
						config_error(p,
						    p->listen_line[i],
						    "duplicate listen address "
						    "%s (also in frontend %s, "
						    "line %d)",
						    fe->listen[k].text,
						    fo->name,
						    p->listen_line[j]);
						break;
					}
		}
	}

	if (!p->failed && p->user_line == 0)
		config_user_check(p, eof_line, "user", cfg->user, 1);
	if (!p->failed && p->keyd_user_line == 0)
		config_user_check(p, eof_line, "keyd-user", cfg->keyd_user,
		    1);

	cfg->workers = p->workers_auto || cfg->workers == 0 ? config_ncpus() :
	    cfg->workers;
	cfg->keyd_threads = p->keyd_threads_auto || cfg->keyd_threads == 0 ?
	    config_ncpus() : cfg->keyd_threads;
	if (!p->max_connections_set)
		cfg->max_connections = config_max_connections_default();
	if (!p->failed && p->keyd_line == 0) {
		config_keyd_default(p);
		if (access(cfg->keyd_path, X_OK) < 0)
			config_error(p, eof_line, "moat-keyd not found at %s: "
			    "%s (set keyd = in [moat] or MOAT_KEYD)",
			    cfg->keyd_path, strerror(errno));
	}
}

int
config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
	struct config_parse *p;
	int r;

	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->path, sizeof(cfg->path), "%s", path);
	config_defaults(cfg);
	if (errlen > 0)
		err[0] = '\0';

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(ENOMEM));
		return -ENOMEM;
	}
	p->cfg = cfg;
	p->err = err;
	p->errlen = errlen;
	if ((p->fp = fopen(path, "re")) == NULL) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	r = ini_parse_stream(config_read_line, p, config_handler, p);
	if (r > 0 && !p->failed)
		config_error(p, r, "syntax error (expected 'name = value', "
		    "'[section]' or a comment)");
	else if (r < 0 && !p->failed)
		config_error(p, 0, "cannot parse (inih error %d)", r);
	if (!p->failed)
		config_finish(p);
	r = p->failed ? -EINVAL : 0;
out:
	if (p->fp != NULL)
		fclose(p->fp);
	free(p->line);
	free(p);
	return r;
}

const struct frontend *
config_frontend_by_name(const struct config *cfg, const char *name)
{
	unsigned i;

	for (i = 0; i < cfg->nfrontends; i++)
		if (strcmp(cfg->frontends[i].name, name) == 0)
			return &cfg->frontends[i];
	return NULL;
}

/* --- moatd -t: the key checks keyd would make --------------------------- */

static int
config_read_passphrase(const char *path, char *buf, size_t size)
{
	gnutls_datum_t d = { NULL, 0 };
	size_t n;
	int r;

	if ((r = gnutls_load_file(path, &d)) < 0)
		return -EIO;
	n = d.size;
	while (n > 0 && (d.data[n - 1] == '\n' || d.data[n - 1] == '\r'))
		n--;
	if (n >= size) {
		gnutls_memset(d.data, 0, d.size);
		gnutls_free(d.data);
		return -ENAMETOOLONG;
	}
	memcpy(buf, d.data, n);
	buf[n] = '\0';
	gnutls_memset(d.data, 0, d.size);
	gnutls_free(d.data);
	return 0;
}

static int
config_pubkey_der(gnutls_pubkey_t pub, gnutls_datum_t *der)
{
	return gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, der);
}

static int
config_check_key(const struct config *cfg, const struct frontend *fe,
    char *err, size_t errlen)
{
	gnutls_datum_t keydata = { NULL, 0 }, certdata = { NULL, 0 };
	gnutls_datum_t der1 = { NULL, 0 }, der2 = { NULL, 0 };
	gnutls_x509_crt_t *crts = NULL;
	unsigned ncrt = 0, i;
	gnutls_privkey_t priv = NULL;
	gnutls_pubkey_t pub_key = NULL, pub_cert = NULL;
	char pass[1024];
	int r, ret = -EINVAL;

	pass[0] = '\0';
	if (fe->key_passphrase_file[0] != '\0' &&
	    config_read_passphrase(fe->key_passphrase_file, pass,
	    sizeof(pass)) < 0) {
		snprintf(err, errlen, "%s:%d: key-passphrase-file %s cannot be "
		    "read", cfg->path, fe->key_line, fe->key_passphrase_file);
		goto out;
	}
	if ((r = gnutls_load_file(fe->key, &keydata)) < 0) {
		snprintf(err, errlen, "%s:%d: key file %s: %s", cfg->path,
		    fe->key_line, fe->key, gnutls_strerror(r));
		goto out;
	}
	if ((r = gnutls_privkey_init(&priv)) < 0 ||
	    (r = gnutls_privkey_import_x509_raw(priv, &keydata,
	    GNUTLS_X509_FMT_PEM, pass[0] != '\0' ? pass : NULL, 0)) < 0) {
		snprintf(err, errlen, "%s:%d: key file %s does not parse as a "
		    "PEM private key: %s", cfg->path, fe->key_line, fe->key,
		    gnutls_strerror(r));
		goto out;
	}
	if ((r = gnutls_load_file(fe->cert, &certdata)) < 0 ||
	    (r = gnutls_x509_crt_list_import2(&crts, &ncrt, &certdata,
	    GNUTLS_X509_FMT_PEM, 0)) < 0 || ncrt == 0) {
		snprintf(err, errlen, "%s:%d: cert file %s does not parse",
		    cfg->path, fe->cert_line, fe->cert);
		goto out;
	}
	if ((r = gnutls_pubkey_init(&pub_key)) < 0 ||
	    (r = gnutls_pubkey_init(&pub_cert)) < 0 ||
	    (r = gnutls_pubkey_import_privkey(pub_key, priv, 0, 0)) < 0 ||
	    (r = gnutls_pubkey_import_x509(pub_cert, crts[0], 0)) < 0 ||
	    (r = config_pubkey_der(pub_key, &der1)) < 0 ||
	    (r = config_pubkey_der(pub_cert, &der2)) < 0) {
		snprintf(err, errlen, "%s:%d: key file %s: cannot compare with "
		    "cert %s: %s", cfg->path, fe->key_line, fe->key, fe->cert,
		    gnutls_strerror(r));
		goto out;
	}
	if (der1.size != der2.size ||
	    memcmp(der1.data, der2.data, der1.size) != 0) {
		snprintf(err, errlen, "%s:%d: key file %s does not match "
		    "certificate %s", cfg->path, fe->key_line, fe->key,
		    fe->cert);
		goto out;
	}
	ret = 0;
out:
	explicit_bzero(pass, sizeof(pass));
	if (keydata.data != NULL) {
		gnutls_memset(keydata.data, 0, keydata.size);
		gnutls_free(keydata.data);
	}
	gnutls_free(certdata.data);
	gnutls_free(der1.data);
	gnutls_free(der2.data);
	for (i = 0; i < ncrt; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	if (pub_key != NULL)
		gnutls_pubkey_deinit(pub_key);
	if (pub_cert != NULL)
		gnutls_pubkey_deinit(pub_cert);
	if (priv != NULL)
		gnutls_privkey_deinit(priv);
	return ret;
}

int
config_check_keys(const struct config *cfg, char *err, size_t errlen)
{
	unsigned i;
	int r;

	for (i = 0; i < cfg->nfrontends; i++)
		if ((r = config_check_key(cfg, &cfg->frontends[i], err,
		    errlen)) < 0)
			return r;
	return 0;
}
