#!/usr/bin/env bash
# Runs verify_xroad.py over X-Road's own conformance vectors (tests/fixtures/xroad, read only), over
# tampered copies of them, and over ECDSA P-256 containers made here with certs-test/; every case has an
# expected verdict and, for INVALID, a word the reason must contain. Exits non-zero on any surprise.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
X=${XROAD_VECTORS:-$repo/tests/fixtures/xroad}
[ -d "$X/asic" ] || { echo "no X-Road vectors at $X (set XROAD_VECTORS)" >&2; exit 2; }
python3 -c 'import lxml, cryptography' 2>/dev/null || { echo "needs: pip install lxml cryptography" >&2; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
V=(python3 "$here/verify_xroad.py")
pass=0; fail=0

# check EXPECTED REASON-WORD ARGS...: one input per call
check() {
  local expect=$1 word=$2 out rc; shift 2
  out=$("${V[@]}" "$@" 2>"$tmp/stderr"); rc=$?
  local want=1; [ "$expect" = VALID ] && want=0
  if [ "${out%% *}" = "$expect" ] && [[ "$out" == *"$word"* ]] && [ $rc -eq $want ]; then
    pass=$((pass + 1)); echo "ok    ${out/$X\//}"
  else
    fail=$((fail + 1)); echo "FAIL  expected $expect ${word:+($word) }got rc=$rc: $out $(cat "$tmp/stderr")"
  fi
}

# the trust anchor of the asic/ vectors: globalconf approvedCA/topCA/cert (base64 of a PEM or of a DER)
python3 - "$X/globalconf/globalconf_good2_v3/DEV/shared-params.xml" "$tmp/gc-ca.pem" <<'EOF'
import base64, re, ssl, sys
raw = base64.b64decode(re.sub(r'\s', '', re.search(r'<topCA>\s*<cert>(.*?)</cert>', open(sys.argv[1]).read(), re.S).group(1)))
open(sys.argv[2], 'w').write(raw.decode() if raw.startswith(b'-----BEGIN') else ssl.DER_cert_to_PEM_cert(raw))
EOF
GC=(--ca "$tmp/gc-ca.pem")
A=$X/asic

echo "== asic/ (expected verdicts from the vectors' README)"
check VALID   ''                      "${GC[@]}" --member DEV/COM/4321 "$A/valid-signed-message.asice"
check VALID   ''                      "${GC[@]}" --member DEV/COM/1234 "$A/valid-non-batch-rest.asice"
check VALID   ''                      "${GC[@]}" --member DEV/COM/4321 "$A/valid-non-batch-soap-attachments.asice"
check VALID   ''                      "${GC[@]}" --member DEV/COM/4321 "$A/valid-signed-hashchain.asice"
check VALID   ''                      "${GC[@]}" --member DEV/COM/4321 "$A/valid-batch-ts.asice"
check VALID   ''                      "${GC[@]}" --member DEV/COM/4321 "$A/invalid-not-signed-hashchain.asice"
check INVALID InvalidSignatureValue   "${GC[@]}" "$A/wrong-message.asice"
check INVALID InvalidSignatureValue   "${GC[@]}" "$A/invalid-digest.asice"
check INVALID InvalidHashChainRef     "${GC[@]}" "$A/invalid-signed-hashchain.asice"
check INVALID HashChainUnusedInputs   "${GC[@]}" "$A/invalid-hashchain-modified-message.asice"
check INVALID MalformedSignature      "${GC[@]}" "$A/invalid-incorrect-references.asice"
check INVALID MalformedSignature      "${GC[@]}" "$A/invalid-ts-hashchainresult.asice"
check INVALID IncorrectCertificate    "${GC[@]}" --member DEV/COM/1234 "$A/valid-signed-message.asice"
check INVALID CertValidation          --ca "$repo/certs-test/ca.pem" "$A/valid-signed-message.asice"
# OCSP in RevocationValues at the signing time (ocspFreshnessSeconds 3600 in that globalconf)
check VALID   ''                      "${GC[@]}" --ocsp 3600 --member DEV/COM/4321 "$A/valid-signed-message.asice"
check VALID   ''                      "${GC[@]}" --ocsp 3600 --member DEV/COM/4321 "$A/valid-batch-ts.asice"
check VALID   ''                      "${GC[@]}" --ocsp 3600 --member DEV/COM/1234 "$A/valid-non-batch-rest.asice"
check INVALID IncorrectValidationInfo "${GC[@]}" --ocsp 60 "$A/valid-signed-message.asice"
mkdir -p "$tmp/dir" && (cd "$tmp/dir" && python3 -m zipfile -e "$A/valid-signed-hashchain.asice" .)
check VALID   ''                      "${GC[@]}" --member DEV/COM/4321 --dir "$tmp/dir"

echo "== asic-structure/"
for c in no-message no-mimetype no-signature not-asic; do check INVALID '' "$X/asic-structure/$c.asice"; done
check VALID   ''                      "${GC[@]}" --member DEV/COM/4321 "$X/asic-structure/valid-signed-message-with-attachments.asice"

echo "== tampered copies"
python3 - "$A" "$tmp" <<'EOF'
import sys, zipfile
src, out = sys.argv[1], sys.argv[2]
def copy(name, new, extra):
    with zipfile.ZipFile(f'{src}/{name}.asice') as z, zipfile.ZipFile(f'{out}/{new}.asice', 'w') as w:
        for n in z.namelist():
            if n not in extra:
                w.writestr(n, z.read(n))
        for n, data in extra.items():
            w.writestr(n, data)
copy('valid-non-batch-soap-attachments', 'extra-attachment', {'attachment3': b'smuggled'})
copy('valid-signed-hashchain', 'wrong-attachment', {'attachment1': b'not the signed attachment'})
copy('valid-signed-hashchain', 'extra-hashchain-input', {'attachment2': b'smuggled'})
copy('valid-signed-message', 'no-mimetype-entry', {'mimetype': b'application/zip'})
EOF
check INVALID 'not covered'           "${GC[@]}" "$tmp/extra-attachment.asice"
check INVALID InvalidHashChainRef     "${GC[@]}" "$tmp/wrong-attachment.asice"
check INVALID HashChainUnusedInputs   "${GC[@]}" "$tmp/extra-hashchain-input.asice"
check INVALID mimetype                "${GC[@]}" "$tmp/no-mimetype-entry.asice"

echo "== hashchain/"
H=$X/hashchain
check VALID   ''                    --hashchain "$H/hc-verifier1-hashchainresult.xml" "$H/hc-verifier1-hashchain.xml" /message.xml="$H/hc-verifier1-message.xml"
check VALID   ''                    --hashchain "$H/hc-verifier2-hashchainresult.xml" "$H/hc-verifier2-hashchain.xml"
check VALID   ''                    --hashchain "$H/hc-verifier3-hashchainresult.xml" "$H/hc-verifier3-hashchain.xml" /message.xml="$H/hc-verifier3-message.xml"
check VALID   ''                    --hashchain "$H/hc-verifier4-hashchainresult.xml" "$H/hc-verifier4-hashchain1.xml" /hashchain2.xml="$H/hc-verifier4-hashchain2.xml" /message.xml="$H/hc-verifier4-message.xml"
check INVALID InvalidHashChainRef   --hashchain "$H/hc-verifier3-hashchainresult.xml" "$H/hc-verifier3-hashchain-invalid.xml" /message.xml="$H/hc-verifier3-message.xml"
check INVALID MalformedHashChain    --hashchain "$H/hc-verifier3-hashchainresult.xml" "$H/hc-verifier5-hashchain-invalid-schema.xml" /message.xml="$H/hc-verifier3-message.xml"
check INVALID HashChainUnusedInputs --hashchain "$H/hc-verifier1-hashchainresult.xml" "$H/hc-verifier1-hashchain.xml" /message.xml="$H/hc-verifier1-message.xml" /attachment1="$H/hc-verifier4-message.xml"

echo "== signatures/ (batch-sig.xml is message-1's signature; hash-chain-2.xml belongs to another message)"
S=$X/signatures
for k in 1 2; do
  mkdir -p "$tmp/batch$k"; cp "$S/batch-sig.xml" "$tmp/batch$k/signatures.xml"; cp "$S/message-1.xml" "$tmp/batch$k/message.xml"
  cp "$S/hash-chain-result.xml" "$tmp/batch$k/sig-hashchainresult.xml"; cp "$S/hash-chain-$k.xml" "$tmp/batch$k/sig-hashchain.xml"
done
check VALID   ''                    --member EE/Cybernetica/consumer --dir "$tmp/batch1"
check INVALID InvalidHashChainRef   --dir "$tmp/batch2"
check VALID   ''                    "${GC[@]}" --member DEV/COM/4321 --dir "$S/non-batch-sig"

echo "== ECDSA P-256 containers signed here with certs-test/ (X-Road has no ECDSA vectors)"
python3 - "$repo/certs-test" "$tmp" <<'EOF'
import base64, hashlib, sys, zipfile
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from lxml import etree
certs, out = sys.argv[1], sys.argv[2]
SHA = 'http://www.w3.org/2001/04/xmlenc#sha512'
b64 = lambda d: base64.b64encode(d).decode()
H = lambda d: hashlib.sha512(d).digest()
def tlv(tag, c):
    n = len(c); return bytes([tag]) + (bytes([n]) if n < 128 else bytes([0x81 if n < 256 else 0x82]) + n.to_bytes(1 if n < 256 else 2, 'big')) + c
def make(name, who='00000001', batch=False, der_sig=False, extra=None):
    key = serialization.load_pem_private_key(open(f'{certs}/sign-GOV-{who}.key', 'rb').read(), None)
    cert = x509.load_pem_x509_certificate(open(f'{certs}/sign-GOV-{who}.pem', 'rb').read())
    cder = cert.public_bytes(serialization.Encoding.DER)
    files = {'mimetype': b'application/vnd.etsi.asic-e+zip',
             'message.xml': b'<?xml version="1.0" encoding="UTF-8"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>\xd0\x94</s:Body></s:Envelope>'}
    target = 'message.xml'
    if batch:
        files['attachment1'] = bytes(range(256)) * 3
        parts = [H(files['message.xml']), H(files['attachment1'])]
        root = H(tlv(0x30, b''.join(tlv(0x30, tlv(4, d) + tlv(0x0c, SHA.encode()) + tlv(0x30, b'')) for d in parts)))
        ns = 'xmlns="http://www.w3.org/2000/09/xmldsig#" xmlns:ns2="http://cyber.ee/hashchain"'
        files['sig-hashchainresult.xml'] = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<ns2:HashChainResult URI="/sig-hashchain.xml#STEP0" {ns}>'
            f'<DigestMethod Algorithm="{SHA}"/><DigestValue>{b64(root)}</DigestValue></ns2:HashChainResult>').encode()
        files['sig-hashchain.xml'] = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<ns2:HashChain {ns}><ns2:DefaultDigestMethod Algorithm="{SHA}"/><ns2:HashStep id="STEP0">'
            f'<ns2:DataRef URI="/message.xml"><DigestValue>{b64(parts[0])}</DigestValue></ns2:DataRef>'
            f'<ns2:DataRef URI="/attachment1"><DigestValue>{b64(parts[1])}</DigestValue></ns2:DataRef></ns2:HashStep></ns2:HashChain>').encode()
        target = 'sig-hashchainresult.xml'
    xml = f'''<asic:XAdESSignatures xmlns:asic="http://uri.etsi.org/02918/v1.2.1#" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:xades="http://uri.etsi.org/01903/v1.3.2#" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><ds:Signature Id="signature">
<ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"/>
<ds:Reference Id="signature-reference-0" URI="/{target}"><ds:DigestMethod Algorithm="{SHA}"/><ds:DigestValue>{b64(H(files[target]))}</ds:DigestValue></ds:Reference>
<ds:Reference Id="signature-reference-1" Type="http://uri.etsi.org/01903#SignedProperties" URI="#signed-properties"><ds:DigestMethod Algorithm="{SHA}"/><ds:DigestValue/></ds:Reference></ds:SignedInfo>
<ds:SignatureValue Id="signature-value"/><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{b64(cder)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>
<ds:Object><xades:QualifyingProperties Target="#signature"><xades:SignedProperties Id="signed-properties"><xades:SignedSignatureProperties><xades:SigningTime>2025-03-01T10:00:00.123Z</xades:SigningTime>
<xades:SigningCertificate><xades:Cert><xades:CertDigest><ds:DigestMethod Algorithm="{SHA}"/><ds:DigestValue>{b64(H(cder))}</ds:DigestValue></xades:CertDigest>
<xades:IssuerSerial><ds:X509IssuerName>{cert.issuer.rfc4514_string()}</ds:X509IssuerName><ds:X509SerialNumber>{cert.serial_number}</ds:X509SerialNumber></xades:IssuerSerial></xades:Cert></xades:SigningCertificate>
</xades:SignedSignatureProperties></xades:SignedProperties></xades:QualifyingProperties></ds:Object></ds:Signature></asic:XAdESSignatures>'''
    root = etree.fromstring(xml.encode())
    ds = '{http://www.w3.org/2000/09/xmldsig#}'
    sp = root.find('.//{http://uri.etsi.org/01903/v1.3.2#}SignedProperties')
    root.findall(f'.//{ds}DigestValue')[1].text = b64(H(etree.tostring(sp, method='c14n')))
    sig = key.sign(etree.tostring(root.find(f'.//{ds}SignedInfo'), method='c14n'), ec.ECDSA(hashes.SHA256()))
    if not der_sig:
        r, s = utils.decode_dss_signature(sig); sig = r.to_bytes(32, 'big') + s.to_bytes(32, 'big')
    root.find(f'.//{ds}SignatureValue').text = b64(sig)
    files['META-INF/signatures.xml'] = etree.tostring(root, xml_declaration=True, encoding='UTF-8', standalone=False)
    files.update(extra or {})
    with zipfile.ZipFile(f'{out}/{name}.asice', 'w', zipfile.ZIP_DEFLATED) as z:
        for n, d in files.items(): z.writestr(n, d)
make('ec-plain'); make('ec-batch', batch=True); make('ec-other-member', who='00000009')
make('ec-der-signature', der_sig=True); make('ec-batch-tampered', batch=True, extra={'attachment1': b'changed'})
EOF
T=(--ca "$repo/certs-test/ca.pem" --member SEVDEIR-TEST/GOV/00000001)
check VALID   ''                      "${T[@]}" "$tmp/ec-plain.asice"
check VALID   ''                      "${T[@]}" "$tmp/ec-batch.asice"
check INVALID IncorrectCertificate    "${T[@]}" "$tmp/ec-other-member.asice"
check INVALID 'raw r||s'              "${T[@]}" "$tmp/ec-der-signature.asice"
check INVALID InvalidHashChainRef     "${T[@]}" "$tmp/ec-batch-tampered.asice"
check INVALID CertValidation          "${GC[@]}" "$tmp/ec-plain.asice"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
