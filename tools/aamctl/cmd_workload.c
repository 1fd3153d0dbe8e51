/*
 * aamctl workload: workload registrations in aam-attest's database.
 *
 *   aamctl workload register SPIFFE_ID --method tpm|pkcs11|join
 *         --owner O --team T --env E --deployment D --audience A [--audience A ...]
 *         [--ttl 5m]
 *     tpm:    --ek-pub FILE | --ek-pub-sha256 HEX  and/or  --ek-ca FILE | --ek-ca-sha256 HEX
 *             [--pcrs 0,1,2,...] [--pcr N=HEX ...]
 *     pkcs11: --jwk FILE | --pubkey FILE | --jkt THUMBPRINT
 *     join:   [--join-ttl 1h]   (prints the join token once; only its hash is kept)
 *   aamctl workload list [--json]
 *   aamctl workload show SPIFFE_ID [--json]
 *   aamctl workload revoke SPIFFE_ID
 *   aamctl workload revoke --jti JTI
 *
 * aamctl opens the database named by attest.db directly; aam-attest reads
 * every registration afresh on each request, so a change (a revocation
 * above all) applies to the next token request without a restart.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "aam/err.h"
#include "attest/registry.h"
#include "attest/tpm_crypto.h"
#include "attest/tpm_mu.h"
#include "common/b64.h"
#include "common/config.h"
#include "common/jose.h"
#include "common/json.h"
#include "common/secret.h"
#include "tools/aamctl/aamctl.h"

#define FILE_MAX (64u * 1024)

static const char workload_usage[] =
        "usage: aamctl workload register SPIFFE_ID --method tpm|pkcs11|join --owner O --team T\n"
        "                --env E --deployment D --audience A [--audience A ...] [--ttl 5m]\n"
        "         tpm:    --ek-pub FILE | --ek-pub-sha256 HEX, and/or --ek-ca FILE | "
        "--ek-ca-sha256 HEX,\n"
        "                 [--pcrs 0,1,2] [--pcr N=HEX ...]\n"
        "         pkcs11: --jwk FILE | --pubkey FILE | --jkt THUMBPRINT\n"
        "         join:   [--join-ttl 1h]\n"
        "       aamctl workload list [--json]\n"
        "       aamctl workload show SPIFFE_ID [--json]\n"
        "       aamctl workload revoke SPIFFE_ID | --jti JTI\n";

struct wl_ctx {
	struct aam_config cfg;
	struct aam_db *db;
};

static int
wl_open(const struct aam_cli *cli, struct wl_ctx *w, bool create)
{
	char err[512];
	memset(w, 0, sizeof(*w));
	if (aam_config_load(cli->config_path, &w->cfg, err, sizeof(err)) != AAM_OK ||
	    aam_config_require(&w->cfg, "attest", err, sizeof(err)) != AAM_OK) {
		fprintf(stderr, "aamctl workload: %s\n", err);
		return AAMCTL_EXIT_FAIL;
	}
	int rc = attest_registry_open(w->cfg.attest.db, create, &w->db);
	if (rc != AAM_OK) {
		fprintf(stderr, "aamctl workload: %s: cannot open the registrations database: %s\n",
		        w->cfg.attest.db, aam_strerror(rc));
		aam_config_uninit(&w->cfg);
		return AAMCTL_EXIT_FAIL;
	}
	return AAMCTL_EXIT_OK;
}

static void
wl_close(struct wl_ctx *w)
{
	aam_db_close(w->db);
	aam_config_uninit(&w->cfg);
}

/* ---- inputs --------------------------------------------------------------- */

