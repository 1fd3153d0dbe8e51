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

#include "common/p11_int.h"

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
	case CKR_ATTRIBUTE_VALUE_INVALID:
		return "CKR_ATTRIBUTE_VALUE_INVALID";
	case CKR_ATTRIBUTE_READ_ONLY:
		return "CKR_ATTRIBUTE_READ_ONLY";
	case CKR_KEY_SIZE_RANGE:
		return "CKR_KEY_SIZE_RANGE";
	case CKR_KEY_TYPE_INCONSISTENT:
		return "CKR_KEY_TYPE_INCONSISTENT";
	case CKR_KEY_FUNCTION_NOT_PERMITTED:
		return "CKR_KEY_FUNCTION_NOT_PERMITTED";
	case CKR_MECHANISM_PARAM_INVALID:
		return "CKR_MECHANISM_PARAM_INVALID";
	case CKR_OPERATION_ACTIVE:
		return "CKR_OPERATION_ACTIVE";
	case CKR_OPERATION_NOT_INITIALIZED:
		return "CKR_OPERATION_NOT_INITIALIZED";
	case CKR_SESSION_READ_ONLY:
		return "CKR_SESSION_READ_ONLY";
	case CKR_SESSION_COUNT:
		return "CKR_SESSION_COUNT";
	case CKR_TOKEN_WRITE_PROTECTED:
		return "CKR_TOKEN_WRITE_PROTECTED";
	case CKR_USER_TYPE_INVALID:
		return "CKR_USER_TYPE_INVALID";
	case CKR_USER_PIN_NOT_INITIALIZED:
		return "CKR_USER_PIN_NOT_INITIALIZED";
	case CKR_ENCRYPTED_DATA_LEN_RANGE:
		return "CKR_ENCRYPTED_DATA_LEN_RANGE";
	case CKR_SIGNATURE_INVALID:
		return "CKR_SIGNATURE_INVALID";
	case CKR_FUNCTION_NOT_SUPPORTED:
		return "CKR_FUNCTION_NOT_SUPPORTED";
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
	case CKR_ATTRIBUTE_VALUE_INVALID:
	case CKR_TEMPLATE_INCONSISTENT:
	case CKR_TEMPLATE_INCOMPLETE:
		return AAM_E_INVAL;
	case CKR_MECHANISM_INVALID:
	case CKR_MECHANISM_PARAM_INVALID:
	case CKR_FUNCTION_NOT_SUPPORTED:
	case CKR_KEY_SIZE_RANGE:
		return AAM_E_UNSUPPORTED;
	case CKR_ATTRIBUTE_SENSITIVE:
	case CKR_KEY_FUNCTION_NOT_PERMITTED:
		return AAM_E_PERM;
	case CKR_ATTRIBUTE_TYPE_INVALID:
	case CKR_OBJECT_HANDLE_INVALID:
	case CKR_KEY_HANDLE_INVALID:
		return AAM_E_NOTFOUND;
	case CKR_PIN_INCORRECT:
	case CKR_PIN_LOCKED:
		return AAM_E_PERM;
	case CKR_BUFFER_TOO_SMALL:
		return AAM_E_TOOBIG;
	case CKR_ENCRYPTED_DATA_INVALID:
	case CKR_ENCRYPTED_DATA_LEN_RANGE:
	case CKR_SIGNATURE_INVALID:
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

/*
 * Asks for the count first: a fixed-size buffer would make a module with
 * many mechanisms answer CKR_BUFFER_TOO_SMALL and look as if it had none.
 */
static void
p11_probe_mechanisms(aam_p11 *p)
{
	p->nmechs = 0;
	CK_ULONG n = 0;
	CK_RV rv = p->f->C_GetMechanismList(p->slot, NULL, &n);
	if (rv != CKR_OK || n == 0 || n > P11_MECH_MAX) {
		aam_log(AAM_LOG_WARN, "p11.mechanisms", AAM_F_STR("rv", aam_p11_rv_name(rv)),
		        AAM_F_UINT("count", n));
		return;
	}
	p->mechs = calloc(n, sizeof(*p->mechs));
	if (p->mechs == NULL)
		return;
	rv = p->f->C_GetMechanismList(p->slot, p->mechs, &n);
	if (rv == CKR_OK)
		p->nmechs = n;
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
	for (size_t i = 0; i < p->ncache; i++)
		free(p->cache[i].label);
	free(p->cache);
	free(p->mechs);
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

uint64_t
aam_p11_generation(aam_p11 *p)
{
	pthread_mutex_lock(&p->lock);
	uint64_t g = p->generation;
	pthread_mutex_unlock(&p->lock);
	return g;
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
p11_borrow(aam_p11 *p, CK_SESSION_HANDLE *h)
{
	pthread_mutex_lock(&p->lock);
	for (;;) {
		for (unsigned i = 0; i < p->pool_size; i++) {
			if (!p->busy[i]) {
				p->busy[i] = true;
				*h = p->sessions[i];
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
	       rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_OPERATION_ACTIVE;
}

/* See p11_int.h. */
bool
aam_p11_session_is_user(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s)
{
	CK_SESSION_INFO si;
	if (f->C_GetSessionInfo(s, &si) != CKR_OK)
		return false;
	return si.state == CKS_RO_USER_FUNCTIONS || si.state == CKS_RW_USER_FUNCTIONS;
}

/*
 * Replaces slot I's session.  Runs under p->lock: when every session was
 * closed behind our back (C_CloseAllSessions, a token logout), the module
 * hands out the old handle numbers again, so the new handle may equal a
 * stale one still held by another slot.  That slot must then forget its
 * number instead of closing it later (which would close ours), and no other
 * slot may open or close a session while we compare.
 */
static CK_RV
p11_reopen_locked(aam_p11 *p, unsigned i, CK_SESSION_HANDLE old)
{
	if (old != CK_INVALID_HANDLE && p->sessions[i] == old)
		p->f->C_CloseSession(old);
	p->sessions[i] = CK_INVALID_HANDLE;
	CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
	CK_RV rv = p11_open_session(p, &h);
	if (rv != CKR_OK)
		return rv;
	for (unsigned j = 0; j < p->pool_size; j++) {
		if (j != i && p->sessions[j] == h)
			p->sessions[j] = CK_INVALID_HANDLE;
	}
	p->sessions[i] = h;
	return CKR_OK;
}

CK_RV
aam_p11_run(aam_p11 *p, aam_p11_op op, void *ctx)
{
	CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
	unsigned i = p11_borrow(p, &h);
	CK_RV rv = CKR_SESSION_HANDLE_INVALID;
	if (h != CK_INVALID_HANDLE)
		rv = op(p->f, h, ctx);
	if ((rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID) &&
	    !aam_p11_session_is_user(p->f, h))
		rv = CKR_USER_NOT_LOGGED_IN;
	if (p11_session_lost(rv)) {
		aam_log(AAM_LOG_WARN, "p11.session_reopen", AAM_F_STR("rv", aam_p11_rv_name(rv)));
		/* A new login may renumber private objects: every cached handle is suspect. */
		aam_p11_forget(p);
		pthread_mutex_lock(&p->lock);
		CK_RV orv = p11_reopen_locked(p, i, h);
		h = p->sessions[i];
		p->generation++;
		pthread_mutex_unlock(&p->lock);
		rv = orv == CKR_OK ? op(p->f, h, ctx) : orv;
	}
	p11_return(p, i);
	return rv;
}
