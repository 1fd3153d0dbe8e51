/*
 * PKCS#11 objects: the (class, label) handle cache, searches, attribute
 * reads, destruction, and the sign / HMAC / random operations, all run on
 * the session pool of p11.c.  See p11.h for the contract.
 */
#include "aam/err.h"
#include "common/p11.h"
#include "common/p11_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	if (rv == CKR_OK && frv == CKR_OK && c->n == 0 && !aam_p11_session_is_user(f, s))
		return CKR_USER_NOT_LOGGED_IN; /* private objects are hidden: log in again */
	return rv != CKR_OK ? rv : frv;
}

static uint32_t
p11_label_hash(CK_OBJECT_CLASS cls, const char *label)
{
	/* FNV-1a: only to skip most strcmp calls in the cache scan. */
	uint32_t h = 2166136261u ^ (uint32_t)cls;
	for (const unsigned char *c = (const unsigned char *)label; *c != '\0'; c++) {
		h ^= *c;
		h *= 16777619u;
	}
	return h;
}

static bool
p11_cache_lookup(aam_p11 *p, CK_OBJECT_CLASS cls, uint32_t hash, const char *label,
                 CK_OBJECT_HANDLE *out)
{
	bool hit = false;
	pthread_mutex_lock(&p->cache_lock);
	for (size_t i = 0; i < p->ncache; i++) {
		const struct p11_cached *e = &p->cache[i];
		if (e->hash == hash && e->cls == cls && strcmp(e->label, label) == 0) {
			*out = e->handle;
			hit = true;
			break;
		}
	}
	pthread_mutex_unlock(&p->cache_lock);
	return hit;
}

static void
p11_cache_add(aam_p11 *p, CK_OBJECT_CLASS cls, uint32_t hash, const char *label, CK_OBJECT_HANDLE h)
{
	char *copy = strdup(label);
	if (copy == NULL)
		return; /* not cached: the next lookup searches again */
	pthread_mutex_lock(&p->cache_lock);
	for (size_t i = 0; i < p->ncache; i++) {
		/* Another thread found it meanwhile. */
		if (p->cache[i].hash == hash && p->cache[i].cls == cls &&
		    strcmp(p->cache[i].label, label) == 0) {
			pthread_mutex_unlock(&p->cache_lock);
			free(copy);
			return;
		}
	}
	if (p->ncache == p->cache_cap && p->cache_cap < P11_CACHE_MAX) {
		size_t cap = p->cache_cap ? p->cache_cap * 2 : 32;
		struct p11_cached *n = realloc(p->cache, cap * sizeof(*n));
		if (n != NULL) {
			p->cache = n;
			p->cache_cap = cap;
		}
	}
	if (p->ncache < p->cache_cap) {
		p->cache[p->ncache++] =
		        (struct p11_cached){.cls = cls, .hash = hash, .label = copy, .handle = h};
		copy = NULL;
	}
	pthread_mutex_unlock(&p->cache_lock);
	free(copy);
}

int
aam_p11_find(aam_p11 *p, CK_OBJECT_CLASS cls, const char *label, CK_OBJECT_HANDLE *out)
{
	if (label == NULL || label[0] == '\0' || strlen(label) >= P11_LABEL_MAX)
		return AAM_E_INVAL;
	uint32_t hash = p11_label_hash(cls, label);
	if (p11_cache_lookup(p, cls, hash, label, out))
		return AAM_OK;

	struct find_ctx c = {.cls = cls, .label = label};
	CK_RV rv = aam_p11_run(p, find_op, &c);
	if (rv != CKR_OK)
		return aam_p11_err(rv);
	if (c.n == 0)
		return AAM_E_NOTFOUND;
	if (c.n > 1)
		return AAM_E_EXISTS;
	*out = c.found[0];
	p11_cache_add(p, cls, hash, label, c.found[0]);
	return AAM_OK;
}

void
aam_p11_forget(aam_p11 *p)
{
	pthread_mutex_lock(&p->cache_lock);
	for (size_t i = 0; i < p->ncache; i++)
		free(p->cache[i].label);
	p->ncache = 0;
	pthread_mutex_unlock(&p->cache_lock);
	/* Whatever a caller kept from an object may be stale now (see aam_p11_generation). */
	pthread_mutex_lock(&p->lock);
	p->generation++;
	pthread_mutex_unlock(&p->lock);
}

void
aam_p11_forget_label(aam_p11 *p, CK_OBJECT_CLASS cls, const char *label)
{
	uint32_t hash = p11_label_hash(cls, label);
	pthread_mutex_lock(&p->cache_lock);
	for (size_t i = 0; i < p->ncache; i++) {
		struct p11_cached *e = &p->cache[i];
		if (e->hash == hash && e->cls == cls && strcmp(e->label, label) == 0) {
			free(e->label);
			*e = p->cache[--p->ncache];
			break;
		}
	}
	pthread_mutex_unlock(&p->cache_lock);
}

struct find_all_ctx {
	const CK_ATTRIBUTE *tmpl;
	CK_ULONG ntmpl;
	CK_OBJECT_HANDLE *out;
	CK_ULONG max, n;
};

static CK_RV
find_all_op(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, void *vctx)
{
	struct find_all_ctx *c = vctx;
	c->n = 0;
	CK_RV rv = f->C_FindObjectsInit(s, (CK_ATTRIBUTE_PTR)(uintptr_t)c->tmpl, c->ntmpl);
	if (rv != CKR_OK)
		return rv;
	while (rv == CKR_OK && c->n < c->max) {
		CK_ULONG got = 0;
		rv = f->C_FindObjects(s, c->out + c->n, c->max - c->n, &got);
		if (rv != CKR_OK || got == 0)
			break;
		c->n += got;
	}
	CK_RV frv = f->C_FindObjectsFinal(s);
	if (rv == CKR_OK && frv == CKR_OK && !aam_p11_session_is_user(f, s))
		return CKR_USER_NOT_LOGGED_IN; /* private objects are hidden: log in again */
	return rv != CKR_OK ? rv : frv;
}

