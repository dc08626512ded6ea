/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * main.c -- moatd's command line: check a config (-t), run the master, or
 * run one worker.
 *
 * A worker is this binary executed again by the master, never by hand:
 *
 *	moatd --worker INDEX --master-fd N --keyd-fd N|-1 --config-fd N
 *
 * with just those descriptors open, plus stdio and the listeners, whose
 * numbers are in the config.  The config arrives as a sealed memfd: a
 * struct config_blob_hdr, then the struct config the master parsed, then
 * the frontends' session-ticket keys (daemon/master/master_worker.c writes
 * it).  It is read here, checked and
 * closed, and worker_main() takes over for good.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "conf.h"
#include "log.h"
#include "master.h"
#include "privdrop.h"
#include "worker.h"

/* Long options without a short form: the worker's start line. */
enum {
	MAIN_OPT_WORKER = 256,
	MAIN_OPT_MASTER_FD,
	MAIN_OPT_KEYD_FD,
	MAIN_OPT_CONFIG_FD,
};

#define MAIN_SEALS	(F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW)

/* What the master put on a worker's command line; -2: not given. */
struct main_worker {
	int	index;
	int	master_fd;
	int	keyd_fd;	/* -1: no keyd yet, one comes later */
	int	config_fd;
};

static void
main_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: moatd [-t] [-c FILE]\n"
	    "  -c FILE  configuration file (default %s/moat.conf)\n"
	    "  -t       check the configuration, keys included, and exit\n"
	    "  -h       this help\n"
	    "  -V       print the version and exit\n",
	    MOAT_SYSCONFDIR);
}

/* A decimal number in min..INT_MAX, the whole string. */
static int
main_number(const char *s, int min, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > INT_MAX)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

/* Every string the worker will use ends inside its array. */
#define MAIN_STR_OK(a)	(memchr((a), '\0', sizeof(a)) != NULL)

static int
main_config_sane(const struct config *cfg)
{
	const struct frontend *fe;
	unsigned i, j;

	if (!MAIN_STR_OK(cfg->path) || !MAIN_STR_OK(cfg->user) ||
	    !MAIN_STR_OK(cfg->keyd_user) || !MAIN_STR_OK(cfg->control) ||
	    !MAIN_STR_OK(cfg->chroot_dir) || !MAIN_STR_OK(cfg->keyd_path) ||
	    !MAIN_STR_OK(cfg->pkcs11_module) ||
	    cfg->npkcs11_allow > CONFIG_PKCS11_ALLOW_MAX ||
	    cfg->nfrontends > CONFIG_MAX_FRONTENDS)
		return -EBADMSG;
	for (i = 0; i < cfg->nfrontends; i++) {
		fe = &cfg->frontends[i];
		if (fe->index != i || fe->nlisten > CONFIG_MAX_LISTEN ||
		    fe->ncerts == 0 || fe->ncerts > CONFIG_MAX_CERTS ||
		    !MAIN_STR_OK(fe->name) ||
		    !MAIN_STR_OK(fe->key_passphrase_file) ||
		    !MAIN_STR_OK(fe->key_pin_file) ||
		    !MAIN_STR_OK(fe->priority) ||
		    !MAIN_STR_OK(fe->backend.text))
			return -EBADMSG;
		for (j = 0; j < fe->nlisten; j++)
			if (!MAIN_STR_OK(fe->listen[j].text))
				return -EBADMSG;
		for (j = 0; j < fe->ncerts; j++)
			if (!MAIN_STR_OK(fe->certs[j].cert) ||
			    !MAIN_STR_OK(fe->certs[j].key) ||
			    !MAIN_STR_OK(fe->certs[j].ocsp))
				return -EBADMSG;
	}
	return 0;
}

/*
 * The worker's config: a sealed memfd (nobody can change it under us) of
 * exactly the header, one struct config and the ticket keys, written by
 * this same binary.
 */
static int
main_config_read(int fd, struct config *cfg, struct config_tickets *tickets)
{
	struct config_blob_hdr hdr;
	struct stat st;
	ssize_t n;
	int seals;

	if ((seals = fcntl(fd, F_GET_SEALS)) < 0)
		return -errno;
	if ((seals & MAIN_SEALS) != MAIN_SEALS)
		return -EPERM;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size < 0 || (uint64_t)st.st_size != sizeof(hdr) +
	    sizeof(*cfg) + sizeof(*tickets))
		return -EBADMSG;
	if ((n = pread(fd, &hdr, sizeof(hdr), 0)) < 0)
		return -errno;
	if ((size_t)n != sizeof(hdr) || hdr.magic != CONFIG_BLOB_MAGIC ||
	    hdr.version != CONFIG_BLOB_VERSION || hdr.size != sizeof(*cfg))
		return -EBADMSG;
	if ((n = pread(fd, cfg, sizeof(*cfg), sizeof(hdr))) < 0)
		return -errno;
	if ((size_t)n != sizeof(*cfg))
		return -EBADMSG;
	if ((n = pread(fd, tickets, sizeof(*tickets), sizeof(hdr) +
	    sizeof(*cfg))) < 0)
		return -errno;
	if ((size_t)n != sizeof(*tickets))
		return -EBADMSG;
	return main_config_sane(cfg);
}

