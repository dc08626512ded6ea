/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sanitize_bite.c -- a program with a bug on purpose, built only in the
 * sanitizer build (meson -Dsanitize=true), so that tests/integration/
 * test_sanitize.py can show that each sanitizer reports, that the report
 * ends the process with exit code 86 (common/sanitize.c), and that the
 * tests notice it (sanlib.py): the plumbing cannot rot unseen.
 *
 * usage: sanitize_bite [-s worker|keyd] heap|uaf|ub|leak|early-leak|ok
 *
 * heap: a heap buffer overflow (ASan).  uaf: a use after free (ASan).
 * ub: a signed integer overflow (UBSan).  leak: a block lost,
 * found at exit (LeakSanitizer).  early-leak: a block lost before the
 * sandbox, found by the check sanitize_sandbox_prepare() runs there.
 * ok: no bug, exit 0 (the control).
 *
 * -s sandboxes first, as a worker (privdrop into the moat user and the
 * empty chroot, then the worker's seccomp filter) or as keyd (keyd's
 * filter): a report made inside must come out whole, with exit 86, not
 * end in SIGSYS.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "privdrop.h"
#include "sandbox_keyd.h"
#include "sandbox_worker.h"
#include "sanitize.h"

/* volatile everywhere: the compiler must not see the bug and drop it */
static volatile size_t bite_index = 16;
static void *volatile bite_lost;
static char *volatile bite_freed;

static int
bite(const char *what)
{
	volatile int big = 0x7fffffff, one = 1;
	char *p;

	if (strcmp(what, "heap") == 0) {
		/* a size the compiler cannot see, so that ASan, not UBSan, finds it */
		if ((p = malloc(bite_index)) == NULL)
			return 2;
		p[bite_index] = 1;	/* one byte past the end */
		free(p);
	} else if (strcmp(what, "uaf") == 0) {
		if ((p = malloc(16)) == NULL)
			return 2;
		bite_freed = p;	/* past the compiler's own use-after-free check */
		free(p);
		return bite_freed[bite_index - 1];	/* after the free */
	} else if (strcmp(what, "ub") == 0) {
		return big + one > 0;	/* signed overflow */
	} else if (strcmp(what, "leak") == 0) {
		bite_lost = malloc(64);
		bite_lost = NULL;	/* the only pointer, gone */
	} else if (strcmp(what, "ok") != 0 && strcmp(what, "early-leak") != 0)
		return 2;
	printf("no report\n");
	return 0;
}

int
main(int argc, char *argv[])
{
	struct privdrop pd;
	const char *sandbox = NULL;
	int c;

	while ((c = getopt(argc, argv, "s:")) != -1) {
		if (c != 's')
			goto usage;
		sandbox = optarg;
	}
	if (optind + 1 != argc)
		goto usage;
	setvbuf(stdout, NULL, _IONBF, 0);
	if (strcmp(argv[optind], "early-leak") == 0) {
		bite_lost = malloc(64);
		bite_lost = NULL;
	}
	if (sandbox != NULL && strcmp(sandbox, "worker") == 0) {
		memset(&pd, 0, sizeof(pd));
		if (privdrop_lookup("moat", &pd) < 0) {
			fprintf(stderr, "sanitize_bite: no user moat\n");
			return 2;
		}
		pd.chroot_dir = "/var/lib/moat/empty";
		privdrop_apply(&pd);	/* calls sanitize_sandbox_prepare() */
		sandbox_worker_load(0);
	} else if (sandbox != NULL && strcmp(sandbox, "keyd") == 0) {
		sanitize_sandbox_prepare();	/* keyd: in privdrop_apply() */
		if (sandbox_keyd_apply(0, SANDBOX_KEYD_PLAIN) < 0) {
			fprintf(stderr, "sanitize_bite: sandbox_keyd_apply\n");
			return 2;
		}
	} else if (sandbox != NULL)
		goto usage;
	if (sandbox != NULL)
		printf("sandboxed\n");
	return bite(argv[optind]);
usage:
	fprintf(stderr, "usage: sanitize_bite [-s worker|keyd] "
	    "heap|uaf|ub|leak|early-leak|ok\n");
	return 2;
}
