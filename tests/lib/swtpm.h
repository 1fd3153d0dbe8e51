/*
 * Throwaway software TPM 2.0 (swtpm) for integration tests.
 *
 *   struct aam_test_swtpm tpm;
 *   AAM_TEST_SWTPM_REQUIRE();                // skips when swtpm is absent
 *   assert_int_equal(aam_test_swtpm_start(&tpm), AAM_OK);
 *   Tss2_TctiLdr_Initialize(tpm.tcti, &tcti); ...
 *   aam_test_swtpm_stop(&tpm);
 *
 * start manufactures a TPM with swtpm_setup (RSA 2048 and ECC EKs, EK and
 * platform certificates in NV, NV locked) using a swtpm_setup.conf and a
 * local CA that live in the fixture's temporary folder, so nothing under
 * /etc or /var/lib is read or written.  It then runs `swtpm socket` on two
 * loopback ports, the control port being the server port + 1 as the tss2
 * "swtpm" TCTI expects, and returns once the TPM answers TPM2_GetRandom.
 * The TPM is already started (TPM2_Startup(CLEAR)).
 *
 * A fixture that is not stopped (an assertion failed half-way) is killed
 * and its folder removed at exit; if the test process dies outright, the
 * kernel kills swtpm (PR_SET_PDEATHSIG), so no swtpm outlives its test.
 * Start fixtures from the thread that will stop them: the death signal
 * follows the thread that started swtpm.
 */
#ifndef AAM_TESTS_SWTPM_H
#define AAM_TESTS_SWTPM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#ifndef AAM_TEST_PATH_MAX
#define AAM_TEST_PATH_MAX 1024
#endif

/* TCG EK credential profile NV indices as swtpm_setup fills them. */
#define AAM_TEST_SWTPM_NV_EK_CERT_RSA      0x01c00002u /* RSA 2048 EK certificate */
#define AAM_TEST_SWTPM_NV_EK_CERT_ECC_P256 0x01c0000au /* ECC NIST P-256 EK certificate */
#define AAM_TEST_SWTPM_NV_EK_CERT_ECC_P384 0x01c00016u /* ECC NIST P-384 (swtpm 0.7 default) */
#define AAM_TEST_SWTPM_NV_PLATFORM_CERT    0x01c08000u /* platform certificate */

struct aam_test_swtpm {
	char dir[AAM_TEST_PATH_MAX];       /* temporary folder; stop removes it */
	char state_dir[AAM_TEST_PATH_MAX]; /* DIR/state: --tpmstate */
	char ca_dir[AAM_TEST_PATH_MAX];    /* DIR/ca: swtpm-localca's statedir */
	/* The local CA certificate that signed the EK and platform certificates. */
	char ca_cert_path[AAM_TEST_PATH_MAX];
	/* The self-signed root that signed ca_cert_path: the trust anchor of EK chains. */
	char root_cert_path[AAM_TEST_PATH_MAX];
	char setup_log_path[AAM_TEST_PATH_MAX]; /* swtpm_setup's output */
	char log_path[AAM_TEST_PATH_MAX];       /* swtpm's output */
	int server_port;                        /* TPM commands, 127.0.0.1 */
	int ctrl_port;                          /* control channel, server_port + 1 */
	pid_t pid;                              /* swtpm process; -1 when stopped */
	char tcti[64];                          /* "swtpm:host=127.0.0.1,port=N" */
	double setup_seconds;                   /* time spent in swtpm_setup */
	double start_seconds;                   /* time from exec to first answer */
};

/* Whether swtpm, swtpm_setup, swtpm_localca and certtool are installed. */
bool aam_test_swtpm_available(void);

/*
 * Manufactures and starts a TPM (see above).  Returns AAM_OK,
 * AAM_E_UNSUPPORTED (tools missing), AAM_E_IO, AAM_E_TIMEOUT or AAM_E_HSM
 * (swtpm_setup or swtpm failed; their log is printed on stderr).  On
 * failure nothing is left running and the folder is gone.
 */
int aam_test_swtpm_start(struct aam_test_swtpm *h);

/*
 * Stops swtpm (SIGTERM, then SIGKILL after 5 s), reaps it and removes the
 * folder.  Safe on a zeroed or already stopped fixture.
 */
void aam_test_swtpm_stop(struct aam_test_swtpm *h);

/*
 * Sends TPM2_GetRandom straight to the server port and checks for a
 * success response: AAM_OK, AAM_E_IO (no connection), AAM_E_TIMEOUT or
 * AAM_E_PROTO (not a TPM success answer).
 */
int aam_test_swtpm_ping(const struct aam_test_swtpm *h);

/* For cmocka tests: skip, with the reason printed, when swtpm is absent. */
#define AAM_TEST_SWTPM_REQUIRE()                                                                   \
	do {                                                                                       \
		if (!aam_test_swtpm_available()) {                                                 \
			print_message(                                                             \
			        "[  SKIP    ] swtpm, swtpm_setup, swtpm_localca or certtool "      \
			        "not found (install swtpm swtpm-tools gnutls-bin)\n");             \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

#endif
