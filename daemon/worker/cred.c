/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cred.c -- certificate generations of each frontend.
 *
 * Each frontend's chains, each with its keyd-backed key, form one
 * refcounted generation (struct worker_cred, one gnutls credentials set);
 * a certificate rotation adds a generation, sessions
 * keep the one they handshook with until they end or renegotiate onto the
 * new one (conn.c moves them).  Every chain arrives as a descriptor of
 * the master's sealed copy: the first generation's at start-up (read
 * before the privilege drop), a rotation's with IPC_WORKER_CERT.
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
 * Certificate c of a new generation: the chain from pem and a keyd-backed
 * key in slot IPC_KEY_SLOT(frontend, c, generation), added to wc->cred.
 * The key's algorithm and size come from the certificate (keyd may not be
 * there yet); keyd's key list, when it comes, must agree
 * (cred_keys_update()).  GnuTLS takes the certificate's names (its DNS
 * subjectAltNames, else its CN) for SNI, as names is NULL
 * (gnutls_certificate_set_key(), lib/cert-cred.c).
 */
static int
cred_add(struct worker_cred *wc, unsigned c, const gnutls_datum_t *pem,
    const gnutls_datum_t *ocsp)
{
	const struct frontend *fe = wc->wf->fe;
	const char *path = fe->certs[c].cert;
	struct xkey_key *k = &wc->keys[c];
	gnutls_pcert_st pcert[CRED_MAX_CHAIN];
	unsigned n = CRED_MAX_CHAIN, bits = 0, i;
	int r;

	memset(pcert, 0, sizeof(pcert));
	r = gnutls_pcert_list_import_x509_raw(pcert, &n, pem,
	    GNUTLS_X509_FMT_PEM, 0);
	if (r < 0 || n == 0) {
		log_warnx("%s: frontend %s: %s: %s", __func__, fe->name,
		    path, r < 0 ? gnutls_strerror(r) : "no certificate");
		n = r < 0 ? 0 : n;
		r = GNUTLS_E_CERTIFICATE_ERROR;
		goto fail;
	}
	if ((r = gnutls_pubkey_get_pk_algorithm(pcert[0].pubkey, &bits)) < 0) {
		log_warnx("%s: frontend %s: %s: unknown public key", __func__,
		    fe->name, path);
		goto fail;
	}
	k->magic = XKEY_MAGIC;
	k->index = IPC_KEY_SLOT(fe->index, c, wc->generation);
	k->ch = &wc->wf->w->keyd;
	k->allow_decrypt = fe->allow_rsa_kx;
	k->cert_pk = r;
	k->info.key_id = k->index;
	k->info.pk_algo = (uint32_t)r;
	k->info.bits = bits;
	k->info.nsign = 0;
	snprintf(k->info.name, sizeof(k->info.name), "%s", fe->name);
	if ((r = xkey_import(k)) < 0) {
		log_warnx("%s: frontend %s: import_ext4: %s", __func__,
		    fe->name, gnutls_strerror(r));
		goto fail;
	}
	r = gnutls_certificate_set_key(wc->cred, NULL, 0, pcert, (int)n,
	    k->pkey);
	if (r < 0) {
		log_warnx("%s: frontend %s: %s: set_key: %s", __func__,
		    fe->name, path, gnutls_strerror(r));
		gnutls_privkey_deinit(k->pkey);
		goto fail;
	}
	/* The credentials own the chain and the key now. */
	wc->nkeys++;
	/*
	 * With GNUTLS_CERTIFICATE_API_V2, set_key() returned the chain's
	 * index, which OCSP stapling names; GnuTLS checks again that the
	 * response is about this chain and not expired (lib/ocsp-api.c).
	 */
	if (r != (int)c)
		fatalx("%s: frontend %s: certificate %u got index %d", __func__,
		    fe->name, c, r);
	if (ocsp->size > 0 && (r = gnutls_certificate_set_ocsp_status_request_mem(
	    wc->cred, ocsp, c, GNUTLS_X509_FMT_DER)) < 0)
		log_warnx("frontend %s: %s: OCSP response not stapled: %s",
		    fe->name, path, gnutls_strerror(r));
	return 0;
fail:
	for (i = 0; i < n; i++)
		gnutls_pcert_deinit(&pcert[i]);
	return r < 0 ? r : GNUTLS_E_CERTIFICATE_ERROR;
}

