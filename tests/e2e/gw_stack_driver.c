/*
 * aam-e2e-gw-stack: the whole model path for the SDK end-to-end tests and
 * the gateway benchmark, every piece a real process on loopback:
 *
 *   SDK -> aam-agent sidecar (DPoP, key in SoftHSM2)
 *       -> aam-gateway (authn, policy, budget, audit, router)
 *       -> aam-vault INJECT (the demo provider key, in SoftHSM2)
 *       -> aam-mock-provider (answers 401 unless the key arrived)
 *
 * It starts aam-vault and aam-attest (tests/integration/agent_stack.c),
 * generates a demo provider key into a 0600 file and stores it in the
 * vault from stdin (`aamctl secret put`, once as a bearer token for the
 * OpenAI wire and once as an x-api-key header for the Anthropic wire,
 * both bound to the mocks' URLs), starts three mock providers (a good
 * one, one answering every request 429, one answering 500) that all
 * require that key, writes a routes file and a policy, registers the
 * agent's PKCS#11 key (`aamctl workload register`), mints a virtual key
 * (`aamctl key create`), and starts aam-gateway and the aam-agent
 * sidecar.  Then it prints ONE line of JSON on stdout:
 *
 *   {"sidecar_url","gateway_url","attest_url","vkey","vkey_alias","vkey_workload",
 *    "spiffe_id","provider_key_file","mock_url","mock_stats_url","mock_last_url",
 *    "mock_429_url","mock_500_url","chunk_delay_ms","config","aamctl",
 *    "gateway_log","audit_backend","pids":{"gateway","vault","sidecar",
 *    "mock","attest"},"routes":{...}}
 *
 * and waits until its standard input closes (or SIGTERM/SIGINT); then it
 * stops everything and removes every folder.  Exit 0 on a clean run, 1
 * when the stack could not start (the reason and the daemons' logs on
 * stderr).
 *
 * `--bench` starts the mock without a chunk delay and the daemons at log
 * level warn, for bench/gateway/run.sh.
 *
 * `--mcp` adds the tool path for MCP clients: the SDK-built test MCP
 * server (tests/mcp/server.mjs, run with $AAM_NODE_BIN), which requires
 * the demo key in X-API-Key; that key in the vault as `docs-mcp-key`
 * (type header, bound to the server's URL); a tool catalogue file naming
 * the server `docs`, given to the gateway with `gateway.tools`; and the
 * policy tests/mcp/docs-reader.yaml for the sidecar's workload (search,
 * whoami, lookup when id <= 100, resources and prompts; delete_page
 * denied).
 * The JSON line then has "mcp":{"server_url","record","policy","tools"}.
 *
 * Binaries come from $AAM_VAULT_BIN, $AAM_AAMCTL_BIN, $AAM_ATTEST_BIN,
 * $AAM_AGENT_BIN, $AAM_GATEWAY_BIN and $AAM_MOCK_PROVIDER_BIN.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/rand.h>

#include "aam/err.h"
#include "tests/integration/agent_stack.h"
#include "common/secret.h"
#include "tests/lib/softhsm.h"
#include "tests/lib/testutil.h"

#define ID        "spiffe://prod/agent/e2e-gw"
#define ID_VKEY   "spiffe://prod/agent/e2e-gw-legacy"
#define LABEL     "agent-key"
#define VKEY_NAME "e2e-gw-legacy-app"
/* Long enough for two SSE events to be told apart on the client's clock. */
#define CHUNK_DELAY_MS 120

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void
nap_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* Waits for EOF on stdin or a signal. */
static void
wait_for_end(void)
{
	char buf[256];
	while (!stop) {
		struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
		int n = poll(&p, 1, 500);
		if (n <= 0)
			continue; /* timeout or EINTR: the loop checks STOP */
		ssize_t r = read(STDIN_FILENO, buf, sizeof(buf));
		if (r <= 0)
			return;
	}
}

/* ---- processes ------------------------------------------------------------------------ */

