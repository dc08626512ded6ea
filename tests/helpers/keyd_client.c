/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * keyd_client.c -- plays the master and a worker against a real moat-keyd.
 *
 * usage: keyd_client [-m sign|load|ratelimit] [-k ID,KEY,CERT[,pass=FILE]
 *            [,decrypt][,digest][,dhe]]... [-n N] [-u USER] [-C CHROOT]
 *            [-t THREADS] [-x KEYD-ARG]... [-T SECONDS] [-D ID] [-w]
 *            MOAT-KEYD
 *
 * As the master it spawns moat-keyd (fork + exec, control channel on fd 3),
 * loads the keys with IPC_KEY_LOAD (it opens the files; keyd gets the fds;
 * decrypt, digest and dhe are the IPC_KEY_F_ALLOW_* flags the master sets
 * for a frontend with RSA key exchange, TLS 1.2 or DHE) and hands keyd
 * worker channels.  As a worker it then exercises them:
 *   sign       N requests per key in flight at once (TLS 1.3 CertificateVerify
 *              content with random transcript hashes, plus TLS 1.2
 *              ServerKeyExchange content and bare digests: RSA DigestInfo,
 *              RSA-PSS and ECDSA), every signature verified with the
 *              certificate's public key; the same through a GnuTLS
 *              import_ext4 key, so the digests are the ones GnuTLS makes;
 *              requests the policy must refuse; TLS 1.3-only copies of the
 *              keys (digests refused) loaded and dropped; decrypts; a
 *              malformed and an oversized datagram, a master's request and
 *              a lingering socket on other channels, after which another
 *              channel must still be served.
 *   load       only load the keys and report each KEY_LOAD_REPLY.
 *   ratelimit  N requests at once; reports how many keyd rate limited,
 *              and what a KEY_LIST and a malformed request get after them.
 * With -D ID it then drops key slot ID (IPC_KEY_DROP) and reports the answer.
 * It prints one JSON object with the results and keyd's IPC_KEYD_STATS.
 * With -w it then keeps keyd running until stdin reaches EOF (so a test can
 * inspect /proc/PID), closes the control channel, and prints a second JSON
 * line with keyd's exit status.  Every wait is bounded by -T.
 *
 * The plumbing (spawning keyd, the master's and the worker's side of the
 * protocol, JSON) is keydlib.c; this file is what the tests ask for.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "ipc.h"
#include "keydlib.h"

#define MAX_SPECS	16
#define MAX_REQS	20000
#define CONTENT_MAX	512
#define SPARE_SLOT	(IPC_MAX_KEYS - 4)	/* keys loaded and dropped */

struct spec {
	uint32_t		id;
	const char		*key;
	const char		*cert;
	const char		*pass;
	uint32_t		flags;		/* IPC_KEY_F_ALLOW_* */
	gnutls_pubkey_t		pub;
	int			loaded;
	struct ipc_key_loaded	res;
	/* results of the sign mode */
	unsigned		sent, verified, failed;
	unsigned		batch_sent, batch_verified, batch_failed;
	unsigned		ext_total, ext_verified;
};

struct req {
	uint32_t	id;
	struct spec	*spec;
	uint32_t	sign_algo;	/* what keyd is asked */
	uint32_t	form;
	uint32_t	verify_algo;	/* what the signature is checked as */
	unsigned	verify_flags;
	uint8_t		msg[CONTENT_MAX];	/* what the signature covers */
	size_t		msg_len;
	uint8_t		data[CONTENT_MAX];	/* what keyd gets */
	size_t		data_len;
	int		done;
};

static struct spec	specs[MAX_SPECS];
static unsigned		nspecs;
static struct req	*reqs;

static void
load_key(int ctl, struct spec *s, struct ipc_msg *msg)
{
	unsigned i;

	s->loaded = keydlib_key_load(ctl, s->id, s->key, s->cert, s->pass,
	    s->flags, msg, &s->res) == 0;
	/* A key id loaded again replaces the key that had it. */
	for (i = 0; s->loaded && &specs[i] != s; i++)
		if (specs[i].id == s->id)
			specs[i].loaded = 0;
}

