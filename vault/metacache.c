/*
 * The metadata and ciphertext cache (see store_int.h).
 *
 * Under load every INJECT used to read the secret's metadata twice from
 * SQLite (three statements each, with WAL read locks taken through fcntl)
 * and its ciphertext from the token (C_GetAttributeValue, which SoftHSM2
 * answers after re-checking its object files): a quarter of aam-vault's CPU.
 * The entries are exact copies of what those reads return, made on the
 * first use and forgotten whenever the secret changes (and the ciphertext
 * whenever the token's objects may have changed: aam_p11_forget, a
 * re-login), so the answers do not change; only the decryption in the token remains per request
 * (unless the optional decrypted-secret cache is on).
 */
#include "vault/store_int.h"
#include "aam/err.h"

#include <stdlib.h>
#include <string.h>

static struct vault_meta_entry *
find(struct vault_store *s, const char *name)
{
	for (size_t i = 0; i < s->nmeta; i++)
		if (strcmp(s->meta[i].meta->name, name) == 0)
			return &s->meta[i];
	return NULL;
}

static void
remove_at(struct vault_store *s, size_t i)
{
	free(s->meta[i].meta);
	free(s->meta[i].blob);
	s->meta[i] = s->meta[--s->nmeta];
	memset(&s->meta[s->nmeta], 0, sizeof(s->meta[s->nmeta]));
}

bool
vault_meta_cached(struct vault_store *s, const char *name, struct vault_secret_meta *out)
{
	struct vault_meta_entry *e = find(s, name);
	if (e == NULL)
		return false;
	memcpy(out, e->meta, sizeof(*out));
	return true;
}

void
vault_meta_remember(struct vault_store *s, const struct vault_secret_meta *m)
{
	vault_meta_drop(s, m->name);
	struct vault_secret_meta *copy = malloc(sizeof(*copy));
	if (copy == NULL)
		return; /* a cache: the next request reads the database again */
	memcpy(copy, m, sizeof(*copy));
	if (s->nmeta == VAULT_META_MAX)
		remove_at(s, 0); /* any victim will do */
	s->meta[s->nmeta++] = (struct vault_meta_entry){.meta = copy};
}

int
vault_meta_blob(struct vault_store *s, const char *name, int64_t version, uint64_t gen,
                uint8_t **blob, size_t *len)
{
	struct vault_meta_entry *e = find(s, name);
	if (e == NULL || e->blob == NULL || e->meta->version != version)
		return AAM_E_NOTFOUND;
	if (e->blob_gen != gen) {
		free(e->blob);
		e->blob = NULL;
		return AAM_E_NOTFOUND;
	}
	*blob = malloc(e->bloblen);
	if (*blob == NULL)
		return AAM_E_NOMEM;
	memcpy(*blob, e->blob, e->bloblen);
	*len = e->bloblen;
	return AAM_OK;
}

void
vault_meta_blob_remember(struct vault_store *s, const char *name, int64_t version, uint64_t gen,
                         const uint8_t *blob, size_t len)
{
	struct vault_meta_entry *e = find(s, name);
	/* Only for the version the cached metadata names: a rotation in between drops both. */
	if (e == NULL || e->blob != NULL || e->meta->version != version || len == 0)
		return;
	e->blob = malloc(len);
	if (e->blob == NULL)
		return;
	memcpy(e->blob, blob, len);
	e->bloblen = len;
	e->blob_gen = gen;
}

void
vault_meta_drop(struct vault_store *s, const char *name)
{
	for (size_t i = 0; i < s->nmeta; i++)
		if (strcmp(s->meta[i].meta->name, name) == 0) {
			remove_at(s, i);
			return;
		}
}

void
vault_meta_clear(struct vault_store *s)
{
	while (s->nmeta > 0)
		remove_at(s, s->nmeta - 1);
}
