/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conf_load.c -- read moat.conf (inih) and check everything that can be checked
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
 * This file holds the reading, the sections, the defaults and the checks
 * of the whole file; the keys are in conf_keys.c, the values in
 * conf_value.c, the file and user checks in conf_check.c (conf_int.h).
 * conf.h, their one public header, has no .c of its own, so that no file
 * of the parser includes one above it.
 *
 * The master never reads a private key: config_load() only stat()s and
 * open()s the key file.  config_check_keys() loads keys and is called by
 * `moatd -t` alone, in a process that exits right after.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <ini.h>

#include "conf.h"
#include "conf_int.h"
#include "control_proto.h"
#include "privdrop.h"

#define CONFIG_MAX_NAME_PART	100	/* "name =" of an over-long line */

/* --- sections and lines ------------------------------------------------- */

static void
config_frontend_defaults(struct frontend *fe, unsigned index)
{
	unsigned i;

	memset(fe, 0, sizeof(*fe));
	fe->index = index;
	for (i = 0; i < CONFIG_MAX_LISTEN; i++)
		fe->listen_fd[i] = -1;
	for (i = 0; i < CONFIG_MAX_CERTS; i++) {
		fe->certs[i].cert_fd = -1;
		fe->certs[i].ocsp_fd = -1;
	}
	fe->ca_fd = -1;
	fe->crl_fd = -1;
	fe->backend_ca_fd = -1;
	fe->handshake_timeout_ms = 10 * 1000;
	fe->idle_timeout_ms = 600 * 1000;
	fe->backend_connect_timeout_ms = 5 * 1000;
	fe->rekey_on_cert_change = 0;	/* see moat.conf(5): clients may refuse */
	fe->on_refusal = RENEG_KEEP;
	fe->on_ignore = RENEG_KEEP;
	fe->rekey_timeout_ms = 10 * 1000;
	fe->client_renegotiation = 0;
	fe->client_renegotiation_limit = 3;
	fe->tickets = 1;		/* resumption on by default, as nginx */
	fe->ticket_lifetime_s = CONFIG_TICKET_LIFETIME_DEFAULT;
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
	if (p->text_hash != NULL)
		(void)gnutls_hash(p->text_hash, p->line, (size_t)n);
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

	if (p->failed)
		return 1;
	if (p->long_value != NULL)
		value = p->long_value;
	if (p->section == SECTION_NONE)
		config_error(p, p->lineno, "'%s' outside a section (start with "
		    "[moat] or [frontend NAME])", name);
	else
		config_key_set(p, name, value);
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
	    CONTROL_DEFAULT_SOCKET);
	snprintf(cfg->chroot_dir, sizeof(cfg->chroot_dir), "%s",
	    MOAT_DEFAULT_CHROOT);
	cfg->keyd_timeout_ms = 2000;
	cfg->keyd_sign_delay_ms = 0;
	cfg->max_connections = CONFIG_MAX_CONNECTIONS_DEFAULT;
	cfg->max_pending_handshakes = CONFIG_MAX_PENDING_HANDSHAKES_DEFAULT;
	cfg->rekey_concurrency = CONFIG_REKEY_CONCURRENCY_DEFAULT;
	cfg->drain_timeout_ms = 10 * 1000;
	cfg->ocsp_check_ms = 60 * 1000;
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
	if (p->sys->executable(cfg->keyd_path) == 0)
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
	if (p->sys->executable(cfg->keyd_path) < 0)
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
	    fe->profile != CONFIG_PROFILE_NONE ?
	    config_profile_priority(fe->profile) : MOAT_DEFAULT_PRIORITY;
	line = p->priority_line[fe->index] > 0 ? p->priority_line[fe->index] :
	    fe->profile_line > 0 ? fe->profile_line : fe->line;
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
	r = fe->tickets && config_priority_plain_psk(prio);
	gnutls_priority_deinit(prio);
	if (r) {
		config_error(p, line, "the priority enables a PSK key exchange, "
		    "with which a ticket could resume without (EC)DHE; remove "
		    "it or set tickets = no");
		return -EINVAL;
	}
	return 0;
}

/* What keyd may do with each of the frontend's keys (conf_check.c says how). */
static void
config_keyd_sign(struct config_parse *p, struct frontend *fe)
{
	struct frontend_cert *fc;
	char why[256];
	unsigned i;
	int line;

	for (i = 0; i < fe->ncerts && !p->failed; i++) {
		fc = &fe->certs[i];
		if (config_keyd_flags(fe, fc->cert_pk, &fc->keyd_flags, why,
		    sizeof(why)) < 0) {
			line = fe->keyd_sign_line > 0 ? fe->keyd_sign_line :
			    p->priority_line[fe->index] > 0 ?
			    p->priority_line[fe->index] : fe->line;
			if (fe->ncerts == 1)
				config_error(p, line, "frontend %s: %s",
				    fe->name, why);
			else
				config_error(p, line, "frontend %s: %s: %s",
				    fe->name, fc->cert, why);
		}
	}
}

/*
 * The workers and keyd must not share a user: a compromised worker would
 * own keyd's process (ptrace, signals, /proc) and with it the keys.
 */