/* Forks and execs ARGV with stdin/stdout on /dev/null and stderr appended to LOG. */
static pid_t
spawn(char *const argv[], const char *log)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		/* A driver that dies must not leave daemons behind. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int nul = open("/dev/null", O_RDWR);
		if (fd < 0 || nul < 0)
			_exit(127);
		dup2(nul, STDIN_FILENO);
		dup2(nul, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static void
stop_pid(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	int st = 0;
	for (int i = 0; i < 200 && waitpid(*pid, &st, WNOHANG) == 0; i++)
		nap_ms(50);
	if (waitpid(*pid, &st, WNOHANG) == 0) {
		kill(*pid, SIGKILL);
		waitpid(*pid, &st, 0);
	}
	*pid = -1;
}

/* Polls URL until it answers WANT; false when PID died or MS passed. */
static bool
wait_http(const char *url, long want, pid_t pid, int ms, char **body)
{
	for (int waited = 0; waited < ms; waited += 100) {
		int st;
		if (pid > 0 && waitpid(pid, &st, WNOHANG) == pid)
			return false;
		char *b = NULL;
		long s = stack_http_get(url, &b);
		if (s == want) {
			if (body != NULL)
				*body = b;
			else
				free(b);
			return true;
		}
		free(b);
		nap_ms(100);
	}
	return false;
}

static void
dump(const char *label, const char *path)
{
	char *log = aam_test_read_file(path, NULL);
	if (log != NULL)
		fprintf(stderr, "---- %s (%s) ----\n%s---- end ----\n", label, path, log);
	free(log);
}

/* ---- the pieces ----------------------------------------------------------------------- */

struct mock {
	pid_t pid;
	int port;
	char url[64], log[STACK_PATH];
};

/* The test MCP server (--mcp). */
struct mcp_up {
	pid_t pid;
	char url[64], record[STACK_PATH], log[STACK_PATH], tools[STACK_PATH];
};

struct drv {
	struct agent_stack st;
	struct aam_test_softhsm hsm;
	bool bench, with_mcp;
	struct mcp_up mcp;
	char dir[900]; /* short enough for every file name below it */
	char keyfile[STACK_PATH], routes[STACK_PATH], policies[STACK_PATH];
	char agent_cfg[STACK_PATH], gw_log[STACK_PATH], side_log[STACK_PATH];
	struct mock ok, r429, r500;
	int gw_port, side_port;
	char gw_url[64], side_url[64];
	pid_t gw_pid, side_pid;
	char vkey[128];
	char audit_backend[32];
};

/* Starts a mock provider on a free port; EXTRA are more flags (NULL-terminated list). */
static int
mock_start(struct drv *d, struct mock *m, const char *name, const char *const *extra)
{
	const char *bin = getenv("AAM_MOCK_PROVIDER_BIN");
	m->port = aam_test_free_port();
	snprintf(m->url, sizeof(m->url), "http://127.0.0.1:%d", m->port);
	snprintf(m->log, sizeof(m->log), "%s/mock-%s.log", d->dir, name);
	char port[16];
	snprintf(port, sizeof(port), "%d", m->port);
	char *argv[24];
	int n = 0;
	argv[n++] = (char *)(uintptr_t)bin;
	argv[n++] = (char *)(uintptr_t) "--port";
	argv[n++] = port;
	argv[n++] = (char *)(uintptr_t) "--require-key";
	argv[n++] = d->keyfile;
	for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 22; i++)
		argv[n++] = (char *)(uintptr_t)extra[i];
	argv[n] = NULL;
	m->pid = spawn(argv, m->log);
	char url[128];
	snprintf(url, sizeof(url), "%s/_mock/stats", m->url);
	if (m->pid < 0 || !wait_http(url, 200, m->pid, 15000, NULL)) {
		fprintf(stderr, "aam-e2e-gw-stack: mock provider %s did not start\n", name);
		dump("aam-mock-provider", m->log);
		return -1;
	}
	return 0;
}