static __dead void
main_worker(const struct main_worker *a)
{
	struct config_tickets *tickets;
	struct config *cfg;
	char title[64];
	int r;

	snprintf(title, sizeof(title), "moatd[worker %d]", a->index);
	log_procinit(title);
	if (a->master_fd < 3 || a->config_fd < 3 ||
	    (a->keyd_fd != -1 && a->keyd_fd < 3) ||
	    a->master_fd == a->config_fd || a->keyd_fd == a->master_fd ||
	    a->keyd_fd == a->config_fd)
		fatalx("bad descriptors on the command line (master %d, keyd "
		    "%d, config %d)", a->master_fd, a->keyd_fd, a->config_fd);
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL ||
	    (tickets = calloc(1, sizeof(*tickets))) == NULL)
		fatal("%s: calloc", __func__);
	if ((r = main_config_read(a->config_fd, cfg, tickets)) < 0)
		fatalx("config from descriptor %d: %s", a->config_fd,
		    strerror(-r));
	close(a->config_fd);
	if ((unsigned)a->index >= cfg->workers)
		fatalx("worker index %d, but %u workers are configured",
		    a->index, cfg->workers);
	/* worker_main() takes the keys into its frontends and wipes these */
	worker_main(cfg, tickets, (unsigned)a->index, a->master_fd,
	    a->keyd_fd);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ "test",	no_argument,		NULL, 't' },
		{ "help",	no_argument,		NULL, 'h' },
		{ "version",	no_argument,		NULL, 'V' },
		{ "worker",	required_argument, NULL, MAIN_OPT_WORKER },
		{ "master-fd",	required_argument, NULL, MAIN_OPT_MASTER_FD },
		{ "keyd-fd",	required_argument, NULL, MAIN_OPT_KEYD_FD },
		{ "config-fd",	required_argument, NULL, MAIN_OPT_CONFIG_FD },
		{ NULL,		0,			NULL, 0 },
	};
	struct main_worker w = { -2, -2, -2, -2 };
	struct config *cfg;
	const char *path = MOAT_SYSCONFDIR "/moat.conf", *missing;
	char err[1024];
	int ch, r, nsd, test = 0, other = 0, bad = 0;

	while ((ch = getopt_long(argc, argv, "c:thV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			other = 1;
			break;
		case 't':
			test = other = 1;
			break;
		case 'h':
			main_usage(stdout);
			return 0;
		case 'V':
			printf("moatd %s\n", MOAT_VERSION);
			return 0;
		case MAIN_OPT_WORKER:
			bad |= main_number(optarg, 0, &w.index);
			break;
		case MAIN_OPT_MASTER_FD:
			bad |= main_number(optarg, 0, &w.master_fd);
			break;
		case MAIN_OPT_KEYD_FD:
			bad |= main_number(optarg, -1, &w.keyd_fd);
			break;
		case MAIN_OPT_CONFIG_FD:
			bad |= main_number(optarg, 0, &w.config_fd);
			break;
		default:
			main_usage(stderr);
			return 1;
		}
	}
	if (optind != argc || bad) {
		main_usage(stderr);
		return 1;
	}

	log_init("moatd", LOG_LEVEL_INFO);
	if (w.index != -2 || w.master_fd != -2 || w.keyd_fd != -2 ||
	    w.config_fd != -2) {
		/* all four, and nothing else: the master wrote this line */
		if (other || w.index < 0 || w.master_fd < 0 ||
		    w.keyd_fd < -1 || w.config_fd < 0) {
			fprintf(stderr, "moatd: --worker is started by the "
			    "master, with --master-fd, --keyd-fd and "
			    "--config-fd\n");
			return 1;
		}
		main_worker(&w);
	}

	/*
	 * Whatever started us (a shell, a test harness) may have left
	 * descriptors open; none of them may reach keyd or a worker.  The
	 * sockets systemd passes for us (LISTEN_FDS, LISTEN_PID: ours) stay,
	 * for the master to match to listen lines (master_listen.c).
	 */
	nsd = sd_listen_fds(0);
	close_range(3 + (unsigned)(nsd > 0 ? nsd : 0), ~0U, 0);

	if ((cfg = calloc(1, sizeof(*cfg))) == NULL) {
		fprintf(stderr, "moatd: %s\n", strerror(errno));
		return 1;
	}
	/* every return frees cfg: the sanitizer build checks for leaks */
	if (config_load(path, cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		r = 1;
	} else if (test) {
		/* the one place moatd itself reads a key: this process exits */
		r = config_check_keys(cfg, stderr, err, sizeof(err)) < 0 ||
		    config_mtls_open(cfg, 0, err, sizeof(err)) < 0 ? 1 : 0;
		printf("%s\n", config_fips_mode_text());
		if (r != 0)
			fprintf(stderr, "%s\n", err);
		else
			printf("%s: configuration OK\n", path);
	} else if (privdrop_can_sandbox(&missing) < 0) {
		/* before anything is bound or started: say what is missing */
		fprintf(stderr, "moatd: the master needs %s: start it as root, "
		    "or as a user with CAP_SETUID CAP_SETGID CAP_SYS_CHROOT "
		    "CAP_SETPCAP CAP_KILL as ambient capabilities (moatd(8))\n",
		    missing != NULL ? missing : "its capabilities");
		r = 1;
	} else {
		log_setlevel(cfg->log_level);
		r = master_main(cfg);
		cfg = NULL;	/* master_main() frees it, or what replaced it */
	}
	free(cfg);
	return r;
}
