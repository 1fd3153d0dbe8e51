/*
 * IPC transport tests: the wire codec, then real servers and clients over
 * unix sockets in temporary folders and socketpairs, with hostile peers
 * written frame by frame.  cmocka assertions run on the main thread only;
 * helper threads record what they saw and the main thread checks it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "aam/err.h"
#include "aam/ipc.h"
#include "common/buf.h"
#include "common/ipc.h"
#include "tests/lib/testutil.h"

/* Message types private to this test (outside every assigned range). */
enum {
	T_ECHO = 0x7000,    /* reply = request payload */
	T_SLEEP = 0x7001,   /* sleep u32 ms, then reply */
	T_FAIL = 0x7002,    /* return the u32 code without replying */
	T_NOREPLY = 0x7003, /* return AAM_OK without replying */
	T_STREAM = 0x7004,  /* reply u32 total bytes in streamed frames */
	T_ACCUM = 0x7005,   /* multi-frame request; reply = concatenation */
	T_BLOCK = 0x7006,   /* wait for the gate (or cancellation), then reply */
	T_ERRMSG = 0x7007,  /* reply_error with a custom message */
	T_PEER = 0x7008,    /* reply = peer pid, uid, gid */
};

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static uint8_t
pattern(size_t i)
{
	return (uint8_t)((i * 7 + 3) ^ (i >> 11));
}

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- the test handler -------------------------------------------------- */

static atomic_int g_state_frees;
static atomic_int g_accum_calls;
static atomic_int g_entered;
static atomic_int g_gate_open;

static void
accum_free(void *p)
{
	struct aam_buf *b = p;
	aam_buf_uninit(b);
	free(b);
	atomic_fetch_add(&g_state_frees, 1);
}

static int
test_handle(void *ctx, const struct aam_ipc_peer *peer, const struct aam_ipc_hdr *req,
            const uint8_t *payload, struct aam_ipc_replier *r)
{
	(void)ctx;
	uint32_t arg = req->len >= 4 ? be32(payload) : 0;
	/* Continuation frames carry their own type (INJECT_BODY, ...). */
	uint16_t type = aam_ipc_replier_state(r) != NULL ? T_ACCUM : req->type;
	switch (type) {
	case T_ECHO:
		return aam_ipc_reply(r, payload, req->len);
	case T_SLEEP:
		sleep_ms((int)arg);
		return aam_ipc_reply(r, "late", 4);
	case T_FAIL:
		return (int)arg;
	case T_NOREPLY:
		return AAM_OK;
	case T_STREAM: {
		uint8_t *chunk = malloc(AAM_IPC_MAX_PAYLOAD);
		if (chunk == NULL)
			return AAM_E_NOMEM;
		size_t off = 0;
		int rc =
		        aam_ipc_reply_frame(r, AAM_IPC_INJECT_RESP_HEAD, AAM_IPC_F_MORE, "head", 4);
		while (rc == AAM_OK && off < arg) {
			size_t n =
			        arg - off > AAM_IPC_MAX_PAYLOAD ? AAM_IPC_MAX_PAYLOAD : arg - off;
			for (size_t i = 0; i < n; i++)
				chunk[i] = pattern(off + i);
			uint16_t flags = off + n == arg ? AAM_IPC_F_END : AAM_IPC_F_MORE;
			rc = aam_ipc_reply_frame(r, AAM_IPC_INJECT_RESP_BODY, flags, chunk, n);
			off += n;
		}
		free(chunk);
		return rc;
	}
	case T_ACCUM: {
		atomic_fetch_add(&g_accum_calls, 1);
		struct aam_buf *acc = aam_ipc_replier_state(r);
		if (acc == NULL) {
			acc = malloc(sizeof(*acc));
			if (acc == NULL)
				return AAM_E_NOMEM;
			aam_buf_init(acc, 16u * 1024 * 1024);
			aam_ipc_replier_set_state(r, acc, accum_free);
		}
		int rc = aam_buf_append(acc, payload, req->len);
		if (rc != AAM_OK || !aam_ipc_flags_final(req->flags))
			return rc;
		return aam_ipc_reply(r, acc->data, acc->len);
	}
	case T_BLOCK:
		atomic_fetch_add(&g_entered, 1);
		while (!atomic_load(&g_gate_open)) {
			if (aam_ipc_replier_cancelled(r))
				return AAM_E_CLOSED;
			sleep_ms(5);
		}
		return aam_ipc_reply(r, "open", 4);
	case T_ERRMSG:
		return aam_ipc_reply_error(r, AAM_E_DENIED, "tool \xc3\xa9xport is denied");
	case T_PEER: {
		struct aam_buf b;
		aam_buf_init(&b, 64);
		aam_ipc_put_u32(&b, (uint32_t)peer->pid);
		aam_ipc_put_u32(&b, (uint32_t)peer->uid);
		aam_ipc_put_u32(&b, (uint32_t)peer->gid);
		int rc = aam_ipc_reply(r, b.data, b.len);
		aam_buf_uninit(&b);
		return rc;
	}
	default:
		return AAM_E_UNSUPPORTED;
	}
}

/* ---- fixtures ---------------------------------------------------------- */

struct fx {
	char *dir;
	char path[200];
	struct aam_ipc_server *srv;
	pthread_t run;
	bool running;
	int run_rc;
};

static void *
run_main(void *arg)
{
	struct fx *f = arg;
	f->run_rc = aam_ipc_server_run(f->srv);
	return NULL;
}

static struct aam_ipc_server_config
default_cfg(void)
{
	struct aam_ipc_server_config cfg = {.handle = test_handle};
	return cfg;
}

/* A server listening in a fresh temp folder, run() on its own thread. */
static void
fx_start(struct fx *f, const struct aam_ipc_server_config *cfg)
{
	memset(f, 0, sizeof(*f));
	atomic_store(&g_gate_open, 0);
	atomic_store(&g_entered, 0);
	f->dir = aam_test_mkdtemp("aam-ipc");
	assert_non_null(f->dir);
	snprintf(f->path, sizeof(f->path), "%s/vault.sock", f->dir);
	int lfd;
	assert_int_equal(aam_ipc_listen(f->path, 0600, 16, &lfd), AAM_OK);
	assert_int_equal(aam_ipc_server_new(cfg, lfd, &f->srv), AAM_OK);
	assert_int_equal(pthread_create(&f->run, NULL, run_main, f), 0);
	f->running = true;
}

static void
fx_stop(struct fx *f)
{
	if (f->running) {
		aam_ipc_server_stop(f->srv);
		pthread_join(f->run, NULL);
		assert_int_equal(f->run_rc, AAM_OK);
	}
	aam_ipc_server_free(f->srv);
	aam_test_rmtree(f->dir);
	free(f->dir);
}

static struct aam_ipc_client *
fx_client(struct fx *f)
{
	struct aam_ipc_client *c = NULL;
	assert_int_equal(aam_ipc_client_connect(f->path, 2000, &c), AAM_OK);
	return c;
}

/* Waits until the server has N connections; false on timeout. */
static bool
wait_conns(struct aam_ipc_server *s, unsigned n, int ms)
{
	int64_t end = now_ms() + ms;
	while (aam_ipc_server_conns(s) != n) {
		if (now_ms() > end)
			return false;
		sleep_ms(5);
	}
	return true;
}