/* The TLS 1.3 algorithm a key signs a CertificateVerify with, by turn. */
static uint32_t
cv_algo(const struct spec *s, unsigned turn)
{
	static const uint32_t pss[] = { GNUTLS_SIGN_RSA_PSS_RSAE_SHA256,
	    GNUTLS_SIGN_RSA_PSS_RSAE_SHA384, GNUTLS_SIGN_RSA_PSS_RSAE_SHA512 };

	switch (s->res.info.pk_algo) {
	case GNUTLS_PK_RSA:
		return pss[turn % 3];
	case GNUTLS_PK_ECDSA:
		return s->res.info.bits == 384 ?
		    GNUTLS_SIGN_ECDSA_SECP384R1_SHA384 :
		    GNUTLS_SIGN_ECDSA_SECP256R1_SHA256;
	default:
		return GNUTLS_SIGN_EDDSA_ED25519;
	}
}

static void
req_digest(struct req *q, gnutls_digest_algorithm_t dig)
{
	uint8_t h[64];

	q->msg_len = 100;
	keydlib_rnd(q->msg, q->msg_len);
	if (gnutls_hash_fast(dig, q->msg, q->msg_len, h) < 0)
		keydlib_die("gnutls_hash_fast");
	memcpy(q->data, h, gnutls_hash_get_len(dig));
	q->data_len = gnutls_hash_get_len(dig);
}

/* Build request number i for key s; returns 0 if the key has no such kind. */
static int
build_req(struct req *q, struct spec *s, unsigned i, unsigned n)
{
	static const gnutls_digest_algorithm_t digs[] = { GNUTLS_DIG_SHA256,
	    GNUTLS_DIG_SHA384, GNUTLS_DIG_SHA512 };
	static const uint32_t rsa_pkcs1[] = { GNUTLS_SIGN_RSA_SHA256,
	    GNUTLS_SIGN_RSA_SHA384, GNUTLS_SIGN_RSA_SHA512 };
	static const uint32_t rsa_pss[] = { GNUTLS_SIGN_RSA_PSS_RSAE_SHA256,
	    GNUTLS_SIGN_RSA_PSS_RSAE_SHA384, GNUTLS_SIGN_RSA_PSS_RSAE_SHA512 };
	static const uint32_t ecdsa[] = { GNUTLS_SIGN_ECDSA_SHA256,
	    GNUTLS_SIGN_ECDSA_SHA384, GNUTLS_SIGN_ECDSA_SHA512 };
	unsigned kind, t = i % 3;
	uint32_t pk = s->res.info.pk_algo;

	memset(q, 0, sizeof(*q));
	q->id = keydlib_id_next();
	q->spec = s;
	/* i < n: CertificateVerify; then a quarter SKE, a quarter digests. */
	kind = i < n ? 0 : i < n + n / 4 ? 1 : 2;
	if (kind == 0) {
		q->form = IPC_SIGN_CONTENT;
		q->sign_algo = q->verify_algo = cv_algo(s, i);
		q->msg_len = keydlib_make_cv(q->msg, i % 2 ? 48 : 32);
		if (pk == GNUTLS_PK_RSA)
			q->verify_flags = GNUTLS_VERIFY_RSA_PSS_FIXED_SALT_LENGTH;
	} else if (kind == 1) {
		q->form = IPC_SIGN_CONTENT;
		q->msg_len = keydlib_make_ske(q->msg, i % 2);
		q->sign_algo = s->res.info.sign_algos[i %
		    s->res.info.nsign];
		q->verify_algo = q->sign_algo;
	} else {
		q->form = IPC_SIGN_DIGEST;
		if (pk == GNUTLS_PK_EDDSA_ED25519)
			return 0;
		req_digest(q, digs[t]);
		if (pk == GNUTLS_PK_RSA && i % 2) {
			/* PKCS#1 v1.5: GnuTLS passes RSA_RAW + DigestInfo. */
			memmove(q->data + 19, q->data, q->data_len);
			memcpy(q->data, keydlib_digestinfo_prefix[t], 19);
			q->data_len += 19;
			q->sign_algo = GNUTLS_SIGN_RSA_RAW;
			q->verify_algo = rsa_pkcs1[t];
		} else if (pk == GNUTLS_PK_RSA) {
			q->sign_algo = q->verify_algo = rsa_pss[t];
		} else {
			q->sign_algo = q->verify_algo = ecdsa[t];
		}
		return 1;
	}
	memcpy(q->data, q->msg, q->msg_len);
	q->data_len = q->msg_len;
	return 1;
}

static int
verify(const struct req *q, const uint8_t *sig, size_t len)
{
	gnutls_datum_t m = { (unsigned char *)q->msg, (unsigned)q->msg_len };
	gnutls_datum_t s = { (unsigned char *)sig, (unsigned)len };

	return gnutls_pubkey_verify_data2(q->spec->pub, q->verify_algo,
	    q->verify_flags, &m, &s) >= 0;
}

