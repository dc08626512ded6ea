/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control_proto.h -- the control socket's protocol, spoken by moatctl and
 * the master (daemon/master/control.c, control_cmd.c).
 *
 * An AF_UNIX stream socket, owner root and mode 0600.  A client sends one
 * command line (at most CONTROL_LINE_MAX bytes with its newline) and reads
 * the answer until EOF.  A line of the answer that starts with
 * CONTROL_ERROR_PREFIX is a failure; the indented lines under it belong to
 * it.  moatctl(8) documents the commands and their output.
 */
#ifndef MOAT_CONTROL_PROTO_H
#define MOAT_CONTROL_PROTO_H

#define CONTROL_DEFAULT_SOCKET	"/run/moat/control.sock"
#define CONTROL_LINE_MAX	256		/* a command, newline included */
#define CONTROL_ANSWER_MAX	(1024 * 1024)	/* the longest answer */
#define CONTROL_ERROR_PREFIX	"error: "

#endif
