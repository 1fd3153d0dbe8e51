/*
 * aam-mock-provider: flags, the HTTP server (libmicrohttpd), routing of
 * paths to APIs, the behaviour controls (latency, failures, hangs, cut
 * streams, echo, key check) and the /_mock/ counters.  DEMO/TEST ONLY.
 */
#include "tests/mock-provider/mock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "aam/err.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/secret.h"

#define MOCK_MAX_BODY (8u * 1024 * 1024)

static struct {
	unsigned port;
	unsigned latency_ms, chunk_delay_ms;
	unsigned fail_first, fail_status, retry_after;
	bool retry_after_set;
	bool echo, verbose;
	unsigned threads;
	char key[512];
	size_t keylen;
} CFG = {.fail_status = 500};

static atomic_bool stopping;
static atomic_uint_fast64_t seq_counter, fail_counter;
static pthread_mutex_t stats_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t total_requests;
static json_t *path_counts;  /* path -> count, under stats_mu */
static json_t *last_request; /* under stats_mu */

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- per-connection upload ------------------------------------------ */

struct conn {
	struct aam_buf body;
};

static void
request_done(void *cls, struct MHD_Connection *c, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	struct conn *cn = *con_cls;
	if (cn != NULL) {
		aam_buf_uninit(&cn->body);
		free(cn);
		*con_cls = NULL;
	}
}

/* ---- streams ---------------------------------------------------------- */

struct stream_state {
	struct mock_events *e;
	size_t idx, off;
	unsigned delay_ms;
	unsigned cut_after; /* 0 = never */
};

static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct stream_state *st = cls;
	if (st->off == 0) {
		if (st->cut_after != 0 && st->idx >= st->cut_after)
			return MHD_CONTENT_READER_END_WITH_ERROR; /* drops the connection */
		if (st->idx >= st->e->n)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (st->idx > 0 && st->delay_ms > 0)
			sleep_ms(st->delay_ms);
		if (atomic_load(&stopping))
			return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	size_t left = st->e->len[st->idx] - st->off;
	size_t n = left < max ? left : max;
	memcpy(buf, st->e->ev[st->idx] + st->off, n);
	st->off += n;
	if (st->off == st->e->len[st->idx]) {
		st->idx++;
		st->off = 0;
	}
	return (ssize_t)n;
}

static void
stream_free(void *cls)
{
	struct stream_state *st = cls;
	mock_events_free(st->e);
	free(st);
}

/* ---- headers ---------------------------------------------------------- */

static enum MHD_Result
collect_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	char name[256];
	size_t n = strlen(key);
	if (n >= sizeof(name))
		n = sizeof(name) - 1;
	for (size_t i = 0; i < n; i++)
		name[i] = (char)(key[i] >= 'A' && key[i] <= 'Z' ? key[i] + 32 : key[i]);
	name[n] = '\0';
	const char *v = value != NULL ? value : "";
	json_t *old = json_object_get(cls, name);
	if (json_is_string(old)) {
		/* A repeated header: joined as RFC 9110 section 5.3 allows. */
		char *joined = NULL;
		if (asprintf(&joined, "%s, %s", json_string_value(old), v) >= 0) {
			json_object_set_new(cls, name, json_string(joined));
			free(joined);
		}
		return MHD_YES;
	}
	json_object_set_new(cls, name, json_string(v));
	return MHD_YES;
}

static enum MHD_Result
collect_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	json_object_set_new(cls, key, value != NULL ? json_string(value) : json_null());
	return MHD_YES;
}

static unsigned
header_uint(const json_t *hdrs, const char *name, unsigned dflt)
{
	const char *v = json_string_value(json_object_get(hdrs, name));
	if (v == NULL || *v == '\0')
		return dflt;
	char *end;
	unsigned long x = strtoul(v, &end, 10);
	if (*end != '\0' || x > 3600000ul)
		return dflt;
	return (unsigned)x;
}

/* ---- the key check ---------------------------------------------------- */

static bool
key_matches(const char *presented)
{
	size_t n = presented != NULL ? strlen(presented) : 0;
	return presented != NULL && n == CFG.keylen && aam_ct_equal(presented, CFG.key, n);
}