static void
config_users_apart(struct config_parse *p, int eof_line)
{
	struct privdrop w, k;
	int line;

	if (p->sys->user(p->cfg->user, &w) < 0 ||
	    p->sys->user(p->cfg->keyd_user, &k) < 0)
		return;		/* said already */
	if (w.uid != k.uid)
		return;
	line = p->keyd_user_line > p->user_line ? p->keyd_user_line :
	    p->user_line > 0 ? p->user_line : eof_line;
	config_error(p, line, "user '%s' and keyd-user '%s' are the same uid "
	    "%ld: a worker could then reach keyd's process (signals, /proc, "
	    "ptrace); give keyd a user of its own", p->cfg->user,
	    p->cfg->keyd_user, (long)w.uid);
}

static void
config_finish(struct config_parse *p)
{
	struct config *cfg = p->cfg;
	struct frontend *fe, *fo;
	const char *missing;
	unsigned i, j, k, l, ncerts = 0;
	int eof_line = p->moat_line > 0 ? p->moat_line : 1, r;

	for (i = 0; i < cfg->nfrontends && !p->failed; i++) {
		fe = &cfg->frontends[i];
		if ((missing = config_frontend_missing(p, i)) != NULL)
			config_error(p, fe->line, "frontend %s: missing "
			    "required key '%s'", fe->name, missing);
		if (!p->failed)
			config_pairs_finish(p, fe, &ncerts);
		if (!p->failed)
			config_profile_conflicts(p, fe);
		if (!p->failed)
			config_priority(p, fe);
		if (!p->failed)
			config_profile_finish(p, fe);
		if (!p->failed)
			config_keyd_sign(p, fe);
		if (!p->failed)
			config_backend_tls_finish(p, fe);
		if (!p->failed)
			config_mail_finish(p, fe);
		/* a header believed from anyone would let anyone pick its address */
		if (!p->failed && fe->accept_proxy && fe->naccept_proxy_from == 0)
			config_error(p, fe->accept_proxy_line, "frontend %s: "
			    "accept-proxy needs accept-proxy-from (the balancers "
			    "allowed to send the header)", fe->name);
	}
	if (!p->failed)
		config_pkcs11_finish(p);
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
					if (config_addr_equal(&fe->listen[k],
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
	if (!p->failed)
		config_users_apart(p, eof_line);

	cfg->workers = p->workers_auto || cfg->workers == 0 ? config_ncpus() :
	    cfg->workers;
	cfg->keyd_threads = p->keyd_threads_auto || cfg->keyd_threads == 0 ?
	    config_ncpus() : cfg->keyd_threads;
	if (!p->max_connections_set)
		cfg->max_connections = config_max_connections_default();
	if (!p->failed && p->keyd_line == 0) {
		config_keyd_default(p);
		if ((r = p->sys->executable(cfg->keyd_path)) < 0)
			config_error(p, eof_line, "moat-keyd not found at %s: "
			    "%s (set keyd = in [moat] or MOAT_KEYD)",
			    cfg->keyd_path, strerror(-r));
	}
}

/* access(X_OK) as the seam has it: 0 or -errno. */
static int
config_executable(const char *path)
{
	return access(path, X_OK) < 0 ? -errno : 0;
}

const struct config_sys config_sys_real = {
	.user = privdrop_lookup,
	.secret_file = config_check_secret_file,
	.cert_file = config_check_cert_file,
	.executable = config_executable,
	.resolve = config_backend_resolve,
};

int
config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
	FILE *fp;
	int r;

	if ((fp = fopen(path, "re")) == NULL) {
		r = -errno;
		memset(cfg, 0, sizeof(*cfg));
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return r;
	}
	r = config_load_stream(fp, path, &config_sys_real, cfg, err, errlen);
	fclose(fp);
	return r;
}

int
config_load_stream(FILE *fp, const char *name, const struct config_sys *sys,
    struct config *cfg, char *err, size_t errlen)
{
	struct config_parse *p;
	int r;

	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->path, sizeof(cfg->path), "%s", name);
	config_defaults(cfg);
	if (errlen > 0)
		err[0] = '\0';

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(err, errlen, "%s: %s", name, strerror(ENOMEM));
		return -ENOMEM;
	}
	p->cfg = cfg;
	p->sys = sys;
	p->err = err;
	p->errlen = errlen;
	p->fp = fp;
	if (gnutls_hash_init(&p->text_hash, GNUTLS_DIG_SHA256) < 0) {
		snprintf(err, errlen, "%s: cannot hash its text", name);
		free(p);
		return -ENOMEM;
	}
	r = ini_parse_stream(config_read_line, p, config_handler, p);
	gnutls_hash_deinit(p->text_hash, cfg->text_sha256);
	if (r > 0 && !p->failed)
		config_error(p, r, "syntax error (expected 'name = value', "
		    "'[section]' or a comment)");
	else if (r < 0 && !p->failed)
		config_error(p, 0, "cannot parse (inih error %d)", r);
	if (!p->failed)
		config_finish(p);
	r = p->failed ? -EINVAL : 0;
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