/* A server fed only through socketpairs; returns the peer's raw end. */
static int
pair_server(const struct aam_ipc_server_config *cfg, struct aam_ipc_server **srv)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(aam_ipc_server_new(cfg, -1, srv), AAM_OK);
	assert_int_equal(aam_ipc_server_adopt(*srv, sv[0]), AAM_OK);
	return sv[1];
}

static void
raw_frame(int fd, uint16_t type, uint16_t flags, uint32_t id, const void *p, size_t n)
{
	struct aam_ipc_hdr h = {.type = type, .flags = flags, .id = id, .len = (uint32_t)n};
	assert_int_equal(aam_ipc_write_frame(fd, &h, p, 2000), AAM_OK);
}

static void
raw_bytes(int fd, const void *p, size_t n)
{
	assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* A valid header for ID with payload length LEN, as raw bytes. */
static void
hdr_bytes(uint8_t out[AAM_IPC_HDR_LEN], uint16_t type, uint16_t flags, uint32_t id, uint32_t len)
{
	struct aam_ipc_hdr h = {.type = type, .flags = flags, .id = id, .len = len};
	if (len > AAM_IPC_MAX_PAYLOAD) {
		h.len = 0;
		assert_int_equal(aam_ipc_hdr_encode(&h, out), AAM_OK);
		out[16] = (uint8_t)(len >> 24);
		out[17] = (uint8_t)(len >> 16);
		out[18] = (uint8_t)(len >> 8);
		out[19] = (uint8_t)len;
		return;
	}
	assert_int_equal(aam_ipc_hdr_encode(&h, out), AAM_OK);
}

/* Expects an error frame for ID with CODE, then the end of the stream. */
static void
expect_error_then_eof(int fd, uint32_t id, int code)
{
	struct aam_ipc_hdr h;
	uint8_t *p = NULL;
	assert_int_equal(aam_ipc_read_frame(fd, 3000, 3000, &h, &p), AAM_OK);
	assert_int_equal(h.flags, AAM_IPC_F_ERROR);
	assert_int_equal(h.id, id);
	if (id == 0)
		assert_int_equal(h.type, AAM_IPC_ERROR);
	int got;
	char msg[AAM_IPC_MAX_ERRMSG + 1];
	assert_int_equal(aam_ipc_error_decode(p, h.len, &got, msg, sizeof(msg)), AAM_OK);
	assert_int_equal(got, code);
	assert_true(strlen(msg) > 0);
	free(p);
	assert_int_equal(aam_ipc_read_frame(fd, 3000, 3000, &h, &p), AAM_E_CLOSED);
	assert_null(p);
}

/* ---- wire codec -------------------------------------------------------- */

static void
test_header_layout_and_roundtrip(void **state)
{
	(void)state;
	struct aam_ipc_hdr h = {
	        .type = AAM_IPC_SIGN, .flags = AAM_IPC_F_MORE, .id = 0x01020304, .len = 0x00000A0B};
	uint8_t raw[AAM_IPC_HDR_LEN];
	assert_int_equal(aam_ipc_hdr_encode(&h, raw), AAM_OK);
	const uint8_t want[AAM_IPC_HDR_LEN] = {'A', 'A', 'M', '1', 0, 1, 0x01, 0x00, 0, 2, 0, 0,
	                                       1,   2,   3,   4,   0, 0, 0x0A, 0x0B, 0, 0, 0, 0};
	assert_memory_equal(raw, want, sizeof(want));
	struct aam_ipc_hdr d;
	assert_int_equal(aam_ipc_hdr_decode(raw, &d), AAM_OK);
	assert_int_equal(d.type, h.type);
	assert_int_equal(d.flags, h.flags);
	assert_int_equal(d.id, h.id);
	assert_int_equal(d.len, h.len);

	/* Encoder refuses what the decoder would refuse. */
	h.flags = AAM_IPC_F_MORE | AAM_IPC_F_END;
	assert_int_equal(aam_ipc_hdr_encode(&h, raw), AAM_E_INVAL);
	h.flags = 0;
	h.len = AAM_IPC_MAX_PAYLOAD + 1;
	assert_int_equal(aam_ipc_hdr_encode(&h, raw), AAM_E_INVAL);

	/* A whole frame through a buffer and back. */
	struct aam_buf b;
	aam_buf_init(&b, 0);
	h.len = 5;
	assert_int_equal(aam_ipc_frame_encode(&b, &h, "hello", 5), AAM_OK);
	assert_int_equal(aam_ipc_frame_encode(&b, &h, "hell", 4), AAM_E_INVAL);
	size_t used;
	assert_int_equal(aam_ipc_frame_decode(b.data, b.len, &d, &used), AAM_OK);
	assert_int_equal(used, AAM_IPC_HDR_LEN + 5);
	assert_memory_equal(b.data + AAM_IPC_HDR_LEN, "hello", 5);
	aam_buf_uninit(&b);
}

static void
test_decode_truncated(void **state)
{
	(void)state;
	uint8_t frame[AAM_IPC_HDR_LEN + 10];
	hdr_bytes(frame, T_ECHO, 0, 7, 10);
	memset(frame + AAM_IPC_HDR_LEN, 'x', 10);
	struct aam_ipc_hdr h;
	size_t used = 99;
	/* Every proper prefix, header or payload, needs more and consumes nothing. */
	for (size_t n = 0; n < sizeof(frame); n++) {
		assert_int_equal(aam_ipc_frame_decode(frame, n, &h, &used), AAM_IPC_NEED_MORE);
		assert_int_equal(used, 0);
	}
	assert_int_equal(aam_ipc_frame_decode(frame, sizeof(frame), &h, &used), AAM_OK);
	assert_int_equal(used, sizeof(frame));
	/* Trailing bytes belong to the next frame. */
	uint8_t two[sizeof(frame) + 3];
	memcpy(two, frame, sizeof(frame));
	memcpy(two + sizeof(frame), "AAM", 3);
	assert_int_equal(aam_ipc_frame_decode(two, sizeof(two), &h, &used), AAM_OK);
	assert_int_equal(used, sizeof(frame));
	assert_int_equal(aam_ipc_frame_decode(two + used, 3, &h, &used), AAM_IPC_NEED_MORE);
}

static void
test_decode_hostile_headers(void **state)
{
	(void)state;
	uint8_t raw[AAM_IPC_HDR_LEN];
	struct aam_ipc_hdr h;
	size_t used;

	/* Bad magic: rejected from the first wrong byte, id not trusted. */
	hdr_bytes(raw, T_ECHO, 0, 9, 0);
	raw[0] = 'G';
	assert_int_equal(aam_ipc_frame_decode(raw, 1, &h, &used), AAM_E_PARSE);
	assert_int_equal(aam_ipc_hdr_decode(raw, &h), AAM_E_PARSE);
	assert_int_equal(h.id, 0);
	assert_int_equal(h.type, AAM_IPC_ERROR);

	/* Bad version, also before the header is complete. */
	hdr_bytes(raw, T_ECHO, 0, 9, 0);
	raw[5] = 2;
	assert_int_equal(aam_ipc_frame_decode(raw, 6, &h, &used), AAM_E_PARSE);
	assert_int_equal(aam_ipc_hdr_decode(raw, &h), AAM_E_PARSE);
	assert_int_equal(h.id, 0);

	/* Nonzero reserved fields: the id is known, the frame is not ok. */
	for (int off = 10; off < 24; off++) {
		if (off >= 12 && off < 20)
			continue;
		hdr_bytes(raw, T_ECHO, 0, 9, 0);
		raw[off] = 0x80;
		assert_int_equal(aam_ipc_frame_decode(raw, sizeof(raw), &h, &used), AAM_E_PARSE);
		assert_int_equal(h.id, 9);
		assert_int_equal(used, 0);
	}

	/* Unknown flag bits and invalid combinations. */
	const uint16_t bad_flags[] = {0x0008, 0x8000, AAM_IPC_F_MORE | AAM_IPC_F_END,
	                              AAM_IPC_F_ERROR | AAM_IPC_F_MORE,
	                              AAM_IPC_F_ERROR | AAM_IPC_F_END};
	for (size_t i = 0; i < sizeof(bad_flags) / sizeof(bad_flags[0]); i++) {
		hdr_bytes(raw, T_ECHO, 0, 9, 0);
		raw[8] = (uint8_t)(bad_flags[i] >> 8);
		raw[9] = (uint8_t)bad_flags[i];
		assert_int_equal(aam_ipc_hdr_decode(raw, &h), AAM_E_PARSE);
	}

	/* Oversized length: TOOBIG at once, without waiting for the payload. */
	hdr_bytes(raw, T_ECHO, 0, 9, AAM_IPC_MAX_PAYLOAD + 1);
	assert_int_equal(aam_ipc_frame_decode(raw, sizeof(raw), &h, &used), AAM_E_TOOBIG);
	assert_int_equal(h.id, 9);
	hdr_bytes(raw, T_ECHO, 0, 9, 0xFFFFFFFFu);
	assert_int_equal(aam_ipc_hdr_decode(raw, &h), AAM_E_TOOBIG);
	/* Exactly the maximum is fine. */
	hdr_bytes(raw, T_ECHO, 0, 9, AAM_IPC_MAX_PAYLOAD);
	assert_int_equal(aam_ipc_frame_decode(raw, sizeof(raw), &h, &used), AAM_IPC_NEED_MORE);
}

static void
test_reader_bounds(void **state)
{
	(void)state;
	struct aam_buf b;
	aam_buf_init(&b, 0);
	aam_ipc_put_u8(&b, 0xAB);
	aam_ipc_put_u16(&b, 0xBEEF);
	aam_ipc_put_u32(&b, 0xDEADBEEF);
	aam_ipc_put_u64(&b, 0x0123456789ABCDEFull);
	aam_ipc_put_bytes(&b, "\x00\x01\x02", 3);
	aam_ipc_put_str(&b, "spiffe://prod/agent/\xc3\xa9");
	aam_ipc_put_fixed(&b, "FIX", 3);
	assert_false(aam_buf_failed(&b));

	struct aam_ipc_reader r;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	const uint8_t *p;
	size_t n;
	char *s;
	aam_ipc_reader_init(&r, b.data, b.len);
	assert_int_equal(aam_ipc_get_u8(&r, &u8), AAM_OK);
	assert_int_equal(aam_ipc_get_u16(&r, &u16), AAM_OK);
	assert_int_equal(aam_ipc_get_u32(&r, &u32), AAM_OK);
	assert_int_equal(aam_ipc_get_u64(&r, &u64), AAM_OK);
	assert_int_equal(u8, 0xAB);
	assert_int_equal(u16, 0xBEEF);
	assert_int_equal(u32, 0xDEADBEEF);
	assert_true(u64 == 0x0123456789ABCDEFull);
	assert_int_equal(aam_ipc_get_bytes(&r, 16, &p, &n), AAM_OK);
	assert_int_equal(n, 3);
	assert_memory_equal(p, "\x00\x01\x02", 3);
	assert_int_equal(aam_ipc_get_str(&r, 64, &s), AAM_OK);
	assert_string_equal(s, "spiffe://prod/agent/\xc3\xa9");
	free(s);
	assert_int_equal(aam_ipc_reader_end(&r), AAM_E_PARSE); /* "FIX" left */
	assert_int_equal(aam_ipc_get_fixed(&r, 3, &p), AAM_OK);
	assert_int_equal(aam_ipc_reader_end(&r), AAM_OK);
	/* Past the end: fails, and stays failed. */
	assert_int_equal(aam_ipc_get_u8(&r, &u8), AAM_E_PARSE);
	assert_int_equal(aam_ipc_reader_end(&r), AAM_E_PARSE);

	/* Every getter fails cleanly on every truncation of the payload. */
	for (size_t cut = 0; cut < b.len - 3; cut++) {
		aam_ipc_reader_init(&r, b.data, cut);
		aam_ipc_get_u8(&r, &u8);
		aam_ipc_get_u16(&r, &u16);
		aam_ipc_get_u32(&r, &u32);
		aam_ipc_get_u64(&r, &u64);
		aam_ipc_get_bytes(&r, 16, &p, &n);
		s = NULL;
		aam_ipc_get_str(&r, 64, &s);
		assert_null(s);
		assert_int_equal(aam_ipc_reader_end(&r), AAM_E_PARSE);
		assert_true(r.off <= cut);
	}

	/* A length prefix larger than what is left, or than the field's max. */
	const uint8_t huge[] = {0xFF, 0xFF, 0xFF, 0xF0, 'a', 'b'};
	aam_ipc_reader_init(&r, huge, sizeof(huge));
	assert_int_equal(aam_ipc_get_bytes(&r, SIZE_MAX, &p, &n), AAM_E_PARSE);
	const uint8_t four[] = {0, 0, 0, 4, 'a', 'b', 'c', 'd'};
	aam_ipc_reader_init(&r, four, sizeof(four));
	assert_int_equal(aam_ipc_get_bytes(&r, 3, &p, &n), AAM_E_PARSE);
	/* Strings: no NUL, no invalid UTF-8 (overlong, surrogate, truncated). */
	const char *bad[] = {"a\0b",     "\xc0\xaf",         "\xed\xa0\x80",
	                     "\xe2\x82", "\xf4\x90\x80\x80", "\xff"};
	const size_t bad_len[] = {3, 2, 3, 2, 4, 1};
	for (size_t i = 0; i < 6; i++) {
		struct aam_buf e;
		aam_buf_init(&e, 0);
		aam_ipc_put_bytes(&e, bad[i], bad_len[i]);
		aam_ipc_reader_init(&r, e.data, e.len);
		assert_int_equal(aam_ipc_get_str(&r, 64, &s), AAM_E_PARSE);
		assert_null(s);
		aam_buf_uninit(&e);
	}
	/* The writer refuses invalid strings and honours the buffer's max. */
	struct aam_buf small;
	aam_buf_init(&small, 6);
	assert_int_equal(aam_ipc_put_str(&small, "\xc3"), AAM_E_INVAL);
	aam_buf_reset(&small);
	assert_int_equal(aam_ipc_put_str(&small, "abc"), AAM_E_TOOBIG);
	aam_buf_uninit(&small);
	aam_buf_uninit(&b);
}

static void
test_error_payload(void **state)
{
	(void)state;
	struct aam_buf b;
	int code;
	char msg[AAM_IPC_MAX_ERRMSG + 1];
	aam_buf_init(&b, 0);
	assert_int_equal(aam_ipc_error_encode(&b, AAM_E_DENIED, "nope"), AAM_OK);
	assert_int_equal(aam_ipc_error_decode(b.data, b.len, &code, msg, sizeof(msg)), AAM_OK);
	assert_int_equal(code, AAM_E_DENIED);
	assert_string_equal(msg, "nope");

	/*
	 * A long message is cut at a character boundary within the bound:
	 * "x" then two-byte characters, so byte 256 is mid-character.
	 */
	char longmsg[1202];
	longmsg[0] = 'x';
	for (size_t i = 1; i + 2 < sizeof(longmsg); i += 2)
		memcpy(longmsg + i, "\xc3\xa9", 2);
	longmsg[sizeof(longmsg) - 1] = 0;
	aam_buf_reset(&b);
	assert_int_equal(aam_ipc_error_encode(&b, AAM_E_PARSE, longmsg), AAM_OK);
	assert_int_equal(aam_ipc_error_decode(b.data, b.len, &code, msg, sizeof(msg)), AAM_OK);
	assert_int_equal(strlen(msg), AAM_IPC_MAX_ERRMSG - 1);
	assert_true(aam_ipc_utf8_valid(msg, strlen(msg)));

	/* Invalid UTF-8 in, valid out; no message means the standard text. */
	aam_buf_reset(&b);
	aam_ipc_error_encode(&b, AAM_E_IO, "bad\xff byte");
	aam_ipc_error_decode(b.data, b.len, &code, msg, sizeof(msg));
	assert_string_equal(msg, "bad? byte");
	aam_buf_reset(&b);
	aam_ipc_error_encode(&b, AAM_E_TIMEOUT, NULL);
	aam_ipc_error_decode(b.data, b.len, &code, msg, sizeof(msg));
	assert_string_equal(msg, aam_strerror(AAM_E_TIMEOUT));

	/* Hostile payloads: unknown or zero codes, trailing bytes, truncation. */
	const uint8_t unknown[] = {0, 0, 0x7F, 0xFF, 0, 0, 0, 1, 'x'};
	assert_int_equal(aam_ipc_error_decode(unknown, sizeof(unknown), &code, NULL, 0), AAM_OK);
	assert_int_equal(code, AAM_E_PROTO);
	const uint8_t zero[] = {0, 0, 0, 0, 0, 0, 0, 0};
	assert_int_equal(aam_ipc_error_decode(zero, sizeof(zero), &code, NULL, 0), AAM_OK);
	assert_int_equal(code, AAM_E_PROTO);
	const uint8_t trailing[] = {0, 0, 0, 2, 0, 0, 0, 1, 'x', 'y'};
	assert_int_equal(aam_ipc_error_decode(trailing, sizeof(trailing), &code, msg, sizeof(msg)),
	                 AAM_E_PARSE);
	assert_int_equal(aam_ipc_error_decode(trailing, 3, &code, msg, sizeof(msg)), AAM_E_PARSE);
	aam_buf_uninit(&b);
}

/* ---- sockets ----------------------------------------------------------- */

static void
test_listen_modes_and_stale_sockets(void **state)
{
	(void)state;
	char *dir = aam_test_mkdtemp("aam-ipc");
	assert_non_null(dir);
	char path[256];
	snprintf(path, sizeof(path), "%s/s.sock", dir);

	/* The mode holds even with a permissive umask. */
	mode_t old = umask(0);
	int fd;
	assert_int_equal(aam_ipc_listen(path, 0600, 4, &fd), AAM_OK);
	umask(old);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);

	/* A live server is not stolen from. */
	int fd2;
	assert_int_equal(aam_ipc_listen(path, 0600, 4, &fd2), AAM_E_EXISTS);
	close(fd);

	/* The dead server's socket file is stale and replaced. */
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(aam_ipc_listen(path, 0660, 4, &fd), AAM_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0660);
	close(fd);

	/* Never unlink something that is not a socket. */
	char file[256];
	snprintf(file, sizeof(file), "%s/file", dir);
	assert_int_equal(aam_test_write_file(file, "keep", 4, 0600), 0);
	assert_int_equal(aam_ipc_listen(file, 0600, 4, &fd), AAM_E_EXISTS);
	char *kept = aam_test_read_file(file, NULL);
	assert_string_equal(kept, "keep");
	free(kept);

	/* Paths that do not fit sun_path. */
	char longpath[300];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = 0;
	assert_int_equal(aam_ipc_listen(longpath, 0600, 4, &fd), AAM_E_TOOBIG);
	assert_int_equal(aam_ipc_connect(longpath, 100, &fd), AAM_E_TOOBIG);
	snprintf(file, sizeof(file), "%s/absent.sock", dir);
	assert_int_equal(aam_ipc_connect(file, 100, &fd), AAM_E_NOTFOUND);
	aam_test_rmtree(dir);
	free(dir);
}

