/*
 * aamctl secret: downstream credentials kept in the vault's token.
 *
 *   aamctl secret put NAME --type TYPE --bind URL[,URL...] [type options]   (value on stdin)
 *   aamctl secret rotate NAME                                               (value on stdin)
 *   aamctl secret list | show NAME | delete NAME | prune NAME
 *
 * The value is read from standard input, never from the command line
 * (argv is visible to every user through /proc); one trailing newline is
 * dropped, and on a terminal the input is not echoed.  Nothing this
 * command prints ever contains a value: the vault never returns one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "aam/err.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/ipc.h"
#include "common/secret.h"
#include "tools/aamctl/aamctl.h"
#include "vault/proto.h"

#define CALL_TIMEOUT_MS 60000

static const char secret_usage[] =
        "usage: aamctl secret put NAME --type TYPE --bind URL[,URL...] [options]  (value on "
        "stdin)\n"
        "       aamctl secret rotate NAME                                         (value on "
        "stdin)\n"
        "       aamctl secret list\n"
        "       aamctl secret show NAME\n"
        "       aamctl secret delete NAME\n"
        "       aamctl secret prune NAME    (remove every version but the current one)\n"
        "types: bearer, header (--header NAME), basic (--username U), query (--param P),\n"
        "       aws-sigv4 (--aws-access-key-id ID --region R --service S),\n"
        "       hmac (--header NAME: hex HMAC-SHA256 of the body),\n"
        "       oauth2-client-credentials (--token-url URL --client-id ID [--scope S])\n"
        "--bind may be repeated; each URL is scheme://host[:port]/path-prefix.\n";

static int
secret_usage_error(const char *msg)
{
	if (msg != NULL)
		fprintf(stderr, "aamctl secret: %s\n", msg);
	fputs(secret_usage, stderr);
	return AAMCTL_EXIT_USAGE;
}

static int
secret_connect(const struct aam_cli *cli, struct aam_ipc_client **out)
{
	struct aam_config cfg;
	char err[512];
	if (aam_config_load(cli->config_path, &cfg, err, sizeof(err)) != AAM_OK ||
	    aam_config_require(&cfg, "vault", err, sizeof(err)) != AAM_OK) {
		fprintf(stderr, "aamctl secret: %s\n", err);
		return AAMCTL_EXIT_FAIL;
	}
	int rc = aam_ipc_client_connect(cfg.vault.sockets.admin, 5000, out);
	if (rc != AAM_OK)
		fprintf(stderr, "aamctl secret: cannot reach the vault at %s: %s\n",
		        cfg.vault.sockets.admin, aam_strerror(rc));
	aam_config_uninit(&cfg);
	return rc == AAM_OK ? AAMCTL_EXIT_OK : AAMCTL_EXIT_FAIL;
}

static int
secret_call(struct aam_ipc_client *c, uint16_t type, const struct aam_buf *req,
            struct aam_buf *reply)
{
	int rc = aam_ipc_call(c, type, req->data, req->len, CALL_TIMEOUT_MS, NULL, reply);
	if (rc != AAM_OK) {
		const char *msg = reply->len > 0 ? aam_buf_cstr(reply) : aam_strerror(rc);
		fprintf(stderr, "aamctl secret: %s (%s)\n", msg, aam_err_code(rc));
	}
	return rc;
}

/*
 * Reads the value from stdin into protected memory: at most
 * AAM_SECRET_MAX bytes after one trailing newline ("\n" or "\r\n") is
 * dropped.  On a terminal, echo is off while it is typed.
 */