static struct req *
find_req(unsigned nreq, uint32_t id)
{
	unsigned i;

	for (i = 0; i < nreq; i++)
		if (reqs[i].id == id && !reqs[i].done)
			return &reqs[i];
	return NULL;
}

/*
 * Send every request before reading any answer (unless the socket fills),
 * so they are all in flight at once; then collect the answers by id.
 */
static void
run_batch(int fd, unsigned nreq, struct ipc_msg *msg, unsigned *max_inflight,
    unsigned *busy, unsigned *errs)
{
	struct pollfd pfd;
	struct ipc_reply rep;
	struct ipc_error e;
	struct req *q;
	unsigned sent = 0, got = 0, inflight;
	int r;

	while (got < nreq) {
		while (sent < nreq) {
			q = &reqs[sent];
			r = keydlib_sign_send(fd, q->id, q->spec->id,
			    q->sign_algo, q->form, q->data, q->data_len);
			if (r == -EAGAIN)
				break;
			if (r < 0)
				keydlib_die("send: %s", strerror(-r));
			q->spec->sent++;
			sent++;
		}
		inflight = sent - got;
		if (inflight > *max_inflight)
			*max_inflight = inflight;

		r = ipc_recv(fd, keydlib_ends(fd), msg);
		if (r == -EAGAIN) {
			if (keydlib_remaining_ms() == 0)
				keydlib_die("timed out with %u of %u answers",
				    got, nreq);
			pfd.fd = fd;
			pfd.events = POLLIN | (sent < nreq ? POLLOUT : 0);
			poll(&pfd, 1, keydlib_remaining_ms());
			continue;
		}
		if (r <= 0)
			keydlib_die("batch: %s", r == 0 ?
			    "keyd closed the channel" : strerror(-r));
		if ((q = find_req(nreq, msg->hdr.id)) == NULL)
			keydlib_die("answer for unknown id %u", msg->hdr.id);
		q->done = 1;
		got++;
		if (msg->hdr.type == IPC_SIGN_REPLY &&
		    ipc_reply_decode(msg->payload, msg->hdr.len, &rep) == 0 &&
		    rep.status == 0 && verify(q, rep.data, rep.data_len)) {
			q->spec->verified++;
			continue;
		}
		q->spec->failed++;
		if (msg->hdr.type == IPC_ERROR &&
		    ipc_error_decode(msg->payload, msg->hdr.len, &e) == 0) {
			if (e.code == -EBUSY)
				(*busy)++;
			else
				(*errs)++;
			if (e.code != -EBUSY)
				fprintf(stderr, "keyd_client: request %u (key %u "
				    "algo %u form %u len %zu): %s\n", q->id,
				    q->spec->id, q->sign_algo, q->form,
				    q->data_len, e.msg);
		} else {
			(*errs)++;
			fprintf(stderr, "keyd_client: request %u (key %u algo "
			    "%u form %u): bad signature\n", q->id, q->spec->id,
			    q->sign_algo, q->form);
		}
	}
}

/* Every algorithm of the key, over CertificateVerify and SKE content. */
static void
run_ext(int fd, struct spec *s, struct ipc_msg *msg)
{
	struct keydlib_ext x = { fd, s->id, &s->res.info, msg };
	gnutls_privkey_t pk;
	gnutls_datum_t m, sig;
	uint8_t content[CONTENT_MAX];
	unsigned i, j, flags;
	int r;

	if (gnutls_privkey_init(&pk) < 0 || keydlib_ext_import(pk, &x) < 0)
		keydlib_die("gnutls_privkey_import_ext4");
	for (i = 0; i < s->res.info.nsign; i++) {
		for (j = 0; j < 2; j++) {
			uint32_t algo = s->res.info.sign_algos[i];

			/* TLS 1.3 takes no PKCS#1 v1.5 nor curve-less ECDSA. */
			if (j == 0 && cv_algo(s, 0) != algo &&
			    cv_algo(s, 1) != algo && cv_algo(s, 2) != algo)
				continue;
			m.data = content;
			m.size = (unsigned)(j == 0 ?
			    keydlib_make_cv(content, 32) :
			    keydlib_make_ske(content, 0));
			flags = gnutls_sign_get_pk_algorithm(algo) ==
			    GNUTLS_PK_RSA_PSS ?
			    GNUTLS_PRIVKEY_FLAG_RSA_PSS_FIXED_SALT_LENGTH : 0;
			s->ext_total++;
			r = gnutls_privkey_sign_data2(pk, algo, flags, &m, &sig);
			if (r < 0) {
				fprintf(stderr, "keyd_client: ext4 key %u %s: %s\n",
				    s->id, gnutls_sign_get_name(algo),
				    gnutls_strerror(r));
				continue;
			}
			if (gnutls_pubkey_verify_data2(s->pub, algo, 0, &m,
			    &sig) >= 0)
				s->ext_verified++;
			gnutls_free(sig.data);
		}
	}
	gnutls_privkey_deinit(pk);
}

