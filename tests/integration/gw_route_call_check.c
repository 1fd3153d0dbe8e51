/*
 * The router end to end (gateway/router_call.c): a real aam-vault on
 * temporary sockets with a SoftHSM2 token, several aam-mock-provider
 * processes (one healthy, one always failing with 500, one with 429,
 * one rate limited once with retry-after, a slow one, a second healthy
 * one), credentials stored through aamctl, and gw_router_call with a
 * buffering sink.
 *
 * Covered: completion and stream (OpenAI and Anthropic clients,
 * translation), fallback on 500 and on 429, cooldown, context-window
 * fallback, retries honouring retry-after, the strategies with a fixed
 * seed, budgets (refusal before any upstream request, settle to real
 * usage, a stream cut off by the client or by the upstream settles to at
 * least what was spent), upstream 4xx
 * passed through without retry, and the credential reaching the upstream
 * while nothing the client receives contains it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "aam/err.h"
#include "common/buf.h"
#include "gateway/provider.h"
#include "gateway/route.h"
#include "tests/integration/vault_harness.h"
#include "tests/lib/testutil.h"

#define KEY "sk-mock-Upstream-Key-7f3a9c"

enum { M_OK, M_OK2, M_500, M_429, M_429ONCE, M_SLOW, M_HANG, M_COUNT };

struct mock {
	pid_t pid;
	int port;
};

/*
 * An upstream that speaks Anthropic's stream and cuts the connection after
 * message_start and two text deltas (chunked encoding, no last chunk):
 * aam-mock-provider cuts streams only on a request header the router
 * does not forward.
 */
struct cutsrv {
	int fd, port;
	pthread_t th;
	bool running;
};

struct ctx {
	bool skip;
	bool v1; /* api_base ends in /v1 (toggled by reload(): new deployment identities) */
	struct cutsrv cut;
	struct vh v;
	struct mock m[M_COUNT];
	char keyfile[1024], routes[1024], db[1024];
	struct gw_router *r;
	struct aam_buf seen; /* everything any client received, for the leak check */
};

static struct ctx *C;

/* ---- processes and HTTP helpers ------------------------------------------ */