/*
 * One generation of credentials: every certificate of the frontend (pems,
 * in its order, one each, and the OCSP response to staple with each, size
 * 0 for none) in one set.  Returns it with one reference (the
 * caller's) and linked into the worker's list, or NULL.
 */
static struct worker_cred *
cred_new(struct worker_frontend *wf, const gnutls_datum_t *pems,
    const gnutls_datum_t *ocsps, unsigned generation)
{
	const struct frontend *fe = wf->fe;
	struct worker *w = wf->w;
	struct worker_cred *wc;
	unsigned c;

	if ((wc = calloc(1, sizeof(*wc))) == NULL) {
		log_warn("%s: calloc", __func__);
		return NULL;
	}
	wc->magic = WORKER_CRED_MAGIC;
	wc->refs = 1;
	wc->wf = wf;
	wc->generation = generation;
	if (gnutls_certificate_allocate_credentials(&wc->cred) < 0)
		goto fail;
	/*
	 * set_key() would sign a test string to match key and certificate;
	 * keyd refuses such input and the pair was checked when keyd loaded it.
	 */
	gnutls_certificate_set_flags(wc->cred,
	    GNUTLS_CERTIFICATE_SKIP_KEY_CERT_MATCH | GNUTLS_CERTIFICATE_API_V2);
	if (mtls_cred_apply(wf, wc->cred) < 0)	/* verify = */
		goto fail;
	for (c = 0; c < fe->ncerts; c++)
		if (cred_add(wc, c, &pems[c], &ocsps[c]) < 0)
			goto fail;
	wc->next = w->creds;
	if (w->creds != NULL)
		w->creds->prev = wc;
	w->creds = wc;
	return wc;

fail:
	if (wc->cred != NULL)
		gnutls_certificate_free_credentials(wc->cred);	/* keys added */
	free(wc);
	return NULL;
}

/*
 * Each certificate's chain from its descriptor (fds[c]), then the OCSP
 * responses of those whose bit is in ocsp_mask, from the descriptors
 * after them, in order; 0 or -errno.
 */
static int
cred_read_all(const struct frontend *fe, const int *fds, uint32_t ocsp_mask,
    gnutls_datum_t *pems, gnutls_datum_t *ocsps)
{
	unsigned c, n = fe->ncerts;
	int r;

	for (c = 0; c < fe->ncerts; c++) {
		if ((r = config_cert_read(fds[c], &pems[c])) < 0) {
			log_warnx("%s: frontend %s: %s: %s", __func__, fe->name,
			    fe->certs[c].cert, strerror(-r));
			return r;
		}
	}
	for (c = 0; c < fe->ncerts; c++) {
		if ((ocsp_mask & (1u << c)) == 0)
			continue;
		if ((r = config_cert_read(fds[n++], &ocsps[c])) < 0) {
			log_warnx("%s: frontend %s: %s: %s", __func__, fe->name,
			    fe->certs[c].ocsp, strerror(-r));
			return r;
		}
	}
	return 0;
}

/* Public, and checked to hold no key (conf_check.c); wiped anyway. */
static void
cred_pems_wipe(gnutls_datum_t *pems, unsigned n)
{
	unsigned c;

	for (c = 0; c < n; c++) {
		if (pems[c].data != NULL)
			gnutls_memset(pems[c].data, 0, pems[c].size);
		gnutls_free(pems[c].data);
		pems[c].data = NULL;
	}
}