static int
hexdigit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Exactly 64 hex digits. */
static int
hex32(const char *s, uint8_t out[32])
{
	if (s == NULL || strlen(s) != 64)
		return AAM_E_PARSE;
	for (size_t i = 0; i < 32; i++) {
		int hi = hexdigit(s[2 * i]), lo = hexdigit(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return AAM_E_PARSE;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return AAM_OK;
}

static uint8_t *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	uint8_t *buf = malloc(FILE_MAX + 1);
	size_t n = buf != NULL ? fread(buf, 1, FILE_MAX + 1, f) : 0;
	fclose(f);
	if (buf == NULL || n == 0 || n > FILE_MAX) {
		free(buf);
		return NULL;
	}
	buf[n] = 0;
	*len = n;
	return buf;
}

static void
sha256_der_pubkey(EVP_PKEY *pk, uint8_t out[32], int *rc)
{
	unsigned char *der = NULL;
	int len = i2d_PUBKEY(pk, &der);
	*rc = len > 0 && EVP_Digest(der, (size_t)len, out, NULL, EVP_sha256(), NULL) == 1
	              ? AAM_OK
	              : AAM_E_CRYPTO;
	OPENSSL_free(der);
}

/* An EK public key from an EK certificate (PEM/DER), a PEM public key or a TPM2B_PUBLIC. */
static int
ek_pub_hash(const char *path, uint8_t out[32])
{
	size_t n = 0;
	uint8_t *buf = read_file(path, &n);
	if (buf == NULL)
		return AAM_E_NOTFOUND;
	EVP_PKEY *pk = NULL;
	BIO *bio = BIO_new_mem_buf(buf, (int)n);
	X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	if (x == NULL && bio != NULL) {
		BIO_reset(bio);
		pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	}
	if (x == NULL && pk == NULL) {
		const unsigned char *q = buf;
		x = d2i_X509(NULL, &q, (long)n);
	}
	if (x != NULL) {
		pk = X509_get_pubkey(x);
		X509_free(x);
	}
	if (pk == NULL) {
		struct attest_tpm_public pub;
		if (attest_tpm_public_parse(buf, n, &pub) == AAM_OK)
			attest_tpm_pubkey(&pub, &pk);
	}
	BIO_free(bio);
	free(buf);
	if (pk == NULL)
		return AAM_E_PARSE;
	int rc;
	sha256_der_pubkey(pk, out, &rc);
	EVP_PKEY_free(pk);
	return rc;
}

/* The SHA-256 of a CA certificate's DER (PEM or DER file). */
static int
cert_hash(const char *path, uint8_t out[32])
{
	size_t n = 0;
	uint8_t *buf = read_file(path, &n);
	if (buf == NULL)
		return AAM_E_NOTFOUND;
	BIO *bio = BIO_new_mem_buf(buf, (int)n);
	X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	if (x == NULL) {
		const unsigned char *q = buf;
		x = d2i_X509(NULL, &q, (long)n);
	}
	BIO_free(bio);
	free(buf);
	if (x == NULL)
		return AAM_E_PARSE;
	unsigned char *der = NULL;
	int len = i2d_X509(x, &der);
	X509_free(x);
	int rc = len > 0 && EVP_Digest(der, (size_t)len, out, NULL, EVP_sha256(), NULL) == 1
	                 ? AAM_OK
	                 : AAM_E_CRYPTO;
	OPENSSL_free(der);
	return rc;
}

/* The RFC 7638 thumbprint of a public JWK file or a PEM EC P-256 public key. */
static int
key_jkt(const char *path, bool jwk, char out[ATTEST_JKT_LEN + 1])
{
	size_t n = 0;
	uint8_t *buf = read_file(path, &n);
	if (buf == NULL)
		return AAM_E_NOTFOUND;
	struct aam_jwk k;
	int rc;
	if (jwk) {
		rc = aam_jwk_parse((const char *)buf, n, &k, NULL);
	} else {
		BIO *bio = BIO_new_mem_buf(buf, (int)n);
		EVP_PKEY *pk = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
		BIO_free(bio);
		rc = pk != NULL ? aam_jwk_from_pkey(pk, NULL, &k) : AAM_E_PARSE;
		EVP_PKEY_free(pk);
	}
	free(buf);
	if (rc != AAM_OK)
		return rc;
	memcpy(out, k.jkt, ATTEST_JKT_LEN + 1);
	aam_jwk_uninit(&k);
	return AAM_OK;
}

static int
parse_pcrs(const char *s, uint32_t *mask)
{
	*mask = 0;
	const char *p = s;
	while (*p != '\0') {
		char *end = NULL;
		unsigned long v = strtoul(p, &end, 10);
		if (end == p || v >= ATTEST_PCR_COUNT || (*end != ',' && *end != '\0'))
			return AAM_E_PARSE;
		*mask |= 1u << v;
		p = *end == ',' ? end + 1 : end;
	}
	return *mask != 0 ? AAM_OK : AAM_E_PARSE;
}

/* ---- register ---------------------------------------------------------------- */

enum {
	OPT_METHOD = 256,
	OPT_OWNER,
	OPT_TEAM,
	OPT_ENV,
	OPT_DEPLOYMENT,
	OPT_AUDIENCE,
	OPT_TTL,
	OPT_EK_PUB,
	OPT_EK_PUB_SHA,
	OPT_EK_CA,
	OPT_EK_CA_SHA,
	OPT_PCRS,
	OPT_PCR,
	OPT_JWK,
	OPT_PUBKEY,
	OPT_JKT,
	OPT_JOIN_TTL,
	OPT_JSON,
	OPT_JTI,
};

static int
copy_field(char *dst, size_t cap, const char *v, const char *name)
{
	if (strlen(v) >= cap) {
		fprintf(stderr, "aamctl workload: --%s: too long\n", name);
		return AAMCTL_EXIT_USAGE;
	}
	memcpy(dst, v, strlen(v) + 1);
	return AAMCTL_EXIT_OK;
}

static int
usage_error(const char *msg)
{
	fprintf(stderr, "aamctl workload: %s\n%s", msg, workload_usage);
	return AAMCTL_EXIT_USAGE;
}

/* Prints the join token once: it exists nowhere else. */
static int
make_join_token(struct attest_reg *r, char *token, size_t cap)
{
	uint8_t raw[32];
	if (RAND_bytes(raw, sizeof(raw)) != 1 || cap < 5 + 44)
		return AAM_E_CRYPTO;
	memcpy(token, "aamj_", 5);
	int rc = aam_b64_encode(raw, sizeof(raw), token + 5, cap - 5, NULL, AAM_B64_URL);
	aam_wipe(raw, sizeof(raw));
	if (rc != AAM_OK)
		return rc;
	EVP_Digest(token, strlen(token), r->join_hash, NULL, EVP_sha256(), NULL);
	r->has_join = true;
	return AAM_OK;
}

static int
cmd_register(int argc, char **argv, const struct aam_cli *cli)
{
	static const struct option opts[] = {
	        {"method", required_argument, NULL, OPT_METHOD},
	        {"owner", required_argument, NULL, OPT_OWNER},
	        {"team", required_argument, NULL, OPT_TEAM},
	        {"env", required_argument, NULL, OPT_ENV},
	        {"environment", required_argument, NULL, OPT_ENV},
	        {"deployment", required_argument, NULL, OPT_DEPLOYMENT},
	        {"audience", required_argument, NULL, OPT_AUDIENCE},
	        {"ttl", required_argument, NULL, OPT_TTL},
	        {"ek-pub", required_argument, NULL, OPT_EK_PUB},
	        {"ek-pub-sha256", required_argument, NULL, OPT_EK_PUB_SHA},
	        {"ek-ca", required_argument, NULL, OPT_EK_CA},
	        {"ek-ca-sha256", required_argument, NULL, OPT_EK_CA_SHA},
	        {"pcrs", required_argument, NULL, OPT_PCRS},
	        {"pcr", required_argument, NULL, OPT_PCR},
	        {"jwk", required_argument, NULL, OPT_JWK},
	        {"pubkey", required_argument, NULL, OPT_PUBKEY},
	        {"jkt", required_argument, NULL, OPT_JKT},
	        {"join-ttl", required_argument, NULL, OPT_JOIN_TTL},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct attest_reg *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return AAMCTL_EXIT_FAIL;
	int64_t ttl_ms = -1, join_ttl_ms = (int64_t)ATTEST_JOIN_TTL_DEFAULT * 1000;
	int ex = AAMCTL_EXIT_OK, c;
	optind = 0;
	opterr = 0;
	while (ex == AAMCTL_EXIT_OK && (c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		uint8_t h[32];
		int rc = AAM_OK;
		switch (c) {
		case OPT_METHOD:
			r->method = attest_method_parse(optarg);
			if (r->method == ATTEST_METHOD_NONE)
				ex = usage_error("--method: tpm, pkcs11 or join");
			break;
		case OPT_OWNER:
			ex = copy_field(r->owner, sizeof(r->owner), optarg, "owner");
			break;
		case OPT_TEAM:
			ex = copy_field(r->team, sizeof(r->team), optarg, "team");
			break;
		case OPT_ENV:
			ex = copy_field(r->environment, sizeof(r->environment), optarg, "env");
			break;
		case OPT_DEPLOYMENT:
			ex = copy_field(r->deployment, sizeof(r->deployment), optarg, "deployment");
			break;
		case OPT_AUDIENCE:
			if (r->naudiences >= ATTEST_MAX_AUDIENCES)
				ex = usage_error("--audience: too many audiences");
			else
				ex = copy_field(r->audiences[r->naudiences++],
				                ATTEST_AUDIENCE_MAX + 1, optarg, "audience");
			break;
		case OPT_TTL:
			if (aam_config_parse_duration(optarg, &ttl_ms) != AAM_OK || ttl_ms < 1000 ||
			    ttl_ms > (int64_t)ATTEST_TTL_MAX * 1000)
				ex = usage_error("--ttl: a duration from 1s to 15m");
			break;
		case OPT_JOIN_TTL:
			if (aam_config_parse_duration(optarg, &join_ttl_ms) != AAM_OK ||
			    join_ttl_ms < 1000 || join_ttl_ms > 30LL * 24 * 3600 * 1000)
				ex = usage_error("--join-ttl: a duration from 1s to 30d");
			break;
		case OPT_EK_PUB:
			rc = ek_pub_hash(optarg, r->ek_pub_sha256);
			r->has_ek_pub = rc == AAM_OK;
			break;
		case OPT_EK_PUB_SHA:
			rc = hex32(optarg, r->ek_pub_sha256);
			r->has_ek_pub = rc == AAM_OK;
			break;
		case OPT_EK_CA:
			rc = cert_hash(optarg, r->ek_ca_sha256);
			r->has_ek_ca = rc == AAM_OK;
			break;
		case OPT_EK_CA_SHA:
			rc = hex32(optarg, r->ek_ca_sha256);
			r->has_ek_ca = rc == AAM_OK;
			break;
		case OPT_PCRS: {
			uint32_t m = 0;
			rc = parse_pcrs(optarg, &m);
			r->pcr_mask |= m;
			break;
		}
		case OPT_PCR: {
			char *eq = strchr(optarg, '=');
			char *end = NULL;
			unsigned long i = eq != NULL ? strtoul(optarg, &end, 10) : ATTEST_PCR_COUNT;
			rc = eq == NULL || end != eq || end == optarg || i >= ATTEST_PCR_COUNT
			             ? AAM_E_PARSE
			             : hex32(eq + 1, h);
			if (rc == AAM_OK) {
				memcpy(r->pcr_values[i], h, 32);
				r->pcr_value_mask |= 1u << i;
				r->pcr_mask |= 1u << i;
			}
			break;
		}
		case OPT_JWK:
		case OPT_PUBKEY:
			rc = key_jkt(optarg, c == OPT_JWK, r->key_jkt);
			break;
		case OPT_JKT:
			ex = copy_field(r->key_jkt, sizeof(r->key_jkt), optarg, "jkt");
			break;
		case 'h':
			printf("%s", workload_usage);
			free(r);
			return AAMCTL_EXIT_OK;
		default:
			ex = usage_error("unknown or incomplete option");
		}
		if (ex == AAMCTL_EXIT_OK && rc != AAM_OK) {
			fprintf(stderr, "aamctl workload: %s: %s: %s\n", argv[optind - 1],
			        optarg != NULL ? optarg : "", aam_strerror(rc));
			ex = AAMCTL_EXIT_USAGE;
		}
	}
	if (ex == AAMCTL_EXIT_OK && optind != argc - 1)
		ex = usage_error("register takes exactly one SPIFFE ID");
	if (ex != AAMCTL_EXIT_OK) {
		free(r);
		return ex;
	}
	if (copy_field(r->spiffe_id, sizeof(r->spiffe_id), argv[optind], "spiffe_id") !=
	    AAMCTL_EXIT_OK) {
		free(r);
		return AAMCTL_EXIT_USAGE;
	}

	struct wl_ctx w;
	if ((ex = wl_open(cli, &w, true)) != AAMCTL_EXIT_OK) {
		free(r);
		return ex;
	}
	r->token_ttl = ttl_ms > 0 ? ttl_ms / 1000 : w.cfg.attest.token_ttl_ms / 1000;
	if (r->method == ATTEST_METHOD_TPM && r->pcr_mask == 0)
		r->pcr_mask = ATTEST_PCR_DEFAULT_MASK;
	r->created = (int64_t)time(NULL);
	char token[64] = "";
	if (r->method == ATTEST_METHOD_JOIN) {
		r->join_expires = r->created + join_ttl_ms / 1000;
		if (make_join_token(r, token, sizeof(token)) != AAM_OK)
			ex = AAMCTL_EXIT_FAIL;
	}
	char why[256];
	if (ex == AAMCTL_EXIT_OK &&
	    attest_reg_validate(r, w.cfg.attest.trust_domain, why, sizeof(why)) != AAM_OK) {
		fprintf(stderr, "aamctl workload: %s\n", why);
		ex = AAMCTL_EXIT_USAGE;
	}
	if (ex == AAMCTL_EXIT_OK) {
		int rc = attest_reg_insert(w.db, r);
		if (rc == AAM_E_EXISTS) {
			fprintf(stderr, "aamctl workload: %s is already registered\n",
			        r->spiffe_id);
			ex = AAMCTL_EXIT_FAIL;
		} else if (rc != AAM_OK) {
			fprintf(stderr, "aamctl workload: cannot store the registration: %s\n",
			        aam_strerror(rc));
			ex = AAMCTL_EXIT_FAIL;
		}
	}
	if (ex == AAMCTL_EXIT_OK) {
		printf("registered %s (method %s)\n", r->spiffe_id, attest_method_name(r->method));
		if (r->method == ATTEST_METHOD_JOIN) {
			printf("join_token: %s\n", token);
			printf("The join token is shown only now; it expires in %" PRId64
			       " s and works once.\n",
			       join_ttl_ms / 1000);
		}
	}
	aam_wipe(token, sizeof(token));
	wl_close(&w);
	free(r);
	return ex;
}

/* ---- list / show ----------------------------------------------------------------- */

static const char *
status_of(const struct attest_reg *r)
{
	if (r->revoked != 0)
		return "revoked";
	if (r->method == ATTEST_METHOD_JOIN)
		return r->join_expires <= (int64_t)time(NULL) ? "join-expired" : "join-pending";
	return "active";
}

static json_t *
reg_json(const struct attest_reg *r)
{
	json_t *aud = json_array();
	for (size_t i = 0; i < r->naudiences; i++)
		json_array_append_new(aud, json_string(r->audiences[i]));
	json_t *j =
	        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:I,s:I,s:s}", "spiffe_id", r->spiffe_id,
	                  "method", attest_method_name(r->method), "owner", r->owner, "team",
	                  r->team, "environment", r->environment, "deployment", r->deployment,
	                  "audiences", aud, "token_ttl", (json_int_t)r->token_ttl, "created",
	                  (json_int_t)r->created, "status", status_of(r));
	if (j == NULL)
		return NULL;
	char hex[65];
	if (r->has_ek_pub) {
		for (size_t i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", r->ek_pub_sha256[i]);
		json_object_set_new(j, "ek_pub_sha256", json_string(hex));
	}
	if (r->has_ek_ca) {
		for (size_t i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", r->ek_ca_sha256[i]);
		json_object_set_new(j, "ek_ca_sha256", json_string(hex));
	}
	if (r->method == ATTEST_METHOD_TPM) {
		json_t *sel = json_array();
		json_t *vals = json_object();
		for (unsigned i = 0; i < ATTEST_PCR_COUNT; i++) {
			if (r->pcr_mask >> i & 1u)
				json_array_append_new(sel, json_integer(i));
			if (r->pcr_value_mask >> i & 1u) {
				char k[4];
				snprintf(k, sizeof(k), "%u", i);
				for (size_t b = 0; b < 32; b++)
					snprintf(hex + 2 * b, 3, "%02x", r->pcr_values[i][b]);
				json_object_set_new(vals, k, json_string(hex));
			}
		}
		json_object_set_new(j, "pcrs", sel);
		json_object_set_new(j, "pcr_values", vals);
	}
	if (r->key_jkt[0] != '\0')
		json_object_set_new(j, "jkt", json_string(r->key_jkt));
	if (r->has_join) {
		json_object_set_new(j, "join_expires", json_integer(r->join_expires));
		json_object_set_new(j, "join_used", json_boolean(r->join_used));
	}
	if (r->revoked != 0)
		json_object_set_new(j, "revoked", json_integer(r->revoked));
	return j;
}

struct list_ctx {
	bool json;
	json_t *arr;
	size_t n;
};

static int
list_one(void *ctx, const struct attest_reg *r)
{
	struct list_ctx *l = ctx;
	l->n++;
	if (l->json) {
		json_t *j = reg_json(r);
		return j != NULL && json_array_append_new(l->arr, j) == 0 ? AAM_OK : AAM_E_NOMEM;
	}
	printf("%-48s %-7s %-14s %-14s %-10s %-14s %s\n", r->spiffe_id,
	       attest_method_name(r->method), r->owner, r->team, r->environment, r->deployment,
	       status_of(r));
	return AAM_OK;
}

static int
dump_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (s == NULL)
		return AAMCTL_EXIT_FAIL;
	printf("%s\n", s);
	free(s);
	return AAMCTL_EXIT_OK;
}

static bool
want_json(int argc, char **argv, int *pos)
{
	bool json = false;
	*pos = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (*pos == 0 && argv[i][0] != '-')
			*pos = i;
		else
			*pos = -1;
	}
	return json;
}

static int
cmd_list(int argc, char **argv, const struct aam_cli *cli)
{
	int pos;
	struct list_ctx l = {.json = want_json(argc, argv, &pos)};
	if (pos != 0)
		return usage_error("list takes no arguments besides --json");
	struct wl_ctx w;
	int ex = wl_open(cli, &w, false);
	if (ex != AAMCTL_EXIT_OK)
		return ex;
	l.arr = json_array();
	if (!l.json)
		printf("%-48s %-7s %-14s %-14s %-10s %-14s %s\n", "SPIFFE ID", "METHOD", "OWNER",
		       "TEAM", "ENV", "DEPLOYMENT", "STATUS");
	int rc = attest_reg_list(w.db, list_one, &l);
	if (rc != AAM_OK) {
		fprintf(stderr, "aamctl workload: %s\n", aam_strerror(rc));
		ex = AAMCTL_EXIT_FAIL;
	} else if (l.json) {
		ex = dump_json(l.arr);
	}
	json_decref(l.arr);
	wl_close(&w);
	return ex;
}

static int
cmd_show(int argc, char **argv, const struct aam_cli *cli)
{
	int pos;
	bool json = want_json(argc, argv, &pos);
	if (pos <= 0)
		return usage_error("show takes one SPIFFE ID");
	struct wl_ctx w;
	int ex = wl_open(cli, &w, false);
	if (ex != AAMCTL_EXIT_OK)
		return ex;
	struct attest_reg *r = calloc(1, sizeof(*r));
	int rc = r != NULL ? attest_reg_get(w.db, argv[pos], r) : AAM_E_NOMEM;
	if (rc == AAM_E_NOTFOUND) {
		fprintf(stderr, "aamctl workload: %s is not registered\n", argv[pos]);
		ex = AAMCTL_EXIT_FAIL;
	} else if (rc != AAM_OK) {
		fprintf(stderr, "aamctl workload: %s\n", aam_strerror(rc));
		ex = AAMCTL_EXIT_FAIL;
	} else {
		json_t *j = reg_json(r);
		if (j == NULL) {
			ex = AAMCTL_EXIT_FAIL;
		} else if (json) {
			ex = dump_json(j);
		} else {
			const char *k;
			json_t *v;
			json_object_foreach(j, k, v)
			{
				char *s = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY);
				printf("%-14s %s\n", k, s != NULL ? s : json_string_value(v));
				free(s);
			}
		}
		json_decref(j);
	}
	free(r);
	wl_close(&w);
	return ex;
}

