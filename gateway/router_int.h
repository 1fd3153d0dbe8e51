/*
 * Internals of the model router (gateway/route.h): the loaded route
 * table (routes_load.c) and the per-deployment runtime state the
 * strategies read (router.c, router_pick.c).  docs/ROUTING.md describes
 * the routes file this table comes from.
 */
#ifndef AAM_GATEWAY_ROUTER_INT_H
#define AAM_GATEWAY_ROUTER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/provider.h"

enum gw_strategy {
	GW_STRATEGY_SIMPLE_SHUFFLE = 1,
	GW_STRATEGY_LEAST_BUSY,
	GW_STRATEGY_LATENCY,
	GW_STRATEGY_USAGE,
	GW_STRATEGY_COST,
};

/* Defaults of router_settings (docs/ROUTING.md). */
#define GW_DEFAULT_NUM_RETRIES       2
#define GW_DEFAULT_RETRY_AFTER_MAX   30000 /* ms */
#define GW_DEFAULT_RETRY_BACKOFF     500   /* ms, doubled per retry */
#define GW_DEFAULT_ALLOWED_FAILS     3
#define GW_DEFAULT_COOLDOWN          30000  /* ms */
#define GW_DEFAULT_TIMEOUT           600000 /* ms */
#define GW_DEFAULT_MAX_OUTPUT_TOKENS 4096
#define GW_MAX_ROUTES                1024
#define GW_MAX_DEPLOYMENTS           64 /* per route */
#define GW_MAX_FALLBACKS             16 /* per route and kind */

/*
 * Runtime state of one deployment.  It outlives route tables: a reload
 * hands the object of every deployment that is still configured (same
 * route name, provider, model, api_base and credential) to the new table
 * (gw_routes_adopt_state), so a cooldown, the minute's rpm/tpm counts,
 * in-flight counts and latency averages survive an edit of the routes
 * file.  Each table holds a reference; calls in flight on an old table
 * keep updating the very object they started with, which the new table
 * shares, so their in-flight decrement lands where the increment did.
 * A removed deployment's object goes with the last table holding it.
 * MU guards the fields: a few loads and stores, far shorter than anything
 * else on a call's path.
 */
struct gw_dep_state {
	atomic_int refs;
	pthread_mutex_t mu;
	int64_t in_flight;
	double ewma_latency_us; /* 0 = no sample yet */
	int64_t fail_times[16]; /* ring of recent failure times (ms, monotonic) */
	unsigned nfails, fail_pos;
	int64_t cooldown_until_ms;
	int64_t minute;          /* the minute the counters below belong to */
	int64_t minute_requests; /* rpm use */
	int64_t minute_tokens;   /* tpm use */
};

struct gw_route {
	char *name;
	struct gw_deployment *deps;
	struct gw_dep_state **state; /* one per deployment, each referenced */
	char **dep_ids;              /* the deployments' optional `id` keys (NULL = none) */
	size_t ndeps;
	char **fallbacks; /* ordered route names */
	size_t nfallbacks;
	char **cw_fallbacks; /* context-window fallbacks */
	size_t ncw_fallbacks;
	int64_t max_output_tokens; /* the route's cap on output tokens (reservation worst case) */
};

struct gw_settings {
	enum gw_strategy strategy;
	int num_retries;
	int64_t retry_after_max_ms;
	int64_t retry_backoff_ms;
	int allowed_fails;
	int64_t cooldown_ms;
	int64_t timeout_ms;
};

/* An immutable route table (state aside), shared by reference count. */
struct gw_routes {
	atomic_int refs;
	struct gw_route *routes;
	size_t nroutes;
	struct gw_settings settings;
};

/*
 * Loads PATH into a new table with one reference.  ERR gets
 * "file:line:column: message" on a bad file.
 */
int gw_routes_load(const char *path, struct gw_routes **out, char *err, size_t errlen);
/* The same from memory (NAME is used in messages). */
int gw_routes_parse(const char *name, const void *data, size_t len, struct gw_routes **out,
                    char *err, size_t errlen);
void gw_routes_ref(struct gw_routes *t);
void gw_routes_unref(struct gw_routes *t);
const struct gw_route *gw_routes_find(const struct gw_routes *t, const char *name);
/*
 * Gives each deployment of the fresh table T that is also in OLD OLD's
 * runtime state object instead of its own new one.  "Also in OLD": in the
 * route of the same name, the deployment with the same `id` key when it
 * has one, else one without an `id` with the same provider, model,
 * api_base and credential (among identical ones, the first unmatched in
 * file order).  T must not be in use yet; OLD may be.  Returns how many
 * deployments kept their state.
 */
