/*
 * common/http: real requests over loopback with libcurl.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <curl/curl.h>

#include "aam/err.h"
#include "common/http.h"
#include "common/json.h"

struct reply {
	long status;
	struct aam_buf body;
	char allow[128];
	char cache[64];
	char ctype[64];
};

static size_t
on_body(char *p, size_t size, size_t n, void *ud)
{
	struct reply *r = ud;
	if (aam_buf_append(&r->body, p, size * n) != AAM_OK)
		return 0;
	return size * n;
}

static size_t
on_header(char *p, size_t size, size_t n, void *ud)
{
	struct reply *r = ud;
	size_t len = size * n;
	struct {
		const char *name;
		char *dst;
		size_t cap;
	} want[] = {{"Allow:", r->allow, sizeof(r->allow)},
	            {"Cache-Control:", r->cache, sizeof(r->cache)},
	            {"Content-Type:", r->ctype, sizeof(r->ctype)}};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		size_t nl = strlen(want[i].name);
		if (len > nl && strncasecmp(p, want[i].name, nl) == 0) {
			size_t v = nl;
			while (v < len && p[v] == ' ')
				v++;
			size_t e = len;
			while (e > v && (p[e - 1] == '\r' || p[e - 1] == '\n'))
				e--;
			size_t cp = e - v < want[i].cap - 1 ? e - v : want[i].cap - 1;
			memcpy(want[i].dst, p + v, cp);
			want[i].dst[cp] = '\0';
		}
	}
	return len;
}

/*
 * One request.  CHUNKED sends the body with Transfer-Encoding: chunked
 * (no Content-Length).  Returns the curl result.
 */
static CURLcode
request(uint16_t port, const char *method, const char *path, const void *body, size_t len,
        bool chunked, struct reply *r)
{
	memset(r, 0, sizeof(*r));
	aam_buf_init(&r->body, 1u << 20);
	char url[256];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)port, path);
	CURL *c = curl_easy_init();
	assert_non_null(c);
	struct curl_slist *h = NULL;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	h = curl_slist_append(h, "Expect:");
	if (body != NULL) {
		if (chunked)
			h = curl_slist_append(h, "Transfer-Encoding: chunked");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		if (!chunked)
			curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return rc;
}

static void
reply_free(struct reply *r)
{
	aam_buf_uninit(&r->body);
}

/* The error code of a JSON error body; asserts the exact shape. */
static void
assert_error_body(const struct reply *r, const char *code)
{
	json_t *j = NULL;
	assert_int_equal(aam_json_parse(r->body.data, r->body.len, NULL, &j, NULL), AAM_OK);
	json_t *e = json_object_get(j, "error");
	assert_non_null(e);
	assert_int_equal(json_object_size(j), 1);
	assert_int_equal(json_object_size(e), 2);
	assert_string_equal(json_string_value(json_object_get(e, "code")), code);
	assert_non_null(json_string_value(json_object_get(e, "message")));
	json_decref(j);
}

/* ---- the application under test ---------------------------------------- */

struct app {
	pthread_mutex_t mu;
	int calls;
	size_t last_len;
	char last_addr[AAM_HTTP_ADDR_MAX];
};

static int
on_echo(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	struct app *a = ctx;
	pthread_mutex_lock(&a->mu);
	a->calls++;
	a->last_len = req->body_len;
	snprintf(a->last_addr, sizeof(a->last_addr), "%s", req->client_addr);
	pthread_mutex_unlock(&a->mu);
	json_t *j = json_pack("{s:I}", "len", (json_int_t)req->body_len);
	const char *q = aam_http_request_query(req, "q");
	const char *hdr = aam_http_request_header(req, "X-Test");
	if (q != NULL)
		json_object_set_new(j, "q", json_string(q));
	if (hdr != NULL)
		json_object_set_new(j, "hdr", json_string(hdr));
	int rc = aam_http_respond_json(resp, 200, j);
	json_decref(j);
	if (rc == AAM_OK)
		rc = aam_http_response_header(resp, "Cache-Control", "no-store");
	return rc;
}

static int
on_fail(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	(void)ctx;
	(void)req;
	(void)resp;
	return AAM_E_DB;
}

