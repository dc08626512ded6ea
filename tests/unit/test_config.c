/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_config.c -- the moat.conf parser: a good config read back field by
 * field, and broken configs that must each fail with the exact FILE:LINE and
 * a reason an operator can act on.
 *
 * The keys and certificates are made with GnuTLS in a temporary directory
 * (testconf.c); test_conf_keyd.c has what keyd may do with them.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "../../daemon/conf.h"
#include "testconf.h"

static void
test_good(void **state)
{
	const struct frontend *fe;
	const struct sockaddr_un *sun;

	conf_write(
	    "; a comment\n"
	    "[moat]\n"
	    "workers = 3\n"
	    "user = nobody\n"
	    "keyd-user = daemon\n"
	    "control = /run/moat-test/control.sock\n"
	    "chroot = /var/empty-test\n"
	    "keyd = /bin/true\n"
	    "keyd-threads = 2\n"
	    "keyd-timeout = 3s\n"
	    "keyd-sign-delay-ms = 200\n"
	    "max-connections = 500\n"
	    "drain-timeout = 2500ms\n"
	    "log-level = debug\n"
	    "\n"
	    "[frontend www]\n"
	    "listen = 127.0.0.1:8443, [::1]:8443   ; two of them\n"
	    "backend = unix:/run/app.sock\n"
	    "cert = %A\n"
	    "key = %a\n"
	    "allow-rsa-kx = yes\n"
	    "handshake-timeout = 5s\n"
	    "idle-timeout = 2m\n"
	    "backend-connect-timeout = 750\n"
	    "rekey-interval = 1h\n"
	    "rekey-bytes = 16M\n"
	    "rekey-on-cert-change = no\n"
	    "on-refusal = close\n"
	    "on-ignore = keep\n"
	    "rekey-timeout = 20s\n"
	    "client-renegotiation = allow\n"
	    "client-renegotiation-limit = 5\n"
	    "\n"
	    "[frontend mail]\n"
	    "listen = 0.0.0.0:993\n"
	    "backend = [::1]:143\n"
	    "cert = %B\n"
	    "key = %b\n"
	    "priority = NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:"
	    "-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:"
	    "-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:-SIGN-RSA-SHA1:-SIGN-ECDSA-SHA1:"
	    "-SIGN-RSA-SHA224:-SIGN-ECDSA-SHA224:%SERVER_PRECEDENCE\n");
	if (config_load(conf_path, &cfg, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(cfg.workers, 3);
	assert_string_equal(cfg.user, "nobody");
	assert_string_equal(cfg.control, "/run/moat-test/control.sock");
	assert_string_equal(cfg.chroot_dir, "/var/empty-test");
	assert_string_equal(cfg.keyd_path, "/bin/true");
	assert_int_equal(cfg.keyd_threads, 2);
	assert_int_equal(cfg.keyd_timeout_ms, 3000);
	assert_int_equal(cfg.keyd_sign_delay_ms, 200);
	assert_int_equal(cfg.max_connections, 500);
	assert_int_equal(cfg.drain_timeout_ms, 2500);
	assert_int_equal(cfg.log_level, LOG_LEVEL_DEBUG);
	assert_int_equal(cfg.nfrontends, 2);

	fe = config_frontend_by_name(&cfg, "www");
	assert_non_null(fe);
	assert_int_equal(fe->index, 0);
	assert_int_equal(fe->line, 16);
	assert_int_equal(fe->nlisten, 2);
	assert_int_equal(fe->listen[0].ss.ss_family, AF_INET);
	assert_int_equal(fe->listen[1].ss.ss_family, AF_INET6);
	assert_string_equal(fe->listen[1].text, "[::1]:8443");
	assert_int_equal(fe->listen_fd[0], -1);
	sun = (const struct sockaddr_un *)&fe->backend.ss;
	assert_int_equal(sun->sun_family, AF_UNIX);
	assert_string_equal(sun->sun_path, "/run/app.sock");
	assert_string_equal(fe->certs[0].cert, cert_a);
	assert_string_equal(fe->certs[0].key, key_a);
	assert_int_equal(fe->certs[0].key_line, 20);
	assert_true(fe->allow_rsa_kx);
	assert_non_null(strstr(fe->priority, ":+RSA"));
	assert_int_equal(fe->handshake_timeout_ms, 5000);
	assert_int_equal(fe->idle_timeout_ms, 120000);
	assert_int_equal(fe->backend_connect_timeout_ms, 750);
	assert_int_equal(fe->rekey_interval_s, 3600);
	assert_int_equal(fe->rekey_bytes, 16 * 1024 * 1024);
	assert_false(fe->rekey_on_cert_change);
	assert_int_equal(fe->on_refusal, RENEG_CLOSE);
	assert_int_equal(fe->on_ignore, RENEG_KEEP);
	assert_int_equal(fe->rekey_timeout_ms, 20000);
	assert_int_equal(fe->client_renegotiation, 1);
	assert_int_equal(fe->client_renegotiation_limit, 5);

	/* a priority line longer than inih's 200-byte buffer arrives whole */
	fe = config_frontend_by_name(&cfg, "mail");
	assert_non_null(fe);
	assert_int_equal(fe->index, 1);
	assert_int_equal(fe->backend.ss.ss_family, AF_INET6);
	assert_non_null(strstr(fe->priority, "%SERVER_PRECEDENCE:-RSA"));
	assert_false(fe->allow_rsa_kx);
	assert_int_equal(fe->idle_timeout_ms, 600000);	/* default */
	assert_int_equal(fe->rekey_interval_s, 0);

	assert_int_equal(config_check_keys(&cfg, NULL, err, sizeof(err)), 0);
}

/* 10000 per worker unless the descriptor limit holds fewer (2 per conn). */
static unsigned
expected_max_connections(void)
{
	struct rlimit rl;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max == RLIM_INFINITY || (rl.rlim_max - 128) / 2 >= 10000)
		return 10000;
	return (unsigned)((rl.rlim_max - 128) / 2);
}

static void
test_defaults(void **state)
{
	conf_write(MOAT_HEAD FRONTEND_OK);
	if (config_load(conf_path, &cfg, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_true(cfg.workers >= 1);
	assert_string_equal(cfg.control, "/run/moat/control.sock");
	assert_string_equal(cfg.chroot_dir, "/var/lib/moat/empty");
	assert_int_equal(cfg.keyd_timeout_ms, 2000);
	assert_int_equal(cfg.max_connections, expected_max_connections());
	assert_int_equal(cfg.drain_timeout_ms, 10000);
	assert_int_equal(cfg.frontends[0].handshake_timeout_ms, 10000);
	assert_string_equal(cfg.frontends[0].priority,
	    MOAT_DEFAULT_PRIORITY ":-RSA");
}

/* Production defaults of renegotiation: no timed rekeys, gentle policies. */
static void
test_reneg_defaults(void **state)
{
	const struct frontend *fe;

	conf_write(MOAT_HEAD FRONTEND_OK);
	if (config_load(conf_path, &cfg, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	fe = &cfg.frontends[0];
	assert_int_equal(fe->rekey_interval_s, 0);
	assert_int_equal(fe->rekey_bytes, 0);
	assert_false(fe->rekey_on_cert_change);
	assert_int_equal(fe->on_refusal, RENEG_KEEP);
	assert_int_equal(fe->on_ignore, RENEG_KEEP);
	assert_int_equal(fe->rekey_timeout_ms, 10000);
	assert_int_equal(fe->client_renegotiation, 0);
	assert_int_equal(fe->client_renegotiation_limit, 3);
	/* generation 0 lives in slot = index; a rotation raises it */
	assert_int_equal(fe->key_generation, 0);
	assert_int_equal(IPC_KEY_SLOT(fe->index, 0, fe->key_generation), 0);
}

/* Load FRONTEND_OK plus one line; it must parse. */
static const struct frontend *
load_with(const char *line)
{
	char text[1024];

	snprintf(text, sizeof(text), "%s%s%s\n", MOAT_HEAD, FRONTEND_OK, line);
	conf_write(text);
	if (config_load(conf_path, &cfg, err, sizeof(err)) != 0)
		fail_msg("%s: %s", line, err);
	return &cfg.frontends[0];
}

static void
test_reneg_values(void **state)
{
	assert_int_equal(load_with("rekey-interval = 90")->rekey_interval_s,
	    90);
	assert_int_equal(load_with("rekey-interval = 2m")->rekey_interval_s,
	    120);
	assert_int_equal(load_with("rekey-interval = 2000ms")->rekey_interval_s,
	    2);
	assert_int_equal(load_with("rekey-interval = 0")->rekey_interval_s, 0);
	assert_int_equal(load_with("rekey-interval = 720h")->rekey_interval_s,
	    30 * 24 * 3600);
	assert_int_equal(load_with("rekey-bytes = 0")->rekey_bytes, 0);
	expect_error(MOAT_HEAD FRONTEND_OK "rekey-bytes = 4096\n", 9,
	    "rekey-bytes 4096 is below the least useful value, 64K");
	assert_int_equal(load_with("rekey-bytes = 64K")->rekey_bytes, 65536);
	assert_int_equal(load_with("rekey-bytes = 2G")->rekey_bytes,
	    2ull << 30);
	assert_false(load_with("rekey-on-cert-change = off")->
	    rekey_on_cert_change);
	assert_true(load_with("rekey-on-cert-change = YES")->
	    rekey_on_cert_change);
	assert_int_equal(load_with("on-refusal = close")->on_refusal,
	    RENEG_CLOSE);
	assert_int_equal(load_with("on-ignore = close")->on_ignore,
	    RENEG_CLOSE);
	assert_int_equal(load_with("on-ignore = keep")->on_ignore, RENEG_KEEP);
	assert_int_equal(load_with("rekey-timeout = 500ms")->rekey_timeout_ms,
	    500);
	assert_int_equal(load_with("rekey-timeout = 3")->rekey_timeout_ms, 3);
	assert_int_equal(load_with("client-renegotiation = allow")->
	    client_renegotiation, 1);
	assert_int_equal(load_with("client-renegotiation = refuse")->
	    client_renegotiation, 0);
	assert_int_equal(load_with("client-renegotiation-limit = 0")->
	    client_renegotiation_limit, 0);
	assert_int_equal(load_with("client-renegotiation-limit = 1000")->
	    client_renegotiation_limit, 1000);

	expect_error(MOAT_HEAD FRONTEND_OK "rekey-interval = 1500ms\n", 9,
	    "rekey-interval '1500ms' is not a whole number of seconds");
	expect_error(MOAT_HEAD FRONTEND_OK "rekey-interval = 721h\n", 9,
	    "bad duration '721h' for rekey-interval");
	expect_error(MOAT_HEAD FRONTEND_OK "rekey-interval = -1\n", 9,
	    "bad duration '-1' for rekey-interval");
	expect_error(MOAT_HEAD FRONTEND_OK "rekey-interval = 1d\n", 9,
	    "bad duration '1d' for rekey-interval");
	expect_error(MOAT_HEAD FRONTEND_OK "rekey-bytes = 12X\n", 9,
	    "bad size '12X' for rekey-bytes");
	expect_error(MOAT_HEAD FRONTEND_OK
	    "rekey-bytes = 18446744073709551615K\n", 9,
	    "bad size '18446744073709551615K'");
	expect_error(MOAT_HEAD FRONTEND_OK "rekey-bytes = -5\n", 9,
	    "bad size '-5'");
	expect_error(MOAT_HEAD FRONTEND_OK "rekey-on-cert-change = maybe\n", 9,
	    "bad value 'maybe' for rekey-on-cert-change (expected yes or no)");
	expect_error(MOAT_HEAD FRONTEND_OK "on-ignore = drop\n", 9,
	    "bad value 'drop' for on-ignore (expected keep or close)");
	expect_error(MOAT_HEAD FRONTEND_OK "rekey-timeout = 0\n", 9,
	    "rekey-timeout must not be 0");
	expect_error(MOAT_HEAD FRONTEND_OK "rekey-timeout = 2h\n", 9,
	    "bad duration '2h' for rekey-timeout");
	expect_error(MOAT_HEAD FRONTEND_OK "client-renegotiation = maybe\n", 9,
	    "bad value 'maybe' for client-renegotiation (expected refuse or "
	    "allow)");
	expect_error(MOAT_HEAD FRONTEND_OK
	    "client-renegotiation-limit = 1001\n", 9,
	    "bad number '1001' for client-renegotiation-limit (expected "
	    "0..1000)");
	expect_error(MOAT_HEAD FRONTEND_OK
	    "client-renegotiation-limit = 3/min\n", 9,
	    "bad number '3/min' for client-renegotiation-limit");
	expect_error(MOAT_HEAD FRONTEND_OK "rekey-timeout = 1s\n"
	    "rekey-timeout = 2s\n", 10,
	    "duplicate key 'rekey-timeout' (first set on line 9)");
}

/* The checks a certificate rotation shares with start-up. */
/* Session resumption: tickets, ticket-lifetime, ticket-key-file. */
static void
test_ticket_values(void **state)
{
	gnutls_datum_t secret;
	char why[256];

	conf_write(MOAT_HEAD FRONTEND_OK);
	assert_int_equal(config_load(conf_path, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.frontends[0].tickets, 1);		/* on by default */
	assert_int_equal(cfg.frontends[0].ticket_lifetime_s, 7200);
	assert_string_equal(cfg.ticket_key_file, "");
	assert_false(load_with("tickets = no")->tickets);
	assert_int_equal(load_with("ticket-lifetime = 1m")->ticket_lifetime_s,
	    60);
	assert_int_equal(load_with("ticket-lifetime = 90")->ticket_lifetime_s,
	    90);
	assert_int_equal(load_with("ticket-lifetime = 168h")->ticket_lifetime_s,
	    7 * 24 * 3600);
	expect_error(MOAT_HEAD FRONTEND_OK "ticket-lifetime = 59s\n", 9,
	    "ticket-lifetime '59s': a whole number of seconds from 60 s to "
	    "604800 s");
	expect_error(MOAT_HEAD FRONTEND_OK "ticket-lifetime = 60500ms\n", 9,
	    "ticket-lifetime '60500ms': a whole number");
	expect_error(MOAT_HEAD FRONTEND_OK "ticket-lifetime = 169h\n", 9,
	    "bad duration '169h' for ticket-lifetime");
	/* a PSK key exchange could resume a ticket without (EC)DHE */
	expect_error(MOAT_HEAD FRONTEND_OK "priority = NORMAL:+ECDHE-PSK\n", 9,
	    "the priority enables a PSK key exchange");
	assert_false(load_with("priority = NORMAL:+ECDHE-PSK\ntickets = no")->
	    tickets);
	expect_error(MOAT_HEAD FRONTEND_OK "tickets = maybe\n", 9,
	    "bad value 'maybe' for tickets (expected yes or no)");

	/* a private file of 32 bytes or more; the key file a is one */
	conf_write(MOAT_HEAD "ticket-key-file = %a\n" FRONTEND_OK);
	assert_int_equal(config_load(conf_path, &cfg, err, sizeof(err)), 0);
	assert_int_equal(config_ticket_secret_read(cfg.ticket_key_file,
	    &secret, why, sizeof(why)), 0);
	assert_true(secret.size >= 32);
	gnutls_memset(secret.data, 0, secret.size);
	gnutls_free(secret.data);
	expect_error(MOAT_HEAD "ticket-key-file = %o\n" FRONTEND_OK, 4,
	    "ticket-key-file");
	expect_error(MOAT_HEAD "ticket-key-file = %o\n" FRONTEND_OK, 4,
	    "is readable by others (mode 0644)");
	expect_error(MOAT_HEAD "ticket-key-file = tickets.key\n" FRONTEND_OK,
	    4, "ticket-key-file");
	(void)state;
}

static void
test_file_checks(void **state)
{
	char why[256], path[300];
	int pk;

	assert_int_equal(config_check_secret_file(key_a, why, sizeof(why)), 0);
	assert_int_equal(config_check_secret_file(key_open, why, sizeof(why)),
	    -EPERM);
	assert_string_equal(why, "readable by others (mode 0644); chmod 600 "
	    "it");
	assert_int_equal(chmod(key_open, 0620), 0);
	assert_int_equal(config_check_secret_file(key_open, why, sizeof(why)),
	    -EPERM);
	assert_string_equal(why, "writable by others (mode 0620); chmod 600 "
	    "it");
	assert_int_equal(chmod(key_open, 0644), 0);
	assert_int_equal(config_check_secret_file(tmpdir, why, sizeof(why)),
	    -EINVAL);
	assert_string_equal(why, "not a regular file");
	snprintf(path, sizeof(path), "%s/nope.key", tmpdir);
	assert_int_equal(config_check_secret_file(path, why, sizeof(why)),
	    -ENOENT);
	assert_string_equal(why, "No such file or directory");

	assert_int_equal(config_check_cert_file(cert_a, &pk, why, sizeof(why)),
	    0);
	assert_int_equal(pk, GNUTLS_PK_ECDSA);
	assert_int_equal(config_check_cert_file(garbage, &pk, why, sizeof(why)),
	    -EINVAL);
	assert_non_null(strstr(why, "does not parse as a PEM certificate "
	    "chain"));
	snprintf(path, sizeof(path), "%s/nope.crt", tmpdir);
	assert_int_equal(config_check_cert_file(path, &pk, why, sizeof(why)),
	    -ENOENT);
	/* a key is no certificate */
	assert_int_equal(config_check_cert_file(key_a, &pk, why, sizeof(why)),
	    -EINVAL);
}

static void
test_unknown_key(void **state)
{
	expect_error(MOAT_HEAD FRONTEND_OK "lisen = 1.2.3.4:5\n", 9,
	    "unknown key 'lisen' in [frontend www]");
	expect_error("[moat]\nworker = 2\n" FRONTEND_OK, 2,
	    "unknown key 'worker' in [moat]");
}

static void
test_unknown_section(void **state)
{
	expect_error(MOAT_HEAD "[front www]\n", 4, "unknown section [front www]");
	expect_error(MOAT_HEAD "[frontend]\n", 4, "needs a name");
	expect_error("listen = 1.2.3.4:5\n" MOAT_HEAD, 1, "outside a section");
}

static void
test_duplicate_key(void **state)
{
	expect_error(MOAT_HEAD FRONTEND_OK "backend = 127.0.0.1:9\n", 9,
	    "duplicate key 'backend' (first set on line 6)");
}

static void
test_missing_key(void **state)
{
	expect_error(MOAT_HEAD "\n[frontend www]\nlisten = 127.0.0.1:8443\n"
	    "backend = 127.0.0.1:8080\nkey = %a\n", 5,
	    "frontend www: missing required key 'cert'");
	expect_error(MOAT_HEAD "[frontend www]\ncert = %A\nkey = %a\n", 4,
	    "missing required key 'listen'");
}

static void
test_bad_number(void **state)
{
	expect_error("[moat]\nworkers = 0\n" FRONTEND_OK, 2,
	    "bad number '0' for workers");
	expect_error("[moat]\nmax-connections = 12x\n" FRONTEND_OK, 2,
	    "bad number '12x' for max-connections");
	expect_error(MOAT_HEAD FRONTEND_OK "handshake-timeout = 5 days\n", 9,
	    "bad duration '5 days'");
}

static void
test_bad_port(void **state)
{
	expect_error(MOAT_HEAD "[frontend www]\nlisten = 127.0.0.1:0\n", 5,
	    "bad port in listen '127.0.0.1:0'");
	expect_error(MOAT_HEAD "[frontend www]\nlisten = 127.0.0.1:65536\n", 5,
	    "bad port");
	expect_error(MOAT_HEAD "[frontend www]\nlisten = [::]:https\n", 5,
	    "bad port");
	expect_error(MOAT_HEAD "[frontend www]\nlisten = 127.0.0.1:443\n"
	    "backend = 127.0.0.1:99999\n", 6, "bad port in backend");
}

static void
test_bad_address(void **state)
{
	expect_error(MOAT_HEAD "[frontend www]\nlisten = 300.1.2.3:443\n", 5,
	    "bad address in listen '300.1.2.3:443'");
	expect_error(MOAT_HEAD "[frontend www]\nlisten = [::g]:443\n", 5,
	    "bad address");
	expect_error(MOAT_HEAD "[frontend www]\nlisten = 443\n", 5,
	    "bad listen '443'");
	expect_error(MOAT_HEAD "[frontend www]\nlisten = 127.0.0.1:443\n"
	    "backend = unix:relative.sock\n", 6, "bad backend");
}

static void
test_duplicate_listen(void **state)
{
	expect_error(MOAT_HEAD FRONTEND_OK "\n[frontend two]\n"
	    "backend = 127.0.0.1:8081\n"
	    "listen = 127.0.0.2:1, 127.0.0.1:8443\n"
	    "cert = %B\nkey = %b\n", 12,
	    "duplicate listen address 127.0.0.1:8443 (also in frontend www, "
	    "line 5)");
	expect_error(MOAT_HEAD "[frontend www]\n"
	    "listen = [::1]:443, [::1]:443\n", 5, "duplicate listen address");
}

static void
test_duplicate_frontend(void **state)
{
	expect_error(MOAT_HEAD FRONTEND_OK "[frontend www]\n", 9,
	    "duplicate frontend name 'www' (first on line 4)");
	expect_error(MOAT_HEAD "[moat]\n", 4, "duplicate [moat] section");
}

static void
test_missing_cert(void **state)
{
	expect_error(MOAT_HEAD "[frontend www]\ncert = /nonexistent/x.crt\n", 5,
	    "cert file /nonexistent/x.crt: No such file or directory");
}

static void
test_bad_cert(void **state)
{
	expect_error(MOAT_HEAD "[frontend www]\ncert = %g\n", 5,
	    "does not parse as a PEM certificate");
}

static void
test_missing_key_file(void **state)
{
	expect_error(MOAT_HEAD "[frontend www]\nkey = /nonexistent/x.key\n", 5,
	    "key file /nonexistent/x.key: No such file or directory");
}

static void
test_key_mode(void **state)
{
	char want[512];

	snprintf(want, sizeof(want), "key file %s is readable by others "
	    "(mode 0644); chmod 600 it", key_open);
	expect_error(MOAT_HEAD "[frontend www]\nkey = %o\n", 5, want);
}

static void
test_key_mismatch(void **state)
{
	char want[1024];

	conf_write(MOAT_HEAD "[frontend www]\nlisten = 127.0.0.1:8443\n"
	    "backend = 127.0.0.1:8080\ncert = %A\nkey = %b\n");
	if (config_load(conf_path, &cfg, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_not_equal(config_check_keys(&cfg, NULL, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s:8: key file %s does not match "
	    "certificate %s", conf_path, key_b, cert_a);
	assert_string_equal(err, want);
}

static void
test_unknown_user(void **state)
{
	expect_error("[moat]\nuser = no-such-user-here\n" FRONTEND_OK, 2,
	    "unknown user 'no-such-user-here' for user");
	expect_error("[moat]\nuser = root\n" FRONTEND_OK, 2,
	    "must not be uid 0");
}

static void
test_no_frontend(void **state)
{
	expect_error(MOAT_HEAD, 1, "no [frontend NAME] section");
}

static void
test_bad_priority(void **state)
{
	expect_error(MOAT_HEAD FRONTEND_OK "\npriority = NORMAL:+NOPE-42\n", 10,
	    "bad priority string");
}

static void
test_proxy_values(void **state)
{
	const struct frontend *fe;

	(void)state;
	fe = load_with("alpn = h2, http/1.1");
	assert_int_equal(fe->nalpn, 2);
	assert_string_equal(fe->alpn[0], "h2");
	assert_string_equal(fe->alpn[1], "http/1.1");
	assert_int_equal(load_with("proxy-protocol = no")->proxy_protocol, 0);
	assert_int_equal(load_with("proxy-protocol = v1")->proxy_protocol,
	    CONFIG_PROXY_V1);
	assert_int_equal(load_with("proxy-protocol = v2")->proxy_protocol,
	    CONFIG_PROXY_V2);
	fe = load_with("accept-proxy = any\naccept-proxy-from = 10.0.0.0/8, "
	    "::1, 192.0.2.1");
	assert_int_equal(fe->accept_proxy, CONFIG_PROXY_V1 | CONFIG_PROXY_V2);
	assert_int_equal(fe->naccept_proxy_from, 3);
	assert_int_equal(fe->accept_proxy_from[0].bits, 8);
	assert_int_equal(fe->accept_proxy_from[0].addr[0], 10);
	assert_int_equal(fe->accept_proxy_from[1].family, AF_INET6);
	assert_int_equal(fe->accept_proxy_from[1].bits, 128);
	assert_int_equal(fe->accept_proxy_from[2].bits, 32);
	assert_int_equal(load_with("accept-proxy = no")->accept_proxy, 0);

	expect_error(MOAT_HEAD FRONTEND_OK "accept-proxy = v2\n", 9,
	    "accept-proxy needs accept-proxy-from");
	expect_error(MOAT_HEAD FRONTEND_OK "accept-proxy = v3\n", 9,
	    "expected no, v1, v2 or any");
	expect_error(MOAT_HEAD FRONTEND_OK "proxy-protocol = yes\n", 9,
	    "expected no, v1 or v2");
	expect_error(MOAT_HEAD FRONTEND_OK "accept-proxy-from = 10.0.0.1/8\n",
	    9, "bad network '10.0.0.1/8'");
	expect_error(MOAT_HEAD FRONTEND_OK "accept-proxy-from = 10.0.0.0/33\n",
	    9, "bad network '10.0.0.0/33'");
	expect_error(MOAT_HEAD FRONTEND_OK "accept-proxy-from = 10.0.0.0/8x\n",
	    9, "bad network '10.0.0.0/8x'");
	expect_error(MOAT_HEAD FRONTEND_OK "accept-proxy-from = 10.0.0.0,,\n",
	    9, "bad network ''");
	expect_error(MOAT_HEAD FRONTEND_OK "alpn = h2, h2\n", 9,
	    "alpn protocol 'h2' twice");
	expect_error(MOAT_HEAD FRONTEND_OK "alpn = h2,\n", 9,
	    "bad alpn protocol ''");
	expect_error(MOAT_HEAD FRONTEND_OK
	    "alpn = a,b,c,d,e,f,g,h,i\n", 9, "more than 8 alpn protocols");
}

/* profile = and the client-certificate keys (issue 10) */
static void
test_profiles(void **state)
{
	static const char *names[] = { "modern", "intermediate", "compat",
	    "fips" };
	const struct frontend *fe;
	char why[256], text[1024];
	size_t i;
	int prof;

	(void)state;
	/* the table: each name, its own string, intermediate the default */
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		prof = config_profile_find(names[i]);
		assert_true(prof > CONFIG_PROFILE_NONE);
		assert_string_equal(config_profile_name(prof), names[i]);
		snprintf(text, sizeof(text), "profile = %s", names[i]);
		fe = load_with(text);
		assert_int_equal(fe->profile, prof);
		assert_int_equal(strncmp(fe->priority,
		    config_profile_priority(prof),
		    strlen(config_profile_priority(prof))), 0);
		assert_string_equal(fe->priority +
		    strlen(config_profile_priority(prof)), ":-RSA");
	}
	assert_int_equal(config_profile_find("old"), -1);
	assert_string_equal(config_profile_priority(
	    CONFIG_PROFILE_INTERMEDIATE), MOAT_DEFAULT_PRIORITY);
	assert_non_null(strstr(config_profile_priority(CONFIG_PROFILE_MODERN),
	    "-VERS-ALL:+VERS-TLS1.3:-"));
	assert_null(strstr(config_profile_priority(CONFIG_PROFILE_FIPS),
	    "CHACHA20"));
	assert_non_null(strstr(config_profile_priority(CONFIG_PROFILE_COMPAT),
	    "+AES-128-CBC"));
	/* the fips check bites on what FIPS 140-3 does not approve */
	assert_int_equal(config_profile_fips_check(config_profile_priority(
	    CONFIG_PROFILE_FIPS), why, sizeof(why)), 0);
	assert_int_equal(config_profile_fips_check(MOAT_DEFAULT_PRIORITY, why,
	    sizeof(why)), -1);
	assert_non_null(strstr(why, "CHACHA20-POLY1305 is not FIPS 140-3"));
	snprintf(text, sizeof(text), "%s:+CHACHA20-POLY1305",
	    config_profile_priority(CONFIG_PROFILE_FIPS));
	assert_int_equal(config_profile_fips_check(text, why, sizeof(why)), -1);
	snprintf(text, sizeof(text), "%s:+GROUP-X25519",
	    config_profile_priority(CONFIG_PROFILE_FIPS));
	assert_int_equal(config_profile_fips_check(text, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "group X25519"));
	snprintf(text, sizeof(text), "%s:+SIGN-EdDSA-Ed25519",
	    config_profile_priority(CONFIG_PROFILE_FIPS));
	assert_int_equal(config_profile_fips_check(text, why, sizeof(why)), -1);

	/* refusals, each at its line */
	expect_error(MOAT_HEAD FRONTEND_OK "profile = old\n", 9,
	    "bad profile 'old' (expected modern, intermediate, compat or fips)");
	expect_error(MOAT_HEAD FRONTEND_OK "profile = modern\npriority = "
	    "NORMAL\n", 10, "profile and priority both set (line 9 and 10)");
	expect_error(MOAT_HEAD FRONTEND_OK "priority = NORMAL\nprofile = "
	    "modern\n", 10, "profile and priority both set (line 10 and 9)");
	expect_error(MOAT_HEAD FRONTEND_OK "profile = fips\nallow-rsa-kx = "
	    "yes\n", 9, "profile fips: key exchange RSA is not FIPS 140-3");
	expect_error(MOAT_HEAD "[frontend www]\nlisten = 127.0.0.1:8443\n"
	    "backend = 127.0.0.1:8080\ncert = %E\nkey = %e\nprofile = fips\n",
	    7, "profile fips: the certificate's key is EdDSA (Ed25519)");
}

static void
test_mtls_values(void **state)
{
	const struct frontend *fe;

	(void)state;
	fe = load_with("");
	assert_int_equal(fe->verify, CONFIG_VERIFY_NONE);
	assert_int_equal(fe->ca_fd, -1);
	assert_int_equal(fe->crl_fd, -1);
	fe = load_with("ca-file = %A\nverify = required");
	assert_int_equal(fe->verify, CONFIG_VERIFY_REQUIRED);
	assert_string_equal(fe->ca_file, cert_a);
	fe = load_with("ca-file = %A\ncrl-file = /x/crl.pem\nverify = optional");
	assert_int_equal(fe->verify, CONFIG_VERIFY_OPTIONAL);
	assert_string_equal(fe->crl_file, "/x/crl.pem");
	assert_int_equal(load_with("verify = none")->verify,
	    CONFIG_VERIFY_NONE);

	expect_error(MOAT_HEAD FRONTEND_OK "verify = required\n", 9,
	    "verify = required needs ca-file");
	expect_error(MOAT_HEAD FRONTEND_OK "verify = optional\n", 9,
	    "verify = optional needs ca-file");
	expect_error(MOAT_HEAD FRONTEND_OK "verify = maybe\n", 9,
	    "bad verify 'maybe' (expected none, optional or required)");
	expect_error(MOAT_HEAD FRONTEND_OK "ca-file = %A\n", 9,
	    "ca-file without verify = optional or required");
	expect_error(MOAT_HEAD FRONTEND_OK "crl-file = /x\nverify = none\n",
	    9, "crl-file needs ca-file");
	expect_error(MOAT_HEAD FRONTEND_OK "ca-file = %g\nverify = required\n",
	    9, "ca-file ");
	expect_error(MOAT_HEAD FRONTEND_OK "ca-file = %a\nverify = required\n",
	    9, "holds a private key");
	expect_error(MOAT_HEAD FRONTEND_OK "ca-file = rel.pem\n", 9,
	    "absolute");
}

static void
test_bad_values(void **state)
{
	expect_error(MOAT_HEAD FRONTEND_OK "on-refusal = maybe\n", 9,
	    "bad value 'maybe' for on-refusal (expected keep or close)");
	expect_error(MOAT_HEAD FRONTEND_OK "client-renegotiation = yes\n", 9,
	    "expected refuse or allow");
	expect_error(MOAT_HEAD FRONTEND_OK "allow-rsa-kx = perhaps\n", 9,
	    "expected yes or no");
	expect_error(MOAT_HEAD FRONTEND_OK "rekey-bytes = 1T\n", 9,
	    "bad size '1T'");
	expect_error("[moat]\nlog-level = loud\n" FRONTEND_OK, 2,
	    "bad log-level 'loud'");
	expect_error("[moat]\nkeyd = /nonexistent/moat-keyd\n" FRONTEND_OK, 2,
	    "keyd /nonexistent/moat-keyd: No such file or directory");
	expect_error("[moat]\ncontrol = run/control.sock\n" FRONTEND_OK, 2,
	    "must be an absolute path");
}

static void
test_syntax(void **state)
{
	expect_error(MOAT_HEAD "just some words\n" FRONTEND_OK, 4,
	    "syntax error");
	expect_error(MOAT_HEAD "[frontend www\n", 4, "no closing ']'");
}

static void
test_missing_file(void **state)
{
	char want[512];

	snprintf(want, sizeof(want), "%s/nope.conf: No such file or directory",
	    tmpdir);
	snprintf(conf_path + strlen(tmpdir), sizeof(conf_path) -
	    strlen(tmpdir), "/nope.conf");
	assert_int_not_equal(config_load(conf_path, &cfg, err, sizeof(err)), 0);
	snprintf(conf_path + strlen(tmpdir), sizeof(conf_path) -
	    strlen(tmpdir), "/moat.conf");
	assert_string_equal(err, want);
}

static void
test_addr_parse(void **state)
{
	struct config_addr a;

	assert_int_equal(config_addr_parse("0.0.0.0:443", 0, &a), 0);
	assert_int_equal(config_addr_parse("[::]:443", 0, &a), 0);
	assert_int_equal(config_addr_parse("unix:/x", 0, &a), -EINVAL);
	assert_int_equal(config_addr_parse("unix:/x", 1, &a), 0);
	assert_int_equal(config_addr_parse("1.2.3.4:-1", 0, &a), -ERANGE);
	assert_int_equal(config_addr_parse("[::1]443", 0, &a), -EINVAL);
	assert_int_equal(config_addr_parse("host:443", 0, &a), -EADDRNOTAVAIL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_reneg_defaults),
		cmocka_unit_test(test_reneg_values),
		cmocka_unit_test(test_proxy_values),
		cmocka_unit_test(test_ticket_values),
		cmocka_unit_test(test_file_checks),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_unknown_section),
		cmocka_unit_test(test_duplicate_key),
		cmocka_unit_test(test_missing_key),
		cmocka_unit_test(test_bad_number),
		cmocka_unit_test(test_bad_port),
		cmocka_unit_test(test_bad_address),
		cmocka_unit_test(test_duplicate_listen),
		cmocka_unit_test(test_duplicate_frontend),
		cmocka_unit_test(test_missing_cert),
		cmocka_unit_test(test_bad_cert),
		cmocka_unit_test(test_missing_key_file),
		cmocka_unit_test(test_key_mode),
		cmocka_unit_test(test_key_mismatch),
		cmocka_unit_test(test_unknown_user),
		cmocka_unit_test(test_no_frontend),
		cmocka_unit_test(test_bad_priority),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_profiles),
		cmocka_unit_test(test_mtls_values),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_addr_parse),
	};

	return cmocka_run_group_tests(tests, testconf_setup, testconf_teardown);
}
