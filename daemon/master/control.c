/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control.c -- the control socket: accept, who may connect, one line in,
 * the answer out (control.h; the protocol is ipc/control_proto.h).
 *
 * An AF_UNIX stream socket, owned by moatd's user (root, or moat.service's
 * User=) and mode 0600: whoever can connect can stop renegotiations and
 * read counters, so only root (and that user) may, and the peer's
 * credentials are checked as well.  A client sends one line of at
 * most CONTROL_LINE_MAX bytes and reads the answer until EOF; what the
 * line means is not this file's business.  A client has CONTROL_IDLE_S
 * from its connection to its answer's last byte; at most
 * CONTROL_CLIENTS_MAX are served at a time.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "answer.h"
#include "control_proto.h"
#include "control.h"
#include "ipc.h"
#include "log.h"
#include "util.h"

#define CONTROL_IDLE_S		15.0	/* the longest command: a reload, whose
					 * new keyd has 10 s to load its keys */
#define CONTROL_CLIENTS_MAX	16u
#define CONTROL_BACKLOG		16

struct control {
	struct ev_loop		*loop;
	int			fd;
	ev_io			io;
	char			path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct control_client	*clients;
	unsigned		nclients;
	void			(*run)(struct control_client *, char *, void *);
	void			*arg;
};

struct control_client {
	struct control		*ctl;
	struct control_client	*next;
	int			fd;
	ev_io			io;
	ev_timer		timer;
	char			in[CONTROL_LINE_MAX];
	size_t			inlen;
	struct answer		out;
	size_t			outoff;
	void			(*gone)(void *);	/* a command waits */
	void			*gone_arg;
};

static void
control_client_free(struct control_client *c)
{
	struct control *ctl = c->ctl;
	struct control_client **pp;

	for (pp = &ctl->clients; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	ctl->nclients--;
	if (c->gone != NULL)
		c->gone(c->gone_arg);
	ev_io_stop(ctl->loop, &c->io);
	ev_timer_stop(ctl->loop, &c->timer);
	close(c->fd);
	answer_free(&c->out);
	free(c);
}

struct answer *
control_client_answer(struct control_client *c)
{
	return &c->out;
}

/* Whoever holds c for a command that is still running, until it is done. */
void
control_client_on_gone(struct control_client *c, void (*gone)(void *),
    void *arg)
{
	c->gone = gone;
	c->gone_arg = arg;
}

static void
control_client_write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct control_client *c = container_of(io, struct control_client, io);
	ssize_t n;

	while (c->outoff < c->out.len) {
		n = send(c->fd, c->out.buf + c->outoff, c->out.len - c->outoff,
		    MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			control_client_free(c);
			return;
		}
		c->outoff += (size_t)n;
	}
	control_client_free(c);
}

/* The answer is complete: send it, then close. */
void
control_client_done(struct control_client *c)
{
	struct ev_loop *loop = c->ctl->loop;

	c->gone = NULL;
	c->gone_arg = NULL;
	ev_io_stop(loop, &c->io);
	ev_io_set(&c->io, c->fd, EV_WRITE);
	ev_set_cb(&c->io, control_client_write_cb);
	ev_io_start(loop, &c->io);
}

static void
control_client_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct control_client *c = container_of(io, struct control_client, io);
	char *nl;
	ssize_t n;

	n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return;
	if (n < 0 || (n == 0 && c->inlen == 0)) {
		control_client_free(c);
		return;
	}
	c->inlen += (size_t)n;
	c->in[c->inlen] = '\0';
	if ((nl = strchr(c->in, '\n')) == NULL) {
		if (n > 0 && c->inlen < sizeof(c->in) - 1)
			return;
		if (n > 0) {
			answer_printf(&c->out, CONTROL_ERROR_PREFIX
			    "command too long\n");
			control_client_done(c);
			return;
		}
	} else {
		*nl = '\0';
	}
	/* one command per connection: stop reading, answer, close */
	ev_io_stop(loop, &c->io);
	c->ctl->run(c, c->in, c->ctl->arg);
}

static void
control_client_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct control_client *c = container_of(t, struct control_client,
	    timer);

	log_debug("%s: control client idle; closing", __func__);
	control_client_free(c);
}