static int
on_teapot(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	(void)ctx;
	(void)req;
	return aam_http_respond_error(resp, 418, "teapot", "I am a teapot.");
}

/*
 * Concurrency seen by /slow: requests inside the handler now, the most at
 * once, and when the current round stops waiting (CLOCK_MONOTONIC ms).
 */
static _Atomic int slow_inside, slow_most;
static _Atomic int64_t slow_until_ms;

static int64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
on_slow(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	(void)ctx;
	(void)req;
	int now = ++slow_inside;
	for (int m = slow_most; now > m && !atomic_compare_exchange_weak(&slow_most, &m, now);)
		;
	/*
	 * Stay until a second request is inside too (a serial server never gets
	 * one) or the round's shared deadline passes.  The deadline is shared, not
	 * per request: a pool thread that accepted several connections in one go
	 * serves them one after another, and a per-request wait would add up past
	 * the clients' timeout.
	 */
	while (slow_most < 2 && mono_ms() < slow_until_ms)
		usleep(10 * 1000);
	slow_inside--;
	json_t *j = json_object();
	int rc = aam_http_respond_json(resp, 200, j);
	json_decref(j);
	return rc;
}

static const struct aam_http_route routes[] = {
        {"POST", "/echo", on_echo},    {"GET", "/echo", on_echo}, {"GET", "/fail", on_fail},
        {"GET", "/teapot", on_teapot}, {"GET", "/slow", on_slow},
};

struct fixture {
	struct app app;
	struct aam_http_server *srv;
	uint16_t port;
};

static int
start_with(void **state, unsigned threads, size_t max_body)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	pthread_mutex_init(&f->app.mu, NULL);
	struct aam_http_config cfg = {
	        .host = "127.0.0.1",
	        .port = 0,
	        .routes = routes,
	        .nroutes = sizeof(routes) / sizeof(routes[0]),
	        .ctx = &f->app,
	        .max_body = max_body,
	        .threads = threads,
	        .name = "test",
	};
	if (aam_http_server_start(&cfg, &f->srv) != AAM_OK)
		return -1;
	f->port = aam_http_server_port(f->srv);
	*state = f;
	return f->port != 0 ? 0 : -1;
}

static int
setup(void **state)
{
	return start_with(state, 1, 1024);
}

static int
setup_pool(void **state)
{
	return start_with(state, 4, 1024);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	aam_http_server_stop(f->srv);
	pthread_mutex_destroy(&f->app.mu);
	free(f);
	return 0;
}

/* ---- tests ------------------------------------------------------------- */

static void
test_get_and_post(void **state)
{
	struct fixture *f = *state;
	struct reply r;
	assert_int_equal(request(f->port, "GET", "/echo?q=a%20b", NULL, 0, false, &r), CURLE_OK);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.ctype, "application/json");
	assert_string_equal(r.cache, "no-store");
	assert_string_equal(aam_buf_cstr(&r.body), "{\"len\":0,\"q\":\"a b\"}");
	reply_free(&r);

	static const char body[] = "{\"hello\":\"world\"}";
	assert_int_equal(request(f->port, "POST", "/echo", body, strlen(body), false, &r),
	                 CURLE_OK);
	assert_int_equal(r.status, 200);
	assert_string_equal(aam_buf_cstr(&r.body), "{\"len\":17}");
	reply_free(&r);
	assert_string_equal(f->app.last_addr, "127.0.0.1");
	assert_int_equal(f->app.calls, 2);
}

static void
test_not_found_and_method(void **state)
{
	struct fixture *f = *state;
	struct reply r;
	assert_int_equal(request(f->port, "GET", "/nope", NULL, 0, false, &r), CURLE_OK);
	assert_int_equal(r.status, 404);
	assert_error_body(&r, "not_found");
	reply_free(&r);

	/* A prefix of a route is not the route. */
	assert_int_equal(request(f->port, "GET", "/ech", NULL, 0, false, &r), CURLE_OK);
	assert_int_equal(r.status, 404);
	reply_free(&r);
	assert_int_equal(request(f->port, "GET", "/echo/", NULL, 0, false, &r), CURLE_OK);
	assert_int_equal(r.status, 404);
	reply_free(&r);

	assert_int_equal(request(f->port, "DELETE", "/echo", NULL, 0, false, &r), CURLE_OK);
	assert_int_equal(r.status, 405);
	assert_error_body(&r, "method_not_allowed");
	assert_string_equal(r.allow, "POST, GET");
	reply_free(&r);
	assert_int_equal(f->app.calls, 0);
}

