/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sandbox_keyd.c -- keyd's seccomp allowlist.
 *
 * Once loaded, keyd can only read and write the fds it already holds,
 * exchange messages on its channels, wait (epoll, futex, sleep), allocate
 * memory that is never executable, read the clock and get random bytes
 * for signatures.  It cannot open a file, create or connect a socket,
 * exec, fork or clone, ptrace, or change its credentials.  Anything else
 * kills the whole process (SCMP_ACT_KILL_PROCESS, as OpenSSH does), and
 * SCMP_FLTATR_CTL_TSYNC puts every thread under the same filter.
 *
 * The list follows what keyd really does after the drop: libev's epoll
 * backend (pinned with EVBACKEND_EPOLL), its eventfd for ev_async, the
 * signer threads' futexes, glibc malloc (brk, mmap, arenas grown with
 * mprotect), GnuTLS (getrandom, clock), nanosleep for --sign-delay-ms,
 * read/fstat of the fds an IPC_KEY_LOAD passes, fcntl to make a new
 * channel non-blocking, write(2) to stderr for logs, and setsockopt(2)
 * for SOL_SOCKET/SO_LINGER with a struct linger only: ipc_fd_discard()
 * makes the close of a descriptor a worker smuggled in abortive, so that
 * it cannot block (ipc/ipc.c); keyd sets no other socket option.
 *
 * With a PKCS#11 mode, also what a module that keeps its token in files
 * needs (sandbox_keyd_pkcs11_calls below).
 *
 * With trap set (moat-keyd --seccomp-trap, for development) a forbidden
 * call raises SIGSYS instead, and a handler names the call before exiting.
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <seccomp.h>

#include "sandbox_keyd.h"
#include "sanitize.h"

/* Allowed whatever their arguments. */
static const int sandbox_keyd_calls[] = {
	/* I/O on fds keyd already holds */
	SCMP_SYS(read),
	SCMP_SYS(pread64),	/* key files: the chain memfd is shared */
	SCMP_SYS(write),
	SCMP_SYS(close),
	SCMP_SYS(fstat),
	SCMP_SYS(recvmsg),
	SCMP_SYS(sendmsg),
	/* event loop and threads */
	SCMP_SYS(epoll_wait),
	SCMP_SYS(epoll_pwait),
	SCMP_SYS(epoll_ctl),
	SCMP_SYS(futex),
	SCMP_SYS(sched_yield),
	SCMP_SYS(nanosleep),
	SCMP_SYS(clock_nanosleep),
	SCMP_SYS(clock_gettime),
	SCMP_SYS(gettimeofday),
	/* memory (mmap and mprotect below, without PROT_EXEC) */
	SCMP_SYS(brk),
	SCMP_SYS(munmap),
	SCMP_SYS(mremap),
	SCMP_SYS(madvise),
	/* GnuTLS: randomness, fork detection */
	SCMP_SYS(getrandom),
	SCMP_SYS(getpid),
	SCMP_SYS(gettid),
	/* signals and exit */
	SCMP_SYS(rt_sigreturn),
	SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(restart_syscall),
	SCMP_SYS(exit),
	SCMP_SYS(exit_group),
};

/*
 * With a PKCS#11 module (--pkcs11-module, keyd_pkcs11.c), also what a
 * module that keeps its token in files needs: SoftHSM2 opens, locks
 * (fcntl F_SETLKW / F_SETLK), reads and closes its token's object files on
 * every operation, and lists and stats the token directory's entries when
 * it changed.  keyd's root then holds nothing but the --pkcs11-allow
 * paths (read-only mounts) and the --pkcs11-allow-write ones.  Without a
 * writable path openat is allowed read-only only
 * (SANDBOX_KEYD_PKCS11_OPEN_MASK); with one, any openat (the mounts decide
 * where a write can land), and ftruncate: SoftHSM2 rewrites its token's
 * flags at every login.
 */
static const int sandbox_keyd_pkcs11_calls[] = {
	SCMP_SYS(lseek),
	SCMP_SYS(getdents64),
	SCMP_SYS(newfstatat),	/* stat(2) of a path, too */
};

static const int sandbox_keyd_pkcs11_write_calls[] = {
	SCMP_SYS(openat),
	SCMP_SYS(ftruncate),
};

static const int sandbox_keyd_pkcs11_fcntl[] = {
	F_GETLK, F_SETLK, F_SETLKW,
};

/* openat flags the module may not use: any write, create or truncation. */
#define SANDBOX_KEYD_PKCS11_OPEN_MASK \
	((scmp_datum_t)(O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND | \
	(O_TMPFILE & ~O_DIRECTORY)))

/* fcntl commands keyd needs to make a channel non-blocking. */
static const int sandbox_keyd_fcntl[] = {
	F_GETFL, F_SETFL, F_GETFD, F_SETFD,
};

static void
sandbox_keyd_sigsys(int sig, siginfo_t *si, void *ctx)
{
	char msg[] = "moat-keyd: seccomp: forbidden syscall 0000\n";
	size_t i = sizeof(msg) - 2;
	int nr = si->si_syscall;

	/* Async-signal-safe: format the number by hand, then leave. */
	while (nr > 0 && i > sizeof(msg) - 6) {
		msg[--i] = (char)('0' + nr % 10);
		nr /= 10;
	}
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(128 + SIGSYS);
}

