/*
 * Shared by http.c (routing, buffered answers) and http_stream.c
 * (streaming answers); not part of the public API.
 */
#ifndef AAM_COMMON_HTTP_INT_H
#define AAM_COMMON_HTTP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <microhttpd.h>

#include "common/http.h"
#include "common/reaper.h"

struct aam_http_server {
	struct MHD_Daemon *mhd;
	const struct aam_http_route *routes;
	size_t nroutes;
	void *ctx;
	size_t max_body;
	uint16_t port;
	const char *name;
	enum aam_http_mode mode;
	/* Set when stopping, so blocked stream callbacks give up at once. */
	atomic_bool stopping;
	/*
	 * Stream worker threads (joinable, common/reaper.h): WORKERS.running is
	 * how many still run; stop waits until none does, then joins them all.
	 */
	pthread_mutex_t wmu;
	pthread_cond_t wcv;
	struct aam_reaper workers;
};

void aam_http__response_init(struct aam_http_response *r);
void aam_http__response_uninit(struct aam_http_response *r);
/* Queues a buffered response; MHD_NO when not even that can be built. */
enum MHD_Result aam_http__queue(struct MHD_Connection *c, struct aam_http_response *r);

/*
 * Turns RESP (whose handler called aam_http_respond_stream) into a
 * streaming answer on C.  REQ is the handler's view of the request and
 * BODY its body buffer, which the stream takes over (BODY is left empty).
 */
enum MHD_Result aam_http__stream_dispatch(struct aam_http_server *s, struct MHD_Connection *c,
                                          const struct aam_http_request *req, struct aam_buf *body,
                                          struct aam_http_response *resp);

/* The stream's copy of a header or query parameter, for the accessors. */
const char *aam_http__stream_header(const void *priv, const char *name);
const char *aam_http__stream_query(const void *priv, const char *key);

#endif /* AAM_COMMON_HTTP_INT_H */