static void
test_body_limit_content_length(void **state)
{
	struct fixture *f = *state;
	struct reply r;
	char *big = malloc(4096);
	assert_non_null(big);
	memset(big, 'a', 4096);
	/* Exactly at the limit passes, one byte over does not. */
	assert_int_equal(request(f->port, "POST", "/echo", big, 1024, false, &r), CURLE_OK);
	assert_int_equal(r.status, 200);
	reply_free(&r);
	assert_int_equal(request(f->port, "POST", "/echo", big, 1025, false, &r), CURLE_OK);
	assert_int_equal(r.status, 413);
	assert_error_body(&r, "payload_too_large");
	reply_free(&r);
	assert_int_equal(request(f->port, "POST", "/echo", big, 4096, false, &r), CURLE_OK);
	assert_int_equal(r.status, 413);
	reply_free(&r);
	free(big);
	assert_int_equal(f->app.calls, 1);
	assert_int_equal(f->app.last_len, 1024);
}

static void
test_body_limit_chunked(void **state)
{
	struct fixture *f = *state;
	struct reply r;
	char big[3000];
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(request(f->port, "POST", "/echo", "small", 5, true, &r), CURLE_OK);
	assert_int_equal(r.status, 200);
	assert_string_equal(aam_buf_cstr(&r.body), "{\"len\":5}");
	reply_free(&r);
	assert_int_equal(request(f->port, "POST", "/echo", big, sizeof(big) - 1, true, &r),
	                 CURLE_OK);
	assert_int_equal(r.status, 413);
	assert_error_body(&r, "payload_too_large");
	reply_free(&r);
	assert_int_equal(f->app.calls, 1);
}

static void
test_handler_failure_is_500(void **state)
{
	struct fixture *f = *state;
	struct reply r;
	assert_int_equal(request(f->port, "GET", "/fail", NULL, 0, false, &r), CURLE_OK);
	assert_int_equal(r.status, 500);
	assert_error_body(&r, "internal");
	/* The internal error code is not disclosed. */
	assert_null(strstr(aam_buf_cstr(&r.body), "db"));
	reply_free(&r);
	assert_int_equal(request(f->port, "GET", "/teapot", NULL, 0, false, &r), CURLE_OK);
	assert_int_equal(r.status, 418);
	assert_error_body(&r, "teapot");
	reply_free(&r);
}

struct par {
	uint16_t port;
	long status;
};

static void *
par_run(void *arg)
{
	struct par *p = arg;
	struct reply r;
	if (request(p->port, "GET", "/slow", NULL, 0, false, &r) == CURLE_OK)
		p->status = r.status;
	reply_free(&r);
	return NULL;
}

/*
 * A pool serves slow requests concurrently.  Which pool thread accepts a
 * connection is the kernel's choice, and one thread may take all four in one
 * accept series: so up to five rounds of four clients, and a pass needs two
 * requests inside the handler at once in any round (a serial server never).
 */
static void
test_pool_concurrency(void **state)
{
	struct fixture *f = *state;
	slow_most = 0;
	for (int round = 0; round < 5 && slow_most < 2; round++) {
		pthread_t t[4];
		struct par p[4];
		slow_until_ms = mono_ms() + 2000;
		for (int i = 0; i < 4; i++) {
			p[i] = (struct par){.port = f->port};
			assert_int_equal(pthread_create(&t[i], NULL, par_run, &p[i]), 0);
		}
		for (int i = 0; i < 4; i++) {
			pthread_join(t[i], NULL);
			assert_int_equal(p[i].status, 200);
		}
	}
	/* Measured by what the handler saw, not by the clock: at least two at once. */
	assert_true(slow_most >= 2);
}

