/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_transcript.c -- the TLS 1.3 CertificateVerify rebuild
 * (daemon/worker/transcript.c) against real handshakes.
 *
 * Live: a GnuTLS server and client handshake in this process over a
 * socketpair.  The server's key is an import_ext4 key, as a worker's is;
 * its sign callback gets the digest GnuTLS computed over the real
 * transcript, and the test checks that the content transcript.c built from
 * the handshake messages hashes to exactly that digest (SHA-256 and
 * SHA-384 suites, with and without a HelloRetryRequest, ECDSA and EdDSA
 * keys).  Every handshake message the hook saw is recorded and replayed
 * into a fresh transcript, which must build the same content.
 *
 * Recorded: tests/unit/data/transcript-*.txt are handshakes recorded this
 * way (MOAT_TRANSCRIPT_RECORD=DIR writes them anew); replaying each must
 * give the digest stored with it, so a change in the rebuild shows even
 * without a live peer.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>

#include "testtls.h"
#include "transcript.h"

#define MAX_MSGS	32
#define MAX_MSG_LEN	16384

struct msg {
	unsigned	htype, when, incoming;
	struct transcript_session ts;
	size_t		len;
	uint8_t		*body;
};

struct run {
	struct transcript	tr;		/* fed live by the hook */
	struct msg		msgs[MAX_MSGS];
	unsigned		nmsgs;
	int			saw_hrr;
	int			signed_ok;	/* content hashed to GnuTLS's digest */
	int			signs;
	uint8_t			content[TRANSCRIPT_CV_MAX];
	size_t			clen;
	gnutls_digest_algorithm_t dig;
	uint8_t			digest[64];	/* what GnuTLS handed sign_hash */
	size_t			dlen;
	gnutls_privkey_t	real;		/* the key that really signs */
};

/* --- the server side: a hook and an ext4 key, as a worker has ---------------- */

static int
hook(gnutls_session_t session, unsigned htype, unsigned when,
    unsigned incoming, const gnutls_datum_t *m)
{
	struct run *run = gnutls_session_get_ptr(session);
	struct transcript_session ts;
	struct msg *rm;

	ts.tls13 = gnutls_protocol_get_version(session) == GNUTLS_TLS1_3;
	ts.prf = gnutls_prf_hash_get(session);
	if (htype == GNUTLS_HANDSHAKE_HELLO_RETRY_REQUEST && !incoming &&
	    when == GNUTLS_HOOK_POST)
		run->saw_hrr = 1;
	transcript_message(&run->tr, htype, when, incoming, m->data, m->size,
	    &ts);
	if (run->nmsgs < MAX_MSGS && m->size <= MAX_MSG_LEN) {
		rm = &run->msgs[run->nmsgs++];
		rm->htype = htype;
		rm->when = when;
		rm->incoming = incoming;
		rm->ts = ts;
		rm->len = m->size;
		rm->body = malloc(m->size > 0 ? m->size : 1);
		assert_non_null(rm->body);
		memcpy(rm->body, m->data, m->size);
	}
	return 0;
}

static int
sign_hash(gnutls_privkey_t key, gnutls_sign_algorithm_t algo, void *userdata,
    unsigned flags, const gnutls_datum_t *hash, gnutls_datum_t *sig)
{
	struct run *run = userdata;
	uint8_t check[64];

	run->signs++;
	run->dig = gnutls_sign_get_hash_algorithm(algo);
	if (hash->size <= sizeof(run->digest)) {
		memcpy(run->digest, hash->data, hash->size);
		run->dlen = hash->size;
	}
	if (transcript_cv_content(&run->tr, run->content, sizeof(run->content),
	    &run->clen) == 0 &&
	    gnutls_hash_get_len(run->dig) == hash->size &&
	    gnutls_hash_fast(run->dig, run->content, run->clen, check) == 0 &&
	    memcmp(check, hash->data, hash->size) == 0)
		run->signed_ok = 1;
	return gnutls_privkey_sign_hash2(run->real, algo, flags, hash, sig);
}

