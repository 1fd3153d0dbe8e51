#!/usr/bin/env bash
# AAM quick start: the whole story from one command.
#
#   deploy/quickstart.sh            install, build, start the stack, tell the story,
#                                   leave the stack running
#   deploy/quickstart.sh --check    the same without prompts; stops everything at the
#                                   end and exits non-zero if any step failed
#   deploy/quickstart.sh env        export lines for the running stack
#   deploy/quickstart.sh stop       stops the stack
#   deploy/quickstart.sh reset      stops the stack and removes its folder
#
# Everything lives in ./.aam/ (or $AAM_QUICKSTART_HOME): a SoftHSM2 token
# whose PINs are random and kept in 0600 files, the configuration, the
# databases, pid files (run/) and logs (log/).  A second run reuses the
# token, the keys, the secrets and the registrations.  No PIN, key or
# secret ever appears on a command line: they go through files and stdin.
#
# Environment:
#   AAM_BUILD_DIR             build folder to use (default ./build).  When it
#                             already holds a configured build (tests/run.sh's
#                             sanitizer build), it is only brought up to date.
#   AAM_QUICKSTART_HOME       state folder (default ./.aam)
#   AAM_QUICKSTART_PORT_BASE  first of the loopback ports (default 4000):
#                             gateway +0, attest +1, sidecar +2, demo model
#                             provider +10, demo CRM +11
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