void
cred_ref(struct worker_cred *wc)
{
	if (wc->magic != WORKER_CRED_MAGIC)
		fatalx("%s: bad cred", __func__);
	wc->refs++;
}

/* Does another live set of wc's frontend use wc's generation (keys)? */
static int
cred_generation_live(const struct worker *w, const struct worker_cred *wc)
{
	const struct worker_cred *o;

	for (o = w->creds; o != NULL; o = o->next)
		if (o != wc && o->wf == wc->wf &&
		    o->generation == wc->generation)
			return 1;
	return 0;
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
	/* an OCSP refresh leaves another set on the same generation's keys */
	if (w->cred_gone != NULL && !cred_generation_live(w, wc))
		w->cred_gone(w, wc->wf->fe->index, wc->generation);
	gnutls_certificate_free_credentials(wc->cred);	/* and the ext4 key */
	wc->magic = 0;
	free(wc);
}

/*
 * The first generation, from the descriptors of the chains the master
 * checked and keyd loaded (fe->certs[].cert_fd; the worker never opens a
 * file by path, so a certificate file changed since cannot reach it), and
 * of the OCSP responses the master found good (fe->certs[].ocsp_fd).  The
 * descriptors are closed once read.  Runs before the privilege drop.
 */
int
cred_frontend_load(struct worker_frontend *wf)
{
	const struct frontend *fe = wf->fe;
	gnutls_datum_t pems[CONFIG_MAX_CERTS], ocsps[CONFIG_MAX_CERTS];
	int fds[2 * CONFIG_MAX_CERTS];
	uint32_t mask = 0;
	unsigned c, n = fe->ncerts;
	int r;

	memset(pems, 0, sizeof(pems));
	memset(ocsps, 0, sizeof(ocsps));
	memset(fds, 0xff, sizeof(fds));		/* -1 */
	for (c = 0; c < fe->ncerts; c++) {
		if ((fds[c] = fe->certs[c].cert_fd) < 0) {
			log_warnx("%s: frontend %s: no certificate %s from the "
			    "master", __func__, fe->name, fe->certs[c].cert);
			return -EBADF;
		}
		if (fe->certs[c].ocsp_fd >= 0) {
			fds[n++] = fe->certs[c].ocsp_fd;
			mask |= 1u << c;
		}
	}
	if ((r = mtls_frontend_load(wf)) < 0)	/* ca-file, crl-file */
		return r;
	r = cred_read_all(fe, fds, mask, pems, ocsps);
	for (c = 0; c < n; c++)
		close(fds[c]);
	if (r == 0)
		wf->cred = cred_new(wf, pems, ocsps, fe->key_generation);
	cred_pems_wipe(pems, fe->ncerts);
	cred_pems_wipe(ocsps, fe->ncerts);
	if (r < 0)
		return r;
	return wf->cred != NULL ? 0 : GNUTLS_E_CERTIFICATE_ERROR;
}

/*
 * Certificate rotation (IPC_WORKER_CERT): keyd already holds the new keys
 * in this generation's slots.  The fds (one per certificate, then one per
 * OCSP response in ocsp_mask) are shared with the other workers, so they
 * are read with pread() from offset 0.  New handshakes use the new
 * credentials; sessions keep theirs until they end or renegotiate.  The
 * current generation again is new OCSP responses only: a new credentials
 * set on the same keyd slots.  Returns 0 (rotated), 1 (refreshed) or
 * -errno.
 */