static int
sign_data(gnutls_privkey_t key, gnutls_sign_algorithm_t algo, void *userdata,
    unsigned flags, const gnutls_datum_t *data, gnutls_datum_t *sig)
{
	struct run *run = userdata;

	run->signs++;
	run->dig = GNUTLS_DIG_UNKNOWN;
	if (transcript_cv_content(&run->tr, run->content, sizeof(run->content),
	    &run->clen) == 0 && run->clen == data->size &&
	    memcmp(run->content, data->data, data->size) == 0)
		run->signed_ok = 1;
	return gnutls_privkey_sign_data2(run->real, algo, flags, data, sig);
}

static int
key_info(gnutls_privkey_t key, unsigned flags, void *userdata)
{
	struct run *run = userdata;
	unsigned bits = 0;
	int pk = gnutls_privkey_get_pk_algorithm(run->real, &bits);

	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO)
		return pk;
	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO_BITS)
		return (int)bits;
	if (flags & GNUTLS_PRIVKEY_INFO_HAVE_SIGN_ALGO)
		return gnutls_sign_supports_pk_algorithm(
		    GNUTLS_FLAGS_TO_SIGN_ALGO(flags), pk) ? 1 : 0;
	return -1;
}

/*
 * One TLS 1.3 handshake in this process.  The server takes server_prio,
 * the client client_prio; the result is recorded in run.
 */
static void
handshake(struct run *run, gnutls_pk_algorithm_t pk, unsigned bits,
    const char *server_prio, const char *client_prio)
{
	gnutls_certificate_credentials_t scred, ccred;
	gnutls_session_t server, client;
	gnutls_privkey_t ext;
	gnutls_pcert_st pcert;
	int sv[2];

	memset(run, 0, sizeof(*run));
	transcript_reset(&run->tr);
	testtls_selfsigned(pk, bits, &run->real, &pcert);
	assert_int_equal(gnutls_privkey_init(&ext), 0);
	assert_int_equal(gnutls_privkey_import_ext4(ext, run, sign_data,
	    sign_hash, NULL, NULL, key_info, 0), 0);
	assert_int_equal(gnutls_certificate_allocate_credentials(&scred), 0);
	gnutls_certificate_set_flags(scred, GNUTLS_CERTIFICATE_SKIP_KEY_CERT_MATCH);
	assert_int_equal(gnutls_certificate_set_key(scred, NULL, 0, &pcert, 1,
	    ext), 0);
	assert_int_equal(gnutls_certificate_allocate_credentials(&ccred), 0);

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    sv), 0);
	assert_int_equal(gnutls_init(&server, GNUTLS_SERVER | GNUTLS_NONBLOCK), 0);
	assert_int_equal(gnutls_init(&client, GNUTLS_CLIENT | GNUTLS_NONBLOCK), 0);
	assert_int_equal(gnutls_priority_set_direct(server, server_prio, NULL), 0);
	assert_int_equal(gnutls_priority_set_direct(client, client_prio, NULL), 0);
	assert_int_equal(gnutls_credentials_set(server, GNUTLS_CRD_CERTIFICATE,
	    scred), 0);
	assert_int_equal(gnutls_credentials_set(client, GNUTLS_CRD_CERTIFICATE,
	    ccred), 0);
	gnutls_session_set_ptr(server, run);
	gnutls_handshake_set_hook_function(server, GNUTLS_HANDSHAKE_ANY,
	    GNUTLS_HOOK_BOTH, hook);
	gnutls_transport_set_int(server, sv[0]);
	gnutls_transport_set_int(client, sv[1]);

	assert_int_equal(testtls_handshake(server, client), 0);
	assert_int_equal(gnutls_protocol_get_version(server), GNUTLS_TLS1_3);

	gnutls_deinit(client);
	gnutls_deinit(server);
	close(sv[0]);
	close(sv[1]);
	gnutls_certificate_free_credentials(scred);	/* and ext, pcert */
	gnutls_certificate_free_credentials(ccred);
	gnutls_privkey_deinit(run->real);
	transcript_reset(&run->tr);
}

