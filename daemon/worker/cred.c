/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cred.c -- certificate generations of each frontend.
 *
 * Each frontend's chain and keyd-backed key form one refcounted generation
 * (struct worker_cred); a certificate rotation adds a generation, sessions
 * keep the one they handshook with until they end or renegotiate onto the
 * new one (conn.c moves them).  The first generation is read from the
 * certificate file before the privilege drop; a rotation's chain arrives
 * as a descriptor the master opened, since the worker cannot open files.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/x509.h>

#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "state.h"
#include "xkey.h"
#include "mtls.h"
#include "cred.h"

#define CRED_MAX_CHAIN		16u		/* certificates in one chain */

/*
 * One generation of credentials: the chain from pem and a keyd-backed key
 * in slot IPC_KEY_SLOT(frontend, generation).  The key's algorithm and size
 * come from the certificate (keyd may not be there yet); keyd's key list,
 * when it comes, must agree (cred_keys_update()).  Returns it with one
 * reference (the caller's) and linked into the worker's list, or NULL.
 */
static struct worker_cred *
cred_new(struct worker_frontend *wf, const gnutls_datum_t *pem,
    unsigned generation)
{
	const struct frontend *fe = wf->fe;
	struct worker *w = wf->w;
	struct worker_cred *wc;
	gnutls_pcert_st pcert[CRED_MAX_CHAIN];
	unsigned n = CRED_MAX_CHAIN, bits = 0, i;
	int r;

	memset(pcert, 0, sizeof(pcert));
	if ((wc = calloc(1, sizeof(*wc))) == NULL) {
		log_warn("%s: calloc", __func__);
		return NULL;
	}
	wc->magic = WORKER_CRED_MAGIC;
	wc->refs = 1;
	wc->wf = wf;
	wc->generation = generation;

	r = gnutls_pcert_list_import_x509_raw(pcert, &n, pem,
	    GNUTLS_X509_FMT_PEM, 0);
	if (r < 0 || n == 0) {
		log_warnx("%s: frontend %s: %s: %s", __func__, fe->name,
		    fe->cert, r < 0 ? gnutls_strerror(r) : "no certificate");
		n = r < 0 ? 0 : n;
		goto fail;
	}
	if ((r = gnutls_pubkey_get_pk_algorithm(pcert[0].pubkey, &bits)) < 0) {
		log_warnx("%s: frontend %s: %s: unknown public key", __func__,
		    fe->name, fe->cert);
		goto fail;
	}
	wc->key.magic = XKEY_MAGIC;
	wc->key.index = IPC_KEY_SLOT(fe->index, generation);
	wc->key.ch = &w->keyd;
	wc->key.allow_decrypt = fe->allow_rsa_kx;
	wc->key.cert_pk = r;
	wc->key.info.key_id = wc->key.index;
	wc->key.info.pk_algo = (uint32_t)r;
	wc->key.info.bits = bits;
	wc->key.info.nsign = 0;
	snprintf(wc->key.info.name, sizeof(wc->key.info.name), "%s", fe->name);

	if ((r = gnutls_certificate_allocate_credentials(&wc->cred)) < 0)
		goto fail;
	/*
	 * set_key() would sign a test string to match key and certificate;
	 * keyd refuses such input and the pair was checked when keyd loaded it.
	 */
	gnutls_certificate_set_flags(wc->cred,
	    GNUTLS_CERTIFICATE_SKIP_KEY_CERT_MATCH);
	if ((r = mtls_cred_apply(wf, wc->cred)) < 0)	/* verify = */
		goto fail;
	if ((r = xkey_import(&wc->key)) < 0) {
		log_warnx("%s: frontend %s: import_ext4: %s", __func__,
		    fe->name, gnutls_strerror(r));
		goto fail;
	}
	r = gnutls_certificate_set_key(wc->cred, NULL, 0, pcert, (int)n,
	    wc->key.pkey);
	if (r < 0) {
		log_warnx("%s: frontend %s: set_key: %s", __func__, fe->name,
		    gnutls_strerror(r));
		gnutls_privkey_deinit(wc->key.pkey);
		goto fail;
	}
	/* The credentials own the chain and the key now. */
	wc->next = w->creds;
	if (w->creds != NULL)
		w->creds->prev = wc;
	w->creds = wc;
	return wc;

fail:
	for (i = 0; i < n; i++)
		gnutls_pcert_deinit(&pcert[i]);
	if (wc->cred != NULL)
		gnutls_certificate_free_credentials(wc->cred);
	free(wc);
	return NULL;
}

void
cred_ref(struct worker_cred *wc)
{
	if (wc->magic != WORKER_CRED_MAGIC)
		fatalx("%s: bad cred", __func__);
	wc->refs++;
}

