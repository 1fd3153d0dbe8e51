/*
 * The agent's TPM: connection, the storage primary, the signing key and
 * the AK (created once, kept as blobs in the state folder), and TPM2_Sign
 * for DPoP proofs.  See agent/tpm.h.
 */
#include "agent/tpm_int.h"
#include "aam/err.h"
#include "common/log.h"
#include "common/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#define BLOB_MAX 4096

/* ---- small helpers ---------------------------------------------------------- */

int
agent_tpm_fail(TSS2_RC rc, const char *what, char *msg, size_t msglen)
{
	const char *why = Tss2_RC_Decode(rc);
	/* Without a resource manager the TPM has three object slots: say so. */
	if ((rc & 0xfffu) == TPM2_RC_OBJECT_MEMORY)
		why = "the TPM has no free object slot (leftover transient objects, or no "
		      "resource manager)";
	if (msg != NULL && msglen > 0)
		snprintf(msg, msglen, "%s failed: %s (0x%x)", what, why != NULL ? why : "?",
		         (unsigned)rc);
	return AAM_E_HSM;
}

void
agent_tpm_flush(struct agent_tpm *t, ESYS_TR *h)
{
	if (*h == ESYS_TR_NONE)
		return;
	TSS2_RC rc = Esys_FlushContext(t->esys, *h);
	if (rc != TSS2_RC_SUCCESS)
		aam_log(AAM_LOG_WARN, "agent.tpm_flush_failed",
		        AAM_F_STR("why", Tss2_RC_Decode(rc)));
	*h = ESYS_TR_NONE;
}

int
agent_tpm_put_public(struct aam_buf *b, const TPM2B_PUBLIC *p)
{
	uint8_t tmp[sizeof(TPM2B_PUBLIC)];
	size_t off = 0;
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(p, tmp, sizeof(tmp), &off) != TSS2_RC_SUCCESS)
		return AAM_E_INTERNAL;
	return aam_buf_append(b, tmp, off);
}

/* The TCG "SRK" template (TCG TPM v2.0 Provisioning Guidance, ECC P-256). */
static void
srk_template(TPM2B_PUBLIC *p)
{
	memset(p, 0, sizeof(*p));
	TPMT_PUBLIC *a = &p->publicArea;
	a->type = TPM2_ALG_ECC;
	a->nameAlg = TPM2_ALG_SHA256;
	a->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
	                      TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
	                      TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
	a->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
	a->parameters.eccDetail.symmetric.keyBits.aes = 128;
	a->parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	a->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
	a->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	a->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	a->unique.ecc.x.size = 32;
	a->unique.ecc.y.size = 32;
}

/* The agent key (RESTRICTED false) or the AK (true): ECDSA-SHA256 P-256 signing keys. */
static void
signer_template(TPM2B_PUBLIC *p, bool restricted)
{
	memset(p, 0, sizeof(*p));
	TPMT_PUBLIC *a = &p->publicArea;
	a->type = TPM2_ALG_ECC;
	a->nameAlg = TPM2_ALG_SHA256;
	a->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
	                      TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
	                      TPMA_OBJECT_SIGN_ENCRYPT;
	if (restricted)
		a->objectAttributes |= TPMA_OBJECT_RESTRICTED;
	a->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
	a->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
	a->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	a->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	a->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
}

/*
 * Whether a loaded blob is the kind of key we create: a P-256 signing key
 * that cannot leave the TPM (RESTRICTED as asked).  Blob files are ours,
 * but a swapped file must not turn into a key the server would refuse
 * only after a round trip.
 */
static bool
signer_ok(const TPM2B_PUBLIC *p, bool restricted)
{
	const TPMT_PUBLIC *a = &p->publicArea;
	TPMA_OBJECT need = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
	                   TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_SIGN_ENCRYPT;
	return a->type == TPM2_ALG_ECC && a->nameAlg == TPM2_ALG_SHA256 &&
	       a->parameters.eccDetail.curveID == TPM2_ECC_NIST_P256 &&
	       (a->objectAttributes & need) == need &&
	       !(a->objectAttributes & TPMA_OBJECT_DECRYPT) &&
	       !!(a->objectAttributes & TPMA_OBJECT_RESTRICTED) == restricted &&
	       a->unique.ecc.x.size <= 32 && a->unique.ecc.y.size <= 32;
}

