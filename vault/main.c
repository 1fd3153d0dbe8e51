/*
 * aam-vault: the only AAM process that loads a PKCS#11 module.
 *
 *   aam-vault [-c FILE]
 *
 * Runs in the foreground and logs on stderr.  It serves one unix socket
 * per peer role (gateway, attest, admin), each with its own mode and
 * owner; SIGHUP reloads the permission table from the configuration;
 * SIGTERM and SIGINT stop it cleanly (transfers in flight are aborted,
 * every connection is closed, the sockets are removed).
 *
 * Before anything else the process makes itself non-dumpable and sets
 * its core size to zero, so no secret it holds can land in a core file or
 * be read through ptrace by a same-uid process.
 */
#include "vault/audit.h"
#include "vault/inject.h"
#include "vault/perm.h"
#include "vault/service.h"
#include "vault/store.h"
#include "aam/err.h"
#include "common/cli.h"
#include "common/config.h"
#include "common/ipc.h"
#include "common/log.h"
#include "common/secret.h"

#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

static const char USAGE[] = "\n"
                            "\n"
                            "Serves the vault's IPC sockets until SIGTERM; SIGHUP reloads the\n"
                            "permission table.  Configuration: the 'vault' section of FILE.\n";

struct sock {
	enum vault_role role;
	const char *path;
	const struct aam_config_vault_peer *access;
	struct vault_service_role ctx;
	struct aam_ipc_server *srv;
	pthread_t thread;
	bool running;
};

static void
harden(void)
{
	/* Both before any secret exists: no core dumps, no ptrace by same-uid peers. */
	struct rlimit rl = {0, 0};
	if (setrlimit(RLIMIT_CORE, &rl) != 0)
		aam_fatal("vault.harden", "setrlimit(RLIMIT_CORE) failed");
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		aam_fatal("vault.harden", "prctl(PR_SET_DUMPABLE) failed");
}

/*
 * jansson parses the OAuth token endpoint's answers, so its heap may hold
 * access tokens: every block it frees is wiped first.
 */
static void *
json_alloc(size_t n)
{
	size_t *p = malloc(sizeof(size_t) + n);
	if (p == NULL)
		return NULL;
	p[0] = n;
	return p + 1;
}

static void
json_release(void *q)
{
	if (q == NULL)
		return;
	size_t *p = (size_t *)q - 1;
	aam_wipe(q, p[0]);
	free(p);
}

static mode_t
parse_mode(const char *s, mode_t dflt)
{
	if (s == NULL)
		return dflt;
	return (mode_t)strtoul(s, NULL, 8);
}

/* Creates DIR (one level) with MODE when missing. */
static void
ensure_dir(const char *path, mode_t mode)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return;
	*slash = '\0';
	if (mkdir(dir, mode) != 0 && errno != EEXIST)
		aam_log(AAM_LOG_WARN, "vault.mkdir_failed", AAM_F_STR("path", dir),
		        AAM_F_INT("errno", errno));
}

static int
chown_socket(const char *path, const struct aam_config_vault_peer *a, char *err, size_t errlen)
{
	if (a->owner == NULL && a->group == NULL)
		return AAM_OK;
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	if (a->owner != NULL) {
		struct passwd *pw = getpwnam(a->owner);
		char *end;
		unsigned long v = strtoul(a->owner, &end, 10);
		if (pw != NULL)
			uid = pw->pw_uid;
		else if (*end == '\0' && end != a->owner)
			uid = (uid_t)v;
		else {
			snprintf(err, errlen, "%s: no such user '%s'", path, a->owner);
			return AAM_E_CONFIG;
		}
	}
	if (a->group != NULL) {
		struct group *gr = getgrnam(a->group);
		char *end;
		unsigned long v = strtoul(a->group, &end, 10);
		if (gr != NULL)
			gid = gr->gr_gid;
		else if (*end == '\0' && end != a->group)
			gid = (gid_t)v;
		else {
			snprintf(err, errlen, "%s: no such group '%s'", path, a->group);
			return AAM_E_CONFIG;
		}
	}
	if (chown(path, uid, gid) != 0) {
		snprintf(err, errlen, "%s: chown failed: %s", path, strerror(errno));
		return AAM_E_PERM;
	}
	return AAM_OK;
}