/*
 * One RSA key-exchange decrypt through keyd of a keydlib_rsa_kx() kind.
 * Returns keyd's error code, or 0 for a status-0 reply of exactly 48
 * bytes (copied to out), and *match says whether those are the secret.
 */
static int
decrypt_one(int fd, struct spec *s, int kind, struct ipc_msg *msg,
    uint8_t *out, int *match)
{
	struct ipc_reply rep;
	uint8_t secret[48];
	gnutls_datum_t ct;
	size_t len;
	int r;

	*match = 0;
	len = keydlib_rsa_kx(s->res.info.pk_algo == GNUTLS_PK_RSA ? s->pub :
	    NULL, s->res.info.bits, kind, secret, &ct);
	r = keydlib_decrypt_roundtrip(fd, s->id, ct.data, ct.size, msg);
	gnutls_free(ct.data);
	if (r != 0)
		return r;
	if (msg->hdr.type != IPC_DECRYPT_REPLY ||
	    ipc_reply_decode(msg->payload, msg->hdr.len, &rep) < 0 ||
	    rep.status != 0 || rep.data_len != sizeof(secret))
		return 1;
	memcpy(out, rep.data, sizeof(secret));
	*match = len > 0 && memcmp(rep.data, secret, len) == 0;
	return 0;
}

/*
 * No padding oracle: n decrypts with good padding, n with bad and one of a
 * secret of the wrong length, all answered alike (status 0, 48 bytes): the
 * secret for the first, and for the others 48 fresh random bytes each.
 */
static void
run_decrypts(int fd, struct spec *s, unsigned n, struct ipc_msg *msg)
{
	uint8_t got[48], last[48];
	unsigned i, ok[2] = { 0, 0 }, same = 0, fresh = 0;
	int m, kind;

	memset(last, 0, sizeof(last));
	for (i = 0; i < 2 * n + 1; i++) {
		kind = i < n ? 0 : i < 2 * n ? 1 : 2;
		if (decrypt_one(fd, s, kind, msg, got, &m) != 0)
			continue;
		ok[kind != 0]++;
		if (kind == 0)
			same += m;
		else
			fresh += !m && memcmp(got, last, sizeof(got)) != 0;
		memcpy(last, got, sizeof(got));
	}
	printf(", \"decrypt\": {\"good\": %u, \"good_48\": %u, "
	    "\"good_match\": %u, \"bad\": %u, \"bad_48\": %u, "
	    "\"bad_fresh\": %u}", n, ok[0], same, n + 1, ok[1], fresh);
}

static struct spec *
spec_by_pk(uint32_t pk)
{
	unsigned i;

	for (i = 0; i < nspecs; i++)
		if (specs[i].loaded && specs[i].res.info.pk_algo == pk)
			return &specs[i];
	return NULL;
}

static void
json_keys(void)
{
	unsigned i, j;
	struct spec *s;

	printf("\"keys\": [");
	for (i = 0; i < nspecs; i++) {
		s = &specs[i];
		printf("%s{\"key_id\": %u, \"status\": %d, \"msg\": ",
		    i ? ", " : "", s->id, s->res.status);
		keydlib_json_str(s->res.msg);
		printf(", \"pk_algo\": %u, \"bits\": %u, \"sign_algos\": [",
		    s->res.info.pk_algo, s->res.info.bits);
		for (j = 0; j < s->res.info.nsign && j < IPC_MAX_SIGN_ALGOS; j++)
			printf("%s\"%s\"", j ? ", " : "",
			    gnutls_sign_get_name(s->res.info.sign_algos[j]) ?
			    gnutls_sign_get_name(s->res.info.sign_algos[j]) : "?");
		printf("], \"sent\": %u, \"verified\": %u, \"failed\": %u, "
		    "\"ext4_total\": %u, \"ext4_verified\": %u}",
		    s->batch_sent, s->batch_verified, s->batch_failed,
		    s->ext_total, s->ext_verified);
	}
	printf("]");
}

