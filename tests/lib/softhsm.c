#include "tests/lib/softhsm.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <p11-kit/p11-kit.h>

#include "aam/err.h"
#include "common/secret.h"
#include "tests/lib/testutil.h"

/* 16 random bytes give a 32-character hex PIN: well inside SoftHSM2's 4..255. */
#define PIN_RANDOM_BYTES 16
#define PIN_HEX_LEN      (PIN_RANDOM_BYTES * 2)

static void
say(const char *what, const char *detail)
{
	fprintf(stderr, "softhsm fixture: %s%s%s\n", what, detail != NULL ? ": " : "",
	        detail != NULL ? detail : "");
}

static void
say_rv(const char *call, CK_RV rv)
{
	fprintf(stderr, "softhsm fixture: %s failed: CKR 0x%lx\n", call, (unsigned long)rv);
}

/*
 * Folders of started fixtures, so that a test that fails between start and
 * stop (cmocka longjmps out of it) does not leave tokens in $TMPDIR.  Copies
 * of the paths are kept, not pointers to the caller's struct, which may be
 * gone by exit time.
 */
#define REGISTRY_SLOTS 32
static char s_registry[REGISTRY_SLOTS][AAM_TEST_PATH_MAX];
static bool s_atexit_installed;
static pthread_mutex_t s_registry_lock = PTHREAD_MUTEX_INITIALIZER;

static void
registry_cleanup(void)
{
	pthread_mutex_lock(&s_registry_lock);
	for (size_t i = 0; i < REGISTRY_SLOTS; i++) {
		if (s_registry[i][0] != '\0') {
			aam_test_rmtree(s_registry[i]);
			s_registry[i][0] = '\0';
		}
	}
	pthread_mutex_unlock(&s_registry_lock);
}

static void
registry_add(const char *dir)
{
	pthread_mutex_lock(&s_registry_lock);
	if (!s_atexit_installed)
		s_atexit_installed = atexit(registry_cleanup) == 0;
	for (size_t i = 0; i < REGISTRY_SLOTS; i++) {
		if (s_registry[i][0] == '\0') {
			snprintf(s_registry[i], sizeof(s_registry[i]), "%s", dir);
			break;
		}
	}
	pthread_mutex_unlock(&s_registry_lock);
}

static void
registry_remove(const char *dir)
{
	pthread_mutex_lock(&s_registry_lock);
	for (size_t i = 0; i < REGISTRY_SLOTS; i++) {
		if (strcmp(s_registry[i], dir) == 0)
			s_registry[i][0] = '\0';
	}
	pthread_mutex_unlock(&s_registry_lock);
}

static bool
readable(const char *path)
{
	return access(path, R_OK) == 0;
}

static bool
first_glob_match(const char *pattern, char *out, size_t len)
{
	glob_t g;
	bool found = false;
	if (glob(pattern, 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc && !found; i++) {
			if (readable(g.gl_pathv[i]) && strlen(g.gl_pathv[i]) < len) {
				snprintf(out, len, "%s", g.gl_pathv[i]);
				found = true;
			}
		}
	}
	globfree(&g);
	return found;
}

bool
aam_test_softhsm_find_module(char *out, size_t len)
{
	/* An explicit override is the only candidate: a typo must not be masked. */
	const char *env = getenv("AAM_SOFTHSM2_MODULE");
	if (env != NULL && *env != '\0') {
		if (!readable(env) || strlen(env) >= len)
			return false;
		snprintf(out, len, "%s", env);
		return true;
	}
	static const char *const fixed[] = {
	        "/usr/lib/softhsm/libsofthsm2.so",       "/usr/lib64/softhsm/libsofthsm2.so",
	        "/usr/lib64/pkcs11/libsofthsm2.so",      "/usr/lib/pkcs11/libsofthsm2.so",
	        "/usr/local/lib/softhsm/libsofthsm2.so",
	};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (readable(fixed[i]) && strlen(fixed[i]) < len) {
			snprintf(out, len, "%s", fixed[i]);
			return true;
		}
	}
	/* Debian and Ubuntu multiarch layouts, whatever the architecture. */
	return first_glob_match("/usr/lib/*-linux-*/softhsm/libsofthsm2.so", out, len) ||
	       first_glob_match("/usr/lib/*-linux-*/pkcs11/libsofthsm2.so", out, len);
}

