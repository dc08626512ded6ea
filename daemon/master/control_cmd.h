/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control_cmd.h -- the control commands (control_cmd.c), given to the
 * control socket (control.c) as what runs each client's line.
 */
#ifndef MOAT_CONTROL_CMD_H
#define MOAT_CONTROL_CMD_H

#include "control.h"

/* control_cmd.c */
void	control_cmd_run(struct control_client *c, char *line, void *arg);

#endif
