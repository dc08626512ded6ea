/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * master_tickets.c -- the session-ticket master keys: made once by the
 * master at start, handed to every worker it starts, never to keyd.
 *
 * Where a key comes from.  Without ticket-key-file the secret is 64 random
 * bytes drawn at start; with it, the file's bytes, so every node given the
 * same file has the same secret.  Each frontend's 64-byte GnuTLS master
 * key is HKDF-SHA256 of that secret (extract with a fixed moat salt, expand
 * with the frontend's name), so two nodes agree frontend by frontend, and a
 * ticket one frontend issued never resumes on another (which could hold
 * another certificate, another backend).  The keys live as long as the
 * master: a certificate rotation (reload.c) and a worker restart keep
 * them, so a ticket resumes on any worker and after a reload.  A changed
 * ticket-key-file takes effect at the next start.
 *
 * How GnuTLS rotates them (read in GnuTLS 3.7.9, lib/stek.c, with
 * STEK_ROTATION_PERIOD_PRODUCT = 3 in lib/gnutls_int.h): the key given to
 * gnutls_session_ticket_enable_server() is never used as such.  Each
 * session encrypts its tickets under SHA3-512(T || master key), with
 * T = floor(unix time / (3 * expiration)), expiration being
 * gnutls_db_set_cache_expiration()'s value (ticket-lifetime here).  It
 * decrypts a ticket whose 16-byte key name matches the key of period T or
 * of period T - 1.  So every worker and every node with the same master key
 * and the same ticket-lifetime computes the same key at the same time --
 * they rotate in lockstep with no messages, given clocks that agree -- and
 * a ticket can be opened from when it is issued until the end of the next
 * period: for between 3 and 6 lifetimes (its own lifetime, checked from the
 * ticket's timestamp, ends it sooner for resumption).  That window is what a
 * worker's copy of a key exposes; README.md's security model says so.
 *
 * Transport: the keys travel after struct config in the sealed memfd each
 * worker starts from (master_worker.c, main.c), because a worker needs
 * them before its first accept and gets them again at each restart with
 * nothing else to keep in step; no IPC message carries them.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "conf.h"
#include "log.h"
#include "master_tickets.h"

#define MASTER_TICKETS_SALT	"moat session ticket keys v1"
#define MASTER_TICKETS_INFO	"moat frontend ticket key: "
#define MASTER_TICKETS_RANDOM	64u	/* bytes of secret without a file */

/*
 * Each frontend's key from the secret (see the top).  0, or a negative
 * GnuTLS error.
 */
int
master_tickets_derive(const struct config *cfg, const gnutls_datum_t *secret,
    struct config_tickets *out)
{
	static const char salt_text[] = MASTER_TICKETS_SALT;
	const gnutls_datum_t salt = {
		(unsigned char *)salt_text, sizeof(salt_text) - 1
	};
	uint8_t prk_buf[32], info_buf[sizeof(MASTER_TICKETS_INFO) +
	    CONFIG_NAME_MAX];
	gnutls_datum_t prk = { prk_buf, sizeof(prk_buf) }, info;
	unsigned i;
	int n, r;

	memset(out, 0, sizeof(*out));
	if ((r = gnutls_hkdf_extract(GNUTLS_MAC_SHA256, secret, &salt,
	    prk_buf)) < 0)
		goto out;
	for (i = 0; i < cfg->nfrontends && i < CONFIG_MAX_FRONTENDS; i++) {
		n = snprintf((char *)info_buf, sizeof(info_buf), "%s%s",
		    MASTER_TICKETS_INFO, cfg->frontends[i].name);
		if (n < 0 || (size_t)n >= sizeof(info_buf)) {
			r = GNUTLS_E_INVALID_REQUEST;
			goto out;
		}
		info.data = info_buf;
		info.size = (unsigned)n;
		if ((r = gnutls_hkdf_expand(GNUTLS_MAC_SHA256, &prk, &info,
		    out->key[i], CONFIG_TICKET_KEY_SIZE)) < 0)
			goto out;
	}
	r = 0;
out:
	gnutls_memset(prk_buf, 0, sizeof(prk_buf));
	if (r < 0)
		gnutls_memset(out, 0, sizeof(*out));
	return r;
}

/*
 * At start: the secret (random, or the file's) and the keys from it, into
 * *out (calloc'd; master_tickets_free() wipes it).  0, or -errno with why.
 */
int
master_tickets_init(const struct config *cfg, struct config_tickets **out,
    char *err, size_t errlen)
{
	uint8_t rnd[MASTER_TICKETS_RANDOM];
	gnutls_datum_t secret = { NULL, 0 };
	char why[256];
	int r, from_file = cfg->ticket_key_file[0] != '\0';

	*out = NULL;
	if (from_file) {
		if ((r = config_ticket_secret_read(cfg->ticket_key_file,
		    &secret, why, sizeof(why))) < 0) {
			snprintf(err, errlen, "ticket-key-file %s: %s",
			    cfg->ticket_key_file, why);
			return r;
		}
	} else {
		if ((r = gnutls_rnd(GNUTLS_RND_KEY, rnd, sizeof(rnd))) < 0) {
			snprintf(err, errlen, "session ticket key: %s",
			    gnutls_strerror(r));
			return -EIO;
		}
		secret.data = rnd;
		secret.size = sizeof(rnd);
	}
	if ((*out = calloc(1, sizeof(**out))) == NULL) {
		snprintf(err, errlen, "session ticket keys: out of memory");
		r = -ENOMEM;
		goto out;
	}
	if ((r = master_tickets_derive(cfg, &secret, *out)) < 0) {
		snprintf(err, errlen, "session ticket keys: %s",
		    gnutls_strerror(r));
		master_tickets_free(*out);
		*out = NULL;
		r = -EIO;
		goto out;
	}
	log_info("session ticket keys %s", from_file ?
	    "derived from ticket-key-file" : "generated at random");
	r = 0;
out:
	if (secret.data != NULL)
		gnutls_memset(secret.data, 0, secret.size);
	if (from_file)
		gnutls_free(secret.data);
	return r;
}

/*
 * A reload's new config (handover.c): without ticket-key-file, a frontend
 * the running config has too keeps its key, so that its tickets resume
 * across the reload, and a new frontend gets a random one; with it, every
 * key is derived from the file again, as at start.
 */
int
master_tickets_carry(const struct config *running,
    const struct config_tickets *keys, const struct config *cfg,
    struct config_tickets **out, char *err, size_t errlen)
{
	const struct frontend *was;
	unsigned i;
	int r;

	if (cfg->ticket_key_file[0] != '\0')
		return master_tickets_init(cfg, out, err, errlen);
	if ((*out = calloc(1, sizeof(**out))) == NULL) {
		snprintf(err, errlen, "session ticket keys: out of memory");
		return -ENOMEM;
	}
	for (i = 0; i < cfg->nfrontends && i < CONFIG_MAX_FRONTENDS; i++) {
		was = running->ticket_key_file[0] == '\0' ?
		    config_frontend_by_name(running, cfg->frontends[i].name) :
		    NULL;
		if (was != NULL) {
			memcpy((*out)->key[i], keys->key[was->index],
			    CONFIG_TICKET_KEY_SIZE);
		} else if ((r = gnutls_rnd(GNUTLS_RND_KEY, (*out)->key[i],
		    CONFIG_TICKET_KEY_SIZE)) < 0) {
			snprintf(err, errlen, "session ticket key: %s",
			    gnutls_strerror(r));
			master_tickets_free(*out);
			*out = NULL;
			return -EIO;
		}
	}
	return 0;
}

void
master_tickets_free(struct config_tickets *t)
{
	if (t == NULL)
		return;
	gnutls_memset(t, 0, sizeof(*t));
	free(t);
}
