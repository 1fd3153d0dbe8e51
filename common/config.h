/*
 * The deployment's configuration: ONE YAML file (default /etc/aam/aam.yaml)
 * with a section per daemon, loaded into typed structs.  docs/CONFIG.md
 * documents every option.
 *
 * Loading is table-driven: each section is a table of field descriptors
 * (key, type, offsetof into the section struct, default, required, bounds),
 * and one generic loader walks a YAML mapping with such a table.  A later
 * issue adds an option by adding a struct member and a row.  Everything the
 * tables do not describe is an error: unknown keys, wrong types, values out
 * of range and missing required values are all reported as
 * "file:line:column: section.key: message".
 *
 * Environment variables are deliberately not expanded, and no option holds
 * a secret: the PKCS#11 PIN is read from pin_file by aam-vault, never from
 * this file.
 */
#ifndef AAM_COMMON_CONFIG_H
#define AAM_COMMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/yaml.h"

/* ---- the generic, table-driven loader ---- */

enum aam_config_type {
	AAM_CFG_STR = 1,  /* char *: a non-empty string without control characters */
	AAM_CFG_BOOL,     /* bool: true or false */
	AAM_CFG_INT,      /* int64_t within [min, max] */
	AAM_CFG_DURATION, /* int64_t milliseconds: "500ms", "30s", "5m", "1h30m", "2d" */
	AAM_CFG_SIZE,     /* uint64_t bytes: 1024, "512B", "64KiB", "4MiB", "1GiB" */
	AAM_CFG_PATH,     /* char *: relative paths are resolved against the file's folder */
	AAM_CFG_LIST_STR, /* struct aam_config_strlist: a sequence of strings (max items: .max) */
	AAM_CFG_ENUM,     /* int: index of the value in .choices */
	AAM_CFG_SECTION,  /* a nested struct described by .section */
};

struct aam_config_strlist {
	size_t n;
	char **v;
};

/*
 * Extra validation of a string value (STR, PATH, LIST_STR items).  Returns
 * AAM_OK, or an error code with a reason in WHY (shown after "key: ").
 */
typedef int (*aam_config_check_fn)(const char *value, char *why, size_t whylen);

/* PATH: a value without '/' is a name (a p11-kit module name), kept as is. */
#define AAM_CFG_F_NAME_OK 0x1u
/* STR, PATH: the empty string is allowed. */
#define AAM_CFG_F_EMPTY_OK 0x2u

struct aam_config_section;

struct aam_config_field {
	const char *key;
	enum aam_config_type type;
	size_t offset;    /* offsetof(section struct, member) */
	const char *def;  /* default, written as in the file ("5m", "4MiB", "info"); NULL: none */
	bool required;    /* must appear when its section does */
	int64_t min, max; /* INT, DURATION (ms), SIZE (bytes); both 0: unbounded */
	const struct aam_config_section *section; /* SECTION */
	const char *const *choices;               /* ENUM: NULL-terminated */
	aam_config_check_fn check;
	unsigned flags; /* AAM_CFG_F_* */
};

/*
 * Runs after a section's keys are loaded (and for absent sections, with
 * AT == NULL) to derive defaults from other fields and check combinations.
 * AT is the node to report errors at.
 */
typedef int (*aam_config_finish_fn)(void *sec, const struct aam_yaml_node *at, const char *file,
                                    struct aam_yaml_error *err);

#define AAM_CFG_NO_PRESENT ((size_t)-1)

struct aam_config_section {
	const char *name; /* dotted path in messages ("vault.pkcs11"); "" for the root */
	const struct aam_config_field *fields;
	size_t nfields;        /* at most 64 */
	size_t present_offset; /* offsetof a bool set when the section appears, or NO_PRESENT */
	aam_config_finish_fn finish; /* may be NULL */
};

