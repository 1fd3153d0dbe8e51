/*
 * Fuzz target for the IPC wire format.  Each input is used three ways:
 *
 *  1. as a byte stream for aam_ipc_frame_decode(), consumed frame by
 *     frame; every decoded header must re-encode to the same 24 bytes;
 *  2. as payloads for the field reader and the error-payload decoder,
 *     driven by the input's own bytes (which getter to call next);
 *  3. as the raw stream a hostile peer writes to a real server helper
 *     over a socketpair, so the dispatcher, stream reassembly and error
 *     answers run on it.  The answers are read until the server hangs up,
 *     which it must always do after a half-close.
 */
#include "aam/err.h"
#include "aam/ipc.h"
#include "common/ipc.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_frames(const uint8_t *data, size_t size)
{
	size_t off = 0;
	while (off < size) {
		struct aam_ipc_hdr h;
		size_t used;
		int rc = aam_ipc_frame_decode(data + off, size - off, &h, &used);
		if (rc != AAM_OK)
			break;
		uint8_t again[AAM_IPC_HDR_LEN];
		if (aam_ipc_hdr_encode(&h, again) != AAM_OK ||
		    memcmp(again, data + off, AAM_IPC_HDR_LEN) != 0)
			abort(); /* decode and encode disagree */
		if (used < AAM_IPC_HDR_LEN || used > size - off)
			abort();
		off += used;
	}
}

static void
fuzz_reader(const uint8_t *data, size_t size)
{
	struct aam_ipc_reader r;
	aam_ipc_reader_init(&r, data, size);
	/* The first byte picks getters two bits at a time; the rest is read. */
	uint8_t plan = size > 0 ? data[0] : 0;
	for (int i = 0; i < 16 && r.err == AAM_OK; i++) {
		uint8_t u8;
		uint16_t u16;
		uint32_t u32;
		uint64_t u64;
		const uint8_t *p;
		size_t n;
		char *s = NULL;
		switch ((plan >> ((i % 4) * 2)) & 3) {
		case 0:
			aam_ipc_get_u8(&r, &u8);
			aam_ipc_get_u16(&r, &u16);
			break;
		case 1:
			aam_ipc_get_u32(&r, &u32);
			aam_ipc_get_u64(&r, &u64);
			break;
		case 2:
			if (aam_ipc_get_bytes(&r, 4096, &p, &n) == AAM_OK && n > 0 &&
			    (p < data || p + n > data + size))
				abort(); /* a field must lie inside the payload */
			break;
		default:
			if (aam_ipc_get_str(&r, 4096, &s) == AAM_OK &&
			    !aam_ipc_utf8_valid(s, strlen(s)))
				abort();
			free(s);
			break;
		}
		if (r.off > r.len)
			abort();
	}
	aam_ipc_reader_end(&r);

	int code;
	char msg[AAM_IPC_MAX_ERRMSG + 1];
	if (aam_ipc_error_decode(data, size, &code, msg, sizeof(msg)) == AAM_OK &&
	    (code <= 0 || code >= AAM_E__MAX || !aam_ipc_utf8_valid(msg, strlen(msg))))
		abort();
}

static int
fuzz_handle(void *ctx, const struct aam_ipc_peer *peer, const struct aam_ipc_hdr *req,
            const uint8_t *payload, struct aam_ipc_replier *r)
{
	(void)ctx;
	(void)peer;
	/* Echo the last frame of each request; error on some types. */
	if (req->type & 1)
		return AAM_E_DENIED;
	if (!aam_ipc_flags_final(req->flags))
		return AAM_OK;
	return aam_ipc_reply(r, payload, req->len);
}

static struct aam_ipc_server *g_srv;

static void
fuzz_server(const uint8_t *data, size_t size)
{
	if (g_srv == NULL) {
		struct aam_ipc_server_config cfg = {
		        .handle = fuzz_handle, .frame_timeout_ms = 200, .write_timeout_ms = 500};
		if (aam_ipc_server_new(&cfg, -1, &g_srv) != AAM_OK)
			abort();
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return;
	if (aam_ipc_server_adopt(g_srv, sv[0]) != AAM_OK) {
		close(sv[1]);
		return;
	}
	/* Write and drain at once so neither side's buffer can fill up. */
	size_t off = 0;
	uint8_t sink[65536];
	if (size == 0)
		shutdown(sv[1], SHUT_WR);
	for (;;) {
		struct pollfd pfd = {.fd = sv[1], .events = POLLIN};
		if (off < size)
			pfd.events |= POLLOUT;
		int n = poll(&pfd, 1, 20000);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			abort(); /* the server neither read nor answered: a hang */
		if (pfd.revents & POLLOUT) {
			ssize_t w =
			        send(sv[1], data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w > 0)
				off += (size_t)w;
			else
				off = size; /* the server hung up on us */
			if (off == size)
				shutdown(sv[1], SHUT_WR);
		}
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t got = recv(sv[1], sink, sizeof(sink), MSG_DONTWAIT);
			if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR))
				break;
		}
	}
	close(sv[1]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_frames(data, size);
	fuzz_reader(data, size);
	fuzz_server(data, size);
	return 0;
}
