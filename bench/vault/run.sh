#!/bin/sh
# Builds a Release tree without sanitizers and runs the vault benchmark:
# SIGN through IPC against C_Sign in process, INJECT through IPC against
# plain libcurl, on a throwaway SoftHSM2 token and a local HTTPS upstream.
#   bench/vault/run.sh [THREADS] [SECONDS] [vault_bench options...]
# for example: bench/vault/run.sh 1 5 --sign-only --rounds 5 --pipeline 4
set -eu
cd "$(dirname "$0")/../.."
threads="${1:-1}"
seconds="${2:-5}"
[ $# -gt 0 ] && shift
[ $# -gt 0 ] && shift
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DAAM_SANITIZE=OFF >/dev/null 2>&1
cmake --build build-bench --target aam-vault vault_bench >/dev/null 2>&1
AAM_VAULT_BIN=build-bench/vault/aam-vault \
	build-bench/vault/vault_bench --threads "$threads" --seconds "$seconds" "$@"
