/*
 * The agent's PKCS#11 key (agent/p11key.h).
 */
#include "agent/p11key.h"
#include "aam/err.h"
#include "common/p11.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/uri.h>

#define LABEL_MAX 256

struct agent_p11 {
	aam_p11 *p;
	char label[LABEL_MAX + 1];
	pthread_mutex_t mu; /* guards priv across a re-lookup */
	CK_OBJECT_HANDLE priv;
	uint8_t x[32], y[32];
};

/*
 * Splits the key URI into what aam_p11_open wants (a token URI, a module
 * and a PIN file) and the object label.
 */
static int
split_uri(const char *uri, const char *module, const char *pin_file, char **token_uri,
          char **module_out, char **pin_out, char label[LABEL_MAX + 1], char *msg, size_t msglen)
{
	P11KitUri *u = p11_kit_uri_new();
	if (u == NULL)
		return AAM_E_NOMEM;
	int rc = AAM_OK;
	int urc = p11_kit_uri_parse(uri, P11_KIT_URI_FOR_ANY, u);
	if (urc != P11_KIT_URI_OK) {
		snprintf(msg, msglen, "pkcs11_key is not a valid pkcs11: URI (%s)",
		         p11_kit_uri_message(urc));
		rc = AAM_E_CONFIG;
	}
	if (rc == AAM_OK && p11_kit_uri_get_pin_value(u) != NULL) {
		snprintf(msg, msglen,
		         "pkcs11_key carries pin-value; put the PIN in a file instead");
		rc = AAM_E_CONFIG;
	}
	CK_ATTRIBUTE *a = rc == AAM_OK ? p11_kit_uri_get_attribute(u, CKA_LABEL) : NULL;
	if (rc == AAM_OK && (a == NULL || a->ulValueLen == 0 || a->ulValueLen > LABEL_MAX ||
	                     memchr(a->pValue, '\0', a->ulValueLen) != NULL)) {
		snprintf(msg, msglen, "pkcs11_key must name the key with object=LABEL");
		rc = AAM_E_CONFIG;
	}
	if (rc == AAM_OK) {
		memcpy(label, a->pValue, a->ulValueLen);
		label[a->ulValueLen] = '\0';
		const char *m = module;
		if (m == NULL)
			m = p11_kit_uri_get_module_path(u);
		if (m == NULL)
			m = p11_kit_uri_get_module_name(u);
		if (m == NULL) {
			snprintf(msg, msglen,
			         "no PKCS#11 module: set agent.pkcs11_module or the URI's "
			         "module-path");
			rc = AAM_E_CONFIG;
		} else {
			*module_out = strdup(m);
		}
		const char *pin = pin_file;
		if (pin == NULL)
			pin = p11_kit_uri_get_pin_source(u);
		if (pin != NULL && strncmp(pin, "file:", 5) == 0)
			pin += 5;
		if (rc == AAM_OK && pin == NULL) {
			snprintf(msg, msglen,
			         "no PIN file: set agent.pin_file or the URI's pin-source");
			rc = AAM_E_CONFIG;
		} else if (rc == AAM_OK) {
			*pin_out = strdup(pin);
		}
	}
	if (rc == AAM_OK) {
		/* What is left selects the token. */
		p11_kit_uri_clear_attributes(u);
		p11_kit_uri_set_pin_source(u, NULL);
		p11_kit_uri_set_module_path(u, NULL);
		p11_kit_uri_set_module_name(u, NULL);
		if (p11_kit_uri_format(u, P11_KIT_URI_FOR_TOKEN, token_uri) != P11_KIT_URI_OK)
			rc = AAM_E_NOMEM;
	}
	if (rc == AAM_OK && (*module_out == NULL || *pin_out == NULL))
		rc = AAM_E_NOMEM;
	p11_kit_uri_free(u);
	return rc;
}

static int
find_pair(struct agent_p11 *k, char *msg, size_t msglen)
{
	CK_OBJECT_HANDLE pub = 0;
	int rc = aam_p11_find(k->p, CKO_PRIVATE_KEY, k->label, &k->priv);
	if (rc == AAM_OK)
		rc = aam_p11_find(k->p, CKO_PUBLIC_KEY, k->label, &pub);
	if (rc == AAM_E_NOTFOUND) {
		snprintf(msg, msglen, "the token has no key pair labelled '%s'", k->label);
		return rc;
	}
	if (rc == AAM_E_EXISTS) {
		snprintf(msg, msglen, "several objects in the token are labelled '%s'", k->label);
		return rc;
	}
	if (rc != AAM_OK) {
		snprintf(msg, msglen, "cannot search the token (%s)", aam_err_code(rc));
		return rc;
	}
	uint8_t point[65];
	rc = aam_p11_ec_point(k->p, pub, point);
	if (rc != AAM_OK || point[0] != 0x04) {
		snprintf(msg, msglen, "the key labelled '%s' is not an EC P-256 key", k->label);
		return rc != AAM_OK ? rc : AAM_E_UNSUPPORTED;
	}
	memcpy(k->x, point + 1, 32);
	memcpy(k->y, point + 33, 32);
	return AAM_OK;
}

int
agent_p11_open(const char *uri, const char *module, const char *pin_file, struct agent_p11 **out,
               char *msg, size_t msglen)
{
	if (uri == NULL || out == NULL)
		return AAM_E_INVAL;
	*out = NULL;
	struct agent_p11 *k = calloc(1, sizeof(*k));
	if (k == NULL)
		return AAM_E_NOMEM;
	pthread_mutex_init(&k->mu, NULL);
	char *token_uri = NULL, *mod = NULL, *pin = NULL;
	int rc = split_uri(uri, module, pin_file, &token_uri, &mod, &pin, k->label, msg, msglen);
	if (rc == AAM_OK) {
		struct aam_p11_config c = {
		        .module = mod, .token_uri = token_uri, .pin_file = pin, .pool_size = 4};
		rc = aam_p11_open(&c, &k->p, msg, msglen);
	}
	free(token_uri);
	free(mod);
	free(pin);
	if (rc == AAM_OK)
		rc = find_pair(k, msg, msglen);
	if (rc != AAM_OK) {
		agent_p11_close(k);
		return rc;
	}
	*out = k;
	return AAM_OK;
}

void
agent_p11_close(struct agent_p11 *k)
{
	if (k == NULL)
		return;
	aam_p11_close(k->p);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

void
agent_p11_key_xy(const struct agent_p11 *k, uint8_t x[32], uint8_t y[32])
{
	memcpy(x, k->x, 32);
	memcpy(y, k->y, 32);
}

int
agent_p11_sign(struct agent_p11 *k, const uint8_t digest[32], uint8_t sig[64], char *msg,
               size_t msglen)
{
	pthread_mutex_lock(&k->mu);
	CK_OBJECT_HANDLE h = k->priv;
	pthread_mutex_unlock(&k->mu);
	int rc = aam_p11_sign_ecdsa_p256(k->p, h, digest, sig);
	if (rc == AAM_E_NOTFOUND) {
		/* A re-login may renumber objects (p11.h): look the key up again, once. */
		pthread_mutex_lock(&k->mu);
		aam_p11_forget(k->p);
		rc = aam_p11_find(k->p, CKO_PRIVATE_KEY, k->label, &k->priv);
		h = k->priv;
		pthread_mutex_unlock(&k->mu);
		if (rc == AAM_OK)
			rc = aam_p11_sign_ecdsa_p256(k->p, h, digest, sig);
	}
	if (rc != AAM_OK)
		snprintf(msg, msglen, "the token refused to sign (%s)", aam_err_code(rc));
	return rc;
}
