/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * master_listen.c -- the listening sockets: opened by the master, or
 * passed by systemd (socket activation), and kept across a reload.
 *
 * The master holds every listener for as long as the running config has
 * it; workers inherit them (master_worker.c).  A reload (handover.c) takes
 * the running config's socket for an address the new config lists again,
 * so that socket never closes and no SYN meets a closed port; a new address
 * is opened before anything changes, and an address the new config drops
 * is closed in the master at the hand-over (the old workers close theirs
 * when they stop accepting).
 *
 * systemd's sockets (LISTEN_FDS, read once at start) are matched to listen
 * lines by address; one whose FileDescriptorName= is a frontend's name may
 * only serve that frontend.  Every socket systemd passes must be claimed by
 * a listen line: one that is not is an error at start, because a socket
 * nobody accepts on queues connections that are never answered.  The
 * master never closes them before it exits, so a reload that drops an
 * address and a later one that lists it again find systemd's socket still
 * bound, where a socket of our own would fail with EADDRINUSE.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <netdb.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "conf.h"
#include "log.h"
#include "master_listen.h"
#include "master_types.h"

#define MASTER_LISTEN_BACKLOG	1024

static int
master_listen_one(const struct config_addr *a)
{
	int fd, one = 1, r;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	/* [::]:443 must not take 0.0.0.0:443 away from another line */
	if (a->ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0)
		goto fail;
	if (listen(fd, MASTER_LISTEN_BACKLOG) < 0)
		goto fail;
	return fd;
fail:
	r = -errno;
	close(fd);
	return r;
}

/* A socket's own address, for messages ("?" when it has none to tell). */
static void
master_listen_sockname(int fd, char *buf, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[NI_MAXHOST], serv[NI_MAXSERV];

	snprintf(buf, size, "?");
	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), serv,
	    sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return;
	snprintf(buf, size, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
	    host, serv);
}

static int
master_listen_is_systemd(const struct master *m, int fd)
{
	unsigned i;

	for (i = 0; i < m->nsd; i++)
		if (m->sd_fd[i] == fd)
			return 1;
	return 0;
}

/*
 * At start: the sockets systemd passed, with their names, non-blocking and
 * close-on-exec like our own.  0, or -errno with why.
 */
int
master_listen_systemd(struct master *m, char *err, size_t errlen)
{
	char **names = NULL;
	int n, i, fl, r = 0;

	if ((n = sd_listen_fds_with_names(1, &names)) < 0) {
		snprintf(err, errlen, "socket activation: %s", strerror(-n));
		return n;
	}
	if ((unsigned)n > MASTER_MAX_SD_FDS) {
		snprintf(err, errlen, "socket activation: %d sockets, at most "
		    "%u", n, MASTER_MAX_SD_FDS);
		r = -E2BIG;
		goto out;
	}
	for (i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;

		if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
			snprintf(err, errlen, "socket activation: descriptor %d "
			    "(%s) is not a listening stream socket", fd,
			    names != NULL && names[i] != NULL ? names[i] : "?");
			r = -EINVAL;
			goto out;
		}
		if ((fl = fcntl(fd, F_GETFL)) < 0 ||
		    fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
		    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
			r = -errno;
			snprintf(err, errlen, "socket activation: descriptor "
			    "%d: %s", fd, strerror(-r));
			goto out;
		}
		m->sd_fd[m->nsd] = fd;
		snprintf(m->sd_name[m->nsd], sizeof(m->sd_name[0]), "%s",
		    names != NULL && names[i] != NULL ? names[i] : "unknown");
		m->nsd++;
	}
out:
	if (names != NULL) {
		for (i = 0; i < n; i++)
			free(names[i]);
		free(names);
	}
	return r;
}

/* systemd's socket for this listen line of fe, or -1 (see the top). */
static int
master_listen_find_systemd(const struct master *m, const struct config *cfg,
    const struct frontend *fe, const struct config_addr *a)
{
	unsigned i;

	for (i = 0; i < m->nsd; i++) {
		if (config_frontend_by_name(cfg, m->sd_name[i]) != NULL &&
		    strcmp(m->sd_name[i], fe->name) != 0)
			continue;	/* another frontend's */
		if (sd_is_socket_sockaddr(m->sd_fd[i], SOCK_STREAM,
		    (const struct sockaddr *)&a->ss, a->len, 1) > 0)
			return m->sd_fd[i];
	}
	return -1;
}

/* The running config's socket for this address, or -1. */
static int
master_listen_find_running(const struct config *running,
    const struct config_addr *a)
{
	const struct frontend *fe;
	unsigned i, j;

	if (running == NULL)
		return -1;
	for (i = 0; i < running->nfrontends; i++) {
		fe = &running->frontends[i];
		for (j = 0; j < fe->nlisten; j++)
			if (fe->listen_fd[j] >= 0 &&
			    fe->listen[j].len == a->len &&
			    memcmp(&fe->listen[j].ss, &a->ss, a->len) == 0)
				return fe->listen_fd[j];
	}
	return -1;
}