void
cred_unref(struct worker_cred *wc)
{
	struct worker *w;

	if (wc == NULL)
		return;
	if (wc->magic != WORKER_CRED_MAGIC || wc->refs == 0)
		fatalx("%s: bad cred", __func__);
	if (--wc->refs > 0)
		return;
	w = wc->wf->w;
	if (wc->prev != NULL)
		wc->prev->next = wc->next;
	else
		w->creds = wc->next;
	if (wc->next != NULL)
		wc->next->prev = wc->prev;
	log_debug("%s: frontend %s: generation %u released", __func__,
	    wc->wf->fe->name, wc->generation);
	if (w->cred_gone != NULL)
		w->cred_gone(w, wc->wf->fe->index, wc->generation);
	gnutls_certificate_free_credentials(wc->cred);	/* and the ext4 key */
	wc->magic = 0;
	free(wc);
}

/*
 * The first generation, from the descriptor of the chain the master
 * checked and keyd loaded (fe->cert_fd; the worker never opens a file by
 * path, so a certificate file changed since cannot reach it).  The
 * descriptor is closed once read.  Runs before the privilege drop.
 */
int
cred_frontend_load(struct worker_frontend *wf)
{
	const struct frontend *fe = wf->fe;
	gnutls_datum_t pem = { NULL, 0 };
	int r;

	if (fe->cert_fd < 0) {
		log_warnx("%s: frontend %s: no certificate from the master",
		    __func__, fe->name);
		return -EBADF;
	}
	if ((r = mtls_frontend_load(wf)) < 0)	/* ca-file, crl-file */
		return r;
	r = config_cert_read(fe->cert_fd, &pem);
	close(fe->cert_fd);
	if (r < 0) {
		log_warnx("%s: frontend %s: %s: %s", __func__, fe->name,
		    fe->cert, strerror(-r));
		return r;
	}
	wf->cred = cred_new(wf, &pem, fe->key_generation);
	/* Public, and checked to hold no key (conf_check.c); wiped anyway. */
	gnutls_memset(pem.data, 0, pem.size);
	gnutls_free(pem.data);
	return wf->cred != NULL ? 0 : GNUTLS_E_CERTIFICATE_ERROR;
}

/*
 * Certificate rotation (IPC_WORKER_CERT): keyd already holds the new key
 * in this generation's slot.  The fd is shared with the other workers, so
 * it is read with pread() from offset 0.  New handshakes use the new
 * credentials; sessions keep theirs until they end or renegotiate.
 */
int
cred_frontend_rotate(struct worker_frontend *wf, int fd, unsigned generation)
{
	gnutls_datum_t pem;
	struct worker_cred *wc;
	int r;

	if ((r = config_cert_read(fd, &pem)) < 0)
		return r;
	wc = cred_new(wf, &pem, generation);
	gnutls_memset(pem.data, 0, pem.size);
	gnutls_free(pem.data);
	if (wc == NULL)
		return -EINVAL;
	/* keyd loaded this slot before the master told us. */
	wc->key.available = 1;
	cred_unref(wf->cred);
	wf->cred = wc;
	log_info("frontend %s: certificate generation %u in use for new "
	    "handshakes", wf->fe->name, generation);
	return 0;
}

/*
 * keyd's key list, for every live credential generation (each has its own
 * keyd slot); at start-up (initial) a frontend without its key is fatal.
 */
int
cred_keys_update(struct worker *w, const struct ipc_key_info *keys,
    unsigned n, int initial)
{
	struct worker_cred *wc;
	struct xkey_key *k;
	const char *name;
	unsigned j;

	for (wc = w->creds; wc != NULL; wc = wc->next) {
		k = &wc->key;
		name = wc->wf->fe->name;
		for (j = 0; j < n; j++)
			if (keys[j].key_id == k->index)
				break;
		if (j == n) {
			log_warnx("cred: keyd has no key for frontend %s "
			    "(slot %u)", name, k->index);
			if (initial)
				return -ENOENT;
			k->available = 0;
			continue;
		}
		if (xkey_pk_family((int)keys[j].pk_algo) !=
		    xkey_pk_family(k->cert_pk)) {
			log_warnx("cred: frontend %s: keyd's key is %s, the "
			    "certificate's is %s; not using it", name,
			    gnutls_pk_get_name(keys[j].pk_algo),
			    gnutls_pk_get_name(k->cert_pk));
			if (initial)
				return -EINVAL;
			k->available = 0;
			continue;
		}
		k->info = keys[j];
		k->available = 1;
		log_debug("cred: frontend %s: key %s in slot %u, %s %u bits, "
		    "%u sign algorithms", name, keys[j].name, k->index,
		    gnutls_pk_get_name(keys[j].pk_algo), keys[j].bits,
		    keys[j].nsign);
	}
	return 0;
}