static void *
serve(void *arg)
{
	struct sock *s = arg;
	int rc = aam_ipc_server_run(s->srv);
	if (rc != AAM_OK)
		aam_log(AAM_LOG_ERROR, "vault.server_failed",
		        AAM_F_STR("role", vault_role_name(s->role)), AAM_F_ERR(rc));
	return NULL;
}

/* Re-reads FILE and installs its permission table; the old one stays on error. */
static void
reload(const char *file, struct vault_service *svc)
{
	struct aam_config cfg;
	char err[512];
	int rc = aam_config_load(file, &cfg, err, sizeof(err));
	if (rc == AAM_OK)
		rc = aam_config_require(&cfg, "vault", err, sizeof(err));
	struct vault_perm *perm = NULL;
	if (rc == AAM_OK)
		rc = vault_perm_new(&cfg.vault, &perm, err, sizeof(err));
	if (rc == AAM_OK) {
		vault_service_set_perm(svc, perm);
		aam_log(AAM_LOG_INFO, "vault.reload", AAM_F_STR("config", file),
		        AAM_F_STR("result", "ok"));
	} else {
		aam_log(AAM_LOG_ERROR, "vault.reload_failed", AAM_F_STR("config", file),
		        AAM_F_ERR(rc), AAM_F_STR("reason", err));
	}
	aam_config_uninit(&cfg); /* zeroed by a failed load */
}

