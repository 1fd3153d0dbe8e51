/*
 * The GitHub mode of aam-mock-saas: issues, pull requests and releases
 * of any repository, in memory, in the shape of GitHub's REST API (the
 * surface deploy/etc/aam/tools/github.yaml describes):
 *
 *   GET/POST /repos/{owner}/{repo}/issues        list (?state, labels, per_page, page) / create
 *   GET      /repos/{owner}/{repo}/issues/{n}
 *   POST     /repos/{owner}/{repo}/issues/{n}/comments
 *   GET      /repos/{owner}/{repo}/pulls[/{n}]
 *   GET/POST /repos/{owner}/{repo}/releases
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/mock-crm/mock_saas.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *issues, *releases; /* "owner/repo" -> array */
static json_int_t next_number = 1;

static json_t *
list_of(json_t *map, const char *repo)
{
	json_t *l = json_object_get(map, repo);
	if (l == NULL) {
		l = json_array();
		json_object_set_new(map, repo, l);
	}
	return l;
}

int
mock_github_handle(const struct mock_req *r, struct aam_http_response *resp)
{
	char owner[128], repo[128], kind[32];
	int n = 0, used = 0;
	const char *p = r->path;
	if (sscanf(p, "/repos/%127[^/]/%127[^/]/%31[a-z]%n", owner, repo, kind, &used) != 3)
		return mock_error(resp, 404, "Not Found");
	const char *rest = p + used;
	if (*rest == '/' && sscanf(rest, "/%d", &n) != 1)
		return mock_error(resp, 404, "Not Found");
	char full[300];
	snprintf(full, sizeof(full), "%s/%s", owner, repo);
	const char *m = r->http->method;
	pthread_mutex_lock(&mu);
	if (issues == NULL) {
		issues = json_object();
		releases = json_object();
	}
	int rc;
	if (strcmp(kind, "issues") == 0) {
		json_t *l = list_of(issues, full);
		if (*rest == '\0' && strcmp(m, "GET") == 0) {
			rc = mock_json(resp, 200, json_incref(l));
		} else if (*rest == '\0' && strcmp(m, "POST") == 0) {
			json_t *labels = json_object_get(r->body, "labels");
			labels = labels != NULL ? json_incref(labels) : json_array();
			json_t *is = json_pack("{s:I, s:s, s:O?, s:o, s:s}", "number",
			                       next_number++, "state", "open", "title",
			                       json_object_get(r->body, "title"), "labels", labels,
			                       "repository", full);
			json_array_append(l, is);
			rc = mock_json(resp, 201, is);
		} else if (n > 0 && strcmp(m, "GET") == 0) {
			json_t *found = NULL;
			for (size_t i = 0; i < json_array_size(l) && found == NULL; i++)
				if (json_integer_value(
				            json_object_get(json_array_get(l, i), "number")) == n)
					found = json_array_get(l, i);
			rc = found != NULL ? mock_json(resp, 200, json_incref(found))
			                   : mock_error(resp, 404, "Not Found");
		} else if (n > 0 && strcmp(m, "POST") == 0 && strstr(rest, "/comments") != NULL) {
			rc = mock_json(
			        resp, 201,
			        json_pack("{s:O?}", "body", json_object_get(r->body, "body")));
		} else {
			rc = mock_error(resp, 404, "Not Found");
		}
	} else if (strcmp(kind, "pulls") == 0 && strcmp(m, "GET") == 0) {
		rc = n > 0 ? mock_error(resp, 404, "Not Found")
		           : mock_json(resp, 200, json_array());
	} else if (strcmp(kind, "releases") == 0 && *rest == '\0') {
		json_t *l = list_of(releases, full);
		if (strcmp(m, "GET") == 0) {
			rc = mock_json(resp, 200, json_incref(l));
		} else if (strcmp(m, "POST") == 0) {
			json_t *draft = json_object_get(r->body, "draft");
			json_t *rel = json_pack("{s:O?, s:O}", "tag_name",
			                        json_object_get(r->body, "tag_name"), "draft",
			                        draft != NULL ? draft : json_false());
			json_array_append(l, rel);
			rc = mock_json(resp, 201, rel);
		} else {
			rc = mock_error(resp, 404, "Not Found");
		}
	} else {
		rc = mock_error(resp, 404, "Not Found");
	}
	pthread_mutex_unlock(&mu);
	return rc;
}
