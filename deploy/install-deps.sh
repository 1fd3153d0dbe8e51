#!/usr/bin/env bash
# Installs every Debian package AAM needs to build, run and test.
# Idempotent: packages already present are skipped, and apt-get update runs
# only when something is missing.  Safe to run twice.
#
#   deploy/install-deps.sh            build, run, test (tests/run.sh, quickstart)
#   deploy/install-deps.sh --bench    the same plus the benchmark tools
#                                     (nginx-light, wrk, hyperfine: bench/ only)
set -euo pipefail

BENCH=0
for a in "$@"; do
	case "$a" in
	--bench) BENCH=1 ;;
	-h | --help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "install-deps: unknown option $a (--bench)" >&2; exit 2 ;;
	esac
done

PKGS=(
	# toolchain
	build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
	# libraries
	libssl-dev libp11-kit-dev p11-kit libmicrohttpd-dev libjansson-dev
	libyaml-dev libsqlite3-dev sqlite3 libcurl4-openssl-dev libcmocka-dev
	libtss2-dev
	# HSM and TPM for tests and the quickstart
	softhsm2 opensc swtpm swtpm-tools tpm2-tools gnutls-bin libtss2-tcti-swtpm0
	# end-to-end tests
	nodejs npm curl openssl ca-certificates python3 jq
)
# Only bench/ drives load through nginx and wrk; no test needs them.
if [ "$BENCH" = 1 ]; then
	PKGS+=(nginx-light wrk hyperfine)
fi

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		# A package such as nodejs may already be provided outside dpkg.
		case "$p" in
		nodejs) command -v node >/dev/null 2>&1 && continue ;;
		npm) command -v npm >/dev/null 2>&1 && continue ;;
		esac
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps: missing packages: ${missing[*]}" >&2
		echo "install-deps: run as root to install them" >&2
		exit 1
	fi
	echo "install-deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
else
	echo "install-deps: all Debian packages present"
fi

# npm packages for the end-to-end tests come from the committed lock file.
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -f "$here/tests/e2e/package-lock.json" ]; then
	if [ ! -d "$here/tests/e2e/node_modules" ] ||
		[ "$here/tests/e2e/package-lock.json" -nt "$here/tests/e2e/node_modules/.package-lock.json" ]; then
		(cd "$here/tests/e2e" && npm ci --no-audit --no-fund --loglevel=error)
	fi
fi
# The MCP tests (tests/mcp): the official MCP SDK, from its committed lock file.
if [ -f "$here/tests/mcp/package-lock.json" ]; then
	if [ ! -d "$here/tests/mcp/node_modules" ] ||
		[ "$here/tests/mcp/package-lock.json" -nt "$here/tests/mcp/node_modules/.package-lock.json" ]; then
		(cd "$here/tests/mcp" && npm ci --no-audit --no-fund --loglevel=error)
	fi
fi
