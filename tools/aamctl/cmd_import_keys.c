/*
 * aamctl import litellm-keys FILE --workload-prefix spiffe://TD/ns/NS/sa/
 *                             [--default-owner O] [--db PATH]
 *
 * Step 2 of the LiteLLM migration: LiteLLM's key table (LiteLLM_VerificationToken),
 * exported as JSON (an array of objects, or {"keys": [...]}) or CSV with a
 * header row, becomes rows of the gateway's virtual_keys table
 * (gateway/vkeys.h, source 'litellm').  LiteLLM stores the SHA-256 hex of
 * each key, which is exactly what AAM stores, so applications keep their
 * `sk-...` keys.  Each key is mapped to a workload identity (prefix +
 * alias or team) and an owner.  Re-importing updates rows in place.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "aam/err.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/db.h"
#include "gateway/vkeys.h"
#include "tools/aamctl/aamctl.h"
#include "tools/aamctl/cmd_import.h"

#define MAX_FILE (64u * 1024 * 1024)

/* ---- CSV (RFC 4180) into JSON objects keyed by the header row ---------- */

static int
csv_rows(const char *p, size_t n, json_t **out)
{
	json_t *rows = json_array(), *header = json_array(), *cur = json_array();
	struct aam_buf field;
	aam_buf_init(&field, 1u << 20);
	size_t i = 0;
	bool done = false;
	int rc = AAM_OK;
	while (!done && rc == AAM_OK) {
		/* One field. */
		aam_buf_reset(&field);
		if (i < n && p[i] == '"') {
			i++;
			for (;;) {
				if (i >= n) {
					rc = AAM_E_PARSE; /* unterminated quote */
					break;
				}
				if (p[i] == '"') {
					if (i + 1 < n && p[i + 1] == '"') {
						aam_buf_append_byte(&field, '"');
						i += 2;
						continue;
					}
					i++;
					break;
				}
				aam_buf_append_byte(&field, (uint8_t)p[i++]);
			}
		} else {
			while (i < n && p[i] != ',' && p[i] != '\n' && p[i] != '\r')
				aam_buf_append_byte(&field, (uint8_t)p[i++]);
		}
		if (rc != AAM_OK || aam_buf_failed(&field)) {
			rc = rc != AAM_OK ? rc : AAM_E_TOOBIG;
			break;
		}
		json_array_append_new(cur, json_stringn(aam_buf_cstr(&field), field.len));
		if (i < n && p[i] == ',') {
			i++;
			continue;
		}
		if (i < n && p[i] == '\r')
			i++;
		if (i < n && p[i] == '\n')
			i++;
		else if (i < n) {
			rc = AAM_E_PARSE; /* junk after a closing quote */
			break;
		}
		done = i >= n;
		/* End of a record. */
		bool blank = json_array_size(cur) == 1 &&
		             json_string_length(json_array_get(cur, 0)) == 0;
		if (!blank) {
			if (json_array_size(header) == 0) {
				json_array_extend(header, cur);
			} else {
				json_t *o = json_object();
				size_t k;
				json_t *v;
				json_array_foreach(cur, k, v)
				{
					const char *name =
					        json_string_value(json_array_get(header, k));
					if (name != NULL)
						json_object_set(o, name, v);
				}
				json_array_append_new(rows, o);
			}
		}
		json_array_clear(cur);
	}
	aam_buf_uninit(&field);
	json_decref(cur);
	json_decref(header);
	if (rc != AAM_OK) {
		json_decref(rows);
		return rc;
	}
	*out = rows;
	return AAM_OK;
}

/* ---- field readers (JSON exports carry numbers, CSV carries strings) --- */

static const char *
fstr(const json_t *row, const char *key)
{
	const char *s = json_string_value(json_object_get(row, key));
	return s != NULL && *s != '\0' && strcmp(s, "null") != 0 && strcmp(s, "NULL") != 0 ? s
	                                                                                   : NULL;
}

static bool
fnum(const json_t *row, const char *key, double *out)
{
	const json_t *v = json_object_get(row, key);
	if (json_is_number(v)) {
		*out = json_number_value(v);
		return true;
	}
	const char *s = fstr(row, key);
	if (s == NULL)
		return false;
	char *end;
	double d = strtod(s, &end);
	if (*end != '\0' || end == s)
		return false;
	*out = d;
	return true;
}

static bool
ftrue(const json_t *row, const char *key)
{
	const json_t *v = json_object_get(row, key);
	const char *s = json_string_value(v);
	return json_is_true(v) || (s != NULL && (strcasecmp(s, "true") == 0 ||
	                                         strcmp(s, "t") == 0 || strcmp(s, "1") == 0));
}