int
cred_frontend_rotate(struct worker_frontend *wf, const int *fds,
    unsigned nfds, unsigned generation, uint32_t ocsp_mask)
{
	const struct frontend *fe = wf->fe;
	gnutls_datum_t pems[CONFIG_MAX_CERTS], ocsps[CONFIG_MAX_CERTS];
	struct worker_cred *wc = NULL;
	int refresh = generation == wf->cred->generation;
	unsigned c;
	int r;

	if (ocsp_mask >= (1u << fe->ncerts) ||
	    nfds != fe->ncerts + (unsigned)__builtin_popcount(ocsp_mask))
		return -EINVAL;
	memset(pems, 0, sizeof(pems));
	memset(ocsps, 0, sizeof(ocsps));
	if ((r = cred_read_all(fe, fds, ocsp_mask, pems, ocsps)) == 0)
		wc = cred_new(wf, pems, ocsps, generation);
	cred_pems_wipe(pems, fe->ncerts);
	cred_pems_wipe(ocsps, fe->ncerts);
	if (wc == NULL)
		return r < 0 ? r : -EINVAL;
	for (c = 0; c < wc->nkeys; c++) {
		if (refresh)	/* the same slots: what keyd said of them */
			wc->keys[c].info = wf->cred->keys[c].info;
		/* keyd loaded these slots before the master told us. */
		wc->keys[c].available = refresh ?
		    wf->cred->keys[c].available : 1;
	}
	cred_unref(wf->cred);
	wf->cred = wc;
	if (refresh)
		log_info("frontend %s: new OCSP responses for generation %u",
		    fe->name, generation);
	else
		log_info("frontend %s: certificate generation %u in use for "
		    "new handshakes", fe->name, generation);
	return refresh;
}

/* keyd's key list for one key; 0, or < 0 when it is missing or differs. */
static int
cred_key_update(struct xkey_key *k, const char *name,
    const struct ipc_key_info *keys, unsigned n)
{
	unsigned j;

	for (j = 0; j < n; j++)
		if (keys[j].key_id == k->index)
			break;
	if (j == n) {
		log_warnx("cred: keyd has no key for frontend %s (slot %u)",
		    name, k->index);
		k->available = 0;
		return -ENOENT;
	}
	if (xkey_pk_family((int)keys[j].pk_algo) !=
	    xkey_pk_family(k->cert_pk)) {
		log_warnx("cred: frontend %s: keyd's key is %s, the "
		    "certificate's is %s; not using it", name,
		    gnutls_pk_get_name(keys[j].pk_algo),
		    gnutls_pk_get_name(k->cert_pk));
		k->available = 0;
		return -EINVAL;
	}
	k->info = keys[j];
	k->available = 1;
	log_debug("cred: frontend %s: key %s in slot %u, %s %u bits, %u sign "
	    "algorithms", name, keys[j].name, k->index,
	    gnutls_pk_get_name(keys[j].pk_algo), keys[j].bits, keys[j].nsign);
	return 0;
}

/*
 * keyd's key list, for every key of every live credential generation
 * (each has its own keyd slot); at start-up (initial) a frontend without
 * one of its keys is fatal.
 */
int
cred_keys_update(struct worker *w, const struct ipc_key_info *keys,
    unsigned n, int initial)
{
	struct worker_cred *wc;
	unsigned c;
	int r;

	for (wc = w->creds; wc != NULL; wc = wc->next)
		for (c = 0; c < wc->nkeys; c++)
			if ((r = cred_key_update(&wc->keys[c],
			    wc->wf->fe->name, keys, n)) < 0 && initial)
				return r;
	return 0;
}

/*
 * Which of its frontend's certificates the connection's session showed
 * (its index in the config, for the log line), or -1: not known, say no
 * handshake or a resumed one.  GnuTLS says which chain it sent
 * (gnutls_certificate_get_ours()); the credentials say which is which.
 */
int
cred_served(const struct conn *c)
{
	const gnutls_datum_t *ours;
	gnutls_datum_t d;
	unsigned i;

	if (c->session == NULL || c->cred == NULL ||
	    (ours = gnutls_certificate_get_ours(c->session)) == NULL)
		return -1;
	for (i = 0; i < c->cred->nkeys; i++)
		if (gnutls_certificate_get_crt_raw(c->cred->cred, i, 0,
		    &d) == 0 && d.size == ours->size &&
		    memcmp(d.data, ours->data, d.size) == 0)
			return (int)i;
	return -1;
}
