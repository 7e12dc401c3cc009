"""pyxroad (PyPI), unmodified, as its README uses it, against brama's client proxy: it downloads
the service's WSDL from `GET {ssu}/wsdl?…` and posts its request through `{ssu}` (which it
makes its HTTP proxy). Prints the answer and the X-Road id it sent; a refused call prints the
fault pyxroad logged (its README's logging set-up, on standard output).

    python3 pyxroad_client.py http://127.0.0.1:PORT SEVDEIR-TEST/GOV/00000001/DIIA \
        SEVDEIR-TEST/GOV/00000002/DRACS/getBirthRecord/v1

A service ending in listMethods or allowedMethods (X-Road's metaservices) is called without
arguments.
"""
import logging
import sys
import uuid

from XRoad import XClient

logging.basicConfig(
    stream=sys.stdout,
    level=logging.INFO,
    format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
)
_logger = logging.getLogger("XRoad")

ssu, client, service = sys.argv[1:4]
x = XClient(ssu=ssu, client=client, service=service)
xroad_id = uuid.uuid4().hex
# A metaservice (listMethods, allowedMethods) takes no arguments.
meta = service.rsplit("/", 1)[-1] in ("listMethods", "allowedMethods")
try:
    if meta:
        answer = x.request(xroad_id=xroad_id)
    else:
        answer = x.request(xroad_id=xroad_id, recordNumber="№ 2026")
    print("answer=%s" % answer)
except Exception as err:
    _logger.error(f"Error: {err}")
    print("refused")
print("id=%s" % x.id)
