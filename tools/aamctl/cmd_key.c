/*
 * aamctl key: virtual keys of aam-gateway (gateway/vkeys.h).
 *
 *   aamctl key create --workload SPIFFE_ID --owner O [--team T] [--alias A]
 *         [--models r1,r2] [--expires 30d] [--rpm N] [--tpm N] [--max-budget USD] [--json]
 *   aamctl key list [--json]
 *   aamctl key revoke HASH|ALIAS
 *
 * The key is printed once, on standard output, and never again: only its
 * SHA-256 is stored.  aamctl opens the database named by gateway.db
 * directly; the gateway reads a key's row on every request, so a
 * revocation applies to the next request.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aam/err.h"
#include "common/config.h"
#include "common/json.h"
#include "common/secret.h"
#include "gateway/vkeys.h"
#include "tools/aamctl/aamctl.h"

static const char key_usage[] =
        "usage: aamctl key create --workload SPIFFE_ID --owner O [--team T] [--alias A]\n"
        "                [--models r1,r2] [--expires 30d] [--rpm N] [--tpm N]\n"
        "                [--max-budget USD] [--json]\n"
        "       aamctl key list [--json]\n"
        "       aamctl key revoke HASH|ALIAS\n";

static int
usage_error(const char *why)
{
	fprintf(stderr, "aamctl key: %s\n%s", why, key_usage);
	return AAMCTL_EXIT_USAGE;
}

struct key_ctx {
	struct aam_config cfg;
	struct aam_db *db;
};

static int
key_open(const struct aam_cli *cli, struct key_ctx *k)
{
	char err[512];
	memset(k, 0, sizeof(*k));
	if (aam_config_load(cli->config_path, &k->cfg, err, sizeof(err)) != AAM_OK ||
	    aam_config_require(&k->cfg, "gateway", err, sizeof(err)) != AAM_OK) {
		fprintf(stderr, "aamctl key: %s\n", err);
		return AAMCTL_EXIT_FAIL;
	}
	int rc = aam_db_open(k->cfg.gateway.db, AAM_DB_CREATE, &k->db);
	if (rc == AAM_OK)
		rc = gw_vkeys_migrate(k->db);
	if (rc != AAM_OK) {
		fprintf(stderr, "aamctl key: %s: cannot open the gateway database: %s\n",
		        k->cfg.gateway.db, aam_strerror(rc));
		aam_db_close(k->db);
		aam_config_uninit(&k->cfg);
		return AAMCTL_EXIT_FAIL;
	}
	return AAMCTL_EXIT_OK;
}

static void
key_close(struct key_ctx *k)
{
	aam_db_close(k->db);
	aam_config_uninit(&k->cfg);
}

/* "r1,r2" as a JSON array text; NULL on a malformed list. */
static char *
models_json(const char *list)
{
	json_t *a = json_array();
	char *copy = strdup(list);
	char *save = NULL, *out = NULL;
	bool ok = a != NULL && copy != NULL;
	for (char *t = ok ? strtok_r(copy, ",", &save) : NULL; t != NULL;
	     t = strtok_r(NULL, ",", &save)) {
		if (t[0] == '\0' || strlen(t) > 256)
			ok = false;
		else
			json_array_append_new(a, json_string(t));
	}
	if (ok && json_array_size(a) > 0)
		out = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	free(copy);
	return out;
}

static bool
parse_count(const char *s, int64_t *out)
{
	char *end = NULL;
	long long v = strtoll(s, &end, 10);
	if (s[0] == '\0' || *end != '\0' || v < 0 || v > 1000000000LL)
		return false;
	*out = v;
	return true;
}

