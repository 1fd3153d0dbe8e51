/*
 * Providers and API translation, internal to the router (gateway/route.h).
 *
 * A deployment (one entry of a route's `deployments`) names a provider.
 * This module turns the client's request (OpenAI chat, Anthropic messages
 * or OpenAI embeddings, as parsed JSON) into the upstream request for that
 * provider -- URL, headers without any credential, body -- and turns the
 * upstream's answer back into the client's API shape, buffered or as a
 * stream of SSE bytes, counting usage on the way.
 *
 * Upstream wire formats:
 *   openai, azure, openai-compatible  -> OpenAI chat completions / embeddings
 *   anthropic                         -> Anthropic messages
 *   bedrock                           -> Anthropic-on-Bedrock (InvokeModel /
 *                                        InvokeModelWithResponseStream,
 *                                        AWS event-stream framing)
 * When the client's API and the upstream's differ, the request and the
 * response (streaming included) are translated: system prompt, messages,
 * tool definitions and tool calls <-> tool_use blocks, stop reasons, usage.
 *
 * Everything here is pure (no I/O, no globals) and thread-safe.
 */
#ifndef AAM_GATEWAY_PROVIDER_H
#define AAM_GATEWAY_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/http.h"
#include "gateway/route.h"

/* One deployment, as routes_load.c builds it (strings are owned by the route table). */
struct gw_deployment {
	char *id;          /* "<route>#<index>", unique, for cooldown and metrics */
	char *provider;    /* openai | anthropic | azure | bedrock | openai-compatible */
	char *model;       /* upstream model id (azure: deployment name; bedrock: model id) */
	char *api_base;    /* e.g. https://api.anthropic.com (no trailing slash) */
	char *api_version; /* azure api-version; NULL otherwise */
	char *credential;  /* vault secret name; NULL = none (local openai-compatible servers) */
	char *region;      /* NULL = unknown */
	int64_t rpm, tpm;  /* 0 = unlimited */
	double weight;     /* > 0, default 1 */
	int64_t timeout_ms;
	int64_t max_context;                   /* tokens, 0 = unknown */
	double cost_in, cost_out, cost_cached; /* USD per 1M tokens */
};

/* The upstream request, credential-free; the vault injects the credential. */
#define GW_UPSTREAM_MAX_HEADERS 16
struct gw_upstream {
	char method[8];
	char *url;                                               /* malloc'd */
	struct aam_http_header headers[GW_UPSTREAM_MAX_HEADERS]; /* malloc'd name/value */
	size_t nheaders;
	struct aam_buf body; /* initialised by gw_provider_build */
	bool stream;         /* the upstream will answer with a stream */
};

/*
 * Builds the upstream request for deployment D from the client's BODY
 * (API shape API).  STREAM is what the client asked; for OpenAI-wire
 * streams `stream_options.include_usage` is forced on so usage can be
 * settled.  MAX_TOKENS_CAP (0 = none) lowers max_tokens; Anthropic needs a
 * max_tokens, so one is supplied when the client gave none (4096, or the
 * cap).  The upstream `model` is D->model.  Errors (AAM_E_INVAL with a
 * message in ERR) are client errors: an unsupported combination
 * (embeddings to an Anthropic deployment), a malformed body.
 */
int gw_provider_build(const struct gw_deployment *d, enum gw_api api, const json_t *body,
                      bool stream, int64_t max_tokens_cap, struct gw_upstream *out, char *err,
                      size_t errlen);
void gw_upstream_free(struct gw_upstream *u);

struct gw_usage {
	int64_t input, output, cached;
	bool seen; /* the upstream reported usage */
};

/*
 * Translates a successful (2xx) non-stream upstream BODY from deployment
 * D into the client's API shape (appended to OUT), and reports usage.
 */
int gw_provider_response(const struct gw_deployment *d, enum gw_api api, const uint8_t *body,
                         size_t n, struct aam_buf *out, struct gw_usage *usage);

/*
 * Extracts a human-readable message from an upstream error body (any of
 * the provider error shapes) into MSG; never fails (falls back to "upstream
 * status N").
 */
void gw_provider_error_message(unsigned status, const uint8_t *body, size_t n, char *msg,
                               size_t msglen);

/*
 * Stream translation: raw upstream bytes in (SSE, or AWS event-stream for
 * bedrock), client SSE bytes out, in the client's API shape.  FEED may be
 * given any split of the bytes.  CLIENT_WANTS_USAGE: for an OpenAI client,
 * whether it asked for stream_options.include_usage (when not, the usage
 * chunk forced on upstream is stripped).  FINISH ends the client stream
 * properly (OpenAI "data: [DONE]", Anthropic message_stop) if the upstream
 * did not, and returns AAM_E_PARSE if the upstream stream was malformed or
 * cut short.
 */
struct gw_xlate;
int gw_xlate_new(const struct gw_deployment *d, enum gw_api api, bool client_wants_usage,
                 struct gw_xlate **out);
int gw_xlate_feed(struct gw_xlate *x, const uint8_t *p, size_t n, struct aam_buf *out);
int gw_xlate_finish(struct gw_xlate *x, struct aam_buf *out);
void gw_xlate_usage(const struct gw_xlate *x, struct gw_usage *u);
void gw_xlate_free(struct gw_xlate *x);

/*
 * A conservative estimate of the input tokens of a client request (for
 * the budget reservation and context-window fallback): about one token
 * per 4 bytes of text content, plus per-message overhead, rounded up.
 */
int64_t gw_estimate_input_tokens(enum gw_api api, const json_t *body);

#endif /* AAM_GATEWAY_PROVIDER_H */
