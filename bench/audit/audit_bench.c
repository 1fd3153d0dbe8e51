/*
 * bench/audit: durable audit appends per second with group commit against
 * one transaction per record, in one run, on the same disk and token; and
 * the checkpoint signatures per second the log makes under that load
 * (the schedule caps them: every second or every 1,000 records).
 *
 *   audit_bench [DIR] [SECONDS] [THREADS]
 *
 * DIR (default: a new folder under $TMPDIR) holds the databases; put it
 * on the disk you want to measure (tmpfs makes fsync free).  Needs
 * SoftHSM2 (the token signs checkpoints and hashes sensitive values).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "aam/err.h"
#include "tests/lib/softhsm.h"
#include "tests/lib/testutil.h"
#include "vault/audit.h"
#include "vault/store.h"

struct run {
	struct vault_audit *a;
	atomic_int stop;
	atomic_uint_fast64_t done, failed;
};

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
worker(void *arg)
{
	struct run *r = arg;
	json_t *ev = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:{s:s, s:s}, s:{s:i, s:i},"
	                       " s:{s:s, s:s}}",
	                       "type", "tool.call", "request_id", "req-bench", "identity",
	                       "spiffe_id", "spiffe://prod/agent/finance-analyst", "owner",
	                       "finance@example.com", "team", "finance", "decision", "effect",
	                       "allow", "reason", "finance-analyst-readonly/tools[0]", "outcome",
	                       "status", 200, "latency_us", 1234, "action", "operation", "read",
	                       "resource", "salesforce.accounts");
	char why[256];
	while (!atomic_load(&r->stop)) {
		uint64_t seq;
		if (vault_audit_append(r->a, ev, &seq, why, sizeof(why)) == AAM_OK)
			atomic_fetch_add(&r->done, 1);
		else
			atomic_fetch_add(&r->failed, 1);
	}
	json_decref(ev);
	return NULL;
}

static int
count_cp(void *ctx, uint64_t size, const char *note, size_t len)
{
	(void)size;
	(void)note;
	(void)len;
	(*(uint64_t *)ctx)++;
	return AAM_OK;
}

/* One measurement: THREADS appenders for SECONDS; prints one line. */
static int
measure(struct vault_store *st, const char *dir, const char *name, unsigned max_batch,
        double seconds, int threads)
{
	char db[1024], cpd[1024], err[256];
	snprintf(db, sizeof(db), "%s/%s.db", dir, name);
	snprintf(cpd, sizeof(cpd), "%s/%s-cp", dir, name);
	struct vault_audit_config cfg = {.db_path = db,
	                                 .checkpoint_dir = cpd,
	                                 .origin = "bench.example/aam",
	                                 .append_timeout_ms = 30000,
	                                 .max_batch = max_batch};
	struct run r = {0};
	if (vault_audit_open(&cfg, st, &r.a, err, sizeof(err)) != AAM_OK) {
		fprintf(stderr, "audit_bench: %s\n", err);
		return 1;
	}
	uint64_t size0 = vault_audit_size(r.a);
	pthread_t *th = calloc((size_t)threads, sizeof(*th));
	double t0 = now_s();
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, worker, &r);
	struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
	nanosleep(&ts, NULL);
	atomic_store(&r.stop, 1);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	double dt = now_s() - t0;
	free(th);
	uint64_t ncp = 0;
	vault_audit_checkpoints(r.a, size0 + 1, INT64_MAX, count_cp, &ncp);
	uint64_t done = atomic_load(&r.done);
	printf("%-14s threads=%d seconds=%.1f appends=%" PRIu64 " appends/s=%.0f failed=%" PRIu64
	       " checkpoints=%" PRIu64 " checkpoints/s=%.2f\n",
	       name, threads, dt, done, (double)done / dt, (uint64_t)atomic_load(&r.failed), ncp,
	       (double)ncp / dt);
	fflush(stdout);
	vault_audit_close(r.a);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *dir = argc > 1 && argv[1][0] != '\0' ? argv[1] : NULL;
	double seconds = argc > 2 ? atof(argv[2]) : 5.0;
	int threads = argc > 3 ? atoi(argv[3]) : 32;
	if (seconds <= 0 || threads <= 0) {
		fprintf(stderr, "usage: audit_bench [DIR] [SECONDS] [THREADS]\n");
		return 2;
	}
	char *tmp = NULL;
	if (dir == NULL) {
		tmp = aam_test_mkdtemp("aam-audit-bench");
		dir = tmp;
	}
	struct aam_test_softhsm hsm;
	if (aam_test_softhsm_start(&hsm, "aam-audit-bench") != AAM_OK) {
		fprintf(stderr, "audit_bench: SoftHSM2 is needed\n");
		return 1;
	}
	char vdb[1024], err[256];
	snprintf(vdb, sizeof(vdb), "%s/vault.db", dir);
	struct vault_store_config sc = {.module = hsm.module_path,
	                                .token_uri = hsm.token_uri,
	                                .pin_file = hsm.user_pin_file,
	                                .db_path = vdb,
	                                .pool_size = 8};
	struct vault_store *st = NULL;
	if (vault_store_open(&sc, &st, err, sizeof(err)) != AAM_OK ||
	    vault_keys_init(st) != AAM_OK) {
		fprintf(stderr, "audit_bench: %s\n", err);
		return 1;
	}
	int rc = measure(st, dir, "group-commit", 0, seconds, threads);
	if (rc == 0)
		rc = measure(st, dir, "one-tx-per-rec", 1, seconds, threads);
	vault_store_close(st);
	aam_test_softhsm_stop(&hsm);
	if (tmp != NULL) {
		aam_test_rmtree(tmp);
		free(tmp);
	}
	return rc;
}
