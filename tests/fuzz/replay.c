/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * replay.c -- main() for the fuzz harnesses in normal builds: feed every
 * file of the corpus directories given on the command line, and every
 * prefix of each (truncated messages are the commonest malformation), to
 * LLVMFuzzerTestOneInput.  A crash or abort fails the test; an empty or
 * missing corpus fails it too, so the test cannot pass by doing nothing.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REPLAY_MAX_FILE	(1024 * 1024)

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_file(const char *path, unsigned *inputs)
{
	uint8_t *buf, *copy;
	ssize_t n;
	size_t len = 0, i;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	if ((buf = malloc(REPLAY_MAX_FILE)) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	while (len < REPLAY_MAX_FILE &&
	    (n = read(fd, buf + len, REPLAY_MAX_FILE - len)) > 0)
		len += (size_t)n;
	close(fd);
	/* Each input in its own exact-size allocation, so ASan sees overruns. */
	for (i = 0; i <= len; i++) {
		if ((copy = malloc(i > 0 ? i : 1)) == NULL) {
			free(buf);
			return -ENOMEM;
		}
		memcpy(copy, buf, i);
		LLVMFuzzerTestOneInput(copy, i);
		free(copy);
		(*inputs)++;
	}
	free(buf);
	return 0;
}

int
main(int argc, char *argv[])
{
	char path[4096];
	struct dirent *de;
	struct stat st;
	unsigned files = 0, inputs = 0;
	DIR *d;
	int i, r;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS-DIR...\n", argv[0]);
		return 2;
	}
	for (i = 1; i < argc; i++) {
		if ((d = opendir(argv[i])) == NULL) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		while ((de = readdir(d)) != NULL) {
			snprintf(path, sizeof(path), "%s/%s", argv[i],
			    de->d_name);
			if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
				continue;
			if ((r = replay_file(path, &inputs)) < 0) {
				fprintf(stderr, "%s: %s\n", path, strerror(-r));
				closedir(d);
				return 1;
			}
			files++;
		}
		closedir(d);
	}
	if (files == 0) {
		fprintf(stderr, "no corpus files found\n");
		return 1;
	}
	printf("replayed %u files (%u inputs with their prefixes)\n", files,
	    inputs);
	return 0;
}