int
agent_tpm_srk(struct agent_tpm *t, ESYS_TR *out, char *msg, size_t msglen)
{
	TPM2B_PUBLIC tmpl;
	srk_template(&tmpl);
	TPM2B_SENSITIVE_CREATE sens;
	memset(&sens, 0, sizeof(sens));
	TPM2B_DATA outside = {.size = 0};
	TPML_PCR_SELECTION pcrs = {.count = 0};
	TPM2B_PUBLIC *opub = NULL;
	TPM2B_CREATION_DATA *cd = NULL;
	TPM2B_DIGEST *ch = NULL;
	TPMT_TK_CREATION *tk = NULL;
	TSS2_RC rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	                                ESYS_TR_NONE, &sens, &tmpl, &outside, &pcrs, out, &opub,
	                                &cd, &ch, &tk);
	Esys_Free(opub);
	Esys_Free(cd);
	Esys_Free(ch);
	Esys_Free(tk);
	if (rc != TSS2_RC_SUCCESS) {
		*out = ESYS_TR_NONE;
		return agent_tpm_fail(rc, "TPM2_CreatePrimary (storage key)", msg, msglen);
	}
	return AAM_OK;
}

/* ---- blob files ---------------------------------------------------------------- */

struct blob_paths {
	char key_pub[1100], key_priv[1100], ak_pub[1100], ak_priv[1100], lock[1100];
};

static int
blob_paths(const char *dir, struct blob_paths *p)
{
	int n = 0;
	n |= snprintf(p->key_pub, sizeof(p->key_pub), "%s/key.pub", dir) >= (int)sizeof(p->key_pub);
	n |= snprintf(p->key_priv, sizeof(p->key_priv), "%s/key.priv", dir) >=
	     (int)sizeof(p->key_priv);
	n |= snprintf(p->ak_pub, sizeof(p->ak_pub), "%s/ak.pub", dir) >= (int)sizeof(p->ak_pub);
	n |= snprintf(p->ak_priv, sizeof(p->ak_priv), "%s/ak.priv", dir) >= (int)sizeof(p->ak_priv);
	n |= snprintf(p->lock, sizeof(p->lock), "%s/.lock", dir) >= (int)sizeof(p->lock);
	return n ? AAM_E_TOOBIG : AAM_OK;
}

/* mkdir -p with mode 0700 for the last component. */
static int
make_dir(const char *dir, char *msg, size_t msglen)
{
	char tmp[1024];
	if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp))
		return AAM_E_TOOBIG;
	for (char *p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
			snprintf(msg, msglen, "cannot create %s: %s", tmp, strerror(errno));
			return AAM_E_IO;
		}
		*p = '/';
	}
	if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
		snprintf(msg, msglen, "cannot create the state folder %s: %s", dir,
		         strerror(errno));
		return AAM_E_IO;
	}
	return AAM_OK;
}

static int
read_small(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? AAM_E_NOTFOUND : AAM_E_IO;
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			close(fd);
			return AAM_E_IO;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == cap) {
			close(fd);
			return AAM_E_TOOBIG;
		}
	}
	close(fd);
	*len = n;
	return AAM_OK;
}

/* Writes PATH atomically (temporary file, fsync, rename), mode 0600. */
static int
write_atomic(const char *path, const uint8_t *data, size_t len)
{
	char tmp[1200];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return AAM_E_TOOBIG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return AAM_E_IO;
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(fd);
			unlink(tmp);
			return AAM_E_IO;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return AAM_E_IO;
	}
	return AAM_OK;
}

static int
load_pub(const char *path, TPM2B_PUBLIC *out)
{
	uint8_t buf[BLOB_MAX];
	size_t n = 0, off = 0;
	int rc = read_small(path, buf, sizeof(buf), &n);
	if (rc != AAM_OK)
		return rc;
	memset(out, 0, sizeof(*out));
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, n, &off, out) != TSS2_RC_SUCCESS || off != n)
		return AAM_E_PARSE;
	return AAM_OK;
}