/* "2025-06-30T12:00:00Z", "2025-06-30 12:00:00+00", "2025-06-30", or Unix seconds. */
static int
parse_expires(const json_t *row, int64_t *out)
{
	double d;
	*out = 0;
	if (fnum(row, "expires", &d)) {
		*out = (int64_t)d;
		return AAM_OK;
	}
	const char *s = fstr(row, "expires");
	if (s == NULL)
		return AAM_OK;
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	int used = 0;
	if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &used) != 3)
		return AAM_E_PARSE;
	const char *rest = s + used;
	if (*rest == 'T' || *rest == ' ') {
		int u2 = 0;
		if (sscanf(rest + 1, "%2d:%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &u2) !=
		    3)
			return AAM_E_PARSE;
		rest += 1 + u2;
		if (*rest == '.')
			for (rest++; isdigit((unsigned char)*rest); rest++)
				;
		/* LiteLLM stores UTC; only a UTC designator is accepted. */
		if (*rest != '\0' && strcmp(rest, "Z") != 0 && strcmp(rest, "+00") != 0 &&
		    strcmp(rest, "+00:00") != 0)
			return AAM_E_PARSE;
	} else if (*rest != '\0') {
		return AAM_E_PARSE;
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	if (t <= 0)
		return AAM_E_PARSE;
	*out = (int64_t)t;
	return AAM_OK;
}

/* models: JSON array, "[...]" JSON text, Postgres "{a,b}", or "a,b".  [] = every route. */
static int
parse_models(const json_t *row, char **out)
{
	*out = NULL;
	const json_t *v = json_object_get(row, "models");
	json_t *arr = NULL;
	const char *models = fstr(row, "models");
	if (json_is_array(v)) {
		arr = json_deep_copy(v);
	} else if (models != NULL) {
		const char *s = models;
		if (s[0] == '[') {
			arr = json_loads(s, 0, NULL);
		} else {
			arr = json_array();
			const char *p = s[0] == '{' ? s + 1 : s;
			while (arr != NULL && *p != '\0' && *p != '}') {
				size_t n = strcspn(p, ",}");
				while (n > 0 && isspace((unsigned char)*p)) {
					p++;
					n--;
				}
				size_t m = n;
				while (m > 0 && isspace((unsigned char)p[m - 1]))
					m--;
				if (m >= 2 && p[0] == '"' && p[m - 1] == '"') {
					p++;
					m -= 2;
					n--;
				}
				if (m > 0)
					json_array_append_new(arr, json_stringn(p, m));
				p += n;
				if (*p == '"')
					p++;
				if (*p == ',')
					p++;
			}
		}
	}
	if (v != NULL && !json_is_null(v) && arr == NULL && fstr(row, "models") != NULL)
		return AAM_E_PARSE;
	if (arr == NULL)
		return AAM_OK;
	size_t i;
	json_t *m;
	bool all = json_array_size(arr) == 0;
	json_array_foreach(arr, i, m)
	{
		if (!json_is_string(m)) {
			json_decref(arr);
			return AAM_E_PARSE;
		}
		/* LiteLLM's "every model" markers. */
		if (strcmp(json_string_value(m), "all-proxy-models") == 0 ||
		    strcmp(json_string_value(m), "*") == 0)
			all = true;
	}
	if (!all)
		*out = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	return all || *out != NULL ? AAM_OK : AAM_E_NOMEM;
}

static void
segment(const char *in, char *out, size_t outlen)
{
	size_t j = 0;
	for (size_t i = 0; in[i] != '\0' && j + 1 < outlen; i++) {
		unsigned char c = (unsigned char)tolower((unsigned char)in[i]);
		out[j++] = (char)(isalnum(c) || c == '.' || c == '_' || c == '-' ? c : '-');
	}
	out[j] = '\0';
}

struct keys_opts {
	const char *prefix, *owner;
	int imported, updated, skipped;
};

static void
skip(struct keys_opts *o, size_t rowno, const char *who, const char *why)
{
	printf("skipped  row %zu%s%s: %s\n", rowno, who != NULL ? " " : "", who != NULL ? who : "",
	       why);
	o->skipped++;
}

static int
import_row(struct aam_db *db, struct keys_opts *o, const json_t *row, size_t rowno)
{
	if (!json_is_object(row)) {
		skip(o, rowno, NULL, "not an object");
		return AAM_OK;
	}
	struct gw_vkey k;
	memset(&k, 0, sizeof(k));
	const char *token = fstr(row, "token");
	const char *alias = fstr(row, "key_alias");
	const char *team = fstr(row, "team_id");
	const char *user = fstr(row, "user_id");
	const char *who = alias != NULL ? alias : team;
	if (token == NULL) {
		skip(o, rowno, who, "no token (the key's SHA-256 hash)");
		return AAM_OK;
	}
	if (strncmp(token, "sk-", 3) == 0) {
		/* A raw key in the export: hash it; the file itself should go. */
		gw_vkey_hash(token, strlen(token), k.hash);
		fprintf(stderr,
		        "warning: row %zu holds a raw key, not its hash; imported by hash — delete "
		        "the export file\n",
		        rowno);
	} else {
		size_t n = strlen(token);
		bool hex = n == GW_VKEY_HASH_LEN;
		for (size_t i = 0; hex && i < n; i++)
			hex = isxdigit((unsigned char)token[i]) != 0;
		if (!hex) {
			skip(o, rowno, who, "token is not a SHA-256 hex hash");
			return AAM_OK;
		}
		for (size_t i = 0; i < n; i++)
			k.hash[i] = (char)tolower((unsigned char)token[i]);
		k.hash[n] = '\0';
	}
	if (who == NULL) {
		skip(o, rowno, NULL, "no key_alias or team_id to name a workload");
		return AAM_OK;
	}
	char seg[200], workload[512];
	segment(who, seg, sizeof(seg));
	snprintf(workload, sizeof(workload), "%s%s", o->prefix, seg);
	k.workload = workload;
	k.owner = (char *)(uintptr_t)(user != NULL ? user : o->owner);
	if (k.owner == NULL) {
		skip(o, rowno, who, "no user_id and no --default-owner");
		return AAM_OK;
	}
	k.alias = (char *)(uintptr_t)alias;
	k.team = (char *)(uintptr_t)team;
	k.max_budget = -1;
	double d;
	if (fnum(row, "max_budget", &d))
		k.max_budget = d;
	k.budget_duration = (char *)(uintptr_t)fstr(row, "budget_duration");
	if (fnum(row, "rpm_limit", &d))
		k.rpm = (int64_t)d;
	if (fnum(row, "tpm_limit", &d))
		k.tpm = (int64_t)d;
	if (parse_expires(row, &k.expires) != AAM_OK) {
		skip(o, rowno, who, "expires is not a UTC date-time or Unix time");
		return AAM_OK;
	}
	if (parse_models(row, &k.models) != AAM_OK) {
		skip(o, rowno, who, "models is not a list of model names");
		return AAM_OK;
	}
	k.revoked = ftrue(row, "blocked");
	k.source = "litellm";

	struct gw_vkey old;
	memset(&old, 0, sizeof(old));
	int rc = aam_db_begin(db);
	bool existed = false;
	if (rc == AAM_OK) {
		int lr = gw_vkey_lookup_hash(db, k.hash, &old);
		if (lr == AAM_OK) {
			existed = true;
			if (old.source == NULL || strcmp(old.source, "litellm") != 0) {
				aam_db_rollback(db);
				gw_vkey_uninit(&old);
				free(k.models);
				skip(o, rowno, who,
				     "a key with this hash already exists (not from LiteLLM)");
				return AAM_OK;
			}
			/* Update in place: the row is replaced; creation time and a
			 * revocation made in AAM are kept. */
			k.created = old.created;
			k.revoked = k.revoked || old.revoked;
			struct aam_db_stmt *st;
			rc = aam_db_stmt_get(db, "DELETE FROM virtual_keys WHERE hash = ?1", &st);
			if (rc == AAM_OK) {
				aam_db_bind_str(st, 1, k.hash);
				rc = aam_db_run(st);
			}
		} else if (lr != AAM_E_NOTFOUND) {
			rc = lr;
		}
	}
	if (rc == AAM_OK)
		rc = gw_vkey_insert(db, &k);
	if (rc == AAM_OK)
		rc = aam_db_commit(db);
	else
		aam_db_rollback(db);
	gw_vkey_uninit(&old);
	free(k.models);
	if (rc == AAM_E_EXISTS) {
		skip(o, rowno, who, "its key_alias is already used by another key");
		return AAM_OK;
	}
	if (rc == AAM_E_INVAL) {
		skip(o, rowno, who, "a field is invalid (workload identity, owner or budget)");
		return AAM_OK;
	}
	if (rc != AAM_OK)
		return rc;
	printf("%s %s -> %s (owner %s%s%s)%s\n", existed ? "updated " : "imported", who, workload,
	       k.owner, team != NULL ? ", team " : "", team != NULL ? team : "",
	       k.revoked ? " [blocked: revoked]" : "");
	if (existed)
		o->updated++;
	else
		o->imported++;
	return AAM_OK;
}

int
import_litellm_keys_main(int argc, char **argv, const struct aam_cli *cli)
{
	struct keys_opts o = {0};
	const char *file = NULL, *dbpath = NULL;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--workload-prefix") == 0 && i + 1 < argc)
			o.prefix = argv[++i];
		else if (strcmp(a, "--default-owner") == 0 && i + 1 < argc)
			o.owner = argv[++i];
		else if (strcmp(a, "--db") == 0 && i + 1 < argc)
			dbpath = argv[++i];
		else if (a[0] != '-' && file == NULL)
			file = a;
		else {
			fprintf(stderr, "aamctl import litellm-keys: unexpected argument '%s'\n",
			        a);
			return AAMCTL_EXIT_USAGE;
		}
	}
	if (file == NULL || o.prefix == NULL) {
		fprintf(stderr, "usage: aamctl import litellm-keys FILE --workload-prefix "
		                "spiffe://TD/PATH/ [--default-owner O] [--db PATH]\n");
		return AAMCTL_EXIT_USAGE;
	}
	size_t pl = strlen(o.prefix);
	if (strncmp(o.prefix, "spiffe://", 9) != 0 || pl < 11 || o.prefix[pl - 1] != '/') {
		fprintf(stderr, "aamctl import litellm-keys: --workload-prefix must look like "
		                "spiffe://TRUST-DOMAIN/path/ (ending with '/')\n");
		return AAMCTL_EXIT_USAGE;
	}
	struct aam_config cfg;
	bool have_cfg = false;
	if (dbpath == NULL) {
		char err[512];
		if (aam_config_load(cli->config_path, &cfg, err, sizeof(err)) != AAM_OK) {
			fprintf(stderr, "aamctl import litellm-keys: %s (or give --db PATH)\n",
			        err);
			return AAMCTL_EXIT_FAIL;
		}
		have_cfg = true;
		dbpath = cfg.gateway.db;
		if (dbpath == NULL) {
			fprintf(stderr,
			        "aamctl import litellm-keys: no gateway.db in %s; give --db\n",
			        cli->config_path);
			aam_config_uninit(&cfg);
			return AAMCTL_EXIT_FAIL;
		}
	}
	int ex = AAMCTL_EXIT_FAIL;
	json_t *rows = NULL;
	struct aam_db *db = NULL;
	FILE *f = fopen(file, "rb");
	struct aam_buf b;
	aam_buf_init(&b, MAX_FILE);
	if (f == NULL) {
		fprintf(stderr, "aamctl import litellm-keys: cannot open %s\n", file);
		goto out;
	}
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		aam_buf_append(&b, chunk, n);
	fclose(f);
	if (aam_buf_failed(&b)) {
		fprintf(stderr, "aamctl import litellm-keys: %s is too large\n", file);
		goto out;
	}
	const char *p = aam_buf_cstr(&b);
	size_t skipws = 0;
	while (skipws < b.len && isspace((unsigned char)p[skipws]))
		skipws++;
	if (skipws < b.len && (p[skipws] == '[' || p[skipws] == '{')) {
		json_error_t je;
		json_t *doc = json_loadb(p, b.len, JSON_REJECT_DUPLICATES, &je);
		if (doc == NULL) {
			fprintf(stderr, "aamctl import litellm-keys: %s:%d:%d: %s\n", file, je.line,
			        je.column, je.text);
			goto out;
		}
		rows = json_is_array(doc) ? json_incref(doc)
		                          : json_incref(json_object_get(doc, "keys"));
		json_decref(doc);
		if (!json_is_array(rows)) {
			fprintf(stderr,
			        "aamctl import litellm-keys: %s: expected an array or {\"keys\": "
			        "[...]}\n",
			        file);
			goto out;
		}
	} else if (csv_rows(p + skipws, b.len - skipws, &rows) != AAM_OK) {
		fprintf(stderr, "aamctl import litellm-keys: %s: malformed CSV\n", file);
		goto out;
	}
	int rc = aam_db_open(dbpath, AAM_DB_CREATE, &db);
	if (rc == AAM_OK)
		rc = gw_vkeys_migrate(db);
	if (rc != AAM_OK) {
		fprintf(stderr, "aamctl import litellm-keys: cannot open %s: %s\n", dbpath,
		        aam_strerror(rc));
		goto out;
	}
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row)
	{
		rc = import_row(db, &o, row, i + 1);
		if (rc != AAM_OK) {
			fprintf(stderr,
			        "aamctl import litellm-keys: database error on row %zu: %s\n",
			        i + 1, aam_strerror(rc));
			goto out;
		}
	}
	printf("summary: %d imported, %d updated, %d skipped\n", o.imported, o.updated, o.skipped);
	ex = o.skipped == 0 ? AAMCTL_EXIT_OK : AAMCTL_EXIT_FAIL;
out:
	aam_db_close(db);
	json_decref(rows);
	aam_buf_uninit(&b);
	if (have_cfg)
		aam_config_uninit(&cfg);
	return ex;
}