static void
test_peercred(void **state)
{
	(void)state;
	struct fx f;
	fx_start(&f, &(struct aam_ipc_server_config){.handle = test_handle});
	struct aam_ipc_client *c = fx_client(&f);

	/* The client sees the server process (ourselves). */
	struct aam_ipc_peer peer;
	assert_int_equal(aam_ipc_client_peer(c, &peer), AAM_OK);
	assert_int_equal(peer.pid, getpid());
	assert_int_equal(peer.uid, geteuid());
	assert_int_equal(peer.gid, getegid());

	/* The handler sees the client process through SO_PEERCRED. */
	struct aam_buf reply;
	aam_buf_init(&reply, 0);
	assert_int_equal(aam_ipc_call(c, T_PEER, NULL, 0, 2000, NULL, &reply), AAM_OK);
	struct aam_ipc_reader r;
	uint32_t pid, uid, gid;
	aam_ipc_reader_init(&r, reply.data, reply.len);
	aam_ipc_get_u32(&r, &pid);
	aam_ipc_get_u32(&r, &uid);
	aam_ipc_get_u32(&r, &gid);
	assert_int_equal(aam_ipc_reader_end(&r), AAM_OK);
	assert_int_equal(pid, (uint32_t)getpid());
	assert_int_equal(uid, (uint32_t)geteuid());
	assert_int_equal(gid, (uint32_t)getegid());
	aam_buf_uninit(&reply);

	/* And on a plain socketpair. */
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(aam_ipc_peer_get(sv[0], &peer), AAM_OK);
	assert_int_equal(peer.pid, getpid());
	assert_int_equal(peer.uid, geteuid());
	close(sv[0]);
	close(sv[1]);
	aam_ipc_client_free(c);
	fx_stop(&f);
}

