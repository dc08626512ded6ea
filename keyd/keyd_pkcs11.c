/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * keyd_pkcs11.c -- what a PKCS#11 module needs from keyd: to be loaded
 * before the sandbox, and the files it reads while keyd serves.
 *
 * Without --pkcs11-module keyd loads no module and chroots into its empty
 * directory, and nothing here runs.  With one:
 *
 * - The module is loaded and initialised here, as root, before the
 *   privilege drop: GnuTLS's PKCS#11 layer in manual mode (no module from
 *   p11-kit's system configuration, only this one), then p11-kit loads it
 *   (dlopen, C_Initialize, which reads the module's own configuration:
 *   SoftHSM2 reads $SOFTHSM2_CONF or /etc/softhsm/softhsm2.conf).  The
 *   sandbox never maps executable memory, so no module can be loaded later.
 *
 * - Modules read files while they serve: SoftHSM2 re-reads its token's
 *   object files, under an fcntl read lock, on every operation, and an
 *   empty root makes every signature fail ("PKCS #11 error in data"); it
 *   also rewrites the token's flags at every login (token.object, under
 *   token.lock), so a second key load fails on a read-only token.  keyd
 *   therefore gets a mount namespace of its own whose root (the chroot
 *   directory, which stays empty outside keyd) is a small tmpfs holding
 *   only the --pkcs11-allow paths, bind-mounted read-only, and the
 *   --pkcs11-allow-write ones, bind-mounted writable; all nosuid, nodev,
 *   noexec, each at its own absolute path.  Then the tmpfs itself is made
 *   read-only: keyd sees those paths and nothing else, and can create or
 *   change files only inside the writable ones.  The seccomp filter adds
 *   for the module what reading (and, with a writable path, rewriting) a
 *   file takes (sandbox_keyd.c, sandbox_keyd_pkcs11_calls).
 *
 * keyd_pkcs11_import() imports a key on the token by URI, for keystore.c,
 * which keeps it like any other key.
 */
#include "config.h"

#include <sys/mount.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/pkcs11.h>

#include "keyd_pkcs11.h"
#include "log.h"
#include "pathrule.h"

/* The tmpfs that becomes keyd's root: mount points only, never data. */
#define KEYD_PKCS11_ROOT_OPTS	"mode=0755,size=64k,nr_inodes=256"
#define KEYD_PKCS11_RO		(MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)

int
keyd_pkcs11_load(const char *module, char *err, size_t errlen)
{
	int r;

	if ((r = gnutls_pkcs11_init(GNUTLS_PKCS11_FLAG_MANUAL, NULL)) < 0) {
		snprintf(err, errlen, "gnutls_pkcs11_init: %s",
		    gnutls_strerror(r));
		return -EIO;
	}
	if ((r = gnutls_pkcs11_add_provider(module, NULL)) < 0) {
		snprintf(err, errlen, "cannot load PKCS#11 module %s: %s",
		    module, gnutls_strerror(r));
		return -ENOENT;
	}
	return 0;
}

/* The token's PIN, once: a retry would only spend its retry counter. */
static int
keyd_pkcs11_pin_cb(void *userdata, int attempt, const char *token_url,
    const char *token_label, unsigned flags, char *pin, size_t pin_max)
{
	struct keyd_pkcs11_pin *p = userdata;

	(void)token_url, (void)token_label;
	atomic_store(&p->asked, 1);
	if (attempt > 0 || (flags & GNUTLS_PIN_WRONG) || p->value == NULL ||
	    p->len >= pin_max)
		return GNUTLS_E_PKCS11_PIN_ERROR;
	memcpy(pin, p->value, p->len + 1);
	return 0;
}

int
keyd_pkcs11_import(gnutls_privkey_t *out, const char *uri,
    struct keyd_pkcs11_pin *pin, char *err, size_t errlen)
{
	int r;

	if ((r = gnutls_privkey_init(out)) < 0) {
		*out = NULL;
		snprintf(err, errlen, "gnutls_privkey_init: %s",
		    gnutls_strerror(r));
		return -ENOMEM;
	}
	/* before the import, which logs in: the callback is the key's own */
	gnutls_privkey_set_pin_function(*out, keyd_pkcs11_pin_cb, pin);
	if ((r = gnutls_privkey_import_url(*out, uri, 0)) == 0)
		return 0;
	gnutls_privkey_deinit(*out);
	*out = NULL;
	if (atomic_load(&pin->asked) && pin->value == NULL) {
		snprintf(err, errlen, "key %s: the token wants its PIN "
		    "(key-pin-file): %s", uri, gnutls_strerror(r));
		return -EACCES;
	}
	if (atomic_load(&pin->asked)) {
		snprintf(err, errlen, "key %s: the token refused the PIN from the "
		    "PIN file: %s", uri, gnutls_strerror(r));
		return -EACCES;
	}
	snprintf(err, errlen, "key %s: not found on any token of the PKCS#11 "
	    "module: %s", uri, gnutls_strerror(r));
	return -ENOENT;
}

