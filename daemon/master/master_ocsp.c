/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * master_ocsp.c -- OCSP stapling: the master reads each certificate's
 * response file (ocsp =), and hands the workers a sealed copy of a
 * response it found good for that certificate, as it does the chain.
 *
 * Good means: a DER OCSP response whose responder status is successful,
 * whose first single response is about this certificate
 * (gnutls_ocsp_resp_check_crt(): the serial and the issuer's name hash)
 * and whose nextUpdate, if it has one, is still ahead.  Anything else is
 * logged once and not stapled; the certificate is served without a
 * staple.  A worker hands it to gnutls_certificate_set_ocsp_status_request_mem(),
 * which checks the match and the expiry again (lib/ocsp-api.c,
 * append_response()), and GnuTLS staples a response only while it has
 * not expired, so a response that expires while in use stops being sent
 * on its own.
 *
 * When files are read: at start-up (master_ocsp_start()), at every
 * rotation for the new chains (reload.c calls master_ocsp_read_fe()), and
 * every ocsp-check-interval (60 s by default) when a file's identity
 * (device, inode, size, mtime) changed since it was read, or when the
 * response in use passed its nextUpdate (logged, then dropped).  A
 * change found by the timer goes to every live worker as IPC_WORKER_CERT
 * of the current generation: the same chains and keys, the new
 * responses; no reload is needed and no connection renegotiates.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <gnutls/gnutls.h>
#include <gnutls/ocsp.h>
#include <gnutls/x509.h>

#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "master_ocsp.h"
#include "master_types.h"
#include "req.h"
#include "sealed.h"
#include "util.h"

#define OCSP_MAX	(64u * 1024u)	/* a response file larger is refused */

/* What was read of one certificate's file, to see whether it changed. */
struct ocsp_file {
	int		read;		/* stat below is of the file read */
	dev_t		dev;
	ino_t		ino;
	off_t		size;
	struct timespec	mtime;
	time_t		next_update;	/* of the response in use; 0: none */
};

/* The refresh of one frontend's responses to the workers. */
struct ocsp_push {
	struct req		req;
	struct master_ocsp	*mo;
	unsigned		frontend;
	int			busy;
};

struct master_ocsp {
	struct master		*m;
	ev_timer		timer;
	struct ocsp_file	file[CONFIG_MAX_FRONTENDS][CONFIG_MAX_CERTS];
	struct ocsp_push	push[CONFIG_MAX_FRONTENDS];
};

/* The whole file at path, at most OCSP_MAX bytes; 0 or -errno. */
static int
ocsp_read(const char *path, gnutls_datum_t *out, struct stat *st)
{
	int fd, r;

	out->data = NULL;
	out->size = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
		return -errno;
	if (fstat(fd, st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st->st_mode) || st->st_size > (off_t)OCSP_MAX) {
		r = S_ISREG(st->st_mode) ? -EFBIG : -EINVAL;
		goto out;
	}
	r = config_cert_read(fd, out);	/* any file: whole, pread() */
out:
	close(fd);
	return r;
}

/*
 * Is der a good response for the leaf of the chain in cert_fd?  0, or
 * -EINVAL with why; *next_update is its nextUpdate (0: none given).
 */
static int
ocsp_check(const gnutls_datum_t *der, int cert_fd, time_t *next_update,
    char *why, size_t whylen)
{
	gnutls_ocsp_resp_t resp = NULL;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t pem = { NULL, 0 };
	unsigned status;
	time_t this_update, next, rev;
	int r, st, ret = -EINVAL;

	*next_update = 0;
	if ((r = gnutls_ocsp_resp_init(&resp)) < 0 ||
	    (r = gnutls_ocsp_resp_import(resp, der)) < 0) {
		snprintf(why, whylen, "not a DER OCSP response: %s",
		    gnutls_strerror(r));
		goto out;
	}
	if ((st = gnutls_ocsp_resp_get_status(resp)) !=
	    GNUTLS_OCSP_RESP_SUCCESSFUL) {
		snprintf(why, whylen, "the responder's status is %d, not "
		    "successful", st);
		goto out;
	}
	if ((r = config_cert_read(cert_fd, &pem)) < 0 ||
	    gnutls_x509_crt_init(&crt) < 0 ||
	    gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM) < 0) {
		snprintf(why, whylen, "cannot read the certificate back");
		goto out;
	}
	if (gnutls_ocsp_resp_check_crt(resp, 0, crt) < 0) {
		snprintf(why, whylen, "it is not about this certificate (serial "
		    "or issuer differ)");
		goto out;
	}
	if ((r = gnutls_ocsp_resp_get_single(resp, 0, NULL, NULL, NULL, NULL,
	    &status, &this_update, &next, &rev, NULL)) < 0) {
		snprintf(why, whylen, "no single response: %s",
		    gnutls_strerror(r));
		goto out;
	}
	if (next != (time_t)-1 && next <= time(NULL)) {
		snprintf(why, whylen, "it expired (nextUpdate %lld, now %lld)",
		    (long long)next, (long long)time(NULL));
		goto out;
	}
	*next_update = next != (time_t)-1 ? next : 0;
	ret = 0;
out:
	if (pem.data != NULL) {
		gnutls_memset(pem.data, 0, pem.size);
		gnutls_free(pem.data);
	}
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	if (resp != NULL)
		gnutls_ocsp_resp_deinit(resp);
	return ret;
}