static int
refuse_all(void *ctx, const struct aam_ipc_peer *peer)
{
	(void)ctx;
	return peer->uid == getuid() ? AAM_E_PERM : AAM_OK;
}

static void
test_accept_check_and_conn_limit(void **state)
{
	(void)state;
	struct aam_ipc_server_config cfg = default_cfg();
	cfg.accept = refuse_all;
	struct fx f;
	fx_start(&f, &cfg);
	/* A refused peer learns why (id 0, PERM), then the stream ends. */
	int fd;
	assert_int_equal(aam_ipc_connect(f.path, 2000, &fd), AAM_OK);
	expect_error_then_eof(fd, 0, AAM_E_PERM);
	close(fd);
	fx_stop(&f);

	cfg = default_cfg();
	cfg.max_conns = 1;
	fx_start(&f, &cfg);
	struct aam_ipc_client *c1 = fx_client(&f);
	assert_int_equal(aam_ipc_call(c1, AAM_IPC_PING, "x", 1, 2000, NULL, NULL), AAM_OK);
	assert_int_equal(aam_ipc_connect(f.path, 2000, &fd), AAM_OK);
	expect_error_then_eof(fd, 0, AAM_E_BUSY);
	close(fd);
	/* The first connection is unaffected. */
	assert_int_equal(aam_ipc_call(c1, AAM_IPC_PING, "y", 1, 2000, NULL, NULL), AAM_OK);
	aam_ipc_client_free(c1);
	fx_stop(&f);
}