static int
load_priv(const char *path, TPM2B_PRIVATE *out)
{
	uint8_t buf[BLOB_MAX];
	size_t n = 0, off = 0;
	int rc = read_small(path, buf, sizeof(buf), &n);
	if (rc != AAM_OK)
		return rc;
	memset(out, 0, sizeof(*out));
	rc = Tss2_MU_TPM2B_PRIVATE_Unmarshal(buf, n, &off, out) == TSS2_RC_SUCCESS && off == n
	             ? AAM_OK
	             : AAM_E_PARSE;
	aam_wipe(buf, sizeof(buf));
	return rc;
}

static int
save_pair(const char *pub_path, const TPM2B_PUBLIC *pub, const char *priv_path,
          const TPM2B_PRIVATE *priv)
{
	uint8_t buf[sizeof(TPM2B_PUBLIC) + sizeof(TPM2B_PRIVATE)];
	size_t off = 0;
	if (Tss2_MU_TPM2B_PRIVATE_Marshal(priv, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS)
		return AAM_E_INTERNAL;
	/* The private file first: a public file alone means "not created yet" to nobody. */
	int rc = write_atomic(priv_path, buf, off);
	aam_wipe(buf, sizeof(buf));
	if (rc != AAM_OK)
		return rc;
	off = 0;
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS)
		return AAM_E_INTERNAL;
	return write_atomic(pub_path, buf, off);
}

/* TPM2_Create of a signing key under SRK. */
static int
create_signer(struct agent_tpm *t, ESYS_TR srk, bool restricted, TPM2B_PUBLIC *pub,
              TPM2B_PRIVATE *priv, char *msg, size_t msglen)
{
	TPM2B_PUBLIC tmpl;
	signer_template(&tmpl, restricted);
	TPM2B_SENSITIVE_CREATE sens;
	memset(&sens, 0, sizeof(sens));
	TPM2B_DATA outside = {.size = 0};
	TPML_PCR_SELECTION pcrs = {.count = 0};
	TPM2B_PRIVATE *opriv = NULL;
	TPM2B_PUBLIC *opub = NULL;
	TPM2B_CREATION_DATA *cd = NULL;
	TPM2B_DIGEST *ch = NULL;
	TPMT_TK_CREATION *tk = NULL;
	TSS2_RC rc = Esys_Create(t->esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens,
	                         &tmpl, &outside, &pcrs, &opriv, &opub, &cd, &ch, &tk);
	if (rc == TSS2_RC_SUCCESS) {
		*pub = *opub;
		*priv = *opriv;
		aam_wipe(opriv, sizeof(*opriv));
	}
	Esys_Free(opriv);
	Esys_Free(opub);
	Esys_Free(cd);
	Esys_Free(ch);
	Esys_Free(tk);
	if (rc != TSS2_RC_SUCCESS)
		return agent_tpm_fail(rc, restricted ? "TPM2_Create (AK)" : "TPM2_Create (key)",
		                      msg, msglen);
	return AAM_OK;
}

/*
 * Loads both blobs from P or, when none exists, creates the keys and
 * writes them.  A half-present set is an error: overwriting it could
 * replace a key a registration already relies on.  Caller holds the
 * folder lock.
 */
