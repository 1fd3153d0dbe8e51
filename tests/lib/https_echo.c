/*
 * Local HTTPS echo upstream for tests (see https_echo.h).
 */
#include "tests/lib/https_echo.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define RING      64
#define MAX_CONNS 256
#define HDR_MAX   (64 * 1024)
#define BODY_MAX  (64 * 1024 * 1024)

struct aam_test_https_echo {
	int lfd;
	int port;
	char ca_path[1024];
	SSL_CTX *ctx;
	pthread_t accept_thread;
	atomic_bool stopping;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int conns[MAX_CONNS];
	unsigned nconns; /* live connection threads */
	char *ring[RING];
	size_t ringlen[RING];
	size_t count;
	size_t aborts;
	bool released;
	char token[512];
};

/* ---- certificates ---------------------------------------------------------------- */

static int
add_ext(X509 *issuer, X509 *cert, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return -1;
	int ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

static X509 *
make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, long serial, bool ca)
{
	X509 *x = X509_new();
	if (x == NULL)
		return NULL;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 2 * 86400);
	X509_set_pubkey(x, key);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name);
	X509 *iss = issuer != NULL ? issuer : x;
	int rc = 0;
	if (ca) {
		rc |= add_ext(iss, x, NID_basic_constraints, "critical,CA:TRUE");
		rc |= add_ext(iss, x, NID_key_usage, "critical,keyCertSign,cRLSign");
		rc |= add_ext(iss, x, NID_subject_key_identifier, "hash");
	} else {
		rc |= add_ext(iss, x, NID_basic_constraints, "critical,CA:FALSE");
		rc |= add_ext(iss, x, NID_key_usage, "critical,digitalSignature");
		rc |= add_ext(iss, x, NID_ext_key_usage, "serverAuth");
		rc |= add_ext(iss, x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
		rc |= add_ext(iss, x, NID_authority_key_identifier, "keyid");
	}
	if (rc != 0 || X509_sign(x, issuer_key, EVP_sha256()) == 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static int
setup_tls(struct aam_test_https_echo *e, const char *dir)
{
	EVP_PKEY *cakey = EVP_EC_gen("P-256");
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *ca = NULL, *leaf = NULL;
	int rc = -1;
	if (cakey == NULL || key == NULL)
		goto out;
	ca = make_cert(cakey, "AAM test CA", NULL, cakey, 1, true);
	if (ca == NULL)
		goto out;
	leaf = make_cert(key, "localhost", ca, cakey, 2, false);
	if (leaf == NULL)
		goto out;
	snprintf(e->ca_path, sizeof(e->ca_path), "%s/echo-ca.pem", dir);
	FILE *f = fopen(e->ca_path, "w");
	if (f == NULL)
		goto out;
	PEM_write_X509(f, ca);
	fclose(f);
	e->ctx = SSL_CTX_new(TLS_server_method());
	if (e->ctx == NULL || SSL_CTX_use_certificate(e->ctx, leaf) != 1 ||
	    SSL_CTX_use_PrivateKey(e->ctx, key) != 1 ||
	    SSL_CTX_add_extra_chain_cert(e->ctx, ca) != 1)
		goto out;
	ca = NULL; /* owned by the context now */
	SSL_CTX_set_min_proto_version(e->ctx, TLS1_2_VERSION);
	rc = 0;
out:
	X509_free(ca);
	X509_free(leaf);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(key);
	return rc;
}

/* ---- I/O ------------------------------------------------------------------------ */

static int
ssl_write_all(SSL *ssl, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		int w = SSL_write(ssl, c, n > INT32_MAX ? INT32_MAX : (int)n);
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
send_chunk(SSL *ssl, const void *p, size_t n)
{
	char hdr[32];
	int hl = snprintf(hdr, sizeof(hdr), "%zx\r\n", n);
	char *buf = malloc((size_t)hl + n + 2);
	if (buf == NULL)
		return -1;
	memcpy(buf, hdr, (size_t)hl);
	memcpy(buf + hl, p, n);
	memcpy(buf + hl + n, "\r\n", 2);
	int rc = ssl_write_all(ssl, buf, (size_t)hl + n + 2);
	free(buf);
	return rc;
}

static void
nap_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static int
respond(SSL *ssl, int status, const char *ctype, const void *body, size_t n, const char *extra)
{
	char hdr[1024];
	int hl = snprintf(hdr, sizeof(hdr),
	                  "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n",
	                  status, ctype, n, extra != NULL ? extra : "");
	if (ssl_write_all(ssl, hdr, (size_t)hl) != 0)
		return -1;
	return n > 0 ? ssl_write_all(ssl, body, n) : 0;
}

static void
record(struct aam_test_https_echo *e, const char *req, size_t n)
{
	char *copy = malloc(n + 1);
	if (copy == NULL)
		return;
	memcpy(copy, req, n);
	copy[n] = '\0';
	pthread_mutex_lock(&e->mu);
	size_t slot = e->count % RING;
	free(e->ring[slot]);
	e->ring[slot] = copy;
	e->ringlen[slot] = n;
	e->count++;
	pthread_mutex_unlock(&e->mu);
}

static void
count_abort(struct aam_test_https_echo *e)
{
	pthread_mutex_lock(&e->mu);
	e->aborts++;
	pthread_mutex_unlock(&e->mu);
}

/* Answers one request; returns -1 when the connection must close. */
static int
handle(struct aam_test_https_echo *e, SSL *ssl, const char *req, size_t reqlen, size_t hdrlen,
       const char *path)
{
	if (strstr(path, "/redirect") != NULL)
		return respond(ssl, 302, "text/plain", "moved", 5,
		               "Location: https://evil.example/stolen\r\n");
	if (strstr(path, "/split") != NULL) {
		const char *h = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
		                "Transfer-Encoding: chunked\r\n\r\n";
		if (ssl_write_all(ssl, h, strlen(h)) != 0)
			return -1;
		for (size_t off = 0; off < reqlen; off += 3) {
			size_t k = reqlen - off < 3 ? reqlen - off : 3;
			if (send_chunk(ssl, req + off, k) != 0)
				return -1;
			nap_ms(1);
		}
		return ssl_write_all(ssl, "0\r\n\r\n", 5);
	}
	if (strstr(path, "/sse") != NULL) {
		const char *h = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
		                "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
		if (ssl_write_all(ssl, h, strlen(h)) != 0 ||
		    send_chunk(ssl, "data: one\n\n", 11) != 0)
			return -1;
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 10;
		pthread_mutex_lock(&e->mu);
		while (!e->released && !atomic_load(&e->stopping))
			if (pthread_cond_timedwait(&e->cond, &e->mu, &until) == ETIMEDOUT)
				break;
		e->released = false;
		pthread_mutex_unlock(&e->mu);
		if (send_chunk(ssl, "data: two\n\n", 11) != 0)
			return -1;
		return ssl_write_all(ssl, "0\r\n\r\n", 5);
	}
	if (strstr(path, "/slow") != NULL) {
		const char *h = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
		                "Transfer-Encoding: chunked\r\n\r\n";
		if (ssl_write_all(ssl, h, strlen(h)) != 0)
			return -1;
		for (int i = 0; i < 400 && !atomic_load(&e->stopping); i++) {
			char line[64];
			int n = snprintf(line, sizeof(line), "line %d\n", i);
			if (send_chunk(ssl, line, (size_t)n) != 0) {
				count_abort(e);
				return -1;
			}
			nap_ms(50);
		}
		return ssl_write_all(ssl, "0\r\n\r\n", 5);
	}
	if (strstr(path, "/sink") != NULL) {
		uint8_t md[32];
		SHA256((const uint8_t *)req + hdrlen, reqlen - hdrlen, md);
		char out[128];
		int n = snprintf(out, sizeof(out), "len=%zu sha256=", reqlen - hdrlen);
		for (int i = 0; i < 32; i++)
			n += snprintf(out + n, sizeof(out) - (size_t)n, "%02x", md[i]);
		return respond(ssl, 200, "text/plain", out, (size_t)n, NULL);
	}
	if (strstr(path, "/token") != NULL) {
		char out[700];
		pthread_mutex_lock(&e->mu);
		int n = snprintf(out, sizeof(out),
		                 "{\"access_token\":\"%s\",\"token_type\":\"Bearer\","
		                 "\"expires_in\":3600}",
		                 e->token);
		pthread_mutex_unlock(&e->mu);
		return respond(ssl, 200, "application/json", out, (size_t)n, NULL);
	}
	const char *st = strstr(path, "/status/");
	int status = st != NULL ? atoi(st + 8) : 200;
	if (status < 200 || status > 599)
		status = 200;
	return respond(ssl, status, "text/plain", req, reqlen, NULL);
}

struct conn_arg {
	struct aam_test_https_echo *e;
	int fd;
	int slot;
};

static size_t
content_length(const char *hdrs, size_t n)
{
	const char *p = hdrs;
	while (p < hdrs + n) {
		const char *eol = memmem(p, (size_t)(hdrs + n - p), "\r\n", 2);
		if (eol == NULL)
			break;
		if ((size_t)(eol - p) > 15 && strncasecmp(p, "content-length:", 15) == 0)
			return (size_t)strtoull(p + 15, NULL, 10);
		p = eol + 2;
	}
	return 0;
}

/* Makes room for NEED bytes in *BUF. */
static int
reserve(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap * 2 > need ? *cap * 2 : need;
	char *nb = realloc(*buf, nc);
	if (nb == NULL)
		return -1;
	*buf = nb;
	*cap = nc;
	return 0;
}

static void *
conn_main(void *arg)
{
	struct conn_arg *a = arg;
	struct aam_test_https_echo *e = a->e;
	SSL *ssl = SSL_new(e->ctx);
	size_t cap = 65536;
	char *buf = malloc(cap);
	if (ssl != NULL && buf != NULL && SSL_set_fd(ssl, a->fd) == 1 && SSL_accept(ssl) == 1) {
		size_t have = 0;
		for (;;) {
			char *end = NULL;
			while ((end = have >= 4 ? memmem(buf, have, "\r\n\r\n", 4) : NULL) ==
			       NULL) {
				if (have >= HDR_MAX || reserve(&buf, &cap, have + 16384) != 0)
					goto done;
				int r = SSL_read(ssl, buf + have, (int)(cap - have));
				if (r <= 0)
					goto done;
				have += (size_t)r;
			}
			size_t hdrlen = (size_t)(end - buf) + 4;
			size_t blen = content_length(buf, hdrlen);
			if (blen > BODY_MAX || reserve(&buf, &cap, hdrlen + blen + 1) != 0)
				goto done;
			while (have < hdrlen + blen) {
				int r = SSL_read(ssl, buf + have, (int)(hdrlen + blen - have));
				if (r <= 0)
					goto done;
				have += (size_t)r;
			}
			size_t reqlen = hdrlen + blen;
			record(e, buf, reqlen);
			char path[2048] = "";
			const char *sp = memchr(buf, ' ', hdrlen);
			if (sp != NULL) {
				size_t pl = strcspn(sp + 1, " \r\n");
				if (pl >= sizeof(path))
					pl = sizeof(path) - 1;
				memcpy(path, sp + 1, pl);
				path[pl] = '\0';
			}
			if (handle(e, ssl, buf, reqlen, hdrlen, path) != 0)
				goto done;
			memmove(buf, buf + reqlen, have - reqlen);
			have -= reqlen;
		}
	}
done:
	if (ssl != NULL) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	free(buf);
	pthread_mutex_lock(&e->mu);
	e->conns[a->slot] = -1;
	close(a->fd);
	e->nconns--;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->mu);
	free(a);
	return NULL;
}

static void *
accept_main(void *arg)
{
	struct aam_test_https_echo *e = arg;
	while (!atomic_load(&e->stopping)) {
		int fd = accept(e->lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct conn_arg *a = calloc(1, sizeof(*a));
		pthread_mutex_lock(&e->mu);
		int slot = -1;
		for (int i = 0; i < MAX_CONNS && slot < 0; i++)
			if (e->conns[i] < 0)
				slot = i;
		if (a == NULL || slot < 0 || atomic_load(&e->stopping)) {
			pthread_mutex_unlock(&e->mu);
			close(fd);
			free(a);
			continue;
		}
		e->conns[slot] = fd;
		e->nconns++;
		pthread_mutex_unlock(&e->mu);
		a->e = e;
		a->fd = fd;
		a->slot = slot;
		pthread_t t;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, conn_main, a) != 0) {
			pthread_mutex_lock(&e->mu);
			e->conns[slot] = -1;
			e->nconns--;
			pthread_mutex_unlock(&e->mu);
			close(fd);
			free(a);
		}
		pthread_attr_destroy(&attr);
	}
	return NULL;
}

int
aam_test_https_echo_start(const char *dir, struct aam_test_https_echo **out)
{
	*out = NULL;
	/* A client that goes away must not kill the test with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	struct aam_test_https_echo *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return -1;
	for (int i = 0; i < MAX_CONNS; i++)
		e->conns[i] = -1;
	snprintf(e->token, sizeof(e->token), "echo-access-token-1");
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cond, NULL);
	e->lfd = -1;
	if (setup_tls(e, dir) != 0)
		goto fail;
	e->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof(sa);
	if (e->lfd < 0 || bind(e->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(e->lfd, 128) != 0 || getsockname(e->lfd, (struct sockaddr *)&sa, &sl) != 0)
		goto fail;
	e->port = ntohs(sa.sin_port);
	if (pthread_create(&e->accept_thread, NULL, accept_main, e) != 0)
		goto fail;
	*out = e;
	return 0;
fail:
	if (e->lfd >= 0)
		close(e->lfd);
	SSL_CTX_free(e->ctx);
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->cond);
	free(e);
	return -1;
}

void
aam_test_https_echo_stop(struct aam_test_https_echo *e)
{
	if (e == NULL)
		return;
	atomic_store(&e->stopping, true);
	shutdown(e->lfd, SHUT_RDWR);
	pthread_join(e->accept_thread, NULL);
	pthread_mutex_lock(&e->mu);
	for (int i = 0; i < MAX_CONNS; i++)
		if (e->conns[i] >= 0)
			shutdown(e->conns[i], SHUT_RDWR);
	pthread_cond_broadcast(&e->cond);
	while (e->nconns > 0)
		pthread_cond_wait(&e->cond, &e->mu);
	pthread_mutex_unlock(&e->mu);
	close(e->lfd);
	for (int i = 0; i < RING; i++)
		free(e->ring[i]);
	SSL_CTX_free(e->ctx);
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->cond);
	free(e);
}

int
aam_test_https_echo_port(const struct aam_test_https_echo *e)
{
	return e->port;
}

const char *
aam_test_https_echo_ca(const struct aam_test_https_echo *e)
{
	return e->ca_path;
}

size_t
aam_test_https_echo_count(struct aam_test_https_echo *e)
{
	pthread_mutex_lock(&e->mu);
	size_t n = e->count;
	pthread_mutex_unlock(&e->mu);
	return n;
}

size_t
aam_test_https_echo_aborts(struct aam_test_https_echo *e)
{
	pthread_mutex_lock(&e->mu);
	size_t n = e->aborts;
	pthread_mutex_unlock(&e->mu);
	return n;
}

char *
aam_test_https_echo_request(struct aam_test_https_echo *e, size_t n, size_t *len)
{
	char *out = NULL;
	pthread_mutex_lock(&e->mu);
	if (n < e->count && n < RING) {
		size_t slot = (e->count - 1 - n) % RING;
		out = malloc(e->ringlen[slot] + 1);
		if (out != NULL) {
			memcpy(out, e->ring[slot], e->ringlen[slot] + 1);
			if (len != NULL)
				*len = e->ringlen[slot];
		}
	}
	pthread_mutex_unlock(&e->mu);
	return out;
}

void
aam_test_https_echo_set_token(struct aam_test_https_echo *e, const char *token)
{
	pthread_mutex_lock(&e->mu);
	snprintf(e->token, sizeof(e->token), "%s", token);
	pthread_mutex_unlock(&e->mu);
}

void
aam_test_https_echo_release(struct aam_test_https_echo *e)
{
	pthread_mutex_lock(&e->mu);
	e->released = true;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->mu);
}
