/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * seccomp_bite.c -- apply keyd's real seccomp filter (keyd/sandbox_keyd.c),
 * then make one call and see whether the filter lets it through.
 *
 * usage: seccomp_bite [--pkcs11|--pkcs11-write] open|openat|socket|
 *            execve|fork|nodelay|rcvbuf|linger-len|openat-write|
 *            openat-creat|openat-trunc|ftruncate|unlink|unix-socket|ok
 *
 * --pkcs11 applies the filter keyd runs with a PKCS#11 module whose paths
 * are all read-only: then "ok" also opens a file read-only, takes and
 * drops an fcntl read lock on it, seeks, stats a path and lists a
 * directory (what SoftHSM2 does), and "unix-socket" must fail with EACCES
 * without killing (glibc's syslog); "openat" is allowed there, and the
 * openat-write/-creat/-trunc and ftruncate modes must die.
 * --pkcs11-write is the filter with a writable path: "ok" also opens the
 * file for writing and truncates it (SoftHSM2's login); unlink, exec,
 * fork and sockets other than the refused unix one must still die.
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
#include <sys/stat.h>
#include <sys/syscall.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
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
	char readable[] = "/tmp/seccomp-bite-XXXXXX";
	struct flock fl;
	struct stat st;
	char dents[512];
	int pkcs11 = 0;
	struct linger lg = { 1, 0 };
	int one = 1, fd;
	char out[96];
	long r;

	if (argc == 3 && strcmp(argv[1], "--pkcs11") == 0)
		pkcs11 = SANDBOX_KEYD_PKCS11_READ;
	else if (argc == 3 && strcmp(argv[1], "--pkcs11-write") == 0)
		pkcs11 = SANDBOX_KEYD_PKCS11_WRITE;
	if (pkcs11 != SANDBOX_KEYD_PLAIN) {
		argv++;
		argc--;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: seccomp_bite [--pkcs11|--pkcs11-write] "
		    "open|openat|socket|execve|fork|nodelay|rcvbuf|linger-len|"
		    "openat-write|openat-creat|openat-trunc|ftruncate|unlink|"
		    "unix-socket|ok\n");
		return 2;
	}
	what = argv[1];
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		fprintf(stderr, "seccomp_bite: socket: %s\n", strerror(errno));
		return 2;
	}
	/* a file of our own: a filter that failed to bite may harm only it */
	if ((one = mkstemp(readable)) < 0 || write(one, "x", 1) != 1) {
		fprintf(stderr, "seccomp_bite: mkstemp: %s\n", strerror(errno));
		return 2;
	}
	close(one);
	one = 1;
	sanitize_sandbox_prepare();	/* as privdrop_apply() does in keyd */
	if ((r = sandbox_keyd_apply(0, pkcs11)) < 0) {
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
		if (pkcs11) {
			/* what SoftHSM2 does to read an object file */
			if ((one = open(readable, O_RDONLY)) < 0) {
				say("read-only openat failed\n");
				return 1;
			}
			memset(&fl, 0, sizeof(fl));
			fl.l_type = F_RDLCK;
			fl.l_whence = SEEK_SET;
			if (fcntl(one, F_SETLKW, &fl) < 0 ||
			    lseek(one, 0, SEEK_SET) < 0 ||
			    read(one, dents, 1) != 1) {
				say("lock, seek or read failed\n");
				return 1;
			}
			fl.l_type = F_UNLCK;
			if (fcntl(one, F_SETLK, &fl) < 0) {
				say("unlock failed\n");
				return 1;
			}
			close(one);
			if (stat(readable, &st) < 0) {
				say("stat of a path failed\n");
				return 1;
			}
			if (pkcs11 == SANDBOX_KEYD_PKCS11_WRITE &&
			    ((one = open(readable, O_RDWR | O_CREAT, 0600)) < 0 ||
			    ftruncate(one, 0) < 0 || write(one, "y", 1) != 1 ||
			    close(one) < 0)) {
				say("rewriting a file failed\n");
				return 1;
			}
			if ((one = open("/", O_RDONLY | O_DIRECTORY)) < 0 ||
			    syscall(SYS_getdents64, one, dents,
			    sizeof(dents)) < 0) {
				say("directory listing failed\n");
				return 1;
			}
			close(one);
		}
		say("still alive\n");
		return 0;
	} else if (pkcs11 && strcmp(what, "unix-socket") == 0) {
		/* glibc's syslog: refused, not killed */
		if (socket(AF_UNIX, SOCK_DGRAM, 0) >= 0 || errno != EACCES) {
			say("unix socket not refused with EACCES\n");
			return 1;
		}
		say("still alive\n");
		return 0;
	} else if (strcmp(what, "openat-write") == 0) {
		r = open(readable, O_WRONLY);
	} else if (strcmp(what, "openat-creat") == 0) {
		r = open("/tmp/seccomp-bite-new", O_RDONLY | O_CREAT | O_EXCL,
		    0600);
	} else if (strcmp(what, "openat-trunc") == 0) {
		r = open(readable, O_RDONLY | O_TRUNC);
	} else if (strcmp(what, "ftruncate") == 0) {
		r = ftruncate(fd, 0);
	} else if (strcmp(what, "unlink") == 0) {
		r = unlink(readable);
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