HOME_DIR=${AAM_QUICKSTART_HOME:-$top/.aam}
case "$HOME_DIR" in /*) ;; *) HOME_DIR="$top/$HOME_DIR" ;; esac
BUILD=${AAM_BUILD_DIR:-$top/build}
case "$BUILD" in /*) ;; *) BUILD="$top/$BUILD" ;; esac
BASE=${AAM_QUICKSTART_PORT_BASE:-4000}

PORT_GW=$BASE
PORT_ATTEST=$((BASE + 1))
PORT_AGENT=$((BASE + 2))
PORT_MODEL=$((BASE + 10))
PORT_CRM=$((BASE + 11))
GW_URL="http://127.0.0.1:$PORT_GW"
ATTEST_URL="http://127.0.0.1:$PORT_ATTEST"
AGENT_URL="http://127.0.0.1:$PORT_AGENT"
MODEL_URL="http://127.0.0.1:$PORT_MODEL"
CRM_URL="http://127.0.0.1:$PORT_CRM"

CFG="$HOME_DIR/aam.yaml"
RUN="$HOME_DIR/run"
LOG="$HOME_DIR/log"
PINS="$HOME_DIR/pins"
DEMO="$HOME_DIR/demo"
STATE="$HOME_DIR/state"
SOFTHSM_MODULE=${AAM_SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
SPIFFE_ID="spiffe://prod/agent/finance-analyst"
VAULT_TOKEN_LABEL="aam"
AGENT_TOKEN_LABEL="aam-agent"
AGENT_KEY_LABEL="agent-key"

export SOFTHSM2_CONF="$HOME_DIR/softhsm2.conf"
export AAM_CONFIG="$CFG"

# ---- output ----------------------------------------------------------------------

say() { printf 'quickstart: %s\n' "$*"; }
warn() { printf 'quickstart: %s\n' "$*" >&2; }

# The numbered story steps: one PASS/FAIL line each, and a summary.
STEP_N=0
STEP_FAILED=0
STEP_LINES=()
step_result() { # ok|fail TITLE [DETAIL]
	STEP_N=$((STEP_N + 1))
	local verdict=PASS
	if [ "$1" != ok ]; then
		verdict=FAIL
		STEP_FAILED=$((STEP_FAILED + 1))
	fi
	local line
	line=$(printf '%2d. %-4s %s' "$STEP_N" "$verdict" "$2")
	[ -n "${3:-}" ] && line="$line -- $3"
	STEP_LINES+=("$line")
	printf '%s\n' "$line"
}

# Set-up failures name the step, point at its log, and stop the story.
SETUP_FAILED=""
setup_fail() { # STEP LOGFILE
	[ -n "$SETUP_FAILED" ] || SETUP_FAILED="$1"
	warn "set-up step FAILED: $1"
	if [ -n "${2:-}" ] && [ -f "$2" ]; then
		warn "---- last lines of $2 ----"
		tail -n 25 "$2" >&2
		warn "---- end ----"
	fi
}

pause() {
	if [ "$MODE" = run ] && [ -t 0 ] && [ -t 1 ]; then
		read -r -p "    (Enter for the next step) " _ || true
	fi
}

# ---- processes -------------------------------------------------------------------

# start NAME CMD...: runs CMD detached (its own session, stdin /dev/null),
# stdout and stderr appended to log/NAME.log, pid in run/NAME.pid.
start_proc() {
	local name=$1
	shift
	mkdir -p "$RUN" "$LOG"
	{
		printf '\n==== %s start %s ====\n' "$name" "$(date -u +%FT%TZ)"
	} >>"$LOG/$name.log"
	setsid "$@" </dev/null >>"$LOG/$name.log" 2>&1 &
	echo $! >"$RUN/$name.pid"
}

# The pid in run/NAME.pid when that process is alive and is still the
# program we started (a recycled pid is never signalled).
live_pid() {
	local name=$1 f="$RUN/$1.pid" pid
	[ -f "$f" ] || return 1
	pid=$(cat "$f" 2>/dev/null) || return 1
	case "$pid" in '' | *[!0-9]*) return 1 ;; esac
	kill -0 "$pid" 2>/dev/null || return 1
	local exe
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
	# "setsid" for the instant between the fork and the exec.
	case "$(basename "${exe% (deleted)}")" in
	aam-* | swtpm | setsid) ;;
	*) return 1 ;;
	esac
	echo "$pid"
}

stop_proc() {
	local name=$1 pid
	if pid=$(live_pid "$name"); then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			warn "$name (pid $pid) did not stop in 10 s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		say "stopped $name (pid $pid)"
	fi
	rm -f "$RUN/$name.pid"
}

SERVICES_STOP_ORDER=(aam-agent aam-gateway aam-attest aam-mock-saas aam-mock-provider swtpm aam-vault)
stop_all() {
	for s in "${SERVICES_STOP_ORDER[@]}"; do stop_proc "$s"; done
}

# wait_http URL SECONDS NAME: until URL answers 200 (or NAME exits).
wait_http() {
	local url=$1 secs=$2 name=$3
	for _ in $(seq 1 $((secs * 10))); do
		if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then return 0; fi
		live_pid "$name" >/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# wait_listen URL SECONDS NAME: until URL answers with any HTTP status (the
# demo upstreams answer 401 without their key), or NAME exits.
wait_listen() {
	local url=$1 secs=$2 name=$3 code
	for _ in $(seq 1 $((secs * 10))); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null || true)
		[ -n "$code" ] && [ "$code" != 000 ] && return 0
		live_pid "$name" >/dev/null || return 1
		sleep 0.1
	done
	return 1
}

bin() { # the path of a built binary, empty when it was not built
	local p
	for p in "$BUILD/vault/$1" "$BUILD/attest/$1" "$BUILD/agent/$1" "$BUILD/gateway/$1" \
		"$BUILD/tools/aamctl/$1" "$BUILD/tools/audit-verify/$1" "$BUILD/tests/$1"; do
		if [ -x "$p" ]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

aamctl() { "$AAMCTL" -c "$CFG" "$@"; }

# ---- subcommands without the story -----------------------------------------------

usage() {
	cat <<EOF
usage: deploy/quickstart.sh [--check | env | stop | reset | --help]
  (none)    install, build, start the stack, run the story; leaves it running
  --check   the same story without prompts; stops everything; non-zero exit on failure
  env       print export lines (AAM_CONFIG, service URLs) for the running stack
  stop      stop the stack (state in $HOME_DIR is kept)
  reset     stop the stack and remove $HOME_DIR
EOF
}

print_env() {
	cat <<EOF
export AAM_CONFIG='$CFG'
export SOFTHSM2_CONF='$SOFTHSM2_CONF'
export AAM_GATEWAY_URL='$GW_URL'
export AAM_ATTEST_URL='$ATTEST_URL'
export AAM_AGENT_URL='$AGENT_URL'
export AAM_DEMO_MODEL_URL='$MODEL_URL'
export AAM_DEMO_CRM_URL='$CRM_URL'
export OPENAI_BASE_URL='$AGENT_URL/v1'
export OPENAI_API_KEY='unused-the-sidecar-strips-it'
export ANTHROPIC_BASE_URL='$AGENT_URL'
export ANTHROPIC_API_KEY='unused-the-sidecar-strips-it'
export PATH='$BUILD/tools/aamctl:$BUILD/tools/audit-verify:$BUILD/agent':"\$PATH"
EOF
}

MODE=run
case "${1:-}" in
"") ;;
--check) MODE=check ;;
env)
	if [ ! -f "$CFG" ]; then
		warn "no stack in $HOME_DIR (run deploy/quickstart.sh first)"
		exit 1
	fi
	print_env
	exit 0
	;;
stop)
	stop_all
	exit 0
	;;
reset)
	stop_all
	case "$HOME_DIR" in
	/ | "$top" | "${HOME:-/}")
		warn "refusing to remove $HOME_DIR"
		exit 1
		;;
	esac
	rm -rf -- "$HOME_DIR"
	say "removed $HOME_DIR"
	exit 0
	;;
-h | --help)
	usage
	exit 0
	;;
*)
	warn "unknown argument '$1' (try --help)"
	exit 2
	;;
esac

# ---- 1. dependencies and build ---------------------------------------------------

say "installing what is missing (deploy/install-deps.sh)"
if ! bash deploy/install-deps.sh; then
	warn "set-up step FAILED: install-deps (run as root on Debian 12)"
	exit 1
fi

TARGETS=(aam-vault aam-attest aam-gateway aam-agent aamctl aam-audit-verify aam-mock-saas aam-mock-provider)
if [ -f "$BUILD/CMakeCache.txt" ] && [ -n "${AAM_BUILD_DIR:-}" ]; then
	say "reusing the build in $BUILD"
else
	say "configuring a Release build in $BUILD"
	# The demo upstreams are test programs, so the test tree is configured too
	# (only the targets below are built).  Sanitizers, fuzzing and -Werror
	# belong to tests/run.sh and CI; a build folder reused from them is
	# switched back here.
	mkdir -p "$BUILD"
	if ! cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAAM_BUILD_TESTS=ON \
		-DAAM_SANITIZE=OFF -DAAM_FUZZ=OFF -DAAM_WERROR=OFF >"$BUILD/quickstart-configure.log" 2>&1; then
		cat "$BUILD/quickstart-configure.log" >&2
		warn "set-up step FAILED: cmake configure"
		exit 1
	fi
fi
known=$(cmake --build "$BUILD" --target help 2>/dev/null | sed -n 's/^\.\.\. \([^ ]*\).*/\1/p')
want=()
for t in "${TARGETS[@]}"; do
	if grep -qx -- "$t" <<<"$known"; then want+=("$t"); fi
