/*
 * FNV-1a, 64-bit: the hash of the in-memory maps (budget rows, revocation
 * lists).  Not for anything an attacker chooses freely in bulk: such maps
 * bound their size instead of relying on the hash.
 */
#ifndef AAM_COMMON_HASH_H
#define AAM_COMMON_HASH_H

#include <stdint.h>

static inline uint64_t
aam_hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

#endif
