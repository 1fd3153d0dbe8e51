#!/usr/bin/env bash
# Gateway benchmark (issue 6): ONE run, side by side, against the same
# aam-mock-provider on loopback:
#
#   mock      wrk -> aam-mock-provider directly (the key sent by wrk)
#   nginx     wrk -> nginx proxy_pass -> mock (nginx adds the key)
#   gw-vkey   wrk -> aam-gateway, virtual key (policy, budget and audit on)
#             -> aam-vault INJECT (adds the key) -> mock
#   gw-dpop   wrk -> aam-gateway, DPoP-bound token + a fresh pre-generated
#             proof per request (make_proofs.mjs) -> aam-vault -> mock
#
# plus `openssl speed ecdsap256` (the ES256 verification ceiling per core)
# in the same run.  The stack (aam-vault on SoftHSM2, aam-attest, the
# mocks, aam-gateway, the routes, the policy with a budget, the virtual
# key) is the SDK tests' driver, tests/e2e/gw_stack_driver.c, in --bench
# mode (no stream chunk delay, log level warn), built Release without
# sanitizers.  Every request is a non-streaming chat completion with the
# same body.  CPU per request comes from /proc/<pid>/stat (utime + stime)
# before and after each run, divided by the requests wrk completed.
#
#   bench/gateway/run.sh [SECONDS] [CONNECTIONS] [WRK_THREADS]
# Environment: AAM_BENCH_BUILD (default build-bench-rel);
# AAM_GATEWAY_HTTP_MODE=epoll runs the gateway on one epoll thread instead
# of a thread per connection (the threading-mode comparison of
# docs/GATEWAY.md; benchmark only).  gw-healthz and gw-models measure the
# front alone: GET /healthz, and GET /v1/models with the virtual key
# (authentication and policy, no upstream).
# AAM_BENCH_SECRET_CACHE_TTL=30s turns on aam-vault's decrypted-secret
# cache (vault.secret_cache_ttl, default off): no token decryption per
# INJECT.
# Needs wrk, nginx, node and openssl; when one is missing and we are root,
# this script installs nginx-light/wrk itself (tests never need them).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
DUR=${1:-10}
CONN=${2:-32}
WT=${3:-2}
BUILD=${AAM_BENCH_BUILD:-build-bench-rel}

for p in wrk nginx node openssl; do
	if ! command -v "$p" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$p" ]; then
		if [ "$(id -u)" -eq 0 ]; then
			bash deploy/install-deps.sh --bench >/dev/null
		else
			echo "bench/gateway: $p is missing (apt-get install nginx-light wrk)" >&2
			exit 1
		fi
	fi
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

echo "# building $BUILD (Release, no sanitizers)" >&2
mkdir -p "$BUILD"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAAM_SANITIZE=OFF -DAAM_BUILD_TESTS=ON \
	>"$BUILD/bench-gateway-configure.log" 2>&1 || { cat "$BUILD/bench-gateway-configure.log" >&2; exit 1; }
cmake --build "$BUILD" -j"$(nproc)" --target aam-e2e-gw-stack >"$BUILD/bench-gateway-build.log" 2>&1 ||
	{ tail -40 "$BUILD/bench-gateway-build.log" >&2; exit 1; }
export AAM_VAULT_BIN=$root/$BUILD/vault/aam-vault
export AAM_AAMCTL_BIN=$root/$BUILD/tools/aamctl/aamctl
export AAM_ATTEST_BIN=$root/$BUILD/attest/aam-attest
export AAM_AGENT_BIN=$root/$BUILD/agent/aam-agent
export AAM_GATEWAY_BIN=$root/$BUILD/gateway/aam-gateway
export AAM_MOCK_PROVIDER_BIN=$root/$BUILD/tests/aam-mock-provider
DRIVER=$root/$BUILD/tests/e2e/aam-e2e-gw-stack