done
# A generator whose help lists no targets this way: ask for all of them.
[ ${#want[@]} -gt 0 ] || want=("${TARGETS[@]}")
say "building: ${want[*]}"
if ! cmake --build "$BUILD" -j "$(nproc 2>/dev/null || echo 2)" --target "${want[@]}"; then
	# Build what can be built, one target at a time, so the failure names
	# the binary (and the steps that need it say so below).
	for t in "${want[@]}"; do
		cmake --build "$BUILD" -j "$(nproc 2>/dev/null || echo 2)" --target "$t" >"$BUILD/quickstart-build-$t.log" 2>&1 ||
			warn "set-up step FAILED: build $t (see $BUILD/quickstart-build-$t.log)"
	done
fi
missing=()
for t in "${TARGETS[@]}"; do bin "$t" >/dev/null || missing+=("$t"); done
if [ ${#missing[@]} -gt 0 ]; then
	warn "not built (not in this tree yet): ${missing[*]}"
fi

VAULT=$(bin aam-vault || true)
ATTEST=$(bin aam-attest || true)
GATEWAY=$(bin aam-gateway || true)
AGENT=$(bin aam-agent || true)
AAMCTL=$(bin aamctl || true)
VERIFY=$(bin aam-audit-verify || true)
MOCK_SAAS=$(bin aam-mock-saas || true)
MOCK_PROVIDER=$(bin aam-mock-provider || true)

# A second run restarts the daemons on the same state.
stop_all >/dev/null

# Something else on our ports would answer in place of the stack.
busy=()
for p in "$PORT_GW" "$PORT_ATTEST" "$PORT_AGENT" "$PORT_MODEL" "$PORT_CRM" $((BASE + 21)) $((BASE + 22)); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then busy+=("$p"); fi
done
if [ ${#busy[@]} -gt 0 ]; then
	warn "set-up step FAILED: ports in use on 127.0.0.1: ${busy[*]}"
	warn "(another quickstart stack? 'deploy/quickstart.sh stop', or set AAM_QUICKSTART_PORT_BASE)"
	exit 1
fi

# ---- 2. state folder, SoftHSM2 tokens ---------------------------------------------

umask 077
mkdir -p "$HOME_DIR" "$RUN" "$LOG" "$PINS" "$DEMO" "$STATE/vault" "$STATE/agent" \
	"$HOME_DIR/softhsm/tokens" "$HOME_DIR/policies" "$HOME_DIR/tools" "$HOME_DIR/audit"
chmod 700 "$HOME_DIR" "$PINS" "$DEMO" "$STATE" "$STATE/vault" "$STATE/agent"

cat >"$SOFTHSM2_CONF" <<EOF
# SoftHSM2 for the quickstart only: tokens under $HOME_DIR/softhsm/tokens.
directories.tokendir = $HOME_DIR/softhsm/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF

# new_secret FILE: 32 random bytes, hex, into a 0600 file (once).
new_secret() {
	if [ ! -s "$1" ]; then
		(umask 077 && head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n' >"$1")
	fi
	chmod 600 "$1"
}
for f in vault-so.pin vault-user.pin agent-so.pin agent-user.pin; do new_secret "$PINS/$f"; done
new_secret "$DEMO/provider.key"
new_secret "$DEMO/crm.key"

# The PKCS#11 calls the quickstart needs that no packaged tool does without
# a PIN on its command line (softhsm2-util and pkcs11-tool take PINs as
# arguments or from a terminal): token initialisation and an agent key pair
# generated on the token.  Plain python3 + ctypes, PINs read from files.
p11() {
	python3 - "$@" <<'PYEOF'
import ctypes as C, sys
mod, action, label = sys.argv[1], sys.argv[2], sys.argv[3]
lib = C.CDLL(mod)
UL = C.c_ulong
class TokenInfo(C.Structure):
    _fields_ = [("label", C.c_char * 32), ("manufacturerID", C.c_char * 32),
                ("model", C.c_char * 16), ("serialNumber", C.c_char * 16), ("flags", UL)] + \
               [(n, UL) for n in ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j")] + \
               [("hw", C.c_ubyte * 2), ("fw", C.c_ubyte * 2), ("utc", C.c_char * 16)]
class Attr(C.Structure):
    _fields_ = [("type", UL), ("pValue", C.c_void_p), ("ulValueLen", UL)]
class Mech(C.Structure):
    _fields_ = [("mechanism", UL), ("pParameter", C.c_void_p), ("ulParameterLen", UL)]
def ck(rv, what):
    if rv != 0:
        sys.stderr.write("p11: %s failed: CKR 0x%x\n" % (what, rv)); sys.exit(1)
def pin(path):
    with open(path, "rb") as f:
        return f.read().strip()
def slots():
    n = UL(0)
    ck(lib.C_GetSlotList(0, None, C.byref(n)), "C_GetSlotList")
    arr = (UL * n.value)()
    ck(lib.C_GetSlotList(0, arr, C.byref(n)), "C_GetSlotList")
    out = []
    for s in arr[: n.value]:
        ti = TokenInfo()
        if lib.C_GetTokenInfo(UL(s), C.byref(ti)) == 0:
            out.append((s, ti.label.decode().rstrip(), ti.flags))
    return out
def find(lbl):
    for s, l, fl in slots():
        if l == lbl and fl & 0x400:
            return s
    return None
def session(slot):
    h = UL(0)
    ck(lib.C_OpenSession(UL(slot), UL(6), None, None, C.byref(h)), "C_OpenSession")
    return h
ck(lib.C_Initialize(None), "C_Initialize")
if action == "init-token":
    so, user = pin(sys.argv[4]), pin(sys.argv[5])
    if find(label) is None:
        free = [s for s, l, fl in slots() if not fl & 0x400]
        if not free:
            sys.stderr.write("p11: no free slot\n"); sys.exit(1)
        lab = label.encode().ljust(32, b" ")
        ck(lib.C_InitToken(UL(free[0]), so, UL(len(so)), lab), "C_InitToken")
        h = session(find(label))
        ck(lib.C_Login(h, UL(0), so, UL(len(so))), "C_Login(SO)")
        ck(lib.C_InitPIN(h, user, UL(len(user))), "C_InitPIN")
        lib.C_Logout(h); lib.C_CloseSession(h)
        print("created")
    else:
        print("exists")
elif action == "keygen":
    user, keylabel = pin(sys.argv[4]), sys.argv[5].encode()
    slot = find(label)
    if slot is None:
        sys.stderr.write("p11: no token %s\n" % label); sys.exit(1)
    h = session(slot)
    ck(lib.C_Login(h, UL(1), user, UL(len(user))), "C_Login")
    cls = UL(3)  # CKO_PRIVATE_KEY
    lb = C.create_string_buffer(keylabel, len(keylabel))
    t = (Attr * 2)(Attr(0x0, C.cast(C.byref(cls), C.c_void_p), C.sizeof(cls)),
                   Attr(0x3, C.cast(lb, C.c_void_p), len(keylabel)))
    ck(lib.C_FindObjectsInit(h, t, UL(2)), "C_FindObjectsInit")
    obj, cnt = UL(0), UL(0)
    ck(lib.C_FindObjects(h, C.byref(obj), UL(1), C.byref(cnt)), "C_FindObjects")
    lib.C_FindObjectsFinal(h)
    if cnt.value:
        print("exists")
    else:
        yes, no = C.c_ubyte(1), C.c_ubyte(0)
        p256 = C.create_string_buffer(bytes.fromhex("06082a8648ce3d030107"), 10)
        kid = C.create_string_buffer(b"\x01", 1)
        def a(t, v, n): return Attr(t, C.cast(v, C.c_void_p), n)
        pub = (Attr * 5)(a(0x180, p256, 10), a(0x1, C.byref(yes), 1), a(0x10A, C.byref(yes), 1),
                         a(0x3, lb, len(keylabel)), a(0x102, kid, 1))
        prv = (Attr * 7)(a(0x1, C.byref(yes), 1), a(0x2, C.byref(yes), 1), a(0x103, C.byref(yes), 1),
                         a(0x162, C.byref(no), 1), a(0x108, C.byref(yes), 1),
                         a(0x3, lb, len(keylabel)), a(0x102, kid, 1))
        m = Mech(0x1040, None, 0)  # CKM_EC_KEY_PAIR_GEN
        hp, hk = UL(0), UL(0)
        ck(lib.C_GenerateKeyPair(h, C.byref(m), pub, UL(5), prv, UL(7), C.byref(hp), C.byref(hk)),
           "C_GenerateKeyPair")
        print("created")
    lib.C_Logout(h); lib.C_CloseSession(h)
lib.C_Finalize(None)
PYEOF
}

# ---- 3. configuration ------------------------------------------------------------

write_config() {
	local agent_key
	if [ -n "${AGENT_TCTI:-}" ]; then
		agent_key="  tcti: \"$AGENT_TCTI\"
  state_dir: $STATE/agent"
	else
		agent_key="  pkcs11_key: \"pkcs11:token=$AGENT_TOKEN_LABEL;object=$AGENT_KEY_LABEL;type=private\"
  pkcs11_module: $SOFTHSM_MODULE
  pin_file: $PINS/agent-user.pin"
	fi
	local ek_ca="[]"
	[ -n "${EK_CA:-}" ] && ek_ca="[$EK_CA]"
	cat >"$CFG.new" <<EOF
# Generated by deploy/quickstart.sh from deploy/etc/aam/aam.yaml's layout:
# every service on 127.0.0.1, every path under $HOME_DIR.  Regenerated on
# each run; the state it points at is kept.
log:
  level: info

vault:
  state_dir: $STATE/vault
  db: $STATE/vault/vault.db
  sockets:
    gateway: $RUN/vault-gateway.sock
    attest: $RUN/vault-attest.sock
    admin: $RUN/vault-admin.sock
  pkcs11:
    module: $SOFTHSM_MODULE
    token: "pkcs11:token=$VAULT_TOKEN_LABEL"
    pin_file: $PINS/vault-user.pin
  access:
    admin:
      mode: "0600"
  connect_timeout: 5s
  request_timeout: 60s

attest:
  listen: 127.0.0.1:$PORT_ATTEST
  db: $STATE/attest.db
  issuer: $ATTEST_URL
  token_ttl: 5m
  ek_ca: $ek_ca
  vault_socket: $RUN/vault-attest.sock

gateway:
  listen: 127.0.0.1:$PORT_GW
  policies: $HOME_DIR/policies
  external_url: $GW_URL
  routes: $HOME_DIR/routes.yaml
  tools: $HOME_DIR/tools
  db: $STATE/gateway.db
  vault_socket: $RUN/vault-gateway.sock
  attest_url: $ATTEST_URL
  issuer: $ATTEST_URL
  audience: $GW_URL
  request_timeout: 60s
  revocation_poll: 2s
  environment: prod

agent:
  listen: 127.0.0.1:$PORT_AGENT
  attest_url: $ATTEST_URL
  gateway_url: $GW_URL
  audience: $GW_URL
  spiffe_id: $SPIFFE_ID
$agent_key
EOF
	mv "$CFG.new" "$CFG"
}

# The demo model routes: both routes of the reference policy and one it does
# not allow, all served by the DEMO model provider.  The credential is a
# vault secret name, never a key.
write_routes() {
	cat >"$HOME_DIR/routes.yaml" <<EOF
# Demo routes generated by deploy/quickstart.sh (docs/ROUTING.md).  Every
# deployment is the DEMO model provider on $MODEL_URL.
model_list:
  - model_name: reasoning-high
    deployments:
      - provider: openai-compatible
        model: demo-reasoning
        api_base: $MODEL_URL
        credential: demo-provider-key
        timeout: 30s
        cost: { input_per_mtok: 3.0, output_per_mtok: 15.0 }
  - model_name: summarization
    deployments:
      - provider: openai-compatible
        model: demo-summarizer
        api_base: $MODEL_URL
        credential: demo-provider-key
        timeout: 30s
        cost: { input_per_mtok: 0.5, output_per_mtok: 1.5 }
  - model_name: frontier-max
    deployments:
      - provider: openai-compatible
        model: demo-frontier
        api_base: $MODEL_URL
        credential: demo-provider-key
        timeout: 30s
        cost: { input_per_mtok: 15.0, output_per_mtok: 75.0 }
router_settings:
  routing_strategy: simple-shuffle
  num_retries: 1
EOF
}

# The CRM catalogue as shipped, pointed at the DEMO CRM.
write_catalogue() {
	sed "s#https://crm.example.com/services/data/v1#$CRM_URL/services/data/v1#" \
		deploy/etc/aam/tools/crm.yaml >"$HOME_DIR/tools/crm.yaml"
}

# ---- 4. the stack ----------------------------------------------------------------

need() { # NAME PATH: fails the set-up step when a binary is missing
	if [ -z "$2" ]; then
		setup_fail "$1 is not built (not in this tree yet)"
		return 1
	fi
}

AGENT_TCTI=""
EK_CA=""
AGENT_METHOD=pkcs11

bring_up() {
	need aamctl "$AAMCTL" || return 1
	need aam-vault "$VAULT" || return 1

	say "SoftHSM2 token '$VAULT_TOKEN_LABEL' for aam-vault ($HOME_DIR/softhsm)"
	local r
	r=$(p11 "$SOFTHSM_MODULE" init-token "$VAULT_TOKEN_LABEL" "$PINS/vault-so.pin" "$PINS/vault-user.pin" 2>"$LOG/p11.log") ||
		{ setup_fail "create the SoftHSM2 token" "$LOG/p11.log"; return 1; }
	say "  token $r; PINs in $PINS (0600)"

	write_config
	write_routes
	write_catalogue

	say "starting aam-vault"
	start_proc aam-vault "$VAULT" -c "$CFG"
	# Ready when its three sockets exist and the admin one answers (before
	# `keys init` it answers with a refusal that says so).
	local ok=0 ans
	for _ in $(seq 1 300); do
		if [ -S "$RUN/vault-admin.sock" ] && [ -S "$RUN/vault-gateway.sock" ] && [ -S "$RUN/vault-attest.sock" ]; then
			ans=$(aamctl keys show 2>&1) && { ok=1; break; }
			grep -q "cannot reach" <<<"$ans" || { ok=1; break; }
		fi
		live_pid aam-vault >/dev/null || break
		sleep 0.1
	done
	[ $ok = 1 ] || { setup_fail "start aam-vault" "$LOG/aam-vault.log"; return 1; }

	if aamctl keys show 2>/dev/null | grep -q "aam-audit"; then
		say "issuer, audit and secret keys already on the token (reused)"
	else
		say "aamctl keys init (issuer, audit and secret keys generated on the token)"
		aamctl keys init >"$LOG/keys-init.log" 2>&1 || { setup_fail "aamctl keys init" "$LOG/keys-init.log"; return 1; }
	fi
	# The audit verifier key, pinned now from the vault itself: the export's
	# own copy of the key is never what the verification trusts.
	aamctl keys show 2>/dev/null | awk '/^key: aam-audit \(current\)/{f=1} f&&/BEGIN PUBLIC KEY/{p=1} p{print} p&&/END PUBLIC KEY/{exit}' >"$HOME_DIR/audit-key.pem"
	[ -s "$HOME_DIR/audit-key.pem" ] || { setup_fail "read the audit public key (aamctl keys show)"; return 1; }

	need aam-attest "$ATTEST" || return 1
	say "starting aam-attest on $ATTEST_URL"
	start_proc aam-attest "$ATTEST" -c "$CFG"
	wait_http "$ATTEST_URL/healthz" 30 aam-attest || { setup_fail "start aam-attest" "$LOG/aam-attest.log"; return 1; }

	# A missing demo model provider or gateway (still being written in some
	# trees) fails the set-up, but the steps that do not need them still run
	# so that every other part is exercised.
	if need aam-mock-provider "$MOCK_PROVIDER"; then
		say "starting the DEMO model provider (aam-mock-provider, OpenAI/Anthropic wire formats) on $MODEL_URL"
		start_proc aam-mock-provider "$MOCK_PROVIDER" --port "$PORT_MODEL" --require-key "$DEMO/provider.key"
		wait_listen "$MODEL_URL/v1/models" 20 aam-mock-provider ||
			setup_fail "start the DEMO model provider" "$LOG/aam-mock-provider.log"
	fi

	need aam-mock-saas "$MOCK_SAAS" || return 1
	say "starting the DEMO CRM (aam-mock-saas --mode crm) on $CRM_URL"
	start_proc aam-mock-saas "$MOCK_SAAS" --mode crm --port "$PORT_CRM" --key-file "$DEMO/crm.key" --record "$LOG/demo-crm-requests.jsonl"
	wait_listen "$CRM_URL/services/data/v1/accounts" 20 aam-mock-saas ||
		{ setup_fail "start the DEMO CRM" "$LOG/aam-mock-saas.log"; return 1; }

	say "importing the demo provider key and the CRM key into the vault (stdin, bound to the DEMO URLs)"
	if ! aamctl secret show demo-provider-key >/dev/null 2>&1; then
		aamctl secret put demo-provider-key --type bearer --bind "$MODEL_URL/" <"$DEMO/provider.key" >"$LOG/secret.log" 2>&1 ||
			{ setup_fail "aamctl secret put demo-provider-key" "$LOG/secret.log"; return 1; }
	fi
	if ! aamctl secret show crm-api >/dev/null 2>&1; then
		aamctl secret put crm-api --type bearer --bind "$CRM_URL/services/data/v1/" <"$DEMO/crm.key" >>"$LOG/secret.log" 2>&1 ||
			{ setup_fail "aamctl secret put crm-api" "$LOG/secret.log"; return 1; }
	fi

	register_agent || return 1

	say "applying the reference policy policies/examples/finance-analyst-readonly.yaml"
	aamctl policy lint policies/examples/finance-analyst-readonly.yaml >"$LOG/policy.log" 2>&1 ||
		{ setup_fail "aamctl policy lint (reference policy)" "$LOG/policy.log"; return 1; }
	cp policies/examples/finance-analyst-readonly.yaml "$HOME_DIR/policies/finance-analyst-readonly.yaml"

	if need aam-gateway "$GATEWAY"; then
		say "starting aam-gateway on $GW_URL"
		start_proc aam-gateway "$GATEWAY" -c "$CFG"
		wait_http "$GW_URL/healthz" 30 aam-gateway || setup_fail "start aam-gateway" "$LOG/aam-gateway.log"
	fi

	need aam-agent "$AGENT" || return 1
	say "starting the aam-agent sidecar on $AGENT_URL ($AGENT_METHOD key)"
	start_proc aam-agent "$AGENT" -c "$CFG" sidecar
	wait_http "$AGENT_URL/.aam/health" 60 aam-agent || { setup_fail "start the aam-agent sidecar (attestation)" "$LOG/aam-agent.log"; return 1; }
	say "  sidecar attested: $(curl -fsS --max-time 5 "$AGENT_URL/.aam/health")"
	[ -z "$SETUP_FAILED" ]
}

# swtpm, when installed: a software TPM manufactured like a real one (EK
# certificate from a local CA under $HOME_DIR/swtpm), so the agent attests
# with TPM evidence.  Otherwise a key generated on a second SoftHSM2 token.
start_swtpm() {
	local d="$HOME_DIR/swtpm"
	mkdir -p "$d/state" "$d/ca"
	if [ ! -f "$d/state/tpm2-00.permall" ]; then
		cat >"$d/swtpm-localca.conf" <<EOF
statedir = $d/ca
signingkey = $d/ca/signkey.pem
issuercert = $d/ca/issuercert.pem
certserial = $d/ca/certserial
EOF
		cat >"$d/swtpm-localca.options" <<EOF
--platform-manufacturer AAM-quickstart
--platform-version 2.1
--platform-model quickstart
EOF
		cat >"$d/swtpm_setup.conf" <<EOF
create_certs_tool = $(command -v swtpm_localca)
create_certs_tool_config = $d/swtpm-localca.conf
create_certs_tool_options = $d/swtpm-localca.options
active_pcr_banks = sha256
EOF
		TMPDIR="$d" swtpm_setup --tpm2 --tpmstate "$d/state" --config "$d/swtpm_setup.conf" \
			--create-ek-cert --create-platform-cert --lock-nvram --overwrite \
			--display >"$LOG/swtpm-setup.log" 2>&1 || return 1
	fi
	# The EK chain: the local CA's self-signed root (trust anchor) and the
	# intermediate that signed the EK certificate.
	EK_CA="\"$d/ca/swtpm-localca-rootca-cert.pem\", \"$d/ca/issuercert.pem\""
	local port=$((BASE + 21))
	start_proc swtpm swtpm socket --tpm2 --tpmstate "dir=$d/state" \
		--server "type=tcp,bindaddr=127.0.0.1,port=$port" \
		--ctrl "type=tcp,bindaddr=127.0.0.1,port=$((port + 1))" --flags startup-clear
	sleep 0.5
	live_pid swtpm >/dev/null || return 1
	AGENT_TCTI="swtpm:host=127.0.0.1,port=$port"
}

register_agent() {
	if [ "${AAM_QUICKSTART_AGENT_KEY:-auto}" != pkcs11 ] && command -v swtpm >/dev/null &&
		command -v swtpm_setup >/dev/null && command -v swtpm_localca >/dev/null; then
		if start_swtpm; then
			AGENT_METHOD=tpm
		else
			warn "swtpm did not start (see $LOG/swtpm-setup.log); using a SoftHSM2 agent key"
			stop_proc swtpm >/dev/null
			AGENT_TCTI=""
			EK_CA=""
		fi
	fi
	if [ "$AGENT_METHOD" = pkcs11 ]; then
		say "agent key: EC P-256 generated on SoftHSM2 token '$AGENT_TOKEN_LABEL' (not extractable)"
		p11 "$SOFTHSM_MODULE" init-token "$AGENT_TOKEN_LABEL" "$PINS/agent-so.pin" "$PINS/agent-user.pin" >/dev/null 2>>"$LOG/p11.log" &&
			p11 "$SOFTHSM_MODULE" keygen "$AGENT_TOKEN_LABEL" "$PINS/agent-user.pin" "$AGENT_KEY_LABEL" >/dev/null 2>>"$LOG/p11.log" ||
			{ setup_fail "create the agent key on SoftHSM2" "$LOG/p11.log"; return 1; }
	else
		say "agent key: in the software TPM (swtpm), attested with its EK certificate"
	fi
	# The TPM settings (tcti, ek_ca) are in the config from here on; aam-attest
	# reads ek_ca at start, so it is restarted when the TPM path is used.
	write_config
	if [ "$AGENT_METHOD" = tpm ]; then
		stop_proc aam-attest >/dev/null
		start_proc aam-attest "$ATTEST" -c "$CFG"
		wait_http "$ATTEST_URL/healthz" 30 aam-attest || { setup_fail "restart aam-attest with the EK CA" "$LOG/aam-attest.log"; return 1; }
	fi

	local idj jkt
	if [ "$AGENT_METHOD" = tpm ]; then
		idj=$("$AGENT" -c "$CFG" identity --ek-cert "$STATE/agent/ek.der" 2>"$LOG/agent-identity.log") ||
			{ setup_fail "aam-agent identity (TPM)" "$LOG/agent-identity.log"; return 1; }
	else
		idj=$("$AGENT" -c "$CFG" identity 2>"$LOG/agent-identity.log") ||
			{ setup_fail "aam-agent identity (PKCS#11)" "$LOG/agent-identity.log"; return 1; }
	fi
	jkt=$(jq -r .jkt <<<"$idj")
	say "  agent key thumbprint (RFC 7638): $jkt"

	local existing
	existing=$(aamctl workload show "$SPIFFE_ID" --json 2>/dev/null || true)
	if [ -n "$existing" ] && [ "$(jq -r '.status // empty' <<<"$existing")" = active ] &&
		[ "$(jq -r '.method // empty' <<<"$existing")" = "$AGENT_METHOD" ]; then
		if jq -e --arg a "$GW_URL" '.audiences | index($a)' >/dev/null 2>&1 <<<"$existing"; then
			say "  workload $SPIFFE_ID already registered (reused)"
			return 0
		fi
		setup_fail "register the demo agent: $SPIFFE_ID is registered for audience $(jq -r '.audiences | join(",")' <<<"$existing"), not $GW_URL (AAM_QUICKSTART_PORT_BASE changed?); use the same ports or 'deploy/quickstart.sh reset'"
		return 1
	fi
	if [ -n "$existing" ]; then
		# Revoked, or registered with the other kind of key (swtpm appeared
		# or went away): a registration is never silently replaced.
		setup_fail "register the demo agent: $SPIFFE_ID is already registered ($(jq -r '.status + ", method " + .method' <<<"$existing")); run 'deploy/quickstart.sh reset' for a clean start"
		return 1
	fi
	local common=(--owner alice@example.com --team finance --env prod --deployment quickstart --audience "$GW_URL")
	say "registering $SPIFFE_ID (method $AGENT_METHOD, owner alice@example.com, team finance)"
	if [ "$AGENT_METHOD" = tpm ]; then
		aamctl workload register "$SPIFFE_ID" --method tpm --ek-pub "$STATE/agent/ek.der" \
			--pcrs 0,1,7 "${common[@]}" >"$LOG/register.log" 2>&1
	else
		aamctl workload register "$SPIFFE_ID" --method pkcs11 --jkt "$jkt" "${common[@]}" >"$LOG/register.log" 2>&1
	fi || { setup_fail "aamctl workload register" "$LOG/register.log"; return 1; }
}

# ---- 5. the story ----------------------------------------------------------------

# http METHOD URL [BODY]: sets CODE and BODY_OUT
http() {
	local out
	out=$(mktemp)
	if [ -n "${3:-}" ]; then
		CODE=$(curl -sS -o "$out" -w '%{http_code}' --max-time 60 -X "$1" -H 'Content-Type: application/json' \
			-H 'Authorization: Bearer placeholder-the-sidecar-strips-this' --data-binary "$3" "$2" 2>/dev/null)
	else
		CODE=$(curl -sS -o "$out" -w '%{http_code}' --max-time 60 -X "$1" "$2" 2>/dev/null)
	fi
	BODY_OUT=$(cat "$out")
	rm -f "$out"
}

story() {
	echo
	say "The story: an attested finance-analyst agent, through its sidecar on $AGENT_URL"
	echo

	http POST "$AGENT_URL/v1/chat/completions" \
		'{"model":"reasoning-high","messages":[{"role":"user","content":"Summarise Q3 revenue for Acme."}],"max_tokens":200}'
	if [ "$CODE" = 200 ] && jq -e '.choices[0].message.content' >/dev/null 2>&1 <<<"$BODY_OUT"; then
		step_result ok "allowed model call: reasoning-high answered 200" \
			"\"$(jq -r '.choices[0].message.content' <<<"$BODY_OUT" | head -c 60)\""
	else
		step_result fail "allowed model call: reasoning-high" "HTTP $CODE $(head -c 300 <<<"$BODY_OUT")"
	fi
	pause

	http POST "$AGENT_URL/v1/chat/completions" \
		'{"model":"frontier-max","messages":[{"role":"user","content":"Hello"}],"max_tokens":50}'
	if [ "$CODE" = 403 ] && grep -q policy_denied <<<"$BODY_OUT"; then
		step_result ok "model outside the allow list denied: frontier-max got 403 policy_denied" \
			"$(jq -r '.error.message' <<<"$BODY_OUT" 2>/dev/null)"
	else
		step_result fail "model outside the allow list denied (frontier-max)" "HTTP $CODE $(head -c 300 <<<"$BODY_OUT")"
	fi
	pause

	http POST "$AGENT_URL/v1/tools/salesforce.accounts/read" '{"id":"001000000000001AAA"}'
	if [ "$CODE" = 200 ] && grep -q "Acme" <<<"$BODY_OUT"; then
		step_result ok "CRM read allowed: salesforce.accounts/read answered 200 (credential injected by aam-vault)" \
			"$(jq -c '{Id,Name}' <<<"$BODY_OUT" 2>/dev/null)"
	else
		step_result fail "CRM read allowed (salesforce.accounts/read)" "HTTP $CODE $(head -c 300 <<<"$BODY_OUT")"
	fi
	pause

	local before after
	before=$(grep -c export "$LOG/demo-crm-requests.jsonl" 2>/dev/null || true)
	http POST "$AGENT_URL/v1/tools/salesforce.accounts/export" '{"format":"csv"}'
	after=$(grep -c export "$LOG/demo-crm-requests.jsonl" 2>/dev/null || true)
	if [ "$CODE" = 403 ] && grep -q policy_denied <<<"$BODY_OUT" && [ "${before:-0}" = "${after:-0}" ]; then
		step_result ok "CRM export denied: 403 policy_denied, nothing reached the CRM" \
			"$(jq -r '.error.message' <<<"$BODY_OUT" 2>/dev/null)"
	else
		step_result fail "CRM export denied (salesforce.accounts/export)" "HTTP $CODE $(head -c 300 <<<"$BODY_OUT")"
	fi
	pause

	local spend
	spend=$(curl -fsS --max-time 10 "$GW_URL/metrics" 2>/dev/null |
		awk '/^aam_gateway_spend_usd_total/ {s += $NF} END {if (NR) printf "%.6f", s}')
	if [ -n "$spend" ] && awk -v s="$spend" 'BEGIN {exit !(s > 0)}'; then
		step_result ok "budget spent: \$$spend of the policy's \$75/day (gateway /metrics aam_gateway_spend_usd_total)"
	else
		step_result fail "budget spent (aam_gateway_spend_usd_total in $GW_URL/metrics)" "got '${spend:-nothing}'"
	fi
	pause

	# The vault signs a checkpoint every second (docs/AUDIT.md) and an export
	# covers what a checkpoint covers: wait for the one after the story.
	sleep 2
	local out nrec
	out="$HOME_DIR/audit/export-$(date -u +%Y%m%dT%H%M%SZ)"
	if ! aamctl audit export --out "$out" >"$LOG/audit-export.log" 2>&1; then
		step_result fail "audit exported (aamctl audit export)" "$(tail -n 3 "$LOG/audit-export.log" | tr '\n' ' ')"
	elif ! "$VERIFY" --key "$HOME_DIR/audit-key.pem" "$out" >"$LOG/audit-verify.log" 2>&1; then
		step_result fail "audit verified by aam-audit-verify" "exit $? (see $LOG/audit-verify.log)"
	else
		# The four requests above (two model calls, two tool calls, allowed
		# and denied) must be in what was verified.
		nrec=$(cat "$out"/records/*.jsonl 2>/dev/null | grep -c '"type":"\(model\.[a-z]*\|tool\.call\)"' || true)
		if [ "${nrec:-0}" -ge 4 ]; then
			step_result ok "audit exported to ${out#"$top"/} and verified by aam-audit-verify (key pinned from the vault; $nrec model/tool records)" \
				"$(tail -n 1 "$LOG/audit-verify.log")"
		else
			step_result fail "audit export holds the story's requests" "only ${nrec:-0} model/tool records in $out"
		fi
	fi
}

STORY_TITLES=(
	"allowed model call"
	"model outside the allow list denied"
	"CRM read allowed"
	"CRM export denied"
	"budget spent"
	"audit exported and verified by aam-audit-verify"
)

if bring_up; then
	story
else
	echo
	for t in "${STORY_TITLES[@]}"; do step_result fail "$t" "not run: set-up step '$SETUP_FAILED' failed"; done
fi

echo
say "summary: $((STEP_N - STEP_FAILED))/$STEP_N steps passed"
for l in "${STEP_LINES[@]}"; do printf '  %s\n' "$l"; done
say "logs in $LOG, pids in $RUN"

if [ "$MODE" = check ]; then
	stop_all >/dev/null
	say "--check: stack stopped"
	[ "$STEP_FAILED" -eq 0 ] && exit 0
	exit 1
fi

echo
if [ -z "$SETUP_FAILED" ]; then
	cat <<EOF
The stack is running:
  aam-gateway  $GW_URL        aam-attest  $ATTEST_URL
  aam-agent    $AGENT_URL  (sidecar: signs every request with the agent's key)
  DEMO upstreams: model provider $MODEL_URL, CRM $CRM_URL

Point the OpenAI SDK at the sidecar (any API key: the sidecar strips it):
  from openai import OpenAI
  client = OpenAI(base_url="$AGENT_URL/v1", api_key="unused")
  client.chat.completions.create(model="reasoning-high",
                                 messages=[{"role": "user", "content": "hi"}])
  # or: eval "\$(deploy/quickstart.sh env)"   (sets OPENAI_BASE_URL, AAM_CONFIG, ...)

Stop it:  deploy/quickstart.sh stop      Start over:  deploy/quickstart.sh reset
EOF
else
	say "set-up failed at: $SETUP_FAILED.  Whatever started is still running;"
	say "'deploy/quickstart.sh stop' stops it."
fi
[ "$STEP_FAILED" -eq 0 ]
