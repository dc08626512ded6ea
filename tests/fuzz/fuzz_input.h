/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_input.h -- an input read from the front, a byte at a time, by the
 * harnesses that take theirs as a script of operations (fuzz_transcript,
 * fuzz_reneg).  Past the end every byte reads as 0, so a script cut
 * anywhere is still a script.
 */
#ifndef MOAT_FUZZ_INPUT_H
#define MOAT_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

struct fuzz_input {
	const uint8_t	*p;
	size_t		left;
};

/* fuzz_input.c */
unsigned	fuzz_byte(struct fuzz_input *in);

#endif