static aam_secret *
read_value(void)
{
	aam_secret *s = aam_secret_new(AAM_SECRET_MAX);
	if (s == NULL)
		return NULL;
	uint8_t *d = aam_secret_data(s);
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	if (tty) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
		fprintf(stderr, "value (input hidden, end with Enter): ");
	}
	size_t n = 0;
	bool newline = false, too_big = false;
	for (;;) {
		if (n == AAM_SECRET_MAX) {
			/* Full: only the newline may follow. */
			uint8_t extra[2];
			ssize_t r = read(STDIN_FILENO, extra, sizeof(extra));
			if (r == 1 && extra[0] == '\n')
				newline = true;
			else if (r > 0)
				too_big = true;
			break;
		}
		ssize_t r = read(STDIN_FILENO, d + n, AAM_SECRET_MAX - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		/* On a terminal the first line is the value. */
		if (tty && memchr(d, '\n', n) != NULL)
			break;
	}
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fprintf(stderr, "\n");
		uint8_t *nl = memchr(d, '\n', n);
		if (nl != NULL)
			n = (size_t)(nl - d) + 1;
	}
	if (!newline && n > 0 && d[n - 1] == '\n') {
		n--;
		newline = true;
	}
	if (newline && n > 0 && d[n - 1] == '\r')
		n--;
	if (too_big) {
		fprintf(stderr, "aamctl secret: the value is larger than %u bytes\n",
		        AAM_SECRET_MAX);
		aam_secret_free(s);
		return NULL;
	}
	if (n == 0) {
		fprintf(stderr, "aamctl secret: no value on standard input\n");
		aam_secret_free(s);
		return NULL;
	}
	aam_secret_set_len(s, n);
	return s;
}

static void
fmt_time(uint64_t t, char *out, size_t outsz)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (t == 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outsz, "-");
}

static void
print_meta(const struct vault_ipc_meta *m, long versions)
{
	char created[32], rotated[32];
	fmt_time(m->created, created, sizeof(created));
	fmt_time(m->rotated, rotated, sizeof(rotated));
	printf("name:        %s\n", m->name);
	printf("type:        %s\n", m->type);
	for (uint32_t i = 0; i < m->nbindings; i++)
		printf("binding:     %s\n", m->bindings[i]);
	const struct {
		const char *label, *value;
	} opt[] = {
	        {"header:      ", m->header},     {"param:       ", m->param},
	        {"username:    ", m->username},   {"access key:  ", m->aws_access_key_id},
	        {"region:      ", m->aws_region}, {"service:     ", m->aws_service},
	        {"token url:   ", m->token_url},  {"client id:   ", m->client_id},
	        {"scope:       ", m->scope},
	};
	for (size_t i = 0; i < sizeof(opt) / sizeof(opt[0]); i++) {
		if (opt[i].value[0] != '\0')
			printf("%s%s\n", opt[i].label, opt[i].value);
	}
	printf("version:     %llu\n", (unsigned long long)m->version);
	if (versions >= 0)
		printf("versions:    %ld kept\n", versions);
	printf("created:     %s\n", created);
	printf("rotated:     %s\n", rotated);
	printf("fingerprint: %s\n", m->fingerprint);
}

struct put_opts {
	struct vault_ipc_meta m;
	bool have_type;
};

/* Copies VALUE into a fixed field, refusing what does not fit. */
static int
set_field(char *dst, size_t dstsz, const char *opt, const char *value)
{
	if (strlen(value) >= dstsz) {
		fprintf(stderr, "aamctl secret: %s is too long (at most %zu bytes)\n", opt,
		        dstsz - 1);
		return AAMCTL_EXIT_USAGE;
	}
	strcpy(dst, value);
	return AAMCTL_EXIT_OK;
}