/* A random demo provider key, "sk-demo-" + 48 hex digits, into a 0600 file. */
static int
make_provider_key(struct drv *d, char key[64])
{
	uint8_t r[24];
	if (RAND_bytes(r, sizeof(r)) != 1)
		return -1;
	int n = snprintf(key, 64, "sk-demo-");
	for (size_t i = 0; i < sizeof(r); i++)
		n += snprintf(key + n, 64 - (size_t)n, "%02x", r[i]);
	snprintf(d->keyfile, sizeof(d->keyfile), "%s/provider.key", d->dir);
	return aam_test_write_file(d->keyfile, key, (size_t)n, 0600);
}

/*
 * `aamctl secret put NAME --type TYPE [--header H] --bind URL...`, the
 * value on stdin; bound to the mock providers, or to BIND alone when set.
 */
static int
secret_put(struct drv *d, const char *key, const char *name, const char *type, const char *hdr,
           const char *bind)
{
	char *out = NULL, *err = NULL;
	int rc;
	if (bind != NULL)
		rc = vh_aamctl(&d->st.v, key, &out, &err, "secret", "put", name, "--type", type,
		               "--header", hdr, "--bind", bind, NULL);
	else if (hdr != NULL)
		rc = vh_aamctl(&d->st.v, key, &out, &err, "secret", "put", name, "--type", type,
		               "--header", hdr, "--bind", d->ok.url, "--bind", d->r429.url,
		               "--bind", d->r500.url, NULL);
	else
		rc = vh_aamctl(&d->st.v, key, &out, &err, "secret", "put", name, "--type", type,
		               "--bind", d->ok.url, "--bind", d->r429.url, "--bind", d->r500.url,
		               NULL);
	if (rc != 0)
		fprintf(stderr, "aamctl secret put %s: %s%s\n", name, out ? out : "",
		        err ? err : "");
	free(out);
	free(err);
	return rc;
}

static int
write_routes(struct drv *d)
{
	/*
	 * Little cooldown (the most failures allowed, a 1 s cooldown) so the error routes
	 * answer the same status every time; one retry, short retry-after.
	 */
	char text[8192];
	int n = snprintf(text, sizeof(text),
	                 "model_list:\n"
	                 "  - model_name: mock-gpt\n"
	                 "    deployments:\n"
	                 "      - provider: openai\n"
	                 "        model: mock-gpt-4o\n"
	                 "        api_base: %s\n"
	                 "        credential: mock-openai-key\n"
	                 "        cost: { input_per_mtok: 1.0, output_per_mtok: 2.0 }\n"
	                 "  - model_name: mock-claude\n"
	                 "    deployments:\n"
	                 "      - provider: anthropic\n"
	                 "        model: mock-claude-sonnet\n"
	                 "        api_base: %s\n"
	                 "        credential: mock-anthropic-key\n"
	                 "        cost: { input_per_mtok: 3.0, output_per_mtok: 15.0 }\n"
	                 "  - model_name: cross-claude\n"
	                 "    deployments:\n"
	                 "      - provider: anthropic\n"
	                 "        model: mock-claude-haiku\n"
	                 "        api_base: %s\n"
	                 "        credential: mock-anthropic-key\n"
	                 "        cost: { input_per_mtok: 1.0, output_per_mtok: 5.0 }\n"
	                 "  - model_name: cross-gpt\n"
	                 "    deployments:\n"
	                 "      - provider: openai\n"
	                 "        model: mock-gpt-4o-mini\n"
	                 "        api_base: %s\n"
	                 "        credential: mock-openai-key\n"
	                 "        cost: { input_per_mtok: 0.5, output_per_mtok: 1.5 }\n"
	                 "  - model_name: mock-429\n"
	                 "    deployments:\n"
	                 "      - provider: openai\n"
	                 "        model: mock-gpt-busy\n"
	                 "        api_base: %s\n"
	                 "        credential: mock-openai-key\n"
	                 "  - model_name: mock-500\n"
	                 "    deployments:\n"
	                 "      - provider: openai\n"
	                 "        model: mock-gpt-broken\n"
	                 "        api_base: %s\n"
	                 "        credential: mock-openai-key\n"
	                 "  - model_name: claude-500\n"
	                 "    deployments:\n"
	                 "      - provider: anthropic\n"
	                 "        model: mock-claude-broken\n"
	                 "        api_base: %s\n"
	                 "        credential: mock-anthropic-key\n"
	                 "router_settings:\n"
	                 "  routing_strategy: simple-shuffle\n"
	                 "  num_retries: 1\n"
	                 "  retry_after_max: 1s\n"
	                 "  allowed_fails: 16\n"
	                 "  cooldown_time: 1s\n"
	                 "  timeout: 30s\n",
	                 d->ok.url, d->ok.url, d->ok.url, d->ok.url, d->r429.url, d->r500.url,
	                 d->r500.url);
	snprintf(d->routes, sizeof(d->routes), "%s/routes.yaml", d->dir);
	return n > 0 && (size_t)n < sizeof(text)
	               ? aam_test_write_file(d->routes, text, (size_t)n, 0600)
	               : -1;
}

