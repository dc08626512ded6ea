/* SPDX-License-Identifier: GPL-2.0-or-later */
/* fuzz_input.c -- the script reader of fuzz_input.h. */
#include "config.h"

#include "fuzz_input.h"

unsigned
fuzz_byte(struct fuzz_input *in)
{
	if (in->left == 0)
		return 0;
	in->left--;
	return *in->p++;
}
