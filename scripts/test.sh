#!/usr/bin/env bash
# Installs what the tests need, then runs the whole suite. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# Python zeep: the real SOAP client that loads the WSDL getWsdl returns (tests/zeep.rs).
if ! python3 -c 'import zeep' >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check zeep
fi

cargo test --all-targets "$@"