static int
cmd_create(int argc, char **argv, const struct aam_cli *cli)
{
	static const struct option opts[] = {
	        {"workload", required_argument, NULL, 'w'},
	        {"owner", required_argument, NULL, 'o'},
	        {"team", required_argument, NULL, 't'},
	        {"alias", required_argument, NULL, 'a'},
	        {"models", required_argument, NULL, 'm'},
	        {"expires", required_argument, NULL, 'e'},
	        {"rpm", required_argument, NULL, 'r'},
	        {"tpm", required_argument, NULL, 'T'},
	        {"max-budget", required_argument, NULL, 'b'},
	        {"json", no_argument, NULL, 'j'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct gw_vkey k;
	memset(&k, 0, sizeof(k));
	k.max_budget = -1;
	char *models = NULL;
	bool json = false;
	int64_t expires_ms = 0;
	int ex = AAMCTL_EXIT_OK;
	optind = 0;
	int c;
	while (ex == AAMCTL_EXIT_OK && (c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'w':
			k.workload = optarg;
			break;
		case 'o':
			k.owner = optarg;
			break;
		case 't':
			k.team = optarg;
			break;
		case 'a':
			k.alias = optarg;
			break;
		case 'm':
			free(models);
			models = models_json(optarg);
			if (models == NULL)
				ex = usage_error("--models: a comma-separated list of route names");
			break;
		case 'e':
			if (aam_config_parse_duration(optarg, &expires_ms) != AAM_OK ||
			    expires_ms <= 0)
				ex = usage_error("--expires: a duration such as 30d or 12h");
			break;
		case 'r':
			if (!parse_count(optarg, &k.rpm))
				ex = usage_error("--rpm: a non-negative integer");
			break;
		case 'T':
			if (!parse_count(optarg, &k.tpm))
				ex = usage_error("--tpm: a non-negative integer");
			break;
		case 'b': {
			char *end = NULL;
			k.max_budget = strtod(optarg, &end);
			if (optarg[0] == '\0' || *end != '\0' || !(k.max_budget >= 0) ||
			    k.max_budget > 1e9)
				ex = usage_error("--max-budget: a number of USD");
			break;
		}
		case 'j':
			json = true;
			break;
		case 'h':
			printf("%s", key_usage);
			free(models);
			return AAMCTL_EXIT_OK;
		default:
			ex = AAMCTL_EXIT_USAGE;
		}
	}
	if (ex == AAMCTL_EXIT_OK && optind != argc)
		ex = usage_error("unexpected argument");
	if (ex == AAMCTL_EXIT_OK && (k.workload == NULL || k.owner == NULL))
		ex = usage_error("--workload and --owner are required");
	if (ex != AAMCTL_EXIT_OK) {
		free(models);
		return ex;
	}
	k.models = models;
	k.source = "aam";
	k.created = (int64_t)time(NULL);
	if (expires_ms > 0)
		k.expires = k.created + (expires_ms + 999) / 1000;

	struct key_ctx kc;
	ex = key_open(cli, &kc);
	if (ex != AAMCTL_EXIT_OK) {
		free(models);
		return ex;
	}
	char key[GW_VKEY_NEW_LEN + 1];
	int rc = gw_vkey_generate(key);
	if (rc == AAM_OK) {
		gw_vkey_hash(key, strlen(key), k.hash);
		rc = gw_vkey_insert(kc.db, &k);
	}
	if (rc != AAM_OK) {
		fprintf(stderr, "aamctl key: cannot create the key: %s%s\n", aam_strerror(rc),
		        rc == AAM_E_EXISTS  ? " (the alias is taken)"
		        : rc == AAM_E_INVAL ? " (check the SPIFFE ID, owner, team and alias)"
		                            : "");
		ex = AAMCTL_EXIT_FAIL;
	} else if (json) {
		json_t *j = json_pack("{s:s,s:s,s:s,s:s}", "key", key, "hash", k.hash, "workload",
		                      k.workload, "owner", k.owner);
		if (k.expires > 0)
			json_object_set_new(j, "expires", json_integer(k.expires));
		char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
		printf("%s\n", s != NULL ? s : "{}");
		if (s != NULL)
			aam_wipe(s, strlen(s));
		free(s);
		json_decref(j);
	} else {
		printf("%s\n", key);
		fprintf(stderr,
		        "aamctl key: created key %.16s for %s; it is shown only now, store it "
		        "safely\n",
		        k.hash, k.workload);
	}
	aam_wipe(key, sizeof(key));
	free(models);
	key_close(&kc);
	return ex;
}

struct list_ctx {
	bool json;
	json_t *arr;
};

static int
list_one(void *ctx, const struct gw_vkey *k)
{
	struct list_ctx *l = ctx;
	if (l->json) {
		json_t *o = json_pack("{s:s,s:s,s:s,s:b,s:s,s:I}", "hash", k->hash, "workload",
		                      k->workload, "owner", k->owner, "revoked", k->revoked,
		                      "source", k->source != NULL ? k->source : "aam", "created",
		                      (json_int_t)k->created);
		if (o == NULL)
			return AAM_E_NOMEM;
		if (k->alias != NULL)
			json_object_set_new(o, "alias", json_string(k->alias));
		if (k->team != NULL)
			json_object_set_new(o, "team", json_string(k->team));
		if (k->models != NULL)
			json_object_set_new(o, "models", json_string(k->models));
		if (k->expires > 0)
			json_object_set_new(o, "expires", json_integer(k->expires));
		json_array_append_new(l->arr, o);
		return AAM_OK;
	}
	int64_t now = (int64_t)time(NULL);
	const char *state = k->revoked                              ? "revoked"
	                    : (k->expires > 0 && now >= k->expires) ? "expired"
	                                                            : "active";
	printf("%.16s  %-8s %-20s %s owner=%s%s%s\n", k->hash, state,
	       k->alias != NULL ? k->alias : "-", k->workload, k->owner,
	       k->team != NULL ? " team=" : "", k->team != NULL ? k->team : "");
	return AAM_OK;
}

static int
cmd_list(int argc, char **argv, const struct aam_cli *cli)
{
	bool json = argc == 2 && strcmp(argv[1], "--json") == 0;
	if (argc > 2 || (argc == 2 && !json))
		return usage_error("list takes only --json");
	struct key_ctx kc;
	int ex = key_open(cli, &kc);
	if (ex != AAMCTL_EXIT_OK)
		return ex;
	struct list_ctx l = {.json = json, .arr = json ? json_array() : NULL};
	int rc = gw_vkey_list(kc.db, list_one, &l);
	if (rc == AAM_OK && json) {
		char *s = json_dumps(l.arr, JSON_COMPACT);
		printf("%s\n", s != NULL ? s : "[]");
		free(s);
	}
	json_decref(l.arr);
	if (rc != AAM_OK) {
		fprintf(stderr, "aamctl key: cannot list keys: %s\n", aam_strerror(rc));
		ex = AAMCTL_EXIT_FAIL;
	}
	key_close(&kc);
	return ex;
}

static int
cmd_revoke(int argc, char **argv, const struct aam_cli *cli)
{
	if (argc != 2 || argv[1][0] == '-')
		return usage_error("revoke takes one key hash or alias");
	struct key_ctx kc;
	int ex = key_open(cli, &kc);
	if (ex != AAMCTL_EXIT_OK)
		return ex;
	int rc = gw_vkey_revoke(kc.db, argv[1]);
	if (rc == AAM_E_NOTFOUND) {
		fprintf(stderr, "aamctl key: no key with that hash or alias\n");
		ex = AAMCTL_EXIT_FAIL;
	} else if (rc != AAM_OK) {
		fprintf(stderr, "aamctl key: cannot revoke: %s\n", aam_strerror(rc));
		ex = AAMCTL_EXIT_FAIL;
	} else {
		fprintf(stderr, "aamctl key: revoked\n");
	}
	key_close(&kc);
	return ex;
}

static int
key_run(int argc, char **argv, const struct aam_cli *cli)
{
	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		fprintf(argc < 2 ? stderr : stdout, "%s", key_usage);
		return argc < 2 ? AAMCTL_EXIT_USAGE : AAMCTL_EXIT_OK;
	}
	const char *sub = argv[1];
	if (strcmp(sub, "create") == 0)
		return cmd_create(argc - 1, argv + 1, cli);
	if (strcmp(sub, "list") == 0)
		return cmd_list(argc - 1, argv + 1, cli);
	if (strcmp(sub, "revoke") == 0)
		return cmd_revoke(argc - 1, argv + 1, cli);
	return usage_error("unknown subcommand");
}

const struct aamctl_cmd aamctl_cmd_key = {
        .name = "key",
        .summary = "create, list and revoke the gateway's virtual keys",
        .run = key_run,
};
