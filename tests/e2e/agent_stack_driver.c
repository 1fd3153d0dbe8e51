/*
 * aam-e2e-agent-stack: brings up what an agent needs for the node
 * end-to-end tests, and takes it down again.
 *
 * Starts aam-vault on a throwaway SoftHSM2 token (issuer key from `aamctl
 * keys init`) and the aam-attest daemon, creates an EC P-256 agent key in
 * a second throwaway token, registers the workload with `aamctl workload
 * register --method pkcs11 --jwk` and writes an aam-agent config.  Then it
 * prints ONE line of JSON on stdout:
 *
 *   {"attest_url","jwks_url","issuer","audience","spiffe_id","jkt",
 *    "agent_config","softhsm2_conf"}
 *
 * and waits until its standard input closes (or SIGTERM/SIGINT), then
 * stops the daemons and removes every folder.  A node test that dies
 * closes the pipe, so nothing outlives it.  Exit 0 on a clean run, 1 when
 * the stack could not start (the reason on stderr).
 *
 * Binaries come from $AAM_VAULT_BIN, $AAM_AAMCTL_BIN, $AAM_ATTEST_BIN and
 * $AAM_AGENT_BIN.
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "aam/err.h"
#include "tests/integration/agent_stack.h"
#include "tests/lib/softhsm.h"
#include "tests/lib/testutil.h"

#define ID       "spiffe://prod/agent/e2e-jose"
#define AUDIENCE "http://127.0.0.1:4000"
#define LABEL    "agent-key"

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Waits for EOF on stdin or a signal. */
static void
wait_for_end(void)
{
	char buf[256];
	while (!stop) {
		struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
		int n = poll(&p, 1, 500);
		if (n < 0)
			continue; /* EINTR: the loop checks STOP */
		if (n == 0)
			continue;
		ssize_t r = read(STDIN_FILENO, buf, sizeof(buf));
		if (r <= 0)
			return;
	}
}

/* `aam-agent identity`'s JWK into a file, for `aamctl workload register --jwk`. */
static int
write_jwk(const char *cfg, const char *path)
{
	char *out = NULL, *err = NULL;
	int rc = stack_agent(cfg, &out, &err, "identity", NULL);
	json_t *j = rc == 0 ? json_loads(out, 0, NULL) : NULL;
	char *jwk = j != NULL ? json_dumps(json_object_get(j, "jwk"), JSON_COMPACT) : NULL;
	rc = jwk != NULL ? aam_test_write_file(path, jwk, strlen(jwk), 0600) : -1;
	if (rc != 0)
		fprintf(stderr, "aam-agent identity failed: %s\n", err != NULL ? err : "");
	free(jwk);
	json_decref(j);
	free(out);
	free(err);
	return rc;
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	const char *missing = NULL;
	if (!stack_available(&missing)) {
		fprintf(stderr, "aam-e2e-agent-stack: %s not available\n", missing);
		return 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct agent_stack st;
	struct aam_test_softhsm hsm;
	memset(&hsm, 0, sizeof(hsm));
	int rc = stack_start(&st, NULL, 0);
	char jkt[48] = "", cfg[STACK_PATH] = "", jwk[STACK_PATH], body[4096];
	if (rc == 0)
		rc = aam_test_softhsm_start(&hsm, "aam-e2e-agent") == AAM_OK ? 0 : -1;
	if (rc == 0)
		rc = stack_p11_make_key(&hsm, LABEL, jkt);
	if (rc == 0) {
		snprintf(cfg, sizeof(cfg), "%s/agent.yaml", st.v.dir);
		snprintf(body, sizeof(body),
		         "  audience: %s\n  spiffe_id: %s\n"
		         "  pkcs11_key: \"%s;object=%s;type=private\"\n"
		         "  pkcs11_module: %s\n  pin_file: %s\n",
		         AUDIENCE, ID, hsm.token_uri, LABEL, hsm.module_path, hsm.user_pin_file);
		rc = stack_write_agent_config(&st, cfg, body);
	}
	snprintf(jwk, sizeof(jwk), "%s/agent.jwk", st.v.dir != NULL ? st.v.dir : "/nonexistent");
	if (rc == 0)
		rc = write_jwk(cfg, jwk);
	if (rc == 0) {
		char *out = NULL, *err = NULL;
		rc = stack_aamctl(&st, &out, &err, "workload", "register", ID, "--method", "pkcs11",
		                  "--owner", "carol@example.com", "--team", "platform", "--env",
		                  "staging", "--deployment", "e2e-v1", "--audience", AUDIENCE,
		                  "--jwk", jwk, "--ttl", "2m", NULL);
		if (rc != 0)
			fprintf(stderr, "aamctl workload register: %s%s\n", out ? out : "",
			        err ? err : "");
		free(out);
		free(err);
	}
	if (rc == 0) {
		char jwks[128];
		snprintf(jwks, sizeof(jwks), "%s/.well-known/jwks.json", st.attest_url);
		json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "attest_url",
		                      st.attest_url, "jwks_url", jwks, "issuer", STACK_ISSUER,
		                      "audience", AUDIENCE, "spiffe_id", ID, "jkt", jkt,
		                      "agent_config", cfg, "softhsm2_conf", hsm.conf_path);
		char *line = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
		rc = line != NULL && printf("%s\n", line) > 0 && fflush(stdout) == 0 ? 0 : -1;
		free(line);
		json_decref(j);
	}
	if (rc == 0)
		wait_for_end();
	else
		fprintf(stderr, "aam-e2e-agent-stack: the stack did not start\n");
	aam_test_softhsm_stop(&hsm);
	stack_stop(&st);
	curl_global_cleanup();
	return rc == 0 ? 0 : 1;
}