static int
keys_load_or_create(struct agent_tpm *t, const struct blob_paths *p, ESYS_TR srk, char *msg,
                    size_t msglen)
{
	const char *files[] = {p->key_pub, p->key_priv, p->ak_pub, p->ak_priv};
	int present = 0;
	for (size_t i = 0; i < 4; i++)
		present += access(files[i], F_OK) == 0;
	if (present == 0) {
		int rc = create_signer(t, srk, false, &t->key_pub, &t->key_priv, msg, msglen);
		if (rc == AAM_OK)
			rc = create_signer(t, srk, true, &t->ak_pub, &t->ak_priv, msg, msglen);
		if (rc != AAM_OK)
			return rc;
		rc = save_pair(p->ak_pub, &t->ak_pub, p->ak_priv, &t->ak_priv);
		if (rc == AAM_OK)
			rc = save_pair(p->key_pub, &t->key_pub, p->key_priv, &t->key_priv);
		if (rc != AAM_OK) {
			snprintf(msg, msglen, "cannot write the key blobs to the state folder");
			return rc;
		}
		aam_log(AAM_LOG_INFO, "agent.tpm_keys_created", AAM_F_STR("file", p->key_pub));
		return AAM_OK;
	}
	if (present != 4) {
		snprintf(msg, msglen,
		         "the state folder holds only some of key.pub, key.priv, ak.pub, ak.priv; "
		         "restore them or remove them all to create new keys");
		return AAM_E_NOTFOUND;
	}
	int rc = load_pub(p->key_pub, &t->key_pub);
	if (rc == AAM_OK)
		rc = load_priv(p->key_priv, &t->key_priv);
	if (rc == AAM_OK)
		rc = load_pub(p->ak_pub, &t->ak_pub);
	if (rc == AAM_OK)
		rc = load_priv(p->ak_priv, &t->ak_priv);
	if (rc != AAM_OK) {
		snprintf(msg, msglen, "cannot read the key blobs in the state folder (%s)",
		         aam_err_code(rc));
		return rc;
	}
	if (!signer_ok(&t->key_pub, false) || !signer_ok(&t->ak_pub, true)) {
		snprintf(msg, msglen, "the key blobs in the state folder are not the agent's keys");
		return AAM_E_PARSE;
	}
	return AAM_OK;
}

static int
load_key(struct agent_tpm *t, ESYS_TR srk, const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv,
         ESYS_TR *out, const char *what, char *msg, size_t msglen)
{
	TSS2_RC rc = Esys_Load(t->esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, priv,
	                       pub, out);
	if (rc != TSS2_RC_SUCCESS) {
		*out = ESYS_TR_NONE;
		return agent_tpm_fail(rc, what, msg, msglen);
	}
	return AAM_OK;
}

int
agent_tpm_load_ak(struct agent_tpm *t, char *msg, size_t msglen)
{
	if (t->ak != ESYS_TR_NONE)
		return AAM_OK;
	ESYS_TR srk = ESYS_TR_NONE;
	int rc = agent_tpm_srk(t, &srk, msg, msglen);
	if (rc == AAM_OK)
		rc = load_key(t, srk, &t->ak_pub, &t->ak_priv, &t->ak, "TPM2_Load (AK)", msg,
		              msglen);
	agent_tpm_flush(t, &srk);
	return rc;
}

/* ---- open / close ------------------------------------------------------------ */

static int
tpm_connect(struct agent_tpm *t, const char *tcti, char *msg, size_t msglen)
{
	TSS2_RC rc = Tss2_TctiLdr_Initialize(tcti, &t->tcti);
	if (rc != TSS2_RC_SUCCESS) {
		t->tcti = NULL;
		return agent_tpm_fail(rc, "opening the TCTI", msg, msglen);
	}
	rc = Esys_Initialize(&t->esys, t->tcti, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		t->esys = NULL;
		return agent_tpm_fail(rc, "Esys_Initialize", msg, msglen);
	}
	return AAM_OK;
}

