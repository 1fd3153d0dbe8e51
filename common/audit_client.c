/*
 * AUDIT_APPEND client; see audit_client.h.
 */
#include "common/audit_client.h"

#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "aam/ipc.h"
#include "common/buf.h"
#include "common/ipc.h"

int
aam_audit_append(struct aam_ipc_client *c, const json_t *event, int timeout_ms, uint64_t *seq_out)
{
	if (c == NULL || !json_is_object(event))
		return AAM_E_INVAL;
	/* Compact text; the vault canonicalises it (JCS) after adding seq and time. */
	char *text = json_dumps(event, JSON_COMPACT);
	if (text == NULL)
		return AAM_E_NOMEM;
	size_t len = strlen(text);
	if (len > AAM_AUDIT_EVENT_MAX) {
		free(text);
		return AAM_E_TOOBIG;
	}
	struct aam_buf reply;
	aam_buf_init(&reply, 4096);
	struct aam_ipc_hdr h;
	memset(&h, 0, sizeof(h));
	int rc = aam_ipc_call(c, AAM_IPC_AUDIT_APPEND, text, len, timeout_ms, &h, &reply);
	free(text);
	if (rc == AAM_OK) {
		struct aam_ipc_reader r;
		aam_ipc_reader_init(&r, reply.data, reply.len);
		uint64_t seq = 0;
		aam_ipc_get_u64(&r, &seq);
		if (aam_ipc_reader_end(&r) != AAM_OK)
			rc = AAM_E_PROTO;
		else if (seq_out != NULL)
			*seq_out = seq;
	}
	aam_buf_uninit(&reply);
	return rc;
}
