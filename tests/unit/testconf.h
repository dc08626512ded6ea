/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * testconf.h -- what the config unit tests share (testconf.c).
 */
#ifndef MOAT_TESTCONF_H
#define MOAT_TESTCONF_H

#include <sys/types.h>

#include <stddef.h>

#include <gnutls/gnutls.h>

#include "../../daemon/conf.h"

extern char tmpdir[];
extern char conf_path[256];
extern char cert_a[256], key_a[256], cert_b[256], key_b[256];
extern char key_open[256], garbage[256];
extern char cert_rsa[256], key_rsa[256], cert_ed[256], key_ed[256];
extern char combined[256];
extern struct config cfg;
extern char err[1024];

#define MOAT_HEAD \
	"[moat]\n" \
	"user = nobody\n" \
	"keyd-user = daemon\n"

#define FRONTEND_OK \
	"[frontend www]\n" \
	"listen = 127.0.0.1:8443\n" \
	"backend = 127.0.0.1:8080\n" \
	"cert = %A\n" \
	"key = %a\n"

/* testconf.c */
void	testconf_write_file(const char *path, const void *data, size_t len,
	    mode_t mode);
void	testconf_make_pair(const char *cert_path, const char *key_path,
	    const char *cn, gnutls_pk_algorithm_t pk, unsigned bits);
void	testconf_concat(const char *dst, const char *a, const char *b);
int	testconf_setup(void **state);
int	testconf_teardown(void **state);
void	conf_write(const char *text);
void	expect_error(const char *text, int line, const char *what);
const struct frontend *expect_load(const char *text);

#endif
