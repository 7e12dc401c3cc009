"""zeep calls every eMalyatko operation through brama, using only the WSDLs in wsdl/.
Usage: zeep_emalyatko.py WSDL_DIR CLIENT_PROXY_URL. Prints one line per call: op, X-Road id, a
field of the typed answer; exits non-zero on any failure."""
import sys
import uuid

from lxml import etree
import zeep

XRD = "http://x-road.eu/xsd/xroad.xsd"
IDEN = "http://x-road.eu/xsd/identifiers"
REGISTRIES = {
    "ehealth": ("00000006", "EHEALTH"), "dracs": ("00000002", "DRACS"), "dms": ("00000003", "DMS"),
    "dps": ("00000004", "DPS"), "msp": ("00000005", "EISSS"), "rtg": ("00000007", "RTG"),
}


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


wsdl_dir, url = sys.argv[1], sys.argv[2]
services = {}


def call(stem, op, **kwargs):
    if stem not in services:
        client = zeep.Client(f"{wsdl_dir}/{stem}.wsdl")
        services[stem] = client.create_service(next(iter(client.wsdl.bindings)), url)
    code, subsystem = REGISTRIES[stem]
    mid = str(uuid.uuid4())
    headers = [
        identifier("client", "SUBSYSTEM", [("xRoadInstance", "SEVDEIR-TEST"), ("memberClass", "GOV"),
                                           ("memberCode", "00000001"), ("subsystemCode", "DIIA")]),
        identifier("service", "SERVICE", [("xRoadInstance", "SEVDEIR-TEST"), ("memberClass", "GOV"),
                                          ("memberCode", code), ("subsystemCode", subsystem),
                                          ("serviceCode", op), ("serviceVersion", "v1")]),
        text("id", mid), text("userId", "UA3456789014"), text("protocolVersion", "4.0"),
    ]
    result = getattr(services[stem], op)(_soapheaders=headers, **kwargs)
    body = result["body"] if "body" in result else result
    return mid, body


child = {"surname": "Шевченко", "givenName": "Марія", "patronymic": "Тарасівна", "sex": "F",
         "birthDate": "2026-11-20", "birthPlaceKatottg": "UA80000000000093317"}
mother = {"surname": "Шевченко", "givenName": "Олена", "birthDate": "1994-03-12", "rnokpp": "3456789014"}
out = []
mid, cert = call("ehealth", "getMedicalBirthCertificate", certificateNumber="2026-1120-0042-7715",
                 motherRnokpp="3456789014")
out.append(("getMedicalBirthCertificate", mid, cert.facilityName))
mid, reg = call("dracs", "registerBirth", medicalCertificateNumber="2026-1120-0042-7715", child=child,
                mother=mother, applicantRnokpp="3456789014", registrationOfficeKatottg="UA80000000000093317")
out.append(("registerBirth", mid, reg.applicationNumber))
mid, st = call("dracs", "getBirthRegistrationStatus", applicationNumber=reg.applicationNumber)
assert st.status == "REGISTERED", st
act = st.actRecord.actRecordNumber
out.append(("getBirthRegistrationStatus", mid, act))
mid, u = call("dms", "assignUnzr", actRecordNumber=act, registrationDate="2026-11-21", child=child)
out.append(("assignUnzr", mid, u.unzr))
mid, c = call("dms", "determineCitizenship", unzr=u.unzr, actRecordNumber=act, motherRnokpp="3456789014")
out.append(("determineCitizenship", mid, c.citizenship))
mid, t = call("dps", "registerTaxpayer", unzr=u.unzr, actRecordNumber=act, child=child)
out.append(("registerTaxpayer", mid, t.rnokpp))
mid, b = call("msp", "assignBirthAssistance", actRecordNumber=act, childBirthDate="2026-11-20",
              applicantRnokpp="3456789014", iban="UA213223130000026007233566001")
out.append(("assignBirthAssistance", mid, str(b.amountUah)))
mid, l = call("msp", "assignLargeFamilySupport", actRecordNumber=act, applicantRnokpp="3456789014",
              childrenCount=3)
out.append(("assignLargeFamilySupport", mid, l.certificateNumber))
mid, r = call("rtg", "registerResidence", unzr=u.unzr, actRecordNumber=act, parentRnokpp="3456789014",
              address={"katottg": "UA80000000000093317", "settlement": "м. Київ", "street": "вул. Хрещатик",
                       "building": "22"})
out.append(("registerResidence", mid, r.communityName))
mid, p = call("ehealth", "registerNewbornPatient", unzr=u.unzr, medicalCertificateNumber="2026-1120-0042-7715",
              actRecordNumber=act, child=child)
out.append(("registerNewbornPatient", mid, p.patientId))
for op, mid, value in out:
    print(f"{op} {mid} {value}")