static void
test_response_header_injection(void **state)
{
	(void)state;
	struct aam_http_response resp;
	memset(&resp, 0, sizeof(resp));
	assert_int_equal(aam_http_response_header(&resp, "X-A", "ok\r\nSet-Cookie: x"),
	                 AAM_E_INVAL);
	assert_int_equal(aam_http_response_header(&resp, "X-A:", "v"), AAM_E_INVAL);
	for (unsigned i = 0; i < AAM_HTTP_MAX_HEADERS; i++)
		assert_int_equal(aam_http_response_header(&resp, "X-N", "v"), AAM_OK);
	assert_int_equal(aam_http_response_header(&resp, "X-N", "v"), AAM_E_TOOBIG);
	for (size_t i = 0; i < resp.nheaders; i++) {
		free(resp.headers[i].name);
		free(resp.headers[i].value);
	}
}

static void
test_bad_config(void **state)
{
	(void)state;
	struct aam_http_server *s = (void *)1;
	struct aam_http_config cfg = {.host = "no.such.host.invalid", .port = 0};
	assert_int_equal(aam_http_server_start(&cfg, &s), AAM_E_CONFIG);
	assert_null(s);
	struct aam_http_route bad = {"GET", "/x", NULL};
	cfg = (struct aam_http_config){.host = "127.0.0.1", .routes = &bad, .nroutes = 1};
	assert_int_equal(aam_http_server_start(&cfg, &s), AAM_E_INVAL);

	/* A port already bound cannot be bound twice. */
	struct aam_http_server *a = NULL;
	cfg = (struct aam_http_config){.host = "127.0.0.1", .port = 0};
	assert_int_equal(aam_http_server_start(&cfg, &a), AAM_OK);
	cfg.port = aam_http_server_port(a);
	assert_int_equal(aam_http_server_start(&cfg, &s), AAM_E_IO);
	aam_http_server_stop(a);
	aam_http_server_stop(NULL);
}

static void
test_ipv6_loopback(void **state)
{
	(void)state;
	struct app app = {0};
	pthread_mutex_init(&app.mu, NULL);
	struct aam_http_server *s = NULL;
	struct aam_http_config cfg = {.host = "::1", .routes = routes, .nroutes = 1, .ctx = &app};
	if (aam_http_server_start(&cfg, &s) != AAM_OK) {
		print_message("[  SKIP    ] no IPv6 loopback\n");
		pthread_mutex_destroy(&app.mu);
		skip();
	}
	char url[128];
	snprintf(url, sizeof(url), "http://[::1]:%u/echo", (unsigned)aam_http_server_port(s));
	CURL *c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, "x");
	FILE *devnull = fopen("/dev/null", "w");
	curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	assert_int_equal(status, 200);
	fclose(devnull);
	curl_easy_cleanup(c);
	aam_http_server_stop(s);
	assert_string_equal(app.last_addr, "::1");
	pthread_mutex_destroy(&app.mu);
}

