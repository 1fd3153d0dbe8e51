/*
 * aam-mock-saas: small JSON REST upstreams for the tool-call tests, one
 * binary with two modes (a Salesforce-like CRM, tests/mock-crm/, and a
 * GitHub-like API, tests/mock-github/).  Every request must carry the
 * API key the vault injects; every request is recorded as one JSON line
 * (method, path, query, the headers that matter, every header name,
 * whether the key was right — never the key itself — and the body), so a
 * test can see exactly what reached the upstream, or that nothing did.
 *
 *   aam-mock-saas --mode crm|github --port N --record FILE --key-file FILE
 *
 * The key is read from KEY-FILE (one line), never from the command line.
 */
#ifndef AAM_TESTS_MOCK_SAAS_H
#define AAM_TESTS_MOCK_SAAS_H

#include <stdbool.h>

#include <jansson.h>

#include "common/http.h"

/* A request as the mode handlers see it; the key was already checked. */
struct mock_req {
	const struct aam_http_request *http;
	const char *path; /* below the mode's prefix */
	json_t *body;     /* parsed JSON body, or NULL */
};

/* Answers JSON J (stolen) with STATUS. */
int mock_json(struct aam_http_response *resp, unsigned status, json_t *j);
/* {"message": MSG} with STATUS, the shape both APIs use for errors. */
int mock_error(struct aam_http_response *resp, unsigned status, const char *msg);

/* The modes: each answers a request below its prefix. */
int mock_crm_handle(const struct mock_req *r, struct aam_http_response *resp);
int mock_github_handle(const struct mock_req *r, struct aam_http_response *resp);

#endif