/* Fills SEC with the defaults of its table (nested sections included). */
int aam_config_section_defaults(const struct aam_config_section *d, void *sec);
/*
 * Loads VALUE (a mapping, or null for an empty section) into SEC, which
 * holds its defaults.  KEY is the section's key node (for error positions;
 * may be NULL); FILE names the file in errors and anchors relative paths.
 */
int aam_config_section_load(const struct aam_config_section *d, const struct aam_yaml_node *key,
                            const struct aam_yaml_node *value, const char *file, void *sec,
                            struct aam_yaml_error *err);
/* Frees the strings and lists of SEC and zeroes it. */
void aam_config_section_uninit(const struct aam_config_section *d, void *sec);

/* Value syntaxes, shared with any other file that uses them. */
int aam_config_parse_duration(const char *s, int64_t *ms);
int aam_config_parse_size(const char *s, uint64_t *bytes);

#define AAM_CONFIG_HOST_MAX 256
/*
 * "127.0.0.1:4000", "[::1]:4000" or "localhost:4000": an IPv4 address, a
 * bracketed IPv6 address or a DNS name, and a port 1-65535.  HOST receives
 * the host without brackets.  AAM_E_INVAL when malformed.
 */
int aam_config_parse_listen(const char *s, char host[AAM_CONFIG_HOST_MAX], uint16_t *port);

/* Checks usable as aam_config_field.check. */
int aam_config_check_listen(const char *value, char *why, size_t whylen);
/* http(s)://host[:port][/path][?query]: no credentials, no fragment. */
int aam_config_check_url(const char *value, char *why, size_t whylen);
/* An RFC 7512 "pkcs11:" URI; pin-value is refused (PINs never live in config). */
int aam_config_check_pkcs11_uri(const char *value, char *why, size_t whylen);

/* ---- the deployment's sections ---- */

struct aam_config_log {
	bool present;
	int level; /* enum aam_log_level */
};

struct aam_config_vault_sockets {
	bool present;
	char *gateway; /* the gateway's socket */
	char *attest;  /* aam-attest's socket (signing) */
	char *admin;   /* aamctl's socket */
};

struct aam_config_vault_pkcs11 {
	bool present;
	char *module;   /* module path, or p11-kit module name */
	char *token;    /* RFC 7512 pkcs11: URI of the token */
	char *pin_file; /* file holding the user PIN, or NULL */
};

/* Who may use one of the vault's sockets, and for what (vault/perm.h). */
struct aam_config_vault_peer {
	bool present;
	char *mode;                     /* socket file mode, octal ("0660") */
	char *owner;                    /* socket owner (user name or uid), or NULL */
	char *group;                    /* socket group (group name or gid), or NULL */
	struct aam_config_strlist uids; /* peers allowed by uid; with gids empty: any peer */
	struct aam_config_strlist gids; /* peers allowed by primary gid */
	struct aam_config_strlist ops;  /* operations allowed; empty: the role's full set */
};

struct aam_config_vault_access {
	bool present;
	struct aam_config_vault_peer gateway, attest, admin;
};

/* The audit log (vault/audit.h, docs/AUDIT.md). */
struct aam_config_vault_audit {
	bool present;
	char *db;                  /* default <state_dir>/audit.db */
	char *checkpoint_dir;      /* default <state_dir>/checkpoints */
	char *origin;              /* log name, also the checkpoint key name */
	int64_t append_timeout_ms; /* bound on one durable append */
};

struct aam_config_vault {
	bool present;
	char *state_dir;
	char *db; /* default <state_dir>/vault.db */
	struct aam_config_vault_sockets sockets;
	struct aam_config_vault_pkcs11 pkcs11;
	struct aam_config_vault_access access;
	char *ca_bundle;             /* CA bundle for upstream TLS, or NULL for the system's */
	int64_t connect_timeout_ms;  /* upstream connect timeout */
	int64_t request_timeout_ms;  /* whole upstream request; 0: none */
	uint64_t max_body;           /* INJECT request body limit */
	bool http2;                  /* offer HTTP/2 to upstreams */
	int64_t secret_cache_ttl_ms; /* decrypted-secret cache; 0: off */
	struct aam_config_vault_audit audit;
};

