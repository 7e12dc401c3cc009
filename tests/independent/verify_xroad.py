#!/usr/bin/env python3
"""Independent verifier of X-Road message signatures: ASiC-E containers, signature folders, hash chains.

Written from the X-Road protocol description and checked against the reference implementation's test
vectors, without looking at brama's code. Needs only lxml and cryptography. See README.md beside it.
"""
import argparse
import base64
import binascii
import datetime as dt
import hashlib
import os
import re
import sys
import zipfile

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.x509 import ocsp
from lxml import etree

DS, XADES, HC = 'http://www.w3.org/2000/09/xmldsig#', 'http://uri.etsi.org/01903/v1.3.2#', 'http://cyber.ee/hashchain'
ASIC_NS = ('http://uri.etsi.org/02918/v1.2.1#', 'http://uri.etsi.org/02918/v1.1.1#')
EXC_NS = 'http://www.w3.org/2001/10/xml-exc-c14n#'
NS = {'ds': DS, 'xades': XADES}
ASIC_MIMETYPE = b'application/vnd.etsi.asic-e+zip'
INCLUSIVE_C14N = 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315'
DIGESTS = {'http://www.w3.org/2001/04/xmldsig-more#sha224': 'sha224',
           'http://www.w3.org/2001/04/xmlenc#sha256': 'sha256',
           'http://www.w3.org/2001/04/xmldsig-more#sha384': 'sha384',
           'http://www.w3.org/2001/04/xmlenc#sha512': 'sha512'}
SIG_METHODS = {}  # signature method URI -> (kind, hash class)
for _n, _h in (('256', hashes.SHA256), ('384', hashes.SHA384), ('512', hashes.SHA512)):
    SIG_METHODS['http://www.w3.org/2001/04/xmldsig-more#rsa-sha' + _n] = ('rsa', _h)
    SIG_METHODS['http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha' + _n] = ('ecdsa', _h)
    SIG_METHODS['http://www.w3.org/2007/05/xmldsig-more#sha%s-rsa-MGF1' % _n] = ('pss', _h)