static int
mock_start(struct mock *m, const char *const *extra)
{
	const char *bin = getenv("AAM_MOCK_PROVIDER_BIN");
	if (bin == NULL)
		return -1;
	int p[2];
	if (pipe(p) != 0)
		return -1;
	const char *argv[24];
	int n = 0;
	argv[n++] = bin;
	argv[n++] = "--port";
	argv[n++] = "0";
	argv[n++] = "--require-key";
	argv[n++] = C->keyfile;
	for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 22; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execv(bin, (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	close(p[1]);
	char line[64] = "";
	size_t len = 0;
	while (len + 1 < sizeof(line)) {
		ssize_t k = read(p[0], line + len, 1);
		if (k <= 0 || line[len] == '\n')
			break;
		len++;
	}
	line[len] = '\0';
	close(p[0]);
	m->pid = pid;
	if (sscanf(line, "port=%d", &m->port) != 1)
		return -1;
	return 0;
}

static void
mock_stop(struct mock *m)
{
	if (m->pid > 0) {
		kill(m->pid, SIGTERM);
		waitpid(m->pid, NULL, 0);
		m->pid = 0;
	}
}

static size_t
curl_write(char *p, size_t sz, size_t n, void *ud)
{
	aam_buf_append(ud, p, sz * n);
	return sz * n;
}

/* GET or POST (empty body) on a mock; returns the parsed JSON answer or NULL. */
static json_t *
mock_http(int idx, const char *method, const char *path)
{
	char url[256];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", C->m[idx].port, path);
	struct aam_buf b;
	aam_buf_init(&b, 1 << 20);
	CURL *h = curl_easy_init();
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, curl_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
	if (strcmp(method, "POST") == 0)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
	CURLcode cc = curl_easy_perform(h);
	curl_easy_cleanup(h);
	json_t *j = cc == CURLE_OK ? json_loadb((const char *)b.data, b.len, 0, NULL) : NULL;
	aam_buf_uninit(&b);
	return j;
}

static long
mock_requests(int idx)
{
	json_t *j = mock_http(idx, "GET", "/_mock/stats");
	assert_non_null(j);
	long n = (long)json_integer_value(json_object_get(j, "requests"));
	json_decref(j);
	return n;
}

static void
put_secret(const char *name, bool header, int port)
{
	char bind[128], in[128];
	snprintf(bind, sizeof(bind), "http://127.0.0.1:%d/", port);
	snprintf(in, sizeof(in), "%s\n", KEY);
	char *out = NULL, *err = NULL;
	int rc = header ? vh_aamctl(&C->v, in, &out, &err, "secret", "put", name, "--type",
	                            "header", "--header", "x-api-key", "--bind", bind, NULL)
	                : vh_aamctl(&C->v, in, &out, &err, "secret", "put", name, "--type",
	                            "bearer", "--bind", bind, NULL);
	if (rc != 0)
		fail_msg("secret put %s: exit %d: %s", name, rc, err != NULL ? err : "");
	free(out);
	free(err);
}

/* ---- routes ---------------------------------------------------------------- */

static void
dep(struct aam_buf *b, const char *provider, int idx, const char *extra)
{
	aam_buf_printf(
	        b,
	        "      - {provider: %s, model: mock-%s, api_base: \"http://127.0.0.1:%d%s\", "
	        "credential: %s-%d, region: %s%s%s}\n",
	        provider, provider, C->m[idx].port, C->v1 ? "/v1" : "",
	        strcmp(provider, "anthropic") == 0 ? "ant" : "oai", idx, idx == M_OK2 ? "eu" : "us",
	        extra != NULL ? ", " : "", extra != NULL ? extra : "");
}

static void
write_routes(const char *strategy)
{
	struct aam_buf b;
	aam_buf_init(&b, 1 << 16);
	aam_buf_printf(&b, "model_list:\n");
	aam_buf_printf(&b, "  - model_name: chat\n    deployments:\n");
	dep(&b, "openai", M_OK, "cost: {input_per_mtok: 2, output_per_mtok: 8}");
	aam_buf_printf(&b, "  - model_name: claude\n    deployments:\n");
	dep(&b, "anthropic", M_OK, "cost: {input_per_mtok: 3, output_per_mtok: 15}");
	aam_buf_printf(&b, "  - model_name: broken\n    deployments:\n");
	dep(&b, "openai", M_500, NULL);
	aam_buf_printf(&b, "  - model_name: busy\n    deployments:\n");
	dep(&b, "openai", M_429, NULL);
	aam_buf_printf(&b, "  - model_name: once\n    deployments:\n");
	dep(&b, "openai", M_429ONCE, NULL);
	aam_buf_printf(&b, "  - model_name: small\n    deployments:\n");
	dep(&b, "openai", M_OK, "max_context: 8");
	aam_buf_printf(&b, "  - model_name: badkey\n    deployments:\n");
	aam_buf_printf(&b,
	               "      - {provider: openai, model: m, api_base: \"http://127.0.0.1:%d\", "
	               "credential: wrong-%d}\n",
	               C->m[M_OK].port, M_OK);
	aam_buf_printf(&b, "  - model_name: pair\n    deployments:\n");
	dep(&b, "openai", M_SLOW, "weight: 1, cost: {input_per_mtok: 5, output_per_mtok: 5}");
	dep(&b, "openai", M_OK2, "weight: 3, cost: {input_per_mtok: 1, output_per_mtok: 1}");
	aam_buf_printf(&b, "  - model_name: slowchat\n    deployments:\n");
	dep(&b, "openai", M_SLOW, "cost: {input_per_mtok: 2, output_per_mtok: 8}");
	aam_buf_printf(&b, "  - model_name: hang\n    deployments:\n");
	dep(&b, "openai", M_HANG, "timeout: 1s");
	aam_buf_printf(&b, "  - model_name: cutclaude\n    deployments:\n");
	aam_buf_printf(&b,
	               "      - {provider: anthropic, model: m, api_base: \"http://127.0.0.1:%d\", "
	               "credential: ant-cut, cost: {input_per_mtok: 3, output_per_mtok: 15}}\n",
	               C->cut.port);
	aam_buf_printf(&b,
	               "router_settings:\n"
	               "  routing_strategy: %s\n"
	               "  fallbacks: [ {broken: [chat]}, {busy: [chat]}, {hang: [chat]} ]\n"
	               "  context_window_fallbacks: [ {small: [chat]} ]\n"
	               "  num_retries: 1\n"
	               "  retry_backoff: 10ms\n"
	               "  retry_after_max: 5s\n"
	               "  allowed_fails: 2\n"
	               "  cooldown_time: 60s\n"
	               "  timeout: 20s\n",
	               strategy);
	assert_false(aam_buf_failed(&b));
	assert_int_equal(aam_test_write_file(C->routes, b.data, b.len, 0600), 0);
	aam_buf_uninit(&b);
}

#define CUT_CHUNK(s) "%zx\r\n%s\r\n", strlen(s), s
static const char CUT_START[] =
        "event: message_start\n"
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_cut\",\"type\":"
        "\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],"
        "\"usage\":{\"input_tokens\":777,\"output_tokens\":1}}}\n\n"
        "event: content_block_start\n"
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
        "\"text\",\"text\":\"\"}}\n\n";
/* 20 bytes of text. */
static const char CUT_DELTA[] =
        "event: content_block_delta\n"
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
        "\"text_delta\",\"text\":\"abcdefghij0123456789\"}}\n\n";

static void
cut_answer(int c)
{
	/* Read the request head and its body (Content-Length) before answering. */
	char req[65536];
	size_t n = 0;
	char *end = NULL;
	while (n + 1 < sizeof(req) && end == NULL) {
		ssize_t k = read(c, req + n, sizeof(req) - 1 - n);
		if (k <= 0)
			return;
		n += (size_t)k;
		req[n] = '\0';
		end = strstr(req, "\r\n\r\n");
	}
	if (end == NULL)
		return;
	size_t want = 0;
	for (char *h = req; h < end; h++)
		if (strncasecmp(h, "\ncontent-length:", 16) == 0)
			want = strtoul(h + 16, NULL, 10);
	size_t have = n - (size_t)(end + 4 - req);
	char sink[4096];
	while (have < want) {
		ssize_t k = read(c, sink, sizeof(sink));
		if (k <= 0)
			return;
		have += (size_t)k;
	}
	struct aam_buf b;
	aam_buf_init(&b, 1 << 16);
	aam_buf_printf(&b, "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
	                   "transfer-encoding: chunked\r\n\r\n");
	aam_buf_printf(&b, CUT_CHUNK(CUT_START));
	aam_buf_printf(&b, CUT_CHUNK(CUT_DELTA));
	aam_buf_printf(&b, CUT_CHUNK(CUT_DELTA));
	/* ...and the connection drops: no message_delta, no message_stop, no last chunk. */
	size_t off = 0;
	while (off < b.len) {
		ssize_t k = write(c, b.data + off, b.len - off);
		if (k <= 0)
			break;
		off += (size_t)k;
	}
	aam_buf_uninit(&b);
}

static void *
cut_serve(void *arg)
{
	struct cutsrv *cs = arg;
	for (;;) {
		int c = accept(cs->fd, NULL, NULL);
		if (c < 0)
			break;
		cut_answer(c);
		close(c);
	}
	return NULL;
}

static int
cut_start(struct cutsrv *cs)
{
	cs->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	if (cs->fd < 0 || bind(cs->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(cs->fd, 16) != 0 || getsockname(cs->fd, (struct sockaddr *)&sa, &sl) != 0)
		return -1;
	cs->port = ntohs(sa.sin_port);
	if (pthread_create(&cs->th, NULL, cut_serve, cs) != 0)
		return -1;
	cs->running = true;
	return 0;
}

static void
cut_stop(struct cutsrv *cs)
{
	if (!cs->running)
		return;
	shutdown(cs->fd, SHUT_RDWR);
	pthread_join(cs->th, NULL);
	close(cs->fd);
	cs->running = false;
}

static int
setup(void **state)
{
	(void)state;
	C = calloc(1, sizeof(*C));
	aam_buf_init(&C->seen, 64u << 20);
	if (!aam_test_softhsm_available() || getenv("AAM_MOCK_PROVIDER_BIN") == NULL) {
		C->skip = true;
		return 0;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	setenv("AAM_ROUTER_SEED", "7", 1);
	if (vh_setup(&C->v, NULL) != 0 || vh_start(&C->v) != 0)
		return -1;
	char *out = NULL;
	if (vh_aamctl(&C->v, NULL, &out, NULL, "keys", "init", NULL) != 0)
		return -1;
	free(out);
	snprintf(C->keyfile, sizeof(C->keyfile), "%s/mock.key", C->v.dir);
	snprintf(C->routes, sizeof(C->routes), "%s/routes.yaml", C->v.dir);
	snprintf(C->db, sizeof(C->db), "%s/gateway.db", C->v.dir);
	if (aam_test_write_file(C->keyfile, KEY "\n", strlen(KEY) + 1, 0600) != 0)
		return -1;
	const char *a500[] = {"--fail-first", "1000000", "--fail-status", "500", NULL};
	const char *a429[] = {
	        "--fail-first", "1000000", "--fail-status", "429", "--retry-after", "0", NULL};
	const char *aonce[] = {
	        "--fail-first", "1", "--fail-status", "429", "--retry-after", "1", NULL};
	const char *aslow[] = {"--latency-ms", "300", NULL};
	const char *aok[] = {"--chunk-delay-ms", "5", NULL};
	const char *ahang[] = {"--latency-ms", "4000", NULL};
	const char *const *args[M_COUNT] = {aok, NULL, a500, a429, aonce, aslow, ahang};
	for (int i = 0; i < M_COUNT; i++)
		if (mock_start(&C->m[i], args[i]) != 0)
			return -1;
	if (cut_start(&C->cut) != 0)
		return -1;
	put_secret("ant-cut", true, C->cut.port);
	for (int i = 0; i < M_COUNT; i++) {
		char name[64];
		snprintf(name, sizeof(name), "oai-%d", i);
		put_secret(name, false, C->m[i].port);
		snprintf(name, sizeof(name), "ant-%d", i);
		put_secret(name, true, C->m[i].port);
	}
	/* A credential whose value the upstream does not accept. */
	char bind[128], wn[64];
	snprintf(bind, sizeof(bind), "http://127.0.0.1:%d/", C->m[M_OK].port);
	snprintf(wn, sizeof(wn), "wrong-%d", M_OK);
	if (vh_aamctl(&C->v, "sk-not-the-key\n", NULL, NULL, "secret", "put", wn, "--type",
	              "bearer", "--bind", bind, NULL) != 0)
		return -1;
	write_routes("simple-shuffle");
	char err[512] = "";
	if (gw_router_new(C->routes, C->db, C->v.sock_gw, &C->r, err, sizeof(err)) != AAM_OK) {
		fprintf(stderr, "gw_router_new: %s\n", err);
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	if (C == NULL)
		return 0;
	if (!C->skip) {
		/* Nothing any client received carried the upstream key. */
		assert_false(vh_contains(C->seen.data, C->seen.len, KEY));
		gw_router_free(C->r);
		for (int i = 0; i < M_COUNT; i++)
			mock_stop(&C->m[i]);
		cut_stop(&C->cut);
		vh_teardown(&C->v);
		curl_global_cleanup();
	}
	aam_buf_uninit(&C->seen);
	free(C);
	C = NULL;
	return 0;
}

#define SKIP_IF_NEEDED()                                                                           \
	do {                                                                                       \
		if (C->skip) {                                                                     \
			print_message("[  SKIP    ] needs SoftHSM2 and aam-mock-provider\n");      \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

/* ---- the sink ---------------------------------------------------------------- */

struct sink {
	unsigned status;
	char ctype[64];
	int heads, bodies;
	int close_after; /* >0: the client goes away at that body call */
	struct aam_buf body;
};

static int
s_head(void *ctx, unsigned status, const struct aam_http_header *h, size_t n, const char *ct)
{
	struct sink *s = ctx;
	(void)h;
	(void)n;
	s->heads++;
	s->status = status;
	snprintf(s->ctype, sizeof(s->ctype), "%s", ct != NULL ? ct : "");
	return AAM_OK;
}

static int
s_body(void *ctx, const uint8_t *p, size_t n)
{
	struct sink *s = ctx;
	s->bodies++;
	aam_buf_append(&C->seen, p, n);
	if (s->close_after > 0 && s->bodies >= s->close_after)
		return AAM_E_CLOSED;
	aam_buf_append(&s->body, p, n);
	return AAM_OK;
}

struct run {
	struct sink s;
	struct gw_call_result res;
	int rc;
	int64_t ms;
};

static const struct gw_identity WHO = {
        .spiffe_id = "spiffe://test/agent", .team = "blue", .method = "dpop", .attested = true};

static int64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
call(struct run *o, enum gw_api api, const char *route, const char *body_json, bool stream,
     const char *policy, double daily, int close_after)
{
	memset(o, 0, sizeof(*o));
	aam_buf_init(&o->s.body, 16u << 20);
	o->s.close_after = close_after;
	json_error_t je;
	json_t *body = json_loads(body_json, 0, &je);
	assert_non_null(body);
	struct gw_call c = {.api = api,
	                    .body = body,
	                    .route = route,
	                    .stream = stream,
	                    .who = &WHO,
	                    .policy_name = policy,
	                    .policy_daily_usd = daily,
	                    .request_id = "req-1"};
	struct gw_sink sink = {.head = s_head, .body = s_body, .ctx = &o->s};
	int64_t t0 = mono_ms();
	o->rc = gw_router_call(C->r, &c, &sink, &o->res);
	o->ms = mono_ms() - t0;
	json_decref(body);
	aam_buf_append(&C->seen, o->res.error_message, strlen(o->res.error_message));
}

static void
run_free(struct run *o)
{
	aam_buf_uninit(&o->s.body);
}

static const char CHAT[] = "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"hello "
                           "there\"}],\"max_tokens\":50}";
static const char CHAT_STREAM[] = "{\"model\":\"x\",\"stream\":true,\"messages\":[{\"role\":"
                                  "\"user\",\"content\":\"hello stream\"}],\"max_tokens\":50}";
static const char MSG[] = "{\"model\":\"x\",\"max_tokens\":64,\"system\":\"be brief\","
                          "\"messages\":[{\"role\":\"user\",\"content\":\"hello claude\"}]}";

/* ---- tests ------------------------------------------------------------------- */

static void
test_completion(void **state)
{
	(void)state;
	SKIP_IF_NEEDED();
	assert_true(gw_router_vault_ok(C->r));
	assert_int_equal(gw_router_route_count(C->r), 11);
	char **names = NULL;
	size_t nnames = 0;
	assert_int_equal(gw_router_route_names(C->r, &names, &nnames), AAM_OK);
	assert_int_equal(nnames, 11);
	assert_string_equal(names[0], "chat");
	assert_string_equal(names[10], "cutclaude");
	assert_null(names[11]);
	gw_router_route_names_free(names);
	assert_true(gw_router_has_route(C->r, "claude"));
	assert_false(gw_router_has_route(C->r, "nope"));
	double d0 = 0, m0 = 0;
	assert_int_equal(gw_budget_status(C->r, "identity", WHO.spiffe_id, &d0, &m0), AAM_OK);
	struct run o;
	call(&o, GW_API_OPENAI_CHAT, "chat", CHAT, false, "p-main", 100, 0);
	if (o.rc != AAM_OK)
		fail_msg("rc %d status %u %s: %s", o.rc, o.res.status, o.res.error_code,
		         o.res.error_message);
	assert_int_equal(o.s.status, 200);
	assert_string_equal(o.s.ctype, "application/json");
	assert_true(vh_contains(o.s.body.data, o.s.body.len, "mock reply to: hello there"));
	assert_true(vh_contains(o.s.body.data, o.s.body.len, "chat.completion"));
	assert_int_equal(o.res.status, 200);
	assert_string_equal(o.res.route, "chat");
	assert_string_equal(o.res.deployment, "chat#0");
	assert_string_equal(o.res.provider, "openai");
	assert_string_equal(o.res.upstream_model, "mock-openai");
	assert_int_equal(o.res.attempts, 1);
	assert_false(o.res.fell_back);
	assert_string_equal(o.res.error_code, "");
	assert_true(o.res.input_tokens > 0 && o.res.output_tokens > 0);
	assert_true(o.res.upstream_latency_us > 0);
	double want = ((double)o.res.input_tokens * 2 + (double)o.res.output_tokens * 8) / 1e6;
	assert_true(o.res.cost_usd > want - 1e-9 && o.res.cost_usd < want + 1e-9);
	/* Settled to the real cost, for identity, team and policy alike. */
	double d = 0, m = 0;
	assert_int_equal(gw_budget_status(C->r, "identity", WHO.spiffe_id, &d, &m), AAM_OK);
	assert_true(d - d0 > want - 2e-6 && d - d0 < want + 2e-6);
	assert_int_equal(gw_budget_status(C->r, "policy", "p-main", &d, &m), AAM_OK);
	assert_true(d > want - 2e-6 && d < want + 2e-6);
	/* The upstream saw the key the vault injected. */
	json_t *last = mock_http(M_OK, "GET", "/_mock/last");
	assert_non_null(last);
	const char *auth = json_string_value(
	        json_object_get(json_object_get(last, "headers"), "authorization"));
	assert_non_null(auth);
	assert_string_equal(auth, "Bearer " KEY);
	json_decref(last);
	run_free(&o);

	/* The Anthropic API to an Anthropic deployment. */
	call(&o, GW_API_ANTHROPIC_MESSAGES, "claude", MSG, false, NULL, 0, 0);
	assert_int_equal(o.rc, AAM_OK);
	assert_int_equal(o.s.status, 200);
	assert_true(vh_contains(o.s.body.data, o.s.body.len, "\"type\":\"message\""));
	assert_true(vh_contains(o.s.body.data, o.s.body.len, "mock reply to: hello claude"));
	assert_string_equal(o.res.provider, "anthropic");
	last = mock_http(M_OK, "GET", "/_mock/last");
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(last, "headers"), "x-api-key")),
	        KEY);
	json_decref(last);
	run_free(&o);

	/* Unknown routes are refused before anything else. */
	call(&o, GW_API_OPENAI_CHAT, "nope", CHAT, false, NULL, 0, 0);
	assert_int_equal(o.rc, AAM_E_NOTFOUND);
	assert_int_equal(o.res.status, 404);
	assert_string_equal(o.res.error_code, "unknown_route");
	assert_int_equal(o.s.heads, 0);
	run_free(&o);
}

static void
test_stream(void **state)
{
	(void)state;
	SKIP_IF_NEEDED();
	struct run o;
	call(&o, GW_API_OPENAI_CHAT, "chat", CHAT_STREAM, true, NULL, 0, 0);
	assert_int_equal(o.rc, AAM_OK);
	assert_int_equal(o.s.heads, 1);
	assert_string_equal(o.s.ctype, "text/event-stream");
	/* Chunk by chunk: the reply is split into 8-byte pieces upstream. */
	assert_true(o.s.bodies >= 3);
	assert_true(vh_contains(o.s.body.data, o.s.body.len, "chat.completion.chunk"));
	assert_true(vh_contains(o.s.body.data, o.s.body.len, "data: [DONE]"));
	/* The usage chunk forced on upstream is not shown to a client that did not ask. */
	assert_false(vh_contains(o.s.body.data, o.s.body.len, "\"choices\":[]"));
	assert_true(o.res.input_tokens > 0 && o.res.output_tokens > 0);
	assert_true(o.res.cost_usd > 0);
	run_free(&o);

	/* An OpenAI client streaming from an Anthropic deployment (translated). */
	call(&o, GW_API_OPENAI_CHAT, "claude", CHAT_STREAM, true, NULL, 0, 0);
	assert_int_equal(o.rc, AAM_OK);
	assert_string_equal(o.s.ctype, "text/event-stream");
	assert_true(vh_contains(o.s.body.data, o.s.body.len, "chat.completion.chunk"));
	assert_true(vh_contains(o.s.body.data, o.s.body.len, "data: [DONE]"));
	assert_true(o.res.output_tokens > 0);
	run_free(&o);

	/* The Anthropic client streaming. */
	const char *ms =
	        "{\"model\":\"x\",\"max_tokens\":64,\"stream\":true,\"messages\":[{\"role\":"
	        "\"user\",\"content\":\"hi\"}]}";
	call(&o, GW_API_ANTHROPIC_MESSAGES, "claude", ms, true, NULL, 0, 0);
	assert_int_equal(o.rc, AAM_OK);
	assert_true(vh_contains(o.s.body.data, o.s.body.len, "event: message_stop"));
	assert_true(o.res.input_tokens > 0 && o.res.output_tokens > 0);
	run_free(&o);
}

static void
test_stream_cut_by_client_settles(void **state)
{
	(void)state;
	SKIP_IF_NEEDED();
	double d0 = 0;
	assert_int_equal(gw_budget_status(C->r, "policy", "p-cut", &d0, NULL), AAM_OK);
	assert_true(d0 == 0);
	const char *long_reply =
	        "{\"model\":\"x\",\"stream\":true,\"messages\":[{\"role\":\"user\","
	        "\"content\":\"a rather long question that makes a long reply "
	        "streamed in many small chunks\"}],\"max_tokens\":1000}";
	struct run o;
	call(&o, GW_API_OPENAI_CHAT, "chat", long_reply, true, "p-cut", 100, 2);
	assert_int_equal(o.rc, AAM_OK);
	assert_string_equal(o.res.error_code, "client_closed");
	assert_true(o.res.input_tokens > 0);
	assert_true(o.res.cost_usd > 0);
	/*
	 * Settled, not released: an OpenAI stream cut before its usage chunk is
	 * charged the worst case of the deployment that answered (the input
	 * estimate and the 1000-token output cap), never less than it spent.
	 */
	double d = 0;
	assert_int_equal(gw_budget_status(C->r, "policy", "p-cut", &d, NULL), AAM_OK);
	assert_true(d > o.res.cost_usd - 2e-6 && d < o.res.cost_usd + 2e-6);
	assert_int_equal(o.res.output_tokens, 1000);
	double reserved = (double)(o.res.input_tokens * 2 + 1000 * 8) / 1e6;
	assert_true(d > reserved - 2e-6 && d < reserved + 2e-6);
	run_free(&o);

	/* Anthropic: message_start's input plus at most a token per byte delivered. */
	const char *long_msg = "{\"model\":\"x\",\"stream\":true,\"max_tokens\":1000,"
	                       "\"messages\":[{\"role\":\"user\",\"content\":\"a rather long "
	                       "question that makes a long reply in many chunks\"}]}";
	call(&o, GW_API_ANTHROPIC_MESSAGES, "claude", long_msg, true, "p-cut2", 100, 4);
	assert_int_equal(o.rc, AAM_OK);
	assert_string_equal(o.res.error_code, "client_closed");
	/* The mock's input: ceil(bytes of message text / 4). */
	assert_int_equal(o.res.input_tokens, (61 + 3) / 4);
	assert_true(o.res.output_tokens >= 1 && o.res.output_tokens < 1000);
	assert_int_equal(gw_budget_status(C->r, "policy", "p-cut2", &d, NULL), AAM_OK);
	assert_true(d > o.res.cost_usd - 2e-6 && d < o.res.cost_usd + 2e-6);
	reserved = (double)(o.res.input_tokens * 3 + 1000 * 15) / 1e6;
	assert_true(d < reserved);
	run_free(&o);
}

/*
 * The upstream drops an Anthropic stream after message_start and 40 bytes
 * of text: the settle charges the 777 input tokens message_start reported
 * plus 40 output tokens (a token is at least a byte), not message_start's
 * 1 output token, and the client's stream still ends with an error event.
 */
static void
test_upstream_cut_anthropic_settles(void **state)
{
	(void)state;
	SKIP_IF_NEEDED();
	static const char body[] = "{\"model\":\"x\",\"stream\":true,\"max_tokens\":900,"
	                           "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
	for (int api = GW_API_OPENAI_CHAT; api <= GW_API_ANTHROPIC_MESSAGES; api++) {
		const char *policy = api == GW_API_OPENAI_CHAT ? "p-ucut-oai" : "p-ucut-ant";
		struct run o;
		call(&o, (enum gw_api)api, "cutclaude", body, true, policy, 100, 0);
		assert_int_equal(o.rc, AAM_OK);
		assert_string_equal(o.res.error_code, "upstream_truncated");
		assert_int_equal(o.res.attempts, 1);
		assert_int_equal(o.res.input_tokens, 777);
		assert_int_equal(o.res.output_tokens, 40);
		double want = (777.0 * 3 + 40.0 * 15) / 1e6;
		assert_true(o.res.cost_usd > want - 1e-9 && o.res.cost_usd < want + 1e-9);
		double d = 0;
		assert_int_equal(gw_budget_status(C->r, "policy", policy, &d, NULL), AAM_OK);
		assert_true(d > want - 2e-6 && d < want + 2e-6);
		/* The text reached the client, and its stream says it was cut. */
		assert_true(vh_contains(o.s.body.data, o.s.body.len, "abcdefghij0123456789"));
		assert_true(vh_contains(o.s.body.data, o.s.body.len, "error"));
		run_free(&o);
	}
}

static void
test_fallback_on_500_then_cooldown(void **state)
{
	(void)state;
	SKIP_IF_NEEDED();
	long before = mock_requests(M_500);
	struct run o;
	call(&o, GW_API_OPENAI_CHAT, "broken", CHAT, false, NULL, 0, 0);
	assert_int_equal(o.rc, AAM_OK);
	assert_int_equal(o.s.status, 200);
	assert_true(o.res.fell_back);
	assert_string_equal(o.res.route, "chat");
	assert_string_equal(o.res.deployment, "chat#0");
	/* One try and one retry on the broken route, then the fallback. */
	assert_int_equal(o.res.attempts, 3);
	assert_int_equal(mock_requests(M_500) - before, 2);
	run_free(&o);
	/* Two failures within the window: the deployment cools down and is not asked again. */
	call(&o, GW_API_OPENAI_CHAT, "broken", CHAT, false, NULL, 0, 0);
	assert_int_equal(o.rc, AAM_OK);
	assert_true(o.res.fell_back);
	assert_int_equal(o.res.attempts, 1);
	assert_int_equal(mock_requests(M_500) - before, 2);
	run_free(&o);
}

static void
test_fallback_on_429(void **state)
{
	(void)state;
	SKIP_IF_NEEDED();
	long before = mock_requests(M_429);
	struct run o;
	call(&o, GW_API_OPENAI_CHAT, "busy", CHAT, false, NULL, 0, 0);
	assert_int_equal(o.rc, AAM_OK);
	assert_int_equal(o.s.status, 200);
	assert_true(o.res.fell_back);
	assert_string_equal(o.res.route, "chat");
	assert_int_equal(mock_requests(M_429) - before, 2);
	run_free(&o);
}

static void
test_retry_after_honoured(void **state)
{
	(void)state;
	SKIP_IF_NEEDED();
	json_decref(mock_http(M_429ONCE, "POST", "/_mock/reset"));
	struct run o;
	call(&o, GW_API_OPENAI_CHAT, "once", CHAT, false, NULL, 0, 0);
	assert_int_equal(o.rc, AAM_OK);
	assert_int_equal(o.s.status, 200);
	assert_int_equal(o.res.attempts, 2);
	assert_false(o.res.fell_back);
	assert_string_equal(o.res.deployment, "once#0");
	/* retry-after: 1 was waited for, not the 10 ms backoff. */
	assert_true(o.ms >= 1000);
	assert_int_equal(mock_requests(M_429ONCE), 2);
	run_free(&o);
}

static void
test_timeout_then_fallback(void **state)
{
	(void)state;
	SKIP_IF_NEEDED();
	struct run o;
	call(&o, GW_API_OPENAI_CHAT, "hang", CHAT, false, NULL, 0, 0);
	if (o.rc != AAM_OK)
		fail_msg("rc %d status %u %s: %s", o.rc, o.res.status, o.res.error_code,
		         o.res.error_message);
	assert_int_equal(o.s.status, 200);
	assert_true(o.res.fell_back);
	assert_string_equal(o.res.route, "chat");
	assert_int_equal(o.res.attempts, 3);
	/* Two attempts cut at the deployment's 1 s timeout, not the mock's 4 s. */
	assert_true(o.ms >= 2000 && o.ms < 7000);
	run_free(&o);
}

static void
test_context_window_fallback(void **state)
{
	(void)state;
	SKIP_IF_NEEDED();
	long before = mock_requests(M_OK);
	struct run o;
	/* A few tokens fit "small" (max_context 8)... */
	call(&o, GW_API_OPENAI_CHAT, "small",
	     "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":5}", false,
	     NULL, 0, 0);
	assert_int_equal(o.rc, AAM_OK);
	assert_string_equal(o.res.route, "small");
	assert_false(o.res.fell_back);
	run_free(&o);
	/* ...a longer request goes to its context-window fallback. */
	call(&o, GW_API_OPENAI_CHAT, "small",
	     "{\"messages\":[{\"role\":\"user\",\"content\":\"this message is far longer than "
	     "eight tokens of context, so it cannot go to the small deployment\"}]}",
	     false, NULL, 0, 0);
	assert_int_equal(o.rc, AAM_OK);
	assert_string_equal(o.res.route, "chat");
	assert_true(o.res.fell_back);
	assert_int_equal(o.res.attempts, 1);
	assert_int_equal(mock_requests(M_OK) - before, 2);
	run_free(&o);
}

static void
test_upstream_4xx_passed_through(void **state)
{
	(void)state;
	SKIP_IF_NEEDED();
	struct run o;
	call(&o, GW_API_OPENAI_CHAT, "badkey", CHAT, false, NULL, 0, 0);
	assert_int_not_equal(o.rc, AAM_OK);
	assert_int_equal(o.res.status, 401);
	assert_string_equal(o.res.error_code, "upstream_error");
	assert_true(o.res.error_message[0] != '\0');
	assert_int_equal(o.res.attempts, 1);
	assert_int_equal(o.s.heads, 0);
	run_free(&o);
}

static void
test_budget_refused_before_upstream(void **state)
{
	(void)state;
	SKIP_IF_NEEDED();
	long before = mock_requests(M_OK);
	struct run o;
	call(&o, GW_API_OPENAI_CHAT, "chat", CHAT, false, "p-tiny", 0.000001, 0);
	assert_int_equal(o.rc, AAM_E_DENIED);
	assert_int_equal(o.res.status, 429);
	assert_string_equal(o.res.error_code, "budget_exceeded");
	assert_int_equal(o.s.heads, 0);
	assert_int_equal(mock_requests(M_OK), before);
	double d = 1;
	assert_int_equal(gw_budget_status(C->r, "policy", "p-tiny", &d, NULL), AAM_OK);
	assert_true(d == 0);
	run_free(&o);
}

#define NRACE 200

struct racer {
	pthread_barrier_t *go;
	double budget;
	int rc;
	struct gw_call_result res;
};

static void *
race_one(void *arg)
{
	struct racer *r = arg;
	struct sink s;
	memset(&s, 0, sizeof(s));
	aam_buf_init(&s.body, 1 << 20);
	json_t *body = json_loads(CHAT, 0, NULL);
	struct gw_call c = {.api = GW_API_OPENAI_CHAT,
	                    .body = body,
	                    .route = "slowchat",
	                    .who = &WHO,
	                    .policy_name = "p-race",
	                    .policy_daily_usd = r->budget};
	struct gw_sink sink = {.head = s_head, .body = s_body, .ctx = &s};
	pthread_barrier_wait(r->go);
	r->rc = gw_router_call(C->r, &c, &sink, &r->res);
	json_decref(body);
	aam_buf_uninit(&s.body);
	return NULL;
}

/* 200 concurrent calls against a budget whose worst case fits 50. */
static void
test_200_calls_budget_for_50(void **state)
{
	(void)state;
	SKIP_IF_NEEDED();
	json_t *body = json_loads(CHAT, 0, NULL);
	int64_t in = gw_estimate_input_tokens(GW_API_OPENAI_CHAT, body);
	json_decref(body);
	/* Worst case of one call: estimated input at 2 $/M, max_tokens 50 at 8 $/M. */
	double worst = ((double)in * 2 + 50.0 * 8) / 1e6;
	double budget = worst * 50.5;
	static struct racer rs[NRACE];
	pthread_t th[NRACE];
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, NRACE);
	for (int i = 0; i < NRACE; i++) {
		memset(&rs[i], 0, sizeof(rs[i]));
		rs[i].go = &go;
		rs[i].budget = budget;
		assert_int_equal(pthread_create(&th[i], NULL, race_one, &rs[i]), 0);
	}
	int ok = 0, refused = 0, other = 0;
	double cost = 0;
	for (int i = 0; i < NRACE; i++) {
		pthread_join(th[i], NULL);
		if (rs[i].rc == AAM_OK) {
			ok++;
			cost += rs[i].res.cost_usd;
		} else if (strcmp(rs[i].res.error_code, "budget_exceeded") == 0) {
			refused++;
		} else {
			other++;
		}
	}
	pthread_barrier_destroy(&go);
	print_message("200 concurrent calls: %d served, %d refused by the budget, %d other\n", ok,
	              refused, other);
	assert_int_equal(other, 0);
	/* The upstream takes 300 ms, so every reservation is made before any settles. */
	assert_true(ok <= 50);
	assert_true(ok >= 1);
	assert_int_equal(ok + refused, NRACE);
	double d = 0;
	assert_int_equal(gw_budget_status(C->r, "policy", "p-race", &d, NULL), AAM_OK);
	assert_true(d <= budget);
	assert_true(d > cost - 1e-5 && d < cost + 1e-5);
}

static int
pair_counts(int n, const char *const *regions, size_t nregions, int *slow, int *fast)
{
	*slow = *fast = 0;
	for (int i = 0; i < n; i++) {
		struct run o;
		memset(&o, 0, sizeof(o));
		aam_buf_init(&o.s.body, 1 << 20);
		json_t *body = json_loads(CHAT, 0, NULL);
		struct gw_call c = {.api = GW_API_OPENAI_CHAT,
		                    .body = body,
		                    .route = "pair",
		                    .who = &WHO,
		                    .allowed_regions = regions,
		                    .nregions = nregions};
		struct gw_sink sink = {.head = s_head, .body = s_body, .ctx = &o.s};
		int rc = gw_router_call(C->r, &c, &sink, &o.res);
		json_decref(body);
		run_free(&o);
		if (rc != AAM_OK)
			return rc;
		if (strcmp(o.res.deployment, "pair#0") == 0)
			(*slow)++;
		else
			(*fast)++;
	}
	return AAM_OK;
}

/*
 * Runtime state (latency averages, minute counts, cooldowns) of a
 * deployment that stays the same survives a reload; each reload here
 * toggles the api_base's "/v1" (the same URL upstream, another deployment
 * identity), so each strategy starts from fresh state.
 */
static void
reload(const char *strategy)
{
	C->v1 = !C->v1;
	write_routes(strategy);
	char err[512] = "";
	assert_int_equal(gw_router_reload(C->r, C->routes, err, sizeof(err)), AAM_OK);
}

static void
test_strategies(void **state)
{
	(void)state;
	SKIP_IF_NEEDED();
	int slow = 0, fast = 0;
	/* cost-based: the cheaper deployment every time. */
	reload("cost-based");
	assert_int_equal(pair_counts(6, NULL, 0, &slow, &fast), AAM_OK);
	assert_int_equal(fast, 6);
	/* ...unless the policy's regions leave only the dearer one. */
	const char *us[] = {"us"};
	assert_int_equal(pair_counts(2, us, 1, &slow, &fast), AAM_OK);
	assert_int_equal(slow, 2);
	/* latency-based: each is measured once, then the fast one wins. */
	reload("latency-based");
	assert_int_equal(pair_counts(2, NULL, 0, &slow, &fast), AAM_OK);
	assert_int_equal(slow, 1);
	assert_int_equal(pair_counts(5, NULL, 0, &slow, &fast), AAM_OK);
	assert_int_equal(fast, 5);
	/* usage-based: sequential calls alternate to the one with fewer tokens this minute. */
	reload("usage-based");
	assert_int_equal(pair_counts(4, NULL, 0, &slow, &fast), AAM_OK);
	assert_int_equal(slow, 2);
	assert_int_equal(fast, 2);
	/* least-busy: nothing in flight between sequential calls, so the weighted draw decides. */
	reload("least-busy");
	assert_int_equal(pair_counts(12, NULL, 0, &slow, &fast), AAM_OK);
	assert_int_equal(slow + fast, 12);
	assert_true(fast > 0);
	/* simple-shuffle (seed 7): weighted 1:3, both chosen, the heavier more often. */
	reload("simple-shuffle");
	assert_int_equal(pair_counts(24, NULL, 0, &slow, &fast), AAM_OK);
	assert_true(slow > 0 && fast > slow);
	/* A region no deployment has: refused before any upstream request. */
	const char *ap[] = {"ap"};
	assert_int_not_equal(pair_counts(1, ap, 1, &slow, &fast), AAM_OK);
}

static void
test_reload_keeps_old_on_error(void **state)
{
	(void)state;
	SKIP_IF_NEEDED();
	char bad[1100];
	snprintf(bad, sizeof(bad), "%s/bad.yaml", C->v.dir);
	const char *y = "model_list: []\nrouter_settings: {routing_strategy: best}\n";
	assert_int_equal(aam_test_write_file(bad, y, strlen(y), 0600), 0);
	char err[512] = "";
	assert_int_equal(gw_router_reload(C->r, bad, err, sizeof(err)), AAM_E_CONFIG);
	if (strstr(err, "bad.yaml:2:37: routing_strategy") == NULL)
		fail_msg("%s", err);
	assert_int_equal(gw_router_route_count(C->r), 11);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_completion),
	        cmocka_unit_test(test_stream),
	        cmocka_unit_test(test_stream_cut_by_client_settles),
	        cmocka_unit_test(test_upstream_cut_anthropic_settles),
	        cmocka_unit_test(test_fallback_on_500_then_cooldown),
	        cmocka_unit_test(test_fallback_on_429),
	        cmocka_unit_test(test_retry_after_honoured),
	        cmocka_unit_test(test_context_window_fallback),
	        cmocka_unit_test(test_timeout_then_fallback),
	        cmocka_unit_test(test_upstream_4xx_passed_through),
	        cmocka_unit_test(test_budget_refused_before_upstream),
	        cmocka_unit_test(test_200_calls_budget_for_50),
	        cmocka_unit_test(test_strategies),
	        cmocka_unit_test(test_reload_keeps_old_on_error),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