/* The policy checks a compromised worker would hit; codes go to JSON. */
static void
run_refusals(int fd, struct ipc_msg *msg)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: example.org\r\n\r\n";
	struct spec *ec = spec_by_pk(GNUTLS_PK_ECDSA);
	struct spec *rsa = spec_by_pk(GNUTLS_PK_RSA);
	struct spec *ed = spec_by_pk(GNUTLS_PK_EDDSA_ED25519);
	struct spec *any = ec != NULL ? ec : rsa != NULL ? rsa : ed;
	uint8_t buf[CONTENT_MAX], payload[64];
	size_t n;
	int r, m;

	if (any == NULL)
		return;
	printf("\"refusals\": {");
	r = keydlib_sign_roundtrip(fd, any->id, cv_algo(any, 0),
	    IPC_SIGN_CONTENT, (const uint8_t *)http, sizeof(http) - 1, msg);
	printf("\"not_tls\": %d", r);
	/* A CertificateVerify for the client side is not ours to sign. */
	n = keydlib_make_cv(buf, 32);
	memcpy(buf + 64 + 9, "client", 6);
	r = keydlib_sign_roundtrip(fd, any->id, cv_algo(any, 0),
	    IPC_SIGN_CONTENT, buf, n, msg);
	printf(", \"client_cv\": %d", r);
	/* Valid CertificateVerify with a trailing byte. */
	n = keydlib_make_cv(buf, 32);
	buf[n++] = 0;
	r = keydlib_sign_roundtrip(fd, any->id, cv_algo(any, 0),
	    IPC_SIGN_CONTENT, buf, n, msg);
	printf(", \"trailing_byte\": %d", r);
	r = keydlib_sign_roundtrip(fd, 63, cv_algo(any, 0), IPC_SIGN_CONTENT,
	    buf, n - 1, msg);
	printf(", \"unknown_key\": %d", r);
	if (ec != NULL) {
		keydlib_rnd(buf, 20);
		r = keydlib_sign_roundtrip(fd, ec->id, GNUTLS_SIGN_ECDSA_SHA256,
		    IPC_SIGN_DIGEST, buf, 20, msg);
		printf(", \"ecdsa_sha1_sized_digest\": %d", r);
		r = keydlib_sign_roundtrip(fd, ec->id,
		    GNUTLS_SIGN_EDDSA_ED25519, IPC_SIGN_CONTENT, buf,
		    keydlib_make_cv(buf, 32), msg);
		printf(", \"wrong_algo\": %d", r);
		r = decrypt_one(fd, ec, 0, msg, buf, &m);
		printf(", \"decrypt_ecdsa\": %d", r);
	}
	if (rsa != NULL) {
		keydlib_rnd(buf, 32);
		r = keydlib_sign_roundtrip(fd, rsa->id, GNUTLS_SIGN_RSA_RAW,
		    IPC_SIGN_DIGEST, buf, 32 + 19, msg);
		printf(", \"rsa_raw_not_digestinfo\": %d", r);
		r = keydlib_sign_roundtrip(fd, rsa->id, GNUTLS_SIGN_RSA_SHA256,
		    IPC_SIGN_CONTENT, buf, keydlib_make_cv(buf, 32), msg);
		printf(", \"pkcs1_in_tls13\": %d", r);
		r = decrypt_one(fd, rsa, 0, msg, buf, &m);
		printf(", \"decrypt_rsa\": %d", r != 0 ? r : m ? 0 : 1);
	}
	if (ed != NULL) {
		keydlib_rnd(buf, 32);
		r = keydlib_sign_roundtrip(fd, ed->id,
		    GNUTLS_SIGN_EDDSA_ED25519, IPC_SIGN_DIGEST, buf, 32, msg);
		printf(", \"eddsa_digest\": %d", r);
	}
	/* A SIGN whose inner length disagrees with the payload. */
	memset(payload, 0, sizeof(payload));
	payload[16] = 200;
	r = keydlib_roundtrip(fd, IPC_SIGN, payload, sizeof(payload), msg);
	printf(", \"malformed_payload\": %d}", r);
}

/*
 * A TLS 1.3-only frontend's key: the same files loaded again into spare
 * slot without IPC_KEY_F_ALLOW_DIGEST.  keyd must refuse its digests,
 * built here or made by GnuTLS for a TLS 1.2 signature through an ext4 key,
 * and still sign CertificateVerify content.  Then IPC_KEY_DROP forgets
 * the slot: requests naming it get -ENOENT, and so does a second drop.
 */
