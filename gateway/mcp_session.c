/*
 * MCP sessions of the gateway: an Mcp-Session-Id per initialize, bound
 * to the identity that created it, with the protocol version negotiated
 * then.  The id is 32 random bytes in base64url: unguessable, and visible
 * ASCII as the transport requires.
 *
 * A session used by another identity is reported as unknown, so an id
 * seen in a log is worth nothing to anyone else.  Idle sessions expire;
 * the table is bounded and refuses new sessions rather than evict live
 * ones.
 */
#include "gateway/mcp.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "aam/err.h"
#include "common/b64.h"
#include "common/secret.h"

struct sess {
	bool used;
	char id[GWM_SESSION_ID_LEN + 1];
	char owner[GWM_OWNER_MAX];
	char version[16];
	int64_t last_us;
};

struct gwm_sessions {
	pthread_mutex_t mu;
	struct sess *v;
	size_t max, n;
	int64_t idle_us;
};

int
gwm_sessions_new(size_t max, int64_t idle_ms, struct gwm_sessions **out)
{
	*out = NULL;
	struct gwm_sessions *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return AAM_E_NOMEM;
	s->max = max ? max : GWM_MAX_SESSIONS;
	s->v = calloc(s->max, sizeof(*s->v));
	if (s->v == NULL) {
		free(s);
		return AAM_E_NOMEM;
	}
	s->idle_us = (idle_ms > 0 ? idle_ms : GWM_SESSION_IDLE_MS) * 1000;
	pthread_mutex_init(&s->mu, NULL);
	*out = s;
	return AAM_OK;
}

void
gwm_sessions_free(struct gwm_sessions *s)
{
	if (s == NULL)
		return;
	pthread_mutex_destroy(&s->mu);
	free(s->v);
	free(s);
}

static bool
expired(const struct gwm_sessions *s, const struct sess *e, int64_t now_us)
{
	return now_us - e->last_us > s->idle_us;
}

int
gwm_session_create(struct gwm_sessions *s, const char *owner, const char *version, int64_t now_us,
                   char id[GWM_SESSION_ID_LEN + 1])
{
	if (owner == NULL || strlen(owner) >= GWM_OWNER_MAX || version == NULL ||
	    strlen(version) >= 16)
		return AAM_E_INVAL;
	uint8_t raw[32];
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return AAM_E_CRYPTO;
	size_t len = 0;
	int rc = aam_b64_encode(raw, sizeof(raw), id, GWM_SESSION_ID_LEN + 1, &len, AAM_B64_URL);
	if (rc != AAM_OK || len != GWM_SESSION_ID_LEN)
		return rc != AAM_OK ? rc : AAM_E_INTERNAL;
	id[GWM_SESSION_ID_LEN] = '\0';
	pthread_mutex_lock(&s->mu);
	struct sess *slot = NULL;
	for (size_t i = 0; i < s->max && slot == NULL; i++)
		if (!s->v[i].used || expired(s, &s->v[i], now_us))
			slot = &s->v[i];
	if (slot == NULL) {
		pthread_mutex_unlock(&s->mu);
		return AAM_E_BUSY;
	}
	if (!slot->used)
		s->n++;
	slot->used = true;
	memcpy(slot->id, id, GWM_SESSION_ID_LEN + 1);
	strcpy(slot->owner, owner);
	strcpy(slot->version, version);
	slot->last_us = now_us;
	pthread_mutex_unlock(&s->mu);
	return AAM_OK;
}

/* The live session ID of OWNER (lock held), or NULL. */
static struct sess *
find(struct gwm_sessions *s, const char *id, const char *owner, int64_t now_us)
{
	if (id == NULL || owner == NULL || strlen(id) != GWM_SESSION_ID_LEN)
		return NULL;
	for (size_t i = 0; i < s->max; i++) {
		struct sess *e = &s->v[i];
		if (!e->used || !aam_ct_equal(e->id, id, GWM_SESSION_ID_LEN))
			continue;
		if (expired(s, e, now_us)) {
			e->used = false;
			s->n--;
			return NULL;
		}
		return strcmp(e->owner, owner) == 0 ? e : NULL;
	}
	return NULL;
}

int
gwm_session_touch(struct gwm_sessions *s, const char *id, const char *owner, int64_t now_us,
                  char version[16])
{
	pthread_mutex_lock(&s->mu);
	struct sess *e = find(s, id, owner, now_us);
	if (e != NULL) {
		e->last_us = now_us;
		memcpy(version, e->version, 16);
	}
	pthread_mutex_unlock(&s->mu);
	return e != NULL ? AAM_OK : AAM_E_NOTFOUND;
}

int
gwm_session_end(struct gwm_sessions *s, const char *id, const char *owner)
{
	pthread_mutex_lock(&s->mu);
	/* Ending ignores idleness: an expired session is simply gone. */
	struct sess *e = find(s, id, owner, INT64_MIN / 2);
	if (e != NULL) {
		memset(e, 0, sizeof(*e));
		s->n--;
	}
	pthread_mutex_unlock(&s->mu);
	return e != NULL ? AAM_OK : AAM_E_NOTFOUND;
}

size_t
gwm_session_count(struct gwm_sessions *s)
{
	pthread_mutex_lock(&s->mu);
	size_t n = s->n;
	pthread_mutex_unlock(&s->mu);
	return n;
}
