/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * privdrop.c -- drop privileges in a fixed order and fail closed.
 *
 * Order: (caller opened everything it needs) -> chroot -> chdir("/") ->
 * setgroups -> setresgid -> setresuid -> clear every capability (libcap,
 * bounding set too) -> not dumpable -> rlimits -> no_new_privs.  The caller
 * then loads its seccomp filter.  Any failure is fatal: a half-dropped
 * process must never serve.
 */
#include "config.h"

#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "privdrop.h"
#include "sanitize.h"

/*
 * Whether this process may start sandboxed children: it needs, effective,
 * the capabilities the drop and the supervision use (setgroups/setresgid,
 * setresuid, chroot, emptying the bounding set, signalling children that
 * run as other users).  Root has them; so does a master started as an
 * unprivileged user with them as ambient capabilities (moat.service).
 * 0, or -EPERM with the first one missing in *missing.
 */
int
privdrop_can_sandbox(const char **missing)
{
	static const struct {
		cap_value_t	cap;
		const char	*name;
	} need[] = {
		{ CAP_SETGID,		"CAP_SETGID" },
		{ CAP_SETUID,		"CAP_SETUID" },
		{ CAP_SYS_CHROOT,	"CAP_SYS_CHROOT" },
		{ CAP_SETPCAP,		"CAP_SETPCAP" },
		{ CAP_KILL,		"CAP_KILL" },
	};
	cap_flag_value_t v;
	cap_t caps;
	size_t i;
	int r = 0;

	*missing = NULL;
	if ((caps = cap_get_proc()) == NULL)
		return -errno;
	for (i = 0; i < sizeof(need) / sizeof(need[0]) && r == 0; i++) {
		if (cap_get_flag(caps, need[i].cap, CAP_EFFECTIVE, &v) < 0 ||
		    v != CAP_SET) {
			*missing = need[i].name;
			r = -EPERM;
		}
	}
	cap_free(caps);
	return r;
}

/* Resolve the user while /etc/passwd is still reachable (before chroot). */
int
privdrop_lookup(const char *user, struct privdrop *pd)
{
	struct passwd *pw;

	errno = 0;
	if ((pw = getpwnam(user)) == NULL)
		return errno != 0 ? -errno : -ENOENT;
	if (pw->pw_uid == 0)
		return -EPERM;	/* a sandbox as root is no sandbox */
	pd->uid = pw->pw_uid;
	pd->gid = pw->pw_gid;
	pd->user = user;
	return 0;
}

/*
 * Make sure the chroot directory exists, is owned by root, is not writable
 * by anyone else and is empty: a sandboxed process must find nothing there.
 */
int
privdrop_prepare_chroot(const char *dir)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	int entries = 0;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (lstat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022))
		return -EPERM;
	if ((d = opendir(dir)) == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			entries++;
	closedir(d);
	return entries == 0 ? 0 : -ENOTEMPTY;
}

/*
 * Empty the bounding and ambient sets; needs CAP_SETPCAP, so it runs while
 * we are root.  The permitted set is left alone: setresuid still needs
 * CAP_SETUID.
 */
static void
caps_drop_bounding(void)
{
	int cap;

	for (cap = 0; cap <= CAP_LAST_CAP; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			fatal("%s: PR_CAPBSET_DROP %d", __func__, cap);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 &&
	    errno != EINVAL)
		fatal("%s: PR_CAP_AMBIENT_CLEAR_ALL", __func__);
}

/* Clear the effective, permitted and inheritable sets. */
static void
caps_clear(void)
{
	cap_t caps;

	if ((caps = cap_init()) == NULL)
		fatal("%s: cap_init", __func__);
	if (cap_set_proc(caps) < 0)
		fatal("%s: cap_set_proc", __func__);
	cap_free(caps);
}

void
privdrop_apply(const struct privdrop *pd)
{
	struct rlimit rl;

	sanitize_sandbox_prepare();	/* while /proc is there: sanitize.c */
	if (pd->chroot_dir != NULL) {
		if (chroot(pd->chroot_dir) < 0)
			fatal("%s: chroot %s", __func__, pd->chroot_dir);
		if (chdir("/") < 0)
			fatal("%s: chdir /", __func__);
	}
	if (setgroups(1, &pd->gid) < 0)
		fatal("%s: setgroups", __func__);
	if (setresgid(pd->gid, pd->gid, pd->gid) < 0)
		fatal("%s: setresgid %u", __func__, (unsigned)pd->gid);
	/* Bounding set first: dropping it needs CAP_SETPCAP, gone after setuid. */
	caps_drop_bounding();
	if (setresuid(pd->uid, pd->uid, pd->uid) < 0)
		fatal("%s: setresuid %u", __func__, (unsigned)pd->uid);
	caps_clear();

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fatal("%s: PR_SET_DUMPABLE", __func__);
	/*
	 * No core files.  RLIMIT_FSIZE stays: stderr may be a regular file
	 * (tests, nohup), and a zero limit would kill the process with SIGXFSZ
	 * on its first log line; seccomp already keeps it from opening files.
	 */
	rl.rlim_cur = rl.rlim_max = 0;
	if (setrlimit(RLIMIT_CORE, &rl) < 0)
		fatal("%s: RLIMIT_CORE", __func__);
	if (pd->nofile > 0) {
		rl.rlim_cur = rl.rlim_max = pd->nofile;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			fatal("%s: RLIMIT_NOFILE %lu", __func__, pd->nofile);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fatal("%s: PR_SET_NO_NEW_PRIVS", __func__);
	privdrop_verify(pd);
}

/* Check that the drop took: no way back to root, no capability left. */
void
privdrop_verify(const struct privdrop *pd)
{
	uid_t r, e, s;
	cap_t caps, empty;
	int same;

	if (getresuid(&r, &e, &s) < 0)
		fatal("%s: getresuid", __func__);
	if (r != pd->uid || e != pd->uid || s != pd->uid || r == 0)
		fatalx("%s: still uid %u/%u/%u", __func__, r, e, s);
	if (setuid(0) == 0 || seteuid(0) == 0)
		fatalx("%s: could become root again", __func__);
	if ((caps = cap_get_proc()) == NULL || (empty = cap_init()) == NULL)
		fatal("%s: cap_get_proc", __func__);
	same = cap_compare(caps, empty) == 0;
	cap_free(caps);
	cap_free(empty);
	if (!same)
		fatalx("%s: capabilities left after drop", __func__);
	if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
		fatalx("%s: still dumpable", __func__);
}
