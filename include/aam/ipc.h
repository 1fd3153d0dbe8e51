/*
 * AAM IPC wire protocol: the typed, length-prefixed frames that
 * aam-gateway, aam-attest and aamctl exchange with aam-vault over an
 * AF_UNIX stream socket.  docs/PROTOCOL.md is the normative description;
 * this header is its C form.  Everything here is pure encoding and
 * decoding with no I/O, so it can be fuzzed and reused by any process.
 *
 * Every frame is a fixed 24-byte header followed by LEN payload bytes.
 * All integers are big-endian.
 *
 *   offset size field
 *        0    4 magic     0x41414D31 ("AAM1")
 *        4    2 version   1
 *        6    2 type      message type (enum aam_ipc_type)
 *        8    2 flags     AAM_IPC_F_*
 *       10    2 reserved  must be 0
 *       12    4 id        request id, chosen by the client, never 0 in a request
 *       16    4 len       payload length, at most AAM_IPC_MAX_PAYLOAD
 *       20    4 reserved2 must be 0
 *
 * The socket layer (listen, peer credentials, server, multiplexing
 * client) lives in common/ipc.h.
 */
#ifndef AAM_IPC_H
#define AAM_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aam_buf;

#define AAM_IPC_MAGIC       0x41414D31u /* "AAM1" */
#define AAM_IPC_VERSION     1u
#define AAM_IPC_HDR_LEN     24u
#define AAM_IPC_MAX_PAYLOAD (1024u * 1024u)
/* Longest message text in an error payload, in bytes. */
#define AAM_IPC_MAX_ERRMSG 256u

/*
 * Flags.  Exactly one of the four forms is valid in a frame: 0 (a complete
 * message), ERROR (a final error reply), MORE (a streamed frame with more
 * frames of the same request id to follow) or END (the last frame of a
 * stream).  Any other bit or combination is a malformed frame.
 */
#define AAM_IPC_F_ERROR 0x0001u
#define AAM_IPC_F_MORE  0x0002u
#define AAM_IPC_F_END   0x0004u

/*
 * Message types, grouped in ranges of 256 per service so later issues
 * define payloads without renumbering.  Payload formats not yet specified
 * are marked in docs/PROTOCOL.md with the issue that defines them.
 */
enum aam_ipc_type {
	/* 0x0001-0x00FF: connection services, answered by the server helper. */
	AAM_IPC_PING = 0x0001, /* payload echoed back */

	/* 0x0100-0x01FF: signing with token-held keys. */
	AAM_IPC_SIGN = 0x0100,
	AAM_IPC_PUBKEY = 0x0101,

	/* 0x0200-0x02FF: credential injection and egress. */
	AAM_IPC_INJECT = 0x0200,
	AAM_IPC_INJECT_BODY = 0x0201,
	AAM_IPC_INJECT_RESP_HEAD = 0x0202,
	AAM_IPC_INJECT_RESP_BODY = 0x0203,

	/* 0x0300-0x03FF: audit log. */
	AAM_IPC_AUDIT_APPEND = 0x0300,
	AAM_IPC_AUDIT_CHECKPOINT = 0x0301,

	/* 0x0400-0x04FF: administration (aamctl); members defined later. */
	AAM_IPC_ADMIN_FIRST = 0x0400,
	AAM_IPC_ADMIN_LAST = 0x04FF,

	/* Connection-level error, sent with request id 0. */
	AAM_IPC_ERROR = 0xFFFF,
};

/* The variable part of a header; magic, version and reserved are implied. */
struct aam_ipc_hdr {
	uint16_t type;
	uint16_t flags;
	uint32_t id;
	uint32_t len;
};

/*
 * Returned by aam_ipc_frame_decode() when the bytes so far are a valid
 * prefix of a frame but not a whole one.  Negative so that it can never be
 * mistaken for an aam_err code.
 */
#define AAM_IPC_NEED_MORE (-1)

/* Whether FLAGS is one of the four valid forms. */
bool aam_ipc_flags_valid(uint16_t flags);
/* Whether a frame with FLAGS ends its request's reply (or request). */
bool aam_ipc_flags_final(uint16_t flags);

/* Writes the 24-byte header; AAM_E_INVAL for bad flags or length. */
int aam_ipc_hdr_encode(const struct aam_ipc_hdr *h, uint8_t out[AAM_IPC_HDR_LEN]);

/*
 * Decodes and checks a complete 24-byte header: AAM_E_PARSE for a bad
 * magic, version, reserved field or flags, AAM_E_TOOBIG for a length over
 * AAM_IPC_MAX_PAYLOAD.  On error H is still filled with what an error
 * answer should carry: the id and type when magic and version were right
 * (the layout is then known), id 0 and type AAM_IPC_ERROR otherwise.
 */
