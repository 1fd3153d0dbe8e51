/*
 * Corpus replay driver, linked into each fuzz target when libFuzzer is not
 * available (gcc builds).  It feeds every regular file named on the command
 * line, or found in a directory named there, to LLVMFuzzerTestOneInput once,
 * so the corpus doubles as a regression test under the sanitizers.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX_INPUT (4u * 1024 * 1024)

static int
replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "replay: %s: cannot open\n", path);
		return 1;
	}
	uint8_t *data = malloc(REPLAY_MAX_INPUT);
	if (data == NULL) {
		fclose(f);
		return 1;
	}
	size_t n = fread(data, 1, REPLAY_MAX_INPUT, f);
	fclose(f);
	/* Copy into an exact-size allocation so ASan catches overreads. */
	uint8_t *exact = malloc(n ? n : 1);
	if (exact == NULL) {
		free(data);
		return 1;
	}
	memcpy(exact, data, n);
	free(data);
	LLVMFuzzerTestOneInput(exact, n);
	free(exact);
	return 0;
}

static int
replay_path(const char *path, unsigned *count)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		fprintf(stderr, "replay: %s: not found\n", path);
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return replay_file(path);
	}
	DIR *d = opendir(path);
	if (d == NULL)
		return 1;
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char sub[4096];
		int len = snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		if (len < 0 || (size_t)len >= sizeof(sub))
			continue;
		rc |= replay_path(sub, count);
	}
	closedir(d);
	return rc;
}

int
main(int argc, char **argv)
{
	unsigned count = 0;
	int rc = 0;
	for (int i = 1; i < argc; i++)
		rc |= replay_path(argv[i], &count);
	printf("replay: %u inputs\n", count);
	return rc;
}
