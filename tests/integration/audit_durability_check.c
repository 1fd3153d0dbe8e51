/*
 * The audit log's durability and fail-closed behaviour against a real
 * aam-vault whose audit database lives on a small tmpfs mounted for the
 * test (so that "storage full" is real, even for root).
 *
 * - Every INJECT writes a credential.use record (name, version, keyed
 *   fingerprint, destination; never the value) before the upstream call.
 * - Crash: four clients append in a loop, aam-vault is killed with
 *   SIGKILL; after a restart every acknowledged seq holds exactly the
 *   record that was acknowledged, the export verifies, appends continue.
 * - Fail closed: the tmpfs is filled up.  Appends then fail (AAM_E_AUDIT
 *   or AAM_E_TIMEOUT, never a seq), and INJECT is refused with AAM_E_AUDIT
 *   before the credential is opened.  Once the filler is removed, appends
 *   resume by themselves (the vault's probe reopens the database) and the
 *   log still verifies.
 *
 * Needs root (mount) and SoftHSM2; skips otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "aam/err.h"
#include "common/audit_client.h"
#include "tests/integration/vault_harness.h"
#include "tests/lib/testutil.h"
#include "vault/proto.h"

#define ORIGIN   "durability.test.example/aam"
#define V_BEARER "s3cr3t-bearer-value-never-logged-7f1c"

static struct vh *V;
static char MNT[1100], FILLER[1200];
static bool MOUNTED;

static void
nap_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int
setup(void **state)
{
	(void)state;
	if (!aam_test_softhsm_available() || geteuid() != 0) {
		fprintf(stderr, "audit_durability: needs root and SoftHSM2, skipped\n");
		return 0;
	}
	V = calloc(1, sizeof(*V));
	if (V == NULL || vh_setup(V, NULL) != 0)
		return -1;
	snprintf(MNT, sizeof(MNT), "%s/auditfs", V->dir);
	snprintf(FILLER, sizeof(FILLER), "%s/filler", MNT);
	if (mkdir(MNT, 0700) != 0)
		return -1;
	if (mount("tmpfs", MNT, "tmpfs", 0, "size=48m,mode=0700") != 0) {
		fprintf(stderr, "audit_durability: cannot mount a tmpfs (%s), skipped\n",
		        strerror(errno));
		vh_teardown(V);
		free(V);
		V = NULL;
		return 0;
	}
	MOUNTED = true;
	char extra[3000];
	snprintf(extra, sizeof(extra),
	         "  audit:\n    db: %s/audit.db\n    checkpoint_dir: %s/cp\n    origin: " ORIGIN
	         "\n    append_timeout: 3s\n",
	         MNT, MNT);
	if (vh_write_config(V, extra) != 0 || vh_start(V) != 0)
		return -1;
	char *out = NULL;
	if (vh_aamctl(V, NULL, &out, NULL, "keys", "init", NULL) != 0)
		return -1;
	free(out);
	out = NULL;
	char *err = NULL;
	int rc = vh_aamctl(V, V_BEARER "\n", &out, &err, "secret", "put", "api-bearer", "--type",
	                   "bearer", "--bind", "http://127.0.0.1:9/", NULL);
	if (rc != 0)
		fprintf(stderr, "secret put: %s\n", err != NULL ? err : "");
	free(out);
	free(err);
	return rc == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	if (V == NULL)
		return 0;
	vh_stop(V);
	if (MOUNTED)
		umount2(MNT, MNT_DETACH);
	vh_teardown(V);
	free(V);
	V = NULL;
	return 0;
}

#define NEED_VAULT()                                                                               \
	do {                                                                                       \
		if (V == NULL)                                                                     \
			skip();                                                                    \
	} while (0)

static json_t *
event(const char *who, uint64_t i, size_t pad)
{
	char rid[64];
	snprintf(rid, sizeof(rid), "req-%s-%06" PRIu64, who, i);
	json_t *ev = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:i, s:i}}", "type", "model.request",
	                       "request_id", rid, "decision", "effect", "allow", "reason", "r",
	                       "outcome", "status", 200, "latency_us", 10);
	if (pad > 0) {
		/* Up to seven 8 KiB strings: a big record, still under 64 KiB. */
		json_t *d = json_object();
		char *s = malloc(8193);
		memset(s, 'p', 8192);
		s[8192] = '\0';
		for (size_t k = 0; k < pad && k < 7; k++) {
			char key[8];
			snprintf(key, sizeof(key), "p%zu", k);
			json_object_set_new(d, key, json_string(s));
		}
		free(s);
		json_object_set_new(ev, "detail", d);
	}
	return ev;
}

