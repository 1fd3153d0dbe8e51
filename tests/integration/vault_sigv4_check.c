/*
 * SigV4 with the secret inside a SoftHSM2 token reproduces AWS's published
 * example signature exactly: the "AWS4" + secret key lives on the token as
 * a non-extractable CKK_GENERIC_SECRET, the date key is derived there by
 * C_Sign(CKM_SHA256_HMAC), and the vault never holds the secret.
 *
 * The example is AWS's "GET https://iam.amazonaws.com/?Action=ListUsers&
 * Version=2010-05-08" with access key AKIDEXAMPLE, x-amz-date
 * 20150830T123600Z, region us-east-1, service iam.
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
#include "tests/lib/softhsm.h"
#include "tests/lib/testutil.h"
#include "vault/sigv4.h"
#include "vault/store.h"

static const char SECRET[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
static const char EXPECTED[] = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

struct fixture {
	struct aam_test_softhsm hsm;
	char *dir;
	struct vault_store *st;
};

static int
setup(void **state)
{
	if (!aam_test_softhsm_available())
		return 0;
	struct fixture *f = calloc(1, sizeof(*f));
	if (f == NULL || aam_test_softhsm_start(&f->hsm, "aam-sigv4") != AAM_OK)
		return -1;
	f->dir = aam_test_mkdtemp("aam-sigv4");
	char db[1200], err[256];
	snprintf(db, sizeof(db), "%s/vault.db", f->dir);
	struct vault_store_config cfg = {.module = f->hsm.module_path,
	                                 .token_uri = f->hsm.token_uri,
	                                 .pin_file = f->hsm.user_pin_file,
	                                 .db_path = db};
	if (vault_store_open(&cfg, &f->st, err, sizeof(err)) != AAM_OK) {
		fprintf(stderr, "store: %s\n", err);
		return -1;
	}
	if (vault_keys_init(f->st) != AAM_OK)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	if (f == NULL)
		return 0;
	vault_store_close(f->st);
	aam_test_rmtree(f->dir);
	free(f->dir);
	aam_test_softhsm_stop(&f->hsm);
	free(f);
	return 0;
}

static void
put_aws(struct vault_store *st, const char *name, const char *value)
{
	struct vault_secret_meta *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	snprintf(m->name, sizeof(m->name), "%s", name);
	m->type = VAULT_SECRET_AWS_SIGV4;
	m->nbindings = 1;
	strcpy(m->bindings[0], "https://iam.amazonaws.com/");
	strcpy(m->aws_access_key_id, "AKIDEXAMPLE");
	strcpy(m->aws_region, "us-east-1");
	strcpy(m->aws_service, "iam");
	assert_int_equal(vault_secret_put(st, m, (const uint8_t *)value, strlen(value)), AAM_OK);
	free(m);
}

static void
sign_example(struct vault_store *st, const char *name, struct vault_sigv4_result *r)
{
	struct vault_cred *c = NULL;
	assert_int_equal(vault_cred_open(st, name, &c), AAM_OK);
	/* The HMAC-type secret is a token key: no plaintext in this process. */
	assert_null(c->plain);
	assert_int_not_equal(c->hmac_key, CK_INVALID_HANDLE);
	struct vault_url *u = malloc(sizeof(*u));
	char why[128];
	assert_int_equal(
	        vault_url_parse("https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08", u,
	                        why, sizeof(why)),
	        AAM_OK);
	const char *names[] = {"Content-Type"};
	const char *values[] = {"application/x-www-form-urlencoded; charset=utf-8"};
	struct vault_sigv4_params p = {
	        .method = "GET",
	        .hnames = names,
	        .hvalues = values,
	        .nheaders = 1,
	        .now = 1440938160, /* the example's clock: 2015-08-30T12:36:00Z */
	};
	assert_int_equal(vault_sigv4_sign_cred(st, c, &p, u, r), AAM_OK);
	free(u);
	vault_cred_free(c);
}

static void
test_aws_example_in_token(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	struct fixture *f = *state;
	put_aws(f->st, "aws-example", SECRET);
	struct vault_sigv4_result *r = malloc(sizeof(*r));
	sign_example(f->st, "aws-example", r);
	assert_string_equal(r->amz_date, "20150830T123600Z");
	assert_string_equal(r->signature, EXPECTED);
	assert_string_equal(
	        r->authorization,
	        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/"
	        "aws4_request, SignedHeaders=content-type;host;x-amz-date, "
	        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
	free(r);
}

static void
test_other_secret_other_signature(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	struct fixture *f = *state;
	/* One character off: the token key differs, so must the signature. */
	put_aws(f->st, "aws-other", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ");
	struct vault_sigv4_result *r = malloc(sizeof(*r));
	sign_example(f->st, "aws-other", r);
	assert_string_not_equal(r->signature, EXPECTED);
	/* After rotating to the right value, the example signature comes back. */
	assert_int_equal(
	        vault_secret_rotate(f->st, "aws-other", (const uint8_t *)SECRET, strlen(SECRET)),
	        AAM_OK);
	sign_example(f->st, "aws-other", r);
	assert_string_equal(r->signature, EXPECTED);
	free(r);
}

static void
test_non_aws_credential_refused(void **state)
{
	AAM_TEST_SOFTHSM_REQUIRE();
	struct fixture *f = *state;
	struct vault_secret_meta *m = calloc(1, sizeof(*m));
	strcpy(m->name, "not-aws");
	m->type = VAULT_SECRET_BEARER;
	m->nbindings = 1;
	strcpy(m->bindings[0], "https://iam.amazonaws.com/");
	assert_int_equal(vault_secret_put(f->st, m, (const uint8_t *)"tok", 3), AAM_OK);
	free(m);
	struct vault_cred *c = NULL;
	assert_int_equal(vault_cred_open(f->st, "not-aws", &c), AAM_OK);
	struct vault_url *u = malloc(sizeof(*u));
	char why[64];
	assert_int_equal(vault_url_parse("https://iam.amazonaws.com/", u, why, sizeof(why)),
	                 AAM_OK);
	struct vault_sigv4_params p = {.method = "GET", .now = 1440938160};
	struct vault_sigv4_result *r = malloc(sizeof(*r));
	assert_int_equal(vault_sigv4_sign_cred(f->st, c, &p, u, r), AAM_E_INVAL);
	free(r);
	free(u);
	vault_cred_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_aws_example_in_token),
	        cmocka_unit_test(test_other_secret_other_signature),
	        cmocka_unit_test(test_non_aws_credential_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
