/*
 * attest/registry: registrations, validation, join completion, revocation
 * and the revocation feed, on a real SQLite file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "attest/registry.h"
#include "tests/lib/testutil.h"
#include "tests/unit/attest/attest_testutil.h"

struct fx {
	char *dir;
	char path[1024];
	struct aam_db *db;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->dir = aam_test_mkdtemp("aam-reg");
	snprintf(f->path, sizeof(f->path), "%s/attest.db", f->dir);
	if (attest_registry_open(f->path, true, &f->db) != AAM_OK)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	aam_db_close(f->db);
	aam_test_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static const char JKT[] = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

static void
test_insert_get_roundtrip(void **state)
{
	struct fx *f = *state;
	struct attest_reg *r = calloc(1, sizeof(*r)), *g = calloc(1, sizeof(*g));
	at_reg_init(r, "spiffe://prod/agent/finance-analyst", ATTEST_METHOD_TPM,
	            "http://127.0.0.1:4000");
	r->has_ek_pub = true;
	memset(r->ek_pub_sha256, 0xab, 32);
	r->pcr_mask = 0x83;
	r->pcr_value_mask = 0x81;
	memset(r->pcr_values[0], 0x11, 32);
	memset(r->pcr_values[7], 0x77, 32);
	snprintf(r->audiences[1], sizeof(r->audiences[1]), "https://gw.example.com");
	r->naudiences = 2;
	r->token_ttl = 600;
	assert_int_equal(attest_reg_validate(r, "prod", NULL, 0), AAM_OK);
	assert_int_equal(attest_reg_insert(f->db, r), AAM_OK);
	assert_true(r->id > 0);
	assert_int_equal(attest_reg_get(f->db, r->spiffe_id, g), AAM_OK);
	assert_int_equal(g->id, r->id);
	assert_string_equal(g->owner, "alice@example.com");
	assert_int_equal(g->method, ATTEST_METHOD_TPM);
	assert_true(g->has_ek_pub);
	assert_false(g->has_ek_ca);
	assert_memory_equal(g->ek_pub_sha256, r->ek_pub_sha256, 32);
	assert_int_equal(g->pcr_mask, 0x83);
	assert_int_equal(g->pcr_value_mask, 0x81);
	assert_memory_equal(g->pcr_values[7], r->pcr_values[7], 32);
	assert_int_equal(g->naudiences, 2);
	assert_string_equal(g->audiences[1], "https://gw.example.com");
	assert_int_equal(g->token_ttl, 600);
	assert_int_equal(g->revoked, 0);
	/* The same SPIFFE ID twice is refused. */
	assert_int_equal(attest_reg_insert(f->db, r), AAM_E_EXISTS);
	assert_int_equal(attest_reg_get(f->db, "spiffe://prod/agent/other", g), AAM_E_NOTFOUND);
	free(r);
	free(g);
}

static void
test_validate(void **state)
{
	(void)state;
	struct attest_reg *r = calloc(1, sizeof(*r));
	char why[256];
	at_reg_init(r, "spiffe://prod/agent/a", ATTEST_METHOD_PKCS11, "aud");
	/* PKCS#11 needs a thumbprint. */
	assert_int_equal(attest_reg_validate(r, NULL, why, sizeof(why)), AAM_E_INVAL);
	assert_non_null(strstr(why, "pkcs11"));
	memcpy(r->key_jkt, JKT, sizeof(JKT));
	assert_int_equal(attest_reg_validate(r, NULL, why, sizeof(why)), AAM_OK);
	/* Trust domain. */
	assert_int_equal(attest_reg_validate(r, "staging", why, sizeof(why)), AAM_E_INVAL);
	assert_non_null(strstr(why, "trust domain"));
	/* A SPIFFE ID without a path, or malformed. */
	snprintf(r->spiffe_id, sizeof(r->spiffe_id), "spiffe://prod");
	assert_int_equal(attest_reg_validate(r, NULL, why, sizeof(why)), AAM_E_INVAL);
	snprintf(r->spiffe_id, sizeof(r->spiffe_id), "spiffe://prod/a/../b");
	assert_int_equal(attest_reg_validate(r, NULL, why, sizeof(why)), AAM_E_INVAL);
	snprintf(r->spiffe_id, sizeof(r->spiffe_id), "spiffe://prod/agent/a");
	/* TTL over 15 minutes. */
	r->token_ttl = 901;
	assert_int_equal(attest_reg_validate(r, NULL, why, sizeof(why)), AAM_E_INVAL);
	r->token_ttl = 300;
	/* Control characters in a descriptive field. */
	snprintf(r->team, sizeof(r->team), "fin\nance");
	assert_int_equal(attest_reg_validate(r, NULL, why, sizeof(why)), AAM_E_INVAL);
	snprintf(r->team, sizeof(r->team), "finance");
	/* No audience, duplicate audience. */
	r->naudiences = 0;
	assert_int_equal(attest_reg_validate(r, NULL, why, sizeof(why)), AAM_E_INVAL);
	r->naudiences = 2;
	snprintf(r->audiences[1], sizeof(r->audiences[1]), "aud");
	assert_int_equal(attest_reg_validate(r, NULL, why, sizeof(why)), AAM_E_INVAL);
	r->naudiences = 1;
	/* TPM without a selector; PCR values outside the selection. */
	r->method = ATTEST_METHOD_TPM;
	r->pcr_mask = 0x1;
	assert_int_equal(attest_reg_validate(r, NULL, why, sizeof(why)), AAM_E_INVAL);
	r->has_ek_ca = true;
	assert_int_equal(attest_reg_validate(r, NULL, why, sizeof(why)), AAM_OK);
	r->pcr_value_mask = 0x2;
	assert_int_equal(attest_reg_validate(r, NULL, why, sizeof(why)), AAM_E_INVAL);
	r->pcr_value_mask = 0;
	r->pcr_mask = 1u << 24;
	assert_int_equal(attest_reg_validate(r, NULL, why, sizeof(why)), AAM_E_INVAL);
	/* Join needs its hash and expiry. */
	r->method = ATTEST_METHOD_JOIN;
	assert_int_equal(attest_reg_validate(r, NULL, why, sizeof(why)), AAM_E_INVAL);
	free(r);
}