int
main(int argc, char **argv)
{
	harden();
	/* Before any jansson allocation, so every block is freed by the same pair. */
	json_set_alloc_funcs(json_alloc, json_release);
	struct aam_cli cli;
	switch (aam_cli_parse(argc, argv, "aam-vault", USAGE, &cli)) {
	case AAM_CLI_EXIT_OK:
		return 0;
	case AAM_CLI_EXIT_ERR:
		return 2;
	case AAM_CLI_RUN:
		break;
	}
	if (cli.argi < argc) {
		fprintf(stderr, "usage: aam-vault %s", USAGE);
		return 2;
	}

	struct aam_config cfg;
	char err[512];
	if (aam_config_load(cli.config_path, &cfg, err, sizeof(err)) != AAM_OK ||
	    aam_config_require(&cfg, "vault", err, sizeof(err)) != AAM_OK)
		aam_fatal("vault.config", err);
	if (getenv("AAM_LOG_LEVEL") == NULL)
		aam_log_set_level((enum aam_log_level)cfg.log.level);
	const struct aam_config_vault *vc = &cfg.vault;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		aam_fatal("vault.curl", "curl_global_init failed");

	/* Signals are taken synchronously by the main thread; workers never see them. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (mkdir(vc->state_dir, 0700) != 0 && errno != EEXIST)
		aam_fatal("vault.state_dir", "cannot create the state directory");
	struct vault_store_config sc = {
	        .module = vc->pkcs11.module,
	        .token_uri = vc->pkcs11.token,
	        .pin_file = vc->pkcs11.pin_file,
	        .db_path = vc->db,
	        .pool_size = 8,
	};
	struct vault_store *st = NULL;
	if (vault_store_open(&sc, &st, err, sizeof(err)) != AAM_OK)
		aam_fatal("vault.store", err);
	if (vc->secret_cache_ttl_ms > 0 &&
	    vault_store_set_cache_ttl(st, (unsigned)((vc->secret_cache_ttl_ms + 999) / 1000)) !=
	            AAM_OK)
		aam_fatal("vault.store", "cannot enable the secret cache");

	struct vault_inject_config ic = {
	        .egress = {.ca_bundle = vc->ca_bundle,
	                   .connect_timeout_ms = (long)vc->connect_timeout_ms,
	                   .timeout_ms = (long)vc->request_timeout_ms,
	                   .no_http2 = !vc->http2},
	        .max_body = (size_t)vc->max_body,
	};
	struct vault_inject *vi = NULL;
	if (vault_inject_new(&ic, st, &vi) != AAM_OK)
		aam_fatal("vault.inject", "cannot set up the egress");
	struct vault_perm *perm = NULL;
	if (vault_perm_new(vc, &perm, err, sizeof(err)) != AAM_OK)
		aam_fatal("vault.config", err);
	struct vault_service *svc = NULL;
	if (vault_service_new(st, vi, perm, &svc) != AAM_OK)
		aam_fatal("vault.service", "cannot create the service");

	/* The audit log opens (and records audit.start) before any socket serves. */
	struct vault_audit_config ac = {
	        .db_path = vc->audit.db,
	        .checkpoint_dir = vc->audit.checkpoint_dir,
	        .origin = vc->audit.origin,
	        .append_timeout_ms = (unsigned)vc->audit.append_timeout_ms,
	};
	struct vault_audit *audit = NULL;
	if (vault_audit_open(&ac, st, &audit, err, sizeof(err)) != AAM_OK)
		aam_fatal("vault.audit", err);
	vault_service_set_audit(svc, audit);
	vault_inject_set_audit(vi, audit);

	struct sock socks[VAULT_ROLE__N] = {
	        {.role = VAULT_ROLE_GATEWAY,
	         .path = vc->sockets.gateway,
	         .access = &vc->access.gateway},
	        {.role = VAULT_ROLE_ATTEST,
	         .path = vc->sockets.attest,
	         .access = &vc->access.attest},
	        {.role = VAULT_ROLE_ADMIN, .path = vc->sockets.admin, .access = &vc->access.admin},
	};
	for (unsigned i = 0; i < VAULT_ROLE__N; i++) {
		struct sock *s = &socks[i];
		s->ctx.svc = svc;
		s->ctx.role = s->role;
		mode_t mode =
		        parse_mode(s->access->mode, s->role == VAULT_ROLE_ADMIN ? 0600 : 0660);
		ensure_dir(s->path, 0755);
		int fd = -1;
		int rc = aam_ipc_listen(s->path, mode, 64, &fd);
		if (rc != AAM_OK) {
			snprintf(err, sizeof(err), "%s: cannot listen: %s", s->path,
			         aam_strerror(rc));
			aam_fatal("vault.listen", err);
		}
		if (chown_socket(s->path, s->access, err, sizeof(err)) != AAM_OK)
			aam_fatal("vault.listen", err);
		struct aam_ipc_server_config scfg = {
		        .handle = vault_service_handle,
		        .accept = vault_service_accept,
		        .ctx = &s->ctx,
		        .max_conns = 128,
		        .max_inflight = 64,
		        .max_queued = 8u * 1024 * 1024,
		};
		if (aam_ipc_server_new(&scfg, fd, &s->srv) != AAM_OK)
			aam_fatal("vault.listen", "cannot create the IPC server");
	}
	for (unsigned i = 0; i < VAULT_ROLE__N; i++) {
		if (pthread_create(&socks[i].thread, NULL, serve, &socks[i]) != 0)
			aam_fatal("vault.start", "cannot start a server thread");
		socks[i].running = true;
	}
	aam_log(AAM_LOG_INFO, "vault.start", AAM_F_STR("version", AAM_VERSION),
	        AAM_F_STR("state", vault_store_ready(st) ? "ready" : "uninitialised"),
	        AAM_F_STR("gateway", vc->sockets.gateway), AAM_F_STR("attest", vc->sockets.attest),
	        AAM_F_STR("admin", vc->sockets.admin));

	for (;;) {
		int sig = 0;
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reload(cli.config_path, svc);
			continue;
		}
		aam_log(AAM_LOG_INFO, "vault.stopping", AAM_F_INT("signal", sig));
		break;
	}

	vault_inject_stop(vi);
	for (unsigned i = 0; i < VAULT_ROLE__N; i++)
		aam_ipc_server_stop(socks[i].srv);
	for (unsigned i = 0; i < VAULT_ROLE__N; i++) {
		if (socks[i].running)
			pthread_join(socks[i].thread, NULL);
		aam_ipc_server_free(socks[i].srv);
		unlink(socks[i].path);
	}
	vault_service_free(svc);
	vault_inject_free(vi);
	vault_audit_close(audit);
	vault_store_close(st);
	aam_config_uninit(&cfg);
	curl_global_cleanup();
	aam_log(AAM_LOG_INFO, "vault.stop", AAM_F_STR("result", "ok"));
	return 0;
}