static void
run_content_only(int ctl, int fd, const char *name, struct spec *s,
    uint32_t slot, struct ipc_msg *msg)
{
	struct keydlib_ext x = { fd, slot, &s->res.info, msg };
	struct ipc_key_loaded res;
	struct ipc_reply rep;
	struct req q;
	gnutls_privkey_t pk;
	gnutls_datum_t m, sig;
	int rsa = s->res.info.pk_algo == GNUTLS_PK_RSA, r;

	if (keydlib_key_load(ctl, slot, s->key, s->cert, s->pass, s->flags &
	    ~IPC_KEY_F_ALLOW_DIGEST, msg, &res) != 0)
		keydlib_die("content-only load of %s: %s", s->key, res.msg);
	memset(&q, 0, sizeof(q));
	keydlib_rnd(q.data, 32 + KEYDLIB_DIGESTINFO);
	if (rsa)
		memcpy(q.data, keydlib_digestinfo_prefix[0], 19);
	r = keydlib_sign_roundtrip(fd, slot, rsa ? GNUTLS_SIGN_RSA_RAW :
	    GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, IPC_SIGN_DIGEST, q.data,
	    rsa ? 32 + KEYDLIB_DIGESTINFO : 32, msg);
	printf("\"%s\": {\"digest\": %d", name, r);

	if (gnutls_privkey_init(&pk) < 0 || keydlib_ext_import(pk, &x) < 0)
		keydlib_die("gnutls_privkey_import_ext4");
	m.data = q.msg;
	m.size = (unsigned)keydlib_make_ske(q.msg, 1);
	r = gnutls_privkey_sign_data2(pk, rsa ?
	    GNUTLS_SIGN_RSA_PSS_RSAE_SHA256 : GNUTLS_SIGN_ECDSA_SHA256, rsa ?
	    GNUTLS_PRIVKEY_FLAG_RSA_PSS_FIXED_SALT_LENGTH : 0, &m, &sig);
	if (r >= 0)
		gnutls_free(sig.data);
	gnutls_privkey_deinit(pk);
	printf(", \"ext4_tls12_signed\": %s", r >= 0 ? "true" : "false");

	q.spec = s;
	q.verify_algo = cv_algo(s, 0);
	q.verify_flags = rsa ? GNUTLS_VERIFY_RSA_PSS_FIXED_SALT_LENGTH : 0;
	q.msg_len = keydlib_make_cv(q.msg, 32);
	r = keydlib_sign_roundtrip(fd, slot, q.verify_algo, IPC_SIGN_CONTENT,
	    q.msg, q.msg_len, msg);
	printf(", \"cv\": %d, \"cv_verified\": %s", r, r == 0 &&
	    ipc_reply_decode(msg->payload, msg->hdr.len, &rep) == 0 &&
	    rep.status == 0 && verify(&q, rep.data, rep.data_len) ? "true" :
	    "false");

	printf(", \"drop\": %d", keydlib_key_drop(ctl, slot, msg));
	r = keydlib_sign_roundtrip(fd, slot, q.verify_algo, IPC_SIGN_CONTENT,
	    q.msg, q.msg_len, msg);
	printf(", \"after_drop\": %d, \"drop_again\": %d}", r,
	    keydlib_key_drop(ctl, slot, msg));
}

static void
usage(void)
{
	fprintf(stderr, "usage: keyd_client [-m sign|load|ratelimit] "
	    "[-k ID,KEY,CERT[,pass=FILE][,decrypt][,digest][,dhe]]... "
	    "[-n N] [-u USER]\n"
	    "       [-C CHROOT] [-t THREADS] [-x KEYD-ARG]... [-T SECONDS] "
	    "[-D ID] [-w] MOAT-KEYD\n");
	exit(2);
}

static void
parse_spec(char *arg)
{
	struct spec *s;
	char *tok, *save = NULL;
	unsigned field = 0;

	if (nspecs >= MAX_SPECS)
		keydlib_die("too many keys");
	s = &specs[nspecs++];
	for (tok = strtok_r(arg, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save), field++) {
		if (field == 0)
			s->id = (uint32_t)strtoul(tok, NULL, 10);
		else if (field == 1)
			s->key = tok;
		else if (field == 2)
			s->cert = tok;
		else if (strncmp(tok, "pass=", 5) == 0)
			s->pass = tok + 5;
		else if (strcmp(tok, "decrypt") == 0)
			s->flags |= IPC_KEY_F_ALLOW_DECRYPT;
		else if (strcmp(tok, "digest") == 0)
			s->flags |= IPC_KEY_F_ALLOW_DIGEST;
		else if (strcmp(tok, "dhe") == 0)
			s->flags |= IPC_KEY_F_ALLOW_DHE;
		else
			keydlib_die("bad key option %s", tok);
	}
	if (s->key == NULL || s->cert == NULL)
		usage();
}

