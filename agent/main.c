/*
 * aam-agent: the workload side of AAM (docs/AGENT.md).
 *
 *   aam-agent [-c FILE] token                 attest, print a token on stdout
 *   aam-agent [-c FILE] sidecar               loopback proxy to the gateway
 *   aam-agent [-c FILE] identity [--ek-cert FILE]
 *                                             what `aamctl workload register` needs
 *
 * Exit status: 0 success, 1 failure (attestation refused, device error,
 * bad configuration), 2 usage error.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "aam/agent.h"
#include "aam/err.h"
#include "common/cli.h"
#include "common/config.h"
#include "common/log.h"
#include "common/secret.h"

static const char USAGE[] = "token | sidecar | identity [--ek-cert FILE]\n"
                            "  token      attest and print a token on stdout\n"
                            "  sidecar    run the loopback proxy (agent.listen) to the gateway\n"
                            "  identity   print the key's thumbprint and JWK (and, for a TPM,\n"
                            "             the EK's SHA-256; --ek-cert writes its certificate)\n";

static void
agent_config(const struct aam_config_agent *c, struct aam_agent_config *out)
{
	memset(out, 0, sizeof(*out));
	out->tcti = c->tcti;
	out->state_dir = c->state_dir;
	out->pkcs11_key = c->pkcs11_key;
	out->pkcs11_module = c->pkcs11_module;
	out->pin_file = c->pin_file;
	out->attest_url = c->attest_url;
	out->spiffe_id = c->spiffe_id;
	out->audience = c->audience;
	out->ca_bundle = c->ca_bundle;
}

static int
fail(const char *what, const struct aam_agent_error *e)
{
	fprintf(stderr, "aam-agent: %s: %s: %s\n", what, e->code[0] ? e->code : "error",
	        e->message);
	return 1;
}

static int
cmd_token(struct aam_agent *a)
{
	struct aam_agent_token t;
	struct aam_agent_error e;
	if (aam_agent_attest(a, &t, &e) != AAM_OK)
		return fail("attestation failed", &e);
	int rc = printf("%s\n", t.token) < 0 || fflush(stdout) != 0 ? 1 : 0;
	aam_agent_token_uninit(&t);
	return rc;
}

/* SHA-256 of the certificate's SubjectPublicKeyInfo, as aamctl's --ek-pub-sha256 wants. */
static int
ek_spki_sha256(const uint8_t *der, size_t len, char hex[65])
{
	const unsigned char *q = der;
	X509 *x = d2i_X509(NULL, &q, (long)len);
	if (x == NULL)
		return AAM_E_PARSE;
	unsigned char *spki = NULL;
	int n = i2d_PUBKEY(X509_get0_pubkey(x), &spki);
	uint8_t d[32];
	int ok = n > 0 && EVP_Digest(spki, (size_t)n, d, NULL, EVP_sha256(), NULL) == 1;
	OPENSSL_free(spki);
	X509_free(x);
	if (!ok)
		return AAM_E_CRYPTO;
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	return AAM_OK;
}

static int
cmd_identity(struct aam_agent *a, const char *ek_cert_path)
{
	char *jwk = NULL;
	if (aam_agent_jwk_json(a, &jwk) != AAM_OK) {
		fprintf(stderr, "aam-agent: out of memory\n");
		return 1;
	}
	char ek_hex[65] = "";
	if (strcmp(aam_agent_method(a), "tpm") == 0) {
		uint8_t *der = NULL;
		size_t len = 0;
		struct aam_agent_error e;
		if (aam_agent_ek_cert(a, &der, &len, &e) != AAM_OK) {
			free(jwk);
			return fail("reading the EK certificate", &e);
		}
		int rc = ek_spki_sha256(der, len, ek_hex);
		if (rc == AAM_OK && ek_cert_path != NULL) {
			FILE *f = fopen(ek_cert_path, "wb");
			rc = f != NULL && fwrite(der, 1, len, f) == len ? AAM_OK : AAM_E_IO;
			if (f != NULL && fclose(f) != 0)
				rc = AAM_E_IO;
		}
		free(der);
		if (rc != AAM_OK) {
			fprintf(stderr, "aam-agent: the EK certificate: %s\n", aam_strerror(rc));
			free(jwk);
			return 1;
		}
	} else if (ek_cert_path != NULL) {
		fprintf(stderr, "aam-agent: --ek-cert needs a TPM agent\n");
		free(jwk);
		return 2;
	}
	printf("{\"method\":\"%s\",\"jkt\":\"%s\",\"jwk\":%s", aam_agent_method(a),
	       aam_agent_jkt(a), jwk);
	if (ek_hex[0] != '\0')
		printf(",\"ek_pub_sha256\":\"%s\"", ek_hex);
	printf("}\n");
	free(jwk);
	return fflush(stdout) == 0 ? 0 : 1;
}

