/*
 * A libFuzzer-style entry for the provider stream translators, and a
 * replay of its corpus (fuzz/corpus/provider_xlate/) as a unit test.
 *
 * Every input goes through gw_xlate_feed/finish for every upstream wire
 * and client API, fed whole and in small pieces: the outputs must be
 * identical whatever the split, the result one of the documented codes,
 * and the output valid SSE whose data are JSON.  Seeds named
 * "ok-<wire>-*" are well-formed streams of that wire and must finish
 * cleanly for both client APIs.  The same bytes also go through the
 * non-stream response translation and the error-message extractor.
 *
 * Usage: provider_fuzzcorpus_check [corpus-dir]
 * (default: AAM_PROVIDER_CORPUS, else the folder next to this source).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "gateway/provider.h"
#include "gateway/provider_int.h"
#include "gateway/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *const providers[] = {"openai", "anthropic", "bedrock"};
static const enum gw_api apis[] = {GW_API_OPENAI_CHAT, GW_API_ANTHROPIC_MESSAGES};

static int
run(char *provider, enum gw_api api, bool wants, const uint8_t *p, size_t n, size_t step,
    struct aam_buf *out)
{
	struct gw_deployment d = {.id = "f#0",
	                          .provider = provider,
	                          .model = "m",
	                          .api_base = "https://h",
	                          .region = "us-east-1"};
	struct gw_xlate *x = NULL;
	if (gw_xlate_new(&d, api, wants, &x) != AAM_OK)
		abort();
	gw_xlate_set_created(x, 1);
	aam_buf_init(out, 0);
	int rc = AAM_OK;
	for (size_t i = 0; i < n && rc == AAM_OK; i += step)
		rc = gw_xlate_feed(x, p + i, n - i < step ? n - i : step, out);
	int frc = gw_xlate_finish(x, out);
	/* After a feed error, finish reports that error (or an upstream error). */
	if (rc != AAM_OK && frc == AAM_OK)
		abort();
	gw_xlate_free(x);
	return frc;
}

static int
check_data(void *ctx, const struct gw_sse_event *ev)
{
	(void)ctx;
	if (strcmp(ev->data, "[DONE]") == 0)
		return AAM_OK;
	json_t *j = json_loadb(ev->data, ev->data_len, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return AAM_E_PARSE;
	}
	json_decref(j);
	return AAM_OK;
}

/* Client output must be complete SSE with JSON data. */
static bool
valid_output(const struct aam_buf *out)
{
	struct gw_sse p;
	gw_sse_init(&p, 0, 0, false, check_data, NULL);
	int rc = gw_sse_feed(&p, out->data, out->len);
	if (rc == AAM_OK)
		rc = gw_sse_finish(&p);
	gw_sse_uninit(&p);
	return rc == AAM_OK;
}

/* What the last finish calls returned, for the corpus test's checks. */
static int last_rc[3][2][2];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (size_t pi = 0; pi < 3; pi++) {
		for (size_t ai = 0; ai < 2; ai++) {
			for (int w = 0; w < 2; w++) {
				struct aam_buf a, b;
				int ra = run(providers[pi], apis[ai], w, data, size,
				             size ? size : 1, &a);
				int rb = run(providers[pi], apis[ai], w, data, size, 7, &b);
				if (ra != rb || a.len != b.len ||
				    (a.len && memcmp(a.data, b.data, a.len) != 0))
					abort(); /* the split changed the result */
				if (ra != AAM_OK && ra != AAM_E_PARSE && ra != AAM_E_PROTO &&
				    ra != AAM_E_TOOBIG)
					abort();
				/* Translated and re-framed output is always well-formed; a
				 * same-API SSE passthrough forwards the upstream's bytes as
				 * they are, so it is only checked for clean streams. */
				bool passthrough = (apis[ai] == GW_API_OPENAI_CHAT) == (pi == 0);
				if ((!passthrough || pi == 2 || ra == AAM_OK) && !valid_output(&a))
					abort();
				last_rc[pi][ai][w] = ra;
				aam_buf_uninit(&a);
				aam_buf_uninit(&b);
			}
			struct gw_deployment d = {.id = "f#0",
			                          .provider = providers[pi],
			                          .model = "m",
			                          .api_base = "https://h"};
			struct aam_buf out;
			struct gw_usage u;
			aam_buf_init(&out, 0);
			(void)gw_provider_response(&d, apis[ai], data, size, &out, &u);
			aam_buf_uninit(&out);
		}
	}
	char msg[128];
	gw_provider_error_message(500, data, size, msg, sizeof(msg));
	if (strlen(msg) >= sizeof(msg))
		abort();
	return 0;
}

