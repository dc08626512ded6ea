/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * worker_bite.c -- sandbox a process exactly as a worker is sandboxed
 * (common/privdrop.c into the moat user and the empty chroot, then the
 * worker's real seccomp filter, daemon/worker/sandbox_worker.c), then make
 * one call and see whether the sandbox lets it through.
 *
 * usage: worker_bite [-u USER -C CHROOT] MODE [ARG]
 *
 * "ok" makes the calls a worker does make (a TCP socket, TCP_NODELAY,
 * F_GETFL, F_SETFL O_NONBLOCK, F_SETFD FD_CLOEXEC, SO_ERROR): the control
 * showing the filter does not kill an innocent worker.  "unix-reach PATH"
 * tries every way a worker has to reach the unix socket at PATH and says
 * which answered (it must end killed, or with every way refused).  Every
 * other mode must die by SIGSYS; if the call returns, the helper says so
 * on stdout and exits 1, so a filter that does not bite fails the test.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "privdrop.h"
#include "sandbox_worker.h"

static void
say(const char *s)
{
	(void)!write(STDOUT_FILENO, s, strlen(s));
}

/* What a worker does; nothing of it may be killed. */
static int
bite_ok(void)
{
	int fd, one = 1, err = 0, fl;
	socklen_t len = sizeof(err);

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
	    sizeof(one)) < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err,
	    &len) < 0 || (fl = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		say("a worker's own call failed\n");
		return 1;
	}
	close(fd);
	say("still alive\n");
	return 0;
}

/*
 * Every way a sandboxed worker has towards a unix socket path: an INET
 * socket aimed at a sockaddr_un (connect() is allowed, the kernel must
 * refuse the family), then an AF_UNIX socket of its own (the filter must
 * kill that).  Prints what each did.
 */
static int
bite_unix_reach(const char *path)
{
	struct sockaddr_un sun;
	char line[160];
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		say("REACHED through an INET socket\n");
		return 1;
	}
	snprintf(line, sizeof(line), "inet socket: %s\n", strerror(errno));
	say(line);
	/* the filter must kill this */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		say("REACHED through a unix socket\n");
		return 1;
	}
	say("NOT KILLED\n");
	return 1;
}

int
main(int argc, char *argv[])
{
	struct privdrop pd;
	const char *user = NULL, *chroot_dir = NULL, *what;
	struct linger lg = { 1, 3 };
	char out[96];
	long r = 0;
	int c, fd;

	while ((c = getopt(argc, argv, "u:C:")) != -1) {
		switch (c) {
		case 'u': user = optarg; break;
		case 'C': chroot_dir = optarg; break;
		default: goto usage;
		}
	}
	if (optind >= argc)
		goto usage;
	what = argv[optind];
	signal(SIGPIPE, SIG_IGN);
	if (user != NULL) {
		memset(&pd, 0, sizeof(pd));
		if (privdrop_lookup(user, &pd) < 0) {
			fprintf(stderr, "worker_bite: no user %s\n", user);
			return 2;
		}
		pd.chroot_dir = chroot_dir;
		privdrop_apply(&pd);
	}
	sandbox_worker_load(0);
	say("sandboxed\n");

	if (strcmp(what, "ok") == 0)
		return bite_ok();
	if (strcmp(what, "unix-reach") == 0 && optind + 1 < argc)
		return bite_unix_reach(argv[optind + 1]);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (strcmp(what, "so_linger") == 0)
		r = setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	else if (strcmp(what, "so_sndbuf") == 0)
		r = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &c, sizeof(c));
	else if (strcmp(what, "f_setsig") == 0)
		r = fcntl(fd, F_SETSIG, SIGUSR1);
	else if (strcmp(what, "f_setown") == 0)
		r = fcntl(fd, F_SETOWN, getpid());
	else if (strcmp(what, "f_setfl_async") == 0)
		r = fcntl(fd, F_SETFL, O_NONBLOCK | O_ASYNC);
	else if (strcmp(what, "dgram") == 0)
		r = socket(AF_INET, SOCK_DGRAM, 0);
	else if (strcmp(what, "raw") == 0)
		r = socket(AF_INET, SOCK_RAW, IPPROTO_TCP);
	else if (strcmp(what, "unix") == 0)
		r = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	else if (strcmp(what, "chdir") == 0)
		r = chdir("/");
	else if (strcmp(what, "fchdir") == 0)
		r = fchdir(fd);
	else if (strcmp(what, "open") == 0)
		r = syscall(SYS_open, "/etc/passwd", O_RDONLY);
	else if (strcmp(what, "openat") == 0)
		r = open("/etc/passwd", O_RDONLY);
	else {
		say("unknown mode\n");
		return 2;
	}
	/*
	 * Reaching this line means the filter let the call through (or, in
	 * the sanitizer build, refused open/openat with EACCES: sanitize.c).
	 */
	snprintf(out, sizeof(out), "NOT KILLED: returned %ld (%s)\n", r,
	    r < 0 ? strerror(errno) : "success");
	say(out);	/* write(2): stdio's first use may fstat() */
	return 1;
usage:
	fprintf(stderr, "usage: worker_bite [-u USER -C CHROOT] MODE [PATH]\n");
	return 2;
}