static int
cmd_sidecar(struct aam_agent *a, const struct aam_config_agent *c)
{
	char host[AAM_CONFIG_HOST_MAX];
	uint16_t port = 0;
	if (aam_config_parse_listen(c->listen, host, &port) != AAM_OK) {
		fprintf(stderr, "aam-agent: agent.listen is not a listen address\n");
		return 1;
	}
	struct aam_agent_sidecar_config sc = {
	        .host = host,
	        .port = port,
	        .gateway_url = c->gateway_url,
	        .ca_bundle = c->ca_bundle,
	        .max_body = (size_t)c->max_body,
	};
	/* main() blocked these before anything started a thread. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	struct aam_agent_sidecar *s = NULL;
	struct aam_agent_error e;
	if (aam_agent_sidecar_start(a, &sc, &s, &e) != AAM_OK)
		return fail("cannot start the sidecar", &e);
	int sig = 0;
	while (sigwait(&sigs, &sig) == 0 && sig != SIGTERM && sig != SIGINT)
		;
	aam_agent_sidecar_stop(s);
	return 0;
}

int
main(int argc, char **argv)
{
	struct aam_cli cli;
	switch (aam_cli_parse(argc, argv, "aam-agent", USAGE, &cli)) {
	case AAM_CLI_EXIT_OK:
		return 0;
	case AAM_CLI_EXIT_ERR:
		return 2;
	case AAM_CLI_RUN:
		break;
	}
	if (cli.argi >= argc) {
		fprintf(stderr, "usage: aam-agent %s", USAGE);
		return 2;
	}
	const char *cmd = argv[cli.argi];
	const char *ek_cert = NULL;
	int extra = argc - cli.argi - 1;
	if (strcmp(cmd, "identity") == 0 && extra == 2 &&
	    strcmp(argv[cli.argi + 1], "--ek-cert") == 0)
		ek_cert = argv[cli.argi + 2];
	else if (extra != 0 || (strcmp(cmd, "token") != 0 && strcmp(cmd, "sidecar") != 0 &&
	                        strcmp(cmd, "identity") != 0)) {
		fprintf(stderr, "usage: aam-agent %s", USAGE);
		return 2;
	}

	struct aam_config cfg;
	char err[512];
	if (aam_config_load(cli.config_path, &cfg, err, sizeof(err)) != AAM_OK) {
		fprintf(stderr, "aam-agent: %s\n", err);
		return 1;
	}
	if (aam_config_require(&cfg, "agent", err, sizeof(err)) != AAM_OK) {
		fprintf(stderr, "aam-agent: %s\n", err);
		aam_config_uninit(&cfg);
		return 1;
	}
	if (getenv("AAM_LOG_LEVEL") == NULL)
		aam_log_set_level((enum aam_log_level)cfg.log.level);
	if (strcmp(cmd, "identity") != 0 && cfg.agent.spiffe_id == NULL) {
		fprintf(stderr, "aam-agent: %s: agent.spiffe_id is not set\n", cfg.path);
		aam_config_uninit(&cfg);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	/*
	 * The sidecar takes SIGTERM/SIGINT synchronously (sigwait) so that it
	 * stops cleanly and flushes its TPM objects: block them before any
	 * library (PKCS#11 module, TSS) can start a thread that would inherit
	 * an open mask.
	 */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	if (strcmp(cmd, "sidecar") == 0)
		pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	curl_global_init(CURL_GLOBAL_DEFAULT);

	struct aam_agent_config ac;
	agent_config(&cfg.agent, &ac);
	struct aam_agent *a = NULL;
	struct aam_agent_error e;
	int rc;
	if (aam_agent_open(&ac, &a, &e) != AAM_OK) {
		rc = fail("cannot open the agent's key", &e);
	} else if (strcmp(cmd, "token") == 0) {
		rc = cmd_token(a);
	} else if (strcmp(cmd, "identity") == 0) {
		rc = cmd_identity(a, ek_cert);
	} else {
		rc = cmd_sidecar(a, &cfg.agent);
	}
	aam_agent_close(a);
	curl_global_cleanup();
	aam_config_uninit(&cfg);
	return rc;
}
