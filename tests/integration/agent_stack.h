/*
 * Shared by the agent_*_check integration tests and the e2e stack driver:
 * the real daemons an agent talks to — aam-vault on a SoftHSM2 token (its
 * issuer key made by `aamctl keys init`), the aam-attest daemon signing
 * through it — plus helpers to run aam-agent and aamctl, and a fake
 * gateway that checks what the sidecar forwards exactly as the real one
 * would: the token against aam-attest's JWKS and the DPoP proof with
 * common/jose's aam_dpop_verify.
 *
 * Binaries come from $AAM_VAULT_BIN, $AAM_AAMCTL_BIN, $AAM_ATTEST_BIN and
 * $AAM_AGENT_BIN.
 */
#ifndef AAM_TESTS_AGENT_STACK_H
#define AAM_TESTS_AGENT_STACK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "common/jose.h"
#include "tests/integration/vault_harness.h"

#define STACK_ISSUER "https://attest.aam.test"
#define STACK_PATH   1200

struct agent_stack {
	struct vh v;
	bool vault_up;
	pid_t attest_pid;
	int attest_port;
	char attest_url[64];
	char attest_log[STACK_PATH];
	char db[STACK_PATH];
};

/* Whether the binaries are there (else tests skip, saying which is missing). */
bool stack_available(const char **missing);

/*
 * Vault (with `aamctl keys init`) and aam-attest, whose attest section
 * trusts the EK CA files EK_CA (may be empty).  Returns 0 on success.
 */
int stack_start(struct agent_stack *s, const char *const *ek_ca, size_t n_ek_ca);
void stack_stop(struct agent_stack *s);

/* aamctl -c <stack config> ARGS... (NULL-terminated); output as vh_aamctl. */
int stack_aamctl(struct agent_stack *s, char **out, char **err, ...);

/*
 * Writes an agent config at PATH: a log section and an agent section with
 * attest_url set to the stack's, plus BODY (lines indented two spaces).
 */
int stack_write_agent_config(const struct agent_stack *s, const char *path, const char *body);

/*
 * Runs aam-agent -c CONFIG ARGS... (NULL-terminated).  *OUT and *ERR (may
 * be NULL) receive its output (malloc'd).  Returns the exit status, -1
 * when it could not run or was killed.
 */
int stack_agent(const char *config, char **out, char **err, ...);

/* Starts `aam-agent -c CONFIG sidecar`, stderr to LOG; its pid or -1. */
pid_t stack_sidecar_spawn(const char *config, const char *log);
/*
 * SIGTERM, wait (SIGKILL after 10 s); the exit status (128 + signal when
 * killed by one).  When that is not 0 and LOG is not NULL, the sidecar's
 * log goes to stderr so a failed run shows why (an ASan report, a panic).
 */
int stack_sidecar_stop(pid_t pid, const char *log);

/* GET URL; *BODY (may be NULL) receives the body (malloc'd).  The status, or -1. */
long stack_http_get(const char *url, char **body);

/*
 * Verifies TOKEN with the JWKS aam-attest serves, and its iss and aud
 * (AUD).  Returns the claims (a new reference) or NULL.
 */
json_t *stack_verify_token(const struct agent_stack *s, const char *token, const char *aud);

/*
 * Generates an EC P-256 key pair labelled LABEL in HSM's token (private:
 * sensitive, not extractable, sign; public: verify) and writes its RFC 7638
 * thumbprint, computed from CKA_EC_POINT, into JKT.  HSM's module must not
 * be initialised in this process.  Returns 0 on success.
 */
int stack_p11_make_key(const struct aam_test_softhsm *hsm, const char *label, char jkt[48]);

/* ---- the fake gateway ------------------------------------------------------------ */

#define FG_MAX_RECORDS 64
#define FG_NONCE       "gw-nonce-7f3a"

/* What the fake gateway saw of one request. */
struct fg_record {
	char method[16];
	char path[256];
	char query_a[64];       /* value of query parameter "a", "" when absent */
	char authorization[16]; /* the scheme of Authorization ("DPoP", "Bearer", "") */
	bool x_api_key;         /* an X-Api-Key header arrived */
	bool api_key;           /* an Api-Key header arrived */
	char anthropic_version[32];
	char mcp_session[64]; /* Mcp-Session-Id sent by the client */
	bool token_ok;        /* the token verified against the JWKS, iss and aud */
	bool dpop_ok;         /* the proof verified (htm, htu, ath, jkt = cnf.jkt, replay) */
	char dpop_why[48];    /* aam_jose_reason_str of a failed proof */
	bool dpop_nonce;      /* the proof carried the gateway's nonce */
	char jti[64];         /* the token's jti */
	char jkt[48];         /* the token's cnf.jkt */
	size_t body_len;
	char body_head[128]; /* the first bytes of the body */
};

struct fake_gw {
	struct aam_http_server *srv;
	uint16_t port;
	char url[64]; /* http://127.0.0.1:PORT */
	char audience[128];
	struct aam_jwks jwks;
	struct aam_dpop_replay *replay;
	pthread_mutex_t mu;
	struct fg_record rec[FG_MAX_RECORDS];
	size_t nrec;
};

/*
 * Starts the fake gateway on an ephemeral port; tokens must carry AUDIENCE
 * (NULL: its own URL) and verify with the JWKS fetched from S now.
 *   /stream        three SSE events 400 ms apart
 *   /nonce         401 with DPoP-Nonce until a proof carries FG_NONCE
 *   /status/404    a 404 JSON error
 *   anything else  200 {"ok":true,"path":...} with Mcp-Session-Id: sess-42
 */
int fg_start(struct fake_gw *g, const struct agent_stack *s, const char *audience);
void fg_stop(struct fake_gw *g);
/* A copy of record I (0 = first); false when there is none. */
bool fg_record(struct fake_gw *g, size_t i, struct fg_record *out);
size_t fg_count(struct fake_gw *g);

#endif /* AAM_TESTS_AGENT_STACK_H */