static int
cmd_revoke(int argc, char **argv, const struct aam_cli *cli)
{
	const char *jti = NULL, *id = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--jti") == 0 && i + 1 < argc && jti == NULL)
			jti = argv[++i];
		else if (argv[i][0] != '-' && id == NULL)
			id = argv[i];
		else
			return usage_error("revoke takes one SPIFFE ID or --jti JTI");
	}
	if ((jti == NULL) == (id == NULL))
		return usage_error("revoke takes one SPIFFE ID or --jti JTI");
	struct wl_ctx w;
	int ex = wl_open(cli, &w, false);
	if (ex != AAMCTL_EXIT_OK)
		return ex;
	int64_t now = (int64_t)time(NULL);
	size_t njti = 0;
	int rc = id != NULL ? attest_reg_revoke(w.db, id, now, &njti)
	                    : attest_jti_revoke(w.db, jti, now);
	if (rc == AAM_OK && id != NULL)
		printf("revoked %s (%zu live token%s published)\n", id, njti, njti == 1 ? "" : "s");
	else if (rc == AAM_OK)
		printf("revoked token %s\n", jti);
	else if (rc == AAM_E_NOTFOUND)
		fprintf(stderr, "aamctl workload: %s is not known\n", id != NULL ? id : jti);
	else if (rc == AAM_E_EXISTS)
		fprintf(stderr, "aamctl workload: %s is already revoked\n", id);
	else
		fprintf(stderr, "aamctl workload: %s\n", aam_strerror(rc));
	if (rc != AAM_OK)
		ex = AAMCTL_EXIT_FAIL;
	wl_close(&w);
	return ex;
}

static int
workload_run(int argc, char **argv, const struct aam_cli *cli)
{
	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		fprintf(argc < 2 ? stderr : stdout, "%s", workload_usage);
		return argc < 2 ? AAMCTL_EXIT_USAGE : AAMCTL_EXIT_OK;
	}
	const char *sub = argv[1];
	if (strcmp(sub, "register") == 0)
		return cmd_register(argc - 1, argv + 1, cli);
	if (strcmp(sub, "list") == 0)
		return cmd_list(argc - 1, argv + 1, cli);
	if (strcmp(sub, "show") == 0)
		return cmd_show(argc - 1, argv + 1, cli);
	if (strcmp(sub, "revoke") == 0)
		return cmd_revoke(argc - 1, argv + 1, cli);
	return usage_error("unknown subcommand");
}

const struct aamctl_cmd aamctl_cmd_workload = {
        .name = "workload",
        .summary = "register, list, show and revoke attested workloads",
        .run = workload_run,
};