# OCSP signature algorithm OID -> the same method by its XML-DSig URI
OCSP_SIG = {'1.2.840.113549.1.1.11': 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
            '1.2.840.113549.1.1.12': 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha384',
            '1.2.840.113549.1.1.13': 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
            '1.2.840.10045.4.3.2': 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256',
            '1.2.840.10045.4.3.3': 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384',
            '1.2.840.10045.4.3.4': 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512'}
C14N = {INCLUSIVE_C14N: (False, False), INCLUSIVE_C14N + '#WithComments': (False, True),
        EXC_NS: (True, False), EXC_NS + 'WithComments': (True, True)}  # URI -> (exclusive, with comments)
INPUT_PART = re.compile(r'^(message\.xml|attachment[1-9][0-9]*)$')  # the parts a signature must cover


class Invalid(Exception):
    """The input does not verify; the message says why."""


def q(ns, name):
    return '{%s}%s' % (ns, name)


def local(elem):
    return etree.QName(elem).localname


def parse_xml(data, what):
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        raise Invalid('%s is not well-formed XML: %s (MalformedSignature)' % (what, e))
    if root.getroottree().docinfo.doctype:
        raise Invalid('%s has a DOCTYPE, which is not allowed' % what)
    return root


def b64(elem, what):
    if elem is None:
        raise Invalid('%s is missing' % what)
    try:  # line breaks and &#13; may sit inside the text
        return base64.b64decode(re.sub(r'\s+', '', elem.text or ''), validate=True)
    except (binascii.Error, ValueError):
        raise Invalid('%s is not valid base64' % what)


def digest(method, data):
    if method not in DIGESTS:
        raise Invalid('unsupported digest method %r' % method)
    return hashlib.new(DIGESTS[method], data).digest()


def algorithm(elem, what):
    if elem is None or not elem.get('Algorithm'):
        raise Invalid('%s is missing or has no Algorithm' % what)
    return elem.get('Algorithm')


def children(elem):
    """Element children (comments skipped); text in element-only content is a schema error."""
    for text in [elem.text] + [c.tail for c in elem]:
        if text and text.strip():
            raise Invalid('unexpected text %r in <%s>' % (text.strip()[:20], local(elem)))
    return [c for c in elem if isinstance(c.tag, str)]


def expect_seq(elem, spec):
    """The children of elem must be the sequence spec = [(ns, name, optional)]; returns name -> child."""
    kids, i, found = children(elem), 0, {}
    for ns, name, optional in spec:
        if i < len(kids) and kids[i].tag == q(ns, name):
            found[name] = kids[i]
            i += 1
        elif not optional:
            raise Invalid('<%s> lacks <%s>' % (local(elem), name))
    if i < len(kids):
        raise Invalid('unexpected <%s> in <%s>' % (local(kids[i]), local(elem)))
    return found


def c14n(elem, alg, transform=None):
    """Canonical bytes of elem's subtree. Inclusive C14N pulls in the ancestors' namespace declarations."""
    if alg not in C14N:
        raise Invalid('unsupported canonicalization or transform %r' % alg)
    exclusive, comments = C14N[alg]
    inc = transform.find(q(EXC_NS, 'InclusiveNamespaces')) if exclusive and transform is not None else None
    prefixes = ((inc.get('PrefixList') or '').split() or None) if inc is not None else None
    return etree.tostring(elem, method='c14n', exclusive=exclusive, with_comments=comments,
                          inclusive_ns_prefixes=prefixes)


def transforms_of(parent):
    tr = parent.find(q(DS, 'Transforms'))
    return [] if tr is None else [(algorithm(t, 'ds:Transform'), t) for t in tr.findall(q(DS, 'Transform'))]


def apply_transforms(data, transforms, what):
    """Only canonicalization transforms are supported (all X-Road uses); each parses and canonicalizes."""
    for alg, elem in transforms:
        data = c14n(parse_xml(data, what), alg, elem)
    return data


# ------------------------------------------------------------------------------------------ hash chains

def der(tag, content):
    n = len(content)
    raw = n.to_bytes((n.bit_length() + 7) // 8, 'big')
    return bytes([tag]) + (bytes([n]) if n < 0x80 else bytes([0x80 | len(raw)]) + raw) + content


def digest_list(items):
    """DER(SEQUENCE OF SingleDigest{digest OCTET STRING, digestMethod UTF8String, transforms SEQUENCE{}})."""
    return der(0x30, b''.join(der(0x30, der(0x04, d) + der(0x0c, m.encode('utf-8')) + der(0x30, b''))
                              for d, m in items))


HC_CHILDREN = {'HashValue': [(DS, 'DigestMethod', True), (DS, 'Transforms', True), (DS, 'DigestValue', False)],
               'DataRef': [(DS, 'DigestMethod', True), (DS, 'Transforms', True), (DS, 'DigestValue', False)],
               'StepRef': [(DS, 'DigestMethod', True)]}


class HashChains:
    """Evaluates hash steps. docs: '/name' -> bytes of every document a URI may name."""

    def __init__(self, docs):
        self.docs, self.chains, self.used, self.active, self.notes = docs, {}, set(), set(), []

    def chain(self, name):
        """(default digest method, {step id: HashStep}) of a HashChain document, checked against hashchain.xsd."""
        if name not in self.chains:
            if name not in self.docs:
                raise Invalid('hash chain document %s is missing (MalformedHashChain)' % name)
            root = parse_xml(self.docs[name], name)
            if root.tag != q(HC, 'HashChain'):
                raise Invalid('%s is not a HashChain (MalformedHashChain)' % name)
            kids, default, steps = children(root), None, {}
            try:
                if kids and kids[0].tag == q(HC, 'DefaultDigestMethod'):
                    default = algorithm(kids.pop(0), 'DefaultDigestMethod')
                for step in kids:
                    if step.tag != q(HC, 'HashStep') or step.get('id') in steps:
                        raise Invalid('unexpected <%s id=%r>' % (local(step), step.get('id')))
                    steps[step.get('id')] = step
                    for child in children(step):
                        if not child.tag.startswith('{%s}' % HC) or local(child) not in HC_CHILDREN:
                            raise Invalid('unexpected <%s> in a HashStep' % local(child))
                        expect_seq(child, HC_CHILDREN[local(child)])
                        if local(child) != 'HashValue' and not child.get('URI'):
                            raise Invalid('%s without URI' % local(child))
            except Invalid as e:
                raise Invalid('%s: %s (MalformedHashChain)' % (name, e))
            self.chains[name] = (default, steps)
        return self.chains[name]

    def step_value(self, uri, base, method):
        """H(DER(DigestList)) of the step that uri ('/doc#STEP', or '#STEP' relative to base) names."""
        doc, _, step_id = uri.partition('#')
        doc = doc or base
        if not doc or not step_id:
            raise Invalid('hash step reference %r is not of the form doc#STEP' % uri)
        if (doc, step_id) in self.active:
            raise Invalid('hash chain loops at %s#%s' % (doc, step_id))
        default, steps = self.chain(doc)
        if step_id not in steps:
            raise Invalid('hash step %s#%s does not exist (MalformedHashChain)' % (doc, step_id))
        self.active.add((doc, step_id))
        items = []
        for child in children(steps[step_id]):
            kind, own = local(child), child.find(q(DS, 'DigestMethod'))
            m = algorithm(own, kind + '/DigestMethod') if own is not None else default
            if m is None:
                raise Invalid('%s in %s#%s has no digest method and the chain no default' % (kind, doc, step_id))
            if kind == 'StepRef':
                value = self.step_value(child.get('URI'), doc, m)
            else:
                value = b64(child.find(q(DS, 'DigestValue')), kind + '/DigestValue')
                if kind == 'DataRef':
                    self.check_data_ref(child, m, value)
            items.append((value, m))
        self.active.discard((doc, step_id))
        return digest(method, digest_list(items))

    def check_data_ref(self, child, method, value):
        uri = child.get('URI')
        if uri not in self.docs:
            self.notes.append('hash chain DataRef %s: no such part here, its digest is taken as given' % uri)
            return
        if digest(method, apply_transforms(self.docs[uri], transforms_of(child), uri)) != value:
            raise Invalid('hash chain DataRef %s: digest does not match the part (InvalidHashChainRef)' % uri)
        self.used.add(uri)


def verify_hash_chain(result_bytes, docs, inputs, what):
    """Check a HashChainResult against docs; each name in inputs must be a verified DataRef. Returns HashChains."""
    res = parse_xml(result_bytes, what)
    if res.tag != q(HC, 'HashChainResult'):
        raise Invalid('%s is not a HashChainResult (MalformedHashChain)' % what)
    f = expect_seq(res, [(DS, 'DigestMethod', True), (DS, 'DigestValue', False)])
    uri, hc = res.get('URI') or '', HashChains(docs)
    method = algorithm(f['DigestMethod'], 'DigestMethod') if 'DigestMethod' in f else hc.chain(uri.split('#')[0])[0]
    if method is None:
        raise Invalid('%s has no digest method' % what)
    if hc.step_value(uri, None, method) != b64(f['DigestValue'], what + '/DigestValue'):
        raise Invalid('hash chain value differs from %s (InvalidHashChain)' % what)
    unused = sorted(set(inputs) - hc.used)
    if unused:
        raise Invalid('parts not referenced by the hash chain: %s (HashChainUnusedInputs)' % ', '.join(unused))
    return hc


# ------------------------------------------------------------------------------------------ certificates

def valid_at(cert, at, what):
    nb = getattr(cert, 'not_valid_before_utc', None) or cert.not_valid_before.replace(tzinfo=dt.timezone.utc)
    na = getattr(cert, 'not_valid_after_utc', None) or cert.not_valid_after.replace(tzinfo=dt.timezone.utc)
    if not nb <= at <= na:
        raise Invalid('%s %s is not valid at %s (valid %s .. %s) (CertValidityTime)'
                      % (what, cert.subject.rfc4514_string(), at.isoformat(), nb.date(), na.date()))


def parse_time(text):
    m = re.match(r'^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$', (text or '').strip())
    if not m:
        raise Invalid('SigningTime %r is not an xsd:dateTime' % text)
    zone = m.group(3) if m.group(3) not in (None, 'Z') else '+00:00'
    return dt.datetime.fromisoformat(m.group(1) + '.' + (m.group(2) or '.')[1:7].ljust(6, '0') + zone)


def issued_by(cert, issuer):
    try:
        cert.verify_directly_issued_by(issuer)  # issuer name matches and the issuer's signature verifies
        return True
    except Exception:
        return False


def check_chain(cert, pool, anchors, at):
    cur = cert
    for _ in range(8):
        anchor = next((a for a in anchors if issued_by(cur, a)), None)
        if anchor is not None:
            return valid_at(anchor, at, 'CA certificate')
        nxt = next((c for c in pool if c is not cur and issued_by(cur, c)), None)
        if nxt is None:
            raise Invalid('certificate %s (issuer %s) does not chain to a trusted CA (CertValidation)'
                          % (cur.subject.rfc4514_string(), cur.issuer.rfc4514_string()))
        try:
            is_ca = nxt.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except (x509.ExtensionNotFound, ValueError):
            is_ca = False
        if not is_ca:
            raise Invalid('intermediate %s is not a CA certificate' % nxt.subject.rfc4514_string())
        valid_at(nxt, at, 'intermediate CA certificate')
        cur = nxt
    raise Invalid('certificate chain is too long')


def check_ocsp(cert, pool, anchors, responses, at, freshness):
    """RFC 6960 as X-Road applies it: a response about this certificate (SHA-1 CertID) from its
    issuer or a responder the issuer authorised (id-kp-OCSPSigning), good, thisUpdate at most
    `freshness` seconds before `at`, nextUpdate (if any) not before it."""
    issuer = next((c for c in list(anchors) + list(pool) if issued_by(cert, c)), None)
    if issuer is None:
        raise Invalid('no issuer for %s to check OCSP against' % cert.subject.rfc4514_string())
    wanted = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    for der in responses:
        try:
            r = ocsp.load_der_ocsp_response(der)
        except ValueError as e:
            raise Invalid('an OCSP response does not parse: %s (IncorrectValidationInfo)' % e)
        if r.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            continue
        if (r.serial_number, r.issuer_key_hash, r.issuer_name_hash) != (
                wanted.serial_number, wanted.issuer_key_hash, wanted.issuer_name_hash):
            continue
        signer = issuer
        if r.certificates:
            signer = r.certificates[0]
            if signer.public_bytes(serialization.Encoding.DER) != issuer.public_bytes(serialization.Encoding.DER):
                if not issued_by(signer, issuer):
                    raise Invalid('OCSP responder %s is not issued by %s (IncorrectValidationInfo)'
                                  % (signer.subject.rfc4514_string(), issuer.subject.rfc4514_string()))
                eku = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
                if x509.oid.ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
                    raise Invalid('OCSP responder lacks id-kp-OCSPSigning (IncorrectValidationInfo)')
        try:
            check_signature_value(signer, OCSP_SIG.get(r.signature_algorithm_oid.dotted_string, ''),
                                  r.tbs_response_bytes, r.signature, der_ecdsa=True)
        except Invalid as e:
            raise Invalid('the OCSP response signature: %s (IncorrectValidationInfo)' % e)
        if hasattr(r, 'this_update_utc'):  # cryptography 43+
            this, nxt = r.this_update_utc, r.next_update_utc
        else:
            this = r.this_update.replace(tzinfo=dt.timezone.utc)
            nxt = r.next_update.replace(tzinfo=dt.timezone.utc) if r.next_update else None
        if this < at - dt.timedelta(seconds=freshness):
            raise Invalid('the OCSP response is too old at %s (IncorrectValidationInfo)' % at.isoformat())
        if nxt is not None and nxt < at:
            raise Invalid('the OCSP response expired at %s (IncorrectValidationInfo)' % nxt.isoformat())
        if r.certificate_status != ocsp.OCSPCertStatus.GOOD:
            raise Invalid('certificate %s is %s (CertValidation)'
                          % (cert.subject.rfc4514_string(), r.certificate_status.name.lower()))
        return
    raise Invalid('no OCSP response for certificate %s (CertValidation)' % cert.subject.rfc4514_string())


def tlvs(data):
    """The (tag, content) items of DER data, for the one lenient fallback below."""
    i = 0
    while i < len(data):
        tag, n = data[i], data[i + 1]
        i += 2
        if n & 0x80:
            n, i = int.from_bytes(data[i:i + (n & 0x7f)], 'big'), i + (n & 0x7f)
        yield tag, data[i:i + n]
        i += n


def non_repudiation(cert, notes):
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value.content_commitment
    except x509.ExtensionNotFound:
        return False
    except ValueError as e:  # not DER, e.g. a DEFAULT value encoded; Java (the reference) reads such certificates,
        notes.append('signing certificate extensions are not valid DER (%s); KeyUsage read leniently' % e)
        _, tbs = next(tlvs(cert.tbs_certificate_bytes))  # so read KeyUsage by hand
        for tag, exts in tlvs(tbs):
            for _, ext in tlvs(next(tlvs(exts))[1]) if tag == 0xa3 else ():
                items = list(tlvs(ext))
                if items[0] == (0x06, b'\x55\x1d\x0f'):  # id-ce-keyUsage: BIT STRING, nonRepudiation = bit 1
                    return len(items[-1][1]) > 3 and bool(items[-1][1][3] & 0x40)
        return False


def member_ids(cert):
    """The (instance, class, code) that the EJBCA and FI certificate profiles map the subject to."""
    def one(oid):
        values = [a.value for a in cert.subject.get_attributes_for_oid(oid)]
        return values[0] if len(values) == 1 else None
    c, o, cn, sn = (one(x509.NameOID.COUNTRY_NAME), one(x509.NameOID.ORGANIZATION_NAME),
                    one(x509.NameOID.COMMON_NAME), one(x509.NameOID.SERIAL_NUMBER))
    ids = [(c, o, cn)] if c and o and cn else []   # EJBCA: C=instance, O=memberClass, CN=memberCode
    if cn and sn and sn.count('/') == 2:           # FI: CN=memberCode, serialNumber=instance/server/memberClass
        instance, _server, member_class = sn.split('/')
        ids.append((instance, member_class, cn))
    return ids


def check_signature_value(cert, method, data, value, der_ecdsa=False):
    if method not in SIG_METHODS:
        raise Invalid('unsupported signature method %r' % method)
    kind, h = SIG_METHODS[method]
    key = cert.public_key()
    try:
        if kind in ('rsa', 'pss'):
            if not isinstance(key, rsa.RSAPublicKey):
                raise Invalid('signature method %s needs an RSA key' % method)
            pad = padding.PKCS1v15() if kind == 'rsa' else padding.PSS(padding.MGF1(h()), h.digest_size)
            key.verify(value, data, pad, h())
        else:
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise Invalid('signature method %s needs an EC key' % method)
            if der_ecdsa:  # X.509 and OCSP write ECDSA values as DER
                key.verify(value, data, ec.ECDSA(h()))
                return
            n = (key.curve.key_size + 7) // 8
            if len(value) != 2 * n:  # RFC 4051: r||s, each left-padded to the size of the curve
                raise Invalid('ECDSA SignatureValue has %d bytes, not raw r||s of %d' % (len(value), 2 * n))
            r, s = int.from_bytes(value[:n], 'big'), int.from_bytes(value[n:], 'big')
            key.verify(utils.encode_dss_signature(r, s), data, ec.ECDSA(h()))
    except InvalidSignature:
        raise Invalid('SignatureValue does not verify over ds:SignedInfo (InvalidSignatureValue)')


# ------------------------------------------------------------------------------------------ signatures

def check_time_stamp(files, sig, tsa):
    """The container's time-stamp, checked by `openssl ts -verify` (an implementation of its own)
    against the TSA certificate and CA files `tsa` = (tsa.pem, [ca.pem, ...]): a batch token
    (META-INF/timestamp.tst) over ts-hashchainresult.xml, or a single one
    (xades:SignatureTimeStamp) over the decoded ds:SignatureValue."""
    import subprocess
    import tempfile
    if 'META-INF/timestamp.tst' in files:
        if 'ts-hashchainresult.xml' not in files:
            raise Invalid('a time-stamp without ts-hashchainresult.xml (AsicHashChainResultNotFound)')
        token, stamped = files['META-INF/timestamp.tst'], files['ts-hashchainresult.xml']
    else:
        enc = sig.find('.//' + q(XADES, 'SignatureTimeStamp') + '/' + q(XADES, 'EncapsulatedTimeStamp'))
        if enc is None:
            raise Invalid('no time-stamp (AsicTimestampNotFound)')
        token = b64(enc, 'xades:EncapsulatedTimeStamp')
        stamped = b64(sig.find(q(DS, 'SignatureValue')), 'ds:SignatureValue')
    tsa_pem, cas = tsa
    with tempfile.TemporaryDirectory() as d:
        tok, data, ca = (os.path.join(d, n) for n in ('token.tst', 'data', 'ca.pem'))
        with open(tok, 'wb') as f:
            f.write(token)
        with open(data, 'wb') as f:
            f.write(stamped)
        with open(ca, 'wb') as f:
            for c in cas:
                with open(c, 'rb') as g:
                    f.write(g.read())
        out = subprocess.run(['openssl', 'ts', '-verify', '-data', data, '-in', tok, '-token_in',
                              '-CAfile', ca, '-untrusted', tsa_pem], capture_output=True, text=True)
    if out.returncode != 0 or 'Verification: OK' not in out.stdout:
        raise Invalid('the time-stamp does not verify (openssl ts -verify: %s)'
                      % (out.stdout + out.stderr).strip().replace('\n', ' '))
    return ['time-stamp verified by openssl ts -verify']


def verify_files(files, anchors, member, ocsp_freshness=None, tsa=None):
    """files: container name -> bytes. Raises Invalid; returns notes for stderr."""
    sig_name = next((n for n in ('META-INF/signatures.xml', 'signatures.xml') if n in files), None)
    if sig_name is None:
        raise Invalid('no META-INF/signatures.xml (MissingSignature)')
    if 'message.xml' not in files:
        raise Invalid('no message.xml')
    docs = dict(('/' + n, b) for n, b in files.items())
    docs['/META-INF/signatures.xml'] = files[sig_name]
    inputs = sorted('/' + n for n in files if INPUT_PART.match(n))
    notes = []

    root = parse_xml(files[sig_name], sig_name)
    if root.tag in [q(ns, 'XAdESSignatures') for ns in ASIC_NS]:
        sigs = children(root)
        if len(sigs) != 1 or sigs[0].tag != q(DS, 'Signature'):
            raise Invalid('XAdESSignatures must hold exactly one ds:Signature (MalformedSignature)')
        sig = sigs[0]
    elif root.tag == q(DS, 'Signature'):
        sig = root
    else:
        raise Invalid('%s has root <%s>, not a signature (MalformedSignature)' % (sig_name, root.tag))
    si = sig.find(q(DS, 'SignedInfo'))
    refs = [] if si is None else si.findall(q(DS, 'Reference'))
    if not refs or any(r.get('URI') is None for r in refs):
        raise Invalid('ds:SignedInfo is missing or has no (or a URI-less) ds:Reference (MalformedSignature)')

    # hash chains first (the order of the reference implementation): batch signature, batch time-stamp
    covered = set()
    if any(r.get('URI') == '/sig-hashchainresult.xml' for r in refs):
        if 'sig-hashchainresult.xml' not in files:
            raise Invalid('signed sig-hashchainresult.xml is missing (MalformedSignature)')
        hc = verify_hash_chain(files['sig-hashchainresult.xml'], docs, inputs, 'sig-hashchainresult.xml')
        notes += hc.notes
        covered |= hc.used
    elif 'sig-hashchainresult.xml' in files:
        notes.append('sig-hashchainresult.xml is present but not signed; ignored')
    if 'ts-hashchainresult.xml' in files:  # the token itself with --tsa
        notes += verify_hash_chain(files['ts-hashchainresult.xml'], docs, ['/META-INF/signatures.xml'],
                                   'ts-hashchainresult.xml').notes
    if tsa is not None:
        notes += check_time_stamp(files, sig, tsa)

    # references: parts by their raw bytes, same-document ones by their canonical form
    ids = {}
    for e in root.iter():
        if isinstance(e.tag, str) and e.get('Id') is not None:
            ids.setdefault(e.get('Id'), []).append(e)
    signed_props = None
    for ref in refs:
        uri, trans = ref.get('URI'), transforms_of(ref)
        method = algorithm(ref.find(q(DS, 'DigestMethod')), 'ds:Reference/ds:DigestMethod')
        if uri.startswith('#'):
            targets = ids.get(uri[1:], [])
            if len(targets) != 1 or len(trans) > 1:
                raise Invalid('reference %s names %d elements, %d transforms (InvalidReference)'
                              % (uri, len(targets), len(trans)))
            if targets[0].tag == q(DS, 'Manifest'):
                raise Invalid('legacy ds:Manifest signatures are not supported by this verifier')
            data = c14n(targets[0], *(trans[0] if trans else (INCLUSIVE_C14N, None)))
            if targets[0].tag == q(XADES, 'SignedProperties'):
                signed_props = targets[0]
        else:
            name = uri[1:] if uri.startswith('/') else uri
            if name not in files:
                raise Invalid('reference %s: no such part (InvalidReference, MalformedSignature)' % uri)
            data = apply_transforms(files[name], trans, uri)
            covered.add('/' + name)
        if digest(method, data) != b64(ref.find(q(DS, 'DigestValue')), 'ds:Reference/ds:DigestValue'):
            raise Invalid('digest of %s does not match its ds:Reference (InvalidSignatureValue)' % uri)
    if signed_props is None:
        raise Invalid('no signed xades:SignedProperties (MalformedSignature)')
    unsigned = [n for n in inputs if n not in covered]
    if unsigned:
        raise Invalid('parts not covered by the signature: %s' % ', '.join(unsigned))

    # the signature value over the canonical SignedInfo, with the KeyInfo certificate
    certs = [b64(e, 'ds:X509Certificate') for e in sig.findall('ds:KeyInfo/ds:X509Data/ds:X509Certificate', NS)]
    if not certs:
        raise Invalid('no signing certificate in ds:KeyInfo (MalformedSignature)')
    try:
        cert = x509.load_der_x509_certificate(certs[0])
        pool = [x509.load_der_x509_certificate(c) for c in certs[1:]] + [
            x509.load_der_x509_certificate(b64(e, 'EncapsulatedX509Certificate'))
            for e in sig.iter(q(XADES, 'EncapsulatedX509Certificate'))]
    except ValueError as e:
        raise Invalid('bad certificate: %s' % e)
    cm = si.find(q(DS, 'CanonicalizationMethod'))
    check_signature_value(cert, algorithm(si.find(q(DS, 'SignatureMethod')), 'ds:SignatureMethod'),
                          c14n(si, algorithm(cm, 'ds:CanonicalizationMethod'), cm),
                          b64(sig.find(q(DS, 'SignatureValue')), 'ds:SignatureValue'))

    # the signed properties bind the certificate (CertDigest) and the signing time
    bound = False
    for c in signed_props.iterfind('xades:SignedSignatureProperties/*/xades:Cert', NS):
        if local(c.getparent()) not in ('SigningCertificate', 'SigningCertificateV2'):
            continue
        cd = c.find('xades:CertDigest', NS)
        m = algorithm(None if cd is None else cd.find(q(DS, 'DigestMethod')), 'CertDigest/DigestMethod')
        if digest(m, certs[0]) == b64(cd.find(q(DS, 'DigestValue')), 'CertDigest/DigestValue'):
            serial = c.find('xades:IssuerSerial/ds:X509SerialNumber', NS)
            if serial is not None and (serial.text or '').strip() != str(cert.serial_number):
                raise Invalid('xades:IssuerSerial names another serial number than the signing certificate')
            bound = True
    if not bound:
        raise Invalid('xades:SigningCertificate does not name the ds:KeyInfo certificate (CertDigest)')
    st = signed_props.find('xades:SignedSignatureProperties/xades:SigningTime', NS)
    if st is None:
        at = dt.datetime.now(dt.timezone.utc)
        notes.append('no xades:SigningTime; certificates checked at the current time')
    else:
        at = parse_time(st.text)

    # the certificate: a signing certificate of the expected member, valid then, issued by a trusted CA
    if not non_repudiation(cert, notes):
        raise Invalid('signing certificate KeyUsage lacks nonRepudiation: not a signing certificate')
    if member is not None and member not in member_ids(cert):
        raise Invalid('signer %s maps to %s, not %s (IncorrectCertificate)' % (
            cert.subject.rfc4514_string(), ' or '.join('/'.join(i) for i in member_ids(cert)) or 'no member',
            '/'.join(member)))
    valid_at(cert, at, 'signing certificate')
    if anchors:
        check_chain(cert, pool, anchors, at)
    if ocsp_freshness is not None:
        responses = [b64(e, 'EncapsulatedOCSPValue') for e in sig.iter(q(XADES, 'EncapsulatedOCSPValue'))]
        check_ocsp(cert, pool, anchors, responses, at, ocsp_freshness)
    return notes


# ------------------------------------------------------------------------------------------ command line

def read_container(path):
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if not n.endswith('/')]
            if len(names) != len(set(names)):
                raise Invalid('container has duplicate entries')
            files = {n: z.read(n) for n in names}
    except (zipfile.BadZipFile, OSError) as e:
        raise Invalid('not a ZIP/ASiC container: %s' % e)
    if files.get('mimetype') != ASIC_MIMETYPE:
        raise Invalid('mimetype entry is missing or not %s' % ASIC_MIMETYPE.decode())
    return files


def read_dir(path):
    if not os.path.isdir(path):
        raise Invalid('not a directory')
    files = {}
    for base, _dirs, names in os.walk(path):
        for n in names:
            with open(os.path.join(base, n), 'rb') as f:
                files[os.path.relpath(os.path.join(base, n), path).replace(os.sep, '/')] = f.read()
    return files


def run_hashchain(args):
    """RESULT.xml CHAIN.xml [/name=PATH ...]: CHAIN.xml gets the name in the result's URI (or give name=PATH);
    parts that are HashChain documents are resolvable chains, all other parts must be used by a DataRef."""
    if len(args.inputs) < 2:
        sys.exit('usage: verify_xroad.py --hashchain RESULT.xml CHAIN.xml [/name=PATH ...]')
    result = args.inputs[0]
    try:
        with open(result, 'rb') as f:
            result_bytes = f.read()
        docs, chain_docs = {}, set()
        for i, spec in enumerate(args.inputs[1:]):
            name, sep, path = spec.partition('=')
            if not sep:
                if i:
                    sys.exit('parts are given as /name=PATH: %r' % spec)
                name, path = (parse_xml(result_bytes, result).get('URI') or '').partition('#')[0], spec
            name = '/' + name.lstrip('/')
            with open(path, 'rb') as f:
                docs[name] = f.read()
            try:
                if etree.fromstring(docs[name], etree.XMLParser(resolve_entities=False)).tag == q(HC, 'HashChain'):
                    chain_docs.add(name)
            except etree.XMLSyntaxError:
                pass
        hc = verify_hash_chain(result_bytes, docs, [n for n in docs if n not in chain_docs], result)
        for n in hc.notes:
            print('note: %s: %s' % (result, n), file=sys.stderr)
        print('VALID %s' % result)
        return True
    except (Invalid, OSError) as e:
        print('INVALID %s: %s' % (result, e))
        return False


def main():
    ap = argparse.ArgumentParser(description='Verify X-Road message signatures, independently of brama.')
    ap.add_argument('--ca', action='append', default=[], help='trusted CA certificate(s), PEM; repeatable')
    ap.add_argument('--member', help='expected signer, INSTANCE/CLASS/CODE')
    ap.add_argument('--dir', action='store_true', help='the inputs are folders of container files')
    ap.add_argument('--hashchain', action='store_true', help='verify a hash chain: RESULT.xml CHAIN.xml [/name=PATH ...]')
    ap.add_argument('--ocsp', type=int, metavar='FRESHNESS_SECONDS',
                    help="require a good OCSP response for the signing certificate in xades:RevocationValues, "
                         "no older than this at the signing time (X-Road's ocspFreshnessSeconds)")
    ap.add_argument('--tsa', metavar='TSA_PEM',
                    help='require a time-stamp by this TSA, checked with openssl ts -verify against the --ca files')
    ap.add_argument('inputs', nargs='+', metavar='INPUT')
    args = ap.parse_args()
    if args.hashchain:
        sys.exit(0 if run_hashchain(args) else 1)
    member = tuple(args.member.split('/', 2)) if args.member else None
    if member is not None and (len(member) != 3 or not all(member)):
        sys.exit('--member must be INSTANCE/CLASS/CODE')
    anchors = []
    for p in args.ca:
        with open(p, 'rb') as f:
            anchors += x509.load_pem_x509_certificates(f.read())
    if not anchors:
        print('note: no --ca given: the certificate chain is not checked', file=sys.stderr)
    ok = True
    for path in args.inputs:
        try:
            files = read_dir(path) if args.dir else read_container(path)
            tsa = (args.tsa, args.ca) if args.tsa else None
            for n in verify_files(files, anchors, member, args.ocsp, tsa):
                print('note: %s: %s' % (path, n), file=sys.stderr)
            print('VALID %s' % path)
        except Invalid as e:
            ok = False
            print('INVALID %s: %s' % (path, e))
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