static int
inject(void)
{
	struct aam_ipc_client *c = vh_connect(V->sock_gw);
	assert_non_null(c);
	struct vh_resp r;
	int rc = vh_inject(c, "api-bearer", "", "GET", "http://127.0.0.1:9/x", NULL, NULL, 0, &r);
	if (rc == AAM_OK)
		rc = r.rc;
	vh_resp_free(&r);
	aam_ipc_client_free(c);
	return rc;
}

static void
wait_signed(void)
{
	assert_int_equal(vh_audit_wait_signed(V, 10000), AAM_OK);
}

/* Exports to DIR (outside the tmpfs) and verifies with the exported key. */
static void
export_verify(const char *name)
{
	char dir[1200], *out = NULL;
	snprintf(dir, sizeof(dir), "%s/%s", V->dir, name);
	wait_signed();
	if (vh_aamctl(V, NULL, &out, NULL, "audit", "export", "--out", dir, NULL) != 0)
		fail_msg("export failed: %s", out != NULL ? out : "");
	free(out);
	int st = aam_test_sh(&out, "'%s' --key '%s/key.pem' '%s' 2>&1",
	                     getenv("AAM_AUDIT_VERIFY_BIN"), dir, dir);
	if (st != 0)
		fail_msg("verify failed (%d): %s", st, out);
	free(out);
}

static void
test_inject_writes_credential_use(void **state)
{
	(void)state;
	NEED_VAULT();
	/* Port 9 refuses: the upstream call fails, after the record was written. */
	int rc = inject();
	assert_int_not_equal(rc, AAM_OK);
	assert_int_not_equal(rc, AAM_E_AUDIT);
	char *out = NULL;
	assert_int_equal(vh_aamctl(V, NULL, &out, NULL, "audit", "tail", "-n", "1", NULL), 0);
	assert_non_null(strstr(out, "\"type\":\"credential.use\""));
	assert_non_null(strstr(out, "\"name\":\"api-bearer\""));
	assert_non_null(strstr(out, "\"fingerprint\":\"hmac-sha256:"));
	assert_non_null(strstr(out, "\"host\":\"127.0.0.1\""));
	assert_null(strstr(out, V_BEARER));
	free(out);
	/* The value is nowhere in the audit storage. */
	assert_false(vh_tree_contains(MNT, V_BEARER, strlen(V_BEARER)));
}

struct appender {
	const char *who;
	volatile int *stop;
	uint64_t cap, n;
	uint64_t *seq, *idx; /* acknowledged: seq of append number idx */
};

static void *
append_loop(void *arg)
{
	struct appender *ap = arg;
	struct aam_ipc_client *c = vh_connect(V->sock_gw);
	if (c == NULL)
		return NULL;
	for (uint64_t i = 0; !*ap->stop && ap->n < ap->cap; i++) {
		json_t *ev = event(ap->who, i, 0);
		uint64_t seq = 0;
		int rc = aam_audit_append(c, ev, 5000, &seq);
		json_decref(ev);
		if (rc != AAM_OK)
			break;
		ap->seq[ap->n] = seq;
		ap->idx[ap->n] = i;
		ap->n++;
	}
	aam_ipc_client_free(c);
	return NULL;
}

