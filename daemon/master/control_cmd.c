/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control_cmd.c -- the commands moatctl sends, as a table {name,
 * arguments, handler}, and what status, stats and rekey answer
 * (moatctl(8) documents the output; its words and JSON fields are a
 * contract).  reload is reload.c's.
 *
 * A command line is at most four words: the command, then what its table
 * entry accepts (nothing, "--json", or one word).  Anything else is an
 * unknown command, whose answer lists the table.  A line of the answer
 * that starts with "error: " is a failure.
 *
 * stats is stats.c's gathering, printed by stats_answer() (text, JSON)
 * or metrics_answer() (Prometheus).  rekey asks every running worker over
 * its channel, as one request (req.c) with MASTER_REQ_TIMEOUT_S: a worker
 * that does not answer in time, or exits first, is reported as such, never
 * guessed.  The client may go away meanwhile; the request still ends, and
 * its answer goes nowhere.
 */
#include "config.h"

#include <sys/types.h>

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "answer.h"
#include "conf.h"
#include "control_proto.h"
#include "control_cmd.h"
#include "control.h"
#include "ipc.h"
#include "log.h"
#include "master_types.h"
#include "metrics.h"
#include "reload.h"
#include "req.h"
#include "stats.h"
#include "util.h"

#define CONTROL_CMD_WORDS	4	/* the command and its arguments */

/* What one worker answered to a rekey request. */
struct control_cmd_worker {
	pid_t			pid;		/* 0: not asked (not running) */
	int			answered;	/* or will not: see status */
	int			status;		/* < 0: IPC_ERROR or gone */
	char			error[IPC_ERRMSG_MAX];
	uint32_t		asked;		/* connections asked */
};

/* A rekey command waiting for the workers. */
struct control_cmd_req {
	struct req		req;
	struct master		*m;
	struct control_client	*client;	/* NULL once it went away */
	char			frontend[IPC_NAME_MAX];	/* "" = all */
	unsigned		nworkers;
	struct control_cmd_worker w[MASTER_MAX_WORKERS];
};

static void
control_cmd_uptime(char *buf, size_t size, double secs)
{
	unsigned long s = secs > 0 ? (unsigned long)secs : 0;

	if (s >= 86400)
		snprintf(buf, size, "%lud%02luh%02lum%02lus", s / 86400,
		    s % 86400 / 3600, s % 3600 / 60, s % 60);
	else if (s >= 3600)
		snprintf(buf, size, "%luh%02lum%02lus", s / 3600,
		    s % 3600 / 60, s % 60);
	else if (s >= 60)
		snprintf(buf, size, "%lum%02lus", s / 60, s % 60);
	else
		snprintf(buf, size, "%lus", s);
}

/* --- status ------------------------------------------------------------- */