int aam_ipc_hdr_decode(const uint8_t p[AAM_IPC_HDR_LEN], struct aam_ipc_hdr *h);

/*
 * Decodes one frame at the start of P[0..N).  On AAM_OK, *CONSUMED is the
 * frame's total size and the payload is P + AAM_IPC_HDR_LEN.  Returns
 * AAM_IPC_NEED_MORE (with *CONSUMED 0) for a valid but incomplete prefix;
 * a bad magic or version is reported as soon as its bytes are present.
 */
int aam_ipc_frame_decode(const uint8_t *p, size_t n, struct aam_ipc_hdr *h, size_t *consumed);

/* Appends header and payload; H->len must equal LEN. */
int aam_ipc_frame_encode(struct aam_buf *b, const struct aam_ipc_hdr *h, const void *payload,
                         size_t len);

/*
 * Payload fields.  Payloads are sequences of fixed-size big-endian
 * integers and u32-length-prefixed byte strings.  The reader never reads
 * past the end: the first failure is sticky (AAM_E_PARSE) and every later
 * get fails too, so a decoder may read all fields and check once.
 * aam_ipc_reader_end() also insists that every byte was consumed, because
 * a payload whose size is not exactly what its fields describe is
 * malformed.
 */
struct aam_ipc_reader {
	const uint8_t *p;
	size_t len;
	size_t off;
	int err;
};

void aam_ipc_reader_init(struct aam_ipc_reader *r, const void *p, size_t len);
int aam_ipc_get_u8(struct aam_ipc_reader *r, uint8_t *v);
int aam_ipc_get_u16(struct aam_ipc_reader *r, uint16_t *v);
int aam_ipc_get_u32(struct aam_ipc_reader *r, uint32_t *v);
int aam_ipc_get_u64(struct aam_ipc_reader *r, uint64_t *v);
/* N raw bytes (no length prefix); *P points into the payload. */
int aam_ipc_get_fixed(struct aam_ipc_reader *r, size_t n, const uint8_t **p);
/* A u32-length-prefixed byte string of at most MAX bytes; zero-copy. */
int aam_ipc_get_bytes(struct aam_ipc_reader *r, size_t max, const uint8_t **p, size_t *n);
/*
 * A u32-length-prefixed UTF-8 string of at most MAX bytes with no NUL:
 * copied into a malloc'd, NUL-terminated *S that the caller frees.
 */
int aam_ipc_get_str(struct aam_ipc_reader *r, size_t max, char **s);
/* Bytes left unread. */
size_t aam_ipc_reader_left(const struct aam_ipc_reader *r);
/* AAM_OK iff no get failed and every byte was consumed. */
int aam_ipc_reader_end(const struct aam_ipc_reader *r);

/* Writers: append to B (its maximum and sticky error apply). */
int aam_ipc_put_u8(struct aam_buf *b, uint8_t v);
int aam_ipc_put_u16(struct aam_buf *b, uint16_t v);
int aam_ipc_put_u32(struct aam_buf *b, uint32_t v);
int aam_ipc_put_u64(struct aam_buf *b, uint64_t v);
int aam_ipc_put_fixed(struct aam_buf *b, const void *p, size_t n);
int aam_ipc_put_bytes(struct aam_buf *b, const void *p, size_t n);
/* AAM_E_INVAL unless S is valid UTF-8 without NUL. */
int aam_ipc_put_str(struct aam_buf *b, const char *s);

/* Whether P[0..N) is well-formed UTF-8 (RFC 3629: no overlongs or surrogates). */
bool aam_ipc_utf8_valid(const void *p, size_t n);

/*
 * Error payload: u32 aam_err code, then the message as a str field of at
 * most AAM_IPC_MAX_ERRMSG bytes.  The encoder truncates a longer message
 * at a character boundary and replaces invalid UTF-8 with '?'; a NULL or
 * empty MSG sends aam_strerror(CODE).
 */
int aam_ipc_error_encode(struct aam_buf *b, int code, const char *msg);
/*
 * Decodes an error payload.  *CODE is an aam_err value: 0 or a code this
 * build does not know is reported as AAM_E_PROTO.  MSG, when not NULL,
 * receives the message (NUL-terminated, at least AAM_IPC_MAX_ERRMSG + 1
 * bytes).
 */
int aam_ipc_error_decode(const uint8_t *p, size_t n, int *code, char *msg, size_t msg_size);

#endif /* AAM_IPC_H */
