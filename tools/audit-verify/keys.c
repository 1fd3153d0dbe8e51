/*
 * Pinned keys.  The verifier trusts only keys named on its command line:
 * the key files inside an export are whatever the operator wrote there,
 * so they are never used unless the auditor passes them explicitly.
 */
#include "av.h"

#include <stdlib.h>
#include <string.h>

#include "aam/err.h"

int
av_keys_load(const struct av_opts *o, const char *pem_name, struct av_keys *k, struct av_finding *f)
{
	memset(k, 0, sizeof(*k));
	for (size_t i = 0; i < o->npem; i++) {
		char *pem;
		size_t len;
		int rc = av_read_file(o->pem[i], 64 * 1024, &pem, &len);
		if (rc != AAM_OK) {
			av_finding_set(f, AV_USAGE, AV_NO_INDEX, "--key %s: cannot read the file",
			               o->pem[i]);
			av_keys_free(k);
			return AV_USAGE;
		}
		rc = aam_note_verifier_from_pem(&k->v[k->n], pem_name, pem, len);
		free(pem);
		if (rc != AAM_OK) {
			av_finding_set(f, AV_USAGE, AV_NO_INDEX,
			               rc == AAM_E_UNSUPPORTED
			                       ? "--key %s: not an ECDSA P-256 public key"
			                       : "--key %s: not a PEM public key, or the key name "
			                         "(origin) is not a valid note key name",
			               o->pem[i]);
			av_keys_free(k);
			return AV_USAGE;
		}
		k->n++;
	}
	for (size_t i = 0; i < o->nvkey; i++) {
		const char *why = "invalid";
		int rc = aam_note_verifier_from_vkey(&k->v[k->n], o->vkey[i], strlen(o->vkey[i]),
		                                     &why);
		if (rc != AAM_OK) {
			av_finding_set(f, AV_USAGE, AV_NO_INDEX, "--vkey: %s", why);
			av_keys_free(k);
			return AV_USAGE;
		}
		k->n++;
	}
	if (k->n == 0) {
		av_finding_set(
		        f, AV_USAGE, AV_NO_INDEX,
		        "no pinned key: pass --key PEM or --vkey STRING (the keys inside the "
		        "export are not trusted unless you name them)");
		return AV_USAGE;
	}
	return AV_OK;
}

void
av_keys_free(struct av_keys *k)
{
	for (size_t i = 0; i < k->n; i++)
		aam_note_verifier_uninit(&k->v[i]);
	k->n = 0;
}

int
av_note_error_kind(int rc)
{
	switch (rc) {
	case AAM_OK:
		return AV_OK;
	case AAM_E_NOTFOUND:
		return AV_UNKNOWN_KEY;
	case AAM_E_CRYPTO:
		return AV_BAD_SIGNATURE;
	case AAM_E_NOMEM:
		return AV_INTERNAL;
	default:
		return AV_MALFORMED;
	}
}