static void
control_cmd_status_answer(struct answer *a, struct master *m, int json)
{
	const struct config *cfg = m->cfg;
	const struct frontend *fe;
	const struct master_child *w;
	ev_tstamp now = ev_now(m->loop);
	char up[32];
	unsigned i, j;

	if (json) {
		answer_printf(a, "{\"version\":\"%s\",\"pid\":%ld,"
		    "\"uptime_s\":%.0f,\"stopping\":%s,\"workers\":[",
		    MOAT_VERSION, (long)getpid(), now - m->started,
		    m->stopping ? "true" : "false");
		for (i = 0; i < cfg->workers; i++) {
			w = &m->workers[i];
			answer_printf(a, "%s{\"index\":%u,\"pid\":%ld,"
			    "\"running\":%s,\"uptime_s\":%.0f,\"restarts\":%u}",
			    i ? "," : "", i, (long)w->pid,
			    w->pid > 0 ? "true" : "false",
			    w->pid > 0 ? now - w->started : 0.0, w->restarts);
		}
		answer_printf(a, "],\"keyd\":{\"pid\":%ld,\"running\":%s,"
		    "\"ready\":%s,\"uptime_s\":%.0f,\"restarts\":%u,"
		    "\"generation\":%u},\"frontends\":[", (long)m->keyd.pid,
		    m->keyd.pid > 0 ? "true" : "false",
		    m->keyd.ready ? "true" : "false",
		    m->keyd.pid > 0 ? now - m->keyd.started : 0.0,
		    m->keyd.restarts, m->keyd_generation);
		for (i = 0; i < cfg->nfrontends; i++) {
			fe = &cfg->frontends[i];
			answer_printf(a, "%s{\"name\":", i ? "," : "");
			answer_json_str(a, fe->name);
			answer_printf(a, ",\"listen\":[");
			for (j = 0; j < fe->nlisten; j++) {
				answer_printf(a, "%s", j ? "," : "");
				answer_json_str(a, fe->listen[j].text);
			}
			answer_printf(a, "],\"backend\":");
			answer_json_str(a, fe->backend.text);
			/* "cert": the default one, as before several */
			answer_printf(a, ",\"cert\":");
			answer_json_str(a, fe->certs[0].cert);
			answer_printf(a, ",\"certs\":[");
			for (j = 0; j < fe->ncerts; j++) {
				answer_printf(a, "%s", j ? "," : "");
				answer_json_str(a, fe->certs[j].cert);
			}
			answer_printf(a, "]");
			answer_printf(a, ",\"key_generation\":%u}",
			    fe->key_generation);
		}
		answer_printf(a, "]}\n");
		return;
	}

	control_cmd_uptime(up, sizeof(up), now - m->started);
	answer_printf(a, "moatd %s, pid %ld, up %s%s\n", MOAT_VERSION,
	    (long)getpid(), up, m->stopping ? ", stopping" : "");
	answer_printf(a, "workers: %u\n", cfg->workers);
	for (i = 0; i < cfg->workers; i++) {
		w = &m->workers[i];
		if (w->pid > 0) {
			control_cmd_uptime(up, sizeof(up), now - w->started);
			answer_printf(a, "  worker %u: pid %ld, up %s, "
			    "restarts %u\n", i, (long)w->pid, up, w->restarts);
		} else {
			answer_printf(a, "  worker %u: not running, restarts "
			    "%u\n", i, w->restarts);
		}
	}
	if (m->keyd.pid > 0) {
		control_cmd_uptime(up, sizeof(up), now - m->keyd.started);
		answer_printf(a, "keyd: pid %ld, up %s, restarts %u, "
		    "generation %u%s\n", (long)m->keyd.pid, up,
		    m->keyd.restarts, m->keyd_generation,
		    m->keyd.ready ? "" : ", starting");
	} else {
		answer_printf(a, "keyd: not running, restarts %u\n",
		    m->keyd.restarts);
	}
	answer_printf(a, "frontends: %u\n", cfg->nfrontends);
	for (i = 0; i < cfg->nfrontends; i++) {
		fe = &cfg->frontends[i];
		answer_printf(a, "  %s: listen ", fe->name);
		for (j = 0; j < fe->nlisten; j++)
			answer_printf(a, "%s%s", j ? ", " : "",
			    fe->listen[j].text);
		answer_printf(a, "; backend %s; certificate generation %u\n",
		    fe->backend.text, fe->key_generation);
	}
}

/* --- rekey -------------------------------------------------------------- */

/* A worker's failure as stored ("error: ..."), without the prefix. */
static const char *
control_cmd_reason(const char *error)
{
	size_t n = strlen(CONTROL_ERROR_PREFIX);

	return strncmp(error, CONTROL_ERROR_PREFIX, n) == 0 ? error + n : error;
}

/*
 * "rekey: N connections asked to renegotiate", then one indented line per
 * worker; a worker that could not do it is an "error: " line of its own.
 */
