//! The eMalyatko flow: which services an application needs, in what order, how each request is
//! made from the application and the answers already in, and what each answer means.
//!
//! Requests and answers go through the types generated from `wsdl/` ([`brama_wsdl::registries`]):
//! the request is first written as JSON under the WSDL's element names, then read into the
//! generated struct (which refuses a missing required field), then written as the X-Road SOAP
//! request. Answers are stored as the generated response struct's JSON.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::application::Application;
use super::retry::AttemptError;
use brama_wsdl::registries::{dms, dps, dracs, ehealth, msp, rtg};
use brama_wsdl::runtime::{self, ClientError, Operation};
use brama_xroad::error::Fault;
use brama_xroad::identifiers::{ClientId, ServiceId};
use brama_xroad::message::build::RequestHeader;
use brama_xroad::message::soap::SoapMessage;

/// One service of the flow.
#[derive(Debug)]
pub struct ServiceSpec {
    /// The WSDL operation, also the service's name in the API.
    pub name: &'static str,
    /// The WSDL (registry) it belongs to.
    pub registry: &'static str,
    /// Services whose answers its request needs.
    pub needs: &'static [&'static str],
}

const CERT: &str = "getMedicalBirthCertificate";
const BIRTH: &str = "registerBirth";
const STATUS: &str = "getBirthRegistrationStatus";
const UNZR: &str = "assignUnzr";

/// Every service, in plan order.
pub const SERVICES: &[ServiceSpec] = &[
    svc(CERT, "ehealth", &[]),
    svc(BIRTH, "dracs", &[CERT]),
    svc(STATUS, "dracs", &[BIRTH]),
    svc(UNZR, "dms", &[STATUS]),
    svc("determineCitizenship", "dms", &[STATUS, UNZR]),
    svc("registerTaxpayer", "dps", &[STATUS, UNZR]),
    svc("assignBirthAssistance", "msp", &[STATUS]),
    svc("assignLargeFamilySupport", "msp", &[STATUS]),
    svc("registerResidence", "rtg", &[STATUS, UNZR]),
    svc("registerNewbornPatient", "ehealth", &[CERT, STATUS, UNZR]),
];

const fn svc(
    name: &'static str,
    registry: &'static str,
    needs: &'static [&'static str],
) -> ServiceSpec {
    ServiceSpec {
        name,
        registry,
        needs,
    }
}

pub fn spec(name: &str) -> Option<&'static ServiceSpec> {
    SERVICES.iter().find(|s| s.name == name)
}

pub(crate) fn is_service(name: &str) -> bool {
    spec(name).is_some()
}

/// The services of an application: the certificate, the birth registration and its status
/// always; the chosen ones; and whatever they need.
pub fn plan(app: &Application) -> Vec<&'static ServiceSpec> {
    let mut wanted: Vec<&str> = vec![CERT, BIRTH, STATUS];
    wanted.extend(app.chosen.iter().copied());
    // Close over `needs` (the table is ordered, so one pass per level suffices).
    loop {
        let before = wanted.len();
        let needed: Vec<&str> = SERVICES
            .iter()
            .filter(|s| wanted.contains(&s.name))
            .flat_map(|s| s.needs.iter().copied())
            .collect();
        for n in needed {
            if !wanted.contains(&n) {
                wanted.push(n);
            }
        }
        if wanted.len() == before {
            break;
        }
    }
    SERVICES
        .iter()
        .filter(|s| wanted.contains(&s.name))
        .collect()
}

/// X-Road header fields of one delivery.
pub struct Header<'a> {
    pub client: &'a ClientId,
    pub provider: &'a ClientId,
    pub id: &'a str,
    pub application: &'a str,
}

/// Runs `$f::<Op>($args)` for the operation named `$name`.
macro_rules! by_operation {
    ($name:expr, $f:ident ( $($arg:expr),* )) => {
        match $name {
            "getMedicalBirthCertificate" => $f::<ehealth::GetMedicalBirthCertificateOp>($($arg),*),
            "registerBirth" => $f::<dracs::RegisterBirthOp>($($arg),*),
            "getBirthRegistrationStatus" => $f::<dracs::GetBirthRegistrationStatusOp>($($arg),*),
            "assignUnzr" => $f::<dms::AssignUnzrOp>($($arg),*),
            "determineCitizenship" => $f::<dms::DetermineCitizenshipOp>($($arg),*),
            "registerTaxpayer" => $f::<dps::RegisterTaxpayerOp>($($arg),*),
            "assignBirthAssistance" => $f::<msp::AssignBirthAssistanceOp>($($arg),*),
            "assignLargeFamilySupport" => $f::<msp::AssignLargeFamilySupportOp>($($arg),*),
            "registerResidence" => $f::<rtg::RegisterResidenceOp>($($arg),*),
            "registerNewbornPatient" => $f::<ehealth::RegisterNewbornPatientOp>($($arg),*),
            other => Err(unknown(other)),
        }
    };
}

