/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sandbox_worker.c -- the worker's seccomp allowlist.
 *
 * Loaded right after privdrop_apply() (no_new_privs is set there) and before
 * the loop is built.  Everything not listed kills the process
 * (SCMP_ACT_KILL_PROCESS, as OpenSSH does).  The list is what the epoll
 * loop, GnuTLS, the coroutine stacks and proxying need, found with
 * strace -f -c on a worker serving every kind of connection, a keyd
 * restart and a stop, and the debug mode below; notably absent: open/openat, execve,
 * fork/clone, ptrace, bind/listen, chroot, setuid and friends, and any mmap
 * or mprotect with PROT_EXEC.
 *
 * Debug mode (MOAT_SECCOMP_DEBUG set in the environment when moatd
 * started, read before the drop): the default action is SCMP_ACT_TRAP and a
 * SIGSYS handler logs the syscall number and makes it fail with ENOSYS, so
 * one run shows every missing entry.  Never for production: it keeps
 * running after a forbidden call.
 *
 * The SIGSYS handler is installed with sigaction(), not ev_signal: SIGSYS
 * is synchronous and must be handled in the faulting context.
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/ucontext.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

/*
 * ev.h before seccomp.h: seccomp.h pulls in <elf.h>, whose EV_NONE macro
 * would break the enum in ev.h if it came first.
 */
#include <ev.h>

#include <seccomp.h>

#include "log.h"
#include "sandbox_worker.h"
#include "sanitize.h"

#define ADD_SYSCALL(name, ...) do {					\
	if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW,			\
	    SCMP_SYS(name), __VA_ARGS__)) < 0)				\
		fatalx("%s: seccomp_rule_add %s: %s", __func__, #name,	\
		    strerror(-r));					\
} while (0)

