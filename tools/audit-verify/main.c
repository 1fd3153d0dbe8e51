/*
 * aam-audit-verify: command line.  See docs/AUDIT.md for the export
 * layout, the checks and the exit-code table.
 */
#include "av.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aam/err.h"

#ifndef AAM_VERSION
#define AAM_VERSION "0"
#endif

static const char usage[] =
        "usage: aam-audit-verify [--key PEM | --vkey STRING]... [--origin NAME]\n"
        "                        [--checkpoint FILE]... [--quiet] DIR\n"
        "       aam-audit-verify inclusion (--key PEM | --vkey STRING) [--origin NAME]\n"
        "                        --checkpoint FILE --record FILE --index N --proof FILE\n"
        "\n"
        "Verifies an aam audit export (or one record) offline against a PINNED key.\n"
        "The key files inside an export are not trusted unless you name them.\n"
        "  --key PEM          pinned ECDSA P-256 public key (key name: the origin)\n"
        "  --vkey STRING      pinned signed-note verifier key <name>+<id>+<base64>\n"
        "  --origin NAME      pinned log origin (default: the export's)\n"
        "  --checkpoint FILE  an extra checkpoint you obtained earlier (repeatable);\n"
        "                     for `inclusion`, the checkpoint to check against\n"
        "Exit status: 0 verified, 1 modified, 2 inserted, 3 deleted, 4 reordered,\n"
        "5 truncated, 6 fork, 7 rollback, 8 bad-signature, 9 unknown-key,\n"
        "10 malformed, 11 time-order, 12 unanchored, 13 not-included, 64 usage,\n"
        "70 internal error, 74 I/O error.\n";

const char *
av_kind_name(int kind)
{
	switch (kind) {
	case AV_OK:
		return "ok";
	case AV_MODIFIED:
		return "modified";
	case AV_INSERTED:
		return "inserted";
	case AV_DELETED:
		return "deleted";
	case AV_REORDERED:
		return "reordered";
	case AV_TRUNCATED:
		return "truncated";
	case AV_FORK:
		return "fork";
	case AV_ROLLBACK:
		return "rollback";
	case AV_BAD_SIGNATURE:
		return "bad-signature";
	case AV_UNKNOWN_KEY:
		return "unknown-key";
	case AV_MALFORMED:
		return "malformed";
	case AV_TIME_ORDER:
		return "time-order";
	case AV_UNANCHORED:
		return "unanchored";
	case AV_NOT_INCLUDED:
		return "not-included";
	case AV_USAGE:
		return "usage";
	case AV_IO:
		return "io-error";
	default:
		return "internal-error";
	}
}

static int
usage_error(const char *msg)
{
	fprintf(stderr, "aam-audit-verify: %s\n%s", msg, usage);
	return AV_USAGE;
}

int
main(int argc, char **argv)
{
	struct av_opts o;
	memset(&o, 0, sizeof(o));
	int i = 1;
	bool inclusion = false;
	if (argc > 1 && strcmp(argv[1], "inclusion") == 0) {
		inclusion = true;
		i = 2;
	}
	for (; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		}
		if (strcmp(a, "--version") == 0) {
			printf("aam-audit-verify %s\n", AAM_VERSION);
			return 0;
		}
		if (strcmp(a, "--quiet") == 0) {
			o.quiet = true;
			continue;
		}
		if (a[0] != '-' || a[1] == '\0') {
			if (inclusion || o.dir != NULL)
				return usage_error("unexpected argument");
			o.dir = a;
			continue;
		}
		if (v == NULL)
			return usage_error("option needs a value");
		i++;
		if (strcmp(a, "--key") == 0) {
			if (o.npem == AV_MAX_KEYS)
				return usage_error("too many --key options");
			o.pem[o.npem++] = v;
		} else if (strcmp(a, "--vkey") == 0) {
			if (o.nvkey == AV_MAX_KEYS)
				return usage_error("too many --vkey options");
			o.vkey[o.nvkey++] = v;
		} else if (strcmp(a, "--origin") == 0) {
			o.origin = v;
		} else if (strcmp(a, "--checkpoint") == 0) {
			if (inclusion) {
				if (o.checkpoint != NULL)
					return usage_error("inclusion takes one --checkpoint");
				o.checkpoint = v;
			} else {
				if (o.nextra == AV_MAX_EXTRA_CP)
					return usage_error("too many --checkpoint options");
				o.extra_cp[o.nextra++] = v;
			}
		} else if (inclusion && strcmp(a, "--record") == 0) {
			o.record = v;
		} else if (inclusion && strcmp(a, "--proof") == 0) {
			o.proof = v;
		} else if (inclusion && strcmp(a, "--index") == 0) {
			if (av_parse_u64(v, strlen(v), &o.index) != AAM_OK)
				return usage_error("--index needs a decimal number");
			o.have_index = true;
		} else {
			return usage_error("unknown option");
		}
	}
	if (o.npem + o.nvkey == 0)
		return usage_error("no pinned key: pass --key PEM or --vkey STRING");
	if (inclusion &&
	    (o.checkpoint == NULL || o.record == NULL || o.proof == NULL || !o.have_index))
		return usage_error("inclusion needs --checkpoint, --record, --index and --proof");
	if (!inclusion && o.dir == NULL)
		return usage_error("no export folder given");

	struct av_finding f;
	memset(&f, 0, sizeof(f));
	f.index = AV_NO_INDEX;
	int rc = inclusion ? av_verify_inclusion(&o, &f) : av_verify_export(&o, &f);
	if (rc == AV_OK)
		return 0;
	if (rc == AV_USAGE)
		return usage_error(f.detail);
	if (f.index == AV_NO_INDEX)
		printf("aam-audit-verify: FAIL kind=%s index=-: %s\n", av_kind_name(rc), f.detail);
	else
		printf("aam-audit-verify: FAIL kind=%s index=%llu: %s\n", av_kind_name(rc),
		       (unsigned long long)f.index, f.detail);
	return rc;
}