size_t gw_routes_adopt_state(struct gw_routes *t, const struct gw_routes *old);
const char *gw_strategy_name(enum gw_strategy s);

/* Parses "500ms", "30s", "5m", "1h" or a plain number of seconds into ms. */
int gw_parse_duration_ms(const char *s, int64_t *out);

/*
 * Deployment choice (router_pick.c).  Fills IDX with the index of the
 * chosen deployment of ROUTE, skipping those in EXCLUDE (a bitmap of
 * GW_MAX_DEPLOYMENTS bits), those cooling down, over their rpm/tpm in the
 * current minute, outside REGIONS, or whose max_context is below
 * INPUT_TOKENS.  Returns AAM_E_NOTFOUND when none is eligible, setting
 * *WHY to the reason that applies to every deployment not excluded
 * (GW_PICK_*).  RNG draws the random numbers (the router's seeded
 * generator).
 */
enum { GW_PICK_NONE = 0, GW_PICK_CONTEXT, GW_PICK_RATE, GW_PICK_REGION, GW_PICK_COOLDOWN };
int gw_pick(struct gw_routes *t, const struct gw_route *route, uint64_t exclude,
            const char *const *regions, size_t nregions, int64_t input_tokens,
            double (*rng)(void *), void *rng_ctx, int64_t now_ms, size_t *idx, int *why);
/* Bookkeeping around an upstream attempt on deployment I of ROUTE. */
void gw_state_begin(struct gw_routes *t, const struct gw_route *route, size_t i, int64_t now_ms);
void gw_state_end(struct gw_routes *t, const struct gw_route *route, size_t i, bool ok,
                  int64_t latency_us, int64_t tokens, int64_t now_ms);

/*
 * What a stream translator saw of the upstream's output, for the budget
 * settle of a stream that ended early (translate_stream.c).
 * INPUT_REPORTED: an Anthropic message_start (or OpenAI usage) gave the
 * input tokens.  FINAL_USAGE: the usage that closes the stream arrived
 * (Anthropic message_delta; an OpenAI chunk carrying usage, cumulative).
 * OUTPUT_BYTES: bytes of generated text, tool names and tool arguments
 * (and visible thinking) in the deltas so far; a BPE token is at least
 * one byte of text, so this bounds the delivered output tokens from
 * above.  OPAQUE_OUTPUT: the model produced output the stream does not
 * show byte for byte (Anthropic thinking blocks are summarised, redacted
 * thinking is encrypted), so OUTPUT_BYTES bounds nothing.
 */
struct gw_stream_progress {
	bool input_reported, final_usage, opaque_output;
	int64_t output_bytes;
};
void gw_xlate_progress(const struct gw_xlate *x, struct gw_stream_progress *p);

/*
 * The tokens a call is charged (router_call.c, docs/ROUTING.md
 * "Settle"): the reported usage when the upstream finished reporting it,
 * else an amount never below what is known to be spent.  U is the usage
 * seen (NULL = none), P the stream's progress (NULL for a non-stream
 * answer), OPENAI_WIRE whether the upstream spoke the OpenAI wire,
 * EST_IN the input estimate of the reservation, OUT_CAP its output
 * worst case.
 */
struct gw_charge {
	int64_t input, output, cached;
	bool estimated; /* not the upstream's final usage */
};
void gw_settle_tokens(const struct gw_usage *u, const struct gw_stream_progress *p,
                      bool openai_wire, int64_t est_in, int64_t out_cap, struct gw_charge *c);

/* Random numbers: xorshift64*, seeded from AAM_ROUTER_SEED or the clock. */
uint64_t gw_rng_next(uint64_t *s);
double gw_rng_unit(uint64_t *s); /* [0, 1) */
uint64_t gw_rng_seed(void);      /* AAM_ROUTER_SEED when set, else from the clock */

int64_t gw_now_ms(void); /* monotonic */

/* The router itself (router.c); gw_router_call is in router_call.c. */
struct gw_budget;
struct gw_vault_client;
struct gw_router {
	pthread_mutex_t reload_mu; /* one reload at a time (SIGHUP and the file watch) */
	pthread_mutex_t mu;        /* guards TABLE (the pointer, not the table) */
	struct gw_routes *table;
	struct gw_budget *budget;
	struct gw_vault_client *vault;
	pthread_mutex_t rng_mu;
	uint64_t rng;
};
/* The current table with a reference the caller drops with gw_routes_unref. */
struct gw_routes *gw_router_table(struct gw_router *r);
/* A uniform draw in [0, 1) from the router's seeded generator (CTX is the router). */
double gw_router_random(void *ctx);
struct gw_budget *gw_router_budget(struct gw_router *r);

#endif /* AAM_GATEWAY_ROUTER_INT_H */
