/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_conf.c -- libFuzzer target for the config parser (daemon/conf_*.c
 * through inih): an input is the text of a moat.conf, read from a memory
 * stream by config_load_stream().
 *
 * The parse asks the system about the names it holds through struct
 * config_sys; here that is fuzz_sys, which touches no file, no user
 * database and no network, and answers from the name alone so that every
 * branch is reachable from the text:
 *	user		"root" is uid 0 (-EPERM), a name starting with "no" is
 *			unknown, any other gets a uid made from its bytes
 *	secret file	a path holding "missing" does not exist, "open" is
 *			readable by others, anything else is private
 *	cert file	"missing" does not exist, "bad" holds no certificate;
 *			otherwise the leaf's key is Ed25519, Ed448, ECDSA,
 *			RSA-PSS or RSA by the first of "ed25519", "ed448",
 *			"ecdsa", "pss" in the path
 *	executable	"missing" is not, anything else is
 *	resolve		"localhost:PORT" is 127.0.0.1:PORT, nothing else
 *			resolves
 * What is real: the line reader, inih, every key's parser, addresses,
 * GnuTLS's priority parser, the keyd flags, and the whole-file checks.
 *
 * Whatever parses must hold what the parser promises (fuzz_check_config),
 * a refusal must say "NAME:..." (the first error), and the same text must
 * give the same result twice.  ASan and LSan see every allocation.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>

#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "privdrop.h"

