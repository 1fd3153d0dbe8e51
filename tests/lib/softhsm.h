/*
 * Throwaway SoftHSM2 token for integration tests.
 *
 *   struct aam_test_softhsm hsm;
 *   AAM_TEST_SOFTHSM_REQUIRE();                  // skips when SoftHSM2 is absent
 *   assert_int_equal(aam_test_softhsm_start(&hsm, "aam-test"), AAM_OK);
 *   CK_FUNCTION_LIST *f = p11_kit_module_load(hsm.module_path, 0);
 *   ... C_Initialize, aam_test_softhsm_find_slot, C_OpenSession,
 *       aam_test_softhsm_login ...
 *   aam_test_softhsm_stop(&hsm);
 *
 * Every token lives in its own temporary folder with its own softhsm2.conf,
 * so nothing under /etc or /var/lib is read or written.  The token is
 * initialised through the PKCS#11 API itself (C_InitToken, C_InitPIN), so
 * the random SO and user PINs never appear on a command line; they exist
 * only in two 0600 files inside the folder.
 *
 * SoftHSM2 reads SOFTHSM2_CONF once, in C_Initialize, and is a singleton per
 * process.  A token is therefore visible to a module initialised after its
 * fixture was started (or re-activated with aam_test_softhsm_activate), and
 * starting a token fails with AAM_E_BUSY while the module is initialised in
 * this process: finalize first.  Folders of fixtures that were never
 * stopped (an assertion failed half-way) are removed at exit.
 */
#ifndef AAM_TESTS_SOFTHSM_H
#define AAM_TESTS_SOFTHSM_H

#include <stdbool.h>
#include <stddef.h>
#include <p11-kit/pkcs11.h>

/* Room for any path the fixtures build under $TMPDIR. */
#ifndef AAM_TEST_PATH_MAX
#define AAM_TEST_PATH_MAX 1024
#endif
/* A PKCS#11 token label is at most 32 bytes (CK_TOKEN_INFO.label). */
#define AAM_TEST_TOKEN_LABEL_MAX 32
/* Largest PIN aam_test_softhsm_read_pin accepts (SoftHSM2's own limit). */
#define AAM_TEST_PIN_MAX 255

struct aam_test_softhsm {
	char dir[AAM_TEST_PATH_MAX];         /* temporary folder; stop removes it */
	char conf_path[AAM_TEST_PATH_MAX];   /* DIR/softhsm2.conf */
	char token_dir[AAM_TEST_PATH_MAX];   /* DIR/tokens (directories.tokendir) */
	char module_path[AAM_TEST_PATH_MAX]; /* libsofthsm2.so */
	char token_label[AAM_TEST_TOKEN_LABEL_MAX + 1];
	char token_serial[17];                 /* CK_TOKEN_INFO.serialNumber, trimmed */
	char so_pin_file[AAM_TEST_PATH_MAX];   /* 0600, hex SO PIN */
	char user_pin_file[AAM_TEST_PATH_MAX]; /* 0600, hex user PIN */
	char token_uri[AAM_TEST_PATH_MAX];     /* RFC 7512 "pkcs11:token=<label>" */
	CK_SLOT_ID slot_id;                    /* slot of the token right after start */
	bool started;
};

/*
 * Path of libsofthsm2.so: $AAM_SOFTHSM2_MODULE when set, else the Debian
 * path, the multiarch paths and the usual lib64/pkcs11 places.  Writes it
 * into OUT and returns true when a readable module was found.
 */
bool aam_test_softhsm_find_module(char *out, size_t len);

/* Whether SoftHSM2 is installed, so a test can skip with a reason. */
bool aam_test_softhsm_available(void);

/*
 * Creates the folder, the configuration, random PINs and an initialised
 * token labelled LABEL (1..32 printable ASCII characters, no trailing
 * space), and points SOFTHSM2_CONF at it.  The module is left finalized.
 * Returns AAM_OK, AAM_E_INVAL (bad label), AAM_E_NOTFOUND (no SoftHSM2),
 * AAM_E_BUSY (module already initialised in this process), AAM_E_HSM or
 * AAM_E_IO; a reason is printed on stderr.  On failure nothing is left.
 */
int aam_test_softhsm_start(struct aam_test_softhsm *h, const char *label);

/*
 * Removes the folder (and the token with it) and unsets SOFTHSM2_CONF when
 * it points at this token.  The caller finalizes the module first.
 * Safe on a zeroed or already stopped fixture.
 */
void aam_test_softhsm_stop(struct aam_test_softhsm *h);

/* Points SOFTHSM2_CONF back at this fixture (effective at the next C_Initialize). */
int aam_test_softhsm_activate(const struct aam_test_softhsm *h);

/*
 * Reads a PIN file into BUF (NUL-terminated, one trailing newline
 * dropped).  Refuses a file that is not a regular file or that group or
 * others may access (AAM_E_PERM), an empty PIN or one with control
 * characters (AAM_E_INVAL) and one that does not fit in LEN - 1 bytes or
 * exceeds AAM_TEST_PIN_MAX (AAM_E_TOOBIG).  BUF holds nothing on failure.
 */
int aam_test_softhsm_read_pin(const char *path, char *buf, size_t len);

/* The slot holding this fixture's token in an initialised module F. */
int aam_test_softhsm_find_slot(const struct aam_test_softhsm *h, CK_FUNCTION_LIST *f,
                               CK_SLOT_ID *slot);

/* C_Login(CKU_USER) with the PIN from the user PIN file, wiped afterwards. */
int aam_test_softhsm_login(const struct aam_test_softhsm *h, CK_FUNCTION_LIST *f,
                           CK_SESSION_HANDLE session);

/* For cmocka tests: skip, with the reason printed, when SoftHSM2 is absent. */
#define AAM_TEST_SOFTHSM_REQUIRE()                                                                 \
	do {                                                                                       \
		if (!aam_test_softhsm_available()) {                                               \
			print_message("[  SKIP    ] SoftHSM2 module libsofthsm2.so not found "     \
			              "(install softhsm2 or set AAM_SOFTHSM2_MODULE)\n");          \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

#endif