fn unknown<E: From<String>>(name: &str) -> E {
    E::from(format!("'{name}' is not a service of the flow"))
}

/// The Body element of `service`'s SOAP request: what the router stores. The envelope around it
/// is built on each attempt by `soap_request`, without parsing.
pub fn request(
    service: &str,
    app: &Application,
    answers: &BTreeMap<&str, &Value>,
) -> Result<String, String> {
    let payload = payload(service, app, answers)?;
    by_operation!(service, body_element(payload))
}

fn body_element<O: Operation>(payload: Value) -> Result<String, String>
where
    O::Request: serde::de::DeserializeOwned,
{
    let req: O::Request =
        serde_json::from_value(payload).map_err(|e| format!("{} request: {e}", O::NAME))?;
    runtime::request_body::<O>(&req).map_err(|e| e.to_string())
}

/// The X-Road SOAP request of `service` whose Body element is `body` (from [`request`]).
pub(crate) fn soap_request(
    service: &str,
    h: &Header<'_>,
    body: &str,
) -> Result<SoapMessage, String> {
    by_operation!(service, built(h, body))
}

fn built<O: Operation>(h: &Header<'_>, body: &str) -> Result<SoapMessage, String> {
    let header = RequestHeader {
        client: h.client.clone(),
        service: ServiceId {
            provider: h.provider.clone(),
            service_code: O::NAME.to_string(),
            service_version: O::VERSION.map(str::to_string),
        },
        id: h.id.to_string(),
        user_id: None,
        issue: Some(h.application.to_string()),
        security_server: None,
    };
    Ok(runtime::request_message::<O>(&header, body))
}

/// The JSON body of `service` delivered over REST: the operation's request (checked through
/// its generated type, so SOAP and REST registries get the same fields).
pub(crate) fn rest_request(
    service: &str,
    app: &Application,
    answers: &BTreeMap<&str, &Value>,
) -> Result<String, String> {
    let payload = payload(service, app, answers)?;
    by_operation!(service, json_body(payload))
}

fn json_body<O: Operation>(payload: Value) -> Result<String, String>
where
    O::Request: serde::de::DeserializeOwned + serde::Serialize,
{
    let req: O::Request =
        serde_json::from_value(payload).map_err(|e| format!("{} request: {e}", O::NAME))?;
    serde_json::to_string(&req).map_err(|e| e.to_string())
}

/// What an answer means for the delivery.
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    Done(Value),
    /// The registry is still working on it: ask again later.
    NotYet(Value),
}

/// Reads the answer to `service`, as the client proxy parsed and verified it.
pub(crate) fn interpret(service: &str, answer: &SoapMessage) -> Result<Verdict, AttemptError> {
    let v: Value = by_operation!(service, typed_answer(answer))?;
    verdict(service, v)
}

/// Reads a REST registry's JSON answer to `service` (its generated response type).
pub(crate) fn interpret_json(service: &str, json: &[u8]) -> Result<Verdict, AttemptError> {
    let v: Value = by_operation!(service, json_answer(json))?;
    verdict(service, v)
}

fn json_answer<O: Operation>(json: &[u8]) -> Result<Value, AttemptError>
where
    O::Response: serde::de::DeserializeOwned + serde::Serialize,
{
    let r: O::Response = serde_json::from_slice(json)
        .map_err(|e| AttemptError::Malformed(format!("{} answer: {e}", O::NAME)))?;
    serde_json::to_value(&r).map_err(|e| AttemptError::Malformed(e.to_string()))
}

fn verdict(service: &str, v: Value) -> Result<Verdict, AttemptError> {
    if service == STATUS {
        return match v["status"].as_str() {
            Some("REGISTERED") if v.get("actRecord").is_some_and(|a| !a.is_null()) => {
                Ok(Verdict::Done(v))
            }
            Some("IN_PROGRESS") => Ok(Verdict::NotYet(v)),
            Some("REJECTED") => Err(AttemptError::Fault(Fault::remote(
                "Client.RegistrationRejected".into(),
                v["rejectionReason"]
                    .as_str()
                    .unwrap_or("the registry office refused the registration")
                    .to_string(),
                None,
            ))),
            _ => Err(AttemptError::Malformed(format!(
                "unexpected registration status {}",
                v["status"]
            ))),
        };
    }
    Ok(Verdict::Done(v))
}

fn typed_answer<O: Operation>(answer: &SoapMessage) -> Result<Value, AttemptError>
where
    O::Response: serde::Serialize,
{
    match runtime::read_response::<O>(answer) {
        Ok(r) => serde_json::to_value(&r).map_err(|e| AttemptError::Malformed(e.to_string())),
        Err(ClientError::Fault {
            code,
            string,
            detail,
        }) => Err(AttemptError::Fault(Fault::remote(code, string, detail))),
        Err(e) => Err(AttemptError::Malformed(e.to_string())),
    }
}