/* Bearer, x-api-key or api-key; for Bedrock the SigV4 access key id. */
static bool
authorized(const json_t *hdrs, enum mock_flavor fl)
{
	if (CFG.keylen == 0)
		return true;
	const char *auth = json_string_value(json_object_get(hdrs, "authorization"));
	if (fl == MOCK_BEDROCK) {
		static const char pfx[] = "AWS4-HMAC-SHA256 Credential=";
		if (auth == NULL || strncmp(auth, pfx, sizeof(pfx) - 1) != 0)
			return false;
		const char *id = auth + sizeof(pfx) - 1;
		const char *slash = strchr(id, '/');
		return slash != NULL && (size_t)(slash - id) == CFG.keylen &&
		       aam_ct_equal(id, CFG.key, CFG.keylen);
	}
	if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0 && key_matches(auth + 7))
		return true;
	return key_matches(json_string_value(json_object_get(hdrs, "x-api-key"))) ||
	       key_matches(json_string_value(json_object_get(hdrs, "api-key")));
}

/* ---- counters ------------------------------------------------------- */

static void
count_request(const char *method, const char *path, const json_t *query, const json_t *hdrs,
              const struct aam_buf *body)
{
	json_t *rec = json_pack("{s:s,s:s,s:O,s:O}", "method", method, "path", path, "query", query,
	                        "headers", hdrs);
	json_t *parsed =
	        body->len > 0 ? json_loadb((const char *)body->data, body->len, 0, NULL) : NULL;
	if (rec != NULL)
		json_object_set_new(
		        rec, "body",
		        parsed != NULL ? parsed
		                       : json_stringn((const char *)aam_buf_cstr(body), body->len));
	pthread_mutex_lock(&stats_mu);
	total_requests++;
	json_t *c = json_object_get(path_counts, path);
	json_object_set_new(path_counts, path,
	                    json_integer(c != NULL ? json_integer_value(c) + 1 : 1));
	json_decref(last_request);
	last_request = rec;
	pthread_mutex_unlock(&stats_mu);
}

static int
mock_control(const char *method, const char *path, struct mock_answer *ans)
{
	json_t *j = NULL;
	pthread_mutex_lock(&stats_mu);
	if (strcmp(path, "/_mock/stats") == 0 && strcmp(method, "GET") == 0) {
		j = json_pack("{s:I,s:O}", "requests", (json_int_t)total_requests, "paths",
		              path_counts);
	} else if (strcmp(path, "/_mock/last") == 0 && strcmp(method, "GET") == 0) {
		j = last_request != NULL ? json_incref(last_request) : json_object();
	} else if (strcmp(path, "/_mock/reset") == 0 && strcmp(method, "POST") == 0) {
		total_requests = 0;
		json_object_clear(path_counts);
		json_decref(last_request);
		last_request = NULL;
		atomic_store(&fail_counter, 0);
		j = json_pack("{s:b}", "reset", 1);
	}
	pthread_mutex_unlock(&stats_mu);
	if (j == NULL)
		return mock_error(ans, MOCK_OPENAI, 404, "unknown mock control endpoint");
	return mock_answer_json(ans, 200, j);
}

/* ---- dispatch ------------------------------------------------------- */

enum mock_api { API_NONE, API_CHAT, API_MESSAGES, API_EMBED, API_MODELS, API_BEDROCK };

/* Maps a path to an API; NAME receives an Azure deployment or Bedrock id. */
static enum mock_api
classify(const char *method, const char *path, char *name, size_t namelen, bool *bedrock_stream)
{
	bool post = strcmp(method, "POST") == 0, get = strcmp(method, "GET") == 0;
	name[0] = '\0';
	if (post &&
	    (strcmp(path, "/v1/chat/completions") == 0 || strcmp(path, "/chat/completions") == 0))
		return API_CHAT;
	if (post && strcmp(path, "/v1/messages") == 0)
		return API_MESSAGES;
	if (post && (strcmp(path, "/v1/embeddings") == 0 || strcmp(path, "/embeddings") == 0))
		return API_EMBED;
	if (get && (strcmp(path, "/v1/models") == 0 || strcmp(path, "/models") == 0))
		return API_MODELS;
	static const char az[] = "/openai/deployments/";
	if (post && strncmp(path, az, sizeof(az) - 1) == 0) {
		const char *dep = path + sizeof(az) - 1, *slash = strchr(dep, '/');
		if (slash == NULL || slash == dep || (size_t)(slash - dep) >= namelen)
			return API_NONE;
		memcpy(name, dep, (size_t)(slash - dep));
		name[slash - dep] = '\0';
		if (strcmp(slash, "/chat/completions") == 0)
			return API_CHAT;
		if (strcmp(slash, "/embeddings") == 0)
			return API_EMBED;
		return API_NONE;
	}
	static const char br[] = "/model/";
	if (post && strncmp(path, br, sizeof(br) - 1) == 0) {
		const char *id = path + sizeof(br) - 1, *slash = strrchr(id, '/');
		if (slash == NULL || slash == id || (size_t)(slash - id) >= namelen)
			return API_NONE;
		memcpy(name, id, (size_t)(slash - id));
		name[slash - id] = '\0';
		if (strcmp(slash, "/invoke") == 0) {
			*bedrock_stream = false;
			return API_BEDROCK;
		}
		if (strcmp(slash, "/invoke-with-response-stream") == 0) {
			*bedrock_stream = true;
			return API_BEDROCK;
		}
	}
	return API_NONE;
}