struct aam_config_attest {
	bool present;
	char *listen;
	char *db;
	char *issuer;
	int64_t token_ttl_ms;
	char *trust_domain;              /* SPIFFE trust domain of the workloads, or NULL */
	struct aam_config_strlist ek_ca; /* PEM files of trusted TPM EK manufacturer CAs */
	char *vault_socket;              /* aam-vault's attest socket (SIGN, PUBKEY) */
};

struct aam_config_gateway {
	bool present;
	char *listen;
	char *policies;
	uint64_t max_body;
	char *external_url; /* how agents reach the gateway (DPoP htu); default http://LISTEN */
	char *routes;       /* model routes file (gateway/route.h), or NULL */
	char *tools;        /* tool catalogue file or folder, or NULL: the folder tools next to
	                     * policies (gateway/tools_gw.c) */
	char *db;           /* virtual keys and budgets */
	char *vault_socket; /* aam-vault's gateway socket (INJECT, AUDIT_APPEND) */
	char *attest_url;   /* aam-attest: JWKS and revocation feed */
	char *jwks_url;     /* default ATTEST_URL/.well-known/jwks.json */
	char *issuer;       /* required "iss" of tokens; default ATTEST_URL */
	char *audience;     /* required "aud" of tokens; default EXTERNAL_URL */
	int64_t request_timeout_ms; /* whole request, upstream included */
	int64_t revocation_poll_ms; /* how often the revocation feed is read */
	int64_t jwks_refresh_ms;    /* least time between two JWKS fetches for an unknown kid */
	char *environment;          /* runtime environment for policy conditions, or NULL */
	int64_t max_connections;    /* concurrent client connections (one thread each) */
};

struct aam_config_agent {
	bool present;
	char *listen;
	char *attest_url;
	char *gateway_url;
	char *tcti;          /* TPM TCTI string, or NULL */
	char *pkcs11_key;    /* pkcs11: URI of the key, or NULL */
	char *audience;      /* default: gateway_url */
	char *spiffe_id;     /* the workload's registered SPIFFE ID */
	char *state_dir;     /* TPM key blobs */
	char *pkcs11_module; /* module path or p11-kit name for pkcs11_key, or NULL */
	char *pin_file;      /* user PIN file for pkcs11_key, or NULL (the URI's pin-source) */
	char *ca_bundle;     /* CA file for https attest_url / gateway_url, or NULL */
	uint64_t max_body;   /* largest request body the sidecar forwards */
};

struct aam_config {
	char *path; /* the file loaded */
	struct aam_config_log log;
	struct aam_config_vault vault;
	struct aam_config_attest attest;
	struct aam_config_gateway gateway;
	struct aam_config_agent agent;
};

/*
 * Loads the file at PATH into OUT.  Absent sections hold their defaults
 * with present == false.  On failure OUT is left zeroed and ERRBUF holds
 * "file:line:column: message" (or "file: message").  Returns
 * AAM_E_CONFIG for a bad file, AAM_E_NOTFOUND/AAM_E_PERM/AAM_E_IO when it
 * cannot be read, AAM_E_NOMEM.
 */
int aam_config_load(const char *path, struct aam_config *out, char *errbuf, size_t errlen);
/* The same from memory; NAME stands for the file (errors, relative paths). */
int aam_config_load_buffer(const char *name, const void *data, size_t len, struct aam_config *out,
                           char *errbuf, size_t errlen);
void aam_config_uninit(struct aam_config *cfg);
/*
 * A daemon asks for its own section: AAM_E_CONFIG with "file: missing
 * section 'NAME'" when the file does not have it.
 */
int aam_config_require(const struct aam_config *cfg, const char *section, char *errbuf,
                       size_t errlen);
/* The root table (sections as SECTION fields), for tools and tests. */
const struct aam_config_section *aam_config_schema(void);

#endif
