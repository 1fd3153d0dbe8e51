/*
 * PKCS#11 module, token, login and session pool.  See p11.h for the why.
 */
#include "common/p11.h"
#include "aam/err.h"
#include "common/log.h"
#include "common/secret.h"

#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define P11_POOL_MAX  64
#define P11_PIN_MAX   256
#define P11_CACHE_MAX 64
#define P11_LABEL_MAX 128
#define P11_MECH_MAX  512

struct p11_cached {
	CK_OBJECT_CLASS cls;
	char label[P11_LABEL_MAX];
	CK_OBJECT_HANDLE handle;
};

struct aam_p11 {
	CK_FUNCTION_LIST *f;
	int initialized; /* we called C_Initialize and owe C_Finalize */
	CK_SLOT_ID slot;
	aam_secret *pin;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned pool_size;
	CK_SESSION_HANDLE sessions[P11_POOL_MAX];
	bool busy[P11_POOL_MAX];

	CK_MECHANISM_TYPE mechs[P11_MECH_MAX];
	size_t nmechs;

	pthread_mutex_t cache_lock;
	struct p11_cached cache[P11_CACHE_MAX];
	size_t ncache;
};

const char *
aam_p11_rv_name(CK_RV rv)
{
	switch (rv) {
	case CKR_OK:
		return "CKR_OK";
	case CKR_HOST_MEMORY:
		return "CKR_HOST_MEMORY";
	case CKR_SLOT_ID_INVALID:
		return "CKR_SLOT_ID_INVALID";
	case CKR_GENERAL_ERROR:
		return "CKR_GENERAL_ERROR";
	case CKR_FUNCTION_FAILED:
		return "CKR_FUNCTION_FAILED";
	case CKR_ARGUMENTS_BAD:
		return "CKR_ARGUMENTS_BAD";
	case CKR_ATTRIBUTE_TYPE_INVALID:
		return "CKR_ATTRIBUTE_TYPE_INVALID";
	case CKR_ATTRIBUTE_SENSITIVE:
		return "CKR_ATTRIBUTE_SENSITIVE";
	case CKR_DEVICE_ERROR:
		return "CKR_DEVICE_ERROR";
	case CKR_DEVICE_REMOVED:
		return "CKR_DEVICE_REMOVED";
	case CKR_KEY_HANDLE_INVALID:
		return "CKR_KEY_HANDLE_INVALID";
	case CKR_MECHANISM_INVALID:
		return "CKR_MECHANISM_INVALID";
	case CKR_OBJECT_HANDLE_INVALID:
		return "CKR_OBJECT_HANDLE_INVALID";
	case CKR_PIN_INCORRECT:
		return "CKR_PIN_INCORRECT";
	case CKR_PIN_LOCKED:
		return "CKR_PIN_LOCKED";
	case CKR_SESSION_CLOSED:
		return "CKR_SESSION_CLOSED";
	case CKR_SESSION_HANDLE_INVALID:
		return "CKR_SESSION_HANDLE_INVALID";
	case CKR_TOKEN_NOT_PRESENT:
		return "CKR_TOKEN_NOT_PRESENT";
	case CKR_USER_NOT_LOGGED_IN:
		return "CKR_USER_NOT_LOGGED_IN";
	case CKR_USER_ALREADY_LOGGED_IN:
		return "CKR_USER_ALREADY_LOGGED_IN";
	case CKR_BUFFER_TOO_SMALL:
		return "CKR_BUFFER_TOO_SMALL";
	case CKR_CRYPTOKI_NOT_INITIALIZED:
		return "CKR_CRYPTOKI_NOT_INITIALIZED";
	case CKR_CRYPTOKI_ALREADY_INITIALIZED:
		return "CKR_CRYPTOKI_ALREADY_INITIALIZED";
	case CKR_DATA_LEN_RANGE:
		return "CKR_DATA_LEN_RANGE";
	case CKR_TEMPLATE_INCOMPLETE:
		return "CKR_TEMPLATE_INCOMPLETE";
	case CKR_TEMPLATE_INCONSISTENT:
		return "CKR_TEMPLATE_INCONSISTENT";
	case CKR_ENCRYPTED_DATA_INVALID:
		return "CKR_ENCRYPTED_DATA_INVALID";
	default:
		return "CKR_other";
	}
}