static void
control_cmd_rekey_answer(struct answer *a, const struct control_cmd_req *r)
{
	const struct control_cmd_worker *w;
	uint64_t asked = 0;
	unsigned i, ok = 0, running = 0;

	for (i = 0; i < r->nworkers; i++) {
		w = &r->w[i];
		if (w->pid == 0)
			continue;
		running++;
		if (w->answered && w->status == 0) {
			ok++;
			asked += w->asked;
		}
	}
	if (running == 0) {
		answer_printf(a, CONTROL_ERROR_PREFIX "rekey failed: no "
		    "worker is running\n");
		return;
	}
	if (ok == 0)
		answer_printf(a, CONTROL_ERROR_PREFIX "rekey failed: no "
		    "worker did it\n");
	else
		answer_printf(a, "rekey: %llu connections asked to renegotiate "
		    "(%s%s%s%u of %u workers)\n", (unsigned long long)asked,
		    r->frontend[0] ? "frontend " : "", r->frontend,
		    r->frontend[0] ? ", " : "", ok, running);
	for (i = 0; i < r->nworkers; i++) {
		w = &r->w[i];
		if (w->pid == 0)
			answer_printf(a, "  worker %u: not running\n", i);
		else if (w->answered && w->status == 0)
			answer_printf(a, "  worker %u (pid %ld): %u "
			    "connections\n", i, (long)w->pid, w->asked);
	}
	for (i = 0; i < r->nworkers; i++) {
		w = &r->w[i];
		if (w->pid != 0 && !(w->answered && w->status == 0))
			answer_printf(a, CONTROL_ERROR_PREFIX "worker %u "
			    "(pid %ld): %s\n", i, (long)w->pid,
			    control_cmd_reason(w->error));
	}
}

/* --- requests to the workers ------------------------------------------- */

/* A worker's answer to IPC_WORKER_REKEY. */
static void
control_cmd_answer(struct req *rq, const struct req_peer *p,
    struct ipc_msg *msg)
{
	struct control_cmd_req *cr = container_of(rq, struct control_cmd_req,
	    req);
	const struct master_child *c = p->child;
	struct control_cmd_worker *rw;
	struct ipc_reply rep;
	struct ipc_error ie;
	uint32_t asked;

	rw = &cr->w[c->index];
	rw->answered = 1;
	switch (msg->hdr.type) {
	case IPC_WORKER_REKEY_REPLY:
		if (ipc_reply_decode(msg->payload, msg->hdr.len, &rep) < 0 ||
		    (rep.status == 0 && rep.data_len != sizeof(asked)))
			goto bad;
		if (rep.status < 0) {
			rw->status = rep.status;
			snprintf(rw->error, sizeof(rw->error),
			    CONTROL_ERROR_PREFIX "%.240s",
			    strerror(-rep.status));
			return;
		}
		memcpy(&asked, rep.data, sizeof(asked));
		rw->asked = asked;
		rw->status = 0;
		return;
	case IPC_ERROR:
		if (ipc_error_decode(msg->payload, msg->hdr.len, &ie) < 0)
			goto bad;
		rw->status = ie.code;
		snprintf(rw->error, sizeof(rw->error),
		    CONTROL_ERROR_PREFIX "%.240s", ie.msg[0] != '\0' ? ie.msg :
		    strerror(-ie.code));
		return;
	default:
		goto bad;
	}
bad:
	log_warnx("worker %u (pid %ld): malformed %s", c->index, (long)p->pid,
	    ipc_type_name(msg->hdr.type));
	rw->status = -EBADMSG;
	snprintf(rw->error, sizeof(rw->error), "malformed answer");
}

/* A worker that will not answer: the deadline passed, or it exited. */
static void
control_cmd_lost(struct req *rq, const struct req_peer *p, int error)
{
	struct control_cmd_req *cr = container_of(rq, struct control_cmd_req,
	    req);
	struct control_cmd_worker *rw = &cr->w[p->child->index];

	rw->answered = 1;
	rw->status = error;
	if (error == -ETIMEDOUT)
		snprintf(rw->error, sizeof(rw->error), "no answer within "
		    "%.0f s", MASTER_REQ_TIMEOUT_S);
	else
		snprintf(rw->error, sizeof(rw->error), "exited before "
		    "answering");
}

static void
control_cmd_done(struct req *rq)
{
	struct control_cmd_req *cr = container_of(rq, struct control_cmd_req,
	    req);
	struct control_client *c = cr->client;

	if (c != NULL) {
		control_cmd_rekey_answer(control_client_answer(c), cr);
		control_client_done(c);
	}
	free(cr);
}

static const struct req_ops control_cmd_req_ops = {
	control_cmd_answer,
	control_cmd_lost,
	control_cmd_done,
};

/* The client left before the answer: the request ends all the same. */
static void
control_cmd_client_gone(void *arg)
{
	struct control_cmd_req *cr = arg;

	cr->client = NULL;
}