static int
handle_model_request(struct MHD_Connection *conn, const char *method, const char *path,
                     const struct aam_buf *body, struct mock_answer *ans, unsigned *cut_after,
                     unsigned *chunk_delay, bool *hang)
{
	char name[256];
	bool bedrock_stream = false;
	enum mock_api api = classify(method, path, name, sizeof(name), &bedrock_stream);
	enum mock_flavor fl = api == API_MESSAGES  ? MOCK_ANTHROPIC
	                      : api == API_BEDROCK ? MOCK_BEDROCK
	                                           : MOCK_OPENAI;
	json_t *hdrs = json_object(), *query = json_object();
	if (hdrs == NULL || query == NULL) {
		json_decref(hdrs);
		json_decref(query);
		return AAM_E_NOMEM;
	}
	MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, hdrs);
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, query);
	count_request(method, path, query, hdrs, body);

	int rc = AAM_OK;
	json_t *jbody = NULL;
	unsigned delay = CFG.latency_ms + header_uint(hdrs, "x-mock-latency-ms", 0);
	if (delay > 0)
		sleep_ms(delay);
	if (json_object_get(hdrs, "x-mock-hang") != NULL) {
		*hang = true;
		goto out;
	}
	*cut_after = header_uint(hdrs, "x-mock-cut-after", 0);
	*chunk_delay = header_uint(hdrs, "x-mock-chunk-delay-ms", CFG.chunk_delay_ms);
	if (api == API_NONE) {
		rc = mock_error(ans, MOCK_OPENAI, 404, "no such mock endpoint");
		goto out;
	}
	if (!authorized(hdrs, fl)) {
		rc = mock_error(ans, fl, 401, "invalid or missing API key (mock provider)");
		goto out;
	}
	unsigned ra =
	        header_uint(hdrs, "x-mock-retry-after", CFG.retry_after_set ? CFG.retry_after : 0);
	bool ra_given = json_object_get(hdrs, "x-mock-retry-after") != NULL || CFG.retry_after_set;
	unsigned fail = 0;
	if (CFG.fail_first > 0 && atomic_fetch_add(&fail_counter, 1) < CFG.fail_first)
		fail = CFG.fail_status;
	unsigned hs = header_uint(hdrs, "x-mock-status", 0);
	if (hs >= 400 && hs <= 599)
		fail = hs;
	if (fail != 0) {
		rc = mock_error(ans, fl, fail, "injected failure (mock provider)");
		if (fail == 429 || ra_given)
			snprintf(ans->retry_after, sizeof(ans->retry_after), "%u",
			         ra_given ? ra : 1u);
		goto out;
	}
	if (api == API_MODELS) {
		rc = mock_openai_models(ans);
		goto out;
	}
	if (api == API_MESSAGES && json_object_get(hdrs, "anthropic-version") == NULL) {
		rc = mock_error(ans, fl, 400, "anthropic-version: header is required");
		goto out;
	}
	if (api == API_CHAT && name[0] != '\0' && json_object_get(query, "api-version") == NULL) {
		rc = mock_error(ans, fl, 400, "api-version query parameter is required (azure)");
		goto out;
	}
	struct aam_json_limits lim = {.max_bytes = MOCK_MAX_BODY};
	if (aam_json_parse(body->data != NULL ? body->data : (const void *)"", body->len, &lim,
	                   &jbody, NULL) != AAM_OK ||
	    !json_is_object(jbody)) {
		rc = mock_error(ans, fl, 400, "request body is not a JSON object");
		goto out;
	}
	struct mock_req r = {
	        .flavor = fl,
	        .body = jbody,
	        .headers = hdrs,
	        .echo = CFG.echo || json_object_get(hdrs, "x-mock-echo") != NULL,
	        .seq = atomic_fetch_add(&seq_counter, 1) + 1,
	};
	r.model = json_string_value(json_object_get(jbody, "model"));
	if (name[0] != '\0')
		r.model = name;
	r.stream = api == API_BEDROCK ? bedrock_stream
	                              : json_is_true(json_object_get(jbody, "stream"));
	switch (api) {
	case API_CHAT:
		rc = mock_openai_chat(&r, ans);
		break;
	case API_EMBED:
		rc = mock_openai_embeddings(&r, ans);
		break;
	default:
		rc = mock_anthropic_messages(&r, ans);
		break;
	}
