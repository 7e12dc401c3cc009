#!/usr/bin/env python3
"""Writes benches/e2e/globalconf/ from config/globalconf/ (the embedded default's global
configuration, whose approved CA and authentication-certificate hashes match certs-test/):
the same members, CA and groups, with the two security servers moved to the benchmark's fixed
loopback ports and their clients split as the benchmark runs them, and the test CA's OCSP
responder and TSA at the benchmark's simulator (127.0.0.1:18120/ocsp, /tsa):

  ss1 (owner GOV/00000001) at 127.0.0.1:18102: DIIA (the client side)
  ss2 (owner GOV/00000002) at 127.0.0.1:18112: DRACS and EHEALTH (the provider side)

The authCertHash of each server is recomputed from certs-test/<server>-auth.pem (SHA-256 of the
DER, base64), so the result stays right after `brama certs init`. Run from the repository root:

  python3 benches/e2e/globalconf.py            # rewrite benches/e2e/globalconf/
  python3 benches/e2e/globalconf.py --check    # exit 1 if the checked-in copy is stale
"""
import base64
import hashlib
import pathlib
import re
import sys
import xml.etree.ElementTree as ET

SRC = pathlib.Path("config/globalconf")
DST = pathlib.Path("benches/e2e/globalconf")
CERTS = pathlib.Path("certs-test")
# server code -> (owner member code, address, hosted subsystems "MEMBER/SUBSYSTEM")
SERVERS = {
    "ss1": ("00000001", "127.0.0.1:18102", ["00000001/DIIA"]),
    "ss2": ("00000002", "127.0.0.1:18112", ["00000002/DRACS", "00000006/EHEALTH"]),
}


OCSP_URL = "<url>http://127.0.0.1:18120/ocsp</url>"
TSA_URL = "<url>http://127.0.0.1:18120/tsa</url>"


def auth_hash(server):
    pem = (CERTS / f"{server}-auth.pem").read_text()
    body = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", pem, re.S)
    der = base64.b64decode("".join(body.group(1).split()))
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def render():
    instance = (SRC / "instance-identifier").read_text().strip()
    shared = (SRC / instance / "shared-params.xml").read_text()
    root = ET.fromstring(shared.encode())
    member_ids, sub_ids = {}, {}
    for m in root.findall("member"):
        code = m.findtext("memberCode")
        member_ids[code] = m.get("id")
        for s in m.findall("subsystem"):
            sub_ids[f"{code}/{s.findtext('subsystemCode')}"] = s.get("id")
    blocks = []
    for server, (owner, address, clients) in SERVERS.items():
        lines = [
            "    <securityServer>",
            f"        <owner>{member_ids[owner]}</owner>",
            f"        <serverCode>{server}</serverCode>",
            f"        <address>{address}</address>",
            f"        <authCertHash>{auth_hash(server)}</authCertHash>",
        ]
        lines += [f"        <client>{sub_ids[c]}</client>" for c in clients]
        lines.append("    </securityServer>")
        blocks.append("\n".join(lines))
    first = shared.index("    <securityServer>")
    last = shared.rindex("</securityServer>") + len("</securityServer>")
    shared = shared[:first] + "\n".join(blocks) + shared[last:]
    # The test CA's OCSP responder is the benchmark's simulator, not the embedded default's.
    shared = shared.replace("<url>http://127.0.0.1:8090/ocsp</url>", OCSP_URL)
    # So is its TSA.
    shared = shared.replace("<url>http://127.0.0.1:8090/tsa</url>", TSA_URL)
    return {
        "instance-identifier": (SRC / "instance-identifier").read_text(),
        f"{instance}/shared-params.xml": shared,
        f"{instance}/private-params.xml": (SRC / instance / "private-params.xml").read_text(),
    }


def main():
    files = render()
    if "--check" in sys.argv[1:]:
        stale = [n for n, t in files.items() if not (DST / n).is_file() or (DST / n).read_text() != t]
        if stale:
            print(f"{DST}: stale ({', '.join(stale)}); run python3 {sys.argv[0]}", file=sys.stderr)
            sys.exit(1)
        return
    for name, text in files.items():
        (DST / name).parent.mkdir(parents=True, exist_ok=True)
        (DST / name).write_text(text)
    print(f"wrote {DST}/")


main()
