/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conf_keys.c -- the keys of moat.conf: one table per section, each key
 * with the function that checks and stores its value (doc/moat.conf.5 is
 * the reference).  To add a key: a setter, a line in its table, the field
 * in conf.h, its default in conf_load.c, and a line in moat.conf(5).
 *
 * config_key_set() is all that the inih handler calls: it finds the key,
 * refuses an unknown, duplicate or empty one, and hands the value to the
 * setter; the setter reports what is wrong through config_error().
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "conf_int.h"
#include "log.h"
#include "util.h"

/* One key of a section: its name and the function that stores its value. */
struct config_key {
	const char	*name;
	int		(*set)(struct config_parse *, const char *);
};

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
	int r;

	p->keyd_line = p->lineno;
	if (config_abspath(p, "keyd", v, p->cfg->keyd_path,
	    sizeof(p->cfg->keyd_path)) < 0)
		return -EINVAL;
	if ((r = p->sys->executable(v)) < 0) {
		config_error(p, p->lineno, "keyd %s: %s", v, strerror(-r));
		return r;
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

/* keyd's request limits: auto (what keyd measures it can sign) or a number. */
static int
config_rate(struct config_parse *p, const char *key, const char *v,
    unsigned *out)
{
	if (strcmp(v, "auto") == 0) {
		*out = 0;
		return 0;
	}
	return config_uint(p, key, v, 1, 10000000, out);
}

static int
set_keyd_rate(struct config_parse *p, const char *v)
{
	return config_rate(p, "keyd-rate", v, &p->cfg->keyd_rate);
}

static int
set_keyd_key_rate(struct config_parse *p, const char *v)
{
	return config_rate(p, "keyd-key-rate", v, &p->cfg->keyd_key_rate);
}

static int
set_max_connections(struct config_parse *p, const char *v)
{
	p->max_connections_set = 1;
	return config_uint(p, "max-connections", v, 1, 1000000,
	    &p->cfg->max_connections);
}

static int
set_max_pending_handshakes(struct config_parse *p, const char *v)
{
	return config_uint(p, "max-pending-handshakes", v, 1, 1000000,
	    &p->cfg->max_pending_handshakes);
}

static int
set_rekey_concurrency(struct config_parse *p, const char *v)
{
	return config_uint(p, "rekey-concurrency", v, 1, 100000,
	    &p->cfg->rekey_concurrency);
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

/*
 * The secret every node of a cluster shares (tickets.c derives the ticket
 * keys from it); a key file's checks, and the size is moatd -t's and the
 * master's, who read it.
 */
static int
set_ticket_key_file(struct config_parse *p, const char *v)
{
	if (config_abspath(p, "ticket-key-file", v, p->cfg->ticket_key_file,
	    sizeof(p->cfg->ticket_key_file)) < 0)
		return -EINVAL;
	return config_secret_file(p, "ticket-key-file", v);
}

static int
set_ocsp_check_interval(struct config_parse *p, const char *v)
{
	return config_ms_nonzero(p, "ocsp-check-interval", v, 3600 * 1000,
	    &p->cfg->ocsp_check_ms);
}

/*
 * metrics-listen = ADDR:PORT, or a port alone, which means 127.0.0.1: the
 * metrics reach beyond the host only for an address written out.  Unset,
 * there is no listener.
 */
static int
set_metrics_listen(struct config_parse *p, const char *v)
{
	char text[sizeof(p->cfg->metrics_listen.text)];
	int r;

	if (v[0] != '\0' && strspn(v, "0123456789") == strlen(v)) {
		/* a port has at most 5 digits: longer ones fail as -ERANGE */
		if (strlen(v) > 5) {
			config_error(p, p->lineno, "bad port in metrics-listen "
			    "'%s' (expected 1..65535)", v);
			return -EINVAL;
		}
		snprintf(text, sizeof(text), "127.0.0.1:%s", v);
	} else if (snprintf(text, sizeof(text), "%s", v) >=
	    (int)sizeof(text)) {
		return config_addr_error(p, "metrics-listen", v, -ENAMETOOLONG);
	}
	if ((r = config_addr_parse(text, 0, &p->cfg->metrics_listen)) < 0) {
		memset(&p->cfg->metrics_listen, 0,
		    sizeof(p->cfg->metrics_listen));
		return config_addr_error(p, "metrics-listen", v, r);
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
	{ "keyd-rate",		set_keyd_rate },
	{ "keyd-key-rate",	set_keyd_key_rate },
	{ "max-connections",	set_max_connections },
	{ "max-pending-handshakes", set_max_pending_handshakes },
	{ "rekey-concurrency",	set_rekey_concurrency },
	{ "drain-timeout",	set_drain_timeout },
	{ "log-level",		set_log_level },
	{ "ticket-key-file",	set_ticket_key_file },
	{ "ocsp-check-interval", set_ocsp_check_interval },
	{ "metrics-listen",	set_metrics_listen },
	{ "pkcs11-module",	config_set_pkcs11_module },
	{ "pkcs11-allow",	config_set_pkcs11_allow },
	{ "pkcs11-allow-write",	config_set_pkcs11_allow_write },
};

/* --- [frontend NAME] ---------------------------------------------------- */

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
			if (config_addr_equal(&fe->listen[i],
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
		r = p->sys->resolve(v, &p->fe->backend);
	if (r < 0)
		return config_addr_error(p, "backend", v, r);
	return 0;
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
set_keyd_sign(struct config_parse *p, const char *v)
{
	p->fe->keyd_sign_line = p->lineno;
	if (strcmp(v, "digest-for-tls12") == 0)
		p->fe->keyd_sign_content_only = 0;
	else if (strcmp(v, "content-only") == 0)
		p->fe->keyd_sign_content_only = 1;
	else {
		config_error(p, p->lineno, "bad keyd-sign '%s' (expected "
		    "digest-for-tls12 or content-only)", v);
		return -EINVAL;
	}
	return 0;
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
	static const struct config_unit units[] = {
		{ "", 1 }, { "K", 1024 }, { "k", 1024 }, { "M", 1024 * 1024 },
		{ "G", 1024 * 1024 * 1024 }, { NULL, 0 },
	};

	if (config_scaled(v, units, UINT64_MAX, &p->fe->rekey_bytes) < 0) {
		config_error(p, p->lineno, "bad size '%s' for rekey-bytes (a "
		    "number with an optional unit K, M or G)", v);
		return -EINVAL;
	}
	/* Smaller is no safer, only a storm of rekeys (reneg.c's floor). */
	if (p->fe->rekey_bytes != 0 && p->fe->rekey_bytes < CONFIG_REKEY_BYTES_MIN) {
		config_error(p, p->lineno, "rekey-bytes %s is below the least "
		    "useful value, 64K (0 turns it off)", v);
		return -EINVAL;
	}
	return 0;
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

/* --- session resumption ------------------------------------------------- */

static int
set_tickets(struct config_parse *p, const char *v)
{
	return config_bool(p, "tickets", v, &p->fe->tickets);
}

static int
set_ticket_lifetime(struct config_parse *p, const char *v)
{
	uint64_t ms;

	if (config_duration(p, "ticket-lifetime", v, 1000,
	    (uint64_t)CONFIG_TICKET_LIFETIME_MAX * 1000, &ms) < 0)
		return -EINVAL;
	if (ms % 1000 != 0 || ms < (uint64_t)CONFIG_TICKET_LIFETIME_MIN * 1000) {
		config_error(p, p->lineno, "ticket-lifetime '%s': a whole number "
		    "of seconds from %u s to %u s", v,
		    CONFIG_TICKET_LIFETIME_MIN, CONFIG_TICKET_LIFETIME_MAX);
		return -EINVAL;
	}
	p->fe->ticket_lifetime_s = (unsigned)(ms / 1000);
	return 0;
}

/* --- client certificates and named profiles ----------------------------- */

static int
set_ca_file(struct config_parse *p, const char *v)
{
	int pk;

	p->fe->ca_line = p->lineno;
	if (config_abspath(p, "ca-file", v, p->fe->ca_file,
	    sizeof(p->fe->ca_file)) < 0)
		return -EINVAL;
	/* certificates only, as a chain is: a key here would reach workers */
	return config_cert_file(p, "ca-file", v, &pk);
}

static int
set_crl_file(struct config_parse *p, const char *v)
{
	p->fe->crl_line = p->lineno;
	/* its content is read at start-up and by moatd -t (conf_mtls.c) */
	return config_abspath(p, "crl-file", v, p->fe->crl_file,
	    sizeof(p->fe->crl_file));
}

static int
set_verify(struct config_parse *p, const char *v)
{
	p->fe->verify_line = p->lineno;
	if (strcmp(v, "none") == 0)
		p->fe->verify = CONFIG_VERIFY_NONE;
	else if (strcmp(v, "optional") == 0)
		p->fe->verify = CONFIG_VERIFY_OPTIONAL;
	else if (strcmp(v, "required") == 0)
		p->fe->verify = CONFIG_VERIFY_REQUIRED;
	else {
		config_error(p, p->lineno, "bad verify '%s' (expected none, "
		    "optional or required)", v);
		return -EINVAL;
	}
	return 0;
}

static int
set_profile(struct config_parse *p, const char *v)
{
	int prof;

	p->fe->profile_line = p->lineno;
	if ((prof = config_profile_find(v)) < 0) {
		config_error(p, p->lineno, "bad profile '%s' (expected modern, "
		    "intermediate, compat or fips)", v);
		return -EINVAL;
	}
	p->fe->profile = prof;
	return 0;
}

static const struct config_key frontend_keys[] = {
	{ "listen",			set_listen },
	{ "backend",			set_backend },
	{ "cert",			config_set_cert },
	{ "key",			config_set_key },
	{ "ocsp",			config_set_ocsp },
	{ "key-passphrase-file",	set_key_passphrase_file },
	{ "key-pin-file",		config_set_key_pin_file },
	{ "priority",			set_priority },
	{ "allow-rsa-kx",		set_allow_rsa_kx },
	{ "keyd-sign",			set_keyd_sign },
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
	{ "alpn",			config_set_alpn },
	{ "proxy-protocol",		config_set_proxy_protocol },
	{ "accept-proxy",		config_set_accept_proxy },
	{ "accept-proxy-from",		config_set_accept_proxy_from },
	{ "tickets",			set_tickets },
	{ "ticket-lifetime",		set_ticket_lifetime },
	{ "ca-file",			set_ca_file },
	{ "crl-file",			set_crl_file },
	{ "verify",			set_verify },
	{ "profile",			set_profile },
	{ "backend-tls",		config_set_backend_tls },
	{ "backend-ca",			config_set_backend_ca },
	{ "backend-name",		config_set_backend_name },
	{ "starttls",			config_set_starttls },
	{ "starttls-required",		config_set_starttls_required },
};

_Static_assert(nitems(moat_keys) <= CONFIG_MOAT_KEYS_MAX,
    "config_parse.moat_seen too small");
_Static_assert(nitems(frontend_keys) <= CONFIG_FE_KEYS_MAX,
    "config_parse.fe_seen too small");

/* Keys every [frontend] must set, by index in frontend_keys. */
static const unsigned frontend_required[] = { 0, 1, 2, 3 };

/* --- lookup -------------------------------------------------------------- */

/*
 * cert, key and ocsp repeat, one pair after another (conf_pair.c), and
 * pkcs11-allow(-write) once per path.
 */
static int
config_key_repeats(const struct config_key *k)
{
	return k->set == config_set_cert || k->set == config_set_key ||
	    k->set == config_set_ocsp || k->set == config_set_pkcs11_allow ||
	    k->set == config_set_pkcs11_allow_write;
}

/* The inih handler's work for one "name = value" of a section. */
void
config_key_set(struct config_parse *p, const char *name, const char *value)
{
	const struct config_key *keys;
	int *seen;
	size_t nkeys, i;

	if (p->section == SECTION_MOAT) {
		keys = moat_keys;
		nkeys = nitems(moat_keys);
		seen = p->moat_seen;
	} else {
		keys = frontend_keys;
		nkeys = nitems(frontend_keys);
		seen = p->fe_seen[p->fe->index];
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
		return;
	}
	if (seen[i] > 0 && !config_key_repeats(&keys[i])) {
		config_error(p, p->lineno, "duplicate key '%s' (first set on "
		    "line %d)", name, seen[i]);
		return;
	}
	if (seen[i] == 0)
		seen[i] = p->lineno;
	if (*value == '\0') {
		config_error(p, p->lineno, "empty value for %s", name);
		return;
	}
	keys[i].set(p, value);
}

/* The first key frontend `index` must set and did not, or NULL. */
const char *
config_frontend_missing(const struct config_parse *p, unsigned index)
{
	size_t j;

	for (j = 0; j < nitems(frontend_required); j++)
		if (p->fe_seen[index][frontend_required[j]] == 0)
			return frontend_keys[frontend_required[j]].name;
	return NULL;
}
