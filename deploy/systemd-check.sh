#!/usr/bin/env bash
# Checks the production deployment against a real systemd.
#
#   deploy/systemd-check.sh --static     units vs. example configuration only
#                                        (no root, no network, a second)
#   deploy/systemd-check.sh [options]    the whole check (root, Debian mirror)
#
# The whole check builds the Debian package (cpack -G DEB), makes a minimal
# Debian 12 root with debootstrap, installs the package in it, boots that root
# with `systemd-nspawn -b` (a fresh set of namespaces and a private network:
# nothing of the host's mounts, processes or ports is touched), creates a
# SoftHSM2 token owned by aam-vault, runs `aamctl keys init`, starts
# aam-vault, aam-attest and aam-gateway with `systemctl`, checks that each is
# active and that the gateway answers /healthz and /readyz, registers and
# starts an aam-agent@check sidecar (a PKCS#11 key) and sends a denied
# request through it, reloads, exports and verifies the audit log, and runs
# `systemd-analyze security` on the loaded units (online, systemd 252).  Every
# step prints PASS or FAIL; the exit status is non-zero when one failed.  It
# is re-runnable: the root is kept and reused, and every run reinstalls the
# package and starts from empty daemon state and a new token.
#
# Options:
#   --static         only the static agreement check (below), then exit
#   --deb FILE       use this package instead of building one
#   --build DIR      build folder for the package (default: ./build-systemd-check)
#   --root DIR       the debootstrap root (default: /tmp/aam-systemd-root; never
#                    inside the repository)
#   --mirror URL     Debian mirror (default: the first deb.debian.org-style URI
#                    in /etc/apt/sources.list*, else http://deb.debian.org/debian)
#   --keep           leave the container running at the end (its PID is printed;
#                    stop it with `kill -TERM PID`)
#   --log DIR        where the logs go (default: a new folder under /tmp)
#
# Requirements (whole check): root with CAP_SYS_ADMIN, the packages debootstrap
# and systemd-container (installed when missing), python3 and a SoftHSM2
# module on the host (the token is initialised from the host through the
# PKCS#11 API, so no PIN is ever on a command line).  PINs are random, written
# to 0600 files inside the root, and never printed.
#
# The static check reads deploy/systemd/*.service and deploy/etc/aam/aam.yaml
# and verifies that every path a daemon writes (databases, the audit log and
# its checkpoints, the vault's sockets, the agent's key blobs) lies in a
# folder its unit makes writable (StateDirectory=, RuntimeDirectory=,
# ReadWritePaths=), that the peers' socket paths match the vault's, that each
# socket's group is one the vault belongs to and its peer runs as, that
# peers can reach the socket folder, and that the vault's system call filter
# still allows the chown it needs to hand a socket to a group.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# The static check's inputs (overridable to check an installed or edited copy).
UNITS=${AAM_CHECK_UNITS:-$here/deploy/systemd}
CONFIG=${AAM_CHECK_CONFIG:-$here/deploy/etc/aam/aam.yaml}

STATIC_ONLY=0
DEB=
BUILD=$here/build-systemd-check
ROOT=/tmp/aam-systemd-root
MIRROR=
KEEP=0
LOGDIR=
while [ $# -gt 0 ]; do
	case "$1" in
	--static) STATIC_ONLY=1 ;;
	--deb) DEB=$2; shift ;;
	--build) BUILD=$2; shift ;;
	--root) ROOT=$2; shift ;;
	--mirror) MIRROR=$2; shift ;;
	--keep) KEEP=1 ;;
	--log) LOGDIR=$2; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "systemd-check: unknown option $1 (--help)" >&2; exit 2 ;;
	esac
	shift
done