int
main(int argc, char *argv[])
{
	const char *mode = "sign", *user = "moat-keyd";
	const char *chroot_dir = "/var/lib/moat/empty", *threads = NULL;
	char *extra[KEYDLIB_MAX_EXTRA], waitbuf[256];
	unsigned nextra = 0, n = 100, nreq = 0, i, j, per, max_inflight = 0;
	unsigned busy = 0, errs = 0, timeout_s = 120;
	int c, ctl, r, wait_stdin = 0, a, b, d, drop_id = -1, oversize_closed,
	    rl, bad_closed, master_req_closed, other_ok;
	static struct ipc_msg msg;
	struct ipc_keyd_stats st;
	struct ipc_key_info list[IPC_MAX_KEYS];
	struct spec *ec, *rsa;
	unsigned nlist = 0;
	uint8_t junk[IPC_MAX_MSG + 512];
	int64_t t0;

	keydlib_init("keyd_client");
	while ((c = getopt(argc, argv, "m:k:n:u:C:t:x:T:D:w")) != -1) {
		switch (c) {
		case 'm': mode = optarg; break;
		case 'k': parse_spec(optarg); break;
		case 'n': n = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'u': user = optarg; break;
		case 'C': chroot_dir = optarg; break;
		case 't': threads = optarg; break;
		case 'x':
			if (nextra >= KEYDLIB_MAX_EXTRA)
				usage();
			extra[nextra++] = optarg;
			break;
		case 'T': timeout_s = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'D': drop_id = (int)strtoul(optarg, NULL, 10); break;
		case 'w': wait_stdin = 1; break;
		default: usage();
		}
	}
	if (optind != argc - 1 || n == 0 || n > 4000)
		usage();
	signal(SIGPIPE, SIG_IGN);
	if (gnutls_global_init() < 0)
		keydlib_die("gnutls_global_init");
	keydlib_deadline_set(timeout_s);
	for (i = 0; i < nspecs; i++)
		specs[i].pub = keydlib_read_pubkey(specs[i].cert);

	ctl = keydlib_spawn(argv[optind], user, chroot_dir, threads, extra,
	    nextra);
	keydlib_master_hello(ctl, &msg);
	for (i = 0; i < nspecs; i++)
		load_key(ctl, &specs[i], &msg);

	printf("{\"mode\": ");
	keydlib_json_str(mode);
	printf(", \"keyd_pid\": %d, ", (int)keydlib_pid());

	if (strcmp(mode, "load") == 0) {
		json_keys();
		goto stats;
	}

	a = keydlib_channel_add(ctl, 0, &msg);
	if ((r = keydlib_roundtrip(a, IPC_KEY_LIST, NULL, 0, &msg)) != 0 ||
	    msg.hdr.type != IPC_KEY_LIST_REPLY ||
	    ipc_key_list_decode(msg.payload, msg.hdr.len, list, IPC_MAX_KEYS,
	    &nlist) < 0)
		keydlib_die("KEY_LIST failed");
	printf("\"key_list\": %u, ", nlist);

	if ((reqs = calloc(MAX_REQS, sizeof(*reqs))) == NULL)
		keydlib_die("calloc");
	rl = strcmp(mode, "ratelimit") == 0;
	per = rl ? n : n + n / 4 + n / 4;
	for (i = 0; i < nspecs; i++) {
		if (!specs[i].loaded)
			continue;
		for (j = 0; j < per && nreq < MAX_REQS; j++)
			nreq += (unsigned)build_req(&reqs[nreq], &specs[i], j, n);
		if (rl)
			break;	/* one key is enough to meet the limit */
	}
	run_batch(a, nreq, &msg, &max_inflight, &busy, &errs);
	printf("\"requests\": %u, \"max_in_flight\": %u, \"busy\": %u, "
	    "\"errors\": %u, ", nreq, max_inflight, busy, errs);
	for (i = 0; i < nspecs; i++) {
		specs[i].batch_sent = specs[i].sent;
		specs[i].batch_verified = specs[i].verified;
		specs[i].batch_failed = specs[i].failed;
	}
	if (rl) {
		/* The channel's bucket is empty: these two count against it. */
		memset(junk, 0, 8);
		r = keydlib_roundtrip(a, IPC_KEY_LIST, NULL, 0, &msg);
		d = keydlib_roundtrip(a, IPC_SIGN, junk, 8, &msg);
		printf("\"key_list_after\": %d, \"malformed_after\": %d, ", r,
		    d);
		json_keys();
		goto stats;
	}

	for (i = 0; i < nspecs; i++)
		if (specs[i].loaded)
			run_ext(a, &specs[i], &msg);
	run_refusals(a, &msg);
	printf(", \"content_only\": {");
	if ((ec = spec_by_pk(GNUTLS_PK_ECDSA)) != NULL)
		run_content_only(ctl, a, "ecdsa", ec, SPARE_SLOT, &msg);
	if ((rsa = spec_by_pk(GNUTLS_PK_RSA)) != NULL) {
		printf("%s", ec != NULL ? ", " : "");
		run_content_only(ctl, a, "rsa", rsa, SPARE_SLOT + 1, &msg);
	}
	printf("}");
	if (rsa != NULL && (rsa->flags & IPC_KEY_F_ALLOW_DECRYPT))
		run_decrypts(a, rsa, 100, &msg);
	printf(", \"refusals_seen\": %u, ", keydlib_refusals_seen());

	/* A datagram with a bad header closes that channel only. */
	b = keydlib_channel_add(ctl, 1, &msg);
	memset(junk, 0xa5, 64);
	bad_closed = keydlib_closed_after(b, junk, 64, &msg);
	d = keydlib_channel_add(ctl, 2, &msg);
	memset(junk, 0, sizeof(junk));
	oversize_closed = keydlib_closed_after(d, junk, sizeof(junk), &msg);
	close(b);
	close(d);

	/*
	 * A message only the master may send, from a worker's channel: the
	 * permit check closes that channel before the payload is looked at.
	 */
	d = keydlib_channel_add(ctl, 4, &msg);
	memset(junk, 0, 64);
	master_req_closed = ipc_send(d, IPC_KEY_LOAD, keydlib_id_next(), junk,
	    64, NULL, 0) == 0 && keydlib_wait_closed(d, &msg);
	close(d);

	/*
	 * A lingering TCP socket (full send buffer, SO_LINGER 3 s) attached
	 * to a request, as a compromised worker can send one: keyd closes it
	 * abortively (its peer sees a reset) and the channel, at once.
	 */
	d = keydlib_channel_add(ctl, 5, &msg);
	r = keydlib_send_lingering(d, 3, &msg, &t0, &b);
	printf("\"lingering_fd_closed\": %s, \"lingering_fd_ms\": %lld, "
	    "\"lingering_fd_reset\": %s, ", r ? "true" : "false",
	    (long long)t0, b ? "true" : "false");
	close(d);

	/* ... and every other channel is still served. */
	other_ok = 0;
	b = keydlib_channel_add(ctl, 3, &msg);
	for (i = 0; i < nspecs; i++) {
		struct req q;

		if (!specs[i].loaded)
			continue;
		build_req(&q, &specs[i], 0, 1);
		reqs[0] = q;
		specs[i].sent = specs[i].verified = specs[i].failed = 0;
		run_batch(b, 1, &msg, &max_inflight, &busy, &errs);
		reqs[0] = q;
		reqs[0].id = keydlib_id_next();
		run_batch(a, 1, &msg, &max_inflight, &busy, &errs);
		other_ok += specs[i].verified == 2;
	}
	printf("\"bad_header_closed\": %s, \"oversize_closed\": %s, "
	    "\"master_request_closed\": %s, \"other_channels_ok\": %u, ",
	    bad_closed ? "true" : "false", oversize_closed ? "true" : "false",
	    master_req_closed ? "true" : "false", other_ok);
	json_keys();
	close(b);

stats:
	if (drop_id >= 0)
		printf(", \"drop\": %d", keydlib_key_drop(ctl,
		    (uint32_t)drop_id, &msg));
	keydlib_stats(ctl, &msg, &st);
	printf(", ");
	keydlib_json_stats(&st);
	printf("}\n");
	fflush(stdout);

	if (wait_stdin)
		while (read(STDIN_FILENO, waitbuf, sizeof(waitbuf)) > 0)
			;
	keydlib_stop(ctl);
	free(reqs);
	for (i = 0; i < nspecs; i++)
		gnutls_pubkey_deinit(specs[i].pub);
	gnutls_global_deinit();
	return 0;
}
