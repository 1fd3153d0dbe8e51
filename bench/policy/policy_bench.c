/*
 * Policy decision benchmark: decisions per second and latency percentiles
 * for sets of 10, 1,000 and 10,000 policies.
 *
 * Policy i (of N) is:
 *   identity: {workload: spiffe://prod/agent/a<i>}
 *   models:   {allow: [route<i%20>, route<(i+1)%20>]}
 *   tools:    [{resource: res<i%50>.items, actions: [read, search],
 *               deny: [export, delete]}]
 * Requests pick a workload among 1.1*N (so a tenth match no policy), a
 * kind, a route among 25 or a resource among 60, and an action among five;
 * every decision is checked against the expected answer, so the benchmark
 * cannot get faster by getting wrong.
 *
 * --emit-cedar DIR writes the same sets as Cedar policies (two permits
 * per model allow list, a permit and a forbid per tool rule) and the same
 * requests with their expected decisions, for bench/policy/cedar/bench.mjs.
 *
 * usage: policy_bench [--smoke] [--sizes 10,1000,10000] [--decisions N]
 *                     [--emit-cedar DIR] [--seed S]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aam/err.h"
#include "common/buf.h"
#include "gateway/policy.h"

#define ROUTES    20
#define ROUTES_RQ 25
#define RES       50
#define RES_RQ    60

static const char *const actions[] = {"read", "search", "export", "delete", "update"};

struct req {
	char workload[64];
	char name[32];
	int action;
	int w; /* policy index, or -1 */
	int kind;
	int route, res;
	int expect; /* 1 allow, 0 deny */
};

static uint64_t g_rng = 0x243F6A8885A308D3ull;

static uint32_t
rnd(uint32_t n)
{
	g_rng ^= g_rng >> 12;
	g_rng ^= g_rng << 25;
	g_rng ^= g_rng >> 27;
	return (uint32_t)((g_rng * 0x2545F4914F6CDD1Dull) >> 33) % n;
}

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void
build_yaml(struct aam_buf *b, int n)
{
	for (int i = 0; i < n; i++)
		aam_buf_printf(
		        b,
		        "---\napiVersion: access.envisionai.dev/v1\nkind: AgentPolicy\n"
		        "metadata: {name: p%05d}\nspec:\n"
		        "  identity: {workload: spiffe://prod/agent/a%d}\n"
		        "  models: {allow: [route%d, route%d]}\n"
		        "  tools:\n"
		        "    - {resource: res%d.items, actions: [read, search], deny: [export, "
		        "delete]}\n",
		        i, i, i % ROUTES, (i + 1) % ROUTES, i % RES);
}

static void
make_requests(struct req *r, size_t count, int n)
{
	for (size_t k = 0; k < count; k++) {
		struct req *q = &r[k];
		int w = (int)rnd((uint32_t)(n + n / 10 + 1));
		q->w = w < n ? w : -1;
		snprintf(q->workload, sizeof(q->workload), "spiffe://prod/agent/a%d", w);
		q->kind = rnd(2) ? GW_POLICY_MODEL : GW_POLICY_TOOL;
		q->action = (int)rnd(5);
		q->route = (int)rnd(ROUTES_RQ);
		q->res = (int)rnd(RES_RQ);
		if (q->kind == GW_POLICY_MODEL) {
			snprintf(q->name, sizeof(q->name), "route%d", q->route);
			q->expect = q->w >= 0 &&
			            (q->route == q->w % ROUTES || q->route == (q->w + 1) % ROUTES);
		} else {
			snprintf(q->name, sizeof(q->name), "res%d.items", q->res);
			q->expect = q->w >= 0 && q->res == q->w % RES && q->action <= 1;
		}
	}
}

static int
decide(const gw_policy_set *set, const struct req *q, struct gw_policy_decision *d)
{
	struct gw_policy_request r = {.workload = q->workload,
	                              .kind = (enum gw_policy_kind)q->kind,
	                              .model = q->name,
	                              .resource = q->name,
	                              .action = actions[q->action],
	                              .attested = true,
	                              .now = 1767607200};
	gw_policy_decide(set, &r, d);
	return d->allow;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int
emit_cedar(const char *dir, int n, const struct req *r, size_t count)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/policies-%d.cedar", dir, n);
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return -1;
	for (int i = 0; i < n; i++) {
		const char *p = "Workload::\"spiffe://prod/agent/a";
		fprintf(f,
		        "permit(principal == %s%d\", action == Action::\"invoke\", resource == "
		        "Route::\"route%d\");\n",
		        p, i, i % ROUTES);
		fprintf(f,
		        "permit(principal == %s%d\", action == Action::\"invoke\", resource == "
		        "Route::\"route%d\");\n",
		        p, i, (i + 1) % ROUTES);
		fprintf(f,
		        "permit(principal == %s%d\", action in [Action::\"read\", "
		        "Action::\"search\"], "
		        "resource == Tool::\"res%d.items\");\n",
		        p, i, i % RES);
		fprintf(f,
		        "forbid(principal == %s%d\", action in [Action::\"export\", "
		        "Action::\"delete\"], resource == Tool::\"res%d.items\");\n",
		        p, i, i % RES);
	}
	fclose(f);
	snprintf(path, sizeof(path), "%s/requests-%d.json", dir, n);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "[\n");
	for (size_t k = 0; k < count; k++) {
		const struct req *q = &r[k];
		bool model = q->kind == GW_POLICY_MODEL;
		fprintf(f, "%s{\"p\":\"%s\",\"a\":\"%s\",\"t\":\"%s\",\"r\":\"%s\",\"allow\":%s}\n",
		        k ? "," : "", q->workload, model ? "invoke" : actions[q->action],
		        model ? "Route" : "Tool", q->name, q->expect ? "true" : "false");
	}
	fprintf(f, "]\n");
	fclose(f);
	return 0;
}

