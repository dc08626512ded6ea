/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * testconf.c -- what the config unit tests share (testconf.h): keys and
 * certificates made on the spot, a config written with their paths, and
 * the check that a broken one fails at the right line.
 *
 * The users are "nobody" (workers) and "daemon" (keyd), which Debian
 * always has; MOAT_KEYD points at /bin/true so the keyd lookup succeeds
 * without a built keyd.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

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

#include "testconf.h"

char tmpdir[] = "/tmp/moat-test-config-XXXXXX";
char conf_path[256];
char cert_a[256], key_a[256], cert_b[256], key_b[256];
char key_open[256], garbage[256];
char cert_rsa[256], key_rsa[256], cert_ed[256], key_ed[256];
char combined[256];
struct config cfg;
char err[1024];

void
testconf_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	FILE *fp;

	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(path, mode), 0);
}

/* A self-signed certificate of that key kind and its key, as PEM files. */
void
testconf_make_pair(const char *cert_path, const char *key_path,
    const char *cn, gnutls_pk_algorithm_t pk, unsigned bits)
{
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	gnutls_datum_t out;
	time_t now = time(NULL);
	unsigned char serial[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	assert_int_equal(gnutls_x509_privkey_init(&key), 0);
	assert_int_equal(gnutls_x509_privkey_generate(key, pk, bits, 0), 0);
	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	assert_int_equal(gnutls_x509_crt_set_version(crt, 3), 0);
	assert_int_equal(gnutls_x509_crt_set_serial(crt, serial,
	    sizeof(serial)), 0);
	assert_int_equal(gnutls_x509_crt_set_activation_time(crt, now - 60), 0);
	assert_int_equal(gnutls_x509_crt_set_expiration_time(crt,
	    now + 86400), 0);
	assert_int_equal(gnutls_x509_crt_set_dn_by_oid(crt,
	    GNUTLS_OID_X520_COMMON_NAME, 0, cn, (unsigned)strlen(cn)), 0);
	assert_int_equal(gnutls_x509_crt_set_key(crt, key), 0);
	assert_int_equal(gnutls_x509_crt_sign2(crt, crt, key,
	    pk == GNUTLS_PK_EDDSA_ED25519 ? GNUTLS_DIG_UNKNOWN :
	    GNUTLS_DIG_SHA256, 0), 0);

	assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM,
	    &out), 0);
	testconf_write_file(cert_path, out.data, out.size, 0644);
	gnutls_free(out.data);
	assert_int_equal(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM,
	    &out), 0);
	testconf_write_file(key_path, out.data, out.size, 0600);
	gnutls_free(out.data);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
}

/* dst = a followed by b (mode 0600: it holds a key). */
void
testconf_concat(const char *dst, const char *a, const char *b)
{
	char buf[16384];
	size_t n = 0, m;
	FILE *fp;

	assert_non_null(fp = fopen(a, "r"));
	n = fread(buf, 1, sizeof(buf), fp);
	fclose(fp);
	assert_non_null(fp = fopen(b, "r"));
	m = fread(buf + n, 1, sizeof(buf) - n, fp);
	fclose(fp);
	testconf_write_file(dst, buf, n + m, 0600);
}

