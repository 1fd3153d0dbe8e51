/*
 * Shared by agent/sidecar.c (life cycle, token refresh, local endpoints)
 * and agent/sidecar_proxy.c (forwarding one request to the gateway).
 */
#ifndef AAM_AGENT_SIDECAR_INT_H
#define AAM_AGENT_SIDECAR_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "agent/agent_int.h"
#include "common/http.h"

struct aam_agent_sidecar {
	struct aam_agent *a;
	struct aam_http_server *http;
	char *gateway_url; /* without a trailing '/' */
	char *ca_bundle;
	long connect_timeout_ms;
	long backoff_min_ms, backoff_max_ms;

	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC; wakes the refresher */
	bool stopping;
	struct aam_agent_token tok; /* the current token; tok.token NULL when none */
	int64_t tok_start_ms;       /* monotonic time the attestation began */
	int64_t tok_life_ms;        /* expires_in in ms */
	char *dpop_nonce;           /* the gateway's latest DPoP-Nonce, or NULL */
	uint64_t refreshes;
	unsigned failures;
	int64_t retry_at_ms; /* next attempt after a failure */
	pthread_t refresher;
	bool refresher_started;
};

/* Monotonic milliseconds. */
int64_t sidecar_now_ms(void);

/*
 * A copy of the current token when one is valid for at least a few more
 * seconds (malloc'd; wipe and free it), else NULL.
 */
char *sidecar_token(struct aam_agent_sidecar *s);
/* A copy of the gateway's latest DPoP nonce, or NULL. */
char *sidecar_nonce(struct aam_agent_sidecar *s);
/* Remembers a DPoP-Nonce header value from the gateway. */
void sidecar_set_nonce(struct aam_agent_sidecar *s, const char *nonce);

/* The route handler for every forwarded request (sidecar_proxy.c). */
int sidecar_forward(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp);

#endif /* AAM_AGENT_SIDECAR_INT_H */
