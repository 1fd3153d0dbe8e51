/*
 * libFuzzer target for the AgentPolicy loader: raw bytes go through the
 * YAML parser, the schema and the compiler.  When a set loads, it is also
 * hashed (done by the load) and asked one model and one tool decision, so
 * the indexes built from hostile input are exercised too.
 */
#include <stddef.h>
#include <stdint.h>

#include "gateway/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_policy_diag diag;
	gw_policy_diag_init(&diag);
	gw_policy_set *set = NULL;
	if (gw_policy_set_load_buffer("fuzz.yaml", data, size, NULL, &set, &diag) == 0) {
		struct gw_policy_decision d;
		struct gw_policy_request r = {.workload = "spiffe://prod/agent/finance-analyst",
		                              .kind = GW_POLICY_MODEL,
		                              .model = "reasoning-high",
		                              .now = 1767607200};
		gw_policy_decide(set, &r, &d);
		r.kind = GW_POLICY_TOOL;
		r.resource = "salesforce.accounts";
		r.action = "read";
		gw_policy_decide(set, &r, &d);
		gw_policy_set_unref(set);
	}
	char line[512];
	for (size_t i = 0; i < diag.n; i++)
		gw_policy_diag_format(&diag, i, line, sizeof(line));
	gw_policy_diag_uninit(&diag);
	return 0;
}