int
aam_p11_err(CK_RV rv)
{
	switch (rv) {
	case CKR_OK:
		return AAM_OK;
	case CKR_HOST_MEMORY:
		return AAM_E_NOMEM;
	case CKR_ARGUMENTS_BAD:
	case CKR_DATA_LEN_RANGE:
		return AAM_E_INVAL;
	case CKR_MECHANISM_INVALID:
		return AAM_E_UNSUPPORTED;
	case CKR_PIN_INCORRECT:
	case CKR_PIN_LOCKED:
		return AAM_E_PERM;
	case CKR_BUFFER_TOO_SMALL:
		return AAM_E_TOOBIG;
	case CKR_ENCRYPTED_DATA_INVALID:
		return AAM_E_CRYPTO;
	default:
		return AAM_E_HSM;
	}
}

static void p11_errf(char *err, size_t errlen, CK_RV rv, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void
p11_errf(char *err, size_t errlen, CK_RV rv, const char *fmt, ...)
{
	if (err == NULL || errlen == 0)
		return;
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (rv != CKR_OK)
		snprintf(err, errlen, "%s: %s (0x%lx)", tmp, aam_p11_rv_name(rv),
		         (unsigned long)rv);
	else
		snprintf(err, errlen, "%s", tmp);
}

/* Reads the PIN file: at most one line, trailing newline removed. */
static int
p11_read_pin(const char *path, aam_secret **out, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		p11_errf(err, errlen, CKR_OK, "cannot open PIN file %s", path);
		return AAM_E_IO;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		p11_errf(err, errlen, CKR_OK, "PIN file %s is not a regular file", path);
		return AAM_E_IO;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		aam_log(AAM_LOG_WARN, "p11.pin_file_mode", AAM_F_STR("path", path),
		        AAM_F_STR("hint",
		                  "PIN file is readable by group or others; use mode 0600"));
	aam_secret *pin = aam_secret_new(P11_PIN_MAX);
	if (pin == NULL) {
		close(fd);
		return AAM_E_NOMEM;
	}
	size_t n = 0;
	uint8_t *d = aam_secret_data(pin);
	for (;;) {
		ssize_t r = read(fd, d + n, P11_PIN_MAX - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			close(fd);
			aam_secret_free(pin);
			p11_errf(err, errlen, CKR_OK, "cannot read PIN file %s", path);
			return AAM_E_IO;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == P11_PIN_MAX) {
			close(fd);
			aam_secret_free(pin);
			p11_errf(err, errlen, CKR_OK, "PIN file %s is too large", path);
			return AAM_E_TOOBIG;
		}
	}
	close(fd);
	while (n > 0 && (d[n - 1] == '\n' || d[n - 1] == '\r'))
		n--;
	if (n == 0 || memchr(d, '\n', n) != NULL) {
		aam_secret_free(pin);
		p11_errf(err, errlen, CKR_OK, "PIN file %s must hold exactly one non-empty line",
		         path);
		return AAM_E_INVAL;
	}
	aam_secret_set_len(pin, n);
	*out = pin;
	return AAM_OK;
}

static CK_FUNCTION_LIST *
p11_load_module(const char *module, char *err, size_t errlen)
{
	if (strchr(module, '/') != NULL) {
		CK_FUNCTION_LIST *f = p11_kit_module_load(module, 0);
		if (f == NULL)
			p11_errf(err, errlen, CKR_OK, "cannot load PKCS#11 module %s", module);
		return f;
	}
	/* A p11-kit module name: load the configured set and keep that one. */
	CK_FUNCTION_LIST **all = p11_kit_modules_load(NULL, 0);
	CK_FUNCTION_LIST *found = NULL;
	for (size_t i = 0; all != NULL && all[i] != NULL; i++) {
		char *name = p11_kit_module_get_name(all[i]);
		if (found == NULL && name != NULL && strcmp(name, module) == 0)
			found = all[i];
		else
			p11_kit_module_release(all[i]);
		free(name);
	}
	free(all);
	if (found == NULL)
		p11_errf(err, errlen, CKR_OK, "no p11-kit module named %s", module);
	return found;
}

static int
p11_select_token(aam_p11 *p, P11KitUri *uri, const char *uri_str, char *err, size_t errlen)
{
	CK_ULONG n = 0;
	CK_RV rv = p->f->C_GetSlotList(CK_TRUE, NULL, &n);
	if (rv != CKR_OK || n == 0) {
		p11_errf(err, errlen, rv, "no token present for %s", uri_str);
		return AAM_E_NOTFOUND;
	}
	CK_SLOT_ID *slots = calloc(n, sizeof(*slots));
	if (slots == NULL)
		return AAM_E_NOMEM;
	rv = p->f->C_GetSlotList(CK_TRUE, slots, &n);
	int matches = 0;
	for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++) {
		CK_TOKEN_INFO ti;
		if (p->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		if (p11_kit_uri_match_token_info(uri, &ti)) {
			if (matches++ == 0)
				p->slot = slots[i];
		}
	}
	free(slots);
	if (matches == 0) {
		p11_errf(err, errlen, rv, "no token matches %s", uri_str);
		return AAM_E_NOTFOUND;
	}
	if (matches > 1) {
		p11_errf(err, errlen, CKR_OK,
		         "%s matches more than one token; add token= or serial=", uri_str);
		return AAM_E_INVAL;
	}
	return AAM_OK;
}

static CK_RV
p11_login(aam_p11 *p, CK_SESSION_HANDLE s)
{
	CK_RV rv = p->f->C_Login(s, CKU_USER, aam_secret_data(p->pin), aam_secret_len(p->pin));
	return rv == CKR_USER_ALREADY_LOGGED_IN ? CKR_OK : rv;
}

static CK_RV
p11_open_session(aam_p11 *p, CK_SESSION_HANDLE *out)
{
	CK_RV rv =
	        p->f->C_OpenSession(p->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, out);
	if (rv != CKR_OK)
		return rv;
	rv = p11_login(p, *out);
	if (rv != CKR_OK) {
		p->f->C_CloseSession(*out);
		*out = CK_INVALID_HANDLE;
	}
	return rv;
}

static void
p11_probe_mechanisms(aam_p11 *p)
{
	CK_ULONG n = P11_MECH_MAX;
	if (p->f->C_GetMechanismList(p->slot, p->mechs, &n) == CKR_OK)
		p->nmechs = n;
	else
		p->nmechs = 0;
}

int
aam_p11_open(const struct aam_p11_config *cfg, aam_p11 **out, char *err, size_t errlen)
{
	*out = NULL;
	if (cfg == NULL || cfg->module == NULL || cfg->token_uri == NULL) {
		p11_errf(err, errlen, CKR_OK, "pkcs11 module and token URI are required");
		return AAM_E_CONFIG;
	}
	P11KitUri *uri = p11_kit_uri_new();
	if (uri == NULL)
		return AAM_E_NOMEM;
	int urc = p11_kit_uri_parse(cfg->token_uri, P11_KIT_URI_FOR_TOKEN, uri);
	if (urc != P11_KIT_URI_OK) {
		p11_errf(err, errlen, CKR_OK, "invalid pkcs11 URI: %s", p11_kit_uri_message(urc));
		p11_kit_uri_free(uri);
		return AAM_E_CONFIG;
	}
	if (p11_kit_uri_get_pin_value(uri) != NULL) {
		p11_errf(err, errlen, CKR_OK,
		         "the pkcs11 URI carries pin-value; put the PIN in a file (pin_file or "
		         "pin-source) instead");
		p11_kit_uri_free(uri);
		return AAM_E_CONFIG;
	}
	const char *pin_path = cfg->pin_file;
	if (pin_path == NULL) {
		pin_path = p11_kit_uri_get_pin_source(uri);
		if (pin_path != NULL && strncmp(pin_path, "file:", 5) == 0)
			pin_path += 5;
	}
	if (pin_path == NULL) {
		p11_errf(err, errlen, CKR_OK, "no PIN file: set pin_file or the URI's pin-source");
		p11_kit_uri_free(uri);
		return AAM_E_CONFIG;
	}

	aam_p11 *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		p11_kit_uri_free(uri);
		return AAM_E_NOMEM;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	pthread_mutex_init(&p->cache_lock, NULL);
	p->pool_size = cfg->pool_size ? cfg->pool_size : 4;
	if (p->pool_size > P11_POOL_MAX)
		p->pool_size = P11_POOL_MAX;

	int rc = p11_read_pin(pin_path, &p->pin, err, errlen);
	if (rc != AAM_OK)
		goto fail;

	p->f = p11_load_module(cfg->module, err, errlen);
	if (p->f == NULL) {
		rc = AAM_E_HSM;
		goto fail;
	}
	CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
	CK_RV rv = p->f->C_Initialize(&args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		p11_errf(err, errlen, rv, "C_Initialize failed for %s", cfg->module);
		rc = AAM_E_HSM;
		goto fail;
	}
	p->initialized = rv == CKR_OK;

	rc = p11_select_token(p, uri, cfg->token_uri, err, errlen);
	if (rc != AAM_OK)
		goto fail;
	p11_probe_mechanisms(p);

	for (unsigned i = 0; i < p->pool_size; i++) {
		rv = p11_open_session(p, &p->sessions[i]);
		if (rv != CKR_OK) {
			p11_errf(err, errlen, rv, "cannot open a logged-in session on %s",
			         cfg->token_uri);
			rc = aam_p11_err(rv);
			goto fail;
		}
	}
	p11_kit_uri_free(uri);
	*out = p;
	return AAM_OK;

fail:
	p11_kit_uri_free(uri);
	aam_p11_close(p);
	return rc;
}

void
aam_p11_close(aam_p11 *p)
{
	if (p == NULL)
		return;
	if (p->f != NULL) {
		for (unsigned i = 0; i < p->pool_size; i++) {
			if (p->sessions[i] != CK_INVALID_HANDLE)
				p->f->C_CloseSession(p->sessions[i]);
		}
		if (p->initialized)
			p->f->C_Finalize(NULL);
		p11_kit_module_release(p->f);
	}
	aam_secret_free(p->pin);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->cache_lock);
	free(p);
}

