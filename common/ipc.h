/*
 * IPC transport over AF_UNIX stream sockets: the listening socket, peer
 * credentials, whole-frame I/O with deadlines, a bounded server helper and
 * a client that multiplexes concurrent requests over one connection.  The
 * frame format itself is in include/aam/ipc.h and docs/PROTOCOL.md.
 *
 * The shape follows OpenBSD relayd's ca process and OpenSSH's monitor:
 * the key-holding server speaks a small typed protocol, a malformed frame
 * is fatal for that peer, and every request gets an answer (a reply or an
 * explicit error), so no caller is ever left waiting.
 */
#ifndef AAM_COMMON_IPC_H
#define AAM_COMMON_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "aam/ipc.h"

struct aam_buf;

/* How long a frame, once its first byte arrived, may take to complete. */
#define AAM_IPC_FRAME_TIMEOUT_MS 5000

/* ---- sockets and credentials (ipc.c) ----------------------------------- */

struct aam_ipc_peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
};

/*
 * Creates a listening socket at PATH with permissions MODE (for example
 * 0660), whatever the umask.  A stale socket left by a dead server is
 * removed; a live one (something accepts connections) or a non-socket
 * file at PATH is AAM_E_EXISTS.  The mode is set before listen(), so no
 * client can connect while the socket still has the umask's permissions.
 */
int aam_ipc_listen(const char *path, mode_t mode, int backlog, int *fd_out);

/* Connects to PATH within TIMEOUT_MS (<0: no limit).  Returns the fd. */
int aam_ipc_connect(const char *path, int timeout_ms, int *fd_out);

/* The credentials of the process at the other end of a connected socket. */
int aam_ipc_peer_get(int fd, struct aam_ipc_peer *peer);

/*
 * Reads one frame.  Waits up to IDLE_MS (<0: forever) for its first byte,
 * then up to FRAME_MS for the rest.  *PAYLOAD is malloc'd (NULL for an
 * empty payload) and owned by the caller.  Returns AAM_E_CLOSED for an
 * orderly end of stream before a frame starts; AAM_E_PARSE for a
 * malformed or truncated frame, AAM_E_TOOBIG for an oversized length and
 * AAM_E_TIMEOUT for a stall (H then carries the id to answer, see
 * aam_ipc_hdr_decode); AAM_E_IO for a socket error.
 */
int aam_ipc_read_frame(int fd, int idle_ms, int frame_ms, struct aam_ipc_hdr *h, uint8_t **payload);

/*
 * Writes one whole frame within TIMEOUT_MS (<0: no limit).  A frame cut
 * short by a timeout leaves the stream unusable: the caller must close.
 * Callers sharing FD serialise writes themselves.
 */
int aam_ipc_write_frame(int fd, const struct aam_ipc_hdr *h, const void *payload, int timeout_ms);

/* ---- server (ipc_server.c, ipc_dispatch.c, ipc_reply.c) ------------- */

struct aam_ipc_server;

/*
 * The handle for answering one request.  A request may arrive in several
 * frames (MORE ... END); the handler is called once per frame, in order,
 * never concurrently for the same request, with the same replier.  The
 * request is answered by a final reply: a frame without MORE, or an
 * error.  After a final reply the request's remaining frames are dropped.
 */
struct aam_ipc_replier;

/*
 * Called on a worker thread for each request frame (PING is answered by
 * the server itself; a short single-frame request alone on its
 * connection may run on the connection's reader thread instead, see
 * ipc_server_internal.h).  Requests run concurrently, up to max_inflight per
 * connection and up to the pool's thread cap (see max_workers).  If the handler returns an error
 * code without having sent a final reply, the server sends an error frame with that code; if it
 * returns AAM_OK on the request's last frame without a final reply, the
 * server answers AAM_E_INTERNAL.  Either way every request is answered.
 */
typedef int (*aam_ipc_handler)(void *ctx, const struct aam_ipc_peer *peer,
                               const struct aam_ipc_hdr *req, const uint8_t *payload,
                               struct aam_ipc_replier *r);

/*
 * Called on accept, before any frame is read: return AAM_OK to serve the
 * peer, anything else to refuse it (it gets an error frame with id 0 and
 * is disconnected).  This is where a daemon checks the peer's uid.
 */