/* A client that stalls mid-request is disconnected after the timeout. */
static void
test_idle_timeout(void **state)
{
	(void)state;
	struct app app = {0};
	pthread_mutex_init(&app.mu, NULL);
	struct aam_http_server *s = NULL;
	struct aam_http_config cfg = {
	        .host = "127.0.0.1", .routes = routes, .nroutes = 1, .ctx = &app, .timeout_s = 1};
	assert_int_equal(aam_http_server_start(&cfg, &s), AAM_OK);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sin = {.sin_family = AF_INET,
	                          .sin_port = htons(aam_http_server_port(s)),
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	static const char partial[] =
	        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab";
	assert_int_equal(write(fd, partial, sizeof(partial) - 1), (ssize_t)(sizeof(partial) - 1));
	struct timeval tv = {.tv_sec = 5};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	char buf[256];
	ssize_t n = read(fd, buf, sizeof(buf));
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_true(n <= 0); /* closed (or reset), not answered */
	assert_true(b.tv_sec - a.tv_sec < 5);
	close(fd);
	aam_http_server_stop(s);
	assert_int_equal(app.calls, 0);
	pthread_mutex_destroy(&app.mu);
}

static void
test_status_mapping(void **state)
{
	(void)state;
	assert_int_equal(aam_http_status_for_err(AAM_E_INVAL), 400);
	assert_int_equal(aam_http_status_for_err(AAM_E_PARSE), 400);
	assert_int_equal(aam_http_status_for_err(AAM_E_TOOBIG), 413);
	assert_int_equal(aam_http_status_for_err(AAM_E_DENIED), 403);
	assert_int_equal(aam_http_status_for_err(AAM_E_BUSY), 503);
	assert_int_equal(aam_http_status_for_err(AAM_E_DB), 500);
}

/* ---- prefix routes and streaming ------------------------------------------ */

static int
on_path(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	(void)ctx;
	json_t *j = json_pack("{s:s,s:s}", "path", req->path, "method", req->method);
	int rc = aam_http_respond_json(resp, 200, j);
	json_decref(j);
	return rc;
}

static int
on_exact(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	(void)ctx;
	(void)req;
	return aam_http_respond_error(resp, 409, "exact", "The exact route.");
}

/* What the stream producers saw, shared with the test thread. */
struct sapp {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int runs;          /* producers that ran (and freed their argument) */
	int acks;          /* chunks the client has received */
	int closed_seen;   /* producers that got AAM_E_CLOSED */
	int waited_ack;    /* producers whose wait for the client's ack succeeded */
	char seen_hdr[64]; /* X-Test as the producer read it */
	char seen_q[64];
	size_t seen_len;
};

static struct sapp *g_sapp;

static void
sapp_note(int *field)
{
	pthread_mutex_lock(&g_sapp->mu);
	(*field)++;
	pthread_cond_broadcast(&g_sapp->cv);
	pthread_mutex_unlock(&g_sapp->mu);
}

/* Waits up to MS for *FIELD >= N. */
static bool
sapp_wait(int *field, int n, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&g_sapp->mu);
	while (*field < n)
		if (pthread_cond_timedwait(&g_sapp->cv, &g_sapp->mu, &ts) != 0)
			break;
	bool ok = *field >= n;
	pthread_mutex_unlock(&g_sapp->mu);
	return ok;
}

enum smode { S_EVENTS, S_BUFFERED, S_NOHEAD, S_UNTIL_CLOSED, S_LATE_HEAD, S_BIG };

struct sarg {
	enum smode mode;
};

static void
stream_run(void *arg, struct aam_http_stream *st)
{
	struct sarg *a = arg;
	enum smode mode = a->mode;
	free(a);
	const struct aam_http_request *req = aam_http_stream_request(st);
	const char *h = aam_http_request_header(req, "x-test");
	const char *q = aam_http_request_query(req, "q");
	pthread_mutex_lock(&g_sapp->mu);
	snprintf(g_sapp->seen_hdr, sizeof(g_sapp->seen_hdr), "%s", h != NULL ? h : "");
	snprintf(g_sapp->seen_q, sizeof(g_sapp->seen_q), "%s", q != NULL ? q : "");
	g_sapp->seen_len = req->body_len;
	pthread_mutex_unlock(&g_sapp->mu);

	struct aam_http_header hd[] = {{"Cache-Control", "no-cache"}};
	int rc = AAM_OK;
	switch (mode) {
	case S_EVENTS:
		/* Each event must reach the client before the next is written. */
		rc = aam_http_stream_head(st, 200, hd, 1, "text/event-stream");
		for (int i = 0; rc == AAM_OK && i < 3; i++) {
			char ev[32];
			int n = snprintf(ev, sizeof(ev), "data: %d\n\n", i);
			rc = aam_http_stream_write(st, ev, (size_t)n);
			if (rc == AAM_OK && sapp_wait(&g_sapp->acks, i + 1, 3000))
				sapp_note(&g_sapp->waited_ack);
		}
		if (rc == AAM_OK)
			assert_int_equal(aam_http_stream_head(st, 200, NULL, 0, NULL), AAM_E_INVAL);
		break;
	case S_BUFFERED:
		rc = aam_http_stream_respond(st, 201, "text/plain", "whole", 5);
		assert_int_equal(aam_http_stream_write(st, "x", 1), AAM_E_CLOSED);
		break;
	case S_NOHEAD:
		assert_int_equal(aam_http_stream_write(st, "x", 1), AAM_E_INVAL);
		break;
	case S_UNTIL_CLOSED:
		rc = aam_http_stream_head(st, 200, NULL, 0, "text/event-stream");
		for (int i = 0; rc == AAM_OK && i < 500; i++) {
			rc = aam_http_stream_write(st, "data: tick\n\n", 12);
			usleep(10 * 1000);
		}
		break;
	case S_LATE_HEAD:
		usleep(700 * 1000);
		rc = aam_http_stream_head(st, 200, NULL, 0, NULL);
		break;
	case S_BIG: {
		rc = aam_http_stream_head(st, 200, NULL, 0, "application/octet-stream");
		static uint8_t chunk[64 * 1024];
		for (int i = 0; rc == AAM_OK && i < 64; i++) {
			memset(chunk, 'a' + i % 26, sizeof(chunk));
			rc = aam_http_stream_write(st, chunk, sizeof(chunk));
		}
		break;
	}
	}
	if (rc == AAM_E_CLOSED)
		sapp_note(&g_sapp->closed_seen);
	sapp_note(&g_sapp->runs);
}