static void
test_join_complete_once(void **state)
{
	struct fx *f = *state;
	struct attest_reg *r = calloc(1, sizeof(*r)), *g = calloc(1, sizeof(*g));
	at_reg_init(r, "spiffe://prod/agent/joiner", ATTEST_METHOD_JOIN, "aud");
	r->has_join = true;
	memset(r->join_hash, 0x5a, 32);
	r->join_expires = 2000000000;
	assert_int_equal(attest_reg_insert(f->db, r), AAM_OK);
	assert_int_equal(attest_reg_get_by_join(f->db, r->join_hash, g), AAM_OK);
	assert_string_equal(g->spiffe_id, r->spiffe_id);
	assert_false(g->join_used);
	assert_int_equal(attest_reg_join_complete(f->db, r->id, JKT), AAM_OK);
	/* The second use loses, whatever key it brings. */
	assert_int_equal(attest_reg_join_complete(f->db, r->id, JKT), AAM_E_EXISTS);
	assert_int_equal(attest_reg_get(f->db, r->spiffe_id, g), AAM_OK);
	assert_true(g->join_used);
	assert_int_equal(g->method, ATTEST_METHOD_PKCS11);
	assert_string_equal(g->key_jkt, JKT);
	assert_int_equal(attest_reg_join_complete(f->db, r->id, "not-a-thumbprint"), AAM_E_INVAL);
	free(r);
	free(g);
}

static void
test_revoke_and_feed(void **state)
{
	struct fx *f = *state;
	struct attest_reg *r = calloc(1, sizeof(*r)), *g = calloc(1, sizeof(*g));
	at_reg_init(r, "spiffe://prod/agent/revokee", ATTEST_METHOD_PKCS11, "aud");
	memcpy(r->key_jkt, JKT, sizeof(JKT));
	assert_int_equal(attest_reg_insert(f->db, r), AAM_OK);
	assert_int_equal(attest_issued_record(f->db, r->id, "jti-expired", 100, 400), AAM_OK);
	assert_int_equal(attest_issued_record(f->db, r->id, "jti-live-1", 900, 1200), AAM_OK);
	assert_int_equal(attest_issued_record(f->db, r->id, "jti-live-2", 950, 1250), AAM_OK);
	/* The same jti twice is refused. */
	assert_int_equal(attest_issued_record(f->db, r->id, "jti-live-2", 950, 1250), AAM_E_EXISTS);

	json_t *feed = NULL;
	assert_int_equal(attest_revocations_since(f->db, 0, 100, &feed), AAM_OK);
	assert_int_equal(json_integer_value(json_object_get(feed, "sequence")), 0);
	assert_int_equal(json_array_size(json_object_get(feed, "revocations")), 0);
	json_decref(feed);

	size_t n = 0;
	assert_int_equal(attest_reg_revoke(f->db, r->spiffe_id, 1000, &n), AAM_OK);
	assert_int_equal(n, 2);
	assert_int_equal(attest_reg_revoke(f->db, r->spiffe_id, 1001, &n), AAM_E_EXISTS);
	assert_int_equal(attest_reg_revoke(f->db, "spiffe://prod/none", 1001, &n), AAM_E_NOTFOUND);
	assert_int_equal(attest_reg_get(f->db, r->spiffe_id, g), AAM_OK);
	assert_int_equal(g->revoked, 1000);

	assert_int_equal(attest_revocations_since(f->db, 0, 100, &feed), AAM_OK);
	json_t *list = json_object_get(feed, "revocations");
	assert_int_equal(json_array_size(list), 3);
	assert_int_equal(json_integer_value(json_object_get(feed, "sequence")), 3);
	json_t *e0 = json_array_get(list, 0), *e1 = json_array_get(list, 1);
	assert_string_equal(json_string_value(json_object_get(e0, "spiffe_id")), r->spiffe_id);
	assert_null(json_object_get(e0, "jti"));
	assert_string_equal(json_string_value(json_object_get(e1, "jti")), "jti-live-1");
	assert_int_equal(json_integer_value(json_object_get(e1, "exp")), 1200);
	json_decref(feed);

	/* Paging. */
	assert_int_equal(attest_revocations_since(f->db, 1, 1, &feed), AAM_OK);
	assert_int_equal(json_array_size(json_object_get(feed, "revocations")), 1);
	assert_true(json_is_true(json_object_get(feed, "more")));
	assert_int_equal(json_integer_value(json_object_get(feed, "next")), 2);
	json_decref(feed);
	assert_int_equal(attest_revocations_since(f->db, 3, 10, &feed), AAM_OK);
	assert_int_equal(json_array_size(json_object_get(feed, "revocations")), 0);
	assert_true(json_is_false(json_object_get(feed, "more")));
	json_decref(feed);

	/* One jti on its own. */
	assert_int_equal(attest_jti_revoke(f->db, "jti-expired", 1100), AAM_OK);
	assert_int_equal(attest_jti_revoke(f->db, "no-such-jti", 1100), AAM_E_NOTFOUND);
	/* Prune forgets expired issued tokens only. */
	assert_int_equal(attest_registry_prune(f->db, 1220), AAM_OK);
	assert_int_equal(attest_jti_revoke(f->db, "jti-live-1", 1230), AAM_E_NOTFOUND);
	assert_int_equal(attest_jti_revoke(f->db, "jti-live-2", 1230), AAM_OK);
	free(r);
	free(g);
}