tmp=$(mktemp -d /tmp/aam-bench-gw.XXXXXX)
nginx_pid=""
driver_pid=""
cleanup() {
	[ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
	exec 3>&- 2>/dev/null || true
	[ -n "$driver_pid" ] && wait "$driver_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# The stack: its stdin is a FIFO we hold open; closing it tears it down.
mkfifo "$tmp/in"
"$DRIVER" --bench <"$tmp/in" >"$tmp/info.json" 2>"$tmp/driver.log" &
driver_pid=$!
exec 3>"$tmp/in"
for _ in $(seq 1 600); do
	[ -s "$tmp/info.json" ] && break
	if ! kill -0 "$driver_pid" 2>/dev/null; then
		cat "$tmp/driver.log" >&2
		exit 1
	fi
	sleep 0.2
done
[ -s "$tmp/info.json" ] || { echo "bench/gateway: the stack did not start" >&2; exit 1; }
j() { node -e 'const i=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));let v=i;for(const k of process.argv[2].split("."))v=v[k];console.log(v)' "$tmp/info.json" "$1"; }
GW=$(j gateway_url)
MOCK=$(j mock_url)
VKEY=$(j vkey)
KEYFILE=$(j provider_key_file)
GW_PID=$(j pids.gateway)
VAULT_PID=$(j pids.vault)
MOCK_PID=$(j pids.mock)
AUDIT=$(j audit_backend)

# nginx: proxy_pass with upstream keep-alive, adding the provider key as the
# vault does.  aam-gateway runs a thread per connection on every core, so
# nginx gets one worker per core (worker_processes = nproc).
mkdir -p "$tmp/nginx"
NPORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
user_line=""
[ "$(id -u)" -eq 0 ] && user_line="user root;"
cat >"$tmp/nginx/nginx.conf" <<EOF
$user_line
worker_processes $(nproc);
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  upstream mock { server ${MOCK#http://}; keepalive 128; }
  server {
    listen 127.0.0.1:$NPORT;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer $(cat "$KEYFILE")";
    }
  }
}
EOF
chmod 600 "$tmp/nginx/nginx.conf"
"$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" &
nginx_pid=$!
for _ in $(seq 1 50); do
	curl -s -o /dev/null "http://127.0.0.1:$NPORT/_mock/stats" && break
	sleep 0.1
done

ticks() { # utime+stime of PIDS, in clock ticks (fields 14 and 15 after the comm)
	local t=0 p
	for p in "$@"; do
		[ -r "/proc/$p/stat" ] || continue
		t=$((t + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
	done
	echo "$t"
}
nginx_pids() { echo "$nginx_pid $(pgrep -P "$nginx_pid" | tr '\n' ' ')"; }
HZ=$(getconf CLK_TCK)

# run NAME URL SCRIPT "PIDS of the proxy" -- wrk with the env already set.
results=()
run() {
	local name=$1 url=$2 script=$3 pids=$4
	local b0 m0 v0 b1 m1 v1 out
	b0=$(ticks $pids)
	m0=$(ticks "$MOCK_PID")
	v0=$(ticks "$VAULT_PID")
	out=$(AAM_BENCH_THREADS=$WT wrk -t"$WT" -c"$CONN" -d"${DUR}s" --latency -s "$script" "$url")
	b1=$(ticks $pids)
	m1=$(ticks "$MOCK_PID")
	v1=$(ticks "$VAULT_PID")
	echo "$out" >"$tmp/wrk-$name.txt"
	echo "## $name" >&2
	echo "$out" >&2
	local reqs rps p50 p99 bad
	reqs=$(echo "$out" | awk '/requests in/ {print $1}')
	rps=$(echo "$out" | awk '/^Requests\/sec:/ {printf "%.0f", $2}')
	p50=$(echo "$out" | awk -F= '/AAM_BENCH p50_us/ {print $2}')
	p99=$(echo "$out" | awk -F= '/AAM_BENCH p99_us/ {print $2}')
	bad=$(echo "$out" | awk -F= '/AAM_BENCH non200/ {print $2}')
	local cpu_p cpu_m cpu_v
	cpu_p=$(awk -v a="$b0" -v b="$b1" -v n="$reqs" -v hz="$HZ" 'BEGIN{ if (a=="" || n==0) print "-"; else printf "%.1f", (b-a)*1e6/hz/n }')
	cpu_m=$(awk -v a="$m0" -v b="$m1" -v n="$reqs" -v hz="$HZ" 'BEGIN{ printf "%.1f", (b-a)*1e6/hz/n }')
	cpu_v=$(awk -v a="$v0" -v b="$v1" -v n="$reqs" -v hz="$HZ" 'BEGIN{ printf "%.1f", (b-a)*1e6/hz/n }')
	results+=("| $name | $rps | $((p50 / 1000)).$(printf '%03d' $((p50 % 1000))) | $((p99 / 1000)).$(printf '%03d' $((p99 % 1000))) | $cpu_p | $cpu_v | $cpu_m | $reqs | $bad |")
	eval "RPS_${name//-/_}=$rps"
}

KEY=$(cat "$KEYFILE")
# A short warm-up of each path (connections, caches), not recorded.
AAM_BENCH_AUTH="Bearer $KEY" AAM_BENCH_MODEL=mock-gpt-4o wrk -t"$WT" -c"$CONN" -d2s \
	-s bench/gateway/chat.lua "$MOCK" >/dev/null
AAM_BENCH_AUTH="" AAM_BENCH_MODEL=mock-gpt-4o wrk -t"$WT" -c"$CONN" -d2s \
	-s bench/gateway/chat.lua "http://127.0.0.1:$NPORT" >/dev/null
AAM_BENCH_AUTH="Bearer $VKEY" AAM_BENCH_MODEL=mock-gpt wrk -t"$WT" -c"$CONN" -d2s \
	-s bench/gateway/chat.lua "$GW" >/dev/null

AAM_BENCH_AUTH="Bearer $KEY" AAM_BENCH_MODEL=mock-gpt-4o \
	run mock "$MOCK" bench/gateway/chat.lua "$MOCK_PID"
AAM_BENCH_AUTH="" AAM_BENCH_MODEL=mock-gpt-4o \
	run nginx "http://127.0.0.1:$NPORT" bench/gateway/chat.lua "$(nginx_pids)"
AAM_BENCH_AUTH="Bearer $VKEY" AAM_BENCH_MODEL=mock-gpt \
	run gw-vkey "$GW" bench/gateway/chat.lua "$GW_PID"
# The front alone: no upstream (/healthz), and authentication + policy
# (/v1/models with the virtual key), for the threading-mode comparison.
AAM_BENCH_GET=/healthz run gw-healthz "$GW" bench/gateway/chat.lua "$GW_PID"
AAM_BENCH_AUTH="Bearer $VKEY" AAM_BENCH_GET=/v1/models \
	run gw-models "$GW" bench/gateway/chat.lua "$GW_PID"

# DPoP: enough proofs for 1.5x the virtual-key rate (a DPoP request costs
# more), generated just before the run (the gateway's iat window is 60 s).
NPROOFS=$(awk -v r="$RPS_gw_vkey" -v d="$DUR" 'BEGIN{ printf "%d", r*d*1.5 + 2000 }')
node bench/gateway/make_proofs.mjs "$tmp/info.json" spiffe://prod/agent/bench-dpop "$NPROOFS" \
	"$tmp/proofs.txt"
AAM_BENCH_PROOFS=$tmp/proofs.txt AAM_BENCH_MODEL=mock-gpt \
	run gw-dpop "$GW" bench/gateway/dpop.lua "$GW_PID"

VERIFY=$(openssl speed -seconds 3 ecdsap256 2>/dev/null | awk '/ecdsa \(nistp256\)/ {printf "%.0f", $NF}')

echo
echo "Command: ${AAM_GATEWAY_HTTP_MODE:+AAM_GATEWAY_HTTP_MODE=$AAM_GATEWAY_HTTP_MODE }${AAM_BENCH_SECRET_CACHE_TTL:+AAM_BENCH_SECRET_CACHE_TTL=$AAM_BENCH_SECRET_CACHE_TTL }bench/gateway/run.sh $DUR $CONN $WT   ($(nproc) CPUs, wrk -t$WT -c$CONN -d${DUR}s, $(date -u +%Y-%m-%d), audit backend: $AUDIT)"
echo
echo "| path | req/s | p50 ms | p99 ms | proxy CPU µs/req | vault CPU µs/req | mock CPU µs/req | requests | non-200 |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for r in "${results[@]}"; do echo "$r"; done
echo
awk -v g="$RPS_gw_vkey" -v n="$RPS_nginx" -v d="$RPS_gw_dpop" -v v="$VERIFY" 'BEGIN{
	printf "gateway (virtual key) / nginx throughput: %.2f (target >= 0.50)\n", g/n
	printf "ES256 verify ceiling (openssl speed ecdsap256, one core): %d verify/s\n", v
	printf "gateway (DPoP) / ES256 ceiling: %.2f (target >= 0.75)\n", d/v
}'
