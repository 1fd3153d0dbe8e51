/*
 * The model router (gateway/route.h): the route table behind an atomic
 * swap, the budget ledger and the vault client, and gw_router_call, which
 * runs one model request with retries and fallbacks (router_call.c).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"
#include "common/log.h"
#include "gateway/budget.h"
#include "gateway/route.h"
#include "gateway/router_int.h"
#include "gateway/vault_client.h"

int
gw_router_new(const char *routes_path, const char *budget_db, const char *vault_socket,
              struct gw_router **out, char *err, size_t errlen)
{
	if (routes_path == NULL || budget_db == NULL || vault_socket == NULL || out == NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen,
			         "router: routes file, database and vault socket are required");
		return AAM_E_INVAL;
	}
	*out = NULL;
	struct gw_router *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return AAM_E_NOMEM;
	pthread_mutex_init(&r->reload_mu, NULL);
	pthread_mutex_init(&r->mu, NULL);
	pthread_mutex_init(&r->rng_mu, NULL);
	r->rng = gw_rng_seed();
	int rc = gw_routes_load(routes_path, &r->table, err, errlen);
	if (rc == AAM_OK) {
		rc = gw_budget_open(budget_db, &r->budget);
		if (rc != AAM_OK && err != NULL && errlen > 0)
			snprintf(err, errlen, "%s: cannot open the budget database: %s", budget_db,
			         aam_strerror(rc));
	}
	if (rc == AAM_OK)
		rc = gw_vault_client_new(vault_socket, &r->vault);
	if (rc != AAM_OK) {
		gw_router_free(r);
		return rc;
	}
	aam_log(AAM_LOG_INFO, "gateway.routes_loaded", AAM_F_STR("path", routes_path),
	        AAM_F_UINT("routes", r->table->nroutes),
	        AAM_F_STR("strategy", gw_strategy_name(r->table->settings.strategy)));
	*out = r;
	return AAM_OK;
}

int
gw_router_reload(struct gw_router *r, const char *routes_path, char *err, size_t errlen)
{
	if (r == NULL || routes_path == NULL)
		return AAM_E_INVAL;
	struct gw_routes *t = NULL;
	int rc = gw_routes_load(routes_path, &t, err, errlen);
	if (rc != AAM_OK)
		return rc;
	/*
	 * Reloads come from SIGHUP and from the file watch: one at a time, so
	 * the table whose state is adopted is the one being replaced (two
	 * racing reloads could otherwise each adopt from the same old table
	 * and the later swap would drop what the earlier one carried over).
	 */
	pthread_mutex_lock(&r->reload_mu);
	struct gw_routes *cur = gw_router_table(r);
	size_t kept = gw_routes_adopt_state(t, cur);
	gw_routes_unref(cur);
	pthread_mutex_lock(&r->mu);
	struct gw_routes *old = r->table;
	r->table = t;
	pthread_mutex_unlock(&r->mu);
	pthread_mutex_unlock(&r->reload_mu);
	/* Calls in flight hold their own reference to the old table. */
	gw_routes_unref(old);
	aam_log(AAM_LOG_INFO, "gateway.routes_reloaded", AAM_F_STR("path", routes_path),
	        AAM_F_UINT("routes", t->nroutes), AAM_F_UINT("deployments_kept", kept));
	return AAM_OK;
}

void
gw_router_free(struct gw_router *r)
{
	if (r == NULL)
		return;
	gw_routes_unref(r->table);
	gw_budget_close(r->budget);
	gw_vault_client_free(r->vault);
	pthread_mutex_destroy(&r->reload_mu);
	pthread_mutex_destroy(&r->mu);
	pthread_mutex_destroy(&r->rng_mu);
	free(r);
}

struct gw_routes *
gw_router_table(struct gw_router *r)
{
	pthread_mutex_lock(&r->mu);
	struct gw_routes *t = r->table;
	gw_routes_ref(t);
	pthread_mutex_unlock(&r->mu);
	return t;
}

double
gw_router_random(void *ctx)
{
	struct gw_router *r = ctx;
	pthread_mutex_lock(&r->rng_mu);
	double x = gw_rng_unit(&r->rng);
	pthread_mutex_unlock(&r->rng_mu);
	return x;
}

/*
 * Route names are copied out of a referenced table: the table may be
 * swapped and freed by a reload the moment the reference is dropped.
 */
int
gw_router_route_names(struct gw_router *r, char ***names, size_t *n)
{
	if (names != NULL)
		*names = NULL;
	if (n != NULL)
		*n = 0;
	if (r == NULL || names == NULL || n == NULL)
		return AAM_E_INVAL;
	struct gw_routes *t = gw_router_table(r);
	size_t bytes = (t->nroutes + 1) * sizeof(char *);
	for (size_t i = 0; i < t->nroutes; i++)
		bytes += strlen(t->routes[i].name) + 1;
	char **v = malloc(bytes);
	if (v == NULL) {
		gw_routes_unref(t);
		return AAM_E_NOMEM;
	}
	char *p = (char *)(v + t->nroutes + 1);
	for (size_t i = 0; i < t->nroutes; i++) {
		size_t len = strlen(t->routes[i].name) + 1;
		memcpy(p, t->routes[i].name, len);
		v[i] = p;
		p += len;
	}
	v[t->nroutes] = NULL;
	*n = t->nroutes;
	*names = v;
	gw_routes_unref(t);
	return AAM_OK;
}

void
gw_router_route_names_free(char **names)
{
	free(names);
}

bool
gw_router_has_route(struct gw_router *r, const char *name)
{
	if (r == NULL || name == NULL)
		return false;
	struct gw_routes *t = gw_router_table(r);
	bool found = gw_routes_find(t, name) != NULL;
	gw_routes_unref(t);
	return found;
}

size_t
gw_router_route_count(struct gw_router *r)
{
	if (r == NULL)
		return 0;
	struct gw_routes *t = gw_router_table(r);
	size_t n = t->nroutes;
	gw_routes_unref(t);
	return n;
}

bool
gw_router_vault_ok(struct gw_router *r)
{
	return r != NULL && gw_vault_client_ping(r->vault);
}

int
gw_budget_status(struct gw_router *r, const char *scope, const char *key, double *spent_today,
                 double *spent_month)
{
	if (r == NULL)
		return AAM_E_INVAL;
	return gw_budget_spent(r->budget, scope, key, spent_today, spent_month);
}

struct gw_budget *
gw_router_budget(struct gw_router *r)
{
	return r != NULL ? r->budget : NULL;
}
