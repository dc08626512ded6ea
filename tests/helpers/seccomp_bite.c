/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * seccomp_bite.c -- apply keyd's real seccomp filter (keyd/sandbox_keyd.c),
 * then make one call and see whether the filter lets it through.
 *
 * usage: seccomp_bite open|openat|socket|execve|fork|nodelay|rcvbuf|
 *            linger-len|ok
 *
 * "ok" only does what keyd may do (write; SO_LINGER {1, 0} on a socket,
 * as ipc_fd_discard() does to a worker's descriptor; exit 0): the control
 * that shows the filter itself does not kill an innocent process.  The
 * socket options are tried on a socket made before the filter: keyd may
 * set only SO_LINGER, with its real size.  Every other
 * mode must die by SIGSYS; if the call returns, the helper says so on
 * stderr and exits 1, so a filter that does not bite fails the test.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/syscall.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sandbox_keyd.h"
#include "sanitize.h"

static void
say(const char *s)
{
	(void)!write(STDOUT_FILENO, s, strlen(s));
}

int
main(int argc, char *argv[])
{
	char *const args[] = { "/bin/true", NULL };
	const char *what;
	struct linger lg = { 1, 0 };
	int one = 1, fd;
	char out[96];
	long r;

	if (argc != 2) {
		fprintf(stderr, "usage: seccomp_bite open|openat|socket|execve|"
		    "fork|nodelay|rcvbuf|linger-len|ok\n");
		return 2;
	}
	what = argv[1];
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		fprintf(stderr, "seccomp_bite: socket: %s\n", strerror(errno));
		return 2;
	}
	sanitize_sandbox_prepare();	/* as privdrop_apply() does in keyd */
	if ((r = sandbox_keyd_apply(0)) < 0) {
		fprintf(stderr, "seccomp_bite: sandbox_keyd_apply: %s\n",
		    strerror((int)-r));
		return 2;
	}
	say("sandboxed\n");

	if (strcmp(what, "ok") == 0) {
		if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0) {
			say("SO_LINGER failed\n");
			return 1;
		}
		say("still alive\n");
		return 0;
	} else if (strcmp(what, "nodelay") == 0) {
		r = setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	} else if (strcmp(what, "rcvbuf") == 0) {
		r = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &one, sizeof(one));
	} else if (strcmp(what, "linger-len") == 0) {
		r = setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg) - 1);
	} else if (strcmp(what, "open") == 0) {
		r = syscall(SYS_open, "/etc/passwd", O_RDONLY);
	} else if (strcmp(what, "openat") == 0) {
		r = open("/etc/passwd", O_RDONLY);
	} else if (strcmp(what, "socket") == 0) {
		r = socket(AF_INET, SOCK_STREAM, 0);
	} else if (strcmp(what, "execve") == 0) {
		r = execve(args[0], args, NULL);
	} else if (strcmp(what, "fork") == 0) {
		r = fork();
		if (r == 0)
			_exit(0);
	} else {
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
}
