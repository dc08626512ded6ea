/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conf_cert.c -- a certificate file as moat reads it: from a descriptor,
 * whole, and refused when it holds anything but certificates that matter
 * (a private key above all).  The master checks each chain here and hands
 * on a sealed copy of exactly what it checked (config_cert_snapshot()): a
 * file changed in place afterwards, a key appended to it say, cannot reach
 * keyd's match or a worker.  A worker reads its chain through
 * config_cert_read(), from that copy.  Every buffer that held a
 * certificate file is wiped before it is freed.
 */
#include "config.h"

#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "conf.h"
#include "sealed.h"

/*
 * The label of a PEM block in data that holds a private key ("-----BEGIN
 * ... PRIVATE KEY-----", any kind: PKCS#8, encrypted, RSA, EC, OpenSSH),
 * copied into label, or NULL when there is none.
 */
static const char *
config_pem_private_key(const gnutls_datum_t *data, char *label, size_t size)
{
	static const char begin[] = "-----BEGIN ";
	const char *p = (const char *)data->data, *end = p + data->size;
	const char *l, *e;
	size_t n;

	if (p == NULL)
		return NULL;	/* an empty file */
	while ((p = memmem(p, (size_t)(end - p), begin, sizeof(begin) - 1)) !=
	    NULL) {
		l = p + sizeof(begin) - 1;
		if ((e = memmem(l, (size_t)(end - l), "-----", 5)) == NULL)
			return NULL;
		n = (size_t)(e - l);
		if (n >= 11 && memcmp(e - 11, "PRIVATE KEY", 11) == 0) {
			snprintf(label, size, "%.*s", (int)(n < 64 ? n : 64), l);
			return label;
		}
		p = e;
	}
	return NULL;
}

/*
 * A whole certificate file from an open descriptor, read with pread()
 * from offset 0 (the description may be shared), into *out; at most
 * CONFIG_CERT_MAX bytes.  0, or -errno.  The caller wipes and frees it.
 */
int
config_cert_read(int fd, gnutls_datum_t *out)
{
	uint8_t *buf;
	size_t len = 0;
	ssize_t n;
	int r;

	out->data = NULL;
	out->size = 0;
	if ((buf = gnutls_malloc(CONFIG_CERT_MAX)) == NULL)
		return -ENOMEM;
	for (;;) {
		n = pread(fd, buf + len, CONFIG_CERT_MAX - len, (off_t)len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == CONFIG_CERT_MAX) {
			r = -EFBIG;
			goto fail;
		}
	}
	out->data = buf;
	out->size = (unsigned)len;
	return 0;
fail:
	gnutls_memset(buf, 0, len);
	gnutls_free(buf);
	return r;
}

/*
 * config_check_cert_file() on a descriptor.  With memfd, a sealed copy of
 * the very bytes that were checked is made there (the caller closes it).
 */
int
config_cert_snapshot(int fd, int *memfd, int *pk, char *why, size_t whylen)
{
	gnutls_x509_crt_t *crts = NULL;
	gnutls_datum_t data = { NULL, 0 };
	struct iovec iov;
	unsigned ncrt = 0, bits = 0, i;
	char label[80];
	int r;

	*pk = GNUTLS_PK_UNKNOWN;
	if (memfd != NULL)
		*memfd = -1;
	if ((r = config_cert_read(fd, &data)) < 0) {
		snprintf(why, whylen, "%s", r == -EFBIG ? "larger than 1 MiB" :
		    strerror(-r));
		return r;
	}
	if (config_pem_private_key(&data, label, sizeof(label)) != NULL) {
		snprintf(why, whylen, "holds a private key (BEGIN %s): the "
		    "master and every worker read the certificate file, so the "
		    "key must be in its own file (key =), readable by root only",
		    label);
		r = -EINVAL;
		goto out;
	}
	r = gnutls_x509_crt_list_import2(&crts, &ncrt, &data,
	    GNUTLS_X509_FMT_PEM, 0);
	if (r < 0 || ncrt == 0) {
		snprintf(why, whylen, "does not parse as a PEM certificate "
		    "chain: %s", r < 0 ? gnutls_strerror(r) : "no certificate");
		r = -EINVAL;
		goto out;
	}
	*pk = gnutls_x509_crt_get_pk_algorithm(crts[0], &bits);
	r = 0;
	if (memfd != NULL) {
		iov.iov_base = data.data;
		iov.iov_len = data.size;
		if ((r = sealed_memfd("moat-cert", &iov, 1)) < 0)
			snprintf(why, whylen, "cannot copy it: %s",
			    strerror(-r));
		else {
			*memfd = r;
			r = 0;
		}
	}
out:
	for (i = 0; i < ncrt; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	gnutls_memset(data.data, 0, data.size);
	gnutls_free(data.data);
	return r;
}
