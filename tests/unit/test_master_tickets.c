/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_master_tickets.c -- the session-ticket keys (master_tickets.c):
 * the same secret gives the same keys frontend by frontend (so nodes that
 * share a ticket-key-file agree), another secret or another frontend name
 * gives other keys, a file's key is its secret's, and without a file every
 * start draws a new one.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <gnutls/gnutls.h>

#include "conf.h"
#include "master_tickets.h"

static struct config cfg;

static void
two_frontends(const char *a, const char *b)
{
	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.frontends[0].name, sizeof(cfg.frontends[0].name), "%s", a);
	snprintf(cfg.frontends[1].name, sizeof(cfg.frontends[1].name), "%s", b);
	cfg.nfrontends = 2;
}

static int
key_eq(const struct config_tickets *x, unsigned i,
    const struct config_tickets *y, unsigned j)
{
	return memcmp(x->key[i], y->key[j], CONFIG_TICKET_KEY_SIZE) == 0;
}

static void
test_derive(void **state)
{
	static unsigned char s1[48] = "the secret every node of the cluster has";
	static unsigned char s2[48] = "the secret every node of the cluster hat";
	const gnutls_datum_t d1 = { s1, sizeof(s1) }, d2 = { s2, sizeof(s2) };
	static const uint8_t zero[CONFIG_TICKET_KEY_SIZE];
	struct config_tickets a, b, c;

	(void)state;
	two_frontends("www", "api");
	assert_int_equal(master_tickets_derive(&cfg, &d1, &a), 0);
	assert_int_equal(master_tickets_derive(&cfg, &d1, &b), 0);
	assert_true(key_eq(&a, 0, &b, 0) && key_eq(&a, 1, &b, 1));
	assert_false(key_eq(&a, 0, &a, 1));	/* frontends apart */
	assert_memory_not_equal(a.key[0], zero, sizeof(zero));
	assert_memory_equal(a.key[2], zero, sizeof(zero));	/* unused */
	assert_int_equal(master_tickets_derive(&cfg, &d2, &c), 0);
	assert_false(key_eq(&a, 0, &c, 0) || key_eq(&a, 1, &c, 1));
	/* the key follows the frontend's name, not its place */
	two_frontends("api", "www");
	assert_int_equal(master_tickets_derive(&cfg, &d1, &c), 0);
	assert_true(key_eq(&a, 0, &c, 1) && key_eq(&a, 1, &c, 0));
}

static void
test_init(void **state)
{
	static unsigned char secret[48] = "forty-eight bytes of a ticket-key-file...";
	const gnutls_datum_t d = { secret, sizeof(secret) };
	char dir[] = "/tmp/test_master_tickets.XXXXXX", err[512];
	struct config_tickets want, *got = NULL, *other = NULL;
	int fd;

	(void)state;
	two_frontends("www", "api");
	assert_non_null(mkdtemp(dir));
	snprintf(cfg.ticket_key_file, sizeof(cfg.ticket_key_file), "%s/tk", dir);
	fd = open(cfg.ticket_key_file, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, secret, sizeof(secret)), sizeof(secret));
	close(fd);
	assert_int_equal(master_tickets_init(&cfg, &got, err, sizeof(err)), 0);
	assert_int_equal(master_tickets_derive(&cfg, &d, &want), 0);
	assert_true(key_eq(got, 0, &want, 0) && key_eq(got, 1, &want, 1));
	master_tickets_free(got);

	/* too short a secret: refused, with why */
	assert_int_equal(truncate(cfg.ticket_key_file, 31), 0);
	assert_int_equal(master_tickets_init(&cfg, &got, err, sizeof(err)),
	    -EINVAL);
	assert_null(got);
	assert_non_null(strstr(err, "must hold 32 to 4096 bytes"));
	unlink(cfg.ticket_key_file);
	rmdir(dir);

	/* no file: a new random key at every start */
	cfg.ticket_key_file[0] = '\0';
	assert_int_equal(master_tickets_init(&cfg, &got, err, sizeof(err)), 0);
	assert_int_equal(master_tickets_init(&cfg, &other, err, sizeof(err)), 0);
	assert_false(key_eq(got, 0, other, 0));
	master_tickets_free(got);
	master_tickets_free(other);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_derive),
		cmocka_unit_test(test_init),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