/* ---- request/response -------------------------------------------------- */

static void
test_round_trip(void **state)
{
	(void)state;
	struct fx f;
	fx_start(&f, &(struct aam_ipc_server_config){.handle = test_handle});
	struct aam_ipc_client *c = fx_client(&f);
	struct aam_ipc_hdr h;
	struct aam_buf reply;
	aam_buf_init(&reply, 0);

	/* PING is answered by the server helper itself. */
	assert_int_equal(aam_ipc_call(c, AAM_IPC_PING, "are you there", 13, 2000, &h, &reply),
	                 AAM_OK);
	assert_int_equal(h.type, AAM_IPC_PING);
	assert_int_equal(h.flags, 0);
	assert_string_equal(aam_buf_cstr(&reply), "are you there");

	aam_buf_reset(&reply);
	assert_int_equal(aam_ipc_call(c, T_ECHO, "abc", 3, 2000, &h, &reply), AAM_OK);
	assert_int_equal(h.type, T_ECHO);
	assert_string_equal(aam_buf_cstr(&reply), "abc");

	/* Empty payloads both ways. */
	aam_buf_reset(&reply);
	assert_int_equal(aam_ipc_call(c, T_ECHO, NULL, 0, 2000, &h, &reply), AAM_OK);
	assert_int_equal(reply.len, 0);

	/* A request larger than one frame goes as MORE/END and comes back whole. */
	size_t big = 2 * AAM_IPC_MAX_PAYLOAD + 123;
	uint8_t *p = malloc(big);
	assert_non_null(p);
	for (size_t i = 0; i < big; i++)
		p[i] = pattern(i);
	aam_buf_reset(&reply);
	assert_int_equal(aam_ipc_call(c, T_ACCUM, p, big, 5000, &h, &reply), AAM_OK);
	assert_int_equal(reply.len, big);
	assert_memory_equal(reply.data, p, big);
	free(p);

	/* Unknown type: the handler's error code comes back. */
	assert_int_equal(aam_ipc_call(c, 0x7FFF, NULL, 0, 2000, &h, NULL), AAM_E_UNSUPPORTED);
	assert_int_equal(h.flags, AAM_IPC_F_ERROR);
	assert_int_equal(aam_ipc_client_status(c), AAM_OK);
	aam_buf_uninit(&reply);
	aam_ipc_client_free(c);
	fx_stop(&f);
}

struct mt_arg {
	struct aam_ipc_client *c;
	int thread;
	int ok;
	int bad;
};

static void *
mt_main(void *arg)
{
	struct mt_arg *a = arg;
	struct aam_buf reply;
	aam_buf_init(&reply, 0);
	for (int i = 0; i < 200; i++) {
		char msg[128];
		/* Varying lengths so replies differ in size as well as content. */
		int n = snprintf(
		        msg, sizeof(msg), "thread=%d call=%d %.*s", a->thread, i, i % 60,
		        "................................................................");
		aam_buf_reset(&reply);
		struct aam_ipc_hdr h;
		int rc = aam_ipc_call(a->c, T_ECHO, msg, (size_t)n, 10000, &h, &reply);
		if (rc == AAM_OK && reply.len == (size_t)n &&
		    memcmp(reply.data, msg, (size_t)n) == 0)
			a->ok++;
		else
			a->bad++;
	}
	aam_buf_uninit(&reply);
	return NULL;
}

static void
test_concurrent_calls_multiplexed(void **state)
{
	(void)state;
	struct fx f;
	struct aam_ipc_server_config cfg = default_cfg();
	cfg.max_inflight = 64;
	fx_start(&f, &cfg);
	struct aam_ipc_client *c = fx_client(&f);
	pthread_t t[8];
	struct mt_arg a[8];
	for (int i = 0; i < 8; i++) {
		a[i] = (struct mt_arg){.c = c, .thread = i};
		assert_int_equal(pthread_create(&t[i], NULL, mt_main, &a[i]), 0);
	}
	int ok = 0, bad = 0;
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		ok += a[i].ok;
		bad += a[i].bad;
	}
	assert_int_equal(bad, 0);
	assert_int_equal(ok, 8 * 200);
	/* One connection carried it all. */
	assert_int_equal(aam_ipc_server_conns(f.srv), 1);
	assert_int_equal(aam_ipc_client_status(c), AAM_OK);
	aam_ipc_client_free(c);
	fx_stop(&f);
}

struct stream_seen {
	size_t bytes;
	int frames;
	int bad;
	bool head;
	bool end;
};

static int
stream_cb(void *ctx, const struct aam_ipc_hdr *h, const uint8_t *p)
{
	struct stream_seen *s = ctx;
	s->frames++;
	if (h->type == AAM_IPC_INJECT_RESP_HEAD) {
		s->head = h->flags == AAM_IPC_F_MORE && h->len == 4 && memcmp(p, "head", 4) == 0;
		return AAM_OK;
	}
	for (uint32_t i = 0; i < h->len; i++) {
		if (p[i] != pattern(s->bytes + i))
			s->bad++;
	}
	s->bytes += h->len;
	s->end = h->flags == AAM_IPC_F_END;
	return AAM_OK;
}

static void
test_streaming_reply_3mib(void **state)
{
	(void)state;
	struct fx f;
	fx_start(&f, &(struct aam_ipc_server_config){.handle = test_handle});
	struct aam_ipc_client *c = fx_client(&f);
	const uint32_t total = 3u * 1024 * 1024 + 17;
	uint8_t arg[4] = {(uint8_t)(total >> 24), (uint8_t)(total >> 16), (uint8_t)(total >> 8),
	                  (uint8_t)total};
	struct stream_seen s = {0};
	assert_int_equal(aam_ipc_call_stream(c, T_STREAM, arg, 4, 5000, stream_cb, &s), AAM_OK);
	assert_true(s.head);
	assert_true(s.end);
	assert_int_equal(s.bytes, total);
	assert_int_equal(s.bad, 0);
	assert_int_equal(s.frames, 1 + 4); /* head + 3 full frames + the rest */

	/* The plain call concatenates the same stream, within the buffer's max. */
	struct aam_buf reply;
	aam_buf_init(&reply, 8u * 1024 * 1024);
	struct aam_ipc_hdr h;
	assert_int_equal(aam_ipc_call(c, T_STREAM, arg, 4, 5000, &h, &reply), AAM_OK);
	assert_int_equal(h.flags, AAM_IPC_F_END);
	assert_int_equal(reply.len, total + 4);
	assert_int_equal(reply.data[4 + 1000], pattern(1000));
	aam_buf_uninit(&reply);
	aam_buf_init(&reply, 1024 * 1024);
	assert_int_equal(aam_ipc_call(c, T_STREAM, arg, 4, 5000, &h, &reply), AAM_E_TOOBIG);
	aam_buf_uninit(&reply);
	/* The rest of the abandoned stream is discarded, not a protocol error. */
	assert_int_equal(aam_ipc_call(c, AAM_IPC_PING, NULL, 0, 5000, NULL, NULL), AAM_OK);
	assert_int_equal(aam_ipc_client_status(c), AAM_OK);
	aam_ipc_client_free(c);
	fx_stop(&f);
}

