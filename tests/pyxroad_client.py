"""pyxroad (PyPI), unmodified, as its README uses it, against brama's client proxy: it downloads
the service's WSDL from `GET {ssu}/wsdl?…` and posts its request through `{ssu}` (which it
makes its HTTP proxy). Prints the answer and the X-Road id it sent.

    python3 pyxroad_client.py http://127.0.0.1:PORT SEVDEIR-TEST/GOV/00000001/DIIA \
        SEVDEIR-TEST/GOV/00000002/DRACS/getBirthRecord/v1
"""
import sys

from XRoad import XClient

ssu, client, service = sys.argv[1:4]
x = XClient(ssu, client, service)
answer = x.request(recordNumber="№ 2026")
print("answer=%s" % answer)
print("id=%s" % x.id)
