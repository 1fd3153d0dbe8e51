/*
 * Tool calls and MCP through the aam-gateway daemon, every piece a real
 * process on loopback: aam-vault on a SoftHSM2 token holding the
 * upstream keys, aam-gateway with the shipped CRM catalogue (pointed at
 * the mock) and the reference finance-analyst-readonly policy, the mock
 * CRM (aam-mock-saas) and, when node and tests/mcp/node_modules are
 * there, the SDK-built test MCP server driven by the SDK's client.  The
 * agent's identity is a virtual key made with `aamctl key create`.
 *
 * Covered (issue 7's acceptance): read and search succeed and the CRM
 * saw the injected key; export, update and delete are denied (403 with
 * the reason and the policy) and never reach the CRM; a model outside
 * reasoning-high/summarization is denied; hostile parameters never reach
 * the CRM; every tool call's audit record carries identity, policy and
 * hash, resource, action, parameter digest, decision, credential,
 * upstream status and latency (read from the vault's audit log, or from
 * the gateway's log while the audit log is not wired); the official MCP
 * client sees only allowed tools, an allowed call succeeds with the
 * injected key, a denied one gets a JSON-RPC error naming the policy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "aam/err.h"
#include "tests/integration/vault_harness.h"
#include "tests/lib/testutil.h"

#define FINANCE "spiffe://prod/agent/finance-analyst"
#define DOCS    "spiffe://prod/agent/docs-bot"
#define AUDITOR "spiffe://prod/agent/crm-auditor"
#define CRM_KEY "crm-Api-Key-daemon-0042"
#define MCP_KEY "mcp-Api-Key-daemon-0043"
#define ACCOUNT "001000000000001AAA"

struct g {
	bool ready, mcp;
	struct vh v;
	char dir[1024], cfg[1200], gw_url[64], crm_record[1200], mcp_record[1200];
	char mcp_keyfile[1200], gwlog[1200];
	int crm_port, mcp_port;
	pid_t gw, crm, node;
	char key_finance[128], key_docs[128], key_auditor[128];
};
static struct g G;

/* ---- processes ---------------------------------------------------------- */