impl From<String> for AttemptError {
    fn from(s: String) -> Self {
        AttemptError::Malformed(s)
    }
}

/// The request payload under the WSDL's element names.
fn payload(
    service: &str,
    app: &Application,
    answers: &BTreeMap<&str, &Value>,
) -> Result<Value, String> {
    let a = &app.json;
    let get = |name: &str| -> Result<&Value, String> {
        answers
            .get(name)
            .copied()
            .ok_or_else(|| format!("{service} needs the answer of {name}"))
    };
    let mother = app
        .parent("mother")
        .ok_or("the application names no mother")?;
    let father = app.parent("father");
    let person = |p: &str| {
        let v = &a[&p[1..]];
        json!({
            "surname": v["surname"], "givenName": v["givenName"], "patronymic": v["patronymic"],
            "birthDate": v["birthDate"], "rnokpp": v["rnokpp"], "unzr": v["unzr"],
        })
    };
    let child = || {
        let c = &a["child"];
        json!({
            "surname": c["surname"], "givenName": c["givenName"], "patronymic": c["patronymic"],
            "sex": c["sex"], "birthDate": c["birthDate"], "birthPlaceKatottg": c["birthPlaceKatottg"],
        })
    };
    let act = || -> Result<&Value, String> { Ok(&get(STATUS)?["actRecord"]) };
    let unzr = || -> Result<&Value, String> { Ok(&get(UNZR)?["unzr"]) };
    let applicant_rnokpp = &a["applicant"]["rnokpp"];
    let v = match service {
        CERT => json!({
            "certificateNumber": a["medicalBirthCertificate"],
            "motherRnokpp": a[&mother[1..]]["rnokpp"],
        }),
        BIRTH => json!({
            "medicalCertificateNumber": a["medicalBirthCertificate"],
            "child": child(),
            "mother": person(mother),
            "father": father.map(person),
            "applicantRnokpp": applicant_rnokpp,
            "registrationOfficeKatottg": a.get("registrationOfficeKatottg")
                .filter(|v| !v.is_null())
                .unwrap_or(&a["child"]["birthPlaceKatottg"]),
        }),
        STATUS => json!({ "applicationNumber": get(BIRTH)?["applicationNumber"] }),
        UNZR => json!({
            "actRecordNumber": act()?["actRecordNumber"],
            "registrationDate": act()?["registrationDate"],
            "child": child(),
        }),
        "determineCitizenship" => json!({
            "unzr": unzr()?,
            "actRecordNumber": act()?["actRecordNumber"],
            "motherRnokpp": a[&mother[1..]]["rnokpp"],
            "fatherRnokpp": father.map(|f| &a[&f[1..]]["rnokpp"]),
        }),
        "registerTaxpayer" => json!({
            "unzr": unzr()?,
            "actRecordNumber": act()?["actRecordNumber"],
            "child": child(),
        }),
        "assignBirthAssistance" => json!({
            "actRecordNumber": act()?["actRecordNumber"],
            "childBirthDate": a["child"]["birthDate"],
            "applicantRnokpp": applicant_rnokpp,
            "iban": a["applicant"]["iban"],
        }),
        "assignLargeFamilySupport" => json!({
            "actRecordNumber": act()?["actRecordNumber"],
            "applicantRnokpp": applicant_rnokpp,
            "childrenCount": a["childrenCount"],
        }),
        "registerResidence" => json!({
            "unzr": unzr()?,
            "actRecordNumber": act()?["actRecordNumber"],
            "parentRnokpp": applicant_rnokpp,
            "address": a["residence"],
        }),
        "registerNewbornPatient" => json!({
            "unzr": unzr()?,
            "medicalCertificateNumber": get(CERT)?["certificateNumber"],
            "actRecordNumber": act()?["actRecordNumber"],
            "child": child(),
        }),
        other => return Err(unknown(other)),
    };
    Ok(strip_nulls(v))
}

/// Absent optional fields are `null` in the JSON built above; the generated types expect them
/// missing.
fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_close_over_needs() {
        let mut app = super::super::application::parse(include_bytes!(
            "../../../examples/applications/birth-and-tax.json"
        ))
        .unwrap();
        let names: Vec<&str> = plan(&app).iter().map(|s| s.name).collect();
        assert_eq!(names, [CERT, BIRTH, STATUS, UNZR, "registerTaxpayer"]);
        app.chosen.clear();
        assert_eq!(plan(&app).len(), 3);
        for s in SERVICES {
            for n in s.needs {
                let pos = |x: &str| SERVICES.iter().position(|s| s.name == x).unwrap();
                assert!(pos(n) < pos(s.name), "{} must come after {n}", s.name);
            }
        }
    }
}
