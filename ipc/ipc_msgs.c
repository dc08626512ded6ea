/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ipc_msgs.c -- names, "known" and the permit check, all made from the
 * one table in ipc_msgs.h.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>

#include "ipc_msgs.h"

struct ipc_msg_def {
	uint16_t	type;
	unsigned	ways;		/* IPC_MW | IPC_WM | ... */
	unsigned	fds;		/* at most */
	const char	*name;
};

static const struct ipc_msg_def ipc_msg_defs[] = {
#define IPC_MSG_DEF(name, value, ways, fds)				\
	{ IPC_##name, (ways), (fds), #name },
	IPC_MESSAGES(IPC_MSG_DEF)
#undef IPC_MSG_DEF
};
#define IPC_NMSGS	(sizeof(ipc_msg_defs) / sizeof(ipc_msg_defs[0]))

static const struct ipc_msg_def *
ipc_msg_def(uint16_t type)
{
	size_t i;

	for (i = 0; i < IPC_NMSGS; i++)
		if (ipc_msg_defs[i].type == type)
			return &ipc_msg_defs[i];
	return NULL;
}

const char *
ipc_type_name(uint16_t type)
{
	const struct ipc_msg_def *d = ipc_msg_def(type);

	return d != NULL ? d->name : "UNKNOWN";
}

int
ipc_type_known(uint16_t type)
{
	return ipc_msg_def(type) != NULL;
}

/* The direction bit of a channel from `from` to `to`, or 0: none such. */
static unsigned
ipc_way(enum ipc_role from, enum ipc_role to)
{
	switch (from) {
	case IPC_ROLE_MASTER:
		return to == IPC_ROLE_WORKER ? IPC_MW :
		    to == IPC_ROLE_KEYD ? IPC_MK : 0;
	case IPC_ROLE_WORKER:
		return to == IPC_ROLE_MASTER ? IPC_WM :
		    to == IPC_ROLE_KEYD ? IPC_WK : 0;
	case IPC_ROLE_KEYD:
		return to == IPC_ROLE_MASTER ? IPC_KM :
		    to == IPC_ROLE_WORKER ? IPC_KW : 0;
	}
	return 0;
}

/*
 * May a peer playing `from` send `type` with nfds descriptors to a process
 * playing `to`?  0, -EOPNOTSUPP for a type the table does not have, -EPERM
 * for one this peer may not send here, or with too many descriptors.
 */
int
ipc_permit(uint16_t type, enum ipc_role from, enum ipc_role to, unsigned nfds)
{
	const struct ipc_msg_def *d = ipc_msg_def(type);
	unsigned way = ipc_way(from, to);

	if (d == NULL)
		return -EOPNOTSUPP;
	if (way == 0 || !(d->ways & way))
		return -EPERM;
	if (nfds > d->fds)
		return -EPERM;
	return 0;
}

const char *
ipc_role_name(enum ipc_role role)
{
	switch (role) {
	case IPC_ROLE_MASTER:	return "master";
	case IPC_ROLE_WORKER:	return "worker";
	case IPC_ROLE_KEYD:	return "keyd";
	}
	return "?";
}
