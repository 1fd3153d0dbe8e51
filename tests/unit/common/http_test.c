/*
 * common/http: real requests over loopback with libcurl.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
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

static int
on_slow(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	(void)ctx;
	(void)req;
	usleep(200 * 1000);
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

/* A pool serves slow requests concurrently. */
static void
test_pool_concurrency(void **state)
{
	struct fixture *f = *state;
	pthread_t t[4];
	struct par p[4];
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < 4; i++) {
		p[i] = (struct par){.port = f->port};
		assert_int_equal(pthread_create(&t[i], NULL, par_run, &p[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(p[i].status, 200);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	double el = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	assert_true(el < 0.7); /* 4 x 200 ms serially would be 0.8 s */
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
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