/* Replay what the hook saw into a fresh transcript: the same content. */
static void
replay_same(struct run *run)
{
	struct transcript tr;
	uint8_t content[TRANSCRIPT_CV_MAX];
	size_t clen = 0;
	unsigned i;

	memset(&tr, 0, sizeof(tr));
	transcript_reset(&tr);
	for (i = 0; i < run->nmsgs; i++) {
		struct msg *m = &run->msgs[i];

		transcript_message(&tr, m->htype, m->when, m->incoming, m->body,
		    m->len, &m->ts);
		/* the rebuild is taken where the server signs: after Certificate */
		if (m->htype == GNUTLS_HANDSHAKE_CERTIFICATE_PKT && !m->incoming &&
		    m->when == GNUTLS_HOOK_POST)
			break;
	}
	assert_int_equal(transcript_cv_content(&tr, content, sizeof(content),
	    &clen), 0);
	assert_int_equal(clen, run->clen);
	assert_memory_equal(content, run->content, clen);
	/* recording stopped: a second content is refused */
	assert_int_equal(transcript_cv_content(&tr, content, sizeof(content),
	    &clen), -1);
	transcript_reset(&tr);
}

static void
record_write(const struct run *run, const char *name)
{
	const char *dir = getenv("MOAT_TRANSCRIPT_RECORD");
	char path[4096];
	unsigned i;
	size_t j;
	FILE *fp;

	if (dir == NULL)
		return;
	snprintf(path, sizeof(path), "%s/transcript-%s.txt", dir, name);
	assert_non_null(fp = fopen(path, "w"));
	fprintf(fp, "# a TLS 1.3 handshake as the server's hook saw it "
	    "(tests/unit/test_transcript.c)\n");
	for (i = 0; i < run->nmsgs; i++) {
		const struct msg *m = &run->msgs[i];

		fprintf(fp, "msg %u %u %u %d %d ", m->htype, m->when,
		    m->incoming, m->ts.tls13, (int)m->ts.prf);
		for (j = 0; j < m->len; j++)
			fprintf(fp, "%02x", m->body[j]);
		fprintf(fp, "\n");
	}
	fprintf(fp, "digest %d ", (int)run->dig);
	for (j = 0; j < run->dlen; j++)
		fprintf(fp, "%02x", run->digest[j]);
	fprintf(fp, "\n");
	fclose(fp);
}

static void
run_free(struct run *run)
{
	unsigned i;

	for (i = 0; i < run->nmsgs; i++)
		free(run->msgs[i].body);
}

static void
live(gnutls_pk_algorithm_t pk, unsigned bits, const char *sprio,
    const char *cprio, int want_hrr, const char *name)
{
	static struct run run;

	handshake(&run, pk, bits, sprio, cprio);
	assert_int_equal(run.signs, 1);
	assert_int_equal(run.saw_hrr, want_hrr);
	if (!run.signed_ok)
		fail_msg("%s: the rebuilt CertificateVerify content does not "
		    "match what GnuTLS signs", name);
	replay_same(&run);
	record_write(&run, name);
	run_free(&run);
}

#define SERVER_13	"NORMAL:-VERS-ALL:+VERS-TLS1.3"

static void
test_live_sha256(void **state)
{
	live(GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
	    SERVER_13 ":-CIPHER-ALL:+AES-128-GCM", SERVER_13, 0, "sha256");
}

static void
test_live_sha384(void **state)
{
	live(GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
	    SERVER_13 ":-CIPHER-ALL:+AES-256-GCM", SERVER_13, 0, "sha384");
}

/* The client's key share is for a group the server will not take: HRR. */
static void
test_live_hrr(void **state)
{
	live(GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
	    SERVER_13 ":-GROUP-ALL:+GROUP-X448",
	    SERVER_13 ":-GROUP-ALL:+GROUP-X25519:+GROUP-X448", 1, "hrr");
}

static void
test_live_hrr_sha384(void **state)
{
	live(GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
	    SERVER_13 ":-GROUP-ALL:+GROUP-X448:-CIPHER-ALL:+AES-256-GCM",
	    SERVER_13 ":-GROUP-ALL:+GROUP-X25519:+GROUP-X448", 1, "hrr-sha384");
}

/* EdDSA: GnuTLS hands the content itself; it must be the rebuilt one. */
static void
test_live_eddsa(void **state)
{
	live(GNUTLS_PK_EDDSA_ED25519, 256, SERVER_13, SERVER_13, 0, "eddsa");
}

/* --- recorded handshakes ---------------------------------------------------- */

static int
hex_decode(const char *s, uint8_t *out, size_t cap, size_t *outlen)
{
	size_t n = 0;
	unsigned v;

	while (s[0] != '\0' && s[0] != '\n') {
		if (n >= cap || sscanf(s, "%2x", &v) != 1)
			return -1;
		out[n++] = (uint8_t)v;
		s += 2;
	}
	*outlen = n;
	return 0;
}