int
testconf_setup(void **state)
{
	char buf[4096];
	FILE *fp;
	size_t n;

	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(conf_path, sizeof(conf_path), "%s/moat.conf", tmpdir);
	snprintf(cert_a, sizeof(cert_a), "%s/a.crt", tmpdir);
	snprintf(key_a, sizeof(key_a), "%s/a.key", tmpdir);
	snprintf(cert_b, sizeof(cert_b), "%s/b.crt", tmpdir);
	snprintf(key_b, sizeof(key_b), "%s/b.key", tmpdir);
	snprintf(key_open, sizeof(key_open), "%s/open.key", tmpdir);
	snprintf(garbage, sizeof(garbage), "%s/garbage.crt", tmpdir);
	snprintf(cert_rsa, sizeof(cert_rsa), "%s/rsa.crt", tmpdir);
	snprintf(key_rsa, sizeof(key_rsa), "%s/rsa.key", tmpdir);
	snprintf(cert_ed, sizeof(cert_ed), "%s/ed.crt", tmpdir);
	snprintf(key_ed, sizeof(key_ed), "%s/ed.key", tmpdir);
	snprintf(combined, sizeof(combined), "%s/combined.pem", tmpdir);
	testconf_make_pair(cert_a, key_a, "a.test", GNUTLS_PK_ECDSA,
	    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1));
	testconf_make_pair(cert_b, key_b, "b.test", GNUTLS_PK_ECDSA,
	    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1));
	testconf_make_pair(cert_rsa, key_rsa, "rsa.test", GNUTLS_PK_RSA, 2048);
	testconf_make_pair(cert_ed, key_ed, "ed.test", GNUTLS_PK_EDDSA_ED25519,
	    256);
	/* the same key as a, but readable by everyone */
	if ((fp = fopen(key_a, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf), fp);
	fclose(fp);
	testconf_write_file(key_open, buf, n, 0644);
	testconf_write_file(garbage, "not a certificate\n", 18, 0644);
	/* HAProxy style: the key after the certificate, in one file */
	testconf_concat(combined, cert_a, key_a);
	setenv("MOAT_KEYD", "/bin/true", 1);
	return 0;
}

int
testconf_teardown(void **state)
{
	const char *files[] = { conf_path, cert_a, key_a, cert_b, key_b,
	    key_open, garbage, cert_rsa, key_rsa, cert_ed, key_ed, combined };
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlink(files[i]);
	rmdir(tmpdir);
	return 0;
}

/*
 * Write the config: "%A"/"%a" and "%B"/"%b" stand for cert/key a and b,
 * "%R"/"%r" and "%E"/"%e" for the RSA and Ed25519 pair, "%C" for the
 * combined certificate+key file, "%o" the open key, "%g" garbage.
 */
void
conf_write(const char *text)
{
	char out[8192];
	size_t o = 0;
	const char *s, *rep;

	for (s = text; *s != '\0'; s++) {
		rep = NULL;
		if (s[0] == '%' && s[1] == 'A')
			rep = cert_a;
		else if (s[0] == '%' && s[1] == 'a')
			rep = key_a;
		else if (s[0] == '%' && s[1] == 'B')
			rep = cert_b;
		else if (s[0] == '%' && s[1] == 'b')
			rep = key_b;
		else if (s[0] == '%' && s[1] == 'o')
			rep = key_open;
		else if (s[0] == '%' && s[1] == 'g')
			rep = garbage;
		else if (s[0] == '%' && s[1] == 'R')
			rep = cert_rsa;
		else if (s[0] == '%' && s[1] == 'r')
			rep = key_rsa;
		else if (s[0] == '%' && s[1] == 'E')
			rep = cert_ed;
		else if (s[0] == '%' && s[1] == 'e')
			rep = key_ed;
		else if (s[0] == '%' && s[1] == 'C')
			rep = combined;
		if (rep != NULL) {
			assert_true(o + strlen(rep) < sizeof(out));
			memcpy(out + o, rep, strlen(rep));
			o += strlen(rep);
			s++;
			continue;
		}
		assert_true(o + 1 < sizeof(out));
		out[o++] = *s;
	}
	testconf_write_file(conf_path, out, o, 0644);
}

/* Load text; it must load.  Its first frontend. */
const struct frontend *
expect_load(const char *text)
{
	conf_write(text);
	if (config_load(conf_path, &cfg, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	return &cfg.frontends[0];
}

/* Load text; it must fail at line with a reason containing what. */
void
expect_error(const char *text, int line, const char *what)
{
	char prefix[512];

	conf_write(text);
	assert_int_not_equal(config_load(conf_path, &cfg, err, sizeof(err)), 0);
	snprintf(prefix, sizeof(prefix), "%s:%d: ", conf_path, line);
	if (strncmp(err, prefix, strlen(prefix)) != 0 ||
	    strstr(err, what) == NULL)
		fail_msg("expected \"%s...%s\", got \"%s\"", prefix, what, err);
}