static void
test_crash_keeps_acknowledged(void **state)
{
	(void)state;
	NEED_VAULT();
	volatile int stop = 0;
	pthread_t th[4];
	struct appender ap[4];
	static const char *const who[] = {"w", "x", "y", "z"};
	for (int t = 0; t < 4; t++) {
		ap[t] = (struct appender){.who = who[t], .stop = &stop, .cap = 200000};
		ap[t].seq = calloc(ap[t].cap, 8);
		ap[t].idx = calloc(ap[t].cap, 8);
		assert_int_equal(pthread_create(&th[t], NULL, append_loop, &ap[t]), 0);
	}
	nap_ms(1500);
	/* SIGKILL mid-stream: no shutdown path runs. */
	assert_int_equal(kill(V->pid, SIGKILL), 0);
	int st = 0;
	waitpid(V->pid, &st, 0);
	V->pid = -1;
	for (int t = 0; t < 4; t++)
		pthread_join(th[t], NULL);
	stop = 1;
	uint64_t total = 0;
	for (int t = 0; t < 4; t++)
		total += ap[t].n;
	assert_true(total > 100);
	print_message("crash: %" PRIu64 " appends acknowledged before SIGKILL\n", total);

	assert_int_equal(vh_start(V), 0);
	export_verify("crash-export");
	/* Every acknowledged seq holds exactly the record acknowledged. */
	char seg[1300];
	snprintf(seg, sizeof(seg), "%s/crash-export/records/000000000000.jsonl", V->dir);
	size_t len = 0;
	char *text = aam_test_read_file(seg, &len);
	assert_non_null(text);
	size_t nlines = 0, cap = 1024;
	char **lines = malloc(cap * sizeof(*lines));
	for (char *p = text, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		*nl = '\0';
		if (nlines == cap) {
			cap *= 2;
			lines = realloc(lines, cap * sizeof(*lines));
		}
		lines[nlines++] = p;
	}
	for (int t = 0; t < 4; t++) {
		for (uint64_t k = 0; k < ap[t].n; k++) {
			uint64_t s = ap[t].seq[k];
			if (s >= nlines)
				fail_msg("acknowledged seq %" PRIu64 " is missing (log has %zu)", s,
				         nlines);
			char want[64];
			snprintf(want, sizeof(want), "\"request_id\":\"req-%s-%06" PRIu64 "\"",
			         ap[t].who, ap[t].idx[k]);
			if (strstr(lines[s], want) == NULL)
				fail_msg("seq %" PRIu64 " is not the acknowledged record: %s", s,
				         lines[s]);
		}
		free(ap[t].seq);
		free(ap[t].idx);
	}
	free(lines);
	free(text);
	/* Appends continue after the restart. */
	struct aam_ipc_client *c = vh_connect(V->sock_gw);
	json_t *ev = event("after", 0, 0);
	uint64_t seq = 0;
	assert_int_equal(aam_audit_append(c, ev, 5000, &seq), AAM_OK);
	assert_true(seq >= total);
	json_decref(ev);
	aam_ipc_client_free(c);
}

/* Fills the tmpfs; returns the filler's size. */
static size_t
fill(void)
{
	int fd = open(FILLER, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	static char block[65536];
	size_t total = 0;
	for (;;) {
		ssize_t w = write(fd, block, sizeof(block));
		if (w <= 0)
			break;
		total += (size_t)w;
	}
	/* Small writes take the last partial block too. */
	while (write(fd, block, 512) > 0)
		total += 512;
	close(fd);
	return total;
}

static void
test_fail_closed_and_recovery(void **state)
{
	(void)state;
	NEED_VAULT();
	struct aam_ipc_client *c = vh_connect(V->sock_gw);
	json_t *ev = event("fc", 0, 0);
	assert_int_equal(aam_audit_append(c, ev, 5000, NULL), AAM_OK);
	json_decref(ev);
	size_t filled = fill();
	assert_true(filled > 0);
	/* Big records until the log cannot grow: the first failure marks it failed. */
	int rc = AAM_OK;
	uint64_t i;
	for (i = 1; i < 2000 && rc == AAM_OK; i++) {
		ev = event("fc", i, 7);
		rc = aam_audit_append(c, ev, 5000, NULL);
		json_decref(ev);
	}
	if (rc != AAM_E_AUDIT && rc != AAM_E_TIMEOUT)
		fail_msg("appends on a full disk: %" PRIu64 " succeeded, then %d", i, rc);
	print_message("fail closed: append %" PRIu64 " failed with %s\n", i - 1, aam_err_code(rc));
	/* Now every append fails at once, and no credential is used. */
	ev = event("fc", 9999, 0);
	assert_int_equal(aam_audit_append(c, ev, 5000, NULL), AAM_E_AUDIT);
	json_decref(ev);
	assert_int_equal(inject(), AAM_E_AUDIT);
	char *log = aam_test_read_file(V->log, NULL);
	assert_non_null(log);
	assert_non_null(strstr(log, "event=audit.failed"));
	free(log);
	/* Storage returns: the log recovers by itself within a few probes. */
	assert_int_equal(unlink(FILLER), 0);
	bool back = false;
	for (int k = 0; k < 100 && !back; k++) {
		ev = event("fc", 10000 + (uint64_t)k, 0);
		back = aam_audit_append(c, ev, 5000, NULL) == AAM_OK;
		json_decref(ev);
		if (!back)
			nap_ms(100);
	}
	assert_true(back);
	rc = inject();
	assert_int_not_equal(rc, AAM_E_AUDIT);
	aam_ipc_client_free(c);
	log = aam_test_read_file(V->log, NULL);
	assert_non_null(strstr(log, "event=audit.recovered"));
	free(log);
	export_verify("recovered-export");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_inject_writes_credential_use),
	        cmocka_unit_test(test_crash_keeps_acknowledged),
	        cmocka_unit_test(test_fail_closed_and_recovery),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
