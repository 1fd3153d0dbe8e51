/*
 * Destination binding (DESIGN.md invariant 4): a credential is injected
 * only into requests whose URL falls under one of its bindings.
 *
 * The request URL is parsed here, strictly, into normalised parts, and the
 * URL handed to libcurl is rebuilt from those parts, so the check and the
 * connection can never disagree about where the request goes.  What the
 * parser refuses rather than interprets:
 *   - anything but printable ASCII, backslashes and fragments;
 *   - userinfo ("https://api.example.com@evil/");
 *   - a trailing dot, empty labels, and numeric hosts that are not a
 *     canonical dotted quad (0x7f.1, 2130706433, 0177.0.0.1);
 *   - IPv6 zone identifiers, ports with leading zeros or out of range;
 *   - encoded slashes, backslashes, dots and NULs in the path (%2F %5C %2E
 *     %00, and the same double-encoded, %252F ...), and "." or ".."
 *     segments carrying ";parameters".
 * Default ports are made explicit, hosts lowercased, percent-encodings
 * uppercased and dot-segments resolved (RFC 3986 section 5.2.4) before
 * matching.  A binding matches when scheme, host and port are equal and
 * its path is a prefix of the request's path ending on a segment boundary
 * ("/v1" covers "/v1" and "/v1/x", never "/v12").  A hostname binding is
 * never matched by an IP literal, since the strings differ.
 */
#ifndef AAM_VAULT_BINDING_H
#define AAM_VAULT_BINDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define VAULT_URL_MAX 8192

struct vault_url {
	char scheme[8];                /* "https" or "http" */
	char host[256];                /* lowercase; an IPv6 literal without brackets */
	bool host_ipv6;                /* host is an IPv6 literal */
	bool host_ip;                  /* host is an IPv4 or IPv6 literal */
	uint16_t port;                 /* explicit, or the scheme's default */
	char path[VAULT_URL_MAX + 1];  /* normalised, never empty, starts with '/' */
	char query[VAULT_URL_MAX + 1]; /* without the '?'; may be empty */
	bool has_query;
};

/*
 * Parses and normalises URL.  AAM_E_INVAL with a reason in WHY (which
 * never quotes the URL: a query may carry a caller's data).
 */
int vault_url_parse(const char *url, struct vault_url *out, char *why, size_t whylen);

/* Appends scheme://host[:port]path[?query] (default port omitted). */
int vault_url_format(const struct vault_url *u, struct aam_buf *b);

/* The Host header value: host, or [v6], plus ":port" unless default. */
int vault_url_authority(const struct vault_url *u, char *out, size_t outsz);

/* Whether U falls under BINDING (a URL prefix, parsed the same way). */
bool vault_binding_match(const char *binding, const struct vault_url *u);

/*
 * Checks U against NB bindings.  AAM_OK when one matches; AAM_E_DENIED
 * otherwise, WHY naming the component that failed for the closest
 * binding ("scheme", "host", "port" or "path").
 */
int vault_binding_check(const char (*bindings)[512], size_t nb, const struct vault_url *u,
                        char *why, size_t whylen);

#endif