/*
 * The module's additions (sandbox_keyd_pkcs11_calls).  glibc's syslog(3),
 * which SoftHSM2 calls on errors, gets EACCES for its socket rather than
 * killing keyd: the error itself still reaches keyd's answer.
 */
static int
sandbox_keyd_add_pkcs11(scmp_filter_ctx ctx, int mode)
{
	size_t i;
	int r;

	for (i = 0; i < sizeof(sandbox_keyd_pkcs11_calls) / sizeof(int); i++)
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW,
		    sandbox_keyd_pkcs11_calls[i], 0)) < 0)
			return r;
	if (mode == SANDBOX_KEYD_PKCS11_WRITE)
		for (i = 0; i < sizeof(sandbox_keyd_pkcs11_write_calls) /
		    sizeof(int); i++)
			if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW,
			    sandbox_keyd_pkcs11_write_calls[i], 0)) < 0)
				return r;
	for (i = 0; i < sizeof(sandbox_keyd_pkcs11_fcntl) / sizeof(int); i++)
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
		    SCMP_A1(SCMP_CMP_EQ,
		    (scmp_datum_t)sandbox_keyd_pkcs11_fcntl[i]))) < 0)
			return r;
	if (mode == SANDBOX_KEYD_PKCS11_READ &&
	    (r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
	    SCMP_A2(SCMP_CMP_MASKED_EQ, SANDBOX_KEYD_PKCS11_OPEN_MASK,
	    (scmp_datum_t)O_RDONLY))) < 0)
		return r;
	return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket),
	    1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
}

/*
 * A call the module's rules already decide: the sanitizer build's runtime
 * then gets no rule of its own for it (its openat refused with EACCES
 * would win over the module's read-only openat).
 */
static int
sandbox_keyd_pkcs11_covers(int nr, int mode)
{
	size_t i;

	if (mode == SANDBOX_KEYD_PLAIN)
		return 0;
	if (nr == SCMP_SYS(openat))
		return 1;
	for (i = 0; i < sizeof(sandbox_keyd_pkcs11_calls) / sizeof(int); i++)
		if (nr == sandbox_keyd_pkcs11_calls[i])
			return 1;
	for (i = 0; mode == SANDBOX_KEYD_PKCS11_WRITE &&
	    i < sizeof(sandbox_keyd_pkcs11_write_calls) / sizeof(int); i++)
		if (nr == sandbox_keyd_pkcs11_write_calls[i])
			return 1;
	return 0;
}

/*
 * Build and load the filter for every thread.  Returns 0 or a negative
 * errno; the caller treats a failure as fatal (a process that could not
 * sandbox itself must not serve).
 */
int
sandbox_keyd_apply(int trap, int mode)
{
	scmp_filter_ctx ctx;
	struct sigaction sa;
	const struct sanitize_syscall *extra;
	size_t i, nextra;
	int r;

	if (trap) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = sandbox_keyd_sigsys;
		sa.sa_flags = SA_SIGINFO;
		if (sigaction(SIGSYS, &sa, NULL) < 0)
			return -errno;
	}
	if ((ctx = seccomp_init(trap ? SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS)) ==
	    NULL)
		return -ENOMEM;
	if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) < 0 ||
	    (r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1)) < 0)
		goto out;

	for (i = 0; i < sizeof(sandbox_keyd_calls) / sizeof(int); i++)
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW,
		    sandbox_keyd_calls[i], 0)) < 0)
			goto out;

	/* Memory may be mapped or re-protected, but never executable. */
	if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
	    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0))) < 0 ||
	    (r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
	    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0))) < 0)
		goto out;

	/* glibc's fstat() is newfstatat(fd, "", AT_EMPTY_PATH). */
	if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(newfstatat), 1,
	    SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH))) < 0)
		goto out;

	/* SO_LINGER for ipc_fd_discard(), and no other option at all. */
	if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setsockopt), 3,
	    SCMP_A1(SCMP_CMP_EQ, SOL_SOCKET), SCMP_A2(SCMP_CMP_EQ, SO_LINGER),
	    SCMP_A4(SCMP_CMP_EQ, sizeof(struct linger)))) < 0)
		goto out;

	for (i = 0; i < sizeof(sandbox_keyd_fcntl) / sizeof(int); i++)
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
		    SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)sandbox_keyd_fcntl[i]))) <
		    0)
			goto out;

	if (mode != SANDBOX_KEYD_PLAIN &&
	    (r = sandbox_keyd_add_pkcs11(ctx, mode)) < 0)
		goto out;

	/* the sanitizer build's runtime only (none otherwise): sanitize.c */
	nextra = sanitize_sandbox_syscalls(&extra);
	for (i = 0; i < nextra; i++)
		if (!sandbox_keyd_pkcs11_covers(extra[i].nr, mode) &&
		    (r = seccomp_rule_add(ctx, extra[i].err == 0 ?
		    SCMP_ACT_ALLOW : SCMP_ACT_ERRNO((unsigned)extra[i].err),
		    extra[i].nr, 0)) < 0)
			goto out;

	r = seccomp_load(ctx);
out:
	seccomp_release(ctx);
	return r < 0 ? r : 0;
}
