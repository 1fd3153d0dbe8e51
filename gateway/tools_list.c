/*
 * GET /v1/tools/: what the caller may call, with each action's parameters
 * as a JSON Schema (the shape model tool-calling APIs take), so an agent
 * can build its tool list from the gateway instead of a copy that drifts.
 *
 * An action is listed when the caller's policy allows it, or would allow
 * it for some parameters (only `when` conditions stood in the way); an
 * explicit deny hides it.
 */
#include "gateway/tools_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/json.h"

static const char *
schema_type(enum gwt_type t)
{
	switch (t) {
	case GWT_STRING:
		return "string";
	case GWT_INTEGER:
		return "integer";
	case GWT_NUMBER:
		return "number";
	case GWT_BOOLEAN:
		return "boolean";
	case GWT_ARRAY:
		return "array";
	}
	return "null";
}

static json_t *
num_json(const struct gwt_num *n)
{
	return n->is_int ? json_integer((json_int_t)n->i) : json_real(n->d);
}

json_t *
gwt_action_schema(const struct gwt_action *a)
{
	json_t *props = json_object(), *req = json_array();
	for (size_t i = 0; i < a->nparams; i++) {
		const struct gwt_param *p = &a->params[i];
		json_t *s = json_pack("{s:s}", "type", schema_type(p->type));
		if (p->description != NULL)
			json_object_set_new(s, "description", json_string(p->description));
		if (p->type == GWT_STRING) {
			json_object_set_new(s, "maxLength", json_integer(p->max_length));
			if (p->min_length > 0)
				json_object_set_new(s, "minLength", json_integer(p->min_length));
			if (p->pattern != NULL) {
				/* JSON Schema patterns are unanchored; ours match whole. */
				char *anch = NULL;
				if (asprintf(&anch, "^(?:%s)$", p->pattern) >= 0) {
					json_object_set_new(s, "pattern", json_string(anch));
					free(anch);
				}
			}
		}
		if (p->type == GWT_ARRAY) {
			json_object_set_new(s, "items",
			                    json_pack("{s:s}", "type", schema_type(p->items)));
			json_object_set_new(s, "maxItems", json_integer(p->max_length));
		}
		if (p->min.set)
			json_object_set_new(s, "minimum", num_json(&p->min));
		if (p->max.set)
			json_object_set_new(s, "maximum", num_json(&p->max));
		if (p->enum_values != NULL)
			json_object_set(s, "enum", p->enum_values);
		json_object_set_new(props, p->name, s);
		if (p->required)
			json_array_append_new(req, json_string(p->name));
	}
	return json_pack("{s:s, s:o, s:o, s:b}", "type", "object", "properties", props, "required",
	                 req, "additionalProperties", 0);
}

int
gwt_list_run(struct gw_tools *t, const struct gwt_call *c, struct gwt_result *out)
{
	json_t *tools = json_array();
	if (tools == NULL)
		return AAM_E_NOMEM;
	const struct gwt_catalog *cat = t->catalog;
	for (size_t i = 0; i < gwt_catalog_resource_count(cat); i++) {
		const struct gwt_resource *r = gwt_catalog_resource(cat, i);
		for (size_t k = 0; k < r->nactions; k++) {
			const struct gwt_action *a = &r->actions[k];
			if (c->set == NULL)
				continue;
			struct gw_policy_decision d;
			c->preq->kind = GW_POLICY_TOOL;
			c->preq->resource = r->name;
			c->preq->action = a->name;
			c->preq->params = NULL;
			gw_policy_decide(c->set, c->preq, &d);
			if (!gwt_decision_listable(&d, NULL))
				continue;
			json_t *item =
			        json_pack("{s:s, s:s, s:s, s:o, s:b}", "resource", r->name,
			                  "action", a->name, "method", a->method, "parameters",
			                  gwt_action_schema(a), "conditional", !d.allow);
			if (a->description != NULL)
				json_object_set_new(item, "description",
				                    json_string(a->description));
			json_array_append_new(tools, item);
		}
	}
	json_t *j = json_pack("{s:o}", "tools", tools);
	out->status = 200;
	out->decision = "allow";
	aam_buf_reset(&out->body);
	int rc = aam_json_dump_buf(j, &out->body, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	return rc;
}
