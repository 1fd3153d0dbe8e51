/*
 * A local HTTPS upstream for tests, on 127.0.0.1 with a throwaway CA.
 *
 * At start a CA key and certificate, and a server certificate for
 * "localhost" and 127.0.0.1 signed by it, are generated in memory with
 * OpenSSL; only the CA certificate is written (DIR/echo-ca.pem) for the
 * client's CA bundle.  Nothing is committed and nothing is reused.
 *
 * HTTP/1.1 with keep-alive; request bodies by Content-Length.  Every
 * request is recorded (request line, headers and body, as received).
 * Responses by path (the first matching rule wins):
 *   .../redirect   302 with Location: https://evil.example/stolen
 *   .../split      200, the raw request echoed back, chunked, 3 bytes per
 *                  chunk, each flushed separately with a short pause
 *   .../sse        200 text/event-stream: "data: one\n\n", then waits for
 *                  aam_test_https_echo_release() (10 s at most), then
 *                  "data: two\n\n" and the end
 *   .../slow       200, chunked: a line every 50 ms for 20 s, stopping when
 *                  the client goes away (counted as an abort)
 *   .../sink       200, "len=N sha256=HEX" of the request body
 *   .../token      an OAuth 2.0 token endpoint: 200 with
 *                  {"access_token":TOKEN,"token_type":"Bearer","expires_in":3600}
 *   .../status/NNN status NNN with the raw request as body
 *   anything else  200 text/plain with the raw request as body
 */
#ifndef AAM_TESTS_HTTPS_ECHO_H
#define AAM_TESTS_HTTPS_ECHO_H

#include <stddef.h>

struct aam_test_https_echo;

/* Starts the server; DIR receives echo-ca.pem.  Returns 0 or -1. */
int aam_test_https_echo_start(const char *dir, struct aam_test_https_echo **out);
/* Stops every thread and frees; NULL is fine. */
void aam_test_https_echo_stop(struct aam_test_https_echo *e);

int aam_test_https_echo_port(const struct aam_test_https_echo *e);
const char *aam_test_https_echo_ca(const struct aam_test_https_echo *e);

/* Requests received so far, and streams whose client went away mid-response. */
size_t aam_test_https_echo_count(struct aam_test_https_echo *e);
size_t aam_test_https_echo_aborts(struct aam_test_https_echo *e);

/*
 * The Nth most recent request (0 = the last) as received: request line,
 * headers and body.  malloc'd and NUL-terminated (*LEN without it); NULL
 * when there is no such request.  The last 64 are kept.
 */
char *aam_test_https_echo_request(struct aam_test_https_echo *e, size_t n, size_t *len);

/* The access token .../token hands out. */
void aam_test_https_echo_set_token(struct aam_test_https_echo *e, const char *token);

/* Lets a waiting .../sse response continue. */
void aam_test_https_echo_release(struct aam_test_https_echo *e);

#endif