static void
replay_file(const char *name)
{
	static char line[2 * MAX_MSG_LEN + 128];
	static uint8_t body[MAX_MSG_LEN];
	char path[4096];
	struct transcript tr;
	struct transcript_session ts;
	uint8_t content[TRANSCRIPT_CV_MAX], digest[64], check[64];
	unsigned htype, when, incoming;
	int tls13, prf, dig = 0, off, built = 0;
	size_t len = 0, dlen = 0, clen = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/tests/unit/data/transcript-%s.txt",
	    getenv("MOAT_SRC") != NULL ? getenv("MOAT_SRC") : ".", name);
	if ((fp = fopen(path, "r")) == NULL)
		fail_msg("%s: %s", path, strerror(errno));
	memset(&tr, 0, sizeof(tr));
	transcript_reset(&tr);
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (sscanf(line, "msg %u %u %u %d %d %n", &htype, &when,
		    &incoming, &tls13, &prf, &off) == 5) {
			assert_int_equal(hex_decode(line + off, body,
			    sizeof(body), &len), 0);
			ts.tls13 = tls13;
			ts.prf = (gnutls_digest_algorithm_t)prf;
			transcript_message(&tr, htype, when, incoming, body,
			    len, &ts);
			if (htype == GNUTLS_HANDSHAKE_CERTIFICATE_PKT &&
			    !incoming && when == GNUTLS_HOOK_POST && !built) {
				assert_int_equal(transcript_cv_content(&tr,
				    content, sizeof(content), &clen), 0);
				built = 1;
			}
		} else if (sscanf(line, "digest %d %n", &dig, &off) == 1) {
			assert_int_equal(hex_decode(line + off, digest,
			    sizeof(digest), &dlen), 0);
		}
	}
	fclose(fp);
	assert_true(built);
	assert_true(dlen == 32 || dlen == 48);
	assert_int_equal(gnutls_hash_get_len((gnutls_digest_algorithm_t)dig),
	    dlen);
	assert_int_equal(gnutls_hash_fast((gnutls_digest_algorithm_t)dig,
	    content, clen, check), 0);
	assert_memory_equal(check, digest, dlen);
	transcript_reset(&tr);
}

static void
test_recorded(void **state)
{
	replay_file("sha256");
	replay_file("sha384");
	replay_file("hrr");
	replay_file("hrr-sha384");
}

/* A TLS 1.2 handshake records nothing and refuses to build content. */
static void
test_tls12_off(void **state)
{
	struct transcript tr;
	struct transcript_session ts = { 0, GNUTLS_DIG_SHA256 };
	uint8_t ch[8] = { 3, 3, 0 }, out[TRANSCRIPT_CV_MAX];
	size_t len;

	memset(&tr, 0, sizeof(tr));
	transcript_reset(&tr);
	transcript_message(&tr, GNUTLS_HANDSHAKE_CLIENT_HELLO, GNUTLS_HOOK_PRE,
	    1, ch, sizeof(ch), &ts);
	transcript_message(&tr, GNUTLS_HANDSHAKE_CLIENT_HELLO, GNUTLS_HOOK_POST,
	    1, ch, sizeof(ch), &ts);
	assert_int_equal(tr.state, TRANSCRIPT_OFF);
	assert_int_equal(transcript_cv_content(&tr, out, sizeof(out), &len), -1);
	/* a POST without its PRE cannot be followed */
	transcript_reset(&tr);
	ts.tls13 = 1;
	transcript_message(&tr, GNUTLS_HANDSHAKE_CLIENT_HELLO, GNUTLS_HOOK_POST,
	    1, ch, sizeof(ch), &ts);
	assert_int_equal(tr.state, TRANSCRIPT_FAILED);
	assert_int_equal(transcript_cv_content(&tr, out, sizeof(out), &len), -1);
	transcript_reset(&tr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_live_sha256),
		cmocka_unit_test(test_live_sha384),
		cmocka_unit_test(test_live_hrr),
		cmocka_unit_test(test_live_hrr_sha384),
		cmocka_unit_test(test_live_eddsa),
		cmocka_unit_test(test_recorded),
		cmocka_unit_test(test_tls12_off),
	};

	if (gnutls_global_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