static void
test_interleaved_request_streams(void **state)
{
	(void)state;
	struct aam_ipc_server *srv;
	int fd = pair_server(&(struct aam_ipc_server_config){.handle = test_handle}, &srv);
	atomic_store(&g_state_frees, 0);

	/* Two multi-frame requests, frames interleaved on the wire. */
	raw_frame(fd, T_ACCUM, AAM_IPC_F_MORE, 1, "A1-", 3);
	raw_frame(fd, T_ACCUM, AAM_IPC_F_MORE, 2, "B1-", 3);
	raw_frame(fd, AAM_IPC_INJECT_BODY, AAM_IPC_F_MORE, 1, "A2-", 3);
	raw_frame(fd, AAM_IPC_PING, 0, 3, "ping", 4);
	raw_frame(fd, AAM_IPC_INJECT_BODY, AAM_IPC_F_END, 2, "B2", 2);
	raw_frame(fd, AAM_IPC_INJECT_BODY, AAM_IPC_F_END, 1, "A3", 2);

	bool seen[4] = {false};
	for (int i = 0; i < 3; i++) {
		struct aam_ipc_hdr h;
		uint8_t *p;
		assert_int_equal(aam_ipc_read_frame(fd, 3000, 3000, &h, &p), AAM_OK);
		assert_int_equal(h.flags, 0);
		assert_true(h.id >= 1 && h.id <= 3);
		assert_false(seen[h.id]);
		seen[h.id] = true;
		const char *want = h.id == 1 ? "A1-A2-A3" : h.id == 2 ? "B1-B2" : "ping";
		assert_int_equal(h.len, strlen(want));
		assert_memory_equal(p, want, h.len);
		free(p);
	}
	close(fd);
	assert_true(wait_conns(srv, 0, 3000));
	assert_int_equal(atomic_load(&g_state_frees), 2);
	aam_ipc_server_free(srv);
}

static void
test_half_close_still_answered(void **state)
{
	(void)state;
	struct aam_ipc_server *srv;
	int fd = pair_server(&(struct aam_ipc_server_config){.handle = test_handle}, &srv);
	uint8_t ms[4] = {0, 0, 0, 100};
	raw_frame(fd, T_SLEEP, 0, 5, ms, 4);
	/* The client is done sending but still waits: it must get its reply. */
	shutdown(fd, SHUT_WR);
	struct aam_ipc_hdr h;
	uint8_t *p;
	assert_int_equal(aam_ipc_read_frame(fd, 3000, 3000, &h, &p), AAM_OK);
	assert_int_equal(h.id, 5);
	assert_int_equal(h.len, 4);
	free(p);
	assert_int_equal(aam_ipc_read_frame(fd, 3000, 3000, &h, &p), AAM_E_CLOSED);
	close(fd);
	assert_true(wait_conns(srv, 0, 3000));
	aam_ipc_server_free(srv);
}

/* ---- hostile peers ----------------------------------------------------- */

static void
test_truncated_header_then_eof(void **state)
{
	(void)state;
	struct aam_ipc_server *srv;
	int fd = pair_server(&(struct aam_ipc_server_config){.handle = test_handle}, &srv);
	uint8_t raw[AAM_IPC_HDR_LEN];
	hdr_bytes(raw, T_ECHO, 0, 42, 0);
	raw_bytes(fd, raw, 10);
	shutdown(fd, SHUT_WR);
	/* The id was never fully read: the answer carries id 0. */
	expect_error_then_eof(fd, 0, AAM_E_PARSE);
	close(fd);
	assert_true(wait_conns(srv, 0, 3000));
	aam_ipc_server_free(srv);
}

static void
test_truncated_payload_then_disconnect(void **state)
{
	(void)state;
	struct aam_ipc_server *srv;
	int fd = pair_server(&(struct aam_ipc_server_config){.handle = test_handle}, &srv);
	uint8_t raw[AAM_IPC_HDR_LEN];
	hdr_bytes(raw, T_ECHO, 0, 42, 100);
	raw_bytes(fd, raw, sizeof(raw));
	raw_bytes(fd, "only fifty bytes of the hundred promised.........", 50);
	close(fd);
	/* The server neither hangs on the missing bytes nor leaks the peer. */
	int64_t t0 = now_ms();
	assert_true(wait_conns(srv, 0, 3000));
	assert_true(now_ms() - t0 < 2000);
	aam_ipc_server_free(srv);
}

static void
test_stall_mid_frame_dropped(void **state)
{
	(void)state;
	struct aam_ipc_server *srv;
	struct aam_ipc_server_config cfg = default_cfg();
	cfg.frame_timeout_ms = 200;
	int fd = pair_server(&cfg, &srv);
	uint8_t raw[AAM_IPC_HDR_LEN];
	hdr_bytes(raw, T_ECHO, 0, 77, 10);
	raw_bytes(fd, raw, sizeof(raw));
	raw_bytes(fd, "abc", 3);
	/* The peer stays connected but sends nothing more. */
	int64_t t0 = now_ms();
	expect_error_then_eof(fd, 77, AAM_E_TIMEOUT);
	int64_t took = now_ms() - t0;
	assert_true(took >= 150 && took < 2000);
	assert_true(wait_conns(srv, 0, 3000));
	close(fd);
	aam_ipc_server_free(srv);
}

static void
test_oversized_length_dropped(void **state)
{
	(void)state;
	struct aam_ipc_server *srv;
	int fd = pair_server(&(struct aam_ipc_server_config){.handle = test_handle}, &srv);
	uint8_t raw[AAM_IPC_HDR_LEN];
	hdr_bytes(raw, T_ECHO, 0, 31, AAM_IPC_MAX_PAYLOAD + 1);
	raw_bytes(fd, raw, sizeof(raw));
	/* Answered at once, without reading (or allocating) a payload. */
	expect_error_then_eof(fd, 31, AAM_E_TOOBIG);
	close(fd);
	assert_true(wait_conns(srv, 0, 3000));
	aam_ipc_server_free(srv);
}

static void
test_bad_magic_version_reserved_dropped(void **state)
{
	(void)state;
	struct {
		int off;
		uint8_t val;
		uint32_t want_id;
	} cases[] = {
	        {0, 'X', 0},   /* magic */
	        {5, 9, 0},     /* version */
	        {11, 1, 12},   /* reserved */
	        {23, 1, 12},   /* reserved2 */
	        {9, 0x10, 12}, /* unknown flag */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct aam_ipc_server *srv;
		int fd = pair_server(&(struct aam_ipc_server_config){.handle = test_handle}, &srv);
		uint8_t raw[AAM_IPC_HDR_LEN];
		hdr_bytes(raw, T_ECHO, 0, 12, 0);
		raw[cases[i].off] = cases[i].val;
		raw_bytes(fd, raw, sizeof(raw));
		expect_error_then_eof(fd, cases[i].want_id, AAM_E_PARSE);
		close(fd);
		assert_true(wait_conns(srv, 0, 3000));
		aam_ipc_server_free(srv);
	}
	/* Plain garbage (someone speaking HTTP to the vault) is dropped early. */
	struct aam_ipc_server *srv;
	int fd = pair_server(&(struct aam_ipc_server_config){.handle = test_handle}, &srv);
	raw_bytes(fd, "GET /", 5);
	expect_error_then_eof(fd, 0, AAM_E_PARSE);
	close(fd);
	aam_ipc_server_free(srv);
}