static int
write_policies(struct drv *d)
{
	/*
	 * `no-such-route` is allowed by policy but not a route (404 from the
	 * router); `forbidden-model` is denied explicitly (403).  The budget
	 * keeps the budget path on without ever being reached.
	 */
	static const char text[] =
	        "apiVersion: access.envisionai.dev/v1\n"
	        "kind: AgentPolicy\n"
	        "metadata:\n  name: e2e-gw-models\n"
	        "spec:\n"
	        "  identity:\n    workload: spiffe://prod/agent/**\n"
	        "  models:\n"
	        "    allow: [mock-gpt, mock-claude, cross-claude, cross-gpt, mock-429, mock-500,\n"
	        "            claude-500, no-such-route]\n"
	        "    deny: [forbidden-model]\n"
	        "    budget: { daily_usd: 1000000, monthly_usd: 10000000 }\n"
	        /* Per-workload rate limits (openai_sdk.test.mjs, "rate limits"). */
	        "---\n"
	        "apiVersion: access.envisionai.dev/v1\n"
	        "kind: AgentPolicy\n"
	        "metadata:\n  name: e2e-gw-limited\n"
	        "spec:\n"
	        "  identity:\n    workload: spiffe://prod/agent/e2e-limited\n"
	        "  models:\n"
	        "    allow: [mock-gpt]\n"
	        "    limits: { rpm: 2 }\n";
	/*
	 * --mcp: what the sidecar's workload may do with the test MCP server's
	 * tools: the policy tests/mcp/e2e.test.mjs expects, for this workload.
	 */
	char *tools = NULL;
	if (d->with_mcp) {
		char *path = aam_test_source_path("tests/mcp/docs-reader.yaml");
		char *doc = path != NULL ? aam_test_read_file(path, NULL) : NULL;
		const char *from = "spiffe://prod/agent/docs-bot";
		char *at = doc != NULL ? strstr(doc, from) : NULL;
		if (at == NULL || asprintf(&tools, "---\n%.*s%s%s", (int)(at - doc), doc, ID,
		                           at + strlen(from)) < 0)
			tools = NULL;
		free(doc);
		free(path);
		if (tools == NULL) {
			fprintf(stderr, "aam-e2e-gw-stack: tests/mcp/docs-reader.yaml unusable\n");
			return -1;
		}
	}
	char *all = NULL;
	if (asprintf(&all, "%s%s", text, tools != NULL ? tools : "") < 0)
		all = NULL;
	free(tools);
	if (all == NULL)
		return -1;
	snprintf(d->policies, sizeof(d->policies), "%s/policies.yaml", d->dir);
	int rc = aam_test_write_file(d->policies, all, strlen(all), 0600);
	free(all);
	return rc;
}

