#!/bin/sh
# Builds a Release tree without sanitizers and runs the attest benchmark:
# tokens issued per second (OpenSSL key, and aam-vault on SoftHSM2) and
# attestation latency per method over HTTP (PKCS#11, join, TPM with swtpm).
#   bench/attest/run.sh [THREADS] [SECONDS] [N] [TPM_N]
set -eu
cd "$(dirname "$0")/../.."
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DAAM_SANITIZE=OFF >/dev/null 2>&1
cmake --build build-bench --target aam-vault aamctl attest_bench >/dev/null 2>&1
AAM_VAULT_BIN=build-bench/vault/aam-vault AAM_AAMCTL_BIN=build-bench/tools/aamctl/aamctl \
	build-bench/attest/attest_bench --threads "${1:-2}" --seconds "${2:-5}" --n "${3:-500}" \
	--tpm-n "${4:-30}"
