/*
 * Shared by the vault_*_check integration tests: a throwaway SoftHSM2
 * token, a config file, a real aam-vault process on temporary sockets
 * (stderr captured to a log file), aamctl runs with captured output, and
 * an INJECT client.  Binaries come from $AAM_VAULT_BIN and $AAM_AAMCTL_BIN.
 */
#ifndef AAM_TESTS_VAULT_HARNESS_H
#define AAM_TESTS_VAULT_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/ipc.h"
#include "tests/lib/softhsm.h"

struct vh {
	struct aam_test_softhsm hsm;
	char *dir;
	char cfg[1024], sock_gw[1024], sock_at[1024], sock_admin[1024];
	char state[1024], log[1024];
	char extra[4096]; /* appended to the vault section (indented 2 spaces) */
	pid_t pid;
	int exit_status; /* of the last stopped daemon */
	int nruns;
};

/* Token, folder and config.  EXTRA (may be NULL) goes into the vault section. */
int vh_setup(struct vh *v, const char *extra);
/* Rewrites the config with a new EXTRA (for SIGHUP tests). */
int vh_write_config(struct vh *v, const char *extra);
/* Starts aam-vault and waits until all three sockets answer PING. */
int vh_start(struct vh *v);
/* SIGTERM and wait; returns the exit status (0 on a clean stop). */
int vh_stop(struct vh *v);
void vh_teardown(struct vh *v);

/*
 * Runs aamctl -c CFG ARGS... (NULL-terminated) with STDIN_DATA (may be
 * NULL) on its standard input; *OUT and *ERR (may be NULL) get its
 * output, malloc'd.  Returns the exit status, -1 on failure to run.  All
 * output is also appended to DIR/aamctl.out for the leak search.
 */
int vh_aamctl(struct vh *v, const char *stdin_data, char **out, char **err, ...);

struct aam_ipc_client *vh_connect(const char *sock);

/* A streamed INJECT response as the caller sees it. */
struct vh_resp {
	int rc;        /* AAM_OK or the error frame's code */
	char msg[300]; /* the error message */
	int status;
	struct aam_buf headers; /* "name: value\n" per header */
	struct aam_buf body;
	size_t body_frames;
	bool head_first;             /* the head frame came before every body frame */
	uint32_t credential_version; /* the head's credential version (0: not sent) */
};

/*
 * Sends an INJECT (HDRS: name, value pairs, NULL-terminated; may be NULL),
 * the body in INJECT_BODY frames when it does not fit in one, and
 * collects the response.  Call vh_resp_free afterwards.
 */
int vh_inject(struct aam_ipc_client *c, const char *cred, const char *scope, const char *method,
              const char *url, const char *const *hdrs, const void *body, size_t blen,
              struct vh_resp *out);
void vh_resp_free(struct vh_resp *r);

/* Whether HAY[0..N) contains NEEDLE (binary-safe). */
bool vh_contains(const void *hay, size_t n, const char *needle);
/* Whether any file under DIR contains NEEDLE (N bytes). */
bool vh_tree_contains(const char *dir, const void *needle, size_t n);

/*
 * The audit log's state from AUDIT_INFO on the admin socket: origin, size
 * and the size the newest signed checkpoint covers.
 */
int vh_audit_info(const struct vh *v, char *origin, size_t originsz, uint64_t *size,
                  uint64_t *signed_size);
/* Waits (polling) until a signed checkpoint covers the whole log; AAM_E_TIMEOUT after TIMEOUT_MS.
 */
int vh_audit_wait_signed(const struct vh *v, int timeout_ms);

#endif
