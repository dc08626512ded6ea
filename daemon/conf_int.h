/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conf_int.h -- the parse state shared by the files of the config parser
 * (conf.h is what the rest of moatd sees).
 *
 *	conf_load.c	load: the line reader, the inih handler, sections,
 *			defaults and the whole-file checks
 *	conf_keys.c	the [moat] and [frontend] key tables and their setters
 *	conf_profile.c	the named profiles (profile =), the fips check, and
 *			the client-certificate keys' whole-file rules
 *	conf_check.c	files and users: secret files, certificate chains,
 *			sandbox users, and the key checks of moatd -t
 *	conf_value.c	numbers, durations, booleans, strings, paths,
 *			addresses, and the one error the parse reports
 *
 * Calls run down that list, never back up; conf.h (no .c of its own) is
 * under all of them.
 */
#ifndef MOAT_CONF_INT_H
#define MOAT_CONF_INT_H

#include <stdint.h>
#include <stdio.h>

#include <gnutls/crypto.h>

#include "conf.h"

#define CONFIG_MAX_WORKERS	256u
#define CONFIG_MOAT_KEYS_MAX	28	/* room in config_parse.moat_seen */
#define CONFIG_FE_KEYS_MAX	48	/* room in config_parse.fe_seen[] */

enum config_section {
	SECTION_NONE = 0,
	SECTION_MOAT,
	SECTION_FRONTEND,
};

struct config_parse {
	struct config		*cfg;
	const struct config_sys	*sys;		/* config_sys_real but in tests */
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
	/* the line where each key was set, by index in its table */
	int			moat_seen[CONFIG_MOAT_KEYS_MAX];
	int			fe_seen[CONFIG_MAX_FRONTENDS][CONFIG_FE_KEYS_MAX];
	int			priority_line[CONFIG_MAX_FRONTENDS];
	int			listen_line[CONFIG_MAX_FRONTENDS];
	int			user_line, keyd_user_line, keyd_line;
	int			pkcs11_module_line;
	int			workers_auto, keyd_threads_auto;
	int			max_connections_set;
	char			priority[CONFIG_MAX_FRONTENDS][512];
	gnutls_hash_hd_t	text_hash;	/* of every byte read: text_sha256 */
};

/* conf_keys.c */
void	config_key_set(struct config_parse *p, const char *name,
	    const char *value);
const char *config_frontend_missing(const struct config_parse *p,
	    unsigned index);

/* conf_profile.c: before the priority is built, then after */
void	config_profile_conflicts(struct config_parse *p,
	    const struct frontend *fe);
void	config_profile_finish(struct config_parse *p,
	    const struct frontend *fe);

/* conf_pair.c */
int	config_set_cert(struct config_parse *p, const char *v);
int	config_set_key(struct config_parse *p, const char *v);
int	config_set_ocsp(struct config_parse *p, const char *v);
int	config_pairs_finish(struct config_parse *p, struct frontend *fe,
	    unsigned *total);

/* conf_check.c */
int	config_user_check(struct config_parse *p, int line, const char *key,
	    const char *user, int is_default);
int	config_cert_file(struct config_parse *p, const char *what,
	    const char *path, int *pk);
int	config_secret_file(struct config_parse *p, const char *what,
	    const char *path);

/* conf_pkcs11.c */
int	config_set_pkcs11_module(struct config_parse *p, const char *v);
int	config_set_pkcs11_allow(struct config_parse *p, const char *v);
int	config_set_pkcs11_allow_write(struct config_parse *p, const char *v);
int	config_set_key_pin_file(struct config_parse *p, const char *v);
int	config_pkcs11_key(struct config_parse *p, struct frontend_cert *fc,
	    const char *v);
void	config_pkcs11_finish(struct config_parse *p);

/* conf_backend.c */
int	config_set_backend_tls(struct config_parse *p, const char *v);
/* conf_mail.c */
int	config_set_starttls(struct config_parse *p, const char *v);
int	config_set_starttls_required(struct config_parse *p, const char *v);
void	config_mail_finish(struct config_parse *p, const struct frontend *fe);
int	config_set_backend_ca(struct config_parse *p, const char *v);
int	config_set_backend_name(struct config_parse *p, const char *v);
void	config_backend_tls_finish(struct config_parse *p, struct frontend *fe);

/* A unit a number may carry in moat.conf, and what it multiplies by. */
struct config_unit {
	const char	*suffix;
	uint64_t	mult;
};

/* conf_value.c */
void	config_error(struct config_parse *p, int line, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
int	config_parse_u64(const char *s, uint64_t *out);
int	config_uint(struct config_parse *p, const char *key, const char *v,
	    unsigned min, unsigned max, unsigned *out);
int	config_scaled(const char *v, const struct config_unit *units,
	    uint64_t max, uint64_t *out);
int	config_duration(struct config_parse *p, const char *key, const char *v,
	    uint64_t unit_ms, uint64_t max_ms, uint64_t *out_ms);
int	config_ms(struct config_parse *p, const char *key, const char *v,
	    unsigned max_ms, unsigned *out);
int	config_ms_nonzero(struct config_parse *p, const char *key,
	    const char *v, unsigned max_ms, unsigned *out);
int	config_bool(struct config_parse *p, const char *key, const char *v,
	    int *out);

/* conf_proxy.c: ALPN and the PROXY protocol keys */
int	config_set_alpn(struct config_parse *p, const char *v);
int	config_set_proxy_protocol(struct config_parse *p, const char *v);
int	config_set_accept_proxy(struct config_parse *p, const char *v);
int	config_set_accept_proxy_from(struct config_parse *p, const char *v);
int	config_string(struct config_parse *p, const char *key, const char *v,
	    char *out, size_t size);
int	config_abspath(struct config_parse *p, const char *key, const char *v,
	    char *out, size_t size);
int	config_backend_resolve(const char *text, struct config_addr *out);
int	config_addr_error(struct config_parse *p, const char *key,
	    const char *text, int r);
int	config_addr_equal(const struct config_addr *a,
	    const struct config_addr *b);

#endif
