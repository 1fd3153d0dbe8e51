#!/bin/sh
# Builds a Release tree without sanitizers and runs the agent benchmark:
# DPoP proofs per second (TPM via swtpm, SoftHSM2), attestation latency
# (TPM with tss2 ESYS, PKCS#11) and sidecar round trips, against the real
# aam-attest and aam-vault.
#   bench/agent/run.sh [SECONDS] [N] [TPM_N] [REQUESTS]
set -eu
cd "$(dirname "$0")/../.."
cmake -S . -B build-bench-agent -DCMAKE_BUILD_TYPE=Release -DAAM_SANITIZE=OFF >/dev/null 2>&1
cmake --build build-bench-agent --target aam-vault aamctl aam-attest aam-agent agent_bench >/dev/null 2>&1
AAM_VAULT_BIN=build-bench-agent/vault/aam-vault AAM_AAMCTL_BIN=build-bench-agent/tools/aamctl/aamctl \
AAM_ATTEST_BIN=build-bench-agent/attest/aam-attest AAM_AGENT_BIN=build-bench-agent/agent/aam-agent \
	build-bench-agent/agent/agent_bench --seconds "${1:-5}" --n "${2:-60}" --tpm-n "${3:-30}" \
	--requests "${4:-300}"
