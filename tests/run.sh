#!/usr/bin/env bash
# Installs what is missing, builds AAM with ASan + UBSan and -Werror, and
# runs every test through CTest.  Exits non-zero on any failure.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash deploy/install-deps.sh

build=${AAM_TEST_BUILD_DIR:-$top/build-test}
jobs=$(nproc 2>/dev/null || echo 2)

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug \
	-DAAM_SANITIZE=ON -DAAM_WERROR=ON -DAAM_BUILD_TESTS=ON
cmake --build "$build" -j "$jobs"

# Sanitizer settings for every test.  Leaks inside third-party modules
# (SoftHSM2, p11-kit) are suppressed in tests/lsan.supp; never our own.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/tests/lsan.supp}

cd "$build"
# --output-on-failure shows a failing test's output; CTest prints the
# "N% tests passed, N tests failed out of N" summary line itself.
ctest --output-on-failure -j "$jobs" --timeout 600 "$@"
