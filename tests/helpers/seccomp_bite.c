/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * seccomp_bite.c -- apply keyd's real seccomp filter (keyd/sandbox_keyd.c),
 * then make one call and see whether the filter lets it through.
 *
 * usage: seccomp_bite open|openat|socket|execve|fork|ok
 *
 * "ok" only does what keyd may do (write, then exit 0): the control that
 * shows the filter itself does not kill an innocent process.  Every other
 * mode must die by SIGSYS; if the call returns, the helper says so on
 * stderr and exits 1, so a filter that does not bite fails the test.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/syscall.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sandbox_keyd.h"

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
	long r;

	if (argc != 2) {
		fprintf(stderr, "usage: seccomp_bite open|openat|socket|execve|"
		    "fork|ok\n");
		return 2;
	}
	what = argv[1];
	if ((r = sandbox_keyd_apply(0)) < 0) {
		fprintf(stderr, "seccomp_bite: sandbox_keyd_apply: %s\n",
		    strerror((int)-r));
		return 2;
	}
	say("sandboxed\n");

	if (strcmp(what, "ok") == 0) {
		say("still alive\n");
		return 0;
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
	/* Reaching this line means the filter let the call through. */
	say("NOT KILLED\n");
	return 1;
}