static int
on_stream(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	(void)ctx;
	struct sarg *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return AAM_E_NOMEM;
	const char *m = aam_http_request_query(req, "mode");
	a->mode = m == NULL ? S_EVENTS : (enum smode)atoi(m);
	int rc = aam_http_respond_stream(resp, stream_run, a);
	assert_int_equal(aam_http_respond_stream(resp, stream_run, a), AAM_E_INVAL);
	return rc;
}

static const struct aam_http_route sroutes[] = {
        {"GET", "/pre/exact", on_exact},
        {"*", "/pre/*", on_path},
        {"POST", "/stream", on_stream},
        {"GET", "/stream", on_stream},
};

struct sfix {
	struct sapp app;
	struct aam_http_server *srv;
	uint16_t port;
};

static int
start_stream(void **state, enum aam_http_mode mode)
{
	struct sfix *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	pthread_mutex_init(&f->app.mu, NULL);
	pthread_cond_init(&f->app.cv, NULL);
	g_sapp = &f->app;
	struct aam_http_config cfg = {
	        .host = "127.0.0.1",
	        .routes = sroutes,
	        .nroutes = sizeof(sroutes) / sizeof(sroutes[0]),
	        .max_body = 4096,
	        .name = "stream-test",
	        .mode = mode,
	};
	if (aam_http_server_start(&cfg, &f->srv) != AAM_OK)
		return -1;
	f->port = aam_http_server_port(f->srv);
	*state = f;
	return 0;
}

static int
setup_tpc(void **state)
{
	return start_stream(state, AAM_HTTP_MODE_THREAD_PER_CONN);
}

static int
setup_epoll_stream(void **state)
{
	return start_stream(state, AAM_HTTP_MODE_EPOLL);
}

static int
teardown_stream(void **state)
{
	struct sfix *f = *state;
	aam_http_server_stop(f->srv);
	pthread_cond_destroy(&f->app.cv);
	pthread_mutex_destroy(&f->app.mu);
	g_sapp = NULL;
	free(f);
	return 0;
}

static void
test_prefix_routes(void **state)
{
	struct sfix *f = *state;
	struct reply r;
	assert_int_equal(request(f->port, "DELETE", "/pre/a/b.c", NULL, 0, false, &r), CURLE_OK);
	assert_int_equal(r.status, 200);
	assert_string_equal(aam_buf_cstr(&r.body),
	                    "{\"method\":\"DELETE\",\"path\":\"/pre/a/b.c\"}");
	reply_free(&r);
	/* An earlier exact route wins over the prefix. */
	assert_int_equal(request(f->port, "GET", "/pre/exact", NULL, 0, false, &r), CURLE_OK);
	assert_int_equal(r.status, 409);
	reply_free(&r);
	/* ...but only for its method. */
	assert_int_equal(request(f->port, "POST", "/pre/exact", "x", 1, false, &r), CURLE_OK);
	assert_int_equal(r.status, 200);
	reply_free(&r);
	/* The prefix itself without its trailing slash is another path. */
	assert_int_equal(request(f->port, "GET", "/pre", NULL, 0, false, &r), CURLE_OK);
	assert_int_equal(r.status, 404);
	reply_free(&r);
}

struct sclient {
	struct aam_buf body;
	int stop_after; /* abort after this many chunks; 0: never */
	int chunks;
	char ctype[64];
	long clen;
};