/*
 * Certificate c of fe: read its response file again, check it against the
 * chain in fe->certs[c].cert_fd, and make fe->certs[c].ocsp_fd a sealed
 * copy of it, or -1.  Returns 1 when what workers staple changed.
 */
static int
ocsp_read_cert(struct master_ocsp *mo, struct frontend *fe, unsigned c)
{
	struct frontend_cert *fc = &fe->certs[c];
	struct ocsp_file *of = &mo->file[fe->index][c];
	gnutls_datum_t der = { NULL, 0 };
	struct stat st;
	struct iovec iov;
	char why[256];
	time_t next = 0;
	int r, fd = -1, had = fc->ocsp_fd >= 0;

	memset(&st, 0, sizeof(st));
	if ((r = ocsp_read(fc->ocsp, &der, &st)) < 0)
		snprintf(why, sizeof(why), "%s", r == -EFBIG ?
		    "larger than 64 KiB" : strerror(-r));
	else if (fc->cert_fd < 0) {
		snprintf(why, sizeof(why), "no certificate chain yet");
		r = -EBADF;
	} else if ((r = ocsp_check(&der, fc->cert_fd, &next, why,
	    sizeof(why))) == 0) {
		iov.iov_base = der.data;
		iov.iov_len = der.size;
		if ((fd = sealed_memfd("moat-ocsp", &iov, 1)) < 0) {
			snprintf(why, sizeof(why), "cannot copy it: %s",
			    strerror(-fd));
			r = fd;
		}
	}
	gnutls_free(der.data);
	of->read = 1;
	of->dev = st.st_dev;
	of->ino = st.st_ino;
	of->size = st.st_size;
	of->mtime = st.st_mtim;
	of->next_update = r == 0 ? next : 0;
	if (fc->ocsp_fd >= 0)
		close(fc->ocsp_fd);
	fc->ocsp_fd = r == 0 ? fd : -1;
	if (r < 0)
		log_warnx("frontend %s: ocsp %s (line %d): not stapled: %s",
		    fe->name, fc->ocsp, fc->ocsp_line, why);
	else
		log_info("frontend %s: ocsp %s: stapling it with %s", fe->name,
		    fc->ocsp, fc->cert);
	return r == 0 || had;
}

/* Every response of fe, read again (a rotation, the start). */
int
master_ocsp_read_fe(struct master *m, struct frontend *fe)
{
	unsigned c;
	int changed = 0;

	for (c = 0; c < fe->ncerts; c++)
		if (fe->certs[c].ocsp[0] != '\0')
			changed |= ocsp_read_cert(m->ocsp, fe, c);
	return changed;
}

/*
 * The descriptors of fe's responses, after its chains in fds (which
 * holds fe->ncerts already), and the mask that says whose they are.
 * Returns the total count.
 */
unsigned
master_ocsp_fds(const struct frontend *fe, int *fds, uint32_t *mask)
{
	unsigned c, n = fe->ncerts;

	*mask = 0;
	for (c = 0; c < fe->ncerts; c++)
		if (fe->certs[c].ocsp_fd >= 0) {
			fds[n++] = fe->certs[c].ocsp_fd;
			*mask |= 1u << c;
		}
	return n;
}

static void
ocsp_push_answered(struct req *rq, const struct req_peer *p,
    struct ipc_msg *msg)
{
	struct ocsp_push *op = container_of(rq, struct ocsp_push, req);
	struct ipc_reply rep;

	if (msg->hdr.type != IPC_WORKER_CERT_REPLY ||
	    ipc_reply_decode(msg->payload, msg->hdr.len, &rep) < 0 ||
	    rep.status < 0)
		log_warnx("worker %u (pid %ld): did not take the new OCSP "
		    "responses of frontend %s", p->child->index, (long)p->pid,
		    op->mo->m->cfg->frontends[op->frontend].name);
}

