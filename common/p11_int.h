/*
 * Internals of the PKCS#11 layer shared by p11.c (module, token, login,
 * session pool) and p11_obj.c (object lookup cache and operations).
 * Nothing outside common/p11*.c includes this header.
 */
#ifndef AAM_COMMON_P11_INT_H
#define AAM_COMMON_P11_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/p11.h"
#include "common/secret.h"

#define P11_POOL_MAX  64
#define P11_PIN_MAX   256
#define P11_CACHE_MAX 65536 /* cached (class, label) handles: one per stored secret version */
#define P11_LABEL_MAX 256
#define P11_MECH_MAX  4096

struct p11_cached {
	CK_OBJECT_CLASS cls;
	uint32_t hash;
	char *label;
	CK_OBJECT_HANDLE handle;
};

struct aam_p11 {
	CK_FUNCTION_LIST *f;
	int initialized; /* we called C_Initialize and owe C_Finalize */
	CK_SLOT_ID slot;
	aam_secret *pin;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t generation; /* re-opens and forgets so far */
	unsigned pool_size;
	CK_SESSION_HANDLE sessions[P11_POOL_MAX];
	bool busy[P11_POOL_MAX];

	CK_MECHANISM_TYPE *mechs;
	size_t nmechs;

	pthread_mutex_t cache_lock;
	struct p11_cached *cache;
	size_t ncache, cache_cap;
};

/*
 * Whether the session still runs as the logged-in user.  After a C_Logout
 * by anyone in the process, sessions stay open but become public: private
 * objects vanish from searches and their handles turn invalid, while no
 * "session lost" code is ever returned.
 */
bool aam_p11_session_is_user(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s);

#endif /* AAM_COMMON_P11_INT_H */
