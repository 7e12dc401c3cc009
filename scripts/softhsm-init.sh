#!/usr/bin/env bash
# Creates a SoftHSM2 token directory for brama's PKCS#11 backend (tests, fixtures, local runs).
#
#   scripts/softhsm-init.sh DIR [LABEL] [PIN] [SO_PIN] [--import KEY.pem --key-label L [--id HEX]]
#
# Writes DIR/softhsm2.conf and DIR/tokens, initialises token LABEL (default brama, PIN 1234,
# SO PIN 123456) unless DIR already holds a token with that label, optionally imports an existing
# PKCS#8 PEM key pair (RSA or EC) into it, and prints the SOFTHSM2_CONF export line. Safe to run
# again: call it once per token and once per imported key.
set -euo pipefail

usage() {
  echo "usage: $0 DIR [LABEL] [PIN] [SO_PIN] [--import KEY.pem --key-label L [--id HEX]]" >&2
  exit 2
}

positional=()
import_file="" key_label="" key_id=""
while [ $# -gt 0 ]; do
  case "$1" in
    --import) [ $# -ge 2 ] || usage; import_file="$2"; shift 2 ;;
    --key-label) [ $# -ge 2 ] || usage; key_label="$2"; shift 2 ;;
    --id) [ $# -ge 2 ] || usage; key_id="$2"; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "unknown option $1" >&2; usage ;;
    *) positional+=("$1"); shift ;;
  esac
done
[ ${#positional[@]} -ge 1 ] && [ ${#positional[@]} -le 4 ] || usage

dir="${positional[0]}"
label="${positional[1]:-brama}"
pin="${positional[2]:-1234}"
so_pin="${positional[3]:-123456}"

if [ -n "$import_file" ]; then
  [ -n "$key_label" ] || { echo "--import needs --key-label" >&2; exit 2; }
  [ -r "$import_file" ] || { echo "cannot read $import_file" >&2; exit 1; }
fi

command -v softhsm2-util >/dev/null 2>&1 || {
  echo "softhsm2-util not found: install SoftHSM2 (Debian/Ubuntu: apt-get install softhsm2)" >&2
  exit 1
}

mkdir -p "$dir/tokens"
dir="$(cd "$dir" && pwd)"
conf="$dir/softhsm2.conf"
cat >"$conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
CONF
export SOFTHSM2_CONF="$conf"

# Token labels are blank-padded to 32 bytes in --show-slots output.
has_token() {
  softhsm2-util --show-slots 2>/dev/null |
    awk -v want="$1" '$1 == "Label:" { sub(/^[ \t]*Label:[ \t]*/, ""); sub(/[ \t]+$/, ""); if ($0 == want) found = 1 }
                      END { exit !found }'
}

if has_token "$label"; then
  echo "token '$label' already exists in $dir/tokens" >&2
else
  softhsm2-util --init-token --free --label "$label" --pin "$pin" --so-pin "$so_pin" >&2
fi

if [ -n "$import_file" ]; then
  if [ -z "$key_id" ]; then
    # A stable CKA_ID derived from the key file, so fixtures get the same id on every run.
    key_id="$(sha1sum "$import_file" | cut -c1-40)"
  fi
  softhsm2-util --import "$import_file" --token "$label" --label "$key_label" --id "$key_id" \
    --pin "$pin" >&2
fi

echo "export SOFTHSM2_CONF=$conf"
