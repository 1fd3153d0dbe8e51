/*
 * Internals shared by the provider modules (provider*.c, translate*.c);
 * also used by their unit tests.  Not for the router: it uses provider.h.
 */
#ifndef AAM_GATEWAY_PROVIDER_INT_H
#define AAM_GATEWAY_PROVIDER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/buf.h"
#include "gateway/provider.h"

/* The wire format a provider speaks. */
enum gw_wire { GW_WIRE_OPENAI = 1, GW_WIRE_ANTHROPIC, GW_WIRE_BEDROCK };

/* Maps a provider name to its wire format; AAM_E_INVAL for an unknown name. */
int gw_provider_wire(const char *provider, enum gw_wire *out);

/* Default max_tokens for Anthropic upstreams when the client gave none. */
#define GW_DEFAULT_MAX_TOKENS 4096
/* Largest upstream body (non-stream response) we parse. */
#define GW_MAX_RESPONSE (32u * 1024 * 1024)

/* Formats ERR (when not NULL) and returns AAM_E_INVAL. */
int gw_perr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Appends S percent-encoded for a URL path segment (RFC 3986 unreserved kept). */
int gw_url_escape(struct aam_buf *b, const char *s);

/* Appends API_BASE without trailing slashes; it must be an http(s) URL. */
int gw_append_base(struct aam_buf *url, const char *base, char *err, size_t errlen);

/* Per-provider URL builders (provider_openai.c, provider_anthropic.c, provider_bedrock.c). */
int gw_openai_url(const struct gw_deployment *d, bool embeddings, struct aam_buf *url, char *err,
                  size_t errlen);
int gw_anthropic_url(const struct gw_deployment *d, struct aam_buf *url, char *err, size_t errlen);
int gw_bedrock_url(const struct gw_deployment *d, bool stream, struct aam_buf *url, char *err,
                   size_t errlen);

/*
 * Body finishing for the upstream wire: model, stream flags, max_tokens
 * default and cap.  BODY is owned by the caller and modified in place.
 */
int gw_openai_finish_body(const struct gw_deployment *d, json_t *body, bool stream, int64_t cap,
                          char *err, size_t errlen);
int gw_anthropic_finish_body(const struct gw_deployment *d, json_t *body, bool bedrock, bool stream,
                             int64_t cap, char *err, size_t errlen);

/* Request translation (translate_req.c).  *OUT is a new object. */
int gw_req_openai_to_anthropic(const json_t *in, json_t **out, char *err, size_t errlen);
int gw_req_anthropic_to_openai(const json_t *in, json_t **out, char *err, size_t errlen);

/* Response translation (translate_resp.c).  *OUT is a new object. */
int gw_resp_anthropic_to_openai(const json_t *in, json_t **out, struct gw_usage *u);
int gw_resp_openai_to_anthropic(const json_t *in, json_t **out, struct gw_usage *u);

/*
 * Usage.  gw_usage.input counts all input tokens, cached ones included;
 * gw_usage.cached is the part read from a prompt cache.
 */
void gw_usage_from_anthropic(const json_t *usage, struct gw_usage *u);
void gw_usage_from_openai(const json_t *usage, struct gw_usage *u);
json_t *gw_usage_to_openai(const struct gw_usage *u);
json_t *gw_usage_to_anthropic(const struct gw_usage *u);

/* Stop reason <-> finish_reason.  Never NULL. */
const char *gw_finish_from_stop(const char *stop_reason);
const char *gw_stop_from_finish(const char *finish_reason);

/* Cuts a UTF-8 sequence left incomplete at the end of S by truncation. */
void gw_utf8_trim(char *s);

/* Integer member or 0 (absent, null, wrong type, negative). */
int64_t gw_json_int(const json_t *obj, const char *key);
/* String member or NULL. */
const char *gw_json_str(const json_t *obj, const char *key);

/*
 * AWS event-stream framing (provider_bedrock.c).  Each complete message
 * is checked (both CRC32s, lengths, header syntax) and handed to CB with
 * its :message-type, :event-type (or :exception-type) and payload.
 */
#define GW_EVSTREAM_MAX_MESSAGE (4u * 1024 * 1024)
typedef int (*gw_evstream_cb)(void *ctx, const char *message_type, const char *event_type,
                              const uint8_t *payload, size_t n);
struct gw_evstream {
	struct aam_buf in;
	gw_evstream_cb cb;
	void *ctx;
	int err;
};
void gw_evstream_init(struct gw_evstream *e, gw_evstream_cb cb, void *ctx);
void gw_evstream_uninit(struct gw_evstream *e);
int gw_evstream_feed(struct gw_evstream *e, const uint8_t *p, size_t n);
/* AAM_E_PARSE when a partial message is left over. */
int gw_evstream_finish(struct gw_evstream *e);
/* Encodes one message (for tests and the mock provider). */
int gw_evstream_encode(struct aam_buf *out, const char *message_type, const char *event_type,
                       const uint8_t *payload, size_t n);
uint32_t gw_crc32(uint32_t crc, const void *p, size_t n);

/* Fixes the "created" time of translated OpenAI chunks (tests). */
void gw_xlate_set_created(struct gw_xlate *x, int64_t created);

#endif /* AAM_GATEWAY_PROVIDER_INT_H */
