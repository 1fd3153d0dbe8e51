/*
 * The CRM mode of aam-mock-saas: a few accounts in memory behind a
 * Salesforce-like REST surface (below /services/data/v1), the one the
 * shipped catalogue deploy/etc/aam/tools/crm.yaml describes:
 *
 *   GET    /accounts/{id}[?fields=a,b]   one account
 *   GET    /accounts?q=&region=&limit=   search by name
 *   POST   /accounts/export              {"format","region"}
 *   PATCH  /accounts/{id}                {"name","annual_revenue","region","phone"}
 *   DELETE /accounts/{id}
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tests/mock-crm/mock_saas.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *accounts; /* id -> account */

static void
seed(void)
{
	if (accounts != NULL)
		return;
	accounts = json_pack(
	        "{s:{s:s, s:s, s:s, s:i}, s:{s:s, s:s, s:s, s:i}, s:{s:s, s:s, s:s, s:i}}",
	        "001000000000001AAA", "Id", "001000000000001AAA", "Name", "Acme Corporation",
	        "Region", "EU", "AnnualRevenue", 5000000, "001000000000002AAA", "Id",
	        "001000000000002AAA", "Name", "Acme Robotics", "Region", "US", "AnnualRevenue",
	        1200000, "001000000000003AAA", "Id", "001000000000003AAA", "Name", "Globex",
	        "Region", "APAC", "AnnualRevenue", 800000);
}

static int
search(const struct mock_req *r, struct aam_http_response *resp)
{
	const char *q = aam_http_request_query(r->http, "q");
	const char *region = aam_http_request_query(r->http, "region");
	const char *limit = aam_http_request_query(r->http, "limit");
	long max = limit != NULL ? strtol(limit, NULL, 10) : 100;
	json_t *recs = json_array();
	const char *id;
	json_t *a;
	json_object_foreach(accounts, id, a)
	{
		const char *name = json_string_value(json_object_get(a, "Name"));
		if (q != NULL && strcasestr(name, q) == NULL)
			continue;
		if (region != NULL &&
		    strcmp(json_string_value(json_object_get(a, "Region")), region) != 0)
			continue;
		if ((long)json_array_size(recs) < max)
			json_array_append(recs, a);
	}
	return mock_json(resp, 200,
	                 json_pack("{s:I, s:b, s:o}", "totalSize",
	                           (json_int_t)json_array_size(recs), "done", 1, "records", recs));
}

int
mock_crm_handle(const struct mock_req *r, struct aam_http_response *resp)
{
	pthread_mutex_lock(&mu);
	seed();
	const char *m = r->http->method, *p = r->path;
	int rc;
	if (strcmp(p, "/accounts") == 0 && strcmp(m, "GET") == 0) {
		rc = search(r, resp);
	} else if (strcmp(p, "/accounts/export") == 0 && strcmp(m, "POST") == 0) {
		const char *fmt = json_string_value(json_object_get(r->body, "format"));
		rc = mock_json(resp, 200,
		               json_pack("{s:s, s:I, s:O}", "format", fmt != NULL ? fmt : "json",
		                         "rows", (json_int_t)json_object_size(accounts), "records",
		                         accounts));
	} else if (strncmp(p, "/accounts/", 10) == 0 && strchr(p + 10, '/') == NULL) {
		const char *id = p + 10;
		json_t *a = json_object_get(accounts, id);
		if (a == NULL) {
			rc = mock_error(resp, 404, "The requested resource does not exist");
		} else if (strcmp(m, "GET") == 0) {
			rc = mock_json(resp, 200, json_incref(a));
		} else if (strcmp(m, "PATCH") == 0) {
			const char *name = json_string_value(json_object_get(r->body, "name"));
			if (name != NULL)
				json_object_set_new(a, "Name", json_string(name));
			json_t *rev = json_object_get(r->body, "annual_revenue");
			if (json_is_number(rev))
				json_object_set(a, "AnnualRevenue", rev);
			rc = mock_json(resp, 200, json_pack("{s:s, s:b}", "id", id, "success", 1));
		} else if (strcmp(m, "DELETE") == 0) {
			json_object_del(accounts, id);
			resp->status = 204;
			rc = 0;
		} else {
			rc = mock_error(resp, 405, "Method not allowed");
		}
	} else {
		rc = mock_error(resp, 404, "The requested resource does not exist");
	}
	pthread_mutex_unlock(&mu);
	return rc;
}