#define FUZZ_CONF_NAME	"fuzz.conf"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
fuzz_user(const char *name, struct privdrop *out)
{
	uint32_t h = 2166136261u;	/* FNV-1a: names apart, uids apart */
	const char *s;

	memset(out, 0, sizeof(*out));
	if (strcmp(name, "root") == 0)
		return -EPERM;
	if (strncmp(name, "no", 2) == 0)
		return -ENOENT;
	for (s = name; *s != '\0'; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	out->uid = (uid_t)(1000 + h % 60000);
	out->gid = out->uid;
	out->user = name;
	return 0;
}

static int
fuzz_secret_file(const char *path, char *why, size_t whylen)
{
	if (strstr(path, "missing") != NULL) {
		snprintf(why, whylen, "%s", strerror(ENOENT));
		return -ENOENT;
	}
	if (strstr(path, "open") != NULL) {
		snprintf(why, whylen, "readable by others (mode 0644); chmod "
		    "600 it");
		return -EPERM;
	}
	return 0;
}

static int
fuzz_cert_file(const char *path, int *pk, char *why, size_t whylen)
{
	*pk = GNUTLS_PK_UNKNOWN;
	if (strstr(path, "missing") != NULL) {
		snprintf(why, whylen, "%s", strerror(ENOENT));
		return -ENOENT;
	}
	if (strstr(path, "bad") != NULL) {
		snprintf(why, whylen, "holds no PEM certificate");
		return -EINVAL;
	}
	if (strstr(path, "ed25519") != NULL)
		*pk = GNUTLS_PK_EDDSA_ED25519;
	else if (strstr(path, "ed448") != NULL)
		*pk = GNUTLS_PK_EDDSA_ED448;
	else if (strstr(path, "ecdsa") != NULL)
		*pk = GNUTLS_PK_ECDSA;
	else if (strstr(path, "pss") != NULL)
		*pk = GNUTLS_PK_RSA_PSS;
	else
		*pk = GNUTLS_PK_RSA;
	return 0;
}

static int
fuzz_executable(const char *path)
{
	return strstr(path, "missing") != NULL ? -ENOENT : 0;
}

static int
fuzz_resolve(const char *text, struct config_addr *out)
{
	char buf[64];

	if (strncmp(text, "localhost:", 10) != 0 ||
	    (size_t)snprintf(buf, sizeof(buf), "127.0.0.1:%s", text + 10) >=
	    sizeof(buf))
		return -EADDRNOTAVAIL;
	return config_addr_parse(buf, 0, out);
}

static const struct config_sys fuzz_sys = {
	.user = fuzz_user,
	.secret_file = fuzz_secret_file,
	.cert_file = fuzz_cert_file,
	.executable = fuzz_executable,
	.resolve = fuzz_resolve,
};

/* The same socket address (what bind() would find the same). */
static int
fuzz_addr_same(const struct config_addr *a, const struct config_addr *b)
{
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* A char array the parser filled: NUL-terminated inside it. */
#define FUZZ_TERMINATED(a)	(memchr((a), '\0', sizeof(a)) != NULL)

/* Each cert/key pair: both paths absolute, keyd's flags as the config says. */
static void
fuzz_check_pair(const struct frontend *fe, const struct frontend_cert *fc)
{
	if (!FUZZ_TERMINATED(fc->cert) || !FUZZ_TERMINATED(fc->key) ||
	    fc->cert[0] != '/' || fc->key[0] != '/' || fc->cert_fd != -1 ||
	    !FUZZ_TERMINATED(fc->ocsp) || fc->ocsp_fd != -1 ||
	    (fc->ocsp[0] != '\0' && fc->ocsp[0] != '/'))
		abort();
	/* keyd decrypts only for allow-rsa-kx; content-only signs no digest */
	if (!!(fc->keyd_flags & IPC_KEY_F_ALLOW_DECRYPT) != !!fe->allow_rsa_kx)
		abort();
	if (fe->keyd_sign_content_only &&
	    (fc->keyd_flags & IPC_KEY_F_ALLOW_DIGEST))
		abort();
	if ((fc->cert_pk == GNUTLS_PK_EDDSA_ED25519 ||
	    fc->cert_pk == GNUTLS_PK_EDDSA_ED448) &&
	    (fc->keyd_flags & IPC_KEY_F_ALLOW_DIGEST))
		abort();
}

static void
fuzz_check_frontend(const struct config *cfg, unsigned i)
{
	const struct frontend *fe = &cfg->frontends[i], *fo;
	const char *tail;
	size_t plen;
	unsigned j, k, l;

	if (fe->index != i || !FUZZ_TERMINATED(fe->name) ||
	    fe->name[0] == '\0' ||
	    !FUZZ_TERMINATED(fe->key_passphrase_file) ||
	    !FUZZ_TERMINATED(fe->priority) ||
	    !FUZZ_TERMINATED(fe->backend.text))
		abort();
	if (config_frontend_by_name(cfg, fe->name) != fe)
		abort();	/* names are unique */
	/* the required keys were set, to absolute paths */
	if (fe->nlisten == 0 || fe->nlisten > CONFIG_MAX_LISTEN ||
	    fe->ncerts == 0 || fe->ncerts > CONFIG_MAX_CERTS ||
	    fe->backend.len == 0 ||
	    fe->backend.len > sizeof(fe->backend.ss))
		abort();
	for (k = 0; k < fe->nlisten; k++) {
		if (!FUZZ_TERMINATED(fe->listen[k].text) ||
		    fe->listen[k].len == 0 ||
		    fe->listen[k].len > sizeof(fe->listen[k].ss) ||
		    fe->listen_fd[k] != -1)
			abort();
		/* no address twice, in this frontend or an earlier one */
		for (l = 0; l < k; l++)
			if (fuzz_addr_same(&fe->listen[k], &fe->listen[l]))
				abort();
		for (j = 0; j < i; j++) {
			fo = &cfg->frontends[j];
			for (l = 0; l < fo->nlisten; l++)
				if (fuzz_addr_same(&fe->listen[k],
				    &fo->listen[l]))
					abort();
		}
	}
	/* the final priority says what allow-rsa-kx says, and GnuTLS took it */
	plen = strlen(fe->priority);
	tail = fe->allow_rsa_kx ? ":+RSA" : ":-RSA";
	if (plen < 5 || strcmp(fe->priority + plen - 5, tail) != 0)
		abort();
	for (k = 0; k < fe->ncerts; k++)
		fuzz_check_pair(fe, &fe->certs[k]);
	/* the values keep to their ranges (doc/moat.conf.5) */
	if (fe->handshake_timeout_ms == 0 ||
	    fe->backend_connect_timeout_ms == 0 || fe->rekey_timeout_ms == 0 ||
	    (fe->rekey_bytes != 0 &&
	    fe->rekey_bytes < CONFIG_REKEY_BYTES_MIN) ||
	    fe->rekey_interval_s > 30u * 24 * 3600 ||
	    fe->client_renegotiation_limit > 1000 ||
	    (fe->on_refusal != RENEG_KEEP && fe->on_refusal != RENEG_CLOSE) ||
	    (fe->on_ignore != RENEG_KEEP && fe->on_ignore != RENEG_CLOSE) ||
	    fe->key_generation != 0)
		abort();
}

static void
fuzz_check_config(const struct config *cfg)
{
	unsigned i;

	if (strcmp(cfg->path, FUZZ_CONF_NAME) != 0 ||
	    !FUZZ_TERMINATED(cfg->user) || !FUZZ_TERMINATED(cfg->keyd_user) ||
	    !FUZZ_TERMINATED(cfg->control) ||
	    !FUZZ_TERMINATED(cfg->chroot_dir) ||
	    !FUZZ_TERMINATED(cfg->keyd_path))
		abort();
	/* workers and keyd never share a user, and neither is root */
	if (strcmp(cfg->user, "root") == 0 ||
	    strcmp(cfg->keyd_user, "root") == 0 ||
	    strcmp(cfg->user, cfg->keyd_user) == 0)
		abort();
	if (cfg->control[0] != '/' || cfg->chroot_dir[0] != '/' ||
	    cfg->keyd_path[0] == '\0')
		abort();
	if (cfg->workers == 0 || cfg->workers > 256 || cfg->keyd_threads == 0 ||
	    cfg->keyd_threads > 256 || cfg->keyd_timeout_ms == 0 ||
	    cfg->max_connections == 0 || cfg->max_pending_handshakes == 0 ||
	    cfg->rekey_concurrency == 0 || cfg->log_level > LOG_LEVEL_DEBUG)
		abort();
	if (cfg->nfrontends == 0 || cfg->nfrontends > CONFIG_MAX_FRONTENDS)
		abort();
	for (i = 0; i < cfg->nfrontends; i++)
		fuzz_check_frontend(cfg, i);
}

/* One parse of the text; the result, with the config and error it gave. */
static int
fuzz_parse(const uint8_t *data, size_t size, struct config *cfg, char *err,
    size_t errlen)
{
	static const char empty[1];
	FILE *fp;
	int r;

	/* fmemopen() wants a buffer of at least one byte; "" reads nothing */
	fp = size > 0 ? fmemopen((void *)(uintptr_t)data, size, "r") :
	    fmemopen((void *)(uintptr_t)empty, 1, "r");
	if (fp == NULL)
		abort();
	if (size == 0 && fgetc(fp) != '\0')
		abort();	/* the one NUL of `empty` is read and gone */
	r = config_load_stream(fp, FUZZ_CONF_NAME, &fuzz_sys, cfg, err, errlen);
	fclose(fp);
	return r;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config cfg, again;
	static char err[1024], err2[1024];
	static int inited;
	int r, r2;

	if (!inited) {
		log_init("fuzz_conf", LOG_LEVEL_ERROR);
		inited = 1;
	}
	r = fuzz_parse(data, size, &cfg, err, sizeof(err));
	if (r == 0) {
		if (err[0] != '\0')
			abort();
		fuzz_check_config(&cfg);
	} else {
		/* "fuzz.conf:LINE: reason" or "fuzz.conf: reason" */
		if (r != -EINVAL || !FUZZ_TERMINATED(err) ||
		    strncmp(err, FUZZ_CONF_NAME ":",
		    sizeof(FUZZ_CONF_NAME)) != 0 ||
		    strlen(err) <= sizeof(FUZZ_CONF_NAME))
			abort();
	}
	/* The parse keeps no state between runs: same text, same end. */
	r2 = fuzz_parse(data, size, &again, err2, sizeof(err2));
	if (r2 != r || strcmp(err, err2) != 0 ||
	    (r == 0 && memcmp(&cfg, &again, sizeof(cfg)) != 0))
		abort();
	return 0;
}
