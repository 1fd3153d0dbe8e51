/*
 * libFuzzer target for a tool call's parameters: raw bytes are the JSON
 * body of POST /v1/tools/files.items/{read,write} against a fixed
 * catalogue whose templates have no patterns, so the schema checks, the
 * template escaping (path segments, query, headers, JSON body) and the
 * JCS digest all see hostile values.  The first byte picks the action.
 * Whatever is rendered must keep its invariants: the URL stays below the
 * base URL, and no header value carries CR or LF.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "gateway/tools_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char CAT[] =
        "apiVersion: access.envisionai.dev/v1\n"
        "kind: ToolCatalog\n"
        "metadata: {name: fuzz}\n"
        "spec:\n"
        "  base_url: https://api.example.com/v1\n"
        "  credential: k\n"
        "  resources:\n"
        "    files.items:\n"
        "      actions:\n"
        "        read:\n"
        "          method: GET\n"
        "          path: /files/{owner}/{name}.json\n"
        "          query: {v: \"{version}\", ids: \"{ids}\"}\n"
        "          headers: {If-Match: \"{etag}\"}\n"
        "          parameters:\n"
        "            owner: {type: string, required: true}\n"
        "            name: {type: string, required: true}\n"
        "            version: {type: number}\n"
        "            ids: {type: array, items: {type: integer}}\n"
        "            etag: {type: string}\n"
        "        write:\n"
        "          method: POST\n"
        "          path: /files/{id}\n"
        "          body: {meta: {t: \"{title}\", n: \"n={n}\"}, l: [\"{flag}\"]}\n"
        "          parameters:\n"
        "            id: {type: integer, required: true}\n"
        "            title: {type: string, pattern: \"[a-z]+(-[a-z]+)*\"}\n"
        "            n: {type: number, min: -5, max: 5}\n"
        "            flag: {type: boolean}\n";

static struct gwt_catalog *catalog;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (catalog == NULL &&
	    gwt_catalog_load_buffer("fuzz.yaml", CAT, strlen(CAT), &catalog, NULL) != AAM_OK)
		abort();
	if (size == 0)
		return 0;
	const struct gwt_action *a =
	        gwt_catalog_find(catalog, "files.items", (data[0] & 1) ? "write" : "read");
	json_t *params = NULL;
	struct gwt_err e;
	unsigned status;
	if (gwt_parse_params(data + 1, size - 1, &params, &e, &status) != AAM_OK)
		return 0;
	char digest[65];
	gwt_params_digest(params, digest);
	if (gwt_params_check(a, params, &e) == AAM_OK) {
		struct gwt_request r;
		gwt_request_init(&r);
		if (gwt_render(a, params, &r, &e) == AAM_OK) {
			const char *url = aam_buf_cstr(&r.url);
			if (strncmp(url, "https://api.example.com/v1/files/", 33) != 0 ||
			    strstr(url, "/../") != NULL || strstr(url, "/./") != NULL)
				abort();
			for (size_t i = 0; i < r.nheaders; i++)
				if (strpbrk(r.headers[i].value, "\r\n") != NULL)
					abort();
		}
		gwt_request_uninit(&r);
	}
	json_decref(params);
	return 0;
}