bool
aam_test_softhsm_available(void)
{
	char path[AAM_TEST_PATH_MAX];
	return aam_test_softhsm_find_module(path, sizeof(path));
}

static bool
label_ok(const char *label)
{
	if (label == NULL)
		return false;
	size_t n = strlen(label);
	if (n == 0 || n > AAM_TEST_TOKEN_LABEL_MAX || label[n - 1] == ' ')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)label[i];
		if (c < 0x20 || c > 0x7e)
			return false;
	}
	return true;
}

/* RFC 7512: attribute values percent-encode everything but unreserved. */
static int
make_token_uri(const char *label, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	int w = snprintf(out, len, "pkcs11:token=");
	if (w < 0 || (size_t)w >= len)
		return AAM_E_TOOBIG;
	size_t o = (size_t)w;
	for (const char *p = label; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		             (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
		if (o + (plain ? 1 : 3) >= len)
			return AAM_E_TOOBIG;
		if (plain) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 0x0f];
		}
	}
	out[o] = '\0';
	return AAM_OK;
}

static int
path_join(char *out, size_t len, const char *dir, const char *name)
{
	int w = snprintf(out, len, "%s/%s", dir, name);
	return w < 0 || (size_t)w >= len ? AAM_E_TOOBIG : AAM_OK;
}

/* Writes a new file with exactly MODE, whatever the umask. */
static int
write_new_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return AAM_E_IO;
	int rc = fchmod(fd, mode) == 0 ? AAM_OK : AAM_E_IO;
	const char *p = data;
	while (rc == AAM_OK && len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = AAM_E_IO;
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	if (close(fd) != 0)
		rc = AAM_E_IO;
	return rc;
}

/* A random PIN written to a 0600 file; PIN receives the NUL-terminated hex. */
static int
make_pin_file(const char *path, char pin[PIN_HEX_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[PIN_RANDOM_BYTES];
	if (RAND_bytes(raw, (int)sizeof(raw)) != 1) {
		say("RAND_bytes failed", NULL);
		return AAM_E_CRYPTO;
	}
	for (size_t i = 0; i < sizeof(raw); i++) {
		pin[2 * i] = hex[raw[i] >> 4];
		pin[2 * i + 1] = hex[raw[i] & 0x0f];
	}
	pin[PIN_HEX_LEN] = '\0';
	aam_wipe(raw, sizeof(raw));
	int rc = write_new_file(path, pin, PIN_HEX_LEN, 0600);
	if (rc != AAM_OK)
		say("cannot write PIN file", path);
	return rc;
}

static int
write_conf(const struct aam_test_softhsm *h)
{
	char text[AAM_TEST_PATH_MAX + 256];
	int w = snprintf(text, sizeof(text),
	                 "# Throwaway token of an AAM test; removed when the test ends.\n"
	                 "directories.tokendir = %s\n"
	                 "objectstore.backend = file\n"
	                 "log.level = ERROR\n"
	                 "slots.removable = false\n"
	                 "slots.mechanisms = ALL\n"
	                 "library.reset_on_fork = false\n",
	                 h->token_dir);
	if (w < 0 || (size_t)w >= sizeof(text))
		return AAM_E_TOOBIG;
	int rc = write_new_file(h->conf_path, text, (size_t)w, 0600);
	if (rc != AAM_OK)
		say("cannot write softhsm2.conf", h->conf_path);
	return rc;
}

/* Copies a space-padded PKCS#11 field into a trimmed C string. */
static void
trim_field(char *out, size_t outlen, const unsigned char *field, size_t fieldlen)
{
	size_t n = fieldlen;
	while (n > 0 && (field[n - 1] == ' ' || field[n - 1] == '\0'))
		n--;
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, field, n);
	out[n] = '\0';
}

