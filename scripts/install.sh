#!/usr/bin/env bash
# Installs everything stanbhm needs on a fresh Debian machine with Python 3.11:
# system compilers (and OpenCL for its tests), a virtual environment in .venv,
# stanbhm with its test extras, and the offline Stan toolchain (built once into
# $STANBHM_HOME, default ~/.cache/stanbhm). Safe to run again: it reuses what exists.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v g++ >/dev/null || need_apt+=(g++)
command -v make >/dev/null || need_apt+=(make)
python3 -c 'import ensurepip, venv' 2>/dev/null || need_apt+=(python3-venv)
# OpenCL: headers + loader to build STAN_OPENCL models, PoCL as a CPU device for the tests.
[ -e /usr/include/CL/opencl.hpp ] || need_apt+=(opencl-clhpp-headers)
[ -e /usr/lib/x86_64-linux-gnu/libOpenCL.so ] || [ -e /usr/lib/aarch64-linux-gnu/libOpenCL.so ] \
  || need_apt+=(ocl-icd-opencl-dev)
[ -d /etc/OpenCL/vendors ] && ls /etc/OpenCL/vendors/*.icd >/dev/null 2>&1 || need_apt+=(pocl-opencl-icd)

if [ ${#need_apt[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "[install] apt-get install ${need_apt[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The toolchain build (httpstan wheel + a C++ compile of about 2 minutes) needs only
# the standard library, so it runs while pip installs stanbhm's dependencies.
build_log=.venv/toolchain-build.log
.venv/bin/python stanbhm/toolchain/bootstrap.py >"$build_log" 2>&1 &
build_pid=$!
if ! .venv/bin/python -m pip install -q -e '.[test,distributed]'; then
  wait "$build_pid" || true  # leave no compiler running behind a failed install
  exit 1
fi
if ! wait "$build_pid"; then
  echo "[install] building the Stan toolchain failed:" >&2
  cat "$build_log" >&2
  exit 1
fi
cat "$build_log"
.venv/bin/stanbhm toolchain install