int
agent_tpm_open(const char *tcti, const char *state_dir, struct agent_tpm **out, char *msg,
               size_t msglen)
{
	if (tcti == NULL || state_dir == NULL || out == NULL || tcti[0] == '\0' ||
	    state_dir[0] == '\0')
		return AAM_E_INVAL;
	*out = NULL;
	struct blob_paths p;
	if (blob_paths(state_dir, &p) != AAM_OK) {
		snprintf(msg, msglen, "the state folder path is too long");
		return AAM_E_TOOBIG;
	}
	int rc = make_dir(state_dir, msg, msglen);
	if (rc != AAM_OK)
		return rc;
	struct agent_tpm *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return AAM_E_NOMEM;
	pthread_mutex_init(&t->mu, NULL);
	t->key = ESYS_TR_NONE;
	t->ak = ESYS_TR_NONE;
	t->ek = ESYS_TR_NONE;
	rc = tpm_connect(t, tcti, msg, msglen);

	/* Two agents starting at once on one folder must not both create keys. */
	int lock = -1;
	if (rc == AAM_OK) {
		lock = open(p.lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (lock < 0 || flock(lock, LOCK_EX) != 0) {
			snprintf(msg, msglen, "cannot lock the state folder %s", state_dir);
			rc = AAM_E_IO;
		}
	}
	ESYS_TR srk = ESYS_TR_NONE;
	if (rc == AAM_OK)
		rc = agent_tpm_srk(t, &srk, msg, msglen);
	if (rc == AAM_OK)
		rc = keys_load_or_create(t, &p, srk, msg, msglen);
	if (lock >= 0)
		close(lock);
	if (rc == AAM_OK)
		rc = load_key(t, srk, &t->key_pub, &t->key_priv, &t->key, "TPM2_Load (key)", msg,
		              msglen);
	if (t->esys != NULL)
		agent_tpm_flush(t, &srk);
	if (rc != AAM_OK) {
		agent_tpm_close(t);
		return rc;
	}
	/* TPM2B_ECC_PARAMETERs may drop leading zero bytes: left-pad to 32. */
	const TPMS_ECC_POINT *pt = &t->key_pub.publicArea.unique.ecc;
	memcpy(t->x + (32 - pt->x.size), pt->x.buffer, pt->x.size);
	memcpy(t->y + (32 - pt->y.size), pt->y.buffer, pt->y.size);
	*out = t;
	return AAM_OK;
}

void
agent_tpm_close(struct agent_tpm *t)
{
	if (t == NULL)
		return;
	if (t->esys != NULL) {
		agent_tpm_end(t);
		agent_tpm_flush(t, &t->key);
		Esys_Finalize(&t->esys);
	}
	if (t->tcti != NULL)
		Tss2_TctiLdr_Finalize(&t->tcti);
	pthread_mutex_destroy(&t->mu);
	aam_wipe(&t->key_priv, sizeof(t->key_priv));
	aam_wipe(&t->ak_priv, sizeof(t->ak_priv));
	free(t);
}

void
agent_tpm_key_xy(const struct agent_tpm *t, uint8_t x[32], uint8_t y[32])
{
	memcpy(x, t->x, 32);
	memcpy(y, t->y, 32);
}

/* ---- signing -------------------------------------------------------------------- */

int
agent_tpm_sign(struct agent_tpm *t, const uint8_t digest[32], uint8_t sig[64], char *msg,
               size_t msglen)
{
	TPM2B_DIGEST d = {.size = 32};
	memcpy(d.buffer, digest, 32);
	TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_ECDSA};
	scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	/*
	 * The key is not restricted, so the TPM signs any digest with a null
	 * ticket: the digest is computed outside, as JOSE needs.
	 */
	TPMT_TK_HASHCHECK ticket = {.tag = TPM2_ST_HASHCHECK, .hierarchy = TPM2_RH_NULL};
	TPMT_SIGNATURE *s = NULL;
	pthread_mutex_lock(&t->mu);
	TSS2_RC rc = Esys_Sign(t->esys, t->key, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &d,
	                       &scheme, &ticket, &s);
	pthread_mutex_unlock(&t->mu);
	if (rc != TSS2_RC_SUCCESS)
		return agent_tpm_fail(rc, "TPM2_Sign", msg, msglen);
	int out = AAM_OK;
	if (s->sigAlg != TPM2_ALG_ECDSA || s->signature.ecdsa.signatureR.size > 32 ||
	    s->signature.ecdsa.signatureS.size > 32) {
		snprintf(msg, msglen, "TPM2_Sign returned an unexpected signature");
		out = AAM_E_HSM;
	} else {
		const TPM2B_ECC_PARAMETER *r = &s->signature.ecdsa.signatureR;
		const TPM2B_ECC_PARAMETER *ss = &s->signature.ecdsa.signatureS;
		memset(sig, 0, 64);
		memcpy(sig + (32 - r->size), r->buffer, r->size);
		memcpy(sig + 32 + (32 - ss->size), ss->buffer, ss->size);
	}
	Esys_Free(s);
	return out;
}