out:
	json_decref(jbody);
	json_decref(hdrs);
	json_decref(query);
	return rc;
}

static enum MHD_Result
send_answer(struct MHD_Connection *conn, struct mock_answer *ans, unsigned cut_after,
            unsigned chunk_delay)
{
	struct MHD_Response *resp;
	if (ans->stream != NULL) {
		struct stream_state *st = calloc(1, sizeof(*st));
		if (st == NULL)
			return MHD_NO;
		st->e = ans->stream;
		st->delay_ms = chunk_delay;
		st->cut_after = cut_after;
		ans->stream = NULL;
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, st,
		                                         stream_free);
		if (resp == NULL) {
			stream_free(st);
			return MHD_NO;
		}
		MHD_add_response_header(resp, "Cache-Control", "no-cache");
	} else {
		resp = MHD_create_response_from_buffer(ans->len, ans->body, MHD_RESPMEM_MUST_FREE);
		if (resp == NULL)
			return MHD_NO;
		ans->body = NULL;
	}
	char rid[64];
	snprintf(rid, sizeof(rid), "req_mock_%llu", (unsigned long long)atomic_load(&seq_counter));
	MHD_add_response_header(resp, "Content-Type", ans->ctype);
	MHD_add_response_header(resp, "x-request-id", rid);
	MHD_add_response_header(resp, "request-id", rid);
	if (ans->retry_after[0] != '\0')
		MHD_add_response_header(resp, "retry-after", ans->retry_after);
	if (ans->amz_error_type[0] != '\0')
		MHD_add_response_header(resp, "x-amzn-ErrorType", ans->amz_error_type);
	enum MHD_Result r = MHD_queue_response(conn, ans->status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	(void)cls;
	(void)version;
	struct conn *cn = *con_cls;
	if (cn == NULL) {
		cn = calloc(1, sizeof(*cn));
		if (cn == NULL)
			return MHD_NO;
		aam_buf_init(&cn->body, MOCK_MAX_BODY);
		*con_cls = cn;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		aam_buf_append(&cn->body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	struct mock_answer ans = {0};
	unsigned cut_after = 0, chunk_delay = CFG.chunk_delay_ms;
	bool hang = false;
	int rc;
	if (strncmp(url, "/_mock/", 7) == 0)
		rc = mock_control(method, url, &ans);
	else if (aam_buf_failed(&cn->body))
		rc = mock_error(&ans,
		                strcmp(url, "/v1/messages") == 0 ? MOCK_ANTHROPIC : MOCK_OPENAI,
		                413, "request body too large (mock provider)");
	else
		rc = handle_model_request(conn, method, url, &cn->body, &ans, &cut_after,
		                          &chunk_delay, &hang);
	if (hang) {
		/* Never answer: the caller's timeout is what is being tested.  The
		 * connection closes without a response when the mock stops. */
		while (!atomic_load(&stopping))
			sleep_ms(50);
		mock_answer_uninit(&ans);
		return MHD_NO;
	}
	if (rc != AAM_OK) {
		mock_answer_uninit(&ans);
		if (mock_error(&ans, MOCK_OPENAI, 500, "mock provider internal error") != AAM_OK)
			return MHD_NO;
	}
	if (CFG.verbose)
		fprintf(stderr, "mock: %s %s -> %u\n", method, url, ans.status);
	enum MHD_Result r = send_answer(conn, &ans, cut_after, chunk_delay);
	mock_answer_uninit(&ans);
	return r;
}

/* ---- main ------------------------------------------------------------- */

static const char USAGE[] =
        "usage: aam-mock-provider [--port N] [--latency-ms N] [--chunk-delay-ms N]\n"
        "         [--fail-first N] [--fail-status 500|429|...] [--retry-after S]\n"
        "         [--echo] [--require-key FILE] [--threads N] [--verbose]\n"
        "A DEMO/TEST model upstream (OpenAI, Anthropic, Azure, Bedrock wire formats).\n"
        "Prints \"port=N\" on the first stdout line.  See tests/mock-provider/README.md.\n";

static int
parse_uint(const char *s, unsigned max, unsigned *out)
{
	if (s == NULL || *s == '\0')
		return AAM_E_INVAL;
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max || s[0] == '-')
		return AAM_E_INVAL;
	*out = (unsigned)v;
	return AAM_OK;
}

static int
read_key(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return AAM_E_IO;
	size_t n = fread(CFG.key, 1, sizeof(CFG.key) - 1, f);
	fclose(f);
	while (n > 0 && (CFG.key[n - 1] == '\n' || CFG.key[n - 1] == '\r' ||
	                 CFG.key[n - 1] == ' ' || CFG.key[n - 1] == '\t'))
		n--;
	CFG.key[n] = '\0';
	CFG.keylen = n;
	return n > 0 ? AAM_OK : AAM_E_INVAL;
}

static int
parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int rc = AAM_OK;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(USAGE, stdout);
			exit(0);
		} else if (strcmp(a, "--echo") == 0) {
			CFG.echo = true;
			continue;
		} else if (strcmp(a, "--verbose") == 0) {
			CFG.verbose = true;
			continue;
		} else if (strcmp(a, "--port") == 0) {
			rc = parse_uint(v, 65535, &CFG.port);
		} else if (strcmp(a, "--latency-ms") == 0) {
			rc = parse_uint(v, 3600000, &CFG.latency_ms);
		} else if (strcmp(a, "--chunk-delay-ms") == 0) {
			rc = parse_uint(v, 3600000, &CFG.chunk_delay_ms);
		} else if (strcmp(a, "--fail-first") == 0) {
			rc = parse_uint(v, 1000000000, &CFG.fail_first);
		} else if (strcmp(a, "--fail-status") == 0) {
			rc = parse_uint(v, 599, &CFG.fail_status);
			if (rc == AAM_OK && CFG.fail_status < 400)
				rc = AAM_E_INVAL;
		} else if (strcmp(a, "--retry-after") == 0) {
			rc = parse_uint(v, 86400, &CFG.retry_after);
			CFG.retry_after_set = true;
		} else if (strcmp(a, "--threads") == 0) {
			rc = parse_uint(v, 256, &CFG.threads);
		} else if (strcmp(a, "--require-key") == 0) {
			rc = v != NULL ? read_key(v) : AAM_E_INVAL;
		} else {
			fprintf(stderr, "aam-mock-provider: unknown option %s\n%s", a, USAGE);
			return AAM_E_INVAL;
		}
		if (rc != AAM_OK) {
			fprintf(stderr, "aam-mock-provider: bad value for %s\n", a);
			return rc;
		}
		i++;
	}
	return AAM_OK;
}