/*
 * --mcp: the SDK-built test MCP server on a free port, requiring the demo
 * key (the provider key file) in X-API-Key and recording every request;
 * the key in the vault as docs-mcp-key; the catalogue naming the server.
 */
static int
mcp_start(struct drv *d, const char *key)
{
	const char *node = getenv("AAM_NODE_BIN");
	char *script = aam_test_source_path("tests/mcp/server.mjs");
	int port = aam_test_free_port();
	snprintf(d->mcp.url, sizeof(d->mcp.url), "http://127.0.0.1:%d/mcp", port);
	snprintf(d->mcp.record, sizeof(d->mcp.record), "%s/mcp-requests.jsonl", d->dir);
	snprintf(d->mcp.log, sizeof(d->mcp.log), "%s/mcp-server.log", d->dir);
	char env_port[32];
	snprintf(env_port, sizeof(env_port), "%d", port);
	/* The child inherits these; nothing else in the driver reads them. */
	setenv("MCP_PORT", env_port, 1);
	setenv("MCP_KEY_FILE", d->keyfile, 1);
	setenv("MCP_RECORD", d->mcp.record, 1);
	int rc = node != NULL && script != NULL &&
	                         aam_test_write_file(d->mcp.record, "", 0, 0600) == 0
	                 ? 0
	                 : -1;
	if (rc == 0) {
		char *argv[] = {(char *)(uintptr_t)node, script, NULL};
		d->mcp.pid = spawn(argv, d->mcp.log);
		/* Up when it refuses a request without the key. */
		if (d->mcp.pid < 0 || !wait_http(d->mcp.url, 401, d->mcp.pid, 20000, NULL)) {
			fprintf(stderr, "aam-e2e-gw-stack: the test MCP server did not start\n");
			dump("tests/mcp/server.mjs", d->mcp.log);
			rc = -1;
		}
	}
	/* The record starts after that probe: every request in it is then the gateway's. */
	if (rc == 0)
		rc = aam_test_write_file(d->mcp.record, "", 0, 0600);
	free(script);
	if (rc == 0)
		rc = secret_put(d, key, "docs-mcp-key", "header", "X-API-Key", d->mcp.url);
	char text[1024];
	int n = snprintf(text, sizeof(text),
	                 "apiVersion: access.envisionai.dev/v1\nkind: ToolCatalog\n"
	                 "metadata:\n  name: e2e-mcp\nspec:\n  mcp_servers:\n"
	                 "    - name: docs\n      url: %s\n      credential: docs-mcp-key\n",
	                 d->mcp.url);
	snprintf(d->mcp.tools, sizeof(d->mcp.tools), "%s/e2e-tools.yaml", d->dir);
	if (rc == 0)
		rc = n > 0 && (size_t)n < sizeof(text)
		             ? aam_test_write_file(d->mcp.tools, text, (size_t)n, 0600)
		             : -1;
	return rc;
}

