/*
 * aam-mock-saas: the server, the API-key check and the request log
 * shared by both modes (see mock_saas.h).
 */
#include "tests/mock-crm/mock_saas.h"

#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "aam/err.h"
#include "common/json.h"

static char KEY[512];
static const char *MODE;
static FILE *RECORD;
static pthread_mutex_t record_mu = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t stop;

int
mock_json(struct aam_http_response *resp, unsigned status, json_t *j)
{
	int rc = aam_http_respond_json(resp, status, j);
	json_decref(j);
	return rc;
}

int
mock_error(struct aam_http_response *resp, unsigned status, const char *msg)
{
	return mock_json(resp, status, json_pack("{s:s}", "message", msg));
}

static enum MHD_Result
add_query(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	json_object_set_new(cls, key, value != NULL ? json_string(value) : json_null());
	return MHD_YES;
}

static enum MHD_Result
add_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	(void)value;
	json_array_append_new(cls, json_string(key));
	return MHD_YES;
}

/* "ok", "missing" or "wrong": the key is compared, never stored. */
static const char *
auth_state(const struct aam_http_request *req)
{
	const char *h = aam_http_request_header(req, "Authorization");
	if (h == NULL)
		return "missing";
	const char *v = NULL;
	if (strncasecmp(h, "Bearer ", 7) == 0)
		v = h + 7;
	else if (strcmp(MODE, "github") == 0 && strncasecmp(h, "token ", 6) == 0)
		v = h + 6;
	return v != NULL && strcmp(v, KEY) == 0 ? "ok" : "wrong";
}

static void
record(const struct aam_http_request *req, const char *auth)
{
	json_t *query = json_object(), *names = json_array();
	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, add_query, query);
	MHD_get_connection_values(req->conn, MHD_HEADER_KIND, add_header, names);
	json_t *hdrs = json_object();
	const char *keep[] = {"Content-Type", "Accept", "If-Match", "X-GitHub-Api-Version",
	                      "User-Agent"};
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		const char *v = aam_http_request_header(req, keep[i]);
		if (v != NULL)
			json_object_set_new(hdrs, keep[i], json_string(v));
	}
	json_t *line = json_pack("{s:s, s:s, s:o, s:o, s:o, s:s, s:s%}", "method", req->method,
	                         "path", req->path, "query", query, "headers", hdrs, "header_names",
	                         names, "auth", auth, "body",
	                         req->body != NULL ? (const char *)req->body : "", req->body_len);
	if (line == NULL)
		line = json_pack("{s:s, s:s, s:s}", "method", req->method, "auth", auth, "body",
		                 "(not UTF-8)");
	char *s = json_dumps(line, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(line);
	pthread_mutex_lock(&record_mu);
	if (RECORD != NULL && s != NULL) {
		fprintf(RECORD, "%s\n", s);
		fflush(RECORD);
	}
	pthread_mutex_unlock(&record_mu);
	free(s);
}

static int
handle(void *ctx, const struct aam_http_request *req, struct aam_http_response *resp)
{
	(void)ctx;
	const char *auth = auth_state(req);
	record(req, auth);
	if (strcmp(auth, "ok") != 0)
		return mock_error(resp, 401, "Session expired or invalid");
	struct mock_req r = {.http = req, .path = req->path};
	if (req->body_len > 0) {
		r.body = NULL;
		if (aam_json_parse(req->body, req->body_len, NULL, &r.body, NULL) != AAM_OK)
			return mock_error(resp, 400, "Problems parsing JSON");
	}
	int rc;
	if (strcmp(MODE, "crm") == 0) {
		const char *prefix = "/services/data/v1";
		if (strncmp(req->path, prefix, strlen(prefix)) != 0)
			rc = mock_error(resp, 404, "The requested resource does not exist");
		else {
			r.path = req->path + strlen(prefix);
			rc = mock_crm_handle(&r, resp);
		}
	} else {
		rc = mock_github_handle(&r, resp);
	}
	json_decref(r.body);
	return rc;
}

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int
main(int argc, char **argv)
{
	const char *port = NULL, *rec = NULL, *keyfile = NULL;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--mode") == 0)
			MODE = argv[i + 1];
		else if (strcmp(argv[i], "--port") == 0)
			port = argv[i + 1];
		else if (strcmp(argv[i], "--record") == 0)
			rec = argv[i + 1];
		else if (strcmp(argv[i], "--key-file") == 0)
			keyfile = argv[i + 1];
	}
	if (MODE == NULL || (strcmp(MODE, "crm") != 0 && strcmp(MODE, "github") != 0) ||
	    port == NULL || keyfile == NULL) {
		fprintf(stderr, "usage: aam-mock-saas --mode crm|github --port N --key-file FILE "
		                "[--record FILE]\n");
		return 2;
	}
	FILE *kf = fopen(keyfile, "r");
	if (kf == NULL || fgets(KEY, sizeof(KEY), kf) == NULL) {
		fprintf(stderr, "aam-mock-saas: cannot read the key file\n");
		return 1;
	}
	fclose(kf);
	KEY[strcspn(KEY, "\r\n")] = '\0';
	if (rec != NULL && (RECORD = fopen(rec, "a")) == NULL) {
		fprintf(stderr, "aam-mock-saas: cannot open the record file\n");
		return 1;
	}
	static const struct aam_http_route routes[] = {{"*", "/*", handle}};
	struct aam_http_config cfg = {.host = "127.0.0.1",
	                              .port = (uint16_t)atoi(port),
	                              .routes = routes,
	                              .nroutes = 1,
	                              .max_body = 1024 * 1024,
	                              .name = "mock-saas",
	                              .mode = AAM_HTTP_MODE_THREAD_PER_CONN};
	struct aam_http_server *srv = NULL;
	if (aam_http_server_start(&cfg, &srv) != AAM_OK) {
		fprintf(stderr, "aam-mock-saas: cannot listen on port %s\n", port);
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	printf("aam-mock-saas %s listening on 127.0.0.1:%u\n", MODE, aam_http_server_port(srv));
	fflush(stdout);
	while (!stop)
		pause();
	aam_http_server_stop(srv);
	if (RECORD != NULL)
		fclose(RECORD);
	return 0;
}