static void
control_cmd_oom(struct control_client *c)
{
	answer_printf(control_client_answer(c), CONTROL_ERROR_PREFIX
	    "out of memory\n");
	control_client_done(c);
}

/* Ask every running worker to rekey; answer when all have. */
static void
control_cmd_ask(struct master *m, struct control_client *c,
    const char *frontend)
{
	struct control_cmd_req *cr;
	struct control_cmd_worker *rw;
	struct master_child *w;
	struct ipc_rekey rk;
	unsigned i;
	int e;

	if ((cr = calloc(1, sizeof(*cr))) == NULL) {
		control_cmd_oom(c);
		return;
	}
	req_init(&m->reqs, &cr->req, &control_cmd_req_ops);
	cr->m = m;
	cr->client = c;
	cr->nworkers = m->cfg->workers;
	snprintf(cr->frontend, sizeof(cr->frontend), "%s", frontend);
	memset(&rk, 0, sizeof(rk));
	snprintf(rk.frontend, sizeof(rk.frontend), "%s", frontend);

	for (i = 0; i < cr->nworkers; i++) {
		w = &m->workers[i];
		rw = &cr->w[i];
		snprintf(rw->error, sizeof(rw->error), "not running");
		rw->status = -ESRCH;
		if (w->pid <= 0 || w->fd < 0)
			continue;
		rw->pid = w->pid;
		if ((e = req_ask(&cr->req, w, IPC_WORKER_REKEY, &rk,
		    sizeof(rk), NULL, 0)) < 0) {
			rw->answered = 1;
			snprintf(rw->error, sizeof(rw->error),
			    "cannot ask it: %s", strerror(-e));
		}
	}
	control_client_on_gone(c, control_cmd_client_gone, cr);
	req_start(&cr->req, MASTER_REQ_TIMEOUT_S);
}

/* --- stats ---------------------------------------------------------------- */

enum control_cmd_format {
	CONTROL_FMT_TEXT,
	CONTROL_FMT_JSON,
	CONTROL_FMT_PROMETHEUS,
};

/* A stats command waiting for stats.c's gathering. */
struct control_cmd_stats {
	struct control_client	*client;
	struct stats_req	*gather;
	enum control_cmd_format	format;
};

static void
control_cmd_stats_done(const struct stats *s, void *arg)
{
	struct control_cmd_stats *cs = arg;
	struct answer *a = control_client_answer(cs->client);

	if (cs->format == CONTROL_FMT_PROMETHEUS)
		metrics_answer(a, s);
	else
		stats_answer(a, s, cs->format == CONTROL_FMT_JSON);
	control_client_done(cs->client);
	free(cs);
}

/* The client left first: the gathering ends unheard. */
static void
control_cmd_stats_gone(void *arg)
{
	struct control_cmd_stats *cs = arg;

	stats_gather_forget(cs->gather);
	free(cs);
}

/* --- the command table ---------------------------------------------------- */

/* What a command accepts after its name, at most one word. */
enum control_cmd_args {
	CONTROL_ARGS_NONE,
	CONTROL_ARGS_JSON,	/* optional "--json" */
	CONTROL_ARGS_FORMAT,	/* optional "--json" or "--prometheus" */
	CONTROL_ARGS_FRONTEND,	/* optional: a frontend's name */
};

static const char *const control_cmd_args_usage[] = {
	[CONTROL_ARGS_NONE] = "",
	[CONTROL_ARGS_JSON] = " [--json]",
	[CONTROL_ARGS_FORMAT] = " [--json|--prometheus]",
	[CONTROL_ARGS_FRONTEND] = " [FRONTEND]",
};

/* Each answers, now or later, with control_client_done(c). */
static void
control_cmd_status(struct master *m, struct control_client *c,
    const char *arg)
{
	control_cmd_status_answer(control_client_answer(c), m, arg != NULL);
	control_client_done(c);
}