/* Appends the gateway section to the stack's config (the daemons already read theirs). */
static int
write_gateway_config(struct drv *d)
{
	size_t len = 0;
	char *cfg = aam_test_read_file(d->st.v.cfg, &len);
	if (cfg == NULL)
		return -1;
	char text[16384];
	int n = snprintf(text, sizeof(text),
	                 "%s"
	                 "gateway:\n"
	                 "  listen: 127.0.0.1:%d\n"
	                 "  policies: %s\n"
	                 "  routes: %s\n"
	                 "  db: %s/gateway.db\n"
	                 "  vault_socket: %s\n"
	                 "  attest_url: %s\n"
	                 "  issuer: %s\n"
	                 "  revocation_poll: 1s\n"
	                 "  jwks_refresh: 1s\n"
	                 "  max_connections: 4096\n"
	                 "%s%s%s",
	                 cfg, d->gw_port, d->policies, d->routes, d->dir, d->st.v.sock_gw,
	                 d->st.attest_url, STACK_ISSUER, d->with_mcp ? "  tools: " : "",
	                 d->with_mcp ? d->mcp.tools : "", d->with_mcp ? "\n" : "");
	free(cfg);
	if (n < 0 || (size_t)n >= sizeof(text))
		return -1;
	if (d->bench) {
		/* Per-request info lines would cost more than the request. */
		char *lvl = strstr(text, "level: info");
		if (lvl != NULL)
			memcpy(lvl, "level: warn", 11);
	}
	return aam_test_write_file(d->st.v.cfg, text, (size_t)n, 0600);
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

static int
register_agent(struct drv *d)
{
	char jkt[48] = "", jwk[STACK_PATH], body[4096];
	if (aam_test_softhsm_start(&d->hsm, "aam-e2e-gw-agent") != AAM_OK ||
	    stack_p11_make_key(&d->hsm, LABEL, jkt) != 0)
		return -1;
	snprintf(d->agent_cfg, sizeof(d->agent_cfg), "%s/agent.yaml", d->dir);
	snprintf(body, sizeof(body),
	         "  listen: 127.0.0.1:%d\n  gateway_url: %s\n  audience: %s\n  spiffe_id: %s\n"
	         "  pkcs11_key: \"%s;object=%s;type=private\"\n"
	         "  pkcs11_module: %s\n  pin_file: %s\n",
	         d->side_port, d->gw_url, d->gw_url, ID, d->hsm.token_uri, LABEL,
	         d->hsm.module_path, d->hsm.user_pin_file);
	if (stack_write_agent_config(&d->st, d->agent_cfg, body) != 0)
		return -1;
	snprintf(jwk, sizeof(jwk), "%s/agent.jwk", d->dir);
	if (write_jwk(d->agent_cfg, jwk) != 0)
		return -1;
	char *out = NULL, *err = NULL;
	int rc = stack_aamctl(&d->st, &out, &err, "workload", "register", ID, "--method", "pkcs11",
	                      "--owner", "carol@example.com", "--team", "platform", "--env",
	                      "staging", "--deployment", "e2e-gw-v1", "--audience", d->gw_url,
	                      "--jwk", jwk, NULL);
	if (rc != 0)
		fprintf(stderr, "aamctl workload register: %s%s\n", out ? out : "", err ? err : "");
	free(out);
	free(err);
	return rc;
}

static int
mint_vkey(struct drv *d)
{
	char *out = NULL, *err = NULL;
	int rc = stack_aamctl(&d->st, &out, &err, "key", "create", "--workload", ID_VKEY, "--owner",
	                      "bob@example.com", "--team", "legacy", "--alias", VKEY_NAME, NULL);
	if (rc == 0 && out != NULL) {
		out[strcspn(out, "\r\n")] = '\0';
		if (strncmp(out, "sk-aam-", 7) != 0 || strlen(out) >= sizeof(d->vkey))
			rc = -1;
		else
			snprintf(d->vkey, sizeof(d->vkey), "%s", out);
	}
	if (rc != 0)
		fprintf(stderr, "aamctl key create failed: %s\n", err ? err : "");
	free(out);
	free(err);
	return rc;
}

static int
start_gateway(struct drv *d)
{
	snprintf(d->gw_log, sizeof(d->gw_log), "%s/gateway.log", d->dir);
	char *argv[] = {getenv("AAM_GATEWAY_BIN"), (char *)(uintptr_t) "-c", d->st.v.cfg, NULL};
	d->gw_pid = spawn(argv, d->gw_log);
	char url[128], *body = NULL;
	snprintf(url, sizeof(url), "%s/readyz", d->gw_url);
	if (d->gw_pid < 0 || !wait_http(url, 200, d->gw_pid, 30000, &body)) {
		fprintf(stderr, "aam-e2e-gw-stack: the gateway did not become ready\n");
		char *b = NULL;
		stack_http_get(url, &b);
		fprintf(stderr, "readyz: %s\n", b != NULL ? b : "");
		free(b);
		dump("aam-gateway", d->gw_log);
		return -1;
	}
	json_t *j = json_loads(body, 0, NULL);
	const char *ab =
	        json_string_value(json_object_get(json_object_get(j, "checks"), "audit_backend"));
	snprintf(d->audit_backend, sizeof(d->audit_backend), "%s", ab != NULL ? ab : "unknown");
	json_decref(j);
	free(body);
	return 0;
}

static int
start_sidecar(struct drv *d)
{
	snprintf(d->side_log, sizeof(d->side_log), "%s/sidecar.log", d->dir);
	d->side_pid = stack_sidecar_spawn(d->agent_cfg, d->side_log);
	char url[128];
	snprintf(url, sizeof(url), "%s/.aam/health", d->side_url);
	if (d->side_pid < 0 || !wait_http(url, 200, d->side_pid, 60000, NULL)) {
		fprintf(stderr, "aam-e2e-gw-stack: the sidecar got no token\n");
		dump("aam-agent sidecar", d->side_log);
		dump("aam-attest", d->st.attest_log);
		return -1;
	}
	return 0;
}

static int
print_info(struct drv *d)
{
	char stats[128], last[128];
	snprintf(stats, sizeof(stats), "%s/_mock/stats", d->ok.url);
	snprintf(last, sizeof(last), "%s/_mock/last", d->ok.url);
	json_t *pids = json_pack("{s:i,s:i,s:i,s:i,s:i}", "gateway", (int)d->gw_pid, "vault",
	                         (int)d->st.v.pid, "attest", (int)d->st.attest_pid, "sidecar",
	                         (int)d->side_pid, "mock", (int)d->ok.pid);
	json_t *routes = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "openai", "mock-gpt",
	                           "anthropic", "mock-claude", "openai_to_anthropic",
	                           "cross-claude", "anthropic_to_openai", "cross-gpt", "r429",
	                           "mock-429", "r500", "mock-500", "anthropic_500", "claude-500");
	json_t *j = json_pack(
	        "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:s,s:s,s:s,s:s,s:s,s:o,"
	        "s:o}",
	        "sidecar_url", d->side_url, "gateway_url", d->gw_url, "attest_url",
	        d->st.attest_url, "vkey", d->vkey, "vkey_alias", VKEY_NAME, "vkey_workload",
	        ID_VKEY, "spiffe_id", ID, "provider_key_file", d->keyfile, "mock_url", d->ok.url,
	        "mock_stats_url", stats, "mock_last_url", last, "mock_429_url", d->r429.url,
	        "mock_500_url", d->r500.url, "chunk_delay_ms", d->bench ? 0 : CHUNK_DELAY_MS,
	        "config", d->st.v.cfg, "aamctl", getenv("AAM_AAMCTL_BIN"), "gateway_log", d->gw_log,
	        "audit_backend", d->audit_backend, "dir", d->dir, "pids", pids, "routes", routes);
	if (j != NULL && d->with_mcp)
		json_object_set_new(j, "mcp",
		                    json_pack("{s:s,s:s,s:s,s:s,s:i}", "server_url", d->mcp.url,
		                              "record", d->mcp.record, "policy", "docs-reader",
		                              "tools", d->mcp.tools, "pid", (int)d->mcp.pid));
	char *line = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	int rc = line != NULL && printf("%s\n", line) > 0 && fflush(stdout) == 0 ? 0 : -1;
	free(line);
	json_decref(j);
	return rc;
}

