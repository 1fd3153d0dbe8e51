/*
 * aam-attest: verifies workload evidence (TPM 2.0 quotes, PKCS#11 key
 * proofs, join tokens) and issues short-lived, sender-constrained tokens
 * signed by the issuer key in aam-vault.  docs/ATTEST.md describes the API.
 *
 *   aam-attest [-c FILE]     foreground, logs on stderr
 *   SIGTERM / SIGINT         clean shutdown
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aam/err.h"
#include "attest/attest.h"
#include "attest/audit.h"
#include "attest/vault.h"
#include "common/cli.h"
#include "common/config.h"
#include "common/log.h"

#define MAINTAIN_INTERVAL_S 10

int
main(int argc, char **argv)
{
	struct aam_cli cli;
	switch (aam_cli_parse(argc, argv, "aam-attest", "", &cli)) {
	case AAM_CLI_EXIT_OK:
		return 0;
	case AAM_CLI_EXIT_ERR:
		return 2;
	case AAM_CLI_RUN:
		break;
	}
	if (cli.argi < argc) {
		fprintf(stderr, "aam-attest: unexpected argument '%s'\n", argv[cli.argi]);
		return 2;
	}
	struct aam_config cfg;
	char err[512];
	if (aam_config_load(cli.config_path, &cfg, err, sizeof(err)) != AAM_OK ||
	    aam_config_require(&cfg, "attest", err, sizeof(err)) != AAM_OK) {
		fprintf(stderr, "aam-attest: %s\n", err);
		return 1;
	}
	if (getenv("AAM_LOG_LEVEL") == NULL)
		aam_log_set_level((enum aam_log_level)cfg.log.level);

	char host[AAM_CONFIG_HOST_MAX];
	uint16_t port = 0;
	if (aam_config_parse_listen(cfg.attest.listen, host, &port) != AAM_OK)
		aam_fatal("attest.config", "attest.listen is not a listen address");

	/*
	 * Signals are taken synchronously by this thread only: block them
	 * before any thread starts so the HTTP workers inherit the mask.
	 */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct attest_vault *vault = NULL;
	struct attest_keysrc keys;
	if (attest_vault_new(cfg.attest.vault_socket, &vault) != AAM_OK ||
	    attest_vault_keysrc(vault, &keys) != AAM_OK ||
	    attest_audit_connect(cfg.attest.vault_socket) != AAM_OK)
		aam_fatal("attest.start", "out of memory");

	struct attest_server_config sc = {
	        .host = host,
	        .port = port,
	        .db_path = cfg.attest.db,
	        .issuer = cfg.attest.issuer,
	        .trust_domain = cfg.attest.trust_domain,
	        .ek_ca = (const char *const *)cfg.attest.ek_ca.v,
	        .n_ek_ca = cfg.attest.ek_ca.n,
	        .keys = &keys,
	};
	struct attest_server *srv = NULL;
	if (attest_server_new(&sc, &srv, err, sizeof(err)) != AAM_OK)
		aam_fatal("attest.start", err);
	if (attest_server_start(srv) != AAM_OK)
		aam_fatal("attest.start", "cannot listen on attest.listen");
	aam_log(AAM_LOG_INFO, "attest.start", AAM_F_STR("listen", cfg.attest.listen),
	        AAM_F_STR("vault", cfg.attest.vault_socket),
	        AAM_F_UINT("ek_ca", cfg.attest.ek_ca.n));

	for (;;) {
		struct timespec ts = {.tv_sec = MAINTAIN_INTERVAL_S};
		int sig = sigtimedwait(&sigs, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig < 0)
			attest_server_maintain(srv);
	}
	aam_log(AAM_LOG_INFO, "attest.stop");
	attest_server_free(srv);
	attest_audit_close();
	attest_vault_free(vault);
	aam_config_uninit(&cfg);
	return 0;
}