static void
test_protocol_violations_dropped(void **state)
{
	(void)state;
	/* Request id 0 is reserved. */
	struct aam_ipc_server *srv;
	int fd = pair_server(&(struct aam_ipc_server_config){.handle = test_handle}, &srv);
	raw_frame(fd, T_ECHO, 0, 0, "x", 1);
	expect_error_then_eof(fd, 0, AAM_E_PROTO);
	close(fd);
	aam_ipc_server_free(srv);

	/* A request may not start with the error flag. */
	fd = pair_server(&(struct aam_ipc_server_config){.handle = test_handle}, &srv);
	raw_frame(fd, T_ECHO, AAM_IPC_F_ERROR, 4, "x", 1);
	expect_error_then_eof(fd, 4, AAM_E_PROTO);
	close(fd);
	aam_ipc_server_free(srv);

	/* Reusing an id still in flight. */
	fd = pair_server(&(struct aam_ipc_server_config){.handle = test_handle}, &srv);
	uint8_t ms[4] = {0, 0, 1, 0};
	raw_frame(fd, T_SLEEP, 0, 8, ms, 4);
	raw_frame(fd, T_ECHO, 0, 8, "x", 1);
	/* The duplicate is refused, the peer dropped. */
	struct aam_ipc_hdr h;
	uint8_t *p;
	assert_int_equal(aam_ipc_read_frame(fd, 3000, 3000, &h, &p), AAM_OK);
	assert_int_equal(h.flags, AAM_IPC_F_ERROR);
	assert_int_equal(h.id, 8);
	free(p);
	close(fd);
	assert_true(wait_conns(srv, 0, 3000));
	aam_ipc_server_free(srv);
}

/* ---- client-side failures ---------------------------------------------- */

struct waiter {
	struct aam_ipc_client *c;
	int rc;
	int64_t took;
};

static void *
waiter_main(void *arg)
{
	struct waiter *w = arg;
	int64_t t0 = now_ms();
	w->rc = aam_ipc_call(w->c, T_ECHO, "wait", 4, 10000, NULL, NULL);
	w->took = now_ms() - t0;
	return NULL;
}

static void
test_disconnect_wakes_waiters(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct aam_ipc_client *c;
	assert_int_equal(aam_ipc_client_adopt(sv[0], &c), AAM_OK);
	pthread_t t[3];
	struct waiter w[3];
	for (int i = 0; i < 3; i++) {
		w[i] = (struct waiter){.c = c, .rc = -100};
		assert_int_equal(pthread_create(&t[i], NULL, waiter_main, &w[i]), 0);
	}
	/* A fake server reads the three requests, then dies without answering. */
	for (int i = 0; i < 3; i++) {
		struct aam_ipc_hdr h;
		uint8_t *p;
		assert_int_equal(aam_ipc_read_frame(sv[1], 3000, 3000, &h, &p), AAM_OK);
		assert_int_not_equal(h.id, 0);
		free(p);
	}
	close(sv[1]);
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].rc, AAM_E_CLOSED);
		assert_true(w[i].took < 5000);
	}
	assert_int_equal(aam_ipc_client_status(c), AAM_E_CLOSED);
	/* Later calls fail at once. */
	assert_int_equal(aam_ipc_call(c, T_ECHO, "x", 1, 1000, NULL, NULL), AAM_E_CLOSED);
	aam_ipc_client_free(c);
}

static void
test_unknown_reply_id_is_protocol_error(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct aam_ipc_client *c;
	assert_int_equal(aam_ipc_client_adopt(sv[0], &c), AAM_OK);
	pthread_t t;
	struct waiter w = {.c = c, .rc = -100};
	assert_int_equal(pthread_create(&t, NULL, waiter_main, &w), 0);
	struct aam_ipc_hdr h;
	uint8_t *p;
	assert_int_equal(aam_ipc_read_frame(sv[1], 3000, 3000, &h, &p), AAM_OK);
	free(p);
	/* Answer an id the client never used. */
	raw_frame(sv[1], T_ECHO, 0, h.id + 1000, "bogus", 5);
	pthread_join(t, NULL);
	assert_int_equal(w.rc, AAM_E_CLOSED);
	assert_int_equal(aam_ipc_client_status(c), AAM_E_PROTO);
	/* The client hung up on the lying server. */
	assert_int_equal(aam_ipc_read_frame(sv[1], 3000, 3000, &h, &p), AAM_E_CLOSED);
	close(sv[1]);
	aam_ipc_client_free(c);
}

static void
test_call_timeout_late_reply_discarded(void **state)
{
	(void)state;
	struct fx f;
	fx_start(&f, &(struct aam_ipc_server_config){.handle = test_handle});
	struct aam_ipc_client *c = fx_client(&f);
	uint8_t ms[4] = {0, 0, 0x01, 0x90}; /* 400 ms */
	int64_t t0 = now_ms();
	assert_int_equal(aam_ipc_call(c, T_SLEEP, ms, 4, 50, NULL, NULL), AAM_E_TIMEOUT);
	int64_t took = now_ms() - t0;
	assert_true(took >= 40 && took < 2000); /* the 400 ms reply would have been AAM_OK */
	/* Meanwhile the connection keeps working for others. */
	struct aam_buf reply;
	aam_buf_init(&reply, 0);
	assert_int_equal(aam_ipc_call(c, T_ECHO, "still", 5, 2000, NULL, &reply), AAM_OK);
	assert_string_equal(aam_buf_cstr(&reply), "still");
	/* The late reply arrives, is recognised and dropped. */
	sleep_ms(500);
	assert_int_equal(aam_ipc_client_status(c), AAM_OK);
	aam_buf_reset(&reply);
	assert_int_equal(aam_ipc_call(c, T_ECHO, "after", 5, 2000, NULL, &reply), AAM_OK);
	assert_string_equal(aam_buf_cstr(&reply), "after");
	aam_buf_uninit(&reply);
	aam_ipc_client_free(c);
	fx_stop(&f);
}

static void
test_handler_errors_answered(void **state)
{
	(void)state;
	struct fx f;
	fx_start(&f, &(struct aam_ipc_server_config){.handle = test_handle});
	struct aam_ipc_client *c = fx_client(&f);
	struct aam_ipc_hdr h;
	struct aam_buf reply;
	aam_buf_init(&reply, 0);

	/* An error returned without a reply is sent by the server. */
	uint8_t code[4] = {0, 0, 0, AAM_E_DENIED};
	aam_buf_append_str(&reply, "kept|");
	assert_int_equal(aam_ipc_call(c, T_FAIL, code, 4, 2000, &h, &reply), AAM_E_DENIED);
	assert_int_equal(h.flags, AAM_IPC_F_ERROR);
	assert_int_equal(h.type, T_FAIL);
	assert_string_equal(aam_buf_cstr(&reply), "kept|denied by policy");

	/* AAM_OK without a reply is a handler bug, still answered. */
	aam_buf_reset(&reply);
	assert_int_equal(aam_ipc_call(c, T_NOREPLY, NULL, 0, 2000, &h, &reply), AAM_E_INTERNAL);
	assert_int_equal(h.flags, AAM_IPC_F_ERROR);

	/* A handler's own message reaches the caller. */
	aam_buf_reset(&reply);
	assert_int_equal(aam_ipc_call(c, T_ERRMSG, NULL, 0, 2000, &h, &reply), AAM_E_DENIED);
	assert_string_equal(aam_buf_cstr(&reply), "tool \xc3\xa9xport is denied");

	/* A nonsense code is still an error, never a success. */
	uint8_t weird[4] = {0, 0, 0x10, 0};
	assert_int_equal(aam_ipc_call(c, T_FAIL, weird, 4, 2000, &h, NULL), AAM_E_INTERNAL);
	assert_int_equal(aam_ipc_client_status(c), AAM_OK);
	aam_buf_uninit(&reply);
	aam_ipc_client_free(c);
	fx_stop(&f);
}