static int
start_all(struct drv *d)
{
	if (stack_start(&d->st, NULL, 0) != 0)
		return -1;
	snprintf(d->dir, sizeof(d->dir), "%s", d->st.v.dir);
	char key[64];
	if (make_provider_key(d, key) != 0)
		return -1;
	char delay[16];
	snprintf(delay, sizeof(delay), "%d", d->bench ? 0 : CHUNK_DELAY_MS);
	/*
	 * The bench's upstream runs an epoll worker pool, the mock's fastest
	 * mode; the tests' keeps a thread per connection so that chunk delays
	 * only hold their own stream.
	 */
	const char *test_flags[] = {"--chunk-delay-ms", delay, NULL};
	const char *bench_flags[] = {"--chunk-delay-ms", "0", "--threads", "2", NULL};
	const char *const *ok_flags = d->bench ? bench_flags : test_flags;
	const char *f429[] = {
	        "--fail-first", "1000000000", "--fail-status", "429", "--retry-after", "1", NULL};
	const char *f500[] = {"--fail-first", "1000000000", "--fail-status", "500", NULL};
	int rc = mock_start(d, &d->ok, "ok", ok_flags);
	if (rc == 0)
		rc = mock_start(d, &d->r429, "429", f429);
	if (rc == 0)
		rc = mock_start(d, &d->r500, "500", f500);
	if (rc == 0)
		rc = secret_put(d, key, "mock-openai-key", "bearer", NULL, NULL);
	if (rc == 0)
		rc = secret_put(d, key, "mock-anthropic-key", "header", "x-api-key", NULL);
	if (rc == 0 && d->with_mcp)
		rc = mcp_start(d, key);
	aam_wipe(key, sizeof(key));
	d->gw_port = aam_test_free_port();
	d->side_port = aam_test_free_port();
	snprintf(d->gw_url, sizeof(d->gw_url), "http://127.0.0.1:%d", d->gw_port);
	snprintf(d->side_url, sizeof(d->side_url), "http://127.0.0.1:%d", d->side_port);
	if (rc == 0)
		rc = write_routes(d);
	if (rc == 0)
		rc = write_policies(d);
	if (rc == 0)
		rc = write_gateway_config(d);
	if (rc == 0)
		rc = register_agent(d);
	if (rc == 0)
		rc = mint_vkey(d);
	if (rc == 0)
		rc = start_gateway(d);
	if (rc == 0)
		rc = start_sidecar(d);
	return rc;
}