static void
control_cmd_stats(struct master *m, struct control_client *c,
    const char *arg)
{
	struct control_cmd_stats *cs;

	if ((cs = calloc(1, sizeof(*cs))) == NULL) {
		control_cmd_oom(c);
		return;
	}
	cs->client = c;
	cs->format = arg == NULL ? CONTROL_FMT_TEXT :
	    strcmp(arg, "--prometheus") == 0 ? CONTROL_FMT_PROMETHEUS :
	    CONTROL_FMT_JSON;
	if ((cs->gather = stats_gather_new(m, control_cmd_stats_done,
	    cs)) == NULL) {
		free(cs);
		control_cmd_oom(c);
		return;
	}
	control_client_on_gone(c, control_cmd_stats_gone, cs);
	stats_gather_start(cs->gather);
}

static void
control_cmd_rekey(struct master *m, struct control_client *c,
    const char *arg)
{
	if (arg != NULL && config_frontend_by_name(m->cfg, arg) == NULL) {
		answer_printf(control_client_answer(c), CONTROL_ERROR_PREFIX
		    "unknown frontend '%s'\n", arg);
		control_client_done(c);
		return;
	}
	control_cmd_ask(m, c, arg != NULL ? arg : "");
}

static void
control_cmd_reload(struct master *m, struct control_client *c,
    const char *arg)
{
	reload_start(m, c);
}

static const struct control_cmd {
	const char		*name;
	enum control_cmd_args	args;
	void			(*handler)(struct master *,
				    struct control_client *, const char *);
} control_cmds[] = {
	{ "status",	CONTROL_ARGS_JSON,	control_cmd_status },
	{ "stats",	CONTROL_ARGS_FORMAT,	control_cmd_stats },
	{ "rekey",	CONTROL_ARGS_FRONTEND,	control_cmd_rekey },
	{ "reload",	CONTROL_ARGS_NONE,	control_cmd_reload },
};

/* "status, stats, rekey or reload", with each one's arguments or not. */
static void
control_cmd_list(struct answer *a, int with_args)
{
	size_t i, n = nitems(control_cmds);

	for (i = 0; i < n; i++)
		answer_printf(a, "%s%s%s", i == 0 ? "" : i + 1 < n ? ", " :
		    " or ", control_cmds[i].name, with_args ?
		    control_cmd_args_usage[control_cmds[i].args] : "");
}

/* 0 when cmd takes what follows its name on the line, or -1. */
static int
control_cmd_args_ok(const struct control_cmd *cmd, int argc, char **argv)
{
	if (argc == 1)
		return 0;
	if (argc > 2)
		return -1;
	switch (cmd->args) {
	case CONTROL_ARGS_JSON:
		return strcmp(argv[1], "--json") == 0 ? 0 : -1;
	case CONTROL_ARGS_FORMAT:
		return strcmp(argv[1], "--json") == 0 ||
		    strcmp(argv[1], "--prometheus") == 0 ? 0 : -1;
	case CONTROL_ARGS_FRONTEND:
		return 0;
	case CONTROL_ARGS_NONE:
	default:
		return -1;
	}
}

/* control.c hands each client's line here (control_open() in master.c). */
void
control_cmd_run(struct control_client *c, char *line, void *arg)
{
	struct master *m = arg;
	struct answer *a = control_client_answer(c);
	char *argv[CONTROL_CMD_WORDS], *save = NULL, *tok;
	size_t i;
	int argc = 0;

	for (tok = strtok_r(line, " \t\r", &save); tok != NULL &&
	    argc < CONTROL_CMD_WORDS; tok = strtok_r(NULL, " \t\r", &save))
		argv[argc++] = tok;
	if (argc == 0) {
		answer_printf(a, CONTROL_ERROR_PREFIX "empty command "
		    "(expected ");
		control_cmd_list(a, 0);
		answer_printf(a, ")\n");
		control_client_done(c);
		return;
	}
	for (i = 0; i < nitems(control_cmds); i++) {
		if (strcmp(argv[0], control_cmds[i].name) != 0 ||
		    control_cmd_args_ok(&control_cmds[i], argc, argv) < 0)
			continue;
		control_cmds[i].handler(m, c, argc == 2 ? argv[1] : NULL);
		return;
	}
	answer_printf(a, CONTROL_ERROR_PREFIX "unknown command '%s' (expected ",
	    argv[0]);
	control_cmd_list(a, 1);
	answer_printf(a, ")\n");
	control_client_done(c);
}
