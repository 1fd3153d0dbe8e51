#include "common/fswatch.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* FNV-1a, 64 bits: cheap and good enough to notice a change; not a security boundary. */
static uint64_t
mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 1099511628211ull;
	}
	return h;
}

static uint64_t
mix_stat(uint64_t h, const char *name, const struct stat *st)
{
	h = mix(h, name, strlen(name) + 1);
	uint64_t v[5] = {(uint64_t)st->st_ino, (uint64_t)st->st_size, (uint64_t)st->st_mtim.tv_sec,
	                 (uint64_t)st->st_mtim.tv_nsec, (uint64_t)st->st_mode};
	return mix(h, v, sizeof(v));
}

/* Mixes every visible entry of folder PATH, in name order. */
static uint64_t
mix_dir(uint64_t h, const char *path)
{
	struct dirent **names = NULL;
	int n = scandir(path, &names, NULL, alphasort);
	if (n < 0)
		return mix(h, "\x01unreadable", 11);
	uint64_t visible = 0;
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		char full[4096];
		struct stat st;
		int w = snprintf(full, sizeof(full), "%s/%s", path, name);
		if (name[0] != '.') {
			visible++;
			if (w > 0 && (size_t)w < sizeof(full) && stat(full, &st) == 0)
				h = mix_stat(h, name, &st);
			else
				h = mix(h, name, strlen(name) + 1);
		}
		free(names[i]);
	}
	free(names);
	return mix(h, &visible, sizeof(visible));
}

uint64_t
aam_fswatch_fingerprint(const char *const *paths, size_t n)
{
	uint64_t h = 14695981039346656037ull;
	for (size_t i = 0; i < n; i++) {
		if (paths == NULL || paths[i] == NULL)
			continue;
		struct stat st;
		if (stat(paths[i], &st) != 0) {
			h = mix(h, "\x02missing", 9);
			h = mix(h, paths[i], strlen(paths[i]) + 1);
			continue;
		}
		h = mix_stat(h, paths[i], &st);
		if (S_ISDIR(st.st_mode))
			h = mix_dir(h, paths[i]);
	}
	return h;
}