/* Lists slots into a malloc'd array; *COUNT receives their number. */
static CK_RV
list_slots(CK_FUNCTION_LIST *f, CK_BBOOL present, CK_SLOT_ID **slots, CK_ULONG *count)
{
	*slots = NULL;
	*count = 0;
	for (int tries = 0; tries < 4; tries++) {
		CK_ULONG n = 0;
		CK_RV rv = f->C_GetSlotList(present, NULL, &n);
		if (rv != CKR_OK)
			return rv;
		CK_SLOT_ID *list = calloc(n > 0 ? n : 1, sizeof(*list));
		if (list == NULL)
			return CKR_HOST_MEMORY;
		rv = f->C_GetSlotList(present, list, &n);
		if (rv == CKR_OK) {
			*slots = list;
			*count = n;
			return CKR_OK;
		}
		free(list);
		/* The slot list may grow between the two calls: ask again. */
		if (rv != CKR_BUFFER_TOO_SMALL)
			return rv;
	}
	return CKR_BUFFER_TOO_SMALL;
}

/* Finds a slot whose token matches LABEL (and SERIAL when not NULL). */
static CK_RV
find_token(CK_FUNCTION_LIST *f, const char *label, const char *serial, CK_SLOT_ID *slot,
           char serial_out[17])
{
	CK_SLOT_ID *slots;
	CK_ULONG n;
	CK_RV rv = list_slots(f, CK_TRUE, &slots, &n);
	if (rv != CKR_OK)
		return rv;
	rv = CKR_TOKEN_NOT_PRESENT;
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK ||
		    !(ti.flags & CKF_TOKEN_INITIALIZED))
			continue;
		char got_label[AAM_TEST_TOKEN_LABEL_MAX + 1], got_serial[17];
		trim_field(got_label, sizeof(got_label), ti.label, sizeof(ti.label));
		trim_field(got_serial, sizeof(got_serial), ti.serialNumber,
		           sizeof(ti.serialNumber));
		if (strcmp(got_label, label) != 0 ||
		    (serial != NULL && serial[0] != '\0' && strcmp(got_serial, serial) != 0))
			continue;
		*slot = slots[i];
		if (serial_out != NULL)
			memcpy(serial_out, got_serial, sizeof(got_serial));
		rv = CKR_OK;
		break;
	}
	free(slots);
	return rv;
}

/* C_InitToken on the free slot, then C_InitPIN as the SO. */
static int
init_token_with(CK_FUNCTION_LIST *f, struct aam_test_softhsm *h, char *so_pin, char *user_pin)
{
	CK_SLOT_ID *slots;
	CK_ULONG n;
	CK_RV rv = list_slots(f, CK_FALSE, &slots, &n);
	if (rv != CKR_OK) {
		say_rv("C_GetSlotList", rv);
		return AAM_E_HSM;
	}
	/* A fresh token folder has exactly one slot with an uninitialised token. */
	bool found = false;
	CK_SLOT_ID free_slot = 0;
	for (CK_ULONG i = 0; i < n && !found; i++) {
		CK_TOKEN_INFO ti;
		if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    !(ti.flags & CKF_TOKEN_INITIALIZED)) {
			free_slot = slots[i];
			found = true;
		}
	}
	free(slots);
	if (!found) {
		say("no uninitialised token slot", h->token_dir);
		return AAM_E_HSM;
	}

	unsigned char label32[AAM_TEST_TOKEN_LABEL_MAX];
	memset(label32, ' ', sizeof(label32));
	memcpy(label32, h->token_label, strlen(h->token_label));
	rv = f->C_InitToken(free_slot, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin), label32);
	if (rv != CKR_OK) {
		say_rv("C_InitToken", rv);
		return AAM_E_HSM;
	}
	/* SoftHSM2 gives an initialised token a new slot id: look it up again. */
	rv = find_token(f, h->token_label, NULL, &h->slot_id, h->token_serial);
	if (rv != CKR_OK) {
		say_rv("finding the new token", rv);
		return AAM_E_HSM;
	}

	CK_SESSION_HANDLE s;
	rv = f->C_OpenSession(h->slot_id, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
	if (rv != CKR_OK) {
		say_rv("C_OpenSession", rv);
		return AAM_E_HSM;
	}
	int rc = AAM_OK;
	rv = f->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin));
	if (rv != CKR_OK) {
		say_rv("C_Login(SO)", rv);
		rc = AAM_E_HSM;
	} else {
		rv = f->C_InitPIN(s, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin));
		if (rv != CKR_OK) {
			say_rv("C_InitPIN", rv);
			rc = AAM_E_HSM;
		}
		f->C_Logout(s);
	}
	f->C_CloseSession(s);
	return rc;
}