static void
control_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct control *ctl = container_of(io, struct control, io);
	struct control_client *c;
	uid_t uid;
	pid_t pid;
	int fd, r;

	fd = accept4(ctl->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		    errno != ECONNABORTED)
			log_warn("%s: accept", __func__);
		return;
	}
	/*
	 * The socket is root's, mode 0600; check the peer as well, as
	 * STYLE.md asks of every path socket: only root (or moatd's own
	 * user, when it runs unprivileged for a test) may steer moatd.
	 */
	if ((r = ipc_peer_uid(fd, &uid, &pid)) < 0 ||
	    (uid != 0 && uid != geteuid())) {
		if (r < 0)
			log_warnx("control: peer credentials: %s", strerror(-r));
		else
			log_warnx("control: refusing pid %ld, uid %ld",
			    (long)pid, (long)uid);
		close(fd);
		return;
	}
	if (ctl->nclients >= CONTROL_CLIENTS_MAX ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		log_warnx("control: too many clients; refusing one");
		close(fd);
		return;
	}
	c->ctl = ctl;
	c->fd = fd;
	answer_init(&c->out, CONTROL_ANSWER_MAX);
	c->next = ctl->clients;
	ctl->clients = c;
	ctl->nclients++;
	ev_io_init(&c->io, control_client_read_cb, fd, EV_READ);
	ev_io_start(loop, &c->io);
	ev_timer_init(&c->timer, control_client_timeout_cb, CONTROL_IDLE_S, 0.);
	ev_timer_start(loop, &c->timer);
}

static int
control_mkdir_parent(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *p;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((p = strrchr(dir, '/')) == NULL || p == dir)
		return 0;
	*p = '\0';
	for (p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/*
 * Bind the control socket at path.  A stale socket from a dead moatd is
 * removed; one that still answers belongs to a running moatd and is left
 * alone.
 */
static int
control_bind(const char *path)
{
	struct sockaddr_un sun;
	struct stat st;
	mode_t old;
	int fd = -1, probe, r;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((r = control_mkdir_parent(path)) < 0)
		return r;
	if (lstat(sun.sun_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sun,
		    sizeof(sun)) == 0) {
			close(probe);
			log_warnx("control socket %s answers: is another moatd "
			    "running?", sun.sun_path);
			return -EADDRINUSE;
		}
		if (probe >= 0)
			close(probe);
		if (unlink(sun.sun_path) < 0)
			return -errno;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) < 0)
		return -errno;
	/* born 0600: no window where others could connect */
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r < 0)
		goto fail;
	if (chown(sun.sun_path, geteuid(), getegid()) < 0 ||
	    chmod(sun.sun_path, 0600) < 0 || listen(fd, CONTROL_BACKLOG) < 0)
		goto fail;
	return fd;
fail:
	r = -errno;
	close(fd);
	return r;
}

/* Listen at path; each client's line goes to run(client, line, arg). */
int
control_open(struct control **out, struct ev_loop *loop, const char *path,
    void (*run)(struct control_client *, char *, void *), void *arg)
{
	struct control *ctl;
	int fd;

	*out = NULL;
	if (strlen(path) >= sizeof(ctl->path))
		return -ENAMETOOLONG;
	if ((ctl = calloc(1, sizeof(*ctl))) == NULL)
		return -ENOMEM;
	if ((fd = control_bind(path)) < 0) {
		free(ctl);
		return fd;
	}
	ctl->loop = loop;
	ctl->fd = fd;
	memcpy(ctl->path, path, strlen(path) + 1);
	ctl->run = run;
	ctl->arg = arg;
	ev_io_init(&ctl->io, control_accept_cb, fd, EV_READ);
	ev_io_start(loop, &ctl->io);
	*out = ctl;
	return 0;
}

/*
 * Stop listening and remove the socket; answers in progress still go out,
 * so the clients (and ctl, which they point to) stay.
 */
void
control_close(struct control *ctl)
{
	if (ctl == NULL || ctl->fd < 0)
		return;
	ev_io_stop(ctl->loop, &ctl->io);
	close(ctl->fd);
	ctl->fd = -1;
	unlink(ctl->path);
}

/*
 * At exit, once the loop has ended: close what control_close() left for
 * answers in progress (any client still connected) and ctl itself.
 */
void
control_free(struct control *ctl)
{
	struct control_client *c, *next;

	if (ctl == NULL)
		return;
	control_close(ctl);
	for (c = ctl->clients; c != NULL; c = next) {
		next = c->next;
		control_client_free(c);	/* unlinks c from ctl->clients */
	}
	free(ctl);
}