static void
nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static pid_t
spawn(const char *log, char *const argv[], char *const env[])
{
	pid_t pid = fork();
	if (pid == 0) {
		FILE *f = freopen(log, "w", stdout);
		(void)f;
		dup2(fileno(stdout), 2);
		for (size_t i = 0; env != NULL && env[i] != NULL; i++)
			putenv(env[i]);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static bool
log_says(const char *log, const char *what, int ms)
{
	for (int i = 0; i < ms / 50; i++) {
		char *out = aam_test_read_file(log, NULL);
		bool yes = out != NULL && strstr(out, what) != NULL;
		free(out);
		if (yes)
			return true;
		nap_ms(50);
	}
	return false;
}

static void
stop(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	waitpid(*pid, NULL, 0);
	*pid = -1;
}

/* ---- HTTP ---------------------------------------------------------------- */

struct reply {
	long status;
	struct aam_buf body;
	json_t *json;
};

static size_t
on_body(char *p, size_t size, size_t n, void *ud)
{
	struct aam_buf *b = ud;
	aam_buf_append(b, p, size * n);
	return size * n;
}

static void
http(const char *method, const char *path, const char *key, const char *body, struct reply *r)
{
	memset(r, 0, sizeof(*r));
	aam_buf_init(&r->body, 8u << 20);
	char url[512], auth[256];
	snprintf(url, sizeof(url), "%s%s", G.gw_url, path);
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	if (key != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
		h = curl_slist_append(h, auth);
	}
	h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (body != NULL)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	r->json = json_loadb((const char *)r->body.data, r->body.len, 0, NULL);
}

static void
reply_free(struct reply *r)
{
	json_decref(r->json);
	aam_buf_uninit(&r->body);
}

static const char *
jstr(json_t *j, const char *a, const char *b)
{
	json_t *x = json_object_get(j, a);
	return json_string_value(b != NULL ? json_object_get(x, b) : x);
}

/* ---- fixture --------------------------------------------------------------- */

static int
aamctl(char **out, ...)
{
	char *argv[24] = {0};
	int n = 0;
	argv[n++] = (char *)(uintptr_t)getenv("AAM_AAMCTL_BIN");
	argv[n++] = "-c";
	argv[n++] = G.cfg;
	va_list ap;
	va_start(ap, out);
	const char *a;
	while ((a = va_arg(ap, const char *)) != NULL && n < 23)
		argv[n++] = (char *)(uintptr_t)a;
	va_end(ap);
	char log[1300];
	snprintf(log, sizeof(log), "%s/aamctl-key.out", G.dir);
	pid_t pid = spawn(log, argv, NULL);
	int st = 0;
	waitpid(pid, &st, 0);
	if (out != NULL)
		*out = aam_test_read_file(log, NULL);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Makes a virtual key for WORKLOAD into OUT. */
static int
make_key(const char *workload, char *out, size_t outlen)
{
	char *text = NULL;
	if (aamctl(&text, "key", "create", "--workload", workload, "--owner", "alice@example.com",
	           NULL) != 0) {
		print_error("aamctl key create: %s\n", text != NULL ? text : "");
		free(text);
		return -1;
	}
	char *k = text != NULL ? strstr(text, "sk-aam-") : NULL;
	if (k == NULL) {
		free(text);
		return -1;
	}
	size_t n = strcspn(k, " \t\r\n\"");
	snprintf(out, outlen, "%.*s", (int)n, k);
	free(text);
	return 0;
}

static bool
have_sdk(void)
{
	char *p = aam_test_source_path(
	        "tests/mcp/node_modules/@modelcontextprotocol/sdk/package.json");
	struct stat st;
	bool ok = p != NULL && stat(p, &st) == 0 && aam_test_have_program("node");
	free(p);
	return ok;
}

static int
write_catalogues(void)
{
	char path[1300];
	snprintf(path, sizeof(path), "%s/tools", G.dir);
	mkdir(path, 0700);
	char *src = aam_test_source_path("deploy/etc/aam/tools/crm.yaml");
	char *text = aam_test_read_file(src, NULL);
	free(src);
	const char *from = "https://crm.example.com/services/data/v1";
	char *at = text != NULL ? strstr(text, from) : NULL;
	char *cat = NULL;
	if (at == NULL || asprintf(&cat, "%.*shttp://127.0.0.1:%d/services/data/v1%s",
	                           (int)(at - text), text, G.crm_port, at + strlen(from)) < 0)
		return -1;
	free(text);
	snprintf(path, sizeof(path), "%s/tools/crm.yaml", G.dir);
	int rc = aam_test_write_file(path, cat, strlen(cat), 0600);
	free(cat);
	if (rc != 0 || !G.mcp)
		return rc;
	char mcp[1024];
	int n = snprintf(mcp, sizeof(mcp),
	                 "apiVersion: access.envisionai.dev/v1\nkind: ToolCatalog\n"
	                 "metadata: {name: mcp}\nspec:\n  mcp_servers:\n    - name: docs\n"
	                 "      url: http://127.0.0.1:%d/mcp\n      credential: docs-mcp-key\n",
	                 G.mcp_port);
	snprintf(path, sizeof(path), "%s/tools/mcp.yaml", G.dir);
	return aam_test_write_file(path, mcp, (size_t)n, 0600);
}

static int
start_upstreams(void)
{
	char keyfile[1300], log[1300], port[16];
	snprintf(keyfile, sizeof(keyfile), "%s/crm.key", G.dir);
	aam_test_write_file(keyfile, CRM_KEY "\n", strlen(CRM_KEY) + 1, 0600);
	snprintf(G.crm_record, sizeof(G.crm_record), "%s/crm-requests.jsonl", G.dir);
	G.crm_port = aam_test_free_port();
	snprintf(port, sizeof(port), "%d", G.crm_port);
	snprintf(log, sizeof(log), "%s/mock-crm.log", G.dir);
	char *crm[] = {(char *)(uintptr_t)getenv("AAM_MOCK_SAAS_BIN"),
	               "--mode",
	               "crm",
	               "--port",
	               port,
	               "--record",
	               G.crm_record,
	               "--key-file",
	               keyfile,
	               NULL};
	G.crm = spawn(log, crm, NULL);
	if (!log_says(log, "listening on", 10000))
		return -1;
	if (!G.mcp)
		return 0;
	snprintf(G.mcp_keyfile, sizeof(G.mcp_keyfile), "%s/mcp.key", G.dir);
	aam_test_write_file(G.mcp_keyfile, MCP_KEY "\n", strlen(MCP_KEY) + 1, 0600);
	snprintf(G.mcp_record, sizeof(G.mcp_record), "%s/mcp-requests.jsonl", G.dir);
	aam_test_write_file(G.mcp_record, "", 0, 0600);
	G.mcp_port = aam_test_free_port();
	static char e1[64], e2[1400], e3[1400];
	snprintf(e1, sizeof(e1), "MCP_PORT=%d", G.mcp_port);
	snprintf(e2, sizeof(e2), "MCP_KEY_FILE=%s", G.mcp_keyfile);
	snprintf(e3, sizeof(e3), "MCP_RECORD=%s", G.mcp_record);
	char *env[] = {e1, e2, e3, NULL};
	char *script = aam_test_source_path("tests/mcp/server.mjs");
	char *node[] = {"node", script, NULL};
	snprintf(log, sizeof(log), "%s/mcp-server.log", G.dir);
	G.node = spawn(log, node, env);
	free(script);
	return log_says(log, "listening on", 15000) ? 0 : -1;
}

static int
put_secret(const char *value, const char *name, const char *type, const char *extra_flag,
           const char *extra, const char *bind)
{
	char in[256], *out = NULL;
	snprintf(in, sizeof(in), "%s\n", value);
	int rc = extra_flag != NULL
	                 ? vh_aamctl(&G.v, in, &out, NULL, "secret", "put", name, "--type", type,
	                             extra_flag, extra, "--bind", bind, NULL)
	                 : vh_aamctl(&G.v, in, &out, NULL, "secret", "put", name, "--type", type,
	                             "--bind", bind, NULL);
	free(out);
	return rc;
}

/*
 * The stack's configuration with a gateway section on PORT into PATH;
 * EXTRA is more gateway options (indented lines).  The gateways share the
 * policies, the key database and the vault.
 */
static int
write_config(const char *path, int port, const char *extra)
{
	char *vcfg = aam_test_read_file(G.v.cfg, NULL);
	char *cfg = NULL;
	if (vcfg == NULL ||
	    asprintf(
	            &cfg,
	            "%sgateway:\n  listen: 127.0.0.1:%d\n  policies: %s/policies.yaml\n"
	            "  db: %s/gateway.db\n  vault_socket: %s\n  attest_url: http://127.0.0.1:1\n%s",
	            vcfg, port, G.dir, G.dir, G.v.sock_gw, extra) < 0) {
		free(vcfg);
		return -1;
	}
	free(vcfg);
	int rc = aam_test_write_file(path, cfg, strlen(cfg), 0600);
	free(cfg);
	return rc;
}

static int
group_setup(void **state)
{
	(void)state;
	memset(&G, 0, sizeof(G));
	G.gw = G.crm = G.node = -1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (!aam_test_softhsm_available() || getenv("AAM_GATEWAY_BIN") == NULL)
		return 0;
	G.mcp = have_sdk();
	if (vh_setup(&G.v, "  request_timeout: 30s\n") != 0 || vh_start(&G.v) != 0)
		return -1;
	snprintf(G.dir, sizeof(G.dir), "%s", G.v.dir);
	char *out = NULL;
	if (vh_aamctl(&G.v, NULL, &out, NULL, "keys", "init", NULL) != 0)
		return -1;
	free(out);
	if (start_upstreams() != 0)
		return -1;
	char bind[256];
	snprintf(bind, sizeof(bind), "http://127.0.0.1:%d/services/data/v1/", G.crm_port);
	if (put_secret(CRM_KEY, "crm-api", "bearer", NULL, NULL, bind) != 0)
		return -1;
	if (G.mcp) {
		snprintf(bind, sizeof(bind), "http://127.0.0.1:%d/mcp", G.mcp_port);
		if (put_secret(MCP_KEY, "docs-mcp-key", "header", "--header", "X-API-Key", bind) !=
		    0)
			return -1;
	}
	if (write_catalogues() != 0)
		return -1;
	/* The reference policy exactly as shipped, plus the MCP test's policy (for DOCS). */
	char *ref = aam_test_source_path("policies/examples/finance-analyst-readonly.yaml");
	char *docs = aam_test_source_path("tests/mcp/docs-reader.yaml");
	char *text = aam_test_read_file(ref, NULL), *docs_text = aam_test_read_file(docs, NULL);
	free(ref);
	free(docs);
	char *all = NULL;
	/* A workload that may search, whose policy records `region` in clear. */
	static const char facets[] = "apiVersion: access.envisionai.dev/v1\n"
	                             "kind: AgentPolicy\n"
	                             "metadata:\n  name: crm-search-audit\n"
	                             "spec:\n"
	                             "  identity:\n    workload: " AUDITOR "\n"
	                             "  tools:\n"
	                             "    - resource: salesforce.accounts\n"
	                             "      actions: [search]\n"
	                             "  audit:\n"
	                             "    record: [identity, policy, action, parameters, outcome]\n"
	                             "    plain: [region]\n";
	if (text == NULL || docs_text == NULL ||
	    asprintf(&all, "%s---\n%s---\n%s", text, docs_text, facets) < 0)
		return -1;
	free(text);
	free(docs_text);
	char path[1300];
	snprintf(path, sizeof(path), "%s/policies.yaml", G.dir);
	aam_test_write_file(path, all, strlen(all), 0600);
	free(all);

	int gw_port = aam_test_free_port();
	snprintf(G.gw_url, sizeof(G.gw_url), "http://127.0.0.1:%d", gw_port);
	snprintf(G.cfg, sizeof(G.cfg), "%s/all.yaml", G.dir);
	if (write_config(G.cfg, gw_port, "") != 0)
		return -1;
	if (make_key(FINANCE, G.key_finance, sizeof(G.key_finance)) != 0 ||
	    make_key(DOCS, G.key_docs, sizeof(G.key_docs)) != 0 ||
	    make_key(AUDITOR, G.key_auditor, sizeof(G.key_auditor)) != 0)
		return -1;
	snprintf(G.gwlog, sizeof(G.gwlog), "%s/gateway.log", G.dir);
	char *gw[] = {(char *)(uintptr_t)getenv("AAM_GATEWAY_BIN"), "-c", G.cfg, NULL};
	G.gw = spawn(G.gwlog, gw, NULL);
	if (!log_says(G.gwlog, "tools.ready", 15000)) {
		print_error("the gateway did not load the tool catalogue (see %s)\n", G.gwlog);
		return -1;
	}
	for (int i = 0; i < 200; i++) {
		struct reply r;
		CURL *c = curl_easy_init();
		char url[128];
		snprintf(url, sizeof(url), "%s/healthz", G.gw_url);
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
		CURLcode cc = curl_easy_perform(c);
		curl_easy_cleanup(c);
		(void)r;
		if (cc == CURLE_OK)
			break;
		nap_ms(50);
	}
	G.ready = true;
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	stop(&G.gw);
	stop(&G.crm);
	stop(&G.node);
	if (G.dir[0] != '\0') {
		/* The keys are in no log and no file the gateway or the vault wrote. */
		char *log = aam_test_read_file(G.gwlog, NULL);
		if (log != NULL) {
			assert_null(strstr(log, CRM_KEY));
			assert_null(strstr(log, MCP_KEY));
		}
		free(log);
		vh_teardown(&G.v);
	}
	curl_global_cleanup();
	return 0;
}

#define REQUIRE()                                                                                  \
	do {                                                                                       \
		AAM_TEST_SOFTHSM_REQUIRE();                                                        \
		if (!G.ready) {                                                                    \
			print_message("aam-gateway not built: skipped\n");                         \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

static size_t
crm_count(void)
{
	char *t = aam_test_read_file(G.crm_record, NULL);
	size_t n = 0;
	for (char *p = t; p != NULL && *p; p++)
		n += *p == '\n';
	free(t);
	return n;
}

static const char *
crm_last_auth(char *buf, size_t len)
{
	char *t = aam_test_read_file(G.crm_record, NULL);
	char *last = t != NULL ? strstr(t, "\"auth\":\"") : NULL;
	for (char *p = last; p != NULL; p = strstr(p + 1, "\"auth\":\""))
		last = p;
	snprintf(buf, len, "%.*s", last != NULL ? (int)strcspn(last + 8, "\"") : 0,
	         last != NULL ? last + 8 : "");
	free(t);
	return buf;
}

/* ---- the audit trail ------------------------------------------------------- */

/* Decodes the logfmt string value after KEY=" at P into OUT. */
static void
logfmt_value(const char *p, struct aam_buf *out)
{
	for (; *p && *p != '"'; p++) {
		if (*p != '\\') {
			aam_buf_append_byte(out, (uint8_t)*p);
			continue;
		}
		p++;
		if (*p == 'n')
			aam_buf_append_byte(out, '\n');
		else if (*p == 'x') {
			unsigned v = 0;
			sscanf(p + 1, "%2x", &v);
			aam_buf_append_byte(out, (uint8_t)v);
			p += 2;
		} else
			aam_buf_append_byte(out, (uint8_t)*p);
	}
}

static void
add_records(json_t *arr, const char *text)
{
	for (const char *p = text; p != NULL && (p = strstr(p, "\"type\"")) != NULL; p++) {
		/* One JSON line of the vault's audit log. */
		const char *b = p;
		while (b > text && b[-1] != '\n')
			b--;
		const char *e = strchr(p, '\n');
		json_t *j = json_loadb(b, e != NULL ? (size_t)(e - b) : strlen(b), 0, NULL);
		if (j != NULL)
			json_array_append_new(arr, j);
		if (e == NULL)
			break;
		p = e;
	}
}

/* Every tool.call/mcp.call record, from the vault's audit log or the gateway's log. */
static json_t *
audit_records(const char *kind)
{
	json_t *all = json_array();
	char *log = aam_test_read_file(G.gwlog, NULL);
	for (const char *p = log; p != NULL && (p = strstr(p, "event=gateway.audit record=\""));) {
		struct aam_buf b;
		aam_buf_init(&b, 1 << 20);
		p += strlen("event=gateway.audit record=\"");
		logfmt_value(p, &b);
		json_t *j = json_loadb((const char *)b.data, b.len, 0, NULL);
		if (j != NULL)
			json_array_append_new(all, j);
		aam_buf_uninit(&b);
	}
	free(log);
	if (json_array_size(all) == 0) {
		/* The durable audit log in the vault's state folder (issue 8). */
		char dir[1300];
		snprintf(dir, sizeof(dir), "%s", G.v.state);
		DIR *d = opendir(dir);
		struct dirent *de;
		while (d != NULL && (de = readdir(d)) != NULL) {
			char path[1600];
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			char *t = aam_test_read_file(path, NULL);
			if (t != NULL && strstr(t, "tool.call") != NULL)
				add_records(all, t);
			free(t);
		}
		if (d != NULL)
			closedir(d);
	}
	json_t *out = json_array();
	for (size_t i = 0; i < json_array_size(all); i++) {
		json_t *ev = json_array_get(all, i);
		const char *k = json_string_value(json_object_get(ev, "kind"));
		if (k == NULL)
			k = json_string_value(json_object_get(ev, "type"));
		if (k != NULL && strcmp(k, kind) == 0)
			json_array_append(out, ev);
	}
	json_decref(all);
	return out;
}

/* ---- tests ---------------------------------------------------------------- */

static void
test_reference_policy(void **state)
{
	(void)state;
	REQUIRE();
	char auth[32];
	size_t before = crm_count();
	struct reply r;
	http("POST", "/v1/tools/salesforce.accounts/read", G.key_finance,
	     "{\"id\":\"" ACCOUNT "\"}", &r);
	if (r.status != 200)
		fail_msg("read: %ld %s", r.status, aam_buf_cstr(&r.body));
	assert_string_equal(jstr(r.json, "Name", NULL), "Acme Corporation");
	reply_free(&r);
	assert_string_equal(crm_last_auth(auth, sizeof(auth)), "ok");
	http("POST", "/v1/tools/salesforce.accounts/search", G.key_finance,
	     "{\"query\":\"acme\",\"region\":\"US\"}", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_integer_value(json_object_get(r.json, "totalSize")), 1);
	reply_free(&r);
	assert_string_equal(crm_last_auth(auth, sizeof(auth)), "ok");
	assert_int_equal(crm_count(), before + 2);

	const char *denied[][2] = {{"export", "{\"format\":\"csv\"}"},
	                           {"update", "{\"id\":\"" ACCOUNT "\",\"name\":\"x\"}"},
	                           {"delete", "{\"id\":\"" ACCOUNT "\"}"}};
	for (size_t i = 0; i < 3; i++) {
		char path[128];
		snprintf(path, sizeof(path), "/v1/tools/salesforce.accounts/%s", denied[i][0]);
		http("POST", path, G.key_finance, denied[i][1], &r);
		assert_int_equal(r.status, 403);
		assert_string_equal(jstr(r.json, "error", "code"), "policy_denied");
		assert_string_equal(jstr(r.json, "error", "reason"), "explicit_deny");
		assert_string_equal(jstr(r.json, "error", "policy"), "finance-analyst-readonly");
		reply_free(&r);
	}
	assert_int_equal(crm_count(), before + 2);

	/* What the finance agent may call. */
	http("GET", "/v1/tools/", G.key_finance, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(json_object_get(r.json, "tools")), 2);
	reply_free(&r);
}

static void
test_model_outside_policy(void **state)
{
	(void)state;
	REQUIRE();
	struct reply r;
	http("POST", "/v1/chat/completions", G.key_finance,
	     "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r);
	assert_int_equal(r.status, 403);
	reply_free(&r);
}

static void
test_hostile(void **state)
{
	(void)state;
	REQUIRE();
	size_t before = crm_count();
	struct {
		const char *path, *body;
		long status;
	} cases[] = {
	        {"/v1/tools/salesforce.accounts/read", "{\"id\":\"../../admin\"}", 400},
	        {"/v1/tools/salesforce.accounts/read", "{\"id\":\"" ACCOUNT "\",\"x\":1}", 400},
	        {"/v1/tools/salesforce.accounts/read", "{\"id\":", 400},
	        {"/v1/tools/salesforce.accounts/merge", "{}", 404},
	        {"/v1/tools/salesforce.accounts/read/extra", "{}", 404},
	        {"/v1/tools/salesforce.accounts", "{}", 404},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct reply r;
		http("POST", cases[i].path, G.key_finance, cases[i].body, &r);
		if (r.status != cases[i].status)
			fail_msg("%s %s: %ld %s", cases[i].path, cases[i].body, r.status,
			         aam_buf_cstr(&r.body));
		reply_free(&r);
	}
	/* Without an identity nothing happens at all. */
	struct reply r;
	http("POST", "/v1/tools/salesforce.accounts/read", NULL, "{\"id\":\"" ACCOUNT "\"}", &r);
	assert_int_equal(r.status, 401);
	reply_free(&r);
	assert_int_equal(crm_count(), before);
}

static void
test_audit_records(void **state)
{
	(void)state;
	REQUIRE();
	json_t *recs = audit_records("tool.call");
	json_t *read = NULL, *export = NULL;
	for (size_t i = 0; i < json_array_size(recs); i++) {
		json_t *ev = json_array_get(recs, i);
		const char *op = jstr(ev, "action", "operation");
		if (op != NULL && strcmp(op, "read") == 0 && read == NULL &&
		    jstr(ev, "decision", NULL) != NULL &&
		    strcmp(jstr(ev, "decision", NULL), "allow") == 0)
			read = ev;
		if (op != NULL && strcmp(op, "export") == 0 && export == NULL)
			export = ev;
	}
	if (read == NULL || export == NULL) {
		char *s = json_dumps(recs, JSON_COMPACT);
		fail_msg("records missing: %s", s != NULL ? s : "");
	}
	/* identity */
	assert_string_equal(jstr(read, "identity", "workload") != NULL
	                            ? jstr(read, "identity", "workload")
	                            : jstr(read, "identity", "spiffe_id"),
	                    FINANCE);
	/* policy and its hash */
	json_t *pol = json_object_get(read, "policy");
	assert_non_null(pol);
	const char *hash = json_string_value(json_object_get(pol, "set_hash"));
	if (hash == NULL)
		hash = json_string_value(json_object_get(pol, "hash"));
	assert_non_null(hash);
	assert_true(strlen(hash) >= 64);
	char *pols = json_dumps(pol, JSON_COMPACT);
	assert_non_null(strstr(pols, "finance-analyst-readonly"));
	free(pols);
	/* resource, action, parameter digest */
	assert_string_equal(jstr(read, "action", "resource"), "salesforce.accounts");
	assert_int_equal(strlen(jstr(read, "action", "params_sha256")), 64);
	/* decision, credential (name, never the value), upstream status, latency */
	assert_string_equal(jstr(read, "decision", NULL), "allow");
	assert_string_equal(jstr(read, "credential", "name"), "crm-api");
	assert_int_equal(
	        json_integer_value(json_object_get(json_object_get(read, "credential"), "version")),
	        1);
	json_t *out = json_object_get(read, "outcome");
	assert_int_equal(json_integer_value(json_object_get(out, "status")), 200);
	assert_true(json_integer_value(json_object_get(out, "latency_us")) > 0);
	/* The denial is recorded too, with its reason. */
	assert_string_equal(jstr(export, "decision", NULL), "deny");
	assert_string_equal(jstr(export, "reason", NULL), "explicit_deny");
	char *s = json_dumps(recs, JSON_COMPACT);
	assert_null(strstr(s, CRM_KEY));
	free(s);
	json_decref(recs);
}

/* The tool.call records of the vault's signed log, exported with aamctl audit export. */
static json_t *
signed_records(void)
{
	char dir[1300], *out = NULL;
	snprintf(dir, sizeof(dir), "%s/export-%ld", G.dir, (long)time(NULL));
	assert_int_equal(vh_audit_wait_signed(&G.v, 10000), AAM_OK);
	if (vh_aamctl(&G.v, NULL, &out, NULL, "audit", "export", "--out", dir, NULL) != 0)
		fail_msg("audit export failed: %s", out != NULL ? out : "");
	free(out);
	json_t *recs = json_array();
	char seg[1400];
	snprintf(seg, sizeof(seg), "%s/records", dir);
	DIR *d = opendir(seg);
	assert_non_null(d);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char path[1700];
		snprintf(path, sizeof(path), "%s/%s", seg, de->d_name);
		char *text = aam_test_read_file(path, NULL);
		for (char *line = text, *nl; line != NULL && *line != '\0'; line = nl) {
			nl = strchr(line, '\n');
			if (nl != NULL)
				*nl++ = '\0';
			json_t *j = json_loads(line, 0, NULL);
			const char *type = json_string_value(json_object_get(j, "type"));
			if (type != NULL && strcmp(type, "tool.call") == 0)
				json_array_append(recs, j);
			json_decref(j);
		}
		free(text);
	}
	closedir(d);
	return recs;
}

/*
 * Issue 7's audit fields, read where an auditor reads them: the vault's
 * signed log.  The parameter digest always; the plain fields a policy
 * lists in clear and no other parameter; credential name and version.
 */
static void
test_signed_log_fields(void **state)
{
	(void)state;
	REQUIRE();
	struct reply r;
	http("POST", "/v1/tools/salesforce.accounts/search", G.key_auditor,
	     "{\"query\":\"acme-signed\",\"region\":\"EU\"}", &r);
	assert_int_equal(r.status, 200);
	reply_free(&r);
	json_t *recs = signed_records();
	json_t *search = NULL;
	for (size_t i = 0; i < json_array_size(recs); i++) {
		json_t *ev = json_array_get(recs, i);
		const char *op = jstr(ev, "action", "operation");
		json_t *params = json_object_get(json_object_get(ev, "action"), "params");
		const char *region = json_string_value(json_object_get(params, "region"));
		if (op != NULL && strcmp(op, "search") == 0 && region != NULL &&
		    strcmp(region, "EU") == 0)
			search = ev;
	}
	if (search == NULL) {
		char *dump = json_dumps(recs, JSON_COMPACT);
		fail_msg("no signed search record with region EU: %s", dump != NULL ? dump : "");
	}
	json_t *act = json_object_get(search, "action");
	assert_string_equal(jstr(search, "action", "resource"), "salesforce.accounts");
	assert_int_equal(strlen(jstr(search, "action", "params_sha256")), 64);
	/* Only what the policy lists: the query is in the digest, not in clear. */
	assert_int_equal(json_object_size(json_object_get(act, "params")), 1);
	char *dump = json_dumps(recs, JSON_COMPACT);
	assert_null(strstr(dump, "acme-signed"));
	assert_null(strstr(dump, CRM_KEY));
	free(dump);
	json_t *cred = json_object_get(search, "credential");
	assert_string_equal(json_string_value(json_object_get(cred, "name")), "crm-api");
	assert_true(json_integer_value(json_object_get(cred, "version")) >= 1);
	assert_string_equal(jstr(search, "decision", "effect"), "allow");
	assert_int_equal(
	        json_integer_value(json_object_get(json_object_get(search, "outcome"), "status")),
	        200);
	json_decref(recs);
}

/* The newest allowed tool.call record of OPERATION's credential version (-1: none). */
static json_int_t
last_version(const char *operation)
{
	json_t *recs = audit_records("tool.call");
	json_int_t v = -1;
	for (size_t i = 0; i < json_array_size(recs); i++) {
		json_t *ev = json_array_get(recs, i);
		const char *op = jstr(ev, "action", "operation");
		const char *dec = jstr(ev, "decision", NULL);
		json_t *ver = json_object_get(json_object_get(ev, "credential"), "version");
		if (op != NULL && strcmp(op, operation) == 0 && dec != NULL &&
		    strcmp(dec, "allow") == 0)
			v = json_is_integer(ver) ? json_integer_value(ver) : 0;
	}
	json_decref(recs);
	return v;
}

/* A rotation shows in the records: the version the vault used, 1 then 2. */
static void
test_credential_version(void **state)
{
	(void)state;
	REQUIRE();
	struct reply r;
	http("POST", "/v1/tools/salesforce.accounts/read", G.key_finance,
	     "{\"id\":\"" ACCOUNT "\"}", &r);
	assert_int_equal(r.status, 200);
	reply_free(&r);
	assert_int_equal(last_version("read"), 1);
	/* The same value again (the mock CRM knows only it): a new version all the same. */
	char *out = NULL;
	assert_int_equal(
	        vh_aamctl(&G.v, CRM_KEY "\n", &out, NULL, "secret", "rotate", "crm-api", NULL), 0);
	free(out);
	http("POST", "/v1/tools/salesforce.accounts/read", G.key_finance,
	     "{\"id\":\"" ACCOUNT "\"}", &r);
	assert_int_equal(r.status, 200);
	reply_free(&r);
	assert_int_equal(last_version("read"), 2);
	json_t *recs = audit_records("tool.call");
	char *s = json_dumps(recs, JSON_COMPACT);
	assert_null(strstr(s, CRM_KEY));
	free(s);
	json_decref(recs);
}

/* GET /v1/tools (no trailing slash) lists like GET /v1/tools/. */
static void
test_list_without_slash(void **state)
{
	(void)state;
	REQUIRE();
	struct reply a, b;
	http("GET", "/v1/tools/", G.key_finance, NULL, &a);
	http("GET", "/v1/tools", G.key_finance, NULL, &b);
	assert_int_equal(a.status, 200);
	assert_int_equal(b.status, 200);
	assert_int_equal(json_array_size(json_object_get(b.json, "tools")), 2);
	assert_true(json_equal(a.json, b.json));
	reply_free(&a);
	reply_free(&b);
	/* The same rules as the other door: an identity, and GET only. */
	http("GET", "/v1/tools", NULL, NULL, &b);
	assert_int_equal(b.status, 401);
	reply_free(&b);
	http("POST", "/v1/tools", G.key_finance, "{}", &b);
	assert_int_equal(b.status, 405);
	assert_string_equal(jstr(b.json, "error", "code"), "method_not_allowed");
	reply_free(&b);
}

/* Waits up to MS for PID to exit; its exit status, or -1 if it still runs (then it is stopped). */
static int
wait_exit(pid_t *pid, int ms)
{
	int st = 0;
	for (int i = 0; i < ms / 50; i++) {
		if (waitpid(*pid, &st, WNOHANG) == *pid) {
			*pid = -1;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
		}
		nap_ms(50);
	}
	stop(pid);
	return -1;
}

/*
 * A gateway with the configuration CFG (gateway options EXTRA) must not
 * start: it exits 1 and its output holds both WANT1 and WANT2.
 */
static void
start_fails(const char *cfg, int port, const char *extra, const char *want1, const char *want2)
{
	assert_int_equal(write_config(cfg, port, extra), 0);
	char log[1300];
	snprintf(log, sizeof(log), "%s/gateway-start-fails.log", G.dir);
	unlink(log);
	char *argv[] = {(char *)(uintptr_t)getenv("AAM_GATEWAY_BIN"), "-c", (char *)(uintptr_t)cfg,
	                NULL};
	pid_t pid = spawn(log, argv, NULL);
	assert_int_equal(wait_exit(&pid, 15000), 1);
	char *text = aam_test_read_file(log, NULL);
	assert_non_null(text);
	if (strstr(text, want1) == NULL || strstr(text, want2) == NULL)
		fail_msg("unclear error:\n%s", text);
	free(text);
}

/*
 * gateway.tools names a catalogue file elsewhere (relative to the
 * configuration file's folder): that gateway serves it.  A path that
 * names nothing, or a value of the wrong type, stops the start with a
 * clear error.
 */
static void
test_tools_option(void **state)
{
	(void)state;
	REQUIRE();
	/* Only the CRM catalogue, as one file in another folder. */
	char dir[1300], path[1400], cfg[1300], log[1300], url[64];
	snprintf(dir, sizeof(dir), "%s/elsewhere", G.dir);
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/tools/crm.yaml", G.dir);
	char *cat = aam_test_read_file(path, NULL);
	assert_non_null(cat);
	snprintf(path, sizeof(path), "%s/crm-catalogue.yaml", dir);
	assert_int_equal(aam_test_write_file(path, cat, strlen(cat), 0600), 0);
	free(cat);
	int port = aam_test_free_port();
	snprintf(cfg, sizeof(cfg), "%s/tools-option.yaml", G.dir);
	assert_int_equal(write_config(cfg, port, "  tools: elsewhere/crm-catalogue.yaml\n"), 0);
	snprintf(log, sizeof(log), "%s/gateway-tools-option.log", G.dir);
	char *argv[] = {(char *)(uintptr_t)getenv("AAM_GATEWAY_BIN"), "-c", cfg, NULL};
	pid_t pid = spawn(log, argv, NULL);
	assert_true(log_says(log, "tools.ready", 15000));
	/* Only that file: the MCP catalogue in tools/ next to the policies is not loaded. */
	char *text = aam_test_read_file(log, NULL);
	assert_non_null(strstr(text, "crm-catalogue.yaml"));
	assert_non_null(strstr(text, "mcp_servers=0"));
	free(text);
	/* Served: the listing and a call, from this gateway. */
	char saved[64];
	snprintf(saved, sizeof(saved), "%s", G.gw_url);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	snprintf(G.gw_url, sizeof(G.gw_url), "%s", url);
	struct reply r;
	for (int i = 0; i < 100; i++) {
		http("GET", "/v1/tools", G.key_finance, NULL, &r);
		if (r.status == 200)
			break;
		reply_free(&r);
		nap_ms(50);
	}
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(json_object_get(r.json, "tools")), 2);
	reply_free(&r);
	http("POST", "/v1/tools/salesforce.accounts/read", G.key_finance,
	     "{\"id\":\"" ACCOUNT "\"}", &r);
	assert_int_equal(r.status, 200);
	reply_free(&r);
	snprintf(G.gw_url, sizeof(G.gw_url), "%s", saved);
	stop(&pid);

	/* A path that names nothing: no start, and the error names the option and the path. */
	start_fails(cfg, port, "  tools: elsewhere/no-such-catalogue.yaml\n", "gateway.tools: '",
	            "elsewhere/no-such-catalogue.yaml': no such file or folder");
	/* A value of the wrong type: the configuration's file:line:column. */
	start_fails(cfg, port, "  tools: [a, b]\n", "tools-option.yaml:", ": gateway.tools: ");
}

static void
test_mcp_official_client(void **state)
{
	(void)state;
	REQUIRE();
	if (!G.mcp) {
		print_message("node or tests/mcp/node_modules missing (npm ci): skipped\n");
		skip();
	}
	char *script = aam_test_source_path("tests/mcp/e2e.test.mjs");
	char *cmd = NULL;
	assert_true(
	        asprintf(&cmd,
	                 "AAM_MCP_URL='%s/mcp' AAM_MCP_HEADERS='{\"Authorization\":\"Bearer %s\"}' "
	                 "AAM_MCP_RECORD='%s' AAM_MCP_KEY_FILE='%s' AAM_MCP_POLICY=docs-reader "
	                 "node --test --test-reporter=spec '%s' > '%s/node-test.log' 2>&1",
	                 G.gw_url, G.key_docs, G.mcp_record, G.mcp_keyfile, script, G.dir) > 0);
	int st = system(cmd);
	free(cmd);
	free(script);
	char log[1300];
	snprintf(log, sizeof(log), "%s/node-test.log", G.dir);
	char *out = aam_test_read_file(log, NULL);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("the SDK client's test failed:\n%s", out != NULL ? out : "");
	free(out);
	json_t *recs = audit_records("mcp.call");
	assert_true(json_array_size(recs) >= 8);
	/* Allowed calls name the upstream's credential and the version the vault used. */
	size_t versioned = 0;
	for (size_t i = 0; i < json_array_size(recs); i++) {
		json_t *ev = json_array_get(recs, i);
		const char *dec = jstr(ev, "decision", NULL);
		if (dec == NULL || strcmp(dec, "allow") != 0)
			continue;
		assert_string_equal(jstr(ev, "credential", "name"), "docs-mcp-key");
		assert_int_equal(json_integer_value(json_object_get(
		                         json_object_get(ev, "credential"), "version")),
		                 1);
		versioned++;
	}
	assert_true(versioned >= 4);
	json_decref(recs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_reference_policy),
	        cmocka_unit_test(test_model_outside_policy),
	        cmocka_unit_test(test_hostile),
	        cmocka_unit_test(test_audit_records),
	        cmocka_unit_test(test_credential_version),
	        cmocka_unit_test(test_signed_log_fields),
	        cmocka_unit_test(test_list_without_slash),
	        cmocka_unit_test(test_tools_option),
	        cmocka_unit_test(test_mcp_official_client),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