static int
run_size(int n, size_t ndec, const char *cedar_dir, bool smoke)
{
	struct aam_buf b;
	aam_buf_init(&b, 512u * 1024 * 1024);
	build_yaml(&b, n);
	struct gw_policy_load_opts opts;
	memset(&opts, 0, sizeof(opts));
	opts.yaml.max_bytes = b.len + 1;
	opts.yaml.max_nodes = 64u * (size_t)n + 1000;
	opts.yaml.max_docs = (size_t)n + 1;
	gw_policy_set *set = NULL;
	struct gw_policy_diag diag;
	gw_policy_diag_init(&diag);
	double t0 = now_s();
	int rc = gw_policy_set_load_buffer("bench.yaml", b.data, b.len, &opts, &set, &diag);
	double load_s = now_s() - t0;
	if (rc != AAM_OK) {
		char line[512];
		gw_policy_diag_format(&diag, 0, line, sizeof(line));
		fprintf(stderr, "load failed: %s\n", line);
		return 1;
	}
	gw_policy_diag_uninit(&diag);
	aam_buf_uninit(&b);

	size_t nreq = 100000;
	struct req *r = calloc(nreq, sizeof(*r));
	if (r == NULL)
		return 1;
	make_requests(r, nreq, n);
	if (cedar_dir != NULL && emit_cedar(cedar_dir, n, r, 20000) != 0) {
		fprintf(stderr, "cannot write Cedar files under %s\n", cedar_dir);
		return 1;
	}

	struct gw_policy_decision d;
	size_t allows = 0;
	for (size_t k = 0; k < nreq; k++) {
		int got = decide(set, &r[k], &d);
		if (got != r[k].expect) {
			fprintf(stderr, "wrong decision for %s %s %s\n", r[k].workload, r[k].name,
			        actions[r[k].action]);
			return 1;
		}
		allows += (size_t)got;
	}

	/* Throughput: back-to-back decisions, no per-call timing. */
	size_t rounds = ndec / nreq + 1;
	t0 = now_s();
	size_t sink = 0;
	for (size_t k = 0; k < rounds; k++)
		for (size_t i = 0; i < nreq; i++)
			sink += (size_t)decide(set, &r[i], &d);
	double dt = now_s() - t0;
	double per_s = (double)(rounds * nreq) / dt;

	/* Latency: each call timed (clock overhead included, so conservative). */
	size_t nlat = smoke ? 10000 : nreq * 3;
	uint64_t *lat = malloc(nlat * sizeof(*lat));
	if (lat == NULL)
		return 1;
	for (size_t i = 0; i < nlat; i++) {
		uint64_t a = now_ns();
		sink += (size_t)decide(set, &r[i % nreq], &d);
		lat[i] = now_ns() - a;
	}
	qsort(lat, nlat, sizeof(*lat), cmp_u64);
	printf("aam    policies=%-6d decisions/s=%-10.0f p50_ns=%-5llu p99_ns=%-5llu "
	       "p999_ns=%-6llu max_ns=%-7llu load_ms=%.1f allow_rate=%.3f\n",
	       n, per_s, (unsigned long long)lat[nlat / 2],
	       (unsigned long long)lat[nlat * 99 / 100], (unsigned long long)lat[nlat * 999 / 1000],
	       (unsigned long long)lat[nlat - 1], load_s * 1000, (double)allows / (double)nreq);
	fflush(stdout);
	if (sink == 0xffffffffffffffffull)
		printf("\n");
	free(lat);
	free(r);
	gw_policy_set_unref(set);
	return 0;
}

int
main(int argc, char **argv)
{
	int sizes[8] = {10, 1000, 10000};
	int nsizes = 3;
	size_t ndec = 2000000;
	const char *cedar_dir = NULL;
	bool smoke = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--smoke") == 0) {
			smoke = true;
			sizes[0] = 10;
			sizes[1] = 200;
			nsizes = 2;
			ndec = 10000;
		} else if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc) {
			nsizes = 0;
			for (char *p = argv[++i]; *p && nsizes < 8;) {
				sizes[nsizes++] = atoi(p);
				p = strchr(p, ',');
				if (p == NULL)
					break;
				p++;
			}
		} else if (strcmp(argv[i], "--decisions") == 0 && i + 1 < argc) {
			ndec = strtoull(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--emit-cedar") == 0 && i + 1 < argc) {
			cedar_dir = argv[++i];
		} else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
			g_rng = strtoull(argv[++i], NULL, 10) | 1;
		} else {
			fprintf(stderr,
			        "usage: %s [--smoke] [--sizes 10,1000,10000] [--decisions N] "
			        "[--emit-cedar DIR] [--seed S]\n",
			        argv[0]);
			return 2;
		}
	}
	for (int i = 0; i < nsizes; i++)
		if (sizes[i] <= 0 || run_size(sizes[i], ndec, cedar_dir, smoke) != 0)
			return 1;
	return 0;
}