static void
stop_all(struct drv *d)
{
	stop_pid(&d->side_pid);
	stop_pid(&d->gw_pid);
	stop_pid(&d->ok.pid);
	stop_pid(&d->r429.pid);
	stop_pid(&d->r500.pid);
	stop_pid(&d->mcp.pid);
	aam_test_softhsm_stop(&d->hsm);
	stack_stop(&d->st);
}

int
main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	static struct drv d;
	d.gw_pid = d.side_pid = d.ok.pid = d.r429.pid = d.r500.pid = d.mcp.pid = -1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--bench") == 0) {
			d.bench = true;
		} else if (strcmp(argv[i], "--mcp") == 0) {
			d.with_mcp = true;
		} else {
			fprintf(stderr, "usage: aam-e2e-gw-stack [--bench] [--mcp]\n");
			return 2;
		}
	}
	if (d.with_mcp && getenv("AAM_NODE_BIN") == NULL) {
		fprintf(stderr, "aam-e2e-gw-stack: --mcp needs AAM_NODE_BIN\n");
		return 1;
	}
	const char *missing = NULL;
	if (!stack_available(&missing)) {
		fprintf(stderr, "aam-e2e-gw-stack: %s not available\n", missing);
		return 1;
	}
	const char *more[] = {"AAM_GATEWAY_BIN", "AAM_MOCK_PROVIDER_BIN"};
	for (size_t i = 0; i < 2; i++) {
		const char *v = getenv(more[i]);
		if (v == NULL || v[0] == '\0' || access(v, X_OK) != 0) {
			fprintf(stderr, "aam-e2e-gw-stack: %s not available\n", more[i]);
			return 1;
		}
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int rc = start_all(&d);
	if (rc == 0)
		rc = print_info(&d);
	if (rc == 0)
		wait_for_end();
	else
		fprintf(stderr, "aam-e2e-gw-stack: the stack did not start\n");
	stop_all(&d);
	curl_global_cleanup();
	return rc == 0 ? 0 : 1;
}
