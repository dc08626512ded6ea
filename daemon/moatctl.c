/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * moatctl.c -- talk to a running moatd over its control socket.
 *
 * One connection per command: send the command line, read the answer until
 * EOF.  A line of the answer starting with "error: " goes to stderr, with the
 * indented lines that follow it, and makes the exit status 1; every other
 * line goes to stdout (reload answers one line per frontend, some of which
 * may have failed).  moatctl(8) documents the commands and the JSON fields.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control_proto.h"

#define MOATCTL_TIMEOUT_S	20	/* more than moatd gives a command: 15 s */
#define MOATCTL_ERRLEN		(sizeof(CONTROL_ERROR_PREFIX) - 1)

static void
moatctl_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: moatctl [-s SOCKET] COMMAND\n"
	    "commands:\n"
	    "  status [--json]   processes, pids, uptime, frontends\n"
	    "  stats [--json|--prometheus]\n"
	    "                    counters summed over the workers, and keyd's\n"
	    "  rekey [FRONTEND]  renegotiate (TLS 1.3: key update) every live\n"
	    "                    connection, or one frontend's\n"
	    "  reload            re-read every frontend's certificate and key\n"
	    "                    (renegotiating live connections onto them)\n"
	    "  -s SOCKET         control socket (default %s)\n",
	    CONTROL_DEFAULT_SOCKET);
}

/* Print the answer line by line (see the top); 0, or 1 if it has errors. */
static int
moatctl_print(const char *answer)
{
	const char *line, *nl;
	size_t n;
	int failed = 0, to_err = 0;

	for (line = answer; *line != '\0'; line = nl != NULL ? nl + 1 :
	    line + n) {
		nl = strchr(line, '\n');
		n = nl != NULL ? (size_t)(nl - line) : strlen(line);
		if (strncmp(line, CONTROL_ERROR_PREFIX, MOATCTL_ERRLEN) == 0) {
			failed = to_err = 1;
			fprintf(stderr, "moatctl: %.*s\n",
			    (int)(n - MOATCTL_ERRLEN), line + MOATCTL_ERRLEN);
			continue;
		}
		if (line[0] != ' ' && line[0] != '\t')
			to_err = 0;
		fprintf(to_err ? stderr : stdout, "%.*s\n", (int)n, line);
	}
	if (fflush(stdout) != 0)
		return 1;
	return failed;
}

static int
moatctl_connect(const char *path)
{
	struct sockaddr_un sun;
	struct timeval tv = { MOATCTL_TIMEOUT_S, 0 };
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "moatctl: socket path too long: %s\n", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		fprintf(stderr, "moatctl: socket: %s\n", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "moatctl: cannot connect to %s: %s — is moatd "
		    "running?\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int
main(int argc, char **argv)
{
	const char *sock = CONTROL_DEFAULT_SOCKET;
	char line[CONTROL_LINE_MAX], *answer = NULL, *p;
	size_t len = 0, cap = 0, off;
	ssize_t n;
	int ch, fd, i, ret = 1;

	while ((ch = getopt(argc, argv, "+s:hV")) != -1) {
		switch (ch) {
		case 's':
			sock = optarg;
			break;
		case 'h':
			moatctl_usage(stdout);
			return 0;
		case 'V':
			printf("moatctl %s\n", MOAT_VERSION);
			return 0;
		default:
			moatctl_usage(stderr);
			return 1;
		}
	}
	if (optind >= argc) {
		moatctl_usage(stderr);
		return 1;
	}
	if (strcmp(argv[optind], "status") != 0 &&
	    strcmp(argv[optind], "stats") != 0 &&
	    strcmp(argv[optind], "rekey") != 0 &&
	    strcmp(argv[optind], "reload") != 0) {
		fprintf(stderr, "moatctl: unknown command '%s'\n",
		    argv[optind]);
		moatctl_usage(stderr);
		return 1;
	}
	line[0] = '\0';
	off = 0;
	for (i = optind; i < argc; i++) {
		if (strchr(argv[i], '\n') != NULL ||
		    off + strlen(argv[i]) + 2 >= sizeof(line)) {
			fprintf(stderr, "moatctl: command too long\n");
			return 1;
		}
		off += (size_t)snprintf(line + off, sizeof(line) - off, "%s%s",
		    i > optind ? " " : "", argv[i]);
	}
	snprintf(line + off, sizeof(line) - off, "\n");

	if ((fd = moatctl_connect(sock)) < 0)
		return 1;
	if (send(fd, line, strlen(line), MSG_NOSIGNAL) < 0) {
		fprintf(stderr, "moatctl: %s: %s\n", sock, strerror(errno));
		goto out;
	}
	shutdown(fd, SHUT_WR);
	for (;;) {
		if (len + 4096 + 1 > cap) {
			if (cap >= CONTROL_ANSWER_MAX) {
				fprintf(stderr, "moatctl: answer too long\n");
				goto out;
			}
			cap = cap ? cap * 2 : 8192;
			if ((p = realloc(answer, cap)) == NULL) {
				fprintf(stderr, "moatctl: out of memory\n");
				goto out;
			}
			answer = p;
		}
		n = recv(fd, answer + len, cap - len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "moatctl: %s: %s\n", sock,
			    errno == EAGAIN ? "no answer from moatd" :
			    strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len == 0) {
		fprintf(stderr, "moatctl: %s: moatd closed the connection "
		    "without an answer\n", sock);
		goto out;
	}
	answer[len] = '\0';
	ret = moatctl_print(answer);
out:
	free(answer);
	close(fd);
	return ret;
}