int
aam_p11_find_all(aam_p11 *p, const CK_ATTRIBUTE *tmpl, CK_ULONG ntmpl, CK_OBJECT_HANDLE *out,
                 size_t max, size_t *n)
{
	*n = 0;
	struct find_all_ctx c = {.tmpl = tmpl, .ntmpl = ntmpl, .out = out, .max = max};
	CK_RV rv = aam_p11_run(p, find_all_op, &c);
	if (rv != CKR_OK)
		return aam_p11_err(rv);
	*n = c.n;
	return AAM_OK;
}

struct destroy_ctx {
	CK_OBJECT_HANDLE obj;
};

static CK_RV
destroy_op(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, void *vctx)
{
	struct destroy_ctx *c = vctx;
	return f->C_DestroyObject(s, c->obj);
}

int
aam_p11_destroy(aam_p11 *p, CK_OBJECT_HANDLE obj)
{
	struct destroy_ctx c = {.obj = obj};
	CK_RV rv = aam_p11_run(p, destroy_op, &c);
	/* The module may hand the number to the next object it creates. */
	aam_p11_forget(p);
	return aam_p11_err(rv);
}

struct random_ctx {
	uint8_t *out;
	size_t len;
};

static CK_RV
random_op(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, void *vctx)
{
	struct random_ctx *c = vctx;
	return f->C_GenerateRandom(s, c->out, c->len);
}

int
aam_p11_random(aam_p11 *p, uint8_t *out, size_t len)
{
	struct random_ctx c = {.out = out, .len = len};
	return aam_p11_err(aam_p11_run(p, random_op, &c));
}

struct hmac_ctx {
	CK_OBJECT_HANDLE key;
	const uint8_t *data;
	size_t len;
	uint8_t *mac;
	CK_ULONG maclen;
};

static CK_RV
hmac_op(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, void *vctx)
{
	struct hmac_ctx *c = vctx;
	CK_MECHANISM mech = {CKM_SHA256_HMAC, NULL, 0};
	CK_RV rv = f->C_SignInit(s, &mech, c->key);
	if (rv != CKR_OK)
		return rv;
	c->maclen = 32;
	return f->C_Sign(s, (CK_BYTE_PTR)(uintptr_t)c->data, c->len, c->mac, &c->maclen);
}

int
aam_p11_hmac_sha256(aam_p11 *p, CK_OBJECT_HANDLE key, const uint8_t *data, size_t len,
                    uint8_t mac[32])
{
	static const uint8_t empty[1];
	struct hmac_ctx c = {.key = key, .data = len ? data : empty, .len = len, .mac = mac};
	CK_RV rv = aam_p11_run(p, hmac_op, &c);
	if (rv != CKR_OK)
		return aam_p11_err(rv);
	return c.maclen == 32 ? AAM_OK : AAM_E_HSM;
}

struct sign_ctx {
	CK_OBJECT_HANDLE key;
	const uint8_t *digest;
	/*
	 * Room for any curve (P-521 gives 132 bytes): with a buffer that is too
	 * small, C_Sign answers CKR_BUFFER_TOO_SMALL and leaves the operation
	 * active on the session, so a key of the wrong size would poison it.
	 */
	uint8_t sig[144];
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
	c->siglen = sizeof(c->sig);
	return f->C_Sign(s, (CK_BYTE_PTR)(uintptr_t)c->digest, 32, c->sig, &c->siglen);
}

int
aam_p11_sign_ecdsa_p256(aam_p11 *p, CK_OBJECT_HANDLE key, const uint8_t digest[32], uint8_t sig[64])
{
	struct sign_ctx c = {.key = key, .digest = digest};
	CK_RV rv = aam_p11_run(p, sign_op, &c);
	if (rv != CKR_OK)
		return aam_p11_err(rv);
	/* PKCS#11 ECDSA signatures are r||s of the curve's size. */
	if (c.siglen != 64)
		return AAM_E_HSM;
	memcpy(sig, c.sig, 64);
	return AAM_OK;
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
	/* A module that answers with another size did not give us a CK_BBOOL. */
	if (c.attr.ulValueLen != sizeof(v))
		return c.attr.ulValueLen == CK_UNAVAILABLE_INFORMATION ? AAM_E_NOTFOUND : AAM_E_HSM;
	*out = v == CK_TRUE;
	return AAM_OK;
}

int
aam_p11_get_attr(aam_p11 *p, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type, void *buf, size_t cap,
                 size_t *len)
{
	*len = 0;
	struct attr_ctx c = {.obj = obj, .attr = {type, NULL, 0}};
	CK_RV rv = aam_p11_run(p, attr_op, &c);
	if (rv != CKR_OK)
		return aam_p11_err(rv);
	if (c.attr.ulValueLen == CK_UNAVAILABLE_INFORMATION)
		return AAM_E_NOTFOUND;
	*len = c.attr.ulValueLen;
	if (c.attr.ulValueLen > cap)
		return AAM_E_TOOBIG;
	c.attr.pValue = buf;
	c.attr.ulValueLen = cap;
	rv = aam_p11_run(p, attr_op, &c);
	if (rv != CKR_OK) {
		*len = 0;
		return aam_p11_err(rv);
	}
	*len = c.attr.ulValueLen;
	return AAM_OK;
}