struct block_arg {
	struct aam_ipc_client *c;
	int rc;
};

static void *
block_main(void *arg)
{
	struct block_arg *b = arg;
	b->rc = aam_ipc_call(b->c, T_BLOCK, NULL, 0, 10000, NULL, NULL);
	return NULL;
}

static void
test_inflight_limit_busy(void **state)
{
	(void)state;
	struct aam_ipc_server_config cfg = default_cfg();
	cfg.max_inflight = 2;
	struct fx f;
	fx_start(&f, &cfg);
	struct aam_ipc_client *c = fx_client(&f);
	pthread_t t[2];
	struct block_arg b[2] = {{.c = c, .rc = -100}, {.c = c, .rc = -100}};
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, block_main, &b[i]), 0);
	int64_t end = now_ms() + 3000;
	while (atomic_load(&g_entered) < 2 && now_ms() < end)
		sleep_ms(2);
	assert_int_equal(atomic_load(&g_entered), 2);
	/* A third request is refused at once, not queued. */
	assert_int_equal(aam_ipc_call(c, T_ECHO, "x", 1, 2000, NULL, NULL), AAM_E_BUSY);
	/* PING is never subject to the limit. */
	assert_int_equal(aam_ipc_call(c, AAM_IPC_PING, NULL, 0, 2000, NULL, NULL), AAM_OK);
	atomic_store(&g_gate_open, 1);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(b[i].rc, AAM_OK);
	}
	assert_int_equal(aam_ipc_call(c, T_ECHO, "x", 1, 2000, NULL, NULL), AAM_OK);
	aam_ipc_client_free(c);
	fx_stop(&f);
}

static void
test_client_abandons_request_stream(void **state)
{
	(void)state;
	struct fx f;
	fx_start(&f, &(struct aam_ipc_server_config){.handle = test_handle});
	struct aam_ipc_client *c = fx_client(&f);
	atomic_store(&g_state_frees, 0);
	atomic_store(&g_accum_calls, 0);
	struct aam_ipc_req *q;
	assert_int_equal(aam_ipc_req_open(c, &q), AAM_OK);
	assert_int_not_equal(aam_ipc_req_id(q), 0);
	assert_int_equal(aam_ipc_req_send(q, T_ACCUM, AAM_IPC_F_MORE, "part", 4, 1000), AAM_OK);
	assert_int_equal(aam_ipc_req_send(q, T_ACCUM, AAM_IPC_F_ERROR, "x", 1, 1000), AAM_E_INVAL);
	int64_t end = now_ms() + 3000;
	while (atomic_load(&g_accum_calls) < 1 && now_ms() < end)
		sleep_ms(2);
	struct aam_ipc_hdr h;
	assert_int_equal(aam_ipc_req_recv(q, 50, &h, NULL), AAM_E_TIMEOUT);
	aam_ipc_req_close(q);
	/* The server ends the request: state freed, handler not called again. */
	end = now_ms() + 3000;
	while (atomic_load(&g_state_frees) < 1 && now_ms() < end)
		sleep_ms(2);
	assert_int_equal(atomic_load(&g_state_frees), 1);
	assert_int_equal(atomic_load(&g_accum_calls), 1);
	/* The abort's error answer is discarded; the connection lives on. */
	sleep_ms(50);
	assert_int_equal(aam_ipc_call(c, T_ECHO, "ok", 2, 2000, NULL, NULL), AAM_OK);
	assert_int_equal(aam_ipc_client_status(c), AAM_OK);
	aam_ipc_client_free(c);
	fx_stop(&f);
}

static struct aam_ipc_server *g_sig_srv;

static void
on_sigusr1(int sig)
{
	(void)sig;
	aam_ipc_server_stop(g_sig_srv);
}

static void
test_stop_from_signal_handler(void **state)
{
	(void)state;
	struct fx f;
	fx_start(&f, &(struct aam_ipc_server_config){.handle = test_handle});
	g_sig_srv = f.srv;
	struct sigaction sa = {.sa_handler = on_sigusr1};
	sigemptyset(&sa.sa_mask);
	struct sigaction old;
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);

	struct aam_ipc_client *c = fx_client(&f);
	pthread_t t;
	struct block_arg b = {.c = c, .rc = -100};
	assert_int_equal(pthread_create(&t, NULL, block_main, &b), 0);
	int64_t end = now_ms() + 3000;
	while (atomic_load(&g_entered) < 1 && now_ms() < end)
		sleep_ms(2);
	assert_int_equal(atomic_load(&g_entered), 1);

	/* Stop while a handler runs: it sees the cancellation, run() returns. */
	int64_t t0 = now_ms();
	pthread_kill(f.run, SIGUSR1);
	pthread_join(f.run, NULL);
	f.running = false;
	assert_int_equal(f.run_rc, AAM_OK);
	assert_true(now_ms() - t0 < 3000);
	assert_int_equal(aam_ipc_server_conns(f.srv), 0);
	pthread_join(t, NULL);
	assert_int_equal(b.rc, AAM_E_CLOSED);
	/* Stopping twice is harmless. */
	aam_ipc_server_stop(f.srv);
	sigaction(SIGUSR1, &old, NULL);
	aam_ipc_client_free(c);
	fx_stop(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_header_layout_and_roundtrip),
	        cmocka_unit_test(test_decode_truncated),
	        cmocka_unit_test(test_decode_hostile_headers),
	        cmocka_unit_test(test_reader_bounds),
	        cmocka_unit_test(test_error_payload),
	        cmocka_unit_test(test_listen_modes_and_stale_sockets),
	        cmocka_unit_test(test_peercred),
	        cmocka_unit_test(test_accept_check_and_conn_limit),
	        cmocka_unit_test(test_round_trip),
	        cmocka_unit_test(test_concurrent_calls_multiplexed),
	        cmocka_unit_test(test_streaming_reply_3mib),
	        cmocka_unit_test(test_interleaved_request_streams),
	        cmocka_unit_test(test_half_close_still_answered),
	        cmocka_unit_test(test_truncated_header_then_eof),
	        cmocka_unit_test(test_truncated_payload_then_disconnect),
	        cmocka_unit_test(test_stall_mid_frame_dropped),
	        cmocka_unit_test(test_oversized_length_dropped),
	        cmocka_unit_test(test_bad_magic_version_reserved_dropped),
	        cmocka_unit_test(test_protocol_violations_dropped),
	        cmocka_unit_test(test_disconnect_wakes_waiters),
	        cmocka_unit_test(test_unknown_reply_id_is_protocol_error),
	        cmocka_unit_test(test_call_timeout_late_reply_discarded),
	        cmocka_unit_test(test_handler_errors_answered),
	        cmocka_unit_test(test_inflight_limit_busy),
	        cmocka_unit_test(test_client_abandons_request_stream),
	        cmocka_unit_test(test_stop_from_signal_handler),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