FAILS=0
pass() { printf 'PASS  %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; FAILS=$((FAILS + 1)); }
die() { printf 'systemd-check: %s\n' "$*" >&2; exit 1; }

# ---- static agreement: units vs. the example configuration ----------------------

# yaml_paths FILE: "dotted.key value" for every scalar of the (block-style,
# two-space indented) example configuration, comments stripped.
yaml_paths() {
	awk '
	{ sub(/[ \t]+#.*$/, ""); if ($0 ~ /^[ \t]*(#|$)/) next }
	match($0, /^ */) {
		ind = RLENGTH / 2; line = substr($0, RLENGTH + 1)
		if (line !~ /^[A-Za-z_][A-Za-z0-9_]*:/) next
		key = line; sub(/:.*/, "", key)
		val = line; sub(/^[^:]*:[ ]*/, "", val); gsub(/^"|"$/, "", val)
		path[ind] = key; full = key
		for (i = ind - 1; i >= 0; i--) full = path[i] "." full
		if (val != "") print full, val
	}' "$1"
}

# unit_values UNIT KEY: the values of KEY= in UNIT, one per line (words split).
unit_values() {
	sed -n "s/^$2=//p" "$1" | tr ' ' '\n' | sed '/^$/d'
}

# writable UNIT: the folders UNIT makes writable, absolute.
writable() {
	local u=$1 d
	for d in $(unit_values "$u" StateDirectory); do echo "/var/lib/${d//%i/NAME}"; done
	for d in $(unit_values "$u" RuntimeDirectory); do echo "/run/$d"; done
	for d in $(unit_values "$u" ReadWritePaths); do d=${d#-}; echo "${d#+}"; done
}

# under PATH DIR...: PATH is DIR or inside it.
under() {
	local p=$1 d
	shift
	for d in "$@"; do
		case "$p/" in "${d%/}/"*) return 0 ;; esac
	done
	return 1
}

static_check() {
	local cfg u
	cfg=$(yaml_paths "$CONFIG")
	get() { awk -v k="$1" '$1 == k { print $2; exit }' <<<"$cfg"; }
	for u in aam-vault aam-attest aam-gateway aam-agent@; do
		[ -f "$UNITS/$u.service" ] || { fail "static: $UNITS/$u.service missing"; return; }
	done

	# Every written path of each daemon inside its unit's writable folders.
	local -a w
	check_in() { # DAEMON KEY DEFAULT
		local unit=$UNITS/$1.service v
		v=$(get "$2")
		v=${v:-$3}
		mapfile -t w < <(writable "$unit")
		if [ -z "$v" ]; then
			fail "static: $2 is not set"
		elif under "$v" "${w[@]}"; then
			pass "static: $2 = $v is writable by $1 (${w[*]})"
		else
			fail "static: $2 = $v is outside $1's writable folders (${w[*]:-none})"
		fi
	}
	local sd
	sd=$(get vault.state_dir)
	check_in aam-vault vault.state_dir /var/lib/aam/vault
	check_in aam-vault vault.db "$sd/vault.db"
	check_in aam-vault vault.audit.db "$sd/audit.db"
	check_in aam-vault vault.audit.checkpoint_dir "$sd/checkpoints"
	check_in aam-vault vault.sockets.gateway /run/aam/vault-gateway.sock
	check_in aam-vault vault.sockets.attest /run/aam/vault-attest.sock
	check_in aam-vault vault.sockets.admin /run/aam/vault-admin.sock
	check_in aam-attest attest.db /var/lib/aam/attest/attest.db
	check_in aam-gateway gateway.db /var/lib/aam/gateway/gateway.db
	# aam-agent@NAME: the example's state_dir must be one instance's folder.
	local ad
	ad=$(get agent.state_dir)
	if [[ "$ad" =~ ^/var/lib/aam/agent/[^/]+$ ]] &&
		[ "$(unit_values "$UNITS/aam-agent@.service" StateDirectory)" = "aam/agent/%i" ]; then
		pass "static: agent.state_dir = $ad is an aam-agent@ instance's StateDirectory"
	else
		fail "static: agent.state_dir = $ad is not /var/lib/aam/agent/NAME (aam-agent@NAME's StateDirectory)"
	fi

	# The peers name the vault's sockets.
	local peer
	for peer in attest gateway; do
		if [ "$(get $peer.vault_socket)" = "$(get vault.sockets.$peer)" ]; then
			pass "static: $peer.vault_socket = vault.sockets.$peer"
		else
			fail "static: $peer.vault_socket ($(get $peer.vault_socket)) != vault.sockets.$peer ($(get vault.sockets.$peer))"
		fi
		# The socket's group: the vault must belong to it (to chown), the peer
		# must run as it, and the peer's user must be in the uid list.
		local g pu pg vg
		g=$(get vault.access.$peer.group)
		pu=$(unit_values "$UNITS/aam-$peer.service" User)
		pg="$(unit_values "$UNITS/aam-$peer.service" Group) $(unit_values "$UNITS/aam-$peer.service" SupplementaryGroups | tr '\n' ' ')"
		vg=" $(unit_values "$UNITS/aam-vault.service" SupplementaryGroups | tr '\n' ' ') "
		if [ -n "$g" ] && [[ " $pg " == *" $g "* ]] && [[ "$vg" == *" $g "* ]]; then
			pass "static: vault.access.$peer.group = $g: aam-$peer runs in it, aam-vault is a member"
		else
			fail "static: vault.access.$peer.group = '${g}' is not a group both aam-$peer runs in and aam-vault belongs to"
		fi
		if grep -q "^    $peer:" "$CONFIG" && awk -v p="    $peer:" '$0 == p { on = 1; next } on && /^    [a-z]/ { on = 0 } on' "$CONFIG" | grep -q "uids: \[\"$pu\"\]"; then
			pass "static: vault.access.$peer.uids = [$pu] (aam-$peer's User=)"
		else
			fail "static: vault.access.$peer.uids does not name aam-$peer's user $pu"
		fi
	done

	# The socket folder: systemd chowns a RuntimeDirectory to the unit's
	# user and group, so peers (not in group aam-vault) reach it only
	# through its "other" search bit.
	local rm
	rm=$(unit_values "$UNITS/aam-vault.service" RuntimeDirectoryMode)
	rm=${rm:-0755}
	if (((8#$rm & 1) == 1)); then
		pass "static: RuntimeDirectoryMode=$rm lets aam-attest and aam-gateway reach the sockets"
	else
		fail "static: RuntimeDirectoryMode=$rm: aam-attest and aam-gateway cannot reach /run/aam (it becomes aam-vault:aam-vault)"
	fi
	# ~@privileged removes @chown; the vault chowns its sockets to the peers' groups.
	if grep -q '^SystemCallFilter=~.*@privileged' "$UNITS/aam-vault.service" &&
		! awk '/^SystemCallFilter=~.*@privileged/ { seen = 1; next } seen && /^SystemCallFilter=@chown/ { ok = 1 } END { exit !ok }' "$UNITS/aam-vault.service"; then
		fail "static: aam-vault's SystemCallFilter denies chown (via ~@privileged) but the vault hands its sockets to groups"
	else
		pass "static: aam-vault's SystemCallFilter allows the chown of its sockets"
	fi
}

static_check
if [ "$STATIC_ONLY" = 1 ]; then
	[ "$FAILS" -eq 0 ] && exit 0
	echo "systemd-check: $FAILS static check(s) failed" >&2
	exit 1
fi

# ---- the whole check: a booted Debian 12 root --------------------------------------

[ "$(id -u)" -eq 0 ] || die "the whole check needs root (or use --static)"
case "$ROOT" in "$here"/*) die "--root must be outside the repository" ;; esac
LOGDIR=${LOGDIR:-$(mktemp -d /tmp/aam-systemd-check.XXXXXX)}
mkdir -p "$LOGDIR"
echo "systemd-check: logs in $LOGDIR"

need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
if [ ${#need[@]} -gt 0 ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >"$LOGDIR/apt-host.log" 2>&1 ||
		die "apt-get install ${need[*]} failed ($LOGDIR/apt-host.log)"
fi
SOFTHSM_MODULE=
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so; do
	[ -e "$m" ] && SOFTHSM_MODULE=$m && break
done
[ -n "$SOFTHSM_MODULE" ] || die "no SoftHSM2 module on the host (apt-get install softhsm2)"

if [ -z "$MIRROR" ]; then
	MIRROR=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null |
		awk '{ print $2; exit }' || true)
	MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi

# 1. The package.
if [ -z "$DEB" ]; then
	{ cmake -S "$here" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAAM_BUILD_TESTS=OFF &&
		cmake --build "$BUILD" -j"$(nproc)" && (cd "$BUILD" && cpack -G DEB); } \
		>"$LOGDIR/build.log" 2>&1 || die "package build failed ($LOGDIR/build.log)"
	DEB=$(ls -t "$BUILD"/aam_*.deb | head -1)
fi
[ -f "$DEB" ] || die "no package $DEB"
pass "package $(basename "$DEB")"

# 2. The root: Debian 12, systemd, SoftHSM2 and the package's dependencies.
if [ ! -e "$ROOT/.aam-debootstrap-done" ]; then
	rm -rf "$ROOT"
	deps=$(dpkg-deb -f "$DEB" Depends | tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/ //g' | grep -v '^$' | paste -sd, -)
	debootstrap --variant=minbase \
		--include="systemd,systemd-sysv,dbus,softhsm2,p11-kit,curl,ca-certificates,$deps" \
		bookworm "$ROOT" "$MIRROR" >"$LOGDIR/debootstrap.log" 2>&1 ||
		die "debootstrap $MIRROR failed ($LOGDIR/debootstrap.log)"
	echo aam-check >"$ROOT/etc/hostname"
	touch "$ROOT/.aam-debootstrap-done"
fi
pass "Debian 12 root $ROOT"

# nspawn without a host systemd: no machined registration, no scope unit.
NSPAWN=(systemd-nspawn -q --register=no --keep-unit -D "$ROOT")
# nspawn without a booted init prints a harmless "Attempted to remove disk
# file system under /run/systemd/nspawn/propagate/..." when it exits here.
inroot() {
	"${NSPAWN[@]}" --pipe "$@" </dev/null 2> >(grep -v '^Attempted to remove disk file system' >&2)
}

# 3. Install (or reinstall) the package; start from empty daemon state.
# Without /etc/aam/aam.yaml the postinst installs the example again.
cp "$DEB" "$ROOT/root/aam.deb"
rm -f "$ROOT/etc/aam/aam.yaml"
if inroot /bin/sh -c 'export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q --reinstall /root/aam.deb' >"$LOGDIR/dpkg.log" 2>&1; then
	pass "apt-get install $(basename "$DEB") inside the root (its dependencies from the mirror)"
else
	fail "apt-get install of the package inside the root ($LOGDIR/dpkg.log)"
	exit 1
fi
rm -rf "$ROOT"/var/lib/aam/vault/* "$ROOT"/var/lib/aam/attest/* "$ROOT"/var/lib/aam/gateway/* \
	"$ROOT"/var/lib/aam/agent/check "$ROOT"/var/lib/softhsm/tokens/*
# The operator's part of "First start" (docs/DEPLOYMENT.md): a policy and the
# routes.  The configuration itself is the package's, as shipped.
inroot /bin/sh -c 'install -m 0640 -o root -g aam /usr/share/aam/examples/policies/finance-analyst-readonly.yaml /etc/aam/policies/
	install -m 0640 -o root -g aam /usr/share/aam/examples/routes.yaml /etc/aam/routes.yaml' \
	>>"$LOGDIR/dpkg.log" 2>&1
if cmp -s "$ROOT/etc/aam/aam.yaml" "$ROOT/usr/share/aam/examples/aam.yaml"; then
	pass "/etc/aam/aam.yaml is the shipped example, unchanged"
else
	fail "/etc/aam/aam.yaml differs from the shipped example"
fi

# 4. A SoftHSM2 token "aam" in the root's token folder, owned by aam-vault.
# The PINs are random, in 0600 files; the host's SoftHSM2 initialises the
# token through PKCS#11 (the token files do not depend on where they are).
umask 077
head -c 24 /dev/urandom | od -An -v -tx1 | tr -d ' \n' >"$ROOT/root/vault-so.pin"
head -c 24 /dev/urandom | od -An -v -tx1 | tr -d ' \n' >"$ROOT/etc/aam/vault.pin"
inroot /bin/sh -c 'chown aam-vault:aam-vault /etc/aam/vault.pin && chmod 0600 /etc/aam/vault.pin'
hsmconf=$LOGDIR/softhsm2.conf
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
	"$ROOT/var/lib/softhsm/tokens" >"$hsmconf"
# p11_init CONF LABEL SO_PIN_FILE USER_PIN_FILE [KEY_LABEL]
p11_init() {
	SOFTHSM2_CONF=$1 python3 - "$SOFTHSM_MODULE" "${@:2}" <<'PYEOF'

# Initialises a token and its user PIN: C_InitToken on the first free slot,
# then C_InitPIN as the SO.  The PINs come from files.
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
label = sys.argv[2].encode().ljust(32, b" ")
so = open(sys.argv[3], "rb").read().strip()
user = open(sys.argv[4], "rb").read().strip()
UL = ctypes.c_ulong
def check(rv, what):
    if rv != 0:
        raise SystemExit("%s: CKR 0x%x" % (what, rv))
check(lib.C_Initialize(None), "C_Initialize")
n = UL(0)
check(lib.C_GetSlotList(1, None, ctypes.byref(n)), "C_GetSlotList")
slots = (UL * n.value)()
check(lib.C_GetSlotList(1, slots, ctypes.byref(n)), "C_GetSlotList")
slot = slots[n.value - 1]  # SoftHSM2 always offers one uninitialised slot, last
check(lib.C_InitToken(UL(slot), so, UL(len(so)), label), "C_InitToken")
# The new token gets a new slot id: look it up by label.
check(lib.C_GetSlotList(1, None, ctypes.byref(n)), "C_GetSlotList")
slots = (UL * n.value)()
check(lib.C_GetSlotList(1, slots, ctypes.byref(n)), "C_GetSlotList")
info = (ctypes.c_ubyte * 512)()  # CK_TOKEN_INFO is smaller; label comes first
found = None
for s in slots[: n.value]:
    if lib.C_GetTokenInfo(UL(s), info) == 0 and bytes(info[:32]) == label:
        found = s
if found is None:
    raise SystemExit("token not found after C_InitToken")
h = UL(0)
check(lib.C_OpenSession(UL(found), UL(6), None, None, ctypes.byref(h)), "C_OpenSession")
check(lib.C_Login(h, UL(0), so, UL(len(so))), "C_Login(SO)")
check(lib.C_InitPIN(h, user, UL(len(user))), "C_InitPIN")
lib.C_Logout(h)
if len(sys.argv) > 5:
    # An EC P-256 key pair for an agent: private half sensitive, never
    # extractable (PKCS#11 v2.40 attribute and mechanism numbers).
    check(lib.C_Login(h, UL(1), user, UL(len(user))), "C_Login(USER)")
    class Attr(ctypes.Structure):
        _fields_ = [("type", UL), ("pValue", ctypes.c_void_p), ("ulValueLen", UL)]
    class Mech(ctypes.Structure):
        _fields_ = [("mechanism", UL), ("pParameter", ctypes.c_void_p), ("ulParameterLen", UL)]
    keep = []
    def attr(t, value):
        buf = ctypes.create_string_buffer(value, len(value))
        keep.append(buf)
        return Attr(t, ctypes.cast(buf, ctypes.c_void_p), len(value))
    T, F = b"\x01", b"\x00"
    name, kid = sys.argv[5].encode(), b"\x01"
    p256 = bytes.fromhex("06082a8648ce3d030107")
    pub = [attr(0x180, p256), attr(0x1, T), attr(0x10A, T), attr(0x3, name), attr(0x102, kid)]
    prv = [attr(0x1, T), attr(0x2, T), attr(0x103, T), attr(0x162, F), attr(0x108, T),
           attr(0x3, name), attr(0x102, kid)]
    pub_t, prv_t = (Attr * len(pub))(*pub), (Attr * len(prv))(*prv)
    hpub, hprv = UL(0), UL(0)
    check(lib.C_GenerateKeyPair(h, ctypes.byref(Mech(0x1040, None, 0)), pub_t, UL(len(pub)),
                                prv_t, UL(len(prv)), ctypes.byref(hpub), ctypes.byref(hprv)),
          "C_GenerateKeyPair")
    lib.C_Logout(h)
    print("key pair generated")
lib.C_CloseSession(h)
lib.C_Finalize(None)
print("token initialised")
PYEOF
}
if p11_init "$hsmconf" aam "$ROOT/root/vault-so.pin" "$ROOT/etc/aam/vault.pin" >"$LOGDIR/token.log" 2>&1; then
	inroot /bin/sh -c 'chown -R aam-vault:aam-vault /var/lib/softhsm/tokens && chmod 0700 /var/lib/softhsm/tokens'
	pass "SoftHSM2 token 'aam' in /var/lib/softhsm/tokens, owned by aam-vault (PINs in 0600 files)"
else
	fail "SoftHSM2 token ($LOGDIR/token.log)"
	exit 1
fi

# 5. Boot it: systemd as PID 1 of a new PID namespace, with its own mounts,
# and a private network (only lo), so nothing collides with the host.
# The package enabled the units, so the boot starts them; the check then
# drives them with systemctl as an operator would.
setsid "${NSPAWN[@]}" --private-network -b --machine=aam-check --console=pipe \
	</dev/null >"$LOGDIR/boot.log" 2>&1 &
NSPAWN_PID=$!
INIT=
# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
	if [ "$KEEP" = 1 ]; then
		echo "systemd-check: container left running: systemd-nspawn PID $NSPAWN_PID (stop: kill -TERM $NSPAWN_PID)"
		return
	fi
	# nspawn turns SIGTERM into an orderly halt of the container.
	kill -TERM "$NSPAWN_PID" 2>/dev/null || true
	for _ in $(seq 60); do
		kill -0 "$NSPAWN_PID" 2>/dev/null || break
		sleep 0.5
	done
	# Still there after 30 s (or nspawn gone but its container not): SIGKILL
	# to the container's PID 1 ends its whole PID namespace, nothing else.
	if [ -n "$INIT" ] && [ "$(cat "/proc/$INIT/comm" 2>/dev/null)" = systemd ] &&
		awk '/^NSpid:/ { exit !(NF == 3 && $3 == 1) }' "/proc/$INIT/status" 2>/dev/null; then
		kill -KILL "$INIT" 2>/dev/null || true
	fi
	for _ in $(seq 20); do
		kill -0 "$NSPAWN_PID" 2>/dev/null || return 0
		sleep 0.5
	done
	kill -KILL "$NSPAWN_PID" 2>/dev/null || true
}
trap cleanup EXIT
# The container's PID 1: the child of nspawn that is PID 1 of its own PID
# namespace ("NSpid: <host pid> 1"), running systemd.
for _ in $(seq 60); do
	for p in $(pgrep -P "$NSPAWN_PID" || true); do
		if awk '/^NSpid:/ { exit !(NF == 3 && $3 == 1) }' "/proc/$p/status" 2>/dev/null &&
			[ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd ]; then
			INIT=$p
		fi
	done
	[ -n "$INIT" ] && break
	sleep 0.5
done
[ -n "$INIT" ] || { fail "boot: no container init ($LOGDIR/boot.log)"; exit 1; }
# inct CMD...: run CMD in the container's namespaces and root.
inct() { nsenter -t "$INIT" -a -r -w "$@" </dev/null; }
state=$(inct timeout 120 systemctl is-system-running --wait 2>/dev/null || true)
case "$state" in
running | degraded) pass "boot: systemd $(inct systemctl --version | awk 'NR==1{print $2}') is PID 1 in the container ($state)" ;;
*) fail "boot: system state '$state' ($LOGDIR/boot.log)"; exit 1 ;;
esac

# 6. The daemons, as the First start section says.
inct systemctl stop aam-gateway aam-attest aam-vault >/dev/null 2>&1 || true
inct systemctl reset-failed >/dev/null 2>&1 || true
journal() { inct journalctl -b --no-pager -o cat -u "$1" >"$LOGDIR/$1.journal" 2>&1 || true; }
active() { # UNIT: active and staying active for two seconds
	local s
	sleep 2
	s=$(inct systemctl is-active "$1" || true)
	journal "$1"
	if [ "$s" = active ]; then
		pass "systemctl is-active $1"
	else
		fail "systemctl is-active $1: $s (last lines of $LOGDIR/$1.journal:)"
		tail -n 8 "$LOGDIR/$1.journal" | sed 's/^/      /'
	fi
}
inct systemctl start aam-vault.service || true
active aam-vault.service
if inct aamctl keys init >"$LOGDIR/keys-init.log" 2>&1; then
	pass "aamctl keys init (issuer, audit and secret keys on the token)"
else
	fail "aamctl keys init ($LOGDIR/keys-init.log)"
fi
inct systemctl start aam-attest.service aam-gateway.service || true
active aam-attest.service
active aam-gateway.service
for ep in healthz readyz; do
	code=$(inct curl -s -o "/tmp/$ep.out" -w '%{http_code}' "http://127.0.0.1:4000/$ep" || true)
	inct cat "/tmp/$ep.out" >"$LOGDIR/$ep.out" 2>/dev/null || true
	if [ "$code" = 200 ]; then
		pass "gateway /$ep: 200"
	else
		fail "gateway /$ep: $code ($(head -c 300 "$LOGDIR/$ep.out"))"
	fi
done
code=$(inct curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:4001/.well-known/jwks.json || true)
[ "$code" = 200 ] && pass "aam-attest JWKS (signed through the vault socket): 200" ||
	fail "aam-attest JWKS: $code"
if inct stat -c '%n %U:%G %a' /run/aam /run/aam/vault-gateway.sock /run/aam/vault-attest.sock \
	/run/aam/vault-admin.sock >"$LOGDIR/sockets.txt" 2>&1; then
	pass "sockets: $(paste -sd';' "$LOGDIR/sockets.txt")"
else
	fail "sockets ($LOGDIR/sockets.txt)"
fi
# The sidecar, aam-agent@check: its key is an EC key on a SoftHSM2 token of
# its own, kept in the instance's StateDirectory (production uses the TPM;
# this container has none).  Registered with aamctl, then started by
# systemctl; a request for a model the policy does not allow must come back
# 403 policy_denied from the gateway, which proves that the attested token
# and the DPoP proofs made it through.
AG=/var/lib/aam/agent/check
mkdir -p "$ROOT$AG/tokens"
head -c 24 /dev/urandom | od -An -v -tx1 | tr -d ' \n' >"$ROOT/root/agent-so.pin"
head -c 24 /dev/urandom | od -An -v -tx1 | tr -d ' \n' >"$ROOT/etc/aam/agent-check.pin"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
	"$ROOT$AG/tokens" >"$LOGDIR/agent-softhsm2.conf"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
	"$AG/tokens" >"$ROOT/etc/aam/agent-check-softhsm2.conf"
cat >"$ROOT/etc/aam/agent-check.yaml" <<'YAML'
# aam-agent@check (deploy/systemd-check.sh): a PKCS#11 agent key.
log:
  level: info
agent:
  listen: 127.0.0.1:4002
  attest_url: http://127.0.0.1:4001
  gateway_url: http://127.0.0.1:4000
  pkcs11_key: "pkcs11:token=agent;object=agent-key;type=private"
  pkcs11_module: /usr/lib/softhsm/libsofthsm2.so
  pin_file: /etc/aam/agent-check.pin
  spiffe_id: spiffe://prod/agent/finance-analyst
YAML
mkdir -p "$ROOT/etc/systemd/system/aam-agent@check.service.d"
printf '[Service]\nEnvironment=SOFTHSM2_CONF=/etc/aam/agent-check-softhsm2.conf\n' \
	>"$ROOT/etc/systemd/system/aam-agent@check.service.d/softhsm.conf"
chmod 0644 "$ROOT/etc/systemd/system/aam-agent@check.service.d/softhsm.conf"
jkt=
if p11_init "$LOGDIR/agent-softhsm2.conf" agent "$ROOT/root/agent-so.pin" \
	"$ROOT/etc/aam/agent-check.pin" agent-key >"$LOGDIR/agent-token.log" 2>&1 &&
	inct sh -c "chown -R aam-agent:aam-agent $AG /etc/aam/agent-check.pin &&
		chmod 0600 /etc/aam/agent-check.pin &&
		chown root:aam /etc/aam/agent-check.yaml /etc/aam/agent-check-softhsm2.conf &&
		chmod 0640 /etc/aam/agent-check.yaml /etc/aam/agent-check-softhsm2.conf" &&
	inct env SOFTHSM2_CONF=/etc/aam/agent-check-softhsm2.conf \
		setpriv --reuid aam-agent --regid aam-agent --init-groups \
		aam-agent -c /etc/aam/agent-check.yaml identity \
		>"$LOGDIR/agent-identity.json" 2>"$LOGDIR/agent-identity.log"; then
	jkt=$(sed -n 's/.*"jkt":"\([^"]*\)".*/\1/p' "$LOGDIR/agent-identity.json")
fi
if [ -n "$jkt" ] && inct aamctl workload register spiffe://prod/agent/finance-analyst \
	--method pkcs11 --jkt "$jkt" --owner ops@example.com --team finance --env prod \
	--deployment systemd-check --audience http://127.0.0.1:4000 >"$LOGDIR/agent-register.log" 2>&1; then
	pass "agent key on its own SoftHSM2 token (jkt $jkt), workload registered"
else
	fail "agent key and registration ($LOGDIR/agent-token.log, agent-identity.log, agent-register.log)"
fi
inct systemctl daemon-reload
inct systemctl start aam-agent@check.service || true
active aam-agent@check.service
code=$(inct curl -s -o /tmp/agent-health.out -w '%{http_code}' http://127.0.0.1:4002/.aam/health || true)
inct cat /tmp/agent-health.out >"$LOGDIR/agent-health.out" 2>/dev/null || true
if [ "$code" = 200 ]; then
	pass "sidecar /.aam/health: 200 $(head -c 200 "$LOGDIR/agent-health.out")"
else
	fail "sidecar /.aam/health: $code $(head -c 300 "$LOGDIR/agent-health.out")"
fi
code=$(inct curl -s -o /tmp/agent-deny.out -w '%{http_code}' -H 'Content-Type: application/json' \
	--data-binary '{"model":"long-context","messages":[{"role":"user","content":"hi"}]}' \
	http://127.0.0.1:4002/v1/chat/completions || true)
inct cat /tmp/agent-deny.out >"$LOGDIR/agent-deny.out" 2>/dev/null || true
if [ "$code" = 403 ] && grep -q policy_denied "$LOGDIR/agent-deny.out"; then
	pass "sidecar -> gateway, a model outside the policy's allow list: 403 policy_denied"
else
	fail "sidecar -> gateway, a model outside the allow list: $code $(head -c 300 "$LOGDIR/agent-deny.out")"
fi

# SIGHUP reloads (ExecReload=) keep the daemons up.
if inct systemctl reload aam-vault.service aam-gateway.service >"$LOGDIR/reload.log" 2>&1 &&
	sleep 1 && [ "$(inct systemctl is-active aam-vault.service aam-gateway.service | sort -u)" = active ]; then
	pass "systemctl reload aam-vault aam-gateway (SIGHUP): still active"
else
	fail "systemctl reload aam-vault aam-gateway ($LOGDIR/reload.log)"
fi
# The audit log, written under the sandbox: exported through the admin
# socket and verified against the audit key read from the vault.  The vault
# signs a checkpoint every second; wait for one.
sleep 2
if inct sh -c 'aamctl keys show | awk "/^key: aam-audit \(current\)/{f=1} f&&/BEGIN PUBLIC KEY/{p=1} p{print} p&&/END PUBLIC KEY/{exit}" >/root/audit-key.pem &&
	rm -rf /root/audit-export && aamctl audit export --out /root/audit-export &&
	aam-audit-verify --key /root/audit-key.pem /root/audit-export' >"$LOGDIR/audit.log" 2>&1; then
	pass "aamctl audit export + aam-audit-verify: $(tail -n 1 "$LOGDIR/audit.log")"
	# The sidecar's denied request is in the verified log.
	if inct sh -c 'cat /root/audit-export/records/*.jsonl' 2>/dev/null | grep -q 'policy_denied\|"deny"'; then
		pass "the denied request is in the verified audit log"
	else
		fail "the denied request is not in the exported audit log"
	fi
else
	fail "audit export and verification ($LOGDIR/audit.log)"
fi
# --man=no: a minimal root has no man(1); the pages themselves are checked below.
if inct systemd-analyze verify --man=no aam-vault.service aam-attest.service aam-gateway.service \
	aam-agent@check.service >"$LOGDIR/verify.log" 2>&1 && [ ! -s "$LOGDIR/verify.log" ]; then
	pass "systemd-analyze verify: the installed units, no message"
else
	fail "systemd-analyze verify ($LOGDIR/verify.log)"
fi
if inct sh -c 'for p in man8/aam-vault.8 man8/aam-attest.8 man8/aam-gateway.8 man1/aam-agent.1; do
	ls /usr/share/man/$p* >/dev/null || exit 1; done; test -f /usr/share/doc/aam/DEPLOYMENT.md' 2>/dev/null; then
	pass "the units' Documentation= (man pages, DEPLOYMENT.md) are installed"
else
	fail "a page named by the units' Documentation= is not installed"
fi

# What each daemon wrote, and where.
inct find /var/lib/aam -mindepth 1 -maxdepth 2 -printf '%p %u %m\n' >"$LOGDIR/state.txt" 2>&1 || true

for u in aam-vault.service aam-attest.service aam-gateway.service aam-agent@check.service; do
	journal "$u"
done

# 7. Exposure, online (the units as loaded by the running systemd).
echo "exposure (systemd-analyze security, online):"
for u in aam-vault.service aam-attest.service aam-gateway.service aam-agent@check.service; do
	if inct systemd-analyze security --no-pager "$u" >"$LOGDIR/security-$u.txt" 2>&1; then :; fi
	score=$(grep -E 'Overall exposure level' "$LOGDIR/security-$u.txt" | sed 's/.*: *//' || true)
	if [ -n "$score" ]; then
		pass "systemd-analyze security $u: $score"
	else
		fail "systemd-analyze security $u ($LOGDIR/security-$u.txt)"
	fi
done

if [ "$FAILS" -eq 0 ]; then
	echo "systemd-check: all steps passed (logs in $LOGDIR)"
	exit 0
fi
echo "systemd-check: $FAILS step(s) failed (logs in $LOGDIR)" >&2
exit 1
