/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mail.h -- a STARTTLS frontend's connection before the upgrade (mail.c).
 */
#ifndef MOAT_MAIL_H
#define MOAT_MAIL_H

#include <stddef.h>

struct conn;

enum mail_result {
	MAIL_GO_ON = 0,		/* wait for c->wants */
	MAIL_MOVED,		/* (mail.c's own: a line moved) */
	MAIL_UPGRADE,		/* STARTTLS answered: the TLS handshake now */
	MAIL_CLOSE,		/* end it; c->why says why */
};

enum mail_result mail_run(struct conn *c);
void	mail_free(struct conn *c);
void	mail_b2c_dropped(struct conn *c, size_t n);
void	mail_b2c_unmute(struct conn *c);

#endif
