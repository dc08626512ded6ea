/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ipc_msgs.h -- THE table of IPC messages: every type moat's processes
 * exchange, once, with its value, the channels it may travel on (who sends
 * it to whom) and how many descriptors may travel with it.  The enum, the names, "is this
 * type known" and the permit check (ipc_msgs.c) are all made from this one
 * list, so a message exists in exactly one place.
 *
 * Requests have even values and their answers the next odd one, as
 * OpenSSH's monitor.h does.  IPC_ERROR answers any request that cannot be
 * served.  Every channel starts with IPC_HELLO in both directions.
 *
 * The permit check (OpenSSH's MON_PERMIT idea) runs in ipc_recv(), before
 * any payload is decoded: a process receives from one known peer on each
 * channel, and a type that peer may not send, or sent with more
 * descriptors than the table allows, is refused (-EPERM) with its
 * descriptors closed.  The dispatchers log that once and close the channel.
 *
 * To add a message: one line here (a free even value for a request, the
 * next odd one for its answer), a payload struct and codec in ipc_codec.h
 * if it has one, and a case in the receiving process's dispatcher.
 * HACKING.md says it step by step.
 *
 * This header includes neither libev nor GnuTLS.
 */
#ifndef MOAT_IPC_MSGS_H
#define MOAT_IPC_MSGS_H

#include <stdint.h>

/* Who speaks: sent in the hello, and the roles of the permit check. */
enum ipc_role {
	IPC_ROLE_MASTER	= 1,
	IPC_ROLE_WORKER	= 2,
	IPC_ROLE_KEYD	= 3,
};

/*
 * The six directed channels a message can travel on: each worker and keyd
 * have a channel to the master, and each worker one to keyd.
 */
#define IPC_MW		0x01u	/* master -> worker */
#define IPC_WM		0x02u	/* worker -> master */
#define IPC_MK		0x04u	/* master -> keyd */
#define IPC_KM		0x08u	/* keyd -> master */
#define IPC_WK		0x10u	/* worker -> keyd */
#define IPC_KW		0x20u	/* keyd -> worker */
#define IPC_ALL_WAYS	0x3fu

#define IPC_MAX_PAYLOAD		16384u		/* hard cap, checked before use */
#define IPC_MAX_CERTS		8u		/* cert/key pairs per frontend */
/* per message: IPC_WORKER_CERT, a chain and an OCSP response per cert */
#define IPC_MAX_FDS		(2u * IPC_MAX_CERTS)

/*
 *	name			value	travels			fds (at most)
 */
#define IPC_MESSAGES(X)							\
	X(ERROR,		1,	IPC_WM|IPC_KM|IPC_KW,	0)	\
	X(HELLO,		2,	IPC_ALL_WAYS,		0)	\
	/* worker -> keyd: the worker's key operations */		\
	X(KEY_LIST,		4,	IPC_WK,			0)	\
	X(KEY_LIST_REPLY,	5,	IPC_KW,			0)	\
	X(SIGN,			6,	IPC_WK,			0)	\
	X(SIGN_REPLY,		7,	IPC_KW,			0)	\
	X(DECRYPT,		8,	IPC_WK,			0)	\
	X(DECRYPT_REPLY,	9,	IPC_KW,			0)	\
	/* no payload; hdr.id names the request given up on; no answer */ \
	X(CANCEL,		10,	IPC_WK,			0)	\
	/* master -> keyd: keys as descriptors, worker channels */	\
	X(KEY_LOAD,		20,	IPC_MK,			3)	\
	X(KEY_LOAD_REPLY,	21,	IPC_KM,			0)	\
	X(CHANNEL_ADD,		22,	IPC_MK,			1)	\
	X(CHANNEL_ADD_REPLY,	23,	IPC_KM,			0)	\
	X(KEYD_STATS,		24,	IPC_MK,			0)	\
	X(KEYD_STATS_REPLY,	25,	IPC_KM,			0)	\
	X(KEY_DROP,		26,	IPC_MK,			0)	\
	X(KEY_DROP_REPLY,	27,	IPC_KM,			0)	\
	/* master -> worker */						\
	X(WORKER_CHANNEL,	40,	IPC_MW,			1)	\
	X(WORKER_CHANNEL_REPLY,	41,	IPC_WM,			0)	\
	X(WORKER_STATS,		42,	IPC_MW,			0)	\
	X(WORKER_STATS_REPLY,	43,	IPC_WM,			0)	\
	X(WORKER_STOP,		44,	IPC_MW,			0)	\
	X(WORKER_REKEY,		46,	IPC_MW,			0)	\
	X(WORKER_REKEY_REPLY,	47,	IPC_WM,			0)	\
	X(WORKER_CERT,		48,	IPC_MW,			2 * IPC_MAX_CERTS) \
	X(WORKER_CERT_REPLY,	49,	IPC_WM,			0)	\
	/* worker -> master */						\
	X(BACKEND_CONNECT,	50,	IPC_WM,			0)	\
	X(BACKEND_CONNECT_REPLY, 51,	IPC_MW,			1)	\
	X(WORKER_CRED_GONE,	52,	IPC_WM,			0)

enum ipc_type {
#define IPC_MSG_ENUM(name, value, ways, fds)	IPC_##name = (value),
	IPC_MESSAGES(IPC_MSG_ENUM)
#undef IPC_MSG_ENUM
};

/* ipc_msgs.c */
const char *ipc_type_name(uint16_t type);
int	ipc_type_known(uint16_t type);
int	ipc_permit(uint16_t type, enum ipc_role from, enum ipc_role to,
	    unsigned nfds);
const char *ipc_role_name(enum ipc_role role);

#endif