static void
ocsp_push_lost(struct req *rq, const struct req_peer *p, int error)
{
	log_warnx("worker %u (pid %ld): no answer to the new OCSP responses: "
	    "%s", p->child->index, (long)p->pid, strerror(-error));
}

static void
ocsp_push_done(struct req *rq)
{
	container_of(rq, struct ocsp_push, req)->busy = 0;
}

static const struct req_ops ocsp_push_ops = {
	ocsp_push_answered,
	ocsp_push_lost,
	ocsp_push_done,
};

/* Every live worker gets fe's current chains and new responses. */
static void
ocsp_push(struct master_ocsp *mo, const struct frontend *fe)
{
	struct master *m = mo->m;
	struct ocsp_push *op = &mo->push[fe->index];
	struct ipc_worker_cert wc;
	struct master_child *w;
	int fds[2 * CONFIG_MAX_CERTS];
	unsigned c, j, n;
	int r;

	for (c = 0; c < fe->ncerts; c++)
		fds[c] = fe->certs[c].cert_fd;
	memset(&wc, 0, sizeof(wc));
	wc.frontend = fe->index;
	wc.key_id = IPC_KEY_SLOT(fe->index, 0, fe->key_generation);
	wc.generation = fe->key_generation;
	n = master_ocsp_fds(fe, fds, &wc.ocsp_mask);
	req_init(&m->reqs, &op->req, &ocsp_push_ops);
	for (j = 0; j < m->cfg->workers; j++) {
		w = &m->workers[j];
		/*
		 * A worker that did not take the current generation is being
		 * restarted (reload.c); to it this would look like a rotation.
		 */
		if (w->pid <= 0 || w->fd < 0 ||
		    w->cert_generation[fe->index] != fe->key_generation)
			continue;
		if ((r = req_ask(&op->req, w, IPC_WORKER_CERT, &wc, sizeof(wc),
		    fds, n)) < 0)
			log_warnx("worker %u: cannot send the new OCSP "
			    "responses: %s", j, strerror(-r));
	}
	op->busy = 1;
	req_start(&op->req, MASTER_REQ_TIMEOUT_S);
}

/* Has certificate c's file changed, or its response expired, since? */
static int
ocsp_stale(const struct master_ocsp *mo, const struct frontend *fe,
    unsigned c)
{
	const struct ocsp_file *of = &mo->file[fe->index][c];
	struct stat st;

	if (of->next_update != 0 && of->next_update <= time(NULL))
		return 1;
	if (stat(fe->certs[c].ocsp, &st) < 0)
		return of->size != 0 || of->ino != 0;	/* it went away */
	return !of->read || st.st_dev != of->dev || st.st_ino != of->ino ||
	    st.st_size != of->size ||
	    st.st_mtim.tv_sec != of->mtime.tv_sec ||
	    st.st_mtim.tv_nsec != of->mtime.tv_nsec;
}

static void
ocsp_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct master_ocsp *mo = container_of(t, struct master_ocsp, timer);
	struct config *cfg = mo->m->cfg;
	struct frontend *fe;
	unsigned i, c;
	int changed;

	if (mo->m->reload != NULL || mo->m->stopping)
		return;		/* the rotation reads them; next time */
	for (i = 0; i < cfg->nfrontends; i++) {
		fe = &cfg->frontends[i];
		if (mo->push[i].busy)
			continue;
		changed = 0;
		for (c = 0; c < fe->ncerts; c++)
			if (fe->certs[c].ocsp[0] != '\0' &&
			    ocsp_stale(mo, fe, c))
				changed |= ocsp_read_cert(mo, fe, c);
		if (changed)
			ocsp_push(mo, fe);
	}
}

/* After keyd's first start (the chains are in place), before workers. */
void
master_ocsp_start(struct master *m)
{
	struct master_ocsp *mo;
	unsigned i;

	if ((mo = calloc(1, sizeof(*mo))) == NULL)
		fatal("%s: calloc", __func__);
	mo->m = m;
	m->ocsp = mo;
	for (i = 0; i < CONFIG_MAX_FRONTENDS; i++) {
		mo->push[i].mo = mo;
		mo->push[i].frontend = i;
	}
	for (i = 0; i < m->cfg->nfrontends; i++)
		(void)master_ocsp_read_fe(m, &m->cfg->frontends[i]);
	ev_timer_init(&mo->timer, ocsp_timer_cb, m->cfg->ocsp_check_ms / 1000.,
	    m->cfg->ocsp_check_ms / 1000.);
	ev_timer_start(m->loop, &mo->timer);
}

void
master_ocsp_stop(struct master *m)
{
	if (m->ocsp == NULL)
		return;
	ev_timer_stop(m->loop, &m->ocsp->timer);
	free(m->ocsp);
	m->ocsp = NULL;
}
