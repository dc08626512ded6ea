/*
 * main.c -- moatd's command line: check a config (-t) or run the master.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "master.h"

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

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ "test",	no_argument,		NULL, 't' },
		{ "help",	no_argument,		NULL, 'h' },
		{ "version",	no_argument,		NULL, 'V' },
		{ NULL,		0,			NULL, 0 },
	};
	struct config *cfg;
	const char *path = MOAT_SYSCONFDIR "/moat.conf";
	char err[1024];
	int ch, test = 0;

	/*
	 * Whatever started us (a shell, a test harness) may have left
	 * descriptors open; none of them may reach keyd or a worker.
	 * (Socket activation would pass LISTEN_FDS here; moatd opens its own.)
	 */
	close_range(3, ~0U, 0);

	while ((ch = getopt_long(argc, argv, "c:thV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'h':
			main_usage(stdout);
			return 0;
		case 'V':
			printf("moatd %s\n", MOAT_VERSION);
			return 0;
		default:
			main_usage(stderr);
			return 1;
		}
	}
	if (optind != argc) {
		main_usage(stderr);
		return 1;
	}

	log_init("moatd", LOG_LEVEL_INFO);
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL) {
		fprintf(stderr, "moatd: %s\n", strerror(errno));
		return 1;
	}
	if (config_load(path, cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (test) {
		/* the one place moatd itself reads a key: this process exits */
		if (config_check_keys(cfg, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		printf("%s: configuration OK\n", path);
		return 0;
	}
	log_setlevel(cfg->log_level);
	return master_main(cfg);
}