/*
 * Every listener of cfg: the running config's for the same address, else
 * systemd's, else a new one.  On failure, the sockets this call opened are
 * closed again (the others are not its to close) and err says why.
 */
int
master_listen_open(struct master *m, struct config *cfg,
    const struct config *running, char *err, size_t errlen)
{
	struct frontend *fe;
	const char *from;
	unsigned i, j;
	int fd;

	for (i = 0; i < cfg->nfrontends; i++)
		for (j = 0; j < CONFIG_MAX_LISTEN; j++)
			cfg->frontends[i].listen_fd[j] = -1;
	for (i = 0; i < cfg->nfrontends; i++) {
		fe = &cfg->frontends[i];
		for (j = 0; j < fe->nlisten; j++) {
			from = "";
			if ((fd = master_listen_find_running(running,
			    &fe->listen[j])) >= 0) {
				from = " (kept)";
			} else if ((fd = master_listen_find_systemd(m, cfg, fe,
			    &fe->listen[j])) >= 0) {
				from = " (from systemd)";
			} else if ((fd = master_listen_one(&fe->listen[j])) < 0) {
				snprintf(err, errlen, "frontend %s: cannot "
				    "listen on %s: %s", fe->name,
				    fe->listen[j].text, strerror(-fd));
				master_listen_handover(m, cfg, running);
				return fd;
			}
			fe->listen_fd[j] = fd;
			if (running == NULL || from[0] == '\0')
				log_info("frontend %s: listening on %s%s",
				    fe->name, fe->listen[j].text, from);
		}
	}
	return 0;
}

/*
 * At start: each socket systemd passed is some listen line's, and each one
 * named after a frontend that frontend's.  0, or -EADDRNOTAVAIL with why.
 */
int
master_listen_claimed(const struct master *m, const struct config *cfg,
    char *err, size_t errlen)
{
	const struct frontend *fe;
	char addr[NI_MAXHOST + NI_MAXSERV + 4];
	unsigned i, j, k, claimed;

	for (i = 0; i < m->nsd; i++) {
		claimed = 0;
		for (j = 0; j < cfg->nfrontends && !claimed; j++) {
			fe = &cfg->frontends[j];
			for (k = 0; k < fe->nlisten; k++)
				if (fe->listen_fd[k] == m->sd_fd[i])
					claimed = 1;
		}
		if (claimed)
			continue;
		master_listen_sockname(m->sd_fd[i], addr, sizeof(addr));
		if ((fe = config_frontend_by_name(cfg, m->sd_name[i])) != NULL)
			snprintf(err, errlen, "socket activation: the socket "
			    "named %s (%s) matches no listen line of frontend "
			    "%s", m->sd_name[i], addr, fe->name);
		else
			snprintf(err, errlen, "socket activation: the socket "
			    "named %s (%s) is claimed by no frontend: give a "
			    "frontend a listen line with that address, or name "
			    "the socket after one (FileDescriptorName=)",
			    m->sd_name[i], addr);
		return -EADDRNOTAVAIL;
	}
	return 0;
}

/*
 * old hands its listeners over to cfg: the master closes those cfg does
 * not have (systemd's stay open, see the top) and old keeps none, so that
 * nothing closes a socket twice or one cfg uses.
 */
void
master_listen_handover(struct master *m, struct config *old,
    const struct config *cfg)
{
	struct frontend *fe;
	unsigned i, j;
	int fd;

	for (i = 0; i < old->nfrontends; i++) {
		fe = &old->frontends[i];
		for (j = 0; j < fe->nlisten; j++) {
			if ((fd = fe->listen_fd[j]) < 0)
				continue;
			fe->listen_fd[j] = -1;
			if (master_listen_find_running(cfg,
			    &fe->listen[j]) == fd ||
			    master_listen_is_systemd(m, fd))
				continue;
			log_info("frontend %s: no longer listening on %s",
			    fe->name, fe->listen[j].text);
			close(fd);
		}
	}
}

static void
master_listen_close_systemd(struct master *m)
{
	unsigned i;

	for (i = 0; i < m->nsd; i++)
		close(m->sd_fd[i]);
	m->nsd = 0;
}

/* Shutdown: the config's listeners (systemd's too, once at the end). */
void
master_listen_close(struct master *m, struct config *cfg)
{
	struct frontend *fe;
	unsigned i, j;

	for (i = 0; i < cfg->nfrontends; i++) {
		fe = &cfg->frontends[i];
		for (j = 0; j < fe->nlisten; j++) {
			if (fe->listen_fd[j] >= 0 &&
			    !master_listen_is_systemd(m, fe->listen_fd[j]))
				close(fe->listen_fd[j]);
			fe->listen_fd[j] = -1;
		}
	}
	master_listen_close_systemd(m);
}