static int
add_bindings(struct vault_ipc_meta *m, const char *list)
{
	const char *p = list;
	while (*p != '\0') {
		size_t n = strcspn(p, ",");
		if (n > 0) {
			if (m->nbindings >= 16) {
				fprintf(stderr, "aamctl secret: at most 16 bindings\n");
				return AAMCTL_EXIT_USAGE;
			}
			if (n >= sizeof(m->bindings[0])) {
				fprintf(stderr, "aamctl secret: binding too long\n");
				return AAMCTL_EXIT_USAGE;
			}
			memcpy(m->bindings[m->nbindings], p, n);
			m->bindings[m->nbindings][n] = '\0';
			m->nbindings++;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return AAMCTL_EXIT_OK;
}

static int
parse_put(int argc, char **argv, struct put_opts *o)
{
	memset(o, 0, sizeof(*o));
	struct vault_ipc_meta *m = &o->m;
	if (argc < 3 || argv[2][0] == '-')
		return secret_usage_error("put needs a NAME");
	if (set_field(m->name, sizeof(m->name), "NAME", argv[2]) != AAMCTL_EXIT_OK)
		return AAMCTL_EXIT_USAGE;
	for (int i = 3; i < argc; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc) {
			fprintf(stderr, "aamctl secret: %s needs a value\n", a);
			return secret_usage_error(NULL);
		}
		const char *v = argv[++i];
		int rc = AAMCTL_EXIT_OK;
		if (strcmp(a, "--type") == 0) {
			rc = set_field(m->type, sizeof(m->type), a, v);
			o->have_type = true;
		} else if (strcmp(a, "--bind") == 0) {
			rc = add_bindings(m, v);
		} else if (strcmp(a, "--header") == 0) {
			rc = set_field(m->header, sizeof(m->header), a, v);
		} else if (strcmp(a, "--param") == 0) {
			rc = set_field(m->param, sizeof(m->param), a, v);
		} else if (strcmp(a, "--username") == 0) {
			rc = set_field(m->username, sizeof(m->username), a, v);
		} else if (strcmp(a, "--aws-access-key-id") == 0) {
			rc = set_field(m->aws_access_key_id, sizeof(m->aws_access_key_id), a, v);
		} else if (strcmp(a, "--region") == 0) {
			rc = set_field(m->aws_region, sizeof(m->aws_region), a, v);
		} else if (strcmp(a, "--service") == 0) {
			rc = set_field(m->aws_service, sizeof(m->aws_service), a, v);
		} else if (strcmp(a, "--token-url") == 0) {
			rc = set_field(m->token_url, sizeof(m->token_url), a, v);
		} else if (strcmp(a, "--client-id") == 0) {
			rc = set_field(m->client_id, sizeof(m->client_id), a, v);
		} else if (strcmp(a, "--scope") == 0) {
			rc = set_field(m->scope, sizeof(m->scope), a, v);
		} else {
			fprintf(stderr, "aamctl secret: unknown option '%s'\n", a);
			return secret_usage_error(NULL);
		}
		if (rc != AAMCTL_EXIT_OK)
			return rc;
	}
	if (!o->have_type)
		return secret_usage_error("put needs --type");
	if (m->nbindings == 0)
		return secret_usage_error("put needs at least one --bind URL");
	return AAMCTL_EXIT_OK;
}

/* Decodes a meta reply (plus a version count when VERSIONS) and prints it. */
static int
print_meta_reply(const struct aam_buf *reply, bool versions)
{
	struct vault_ipc_meta *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return AAM_E_NOMEM;
	struct aam_ipc_reader r;
	aam_ipc_reader_init(&r, reply->data, reply->len);
	vault_ipc_meta_decode(&r, m);
	uint32_t nv = 0;
	if (versions)
		aam_ipc_get_u32(&r, &nv);
	int rc = aam_ipc_reader_end(&r);
	if (rc == AAM_OK)
		print_meta(m, versions ? (long)nv : -1);
	else
		fprintf(stderr, "aamctl secret: malformed answer from the vault\n");
	free(m);
	return rc;
}

static int
do_list(struct aam_ipc_client *c)
{
	struct aam_buf req, reply;
	aam_buf_init(&req, 16);
	aam_buf_init(&reply, 64u * 1024 * 1024);
	int rc = secret_call(c, VAULT_IPC_SECRET_LIST, &req, &reply);
	struct vault_ipc_meta *m = calloc(1, sizeof(*m));
	if (rc == AAM_OK && m == NULL)
		rc = AAM_E_NOMEM;
	if (rc == AAM_OK) {
		struct aam_ipc_reader r;
		aam_ipc_reader_init(&r, reply.data, reply.len);
		uint32_t n = 0;
		aam_ipc_get_u32(&r, &n);
		printf("%-32s %-26s %-8s %s\n", "NAME", "TYPE", "VERSION", "BINDINGS");
		for (uint32_t i = 0; i < n && r.err == AAM_OK; i++) {
			if (vault_ipc_meta_decode(&r, m) != AAM_OK)
				break;
			printf("%-32s %-26s %-8llu %s", m->name, m->type,
			       (unsigned long long)m->version,
			       m->nbindings > 0 ? m->bindings[0] : "");
			if (m->nbindings > 1)
				printf(" (+%u more)", (unsigned)m->nbindings - 1);
			printf("\n");
		}
		rc = aam_ipc_reader_end(&r);
		if (rc != AAM_OK)
			fprintf(stderr, "aamctl secret: malformed answer from the vault\n");
	}
	free(m);
	aam_buf_uninit(&req);
	aam_buf_uninit(&reply);
	return rc;
}

static int
secret_main(int argc, char **argv, const struct aam_cli *cli)
{
	if (argc < 2)
		return secret_usage_error(NULL);
	const char *sub = argv[1];
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
		fputs(secret_usage, stdout);
		return AAMCTL_EXIT_OK;
	}
	struct put_opts *po = NULL;
	uint16_t type;
	bool named = false;
	if (strcmp(sub, "put") == 0) {
		po = calloc(1, sizeof(*po));
		if (po == NULL)
			return AAMCTL_EXIT_FAIL;
		int ex = parse_put(argc, argv, po);
		if (ex != AAMCTL_EXIT_OK) {
			free(po);
			return ex;
		}
		type = VAULT_IPC_SECRET_PUT;
	} else if (strcmp(sub, "list") == 0) {
		if (argc != 2)
			return secret_usage_error("list takes no arguments");
		type = VAULT_IPC_SECRET_LIST;
	} else if (strcmp(sub, "rotate") == 0 || strcmp(sub, "show") == 0 ||
	           strcmp(sub, "delete") == 0 || strcmp(sub, "prune") == 0) {
		if (argc != 3 || argv[2][0] == '-' || strlen(argv[2]) > VAULT_IPC_MAX_NAME)
			return secret_usage_error("expected exactly one NAME");
		named = true;
		type = strcmp(sub, "rotate") == 0   ? VAULT_IPC_SECRET_ROTATE
		       : strcmp(sub, "show") == 0   ? VAULT_IPC_SECRET_SHOW
		       : strcmp(sub, "delete") == 0 ? VAULT_IPC_SECRET_DELETE
		                                    : VAULT_IPC_SECRET_PRUNE;
	} else {
		fprintf(stderr, "aamctl secret: unknown subcommand '%s'\n", sub);
		return secret_usage_error(NULL);
	}

	/* The value is read before connecting, so a bad input costs nothing. */
	aam_secret *value = NULL;
	if (type == VAULT_IPC_SECRET_PUT || type == VAULT_IPC_SECRET_ROTATE) {
		value = read_value();
		if (value == NULL) {
			free(po);
			return AAMCTL_EXIT_FAIL;
		}
	}
	struct aam_ipc_client *c = NULL;
	int ex = secret_connect(cli, &c);
	if (ex != AAMCTL_EXIT_OK) {
		aam_secret_free(value);
		free(po);
		return ex;
	}
	struct aam_buf req, reply;
	aam_buf_init(&req, AAM_IPC_MAX_PAYLOAD);
	aam_buf_init(&reply, AAM_IPC_MAX_PAYLOAD);
	int rc = AAM_OK;
	if (type == VAULT_IPC_SECRET_LIST) {
		rc = do_list(c);
	} else {
		if (po != NULL)
			vault_ipc_meta_encode(&req, &po->m);
		else if (named)
			aam_ipc_put_str(&req, argv[2]);
		if (value != NULL)
			aam_ipc_put_bytes(&req, aam_secret_data(value), aam_secret_len(value));
		rc = req.err;
		if (rc != AAM_OK)
			fprintf(stderr, "aamctl secret: invalid arguments (%s)\n",
			        aam_strerror(rc));
		else
			rc = secret_call(c, type, &req, &reply);
		if (rc == AAM_OK) {
			switch (type) {
			case VAULT_IPC_SECRET_PUT:
				printf("stored secret %s\n", po->m.name);
				rc = print_meta_reply(&reply, false);
				break;
			case VAULT_IPC_SECRET_ROTATE:
				printf("rotated secret %s (the previous version is kept until "
				       "'aamctl secret prune %s')\n",
				       argv[2], argv[2]);
				rc = print_meta_reply(&reply, false);
				break;
			case VAULT_IPC_SECRET_SHOW:
				rc = print_meta_reply(&reply, true);
				break;
			case VAULT_IPC_SECRET_DELETE:
				printf("deleted secret %s and its token objects\n", argv[2]);
				break;
			default:
				printf("pruned secret %s to its current version\n", argv[2]);
				break;
			}
		}
	}
	/* The request held the value: wipe it, and the protected copy. */
	aam_buf_uninit_wipe(&req);
	aam_buf_uninit(&reply);
	aam_secret_free(value);
	aam_ipc_client_free(c);
	free(po);
	return rc == AAM_OK ? AAMCTL_EXIT_OK : AAMCTL_EXIT_FAIL;
}

const struct aamctl_cmd aamctl_cmd_secret = {
        .name = "secret",
        .summary = "store, rotate, list and delete downstream credentials",
        .run = secret_main,
};