/* async-signal-safe decimal */
static size_t
sandbox_fmt_uint(char *p, unsigned long v)
{
	char tmp[24];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0 && n < sizeof(tmp));
	for (i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

static void
sandbox_sigsys(int sig, siginfo_t *si, void *uctx)
{
	static const char pre[] = "moatd[worker]: seccomp debug: blocked syscall ";
	ucontext_t *uc = uctx;
	char line[128];
	size_t n;

	memcpy(line, pre, sizeof(pre) - 1);
	n = sizeof(pre) - 1;
	n += sandbox_fmt_uint(line + n, (unsigned long)si->si_syscall);
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
#if defined(__x86_64__)
	uc->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
#elif defined(__aarch64__)
	uc->uc_mcontext.regs[0] = (unsigned long long)-ENOSYS;
#else
	(void)uc;
#endif
}

/*
 * Build and load the filter; fatal on any failure (a worker without its
 * filter must not serve).
 */
void
sandbox_worker_load(int debug)
{
	scmp_filter_ctx ctx;
	struct sigaction sa;
	const struct sanitize_syscall *extra;
	size_t i, nextra;
	int r;

	if (debug) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = sandbox_sigsys;
		sa.sa_flags = SA_SIGINFO;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGSYS, &sa, NULL) < 0)
			fatal("%s: sigaction SIGSYS", __func__);
		log_warnx("%s: seccomp DEBUG mode: forbidden syscalls are only "
		    "logged", __func__);
	}
	if ((ctx = seccomp_init(debug ? SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS)) == NULL)
		fatalx("%s: seccomp_init", __func__);

	/*
	 * I/O on sockets the worker holds: GnuTLS pulls with recv (recvfrom)
	 * and pushes with sendmsg, IPC uses sendmsg/recvmsg, read/write are
	 * libev's eventfd and the log.
	 */
	ADD_SYSCALL(read, 0);
	ADD_SYSCALL(pread64, 0);	/* a rotated certificate's descriptor */
	ADD_SYSCALL(write, 0);
	ADD_SYSCALL(recvfrom, 0);
	ADD_SYSCALL(sendto, 0);
	ADD_SYSCALL(recvmsg, 0);
	ADD_SYSCALL(sendmsg, 0);
	ADD_SYSCALL(close, 0);
	ADD_SYSCALL(shutdown, 0);

	/*
	 * Clients in, TCP backends out, and exactly the calls proxy.c and
	 * worker.c make on them.  No AF_UNIX socket can be made (unix:
	 * backends are connected by the master, master_backend.c), so with
	 * no chdir/fchdir and no path-taking call the worker reaches nothing
	 * on the file system; the unix sockets it holds (its channels) are
	 * connected already.  setsockopt only TCP_NODELAY (not SO_LINGER,
	 * which would let it make a close() block), getsockopt only SO_ERROR
	 * (the backend connect's result), fcntl only F_GETFL, an F_SETFL
	 * without O_ASYNC and the F_SETFD FD_CLOEXEC libev makes on its epoll
	 * fd (no F_SETOWN/F_SETSIG: no signalling its siblings, which share
	 * its uid).
	 */
	ADD_SYSCALL(accept4, 0);
	ADD_SYSCALL(connect, 0);
	/* the address a client reached, for the backend's PROXY header */
	ADD_SYSCALL(getsockname, 0);
	ADD_SYSCALL(socket, 3, SCMP_A0(SCMP_CMP_EQ, AF_INET),
	    SCMP_A1(SCMP_CMP_EQ, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC),
	    SCMP_A2(SCMP_CMP_EQ, 0));
	ADD_SYSCALL(socket, 3, SCMP_A0(SCMP_CMP_EQ, AF_INET6),
	    SCMP_A1(SCMP_CMP_EQ, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC),
	    SCMP_A2(SCMP_CMP_EQ, 0));
	ADD_SYSCALL(setsockopt, 2, SCMP_A1(SCMP_CMP_EQ, IPPROTO_TCP),
	    SCMP_A2(SCMP_CMP_EQ, TCP_NODELAY));
	ADD_SYSCALL(getsockopt, 2, SCMP_A1(SCMP_CMP_EQ, SOL_SOCKET),
	    SCMP_A2(SCMP_CMP_EQ, SO_ERROR));
	ADD_SYSCALL(fcntl, 1, SCMP_A1(SCMP_CMP_EQ, F_GETFL));
	ADD_SYSCALL(fcntl, 2, SCMP_A1(SCMP_CMP_EQ, F_SETFL),
	    SCMP_A2(SCMP_CMP_MASKED_EQ, O_ASYNC, 0));
	ADD_SYSCALL(fcntl, 2, SCMP_A1(SCMP_CMP_EQ, F_SETFD),
	    SCMP_A2(SCMP_CMP_EQ, FD_CLOEXEC));

	/* the libev epoll loop, its signal eventfd, vDSO fallbacks */
	ADD_SYSCALL(epoll_create1, 0);
	ADD_SYSCALL(epoll_ctl, 0);
	ADD_SYSCALL(epoll_wait, 0);
	ADD_SYSCALL(epoll_pwait, 0);
	ADD_SYSCALL(eventfd2, 0);
	ADD_SYSCALL(clock_gettime, 0);
	ADD_SYSCALL(gettimeofday, 0);

	/* memory (malloc, coroutine stacks and their guard pages): never executable */
	ADD_SYSCALL(mmap, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	ADD_SYSCALL(mprotect, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	ADD_SYSCALL(munmap, 0);
	ADD_SYSCALL(mremap, 0);
	ADD_SYSCALL(brk, 0);
	ADD_SYSCALL(madvise, 0);

	/* GnuTLS / nettle randomness and fork detection */
	ADD_SYSCALL(getrandom, 0);
	ADD_SYSCALL(getpid, 0);

	/* signals: swapcontext() sets the mask, libev's ev_signal handlers */
	ADD_SYSCALL(rt_sigprocmask, 0);
	ADD_SYSCALL(rt_sigaction, 0);
	ADD_SYSCALL(rt_sigreturn, 0);
	ADD_SYSCALL(futex, 0);

	ADD_SYSCALL(exit, 0);
	ADD_SYSCALL(exit_group, 0);

	/* the sanitizer build's runtime only (none otherwise): sanitize.c */
	nextra = sanitize_sandbox_syscalls(&extra);
	for (i = 0; i < nextra; i++)
		if ((r = seccomp_rule_add(ctx, extra[i].err == 0 ?
		    SCMP_ACT_ALLOW : SCMP_ACT_ERRNO((unsigned)extra[i].err),
		    extra[i].nr, 0)) < 0)
			fatalx("%s: seccomp_rule_add %d: %s", __func__, extra[i].nr,
			    strerror(-r));

	if ((r = seccomp_load(ctx)) < 0)
		fatalx("%s: seccomp_load: %s", __func__, strerror(-r));
	seccomp_release(ctx);
}