static size_t
sclient_body(char *p, size_t size, size_t n, void *ud)
{
	struct sclient *c = ud;
	if (aam_buf_append(&c->body, p, size * n) != AAM_OK)
		return 0;
	c->chunks++;
	if (g_sapp != NULL)
		sapp_note(&g_sapp->acks);
	if (c->stop_after > 0 && c->chunks >= c->stop_after)
		return 0; /* abort the transfer: the client goes away */
	return size * n;
}

static CURLcode
stream_request(uint16_t port, const char *query, struct sclient *sc, long *status, long timeout_ms)
{
	char url[256];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/stream%s", (unsigned)port, query);
	aam_buf_init(&sc->body, 8u << 20);
	CURL *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "X-Test: hello");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, "abc");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sclient_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, sc);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	const char *ct = NULL;
	curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
	snprintf(sc->ctype, sizeof(sc->ctype), "%s", ct != NULL ? ct : "");
	curl_off_t cl = -1;
	curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
	sc->clen = (long)cl;
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return rc;
}

/* Events arrive one by one: the producer waits for each before the next. */
static void
test_stream_incremental(void **state)
{
	struct sfix *f = *state;
	struct sclient sc = {0};
	long status = 0;
	assert_int_equal(stream_request(f->port, "?q=x%20y", &sc, &status, 10000), CURLE_OK);
	assert_int_equal(status, 200);
	assert_string_equal(sc.ctype, "text/event-stream");
	assert_string_equal(aam_buf_cstr(&sc.body), "data: 0\n\ndata: 1\n\ndata: 2\n\n");
	assert_true(sapp_wait(&f->app.runs, 1, 2000));
	assert_int_equal(f->app.waited_ack, 3);
	assert_int_equal(sc.clen, -1); /* chunked, not buffered */
	/* The producer read the request from its own thread. */
	assert_string_equal(f->app.seen_hdr, "hello");
	assert_string_equal(f->app.seen_q, "x y");
	assert_int_equal(f->app.seen_len, 3);
	aam_buf_uninit(&sc.body);
}

/* A producer that finishes at once is answered with a Content-Length. */
static void
test_stream_buffered(void **state)
{
	struct sfix *f = *state;
	struct sclient sc = {0};
	long status = 0;
	assert_int_equal(stream_request(f->port, "?mode=1", &sc, &status, 5000), CURLE_OK);
	assert_int_equal(status, 201);
	assert_string_equal(aam_buf_cstr(&sc.body), "whole");
	assert_string_equal(sc.ctype, "text/plain");
	assert_true(sapp_wait(&f->app.runs, 1, 2000));
	aam_buf_uninit(&sc.body);
}

static void
test_stream_no_head_is_500(void **state)
{
	struct sfix *f = *state;
	struct sclient sc = {0};
	long status = 0;
	assert_int_equal(stream_request(f->port, "?mode=2", &sc, &status, 5000), CURLE_OK);
	assert_int_equal(status, 500);
	assert_non_null(strstr(aam_buf_cstr(&sc.body), "\"internal\""));
	assert_true(sapp_wait(&f->app.runs, 1, 2000));
	aam_buf_uninit(&sc.body);
}

/* The client goes away mid-stream: the producer's next writes fail. */
static void
test_stream_client_disconnect(void **state)
{
	struct sfix *f = *state;
	struct sclient sc = {.stop_after = 2};
	long status = 0;
	assert_int_equal(stream_request(f->port, "?mode=3", &sc, &status, 5000), CURLE_WRITE_ERROR);
	assert_true(sapp_wait(&f->app.closed_seen, 1, 3000));
	assert_true(sapp_wait(&f->app.runs, 1, 1000));
	aam_buf_uninit(&sc.body);
}

/* The client gives up before the head: the head reports the closed stream. */
static void
test_stream_gone_before_head(void **state)
{
	struct sfix *f = *state;
	struct sclient sc = {0};
	long status = 0;
	assert_int_equal(stream_request(f->port, "?mode=4", &sc, &status, 200),
	                 CURLE_OPERATION_TIMEDOUT);
	assert_true(sapp_wait(&f->app.runs, 1, 3000));
	assert_int_equal(f->app.closed_seen, 1);
	aam_buf_uninit(&sc.body);
}

