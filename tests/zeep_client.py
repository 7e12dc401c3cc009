"""A real SOAP client: loads the WSDL that brama's getWsdl returned and calls the service
through brama's client proxy. Usage: zeep_client.py WSDL_FILE CLIENT_PROXY_URL"""
import sys
import uuid

from lxml import etree
import zeep

XRD = "http://x-road.eu/xsd/xroad.xsd"
IDEN = "http://x-road.eu/xsd/identifiers"


def identifier(tag, object_type, parts):
    el = etree.Element(f"{{{XRD}}}{tag}", nsmap={"xroad": XRD, "id": IDEN})
    el.set(f"{{{IDEN}}}objectType", object_type)
    for name, value in parts:
        etree.SubElement(el, f"{{{IDEN}}}{name}").text = value
    return el


def text(tag, value):
    el = etree.Element(f"{{{XRD}}}{tag}", nsmap={"xroad": XRD})
    el.text = value
    return el


wsdl, url = sys.argv[1], sys.argv[2]
client = zeep.Client(wsdl)
binding = next(iter(client.wsdl.bindings))
service = client.create_service(binding, url)
message_id = str(uuid.uuid4())
headers = [
    identifier("client", "SUBSYSTEM", [("xRoadInstance", "SEVDEIR-TEST"), ("memberClass", "GOV"),
                                       ("memberCode", "00000001"), ("subsystemCode", "DIIA")]),
    identifier("service", "SERVICE", [("xRoadInstance", "SEVDEIR-TEST"), ("memberClass", "GOV"),
                                      ("memberCode", "00000002"), ("subsystemCode", "DRACS"),
                                      ("serviceCode", "getBirthRecord"), ("serviceVersion", "v1")]),
    text("id", message_id),
    text("userId", "UA3456789012"),
    text("protocolVersion", "4.0"),
]
result = service.getBirthRecord(recordNumber="№ 4321", _soapheaders=headers)
# With SOAP headers in the binding's output, zeep returns {header, body}.
body = result["body"] if "body" in result else result
record = body["birthRecord"]
print("actRecordNumber=" + record.actRecordNumber)
print("child=" + record.child.surname + " " + record.child.givenName)
print("id=" + message_id)