#ifndef GW_PROVIDER_FUZZ_ENTRY_ONLY
/* Defining GW_PROVIDER_FUZZ_ENTRY_ONLY leaves only the entry above, for
 * a libFuzzer build (aam_fuzz) of this same file. */

static char corpus_dir[4096];

static uint8_t *
slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	struct aam_buf b;
	aam_buf_init(&b, 0);
	uint8_t tmp[65536];
	size_t k;
	while ((k = fread(tmp, 1, sizeof(tmp), f)) > 0)
		assert_int_equal(aam_buf_append(&b, tmp, k), AAM_OK);
	fclose(f);
	*n = b.len;
	uint8_t *p = b.len ? aam_buf_steal(&b, NULL) : malloc(1);
	aam_buf_uninit(&b);
	return p;
}

static void
test_replay_corpus(void **state)
{
	(void)state;
	DIR *dir = opendir(corpus_dir);
	if (!dir)
		fail_msg("cannot open corpus %s", corpus_dir);
	int files = 0, ok_files = 0;
	struct dirent *de;
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char path[8192];
		snprintf(path, sizeof(path), "%s/%s", corpus_dir, de->d_name);
		size_t n;
		uint8_t *p = slurp(path, &n);
		LLVMFuzzerTestOneInput(p, n);
		files++;
		int wire = -1;
		if (strncmp(de->d_name, "ok-openai-", 10) == 0)
			wire = 0;
		else if (strncmp(de->d_name, "ok-anthropic-", 13) == 0)
			wire = 1;
		else if (strncmp(de->d_name, "ok-bedrock-", 11) == 0)
			wire = 2;
		if (wire >= 0) {
			ok_files++;
			for (int ai = 0; ai < 2; ai++)
				for (int w = 0; w < 2; w++)
					if (last_rc[wire][ai][w] != AAM_OK)
						fail_msg("%s: api %d wants %d: rc %d", de->d_name,
						         ai, w, last_rc[wire][ai][w]);
		} else if (strncmp(de->d_name, "bad-", 4) == 0 && n > 0) {
			/* A hostile seed never ends cleanly on its own wire's... any
			 * wire: at least one combination must report it. */
			bool reported = false;
			for (int pi = 0; pi < 3; pi++)
				reported = reported || last_rc[pi][0][0] != AAM_OK;
			if (!reported)
				fail_msg("%s: accepted everywhere", de->d_name);
		}
		/* Small seeds also go through one byte at a time. */
		if (n <= 4096) {
			for (int pi = 0; pi < 3; pi++) {
				struct aam_buf a, b;
				int ra = run(providers[pi], GW_API_OPENAI_CHAT, false, p, n,
				             n ? n : 1, &a);
				int rb = run(providers[pi], GW_API_OPENAI_CHAT, false, p, n, 1, &b);
				assert_int_equal(ra, rb);
				assert_int_equal(a.len, b.len);
				if (a.len)
					assert_memory_equal(a.data, b.data, a.len);
				aam_buf_uninit(&a);
				aam_buf_uninit(&b);
			}
		}
		free(p);
	}
	closedir(dir);
	assert_true(files >= 10);
	assert_true(ok_files >= 4);
}

static void
test_synthetic_huge_line(void **state)
{
	(void)state;
	/* Larger than the SSE line limit: refused with AAM_E_TOOBIG, output
	 * still well-formed. */
	size_t n = GW_SSE_MAX_LINE + 4096;
	uint8_t *p = malloc(n);
	assert_non_null(p);
	memset(p, 'z', n);
	memcpy(p, "data: ", 6);
	for (size_t ai = 0; ai < 2; ai++) {
		struct aam_buf out;
		assert_int_equal(run("anthropic", apis[ai], true, p, n, 65536, &out), AAM_E_TOOBIG);
		assert_true(valid_output(&out));
		aam_buf_uninit(&out);
	}
	free(p);
}

int
main(int argc, char **argv)
{
	const char *env = getenv("AAM_PROVIDER_CORPUS");
	if (argc > 1)
		snprintf(corpus_dir, sizeof(corpus_dir), "%s", argv[1]);
	else if (env)
		snprintf(corpus_dir, sizeof(corpus_dir), "%s", env);
	else {
		/* tests/unit/gateway/<this file> -> <root>/fuzz/corpus/provider_xlate */
		snprintf(corpus_dir, sizeof(corpus_dir), "%s", __FILE__);
		char *s = strstr(corpus_dir, "tests/unit/gateway/");
		if (!s)
			return 2;
		snprintf(s, sizeof(corpus_dir) - (size_t)(s - corpus_dir),
		         "fuzz/corpus/provider_xlate");
	}
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_replay_corpus),
	        cmocka_unit_test(test_synthetic_huge_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif /* GW_PROVIDER_FUZZ_ENTRY_ONLY */