/*
 * The module is loaded unmanaged so that C_Initialize reaches SoftHSM2
 * itself: if anything in this process already initialised it, SoftHSM2
 * answers CKR_CRYPTOKI_ALREADY_INITIALIZED instead of silently using the
 * token folder of its first configuration.
 */
static int
init_token(struct aam_test_softhsm *h, char *so_pin, char *user_pin)
{
	CK_FUNCTION_LIST *f = p11_kit_module_load(h->module_path, P11_KIT_MODULE_UNMANAGED);
	if (f == NULL) {
		say("p11_kit_module_load failed", p11_kit_message());
		return AAM_E_HSM;
	}
	CK_C_INITIALIZE_ARGS args;
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	CK_RV rv = f->C_Initialize(&args);
	int rc;
	if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		say("SoftHSM2 is already initialised in this process",
		    "C_Finalize it before starting another token");
		rc = AAM_E_BUSY;
	} else if (rv != CKR_OK) {
		say_rv("C_Initialize", rv);
		rc = AAM_E_HSM;
	} else {
		rc = init_token_with(f, h, so_pin, user_pin);
		rv = f->C_Finalize(NULL);
		if (rv != CKR_OK && rc == AAM_OK) {
			say_rv("C_Finalize", rv);
			rc = AAM_E_HSM;
		}
	}
	p11_kit_module_release(f);
	return rc;
}

static int
setup_paths(struct aam_test_softhsm *h)
{
	int rc = path_join(h->conf_path, sizeof(h->conf_path), h->dir, "softhsm2.conf");
	if (rc == AAM_OK)
		rc = path_join(h->token_dir, sizeof(h->token_dir), h->dir, "tokens");
	if (rc == AAM_OK)
		rc = path_join(h->so_pin_file, sizeof(h->so_pin_file), h->dir, "so.pin");
	if (rc == AAM_OK)
		rc = path_join(h->user_pin_file, sizeof(h->user_pin_file), h->dir, "user.pin");
	if (rc == AAM_OK)
		rc = make_token_uri(h->token_label, h->token_uri, sizeof(h->token_uri));
	return rc;
}

int
aam_test_softhsm_start(struct aam_test_softhsm *h, const char *label)
{
	if (h == NULL)
		return AAM_E_INVAL;
	memset(h, 0, sizeof(*h));
	if (!label_ok(label)) {
		say("token label must be 1..32 printable ASCII characters without a trailing space",
		    NULL);
		return AAM_E_INVAL;
	}
	snprintf(h->token_label, sizeof(h->token_label), "%s", label);
	if (!aam_test_softhsm_find_module(h->module_path, sizeof(h->module_path))) {
		say("libsofthsm2.so not found", "install softhsm2 or set AAM_SOFTHSM2_MODULE");
		return AAM_E_NOTFOUND;
	}

	char *dir = aam_test_mkdtemp("aam-softhsm");
	if (dir == NULL || strlen(dir) >= sizeof(h->dir) - 32) {
		say("cannot create a temporary folder", strerror(errno));
		if (dir != NULL)
			aam_test_rmtree(dir);
		free(dir);
		return AAM_E_IO;
	}
	snprintf(h->dir, sizeof(h->dir), "%s", dir);
	free(dir);
	registry_add(h->dir);

	char so_pin[PIN_HEX_LEN + 1] = {0}, user_pin[PIN_HEX_LEN + 1] = {0};
	int rc = setup_paths(h);
	if (rc == AAM_OK && mkdir(h->token_dir, 0700) != 0) {
		say("cannot create the token folder", strerror(errno));
		rc = AAM_E_IO;
	}
	if (rc == AAM_OK)
		rc = write_conf(h);
	if (rc == AAM_OK)
		rc = make_pin_file(h->so_pin_file, so_pin);
	if (rc == AAM_OK)
		rc = make_pin_file(h->user_pin_file, user_pin);
	if (rc == AAM_OK && setenv("SOFTHSM2_CONF", h->conf_path, 1) != 0)
		rc = AAM_E_NOMEM;
	if (rc == AAM_OK)
		rc = init_token(h, so_pin, user_pin);
	aam_wipe(so_pin, sizeof(so_pin));
	aam_wipe(user_pin, sizeof(user_pin));
	if (rc != AAM_OK) {
		aam_test_softhsm_stop(h);
		return rc;
	}
	h->started = true;
	return AAM_OK;
}