typedef int (*aam_ipc_accept_fn)(void *ctx, const struct aam_ipc_peer *peer);

struct aam_ipc_server_config {
	aam_ipc_handler handle;   /* required */
	aam_ipc_accept_fn accept; /* optional: NULL accepts every peer */
	void *ctx;                /* passed to both */
	unsigned max_conns;       /* 0: 64 */
	unsigned max_inflight;    /* per connection; 0: 32 */
	int frame_timeout_ms;     /* mid-frame stall; 0: AAM_IPC_FRAME_TIMEOUT_MS */
	int write_timeout_ms;     /* a peer not reading its replies; 0: 5000 */
	size_t max_queued;        /* request bytes queued per request; 0: 4 MiB */
	/*
	 * Handlers run on a pool of worker threads owned by this server, so
	 * servers (one per peer role in aam-vault) never take each other's
	 * threads.  Up to WORKERS threads stay alive once started; when all
	 * are busy the pool grows on demand up to MAX_WORKERS, and threads
	 * beyond WORKERS exit after a few idle seconds.  Past MAX_WORKERS,
	 * admitted requests wait in a FIFO queue for the next free thread.
	 */
	unsigned workers;     /* 0: 4 per online CPU, within [4, 64] */
	unsigned max_workers; /* 0: 256 (never below WORKERS) */
};

/*
 * Creates a server.  LISTEN_FD (from aam_ipc_listen, or -1 for a server
 * fed only through aam_ipc_server_adopt) becomes owned by the server.
 */
int aam_ipc_server_new(const struct aam_ipc_server_config *cfg, int listen_fd,
                       struct aam_ipc_server **out);

/*
 * Accepts and serves connections until aam_ipc_server_stop(); then closes
 * every connection, waits for running handlers to return and returns
 * AAM_OK.  Call it from one thread.  A handler that may run long must
 * poll aam_ipc_replier_cancelled() and return once it is true, or stop
 * waits for it.
 */
int aam_ipc_server_run(struct aam_ipc_server *s);

/*
 * Asks a running (or future) aam_ipc_server_run() to return.  Only an
 * atomic store and a write() to a pipe: safe from another thread and from
 * a signal handler.
 */
void aam_ipc_server_stop(struct aam_ipc_server *s);

/* Serves an already connected socket (a socketpair end); takes FD. */
int aam_ipc_server_adopt(struct aam_ipc_server *s, int fd);

/* Connections currently open (tests and metrics). */
unsigned aam_ipc_server_conns(struct aam_ipc_server *s);

/* Stops, closes every connection, waits for handlers and frees.  NULL is fine. */
void aam_ipc_server_free(struct aam_ipc_server *s);

/*
 * Replies.  aam_ipc_reply() sends PAYLOAD as the final reply, with the
 * request's type; a payload over AAM_IPC_MAX_PAYLOAD is split into MORE
 * frames and an END frame.  aam_ipc_reply_frame() sends one frame of a
 * given TYPE with FLAGS 0, AAM_IPC_F_MORE or AAM_IPC_F_END (streaming, for
 * example INJECT_RESP_HEAD then INJECT_RESP_BODY frames).
 * aam_ipc_reply_error() sends a final error.  Anything sent after the
 * final reply is refused with AAM_E_INVAL.  A failed write (the peer went
 * away or stopped reading) is AAM_E_CLOSED and cancels the request.
 */
int aam_ipc_reply(struct aam_ipc_replier *r, const void *payload, size_t len);
int aam_ipc_reply_frame(struct aam_ipc_replier *r, uint16_t type, uint16_t flags,
                        const void *payload, size_t len);
int aam_ipc_reply_error(struct aam_ipc_replier *r, int code, const char *msg);

/* True once the peer is gone or the server is stopping: stop working. */
bool aam_ipc_replier_cancelled(const struct aam_ipc_replier *r);

/*
 * Per-request state for handlers of multi-frame requests.  FREE_FN (may
 * be NULL) runs once when the request ends, however it ends (completed,
 * answered early, peer gone), on whichever server thread ends it.
 */
void aam_ipc_replier_set_state(struct aam_ipc_replier *r, void *state, void (*free_fn)(void *));
void *aam_ipc_replier_state(const struct aam_ipc_replier *r);