/* Far more than the queue holds goes through intact. */
static void
test_stream_big(void **state)
{
	struct sfix *f = *state;
	struct sclient sc = {0};
	long status = 0;
	assert_int_equal(stream_request(f->port, "?mode=5", &sc, &status, 20000), CURLE_OK);
	assert_int_equal(status, 200);
	assert_int_equal(sc.body.len, 64u * 64 * 1024);
	for (size_t i = 0; i < 64; i++)
		assert_int_equal(sc.body.data[i * 64 * 1024 + 1000], 'a' + i % 26);
	aam_buf_uninit(&sc.body);
}

/* Streams need a thread per connection; the epoll mode refuses them cleanly. */
static void
test_stream_refused_in_epoll(void **state)
{
	struct sfix *f = *state;
	struct sclient sc = {0};
	long status = 0;
	assert_int_equal(stream_request(f->port, "", &sc, &status, 5000), CURLE_OK);
	assert_int_equal(status, 500);
	assert_true(sapp_wait(&f->app.runs, 1, 1000)); /* RUN still ran, to free its argument */
	assert_int_equal(f->app.closed_seen, 1);
	aam_buf_uninit(&sc.body);
}

struct bg {
	uint16_t port;
	CURLcode rc;
};

static void *
bg_stream(void *p)
{
	struct bg *b = p;
	struct sclient sc = {0};
	long status = 0;
	b->rc = stream_request(b->port, "?mode=3", &sc, &status, 10000);
	aam_buf_uninit(&sc.body);
	return NULL;
}

/* Stopping the server with a stream in flight ends it and waits for its producer. */
static void
test_stream_stop_in_flight(void **state)
{
	(void)state;
	void *st = NULL;
	assert_int_equal(setup_tpc(&st), 0);
	struct sfix *f = st;
	assert_non_null(f);
	if (f == NULL)
		return;
	struct bg b = {.port = f->port};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, bg_stream, &b), 0);
	assert_true(sapp_wait(&f->app.acks, 2, 3000));
	struct timespec a, z;
	clock_gettime(CLOCK_MONOTONIC, &a);
	aam_http_server_stop(f->srv);
	clock_gettime(CLOCK_MONOTONIC, &z);
	assert_true(z.tv_sec - a.tv_sec < 3);
	/* The producer has returned by the time stop does. */
	assert_int_equal(f->app.runs, 1);
	assert_int_equal(f->app.closed_seen, 1);
	pthread_join(t, NULL);
	assert_int_not_equal(b.rc, CURLE_OK);
	f->srv = NULL;
	teardown_stream(&st);
}

int
main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_get_and_post, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_not_found_and_method, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_body_limit_content_length, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_body_limit_chunked, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_handler_failure_is_500, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_pool_concurrency, setup_pool, teardown),
	        cmocka_unit_test(test_response_header_injection),
	        cmocka_unit_test(test_bad_config),
	        cmocka_unit_test(test_ipv6_loopback),
	        cmocka_unit_test(test_idle_timeout),
	        cmocka_unit_test(test_status_mapping),
	        cmocka_unit_test_setup_teardown(test_prefix_routes, setup_tpc, teardown_stream),
	        cmocka_unit_test_setup_teardown(test_stream_incremental, setup_tpc,
	                                        teardown_stream),
	        cmocka_unit_test_setup_teardown(test_stream_buffered, setup_tpc, teardown_stream),
	        cmocka_unit_test_setup_teardown(test_stream_no_head_is_500, setup_tpc,
	                                        teardown_stream),
	        cmocka_unit_test_setup_teardown(test_stream_client_disconnect, setup_tpc,
	                                        teardown_stream),
	        cmocka_unit_test_setup_teardown(test_stream_gone_before_head, setup_tpc,
	                                        teardown_stream),
	        cmocka_unit_test_setup_teardown(test_stream_big, setup_tpc, teardown_stream),
	        cmocka_unit_test_setup_teardown(test_stream_refused_in_epoll, setup_epoll_stream,
	                                        teardown_stream),
	        cmocka_unit_test(test_stream_stop_in_flight),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