CK_FUNCTION_LIST *
aam_p11_module(aam_p11 *p)
{
	return p->f;
}

CK_SLOT_ID
aam_p11_slot(const aam_p11 *p)
{
	return p->slot;
}

bool
aam_p11_has_mechanism(const aam_p11 *p, CK_MECHANISM_TYPE mech)
{
	for (size_t i = 0; i < p->nmechs; i++) {
		if (p->mechs[i] == mech)
			return true;
	}
	return false;
}

static unsigned
p11_borrow(aam_p11 *p)
{
	pthread_mutex_lock(&p->lock);
	for (;;) {
		for (unsigned i = 0; i < p->pool_size; i++) {
			if (!p->busy[i]) {
				p->busy[i] = true;
				pthread_mutex_unlock(&p->lock);
				return i;
			}
		}
		pthread_cond_wait(&p->cond, &p->lock);
	}
}

static void
p11_return(aam_p11 *p, unsigned i)
{
	pthread_mutex_lock(&p->lock);
	p->busy[i] = false;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static bool
p11_session_lost(CK_RV rv)
{
	return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
	       rv == CKR_DEVICE_REMOVED || rv == CKR_USER_NOT_LOGGED_IN ||
	       rv == CKR_TOKEN_NOT_PRESENT;
}

CK_RV
aam_p11_run(aam_p11 *p, aam_p11_op op, void *ctx)
{
	unsigned i = p11_borrow(p);
	CK_RV rv = CKR_SESSION_HANDLE_INVALID;
	if (p->sessions[i] != CK_INVALID_HANDLE)
		rv = op(p->f, p->sessions[i], ctx);
	if (p11_session_lost(rv)) {
		aam_log(AAM_LOG_WARN, "p11.session_reopen", AAM_F_STR("rv", aam_p11_rv_name(rv)));
		if (p->sessions[i] != CK_INVALID_HANDLE)
			p->f->C_CloseSession(p->sessions[i]);
		p->sessions[i] = CK_INVALID_HANDLE;
		if (rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT)
			aam_p11_forget(p);
		CK_RV orv = p11_open_session(p, &p->sessions[i]);
		rv = orv == CKR_OK ? op(p->f, p->sessions[i], ctx) : orv;
	}
	p11_return(p, i);
	return rv;
}

struct find_ctx {
	CK_OBJECT_CLASS cls;
	const char *label;
	CK_OBJECT_HANDLE found[2];
	CK_ULONG n;
};

static CK_RV
find_op(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, void *vctx)
{
	struct find_ctx *c = vctx;
	CK_ATTRIBUTE tmpl[] = {
	        {CKA_CLASS, &c->cls, sizeof(c->cls)},
	        {CKA_LABEL, (void *)(uintptr_t)c->label, strlen(c->label)},
	};
	CK_RV rv = f->C_FindObjectsInit(s, tmpl, 2);
	if (rv != CKR_OK)
		return rv;
	rv = f->C_FindObjects(s, c->found, 2, &c->n);
	CK_RV frv = f->C_FindObjectsFinal(s);
	return rv != CKR_OK ? rv : frv;
}

int
aam_p11_find(aam_p11 *p, CK_OBJECT_CLASS cls, const char *label, CK_OBJECT_HANDLE *out)
{
	if (strlen(label) >= P11_LABEL_MAX)
		return AAM_E_INVAL;
	pthread_mutex_lock(&p->cache_lock);
	for (size_t i = 0; i < p->ncache; i++) {
		if (p->cache[i].cls == cls && strcmp(p->cache[i].label, label) == 0) {
			*out = p->cache[i].handle;
			pthread_mutex_unlock(&p->cache_lock);
			return AAM_OK;
		}
	}
	pthread_mutex_unlock(&p->cache_lock);

	struct find_ctx c = {.cls = cls, .label = label};
	CK_RV rv = aam_p11_run(p, find_op, &c);
	if (rv != CKR_OK)
		return aam_p11_err(rv);
	if (c.n == 0)
		return AAM_E_NOTFOUND;
	if (c.n > 1)
		return AAM_E_EXISTS;
	*out = c.found[0];
	pthread_mutex_lock(&p->cache_lock);
	if (p->ncache < P11_CACHE_MAX) {
		struct p11_cached *e = &p->cache[p->ncache++];
		e->cls = cls;
		snprintf(e->label, sizeof(e->label), "%s", label);
		e->handle = c.found[0];
	}
	pthread_mutex_unlock(&p->cache_lock);
	return AAM_OK;
}

void
aam_p11_forget(aam_p11 *p)
{
	pthread_mutex_lock(&p->cache_lock);
	p->ncache = 0;
	pthread_mutex_unlock(&p->cache_lock);
}

struct sign_ctx {
	CK_OBJECT_HANDLE key;
	const uint8_t *digest;
	uint8_t *sig;
	CK_ULONG siglen;
};

static CK_RV
sign_op(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, void *vctx)
{
	struct sign_ctx *c = vctx;
	CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
	CK_RV rv = f->C_SignInit(s, &mech, c->key);
	if (rv != CKR_OK)
		return rv;
	c->siglen = 64;
	return f->C_Sign(s, (CK_BYTE_PTR)(uintptr_t)c->digest, 32, c->sig, &c->siglen);
}

int
aam_p11_sign_ecdsa_p256(aam_p11 *p, CK_OBJECT_HANDLE key, const uint8_t digest[32], uint8_t sig[64])
{
	struct sign_ctx c = {.key = key, .digest = digest, .sig = sig};
	CK_RV rv = aam_p11_run(p, sign_op, &c);
	if (rv != CKR_OK)
		return aam_p11_err(rv);
	/* PKCS#11 ECDSA signatures are r||s of the curve's size. */
	return c.siglen == 64 ? AAM_OK : AAM_E_HSM;
}

struct attr_ctx {
	CK_OBJECT_HANDLE obj;
	CK_ATTRIBUTE attr;
};

static CK_RV
attr_op(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, void *vctx)
{
	struct attr_ctx *c = vctx;
	return f->C_GetAttributeValue(s, c->obj, &c->attr, 1);
}

int
aam_p11_ec_point(aam_p11 *p, CK_OBJECT_HANDLE pub, uint8_t point[65])
{
	uint8_t raw[80];
	struct attr_ctx c = {.obj = pub, .attr = {CKA_EC_POINT, raw, sizeof(raw)}};
	CK_RV rv = aam_p11_run(p, attr_op, &c);
	if (rv != CKR_OK)
		return aam_p11_err(rv);
	CK_ULONG n = c.attr.ulValueLen;
	/*
	 * The standard says CKA_EC_POINT is a DER OCTET STRING (04 41 04 x y);
	 * some modules return the bare point.  Accept both, nothing else.
	 */
	if (n == 67 && raw[0] == 0x04 && raw[1] == 65 && raw[2] == 0x04) {
		memcpy(point, raw + 2, 65);
		return AAM_OK;
	}
	if (n == 65 && raw[0] == 0x04) {
		memcpy(point, raw, 65);
		return AAM_OK;
	}
	return AAM_E_HSM;
}

int
aam_p11_get_bool(aam_p11 *p, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type, bool *out)
{
	CK_BBOOL v = CK_FALSE;
	struct attr_ctx c = {.obj = obj, .attr = {type, &v, sizeof(v)}};
	CK_RV rv = aam_p11_run(p, attr_op, &c);
	if (rv != CKR_OK)
		return aam_p11_err(rv);
	*out = v == CK_TRUE;
	return AAM_OK;
}
