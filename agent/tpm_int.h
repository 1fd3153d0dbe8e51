/*
 * Shared by agent/tpm.c (connection, keys, signing) and
 * agent/tpm_attest.c (EK, certify, activation, quote).
 */
#ifndef AAM_AGENT_TPM_INT_H
#define AAM_AGENT_TPM_INT_H

#include <pthread.h>
#include <stdbool.h>

#include <tss2/tss2_esys.h>

#include "agent/tpm.h"

struct agent_tpm {
	pthread_mutex_t mu;
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *esys;
	ESYS_TR key;       /* the loaded signing key, ESYS_TR_NONE when not loaded */
	ESYS_TR ak;        /* the AK during an attestation, else ESYS_TR_NONE */
	ESYS_TR ek;        /* the EK between begin and activate, else ESYS_TR_NONE */
	bool ek_transient; /* created here (flush it) or persistent (close the ESYS_TR only) */
	TPM2B_PUBLIC key_pub, ak_pub;
	TPM2B_PRIVATE key_priv, ak_priv;
	uint8_t x[32], y[32];
};

/* "COMMAND: decoded response code" into MSG; returns AAM_E_HSM. */
int agent_tpm_fail(TSS2_RC rc, const char *what, char *msg, size_t msglen);

/* Creates the storage primary; caller holds MU and flushes it. */
int agent_tpm_srk(struct agent_tpm *t, ESYS_TR *out, char *msg, size_t msglen);

/* Loads the AK (for an attestation) unless it is loaded; caller holds MU. */
int agent_tpm_load_ak(struct agent_tpm *t, char *msg, size_t msglen);

/* Flushes a transient object and forgets its handle; caller holds MU. */
void agent_tpm_flush(struct agent_tpm *t, ESYS_TR *h);

/* Marshals a TPM2B_PUBLIC into B (appended). */
int agent_tpm_put_public(struct aam_buf *b, const TPM2B_PUBLIC *p);

#endif /* AAM_AGENT_TPM_INT_H */
