/*
 * Outbound HTTP(S) for aam-vault, over libcurl.
 *
 * One egress object per daemon holds a CURLSH that shares the connection
 * cache, DNS cache and TLS sessions between every request, whatever
 * thread runs it, so a keep-alive (or HTTP/2) connection to a provider is
 * reused across INJECT requests.  Every transfer has TLS verification on
 * (peer and host name; the CA bundle is configurable), proxies from the
 * environment off, redirects never followed, the protocol limited to the
 * URL's scheme, connect and total timeouts, and HTTP/2 where the server
 * offers it.  Responses are decoded (Content-Encoding) by libcurl so the
 * scrubber sees plain bytes, and handed to a sink as they arrive: the
 * status and headers once, then every body chunk.
 */
#ifndef AAM_VAULT_EGRESS_H
#define AAM_VAULT_EGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct curl_slist;

struct vault_egress_config {
	const char *ca_bundle;   /* PEM bundle; NULL: libcurl's default */
	long connect_timeout_ms; /* 0: 10 s */
	long timeout_ms;         /* whole transfer; 0: none */
	bool no_http2;           /* force HTTP/1.1 */
};

struct vault_egress;

int vault_egress_new(const struct vault_egress_config *cfg, struct vault_egress **out);
void vault_egress_free(struct vault_egress *e);
/* Aborts running transfers and refuses new ones (shutdown); signal-unsafe. */
void vault_egress_stop(struct vault_egress *e);

/* One response header line as received, split at the first ':'. */
struct vault_http_hdr {
	char *name;     /* token characters only */
	uint8_t *value; /* trimmed; may hold any byte but CR, LF and NUL */
	size_t vlen;
};

#define VAULT_EGRESS_MAX_HEADERS    100
#define VAULT_EGRESS_MAX_HEADER_LEN 16384

/*
 * Where a response goes.  HEAD is called once, for the final (non-1xx)
 * response, before any BODY call, with the headers that describe the
 * message itself: hop-by-hop headers, Content-Length and Content-Encoding
 * are removed (the body is decoded and may be changed by the scrubber).
 * Returning anything but AAM_OK from a callback aborts the transfer with
 * that code.  CANCELLED (may be NULL) is polled while waiting on the
 * upstream.
 */
struct vault_egress_sink {
	int (*head)(void *ctx, int status, const struct vault_http_hdr *h, size_t n);
	int (*body)(void *ctx, const uint8_t *p, size_t n);
	bool (*cancelled)(void *ctx);
	void *ctx;
};

/* What a transfer did, for logs. */
struct vault_egress_stats {
	long new_connections; /* 0 when a cached connection was reused */
	long http_version;    /* 1 for HTTP/1.x, 2 for HTTP/2, 0 if unknown */
};

struct vault_egress_req {
	const char *method; /* uppercase token */
	const char *url;    /* absolute, already checked */
	struct curl_slist *headers;
	const uint8_t *body;
	size_t body_len;
	long timeout_ms;                  /* 0: the egress default */
	struct vault_egress_stats *stats; /* may be NULL */
};

/*
 * Performs REQ.  AAM_OK once the whole response went to the sink; else
 * the sink's code, AAM_E_TIMEOUT, AAM_E_CRYPTO (TLS verification or
 * handshake), AAM_E_IO (connect, send or receive), AAM_E_CLOSED
 * (cancelled), AAM_E_TOOBIG (too many or too long response headers).
 * WHY gets a short reason that never contains the URL.
 */
int vault_egress_perform(struct vault_egress *e, const struct vault_egress_req *req,
                         const struct vault_egress_sink *sink, char *why, size_t whylen);

/* Wipes every header string of L and frees the list (it may hold a credential). */
void vault_egress_slist_free(struct curl_slist *l);

#endif
