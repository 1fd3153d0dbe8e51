/*
 * Requests written as JSON: the input of `aamctl policy explain` and of
 * the decision tests in policies/tests/.  The gateway itself fills struct
 * gw_policy_request from the authenticated token and the parsed call; this
 * format exists so people can ask "what would happen if" in the same terms.
 * It is as strict as the policy files: an unknown key is an error, so a
 * misspelt "acton" cannot quietly test nothing.
 */
#include <stdio.h>
#include <string.h>

#include "aam/err.h"
#include "gateway/policy.h"

static int
fail(char *why, size_t whylen, const char *msg)
{
	if (why != NULL && whylen > 0)
		snprintf(why, whylen, "%s", msg);
	return AAM_E_INVAL;
}

static bool
key_in(const char *k, const char *const *allowed)
{
	for (size_t i = 0; allowed[i]; i++)
		if (strcmp(k, allowed[i]) == 0)
			return true;
	return false;
}

/* Checks J's keys against ALLOWED; PATH names J in the message. */
static int
check_keys(json_t *j, const char *path, const char *const *allowed, char *why, size_t whylen)
{
	const char *k;
	json_t *v;
	json_object_foreach(j, k, v)
	{
		(void)v;
		if (!key_in(k, allowed)) {
			char msg[160];
			snprintf(msg, sizeof(msg), "%s: unknown key '%.64s'", path, k);
			return fail(why, whylen, msg);
		}
	}
	return AAM_OK;
}

/* An optional string member; a present member of another type is an error. */
static int
get_str(json_t *obj, const char *key, const char *path, const char **out, char *why, size_t whylen)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (v == NULL)
		return AAM_OK;
	if (!json_is_string(v) || json_string_length(v) != strlen(json_string_value(v))) {
		char msg[160];
		snprintf(msg, sizeof(msg), "%s.%s: expected a string", path, key);
		return fail(why, whylen, msg);
	}
	*out = json_string_value(v);
	return AAM_OK;
}

static const char *const k_top[] = {"identity", "model", "region",      "max_tokens",
                                    "tool",     "time",  "environment", NULL};
static const char *const k_identity[] = {"workload",   "owner",    "team", "environment",
                                         "deployment", "attested", NULL};
static const char *const k_tool[] = {"resource", "action", "params", NULL};

int
gw_policy_request_from_json(json_t *j, int64_t default_now, struct gw_policy_request *out,
                            char *why, size_t whylen)
{
	if (out == NULL)
		return AAM_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (j == NULL || !json_is_object(j))
		return fail(why, whylen, "request: expected a JSON object");
	int rc = check_keys(j, "request", k_top, why, whylen);
	if (rc != AAM_OK)
		return rc;

	json_t *id = json_object_get(j, "identity");
	if (id == NULL || !json_is_object(id))
		return fail(why, whylen, "request.identity: expected an object with a workload");
	if ((rc = check_keys(id, "request.identity", k_identity, why, whylen)) != AAM_OK)
		return rc;
	const char *p = "request.identity";
	if ((rc = get_str(id, "workload", p, &out->workload, why, whylen)) ||
	    (rc = get_str(id, "owner", p, &out->owner, why, whylen)) ||
	    (rc = get_str(id, "team", p, &out->team, why, whylen)) ||
	    (rc = get_str(id, "environment", p, &out->environment, why, whylen)) ||
	    (rc = get_str(id, "deployment", p, &out->deployment, why, whylen)))
		return rc;
	if (out->workload == NULL)
		return fail(why, whylen, "request.identity.workload: required");
	json_t *att = json_object_get(id, "attested");
	if (att != NULL) {
		if (!json_is_boolean(att))
			return fail(why, whylen,
			            "request.identity.attested: expected true or false");
		out->attested = json_is_true(att);
	}

	json_t *model = json_object_get(j, "model");
	json_t *tool = json_object_get(j, "tool");
	if ((model == NULL) == (tool == NULL))
		return fail(why, whylen, "request: needs exactly one of model and tool");
	if (model != NULL) {
		out->kind = GW_POLICY_MODEL;
		if ((rc = get_str(j, "model", "request", &out->model, why, whylen)) ||
		    (rc = get_str(j, "region", "request", &out->region, why, whylen)))
			return rc;
		json_t *mt = json_object_get(j, "max_tokens");
		if (mt != NULL) {
			if (!json_is_integer(mt) || json_integer_value(mt) < 0)
				return fail(why, whylen,
				            "request.max_tokens: expected a non-negative integer");
			out->max_tokens = json_integer_value(mt);
		}
	} else {
		if (json_object_get(j, "region") || json_object_get(j, "max_tokens"))
			return fail(why, whylen,
			            "request: region and max_tokens belong to model calls");
		if (!json_is_object(tool))
			return fail(why, whylen, "request.tool: expected an object");
		if ((rc = check_keys(tool, "request.tool", k_tool, why, whylen)) != AAM_OK)
			return rc;
		out->kind = GW_POLICY_TOOL;
		if ((rc = get_str(tool, "resource", "request.tool", &out->resource, why, whylen)) ||
		    (rc = get_str(tool, "action", "request.tool", &out->action, why, whylen)))
			return rc;
		if (out->resource == NULL || out->action == NULL)
			return fail(why, whylen, "request.tool: needs resource and action");
		json_t *params = json_object_get(tool, "params");
		if (params != NULL && !json_is_object(params))
			return fail(why, whylen, "request.tool.params: expected an object");
		out->params = params;
	}

	out->now = default_now;
	json_t *t = json_object_get(j, "time");
	if (t != NULL) {
		if (json_is_integer(t)) {
			out->now = json_integer_value(t);
		} else if (!json_is_string(t) ||
		           gw_policy_parse_time(json_string_value(t), &out->now) != AAM_OK) {
			return fail(why, whylen,
			            "request.time: expected an RFC 3339 time such as "
			            "2026-01-05T10:00:00Z or Unix seconds");
		}
	}
	return get_str(j, "environment", "request", &out->runtime_environment, why, whylen);
}