void
aam_test_softhsm_stop(struct aam_test_softhsm *h)
{
	if (h == NULL)
		return;
	const char *conf = getenv("SOFTHSM2_CONF");
	if (conf != NULL && h->conf_path[0] != '\0' && strcmp(conf, h->conf_path) == 0)
		unsetenv("SOFTHSM2_CONF");
	if (h->dir[0] != '\0') {
		aam_test_rmtree(h->dir);
		registry_remove(h->dir);
	}
	memset(h, 0, sizeof(*h));
}

int
aam_test_softhsm_activate(const struct aam_test_softhsm *h)
{
	if (h == NULL || !h->started)
		return AAM_E_INVAL;
	return setenv("SOFTHSM2_CONF", h->conf_path, 1) == 0 ? AAM_OK : AAM_E_NOMEM;
}

int
aam_test_softhsm_read_pin(const char *path, char *buf, size_t len)
{
	if (buf != NULL && len > 0)
		aam_wipe(buf, len);
	if (path == NULL || buf == NULL || len < 2)
		return AAM_E_INVAL;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? AAM_E_NOTFOUND : AAM_E_IO;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return AAM_E_IO;
	}
	/* A PIN file anyone else can read is a leaked PIN: refuse it. */
	if ((st.st_mode & 077) != 0) {
		close(fd);
		return AAM_E_PERM;
	}
	size_t cap = len - 1 < AAM_TEST_PIN_MAX + 1 ? len - 1 : AAM_TEST_PIN_MAX + 1;
	size_t n = 0;
	int rc = AAM_OK;
	for (;;) {
		if (n == cap) {
			/* Full: one more byte means the PIN is too long. */
			char extra;
			ssize_t r = read(fd, &extra, 1);
			aam_wipe(&extra, sizeof(extra));
			if (r != 0)
				rc = r < 0 ? AAM_E_IO : AAM_E_TOOBIG;
			break;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = AAM_E_IO;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (rc == AAM_OK && n > 0 && buf[n - 1] == '\n')
		n--;
	if (rc == AAM_OK && n > 0 && buf[n - 1] == '\r')
		n--;
	if (rc == AAM_OK && n > AAM_TEST_PIN_MAX)
		rc = AAM_E_TOOBIG;
	if (rc == AAM_OK && n == 0)
		rc = AAM_E_INVAL;
	for (size_t i = 0; rc == AAM_OK && i < n; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (c < 0x20 || c == 0x7f)
			rc = AAM_E_INVAL;
	}
	if (rc != AAM_OK) {
		aam_wipe(buf, len);
		return rc;
	}
	buf[n] = '\0';
	return AAM_OK;
}

int
aam_test_softhsm_find_slot(const struct aam_test_softhsm *h, CK_FUNCTION_LIST *f, CK_SLOT_ID *slot)
{
	if (h == NULL || f == NULL || slot == NULL || !h->started)
		return AAM_E_INVAL;
	CK_RV rv = find_token(f, h->token_label, h->token_serial, slot, NULL);
	if (rv == CKR_TOKEN_NOT_PRESENT)
		return AAM_E_NOTFOUND;
	return rv == CKR_OK ? AAM_OK : AAM_E_HSM;
}

int
aam_test_softhsm_login(const struct aam_test_softhsm *h, CK_FUNCTION_LIST *f,
                       CK_SESSION_HANDLE session)
{
	if (h == NULL || f == NULL || !h->started)
		return AAM_E_INVAL;
	char pin[AAM_TEST_PIN_MAX + 1];
	int rc = aam_test_softhsm_read_pin(h->user_pin_file, pin, sizeof(pin));
	if (rc != AAM_OK)
		return rc;
	CK_RV rv = f->C_Login(session, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
	aam_wipe(pin, sizeof(pin));
	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
		return AAM_OK;
	say_rv("C_Login(USER)", rv);
	return rv == CKR_PIN_INCORRECT ? AAM_E_DENIED : AAM_E_HSM;
}