/*
 * A path for the root: absolute, no "." or ".." component, no "//", and
 * short enough to be joined to the chroot directory.
 */
static int
keyd_pkcs11_path_ok(const char *path)
{
	return path[0] == '/' && strlen(path) < KEYD_PKCS11_PATH_MAX &&
	    path_is_plain(path);
}

/*
 * Create the mount point for path under root: its parent directories
 * (0755, root's) and, as the last component, a directory or an empty file
 * as the source is one.
 */
static int
keyd_pkcs11_mountpoint(const char *root, const char *path, int is_dir,
    char *target, size_t size)
{
	char *slash;
	int fd;

	if ((size_t)snprintf(target, size, "%s%s", root, path) >= size)
		return -ENAMETOOLONG;
	for (slash = target + strlen(root) + 1; (slash = strchr(slash, '/')) !=
	    NULL; slash++) {
		*slash = '\0';
		if (mkdir(target, 0755) < 0 && errno != EEXIST) {
			*slash = '/';
			return -errno;
		}
		*slash = '/';
	}
	if (is_dir)
		return mkdir(target, 0755) < 0 && errno != EEXIST ? -errno : 0;
	if ((fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) < 0)
		return -errno;
	close(fd);
	return 0;
}

int
keyd_pkcs11_root(const char *root, const struct keyd_pkcs11_path *paths,
    unsigned npaths, char *err, size_t errlen)
{
	char target[PATH_MAX];
	struct stat st;
	const char *opt;
	unsigned long ro;
	unsigned i;
	int r;

	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		snprintf(err, errlen, "cannot make a mount namespace for the "
		    "PKCS#11 module's files: %s", strerror(errno));
		return -errno;
	}
	if (mount("moat-keyd", root, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	    KEYD_PKCS11_ROOT_OPTS) < 0) {
		snprintf(err, errlen, "cannot mount a tmpfs on %s: %s", root,
		    strerror(errno));
		return -errno;
	}
	for (i = 0; i < npaths; i++) {
		opt = paths[i].writable ? "--pkcs11-allow-write" :
		    "--pkcs11-allow";
		if (!keyd_pkcs11_path_ok(paths[i].path)) {
			snprintf(err, errlen, "%s %s: not a clean absolute path",
			    opt, paths[i].path);
			return -EINVAL;
		}
		if (stat(paths[i].path, &st) < 0) {
			snprintf(err, errlen, "%s %s: %s", opt, paths[i].path,
			    strerror(errno));
			return -errno;
		}
		if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
			snprintf(err, errlen, "%s %s: neither a directory nor a "
			    "regular file", opt, paths[i].path);
			return -EINVAL;
		}
		if ((r = keyd_pkcs11_mountpoint(root, paths[i].path,
		    S_ISDIR(st.st_mode), target, sizeof(target))) < 0) {
			snprintf(err, errlen, "%s %s: cannot make its mount "
			    "point: %s", opt, paths[i].path, strerror(-r));
			return r;
		}
		/* not MS_REC: mounts below the path stay out of sight */
		ro = paths[i].writable ? MS_NOSUID | MS_NODEV | MS_NOEXEC :
		    KEYD_PKCS11_RO;
		if (mount(paths[i].path, target, NULL, MS_BIND, NULL) < 0 ||
		    mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | ro,
		    NULL) < 0) {
			snprintf(err, errlen, "%s %s: cannot bind-mount it: %s",
			    opt, paths[i].path, strerror(errno));
			return -errno;
		}
	}
	if (mount(NULL, root, NULL, MS_REMOUNT | KEYD_PKCS11_RO,
	    KEYD_PKCS11_ROOT_OPTS) < 0) {
		snprintf(err, errlen, "cannot make keyd's root %s read-only: "
		    "%s", root, strerror(errno));
		return -errno;
	}
	return 0;
}

/* What the sandbox lets the module do, in one line (keyd's start-up log). */
void
keyd_pkcs11_say(const char *module, const struct keyd_pkcs11_path *paths,
    unsigned npaths)
{
	char list[KEYD_PKCS11_MAX_ALLOW * (KEYD_PKCS11_PATH_MAX + 16)];
	size_t len = 0;
	unsigned i, writable = 0;

	list[0] = '\0';
	for (i = 0; i < npaths && len < sizeof(list); i++) {
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s "
		    "(%s)", i > 0 ? ", " : "", paths[i].path, paths[i].writable ?
		    "writable" : "read-only");
		writable += paths[i].writable != 0;
	}
	log_info("pkcs11: module %s loaded before the sandbox; keyd's root "
	    "holds %s%s and nothing else; the filter adds for the module "
	    "%s, path stat, fcntl record locks, lseek, getdents64%s, and a "
	    "unix socket fails with EACCES", module, npaths > 0 ? "only " :
	    "no file", list, writable > 0 ? "openat" : "read-only openat",
	    writable > 0 ? ", ftruncate" : "");
}
