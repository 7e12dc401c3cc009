#!/usr/bin/env bash
# Installs what the tests need, then runs the whole suite. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# SoftHSM2: the real PKCS#11 module the signing tests use (src/sign/pkcs11.rs, tests/hsm.rs).
if [ ! -e /usr/lib/softhsm/libsofthsm2.so ] || ! command -v softhsm2-util >/dev/null; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq softhsm2 >/dev/null
fi

# curl: a plain HTTP client calling a REST service through brama (tests/rest.rs).
if ! command -v curl >/dev/null; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq curl >/dev/null
fi

# Python: zeep (a real SOAP client loading the WSDL getWsdl returns, tests/zeep.rs); lxml and
# cryptography (the independent signature verifier, tests/independent/verify_xroad.py).
if ! python3 -c 'import zeep, lxml, cryptography' >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check zeep lxml 'cryptography>=40'
fi

cargo test --all-targets "$@"
