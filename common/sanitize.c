/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sanitize.c -- the sanitizer build's defaults (meson -Dsanitize=true
 * only; every executable links it whole, see common/meson.build).
 *
 * A finding ends the process with exit code 86 (SANITIZE_EXITCODE), which
 * nothing else in moat uses, after the report went to stderr: moatd's
 * stderr is its log, and the tests fail on either (sanlib.py).  ASan,
 * LSan and UBSan each read their own *_OPTIONS variable after these
 * defaults, so an environment can still override them.
 *
 * Sandboxed processes (workers, keyd) run under ASan and UBSan like the
 * rest, with the extra syscalls their allowlists grant in this build
 * (sandbox_worker.c, sandbox_keyd.c).  LeakSanitizer is the exception:
 * its end-of-process check stops the world with a ptrace()ing clone and
 * reads /proc/self/task, none of which a chrooted, non-dumpable, seccomp'd
 * process can (or should be allowed to) do.  So sanitize_sandbox_prepare(),
 * called by privdrop_apply() while /proc is still there, runs the leak
 * check at that point -- start-up (config, GnuTLS, keys) is checked --
 * and, as __lsan_do_leak_check() documents, that turns the exit-time check
 * off for this process only.  The master, moatctl, moatd -t and the unit
 * tests keep the full check at exit.
 */
#include "config.h"

#include <sys/syscall.h>

#include <errno.h>

#include <sanitizer/common_interface_defs.h>
#include <sanitizer/lsan_interface.h>

#include "sanitize.h"

/* Also written in tests/integration/sanlib.py: keep them equal. */
#define SANITIZE_EXITCODE "86"

/*
 * detect_leaks: LSan on (ASan's default too, but said here).
 * halt_on_error/abort_on_error: stop at the first finding with exitcode,
 * not with SIGABRT (newer meson versions set abort_on_error=1 in the
 * tests' ASAN_OPTIONS, which wins; the tests still see the report).
 * detect_stack_use_after_return stays off: coro.c switches stacks with
 * swapcontext(), which ASan's fake stacks do not follow.
 * strict_string_checks: a string function's whole argument must be
 * addressable, not only the bytes it happened to read.
 */
const char *__asan_default_options(void);
const char *__lsan_default_options(void);
const char *__ubsan_default_options(void);

const char *
__asan_default_options(void)
{
	return "exitcode=" SANITIZE_EXITCODE ":detect_leaks=1:"
	    "halt_on_error=1:abort_on_error=0:strict_string_checks=1:"
	    "check_initialization_order=1:detect_stack_use_after_return=0";
}

const char *
__lsan_default_options(void)
{
	return "exitcode=" SANITIZE_EXITCODE;
}

const char *
__ubsan_default_options(void)
{
	return "exitcode=" SANITIZE_EXITCODE ":halt_on_error=1:"
	    "abort_on_error=0:print_stacktrace=1";
}

/*
 * Before the chroot and the filter: check for leaks now (and so never at
 * exit, see the top), then let the runtime cache /proc/self/maps and set
 * up its symbolizer, so that a report made inside the sandbox still names
 * the modules and offsets of its stack.  Once per process.
 */
void
sanitize_sandbox_prepare(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	__lsan_do_leak_check();
	__sanitizer_sandbox_on_notify(NULL);
}

/*
 * The one list of what the sanitizer runtime itself calls inside a
 * seccomp sandbox, which both allowlists (sandbox_worker.c,
 * sandbox_keyd.c) add in this build only.  Found with MOAT_SECCOMP_DEBUG
 * (the worker) and --seccomp-trap (keyd) on the integration suite and on
 * tests/helpers/sanitize_bite.c, which makes each kind of report inside
 * each filter.
 *
 * Two are allowed: they reach no file, socket or other process.  The
 * rest the runtime makes only while it writes a report, to find and read
 * the binaries for symbols (the chroot holds none); they fail with an
 * errno instead of killing the process, so the report comes out whole
 * (modules and offsets, no symbol names) and ends with exit code 86, not
 * SIGSYS.  So in this build alone, a sandboxed open() or openat() is
 * refused with EACCES rather than killed, and the bite tests on those two
 * calls are skipped (test_keyd.py, test_worker_sandbox.py).
 */
static const struct sanitize_syscall sanitize_syscalls[] = {
	/*
	 * ASan gives every thread an alternate signal stack (to report a
	 * stack overflow) and takes it down, reading it first, when the
	 * thread ends -- the main thread too, at exit.
	 */
	{ __NR_sigaltstack, 0 },
	/* ASan names the thread in a report and when a thread ends. */
	{ __NR_gettid, 0 },
	/* the symbolizer: /proc/self/exe, then the binaries themselves */
	{ __NR_readlink, EACCES },
	{ __NR_open, EACCES },
	{ __NR_openat, EACCES },
	/* isatty(stderr), to decide whether the report has colours */
	{ __NR_ioctl, ENOTTY },
	/* the probe of whether memory near a bad address may be printed */
	{ __NR_pipe2, EACCES },
};

size_t
sanitize_sandbox_syscalls(const struct sanitize_syscall **list)
{
	*list = sanitize_syscalls;
	return sizeof(sanitize_syscalls) / sizeof(sanitize_syscalls[0]);
}