/* ---- client (ipc_client.c) --------------------------------------------- */

struct aam_ipc_client;

/* One request in flight on a client connection. */
struct aam_ipc_req;

/*
 * Connects to PATH within TIMEOUT_MS and starts the reader thread that
 * dispatches replies to waiting callers by request id.
 */
int aam_ipc_client_connect(const char *path, int timeout_ms, struct aam_ipc_client **out);

/* The same over an already connected socket (a socketpair end); takes FD. */
int aam_ipc_client_adopt(int fd, struct aam_ipc_client **out);

/* Credentials of the server process, taken at connect time. */
int aam_ipc_client_peer(const struct aam_ipc_client *c, struct aam_ipc_peer *peer);

/*
 * AAM_OK while the connection is usable; otherwise why it ended
 * (AAM_E_CLOSED, or AAM_E_PROTO after a protocol violation by the server).
 */
int aam_ipc_client_status(struct aam_ipc_client *c);

/*
 * Closes the connection, wakes every waiter with AAM_E_CLOSED and frees.
 * Every aam_ipc_req must be closed first.  NULL is fine.
 */
void aam_ipc_client_free(struct aam_ipc_client *c);

/*
 * Request/response.  Sends PAYLOAD (split into MORE/END frames when over
 * AAM_IPC_MAX_PAYLOAD) and collects the reply, concatenating a streamed
 * reply, into REPLY (appended; its maximum applies: AAM_E_TOOBIG).
 * TIMEOUT_MS (<0: no limit) bounds the whole call; on AAM_E_TIMEOUT a
 * late reply is discarded.  On an error reply, REPLY_HDR has
 * AAM_IPC_F_ERROR, REPLY holds only the message and the peer's code is
 * returned.  A lost connection is AAM_E_CLOSED.  REPLY_HDR and REPLY may
 * be NULL.
 */
int aam_ipc_call(struct aam_ipc_client *c, uint16_t type, const void *payload, size_t len,
                 int timeout_ms, struct aam_ipc_hdr *reply_hdr, struct aam_buf *reply);

/*
 * Called for each data frame of a reply, in order.  Returning anything but
 * AAM_OK abandons the call (its remaining frames are discarded) and
 * aam_ipc_call_stream() returns that code.
 */
typedef int (*aam_ipc_frame_fn)(void *ctx, const struct aam_ipc_hdr *h, const uint8_t *payload);

/*
 * Like aam_ipc_call, but hands each reply frame to FN on the calling
 * thread until the final one.  TIMEOUT_MS bounds each wait for the next
 * frame, so a long stream that keeps moving does not time out.  An error
 * reply is not passed to FN: its code is returned.
 */
int aam_ipc_call_stream(struct aam_ipc_client *c, uint16_t type, const void *payload, size_t len,
                        int timeout_ms, aam_ipc_frame_fn fn, void *ctx);

/*
 * The primitives under both calls, for requests sent in several frames
 * (for example INJECT then INJECT_BODY frames).  aam_ipc_req_open()
 * reserves a fresh request id; aam_ipc_req_send() sends one request frame
 * (FLAGS 0, MORE or END; the last frame must not carry MORE);
 * aam_ipc_req_recv() waits up to TIMEOUT_MS for the next reply frame,
 * filling H and appending its payload to PAYLOAD (which may be NULL to
 * drop it).  After the final reply frame, recv returns AAM_E_INVAL.
 * aam_ipc_req_close() releases the request; if its reply is not complete
 * the rest is discarded as it arrives, and if the request itself was not
 * completely sent, the server is told to abandon it.  Many threads may
 * use one client at once, but each request by one thread at a time.
 */
int aam_ipc_req_open(struct aam_ipc_client *c, struct aam_ipc_req **out);
uint32_t aam_ipc_req_id(const struct aam_ipc_req *q);
int aam_ipc_req_send(struct aam_ipc_req *q, uint16_t type, uint16_t flags, const void *payload,
                     size_t len, int timeout_ms);
int aam_ipc_req_recv(struct aam_ipc_req *q, int timeout_ms, struct aam_ipc_hdr *h,
                     struct aam_buf *payload);
void aam_ipc_req_close(struct aam_ipc_req *q);

#endif /* AAM_COMMON_IPC_H */