struct lc {
	int n;
	char last[AAM_SPIFFE_ID_BUFSZ];
};

static int
list_cb(void *ctx, const struct attest_reg *r)
{
	struct lc *l = ctx;
	/* SPIFFE ID order. */
	assert_true(strcmp(l->last, r->spiffe_id) < 0);
	snprintf(l->last, sizeof(l->last), "%s", r->spiffe_id);
	l->n++;
	return AAM_OK;
}

static void
test_list_and_meta(void **state)
{
	struct fx *f = *state;
	struct attest_reg *r = calloc(1, sizeof(*r));
	const char *ids[] = {"spiffe://prod/b", "spiffe://prod/a", "spiffe://prod/c"};
	for (int i = 0; i < 3; i++) {
		at_reg_init(r, ids[i], ATTEST_METHOD_PKCS11, "aud");
		memcpy(r->key_jkt, JKT, sizeof(JKT));
		assert_int_equal(attest_reg_insert(f->db, r), AAM_OK);
	}
	struct lc l = {0};
	assert_int_equal(attest_reg_list(f->db, list_cb, &l), AAM_OK);
	assert_int_equal(l.n, 3);
	char v[32];
	assert_int_equal(attest_meta_get(f->db, "bundle_seq", v, sizeof(v)), AAM_E_NOTFOUND);
	assert_int_equal(attest_meta_set(f->db, "bundle_seq", "4"), AAM_OK);
	assert_int_equal(attest_meta_set(f->db, "bundle_seq", "5"), AAM_OK);
	assert_int_equal(attest_meta_get(f->db, "bundle_seq", v, sizeof(v)), AAM_OK);
	assert_string_equal(v, "5");
	assert_int_equal(attest_meta_get(f->db, "bundle_seq", v, 1), AAM_E_TOOBIG);
	free(r);
}

/* A corrupted row (bad JSON in a column) is an error, not garbage. */
static void
test_corrupt_row(void **state)
{
	struct fx *f = *state;
	struct attest_reg *r = calloc(1, sizeof(*r));
	at_reg_init(r, "spiffe://prod/x", ATTEST_METHOD_PKCS11, "aud");
	memcpy(r->key_jkt, JKT, sizeof(JKT));
	assert_int_equal(attest_reg_insert(f->db, r), AAM_OK);
	assert_int_equal(aam_db_exec(f->db, "UPDATE registrations SET audiences = '{bad'"), AAM_OK);
	assert_int_equal(attest_reg_get(f->db, "spiffe://prod/x", r), AAM_E_DB);
	free(r);
}

static void
test_method_names(void **state)
{
	(void)state;
	assert_int_equal(attest_method_parse("tpm"), ATTEST_METHOD_TPM);
	assert_int_equal(attest_method_parse("pkcs11"), ATTEST_METHOD_PKCS11);
	assert_int_equal(attest_method_parse("join"), ATTEST_METHOD_JOIN);
	assert_int_equal(attest_method_parse("TPM"), ATTEST_METHOD_NONE);
	assert_int_equal(attest_method_parse(NULL), ATTEST_METHOD_NONE);
	assert_string_equal(attest_method_name(ATTEST_METHOD_PKCS11), "pkcs11");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_insert_get_roundtrip, setup, teardown),
	        cmocka_unit_test(test_validate),
	        cmocka_unit_test_setup_teardown(test_join_complete_once, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_revoke_and_feed, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_list_and_meta, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_corrupt_row, setup, teardown),
	        cmocka_unit_test(test_method_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
