/*
 * aam-gateway: the OpenAI- and Anthropic-compatible front agents talk to.
 * It authenticates (DPoP-bound tokens from aam-attest, or virtual keys),
 * decides AgentPolicy, routes model calls through aam-vault (which holds
 * every credential) and audits every request.  docs/GATEWAY.md.
 *
 *   aam-gateway [-c FILE]    foreground, logs on stderr
 *   SIGHUP                   reload policies and routes
 *   a changed policy or routes file (polled every second) reloads too
 *   SIGTERM / SIGINT         clean shutdown (streams in flight are ended)
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "aam/err.h"
#include "common/cli.h"
#include "common/config.h"
#include "common/fswatch.h"
#include "common/log.h"
#include "gateway/gw_int.h"

int
main(int argc, char **argv)
{
	struct aam_cli cli;
	switch (aam_cli_parse(argc, argv, "aam-gateway", "", &cli)) {
	case AAM_CLI_EXIT_OK:
		return 0;
	case AAM_CLI_EXIT_ERR:
		return 2;
	case AAM_CLI_RUN:
		break;
	}
	if (cli.argi < argc) {
		fprintf(stderr, "aam-gateway: unexpected argument '%s'\n", argv[cli.argi]);
		return 2;
	}
	struct aam_config cfg;
	char err[1024] = "";
	if (aam_config_load(cli.config_path, &cfg, err, sizeof(err)) != AAM_OK ||
	    aam_config_require(&cfg, "gateway", err, sizeof(err)) != AAM_OK) {
		fprintf(stderr, "aam-gateway: %s\n", err);
		return 1;
	}
	if (getenv("AAM_LOG_LEVEL") == NULL)
		aam_log_set_level((enum aam_log_level)cfg.log.level);

	/* Signals are taken by this thread only: block them before any thread starts. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		aam_fatal("gateway.start", "libcurl failed to initialise");

	struct gw *g = NULL;
	struct gw_options opt = {.cfg = &cfg.gateway};
	int rc = gw_new(&opt, &g, err, sizeof(err));
	if (rc != AAM_OK) {
		fprintf(stderr, "aam-gateway: %s\n", err);
		aam_config_uninit(&cfg);
		curl_global_cleanup();
		return 1;
	}
	rc = gw_start(g);
	if (rc != AAM_OK) {
		fprintf(stderr, "aam-gateway: cannot listen on %s (%s)\n", cfg.gateway.listen,
		        aam_err_code(rc));
		gw_free(g);
		aam_config_uninit(&cfg);
		curl_global_cleanup();
		return 1;
	}
	aam_log(AAM_LOG_INFO, "gateway.ready", AAM_F_STR("listen", cfg.gateway.listen),
	        AAM_F_UINT("port", gw_port(g)), AAM_F_STR("external_url", cfg.gateway.external_url),
	        AAM_F_STR("policies", cfg.gateway.policies),
	        AAM_F_STR("routes", cfg.gateway.routes != NULL ? cfg.gateway.routes : "none"));

	/*
	 * Hot reload: SIGHUP, or a change of the policy files or the routes
	 * file, seen by polling their fingerprint once a second.  A broken new
	 * set is logged with its positions and the last good one keeps serving.
	 */
	const char *watched[] = {cfg.gateway.policies, cfg.gateway.routes};
	uint64_t seen = aam_fswatch_fingerprint(watched, 2);
	const struct timespec tick = {.tv_sec = 1};
	for (;;) {
		int sig = sigtimedwait(&sigs, NULL, &tick);
		if (sig < 0) {
			uint64_t now = aam_fswatch_fingerprint(watched, 2);
			if (now != seen) {
				seen = now;
				aam_log(AAM_LOG_INFO, "gateway.reload",
				        AAM_F_STR("why", "file changed"));
				gw_reload(g);
			}
			continue;
		}
		if (sig == SIGHUP) {
			aam_log(AAM_LOG_INFO, "gateway.reload", AAM_F_STR("why", "SIGHUP"));
			seen = aam_fswatch_fingerprint(watched, 2);
			gw_reload(g);
			continue;
		}
		aam_log(AAM_LOG_INFO, "gateway.stop", AAM_F_INT("signal", sig));
		break;
	}
	gw_free(g);
	aam_config_uninit(&cfg);
	curl_global_cleanup();
	return 0;
}