int
main(int argc, char **argv)
{
	if (parse_args(argc, argv) != AAM_OK)
		return 2;
	path_counts = json_object();
	if (path_counts == NULL)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	/* Blocked before MHD starts its threads so only sigwait() below sees them. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)CFG.port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	struct MHD_Daemon *d;
	if (CFG.threads == 0) {
		/* Default: a thread per connection, so latency, chunk delays and
		 * hangs block only their own connection. */
		d = MHD_start_daemon(
		        flags | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL, 0, NULL, NULL,
		        on_request, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED,
		        request_done, NULL, MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096,
		        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_END);
	} else {
		d = MHD_start_daemon(flags | MHD_USE_EPOLL, 0, NULL, NULL, on_request, NULL,
		                     MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED,
		                     request_done, NULL, MHD_OPTION_THREAD_POOL_SIZE, CFG.threads,
		                     MHD_OPTION_CONNECTION_LIMIT, (unsigned)8192,
		                     MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
		                     MHD_OPTION_END);
	}
	if (d == NULL) {
		fprintf(stderr, "aam-mock-provider: cannot listen on 127.0.0.1:%u\n", CFG.port);
		json_decref(path_counts);
		return 1;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	printf("port=%u\n", info != NULL ? (unsigned)info->port : CFG.port);
	fflush(stdout);

	int sig = 0;
	sigwait(&set, &sig);
	atomic_store(&stopping, true);
	MHD_stop_daemon(d);
	json_decref(path_counts);
	json_decref(last_request);
	return 0;
}
