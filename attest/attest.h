/*
 * aam-attest as a library: the HTTP API of docs/ATTEST.md over
 * common/http, backed by the registrations database, the evidence
 * verifiers and the token issuer.  The daemon (main.c) wires it to the
 * configuration and aam-vault; tests drive it in-process.
 */
#ifndef AAM_ATTEST_ATTEST_H
#define AAM_ATTEST_ATTEST_H

#include <stddef.h>
#include <stdint.h>

#include "attest/issuer.h"

#define ATTEST_DEFAULT_PORT        4001
#define ATTEST_NONCE_TTL           60 /* seconds: challenge nonces and TPM sessions */
#define ATTEST_MAX_BODY            (64u * 1024)
#define ATTEST_DEFAULT_FAIL_BURST  10.0        /* failed attempts an address may make at once */
#define ATTEST_DEFAULT_FAIL_RATE   (1.0 / 6.0) /* ... and then one every 6 seconds */
#define ATTEST_CHALLENGE_BURST     120.0       /* challenges an address may ask for at once */
#define ATTEST_CHALLENGE_RATE      10.0        /* ... and then per second */
#define ATTEST_BUNDLE_REFRESH_HINT 60          /* seconds, SPIFFE bundle spiffe_refresh_hint */

struct attest_server_config {
	const char *host;         /* default 127.0.0.1 */
	uint16_t port;            /* 0: ephemeral (tests) */
	const char *db_path;      /* registrations database (created when missing) */
	const char *issuer;       /* "iss" of every token */
	const char *trust_domain; /* NULL: any; else SPIFFE IDs must belong to it */
	const char *const *ek_ca; /* PEM files of trusted EK manufacturer CAs */
	size_t n_ek_ca;
	const struct attest_keysrc *keys; /* the issuer key (copied) */
	unsigned threads;                 /* HTTP worker threads; 0: 4 */
	double fail_burst;                /* 0: ATTEST_DEFAULT_FAIL_BURST */
	double fail_rate;                 /* per second; 0: ATTEST_DEFAULT_FAIL_RATE */
	size_t max_nonces;                /* live challenge nonces; 0: 65536 */
	size_t max_sessions;              /* live TPM sessions; 0: 4096 */
};

struct attest_server;

/*
 * Opens the database, loads the EK trust store and builds the issuer.
 * ERR receives a sentence on failure.  Nothing listens yet.
 */
int attest_server_new(const struct attest_server_config *cfg, struct attest_server **out, char *err,
                      size_t errlen);
/* Starts serving HTTP. */
int attest_server_start(struct attest_server *s);
/* The port bound by attest_server_start. */
uint16_t attest_server_port(const struct attest_server *s);
/*
 * Periodic housekeeping (the daemon calls it every few seconds): forgets
 * expired issued-token records and refreshes the issuer's public keys.
 */
int attest_server_maintain(struct attest_server *s);
/* Stops serving and frees everything.  NULL is fine. */
void attest_server_free(struct attest_server *s);

/* Tests: moves the server's clock forward (nonce and token expiry). */
void attest_server_advance_clock(struct attest_server *s, int64_t seconds);

#endif /* AAM_ATTEST_ATTEST_H */
