//! The eMalyatko registries' operations (docs/registries.md): eHealth, DRACS registration and
//! status, DMS, DPS, social policy and the territorial community register.
//!
//! Answers are derived from a hash of the request, so a repeated request gets the same answer
//! (registries that detect repeats behave so); the DRACS registration status is the one piece of
//! state: "in progress" until the processing time has passed since the application was first seen.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use quick_xml::escape::escape;
use quick_xml::events::Event;
use quick_xml::reader::Reader;
use sha2::{Digest, Sha256};
use time::{Date, OffsetDateTime};

/// The operations answered here, with their registry (WSDL name).
pub(crate) const OPERATIONS: &[(&str, &str)] = &[
    ("getMedicalBirthCertificate", "ehealth"),
    ("registerNewbornPatient", "ehealth"),
    ("registerBirth", "dracs"),
    ("getBirthRegistrationStatus", "dracs"),
    ("assignUnzr", "dms"),
    ("determineCitizenship", "dms"),
    ("registerTaxpayer", "dps"),
    ("assignBirthAssistance", "msp"),
    ("assignLargeFamilySupport", "msp"),
    ("registerResidence", "rtg"),
];

/// The registry an operation belongs to (`getBirthRecord` is DRACS too).
pub(crate) fn registry_of(op: &str) -> Option<&'static str> {
    if op == super::dracs::OPERATION {
        return Some("dracs");
    }
    OPERATIONS.iter().find(|(o, _)| *o == op).map(|(_, r)| *r)
}

/// Applications the DRACS clerk is working on, by number: when first seen. Bounded: past the
/// limit the oldest half is forgotten (a forgotten number starts over as "in progress").
#[derive(Default)]
pub(crate) struct Dracs {
    seen: Mutex<HashMap<String, Instant>>,
}

const DRACS_MEMORY: usize = 200_000;

impl Dracs {
    fn first_seen(&self, number: &str) -> Instant {
        let mut m = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= DRACS_MEMORY && !m.contains_key(number) {
            let mut times: Vec<Instant> = m.values().copied().collect();
            times.sort();
            let cut = times[times.len() / 2];
            m.retain(|_, t| *t > cut);
        }
        *m.entry(number.to_string()).or_insert_with(Instant::now)
    }
}

/// A SOAP fault the registry answers with.
#[derive(Debug, PartialEq)]
pub(crate) struct Refusal {
    pub code: &'static str,
    pub message: String,
}

fn invalid(msg: impl Into<String>) -> Refusal {
    Refusal {
        code: "Client.InvalidRequest",
        message: msg.into(),
    }
}

/// The request's fields by path of local names (`child/birthDate`).
struct Fields(Vec<(String, String)>);

impl Fields {
    fn parse(inner: &str) -> Result<Fields, Refusal> {
        let mut r = Reader::from_str(inner);
        let mut path: Vec<String> = Vec::new();
        let mut out = Vec::new();
        let mut text = String::new();
        loop {
            match r
                .read_event()
                .map_err(|e| invalid(format!("malformed request: {e}")))?
            {
                Event::Start(e) => {
                    path.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                    text.clear();
                    if path.len() > 8 {
                        return Err(invalid("request nested too deeply"));
                    }
                }
                Event::End(_) => {
                    if !text.trim().is_empty() {
                        out.push((path.join("/"), text.trim().to_string()));
                    }
                    text.clear();
                    path.pop();
                }
                Event::Text(t) => text.push_str(
                    &t.unescape()
                        .map_err(|e| invalid(format!("malformed request: {e}")))?,
                ),
                Event::Eof => break,
                _ => {}
            }
        }
        Ok(Fields(out))
    }

    fn get(&self, path: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, v)| v.as_str())
    }

    fn req(&self, path: &str) -> Result<&str, Refusal> {
        self.get(path)
            .ok_or_else(|| invalid(format!("поле {path} відсутнє (field {path} is missing)")))
    }
}

/// Numbers drawn from the request hash.
struct Seed([u8; 32]);

impl Seed {
    fn of(op: &str, inner: &str) -> Seed {
        let mut h = Sha256::new();
        h.update(op.as_bytes());
        h.update(inner.as_bytes());
        Seed(h.finalize().into())
    }

    fn n(&self, i: usize, modulo: u64) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[(i * 8) % 24..(i * 8) % 24 + 8]);
        u64::from_le_bytes(b) % modulo
    }
}

fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

fn now() -> String {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn date(s: &str, field: &str) -> Result<Date, Refusal> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &fmt).map_err(|_| invalid(format!("{field}: '{s}' is not a date")))
}

fn pattern_digits(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit())
}

fn el(name: &str, value: &str) -> String {
    format!("<{name}>{}</{name}>", escape(value))
}

const FACILITIES: &[(&str, &str)] = &[
    ("КНП «Київський міський пологовий будинок № 5»", "01994101"),
    ("КНП «Перинатальний центр м. Києва»", "05417094"),
    (
        "КНП «Львівське територіальне медичне обʼєднання»",
        "01999450",
    ),
];

const OFFICES: &[&str] = &[
    "Шевченківський відділ державної реєстрації актів цивільного стану у місті Києві",
    "Печерський відділ державної реєстрації актів цивільного стану у місті Києві",
    "Галицький відділ державної реєстрації актів цивільного стану у місті Львові",
];

/// Answers `op` (one of [`OPERATIONS`]): the content of its response wrapper, or a refusal.
pub(crate) fn answer(
    op: &str,
    inner: &str,
    dracs: &Dracs,
    processing: Duration,
) -> Result<String, Refusal> {
    let f = Fields::parse(inner)?;
    let seed = Seed::of(op, inner);
    let out = match op {
        "getMedicalBirthCertificate" => {
            let number = f.req("certificateNumber")?;
            let mother = f.req("motherRnokpp")?;
            if number.starts_with("0000") {
                return Err(Refusal {
                    code: "Client.CertificateNotFound",
                    message: format!(
                        "Медичне свідоцтво про народження № {number} не знайдено (certificate not found)"
                    ),
                });
            }
            let born = today() - time::Duration::days(seed.n(0, 3) as i64);
            let (facility, edrpou) = FACILITIES[seed.n(1, FACILITIES.len() as u64) as usize];
            [
                el("certificateNumber", number),
                el("issuedAt", &born.to_string()),
                el("facilityName", facility),
                el("facilityEdrpou", edrpou),
                el("sex", if seed.n(2, 2) == 0 { "F" } else { "M" }),
                el("birthDate", &born.to_string()),
                el(
                    "birthTime",
                    &format!("{:02}:{:02}", seed.n(3, 24), seed.n(0, 60)),
                ),
                el("birthPlaceKatottg", "UA80000000000093317"),
                el("weightGrams", &(2600 + seed.n(1, 1700)).to_string()),
                el("heightCm", &(47 + seed.n(2, 9)).to_string()),
                format!(
                    "<mother>{}{}{}{}</mother>",
                    el("surname", "Шевченко"),
                    el("givenName", "Олена"),
                    el("birthDate", "1994-03-12"),
                    el("rnokpp", mother)
                ),
            ]
            .concat()
        }
        "registerBirth" => {
            f.req("medicalCertificateNumber")?;
            f.req("child/surname")?;
            f.req("child/givenName")?;
            date(f.req("child/birthDate")?, "child/birthDate")?;
            f.req("mother/surname")?;
            f.req("applicantRnokpp")?;
            let number = format!("ДРАЦС-{}-{:08}", today().year(), seed.n(0, 100_000_000));
            dracs.first_seen(&number);
            [
                el("applicationNumber", &number),
                el("status", "ACCEPTED"),
                el("acceptedAt", &now()),
            ]
            .concat()
        }
        "getBirthRegistrationStatus" => {
            let number = f.req("applicationNumber")?;
            if !number.starts_with("ДРАЦС-") {
                return Err(Refusal {
                    code: "Client.ApplicationNotFound",
                    message: format!("Заяву {number} не знайдено (no such application)"),
                });
            }
            if dracs.first_seen(number).elapsed() < processing {
                [el("applicationNumber", number), el("status", "IN_PROGRESS")].concat()
            } else {
                let s = Seed::of("act", number);
                [
                    el("applicationNumber", number),
                    el("status", "REGISTERED"),
                    format!(
                        "<actRecord>{}{}{}{}{}</actRecord>",
                        el(
                            "actRecordNumber",
                            &format!("{}", 100_000 + s.n(0, 899_999_999))
                        ),
                        el("registrationDate", &today().to_string()),
                        el(
                            "registryOffice",
                            OFFICES[s.n(1, OFFICES.len() as u64) as usize]
                        ),
                        el("certificateSeries", "І-ТВ"),
                        el("certificateNumber", &format!("{:06}", s.n(2, 1_000_000)))
                    ),
                ]
                .concat()
            }
        }
        "assignUnzr" => {
            f.req("actRecordNumber")?;
            let born = date(f.req("child/birthDate")?, "child/birthDate")?;
            let serial = seed.n(0, 10_000);
            let digits = format!(
                "{:04}{:02}{:02}{serial:04}",
                born.year(),
                born.month() as u8,
                born.day()
            );
            let check = digits
                .bytes()
                .zip([7u32, 3, 1].iter().cycle())
                .map(|(b, w)| u32::from(b - b'0') * w)
                .sum::<u32>()
                % 10;
            [
                el("unzr", &format!("{}-{}{check}", &digits[..8], &digits[8..])),
                el("assignedAt", &now()),
            ]
            .concat()
        }
        "determineCitizenship" => {
            f.req("unzr")?;
            f.req("actRecordNumber")?;
            f.req("motherRnokpp")?;
            [
                el("citizenship", "UKR"),
                el(
                    "basis",
                    "ст. 7 Закону України «Про громадянство України» (народження від громадян України)",
                ),
                el("decisionDate", &today().to_string()),
            ]
            .concat()
        }
        "registerTaxpayer" => {
            f.req("unzr")?;
            let born = date(f.req("child/birthDate")?, "child/birthDate")?;
            let male = f.get("child/sex") == Some("M");
            // The DRFO number: days since 1899-12-31, a serial, the sex digit, a check digit.
            let days = (born - time::macros::date!(1899 - 12 - 31)).whole_days();
            let sex_digit = seed.n(1, 5) * 2 + u64::from(male);
            let first9 = format!("{days:05}{:03}{sex_digit}", seed.n(0, 1000));
            // Days before 1900 or past 2173 do not fit the number.
            let rnokpp = brama_xroad::rnokpp::complete(&first9)
                .ok_or_else(|| invalid(format!("child/birthDate: {born} has no DRFO number")))?;
            [
                el("rnokpp", &rnokpp),
                el("registrationDate", &today().to_string()),
                el("taxOffice", "Головне управління ДПС у м. Києві"),
            ]
            .concat()
        }
        "assignBirthAssistance" => {
            f.req("actRecordNumber")?;
            let iban = f.req("iban")?;
            if !(iban.starts_with("UA") && pattern_digits(&iban[2..], 27)) {
                return Err(invalid(format!("iban: '{iban}' is not a Ukrainian IBAN")));
            }
            [
                el(
                    "decisionNumber",
                    &format!("ДН-{:07}", seed.n(0, 10_000_000)),
                ),
                el("decisionDate", &today().to_string()),
                el("amountUah", "41280.00"),
                el(
                    "firstPaymentDate",
                    &(today() + time::Duration::days(30)).to_string(),
                ),
            ]
            .concat()
        }
        "assignLargeFamilySupport" => {
            f.req("actRecordNumber")?;
            let count: u32 = f
                .req("childrenCount")?
                .parse()
                .map_err(|_| invalid("childrenCount is not a number"))?;
            if count < 3 {
                return Err(Refusal {
                    code: "Client.NotEligible",
                    message: format!(
                        "Статус багатодітної сімʼї надається з трьох дітей, указано {count}"
                    ),
                });
            }
            [
                el(
                    "decisionNumber",
                    &format!("БС-{:07}", seed.n(0, 10_000_000)),
                ),
                el(
                    "certificateNumber",
                    &format!("АБ {:06}", seed.n(1, 1_000_000)),
                ),
                el(
                    "validUntil",
                    &today()
                        .replace_year(today().year() + 18)
                        .unwrap_or(today())
                        .to_string(),
                ),
            ]
            .concat()
        }
        "registerResidence" => {
            f.req("unzr")?;
            let katottg = f.req("address/katottg")?;
            let community = if katottg.starts_with("UA80") {
                "Київська міська територіальна громада".to_string()
            } else {
                format!(
                    "Територіальна громада {}",
                    &katottg[..katottg.len().min(12)]
                )
            };
            [
                el(
                    "registrationNumber",
                    &format!("РТГ-{:09}", seed.n(0, 1_000_000_000)),
                ),
                el("registeredAt", &now()),
                el("communityName", &community),
            ]
            .concat()
        }
        "registerNewbornPatient" => {
            f.req("unzr")?;
            f.req("medicalCertificateNumber")?;
            let h = &seed.0;
            [
                el(
                    "patientId",
                    &uuid::Builder::from_random_bytes(h[..16].try_into().expect("16 bytes"))
                        .into_uuid()
                        .to_string(),
                ),
                el("createdAt", &now()),
            ]
            .concat()
        }
        other => return Err(invalid(format!("unknown operation {other}"))),
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(op: &str, inner: &str) -> Result<String, Refusal> {
        answer(op, inner, &Dracs::default(), Duration::ZERO)
    }

    #[test]
    fn certificates_and_refusals() {
        let ok = ask(
            "getMedicalBirthCertificate",
            "<certificateNumber>2026-1120-0042-7715</certificateNumber><motherRnokpp>3456789012</motherRnokpp>",
        )
        .unwrap();
        assert!(ok.contains("<motherRnokpp>") || ok.contains("<rnokpp>3456789012</rnokpp>"));
        let e = ask(
            "getMedicalBirthCertificate",
            "<certificateNumber>0000-1120-0042-7715</certificateNumber><motherRnokpp>3456789012</motherRnokpp>",
        )
        .unwrap_err();
        assert_eq!(e.code, "Client.CertificateNotFound");
        let e = ask("registerTaxpayer", "<unzr>20261120-00011</unzr>").unwrap_err();
        assert_eq!(e.code, "Client.InvalidRequest");
        assert!(e.message.contains("child/birthDate"));
    }

    #[test]
    fn status_is_in_progress_until_the_clerk_is_done() {
        let d = Dracs::default();
        let reg = answer(
            "registerBirth",
            "<medicalCertificateNumber>1</medicalCertificateNumber><child><surname>А</surname><givenName>Б</givenName><birthDate>2026-11-20</birthDate></child><mother><surname>В</surname></mother><applicantRnokpp>3456789012</applicantRnokpp>",
            &d,
            Duration::from_millis(100),
        )
        .unwrap();
        let number = reg
            .split("<applicationNumber>")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap();
        let q = format!("<applicationNumber>{number}</applicationNumber>");
        let a = answer(
            "getBirthRegistrationStatus",
            &q,
            &d,
            Duration::from_millis(100),
        )
        .unwrap();
        assert!(a.contains("IN_PROGRESS"), "{a}");
        std::thread::sleep(Duration::from_millis(120));
        let a = answer(
            "getBirthRegistrationStatus",
            &q,
            &d,
            Duration::from_millis(100),
        )
        .unwrap();
        assert!(
            a.contains("REGISTERED") && a.contains("<actRecordNumber>"),
            "{a}"
        );
        let e = ask(
            "getBirthRegistrationStatus",
            "<applicationNumber>X-1</applicationNumber>",
        )
        .unwrap_err();
        assert_eq!(e.code, "Client.ApplicationNotFound");
    }

    #[test]
    fn derived_numbers_are_valid_and_repeatable() {
        let q = "<unzr>20261120-00011</unzr><actRecordNumber>1</actRecordNumber><child><sex>F</sex><birthDate>2026-11-20</birthDate></child>";
        let a = ask("registerTaxpayer", q).unwrap();
        let rnokpp = a
            .split("<rnokpp>")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap();
        assert!(brama_xroad::rnokpp::valid(rnokpp), "{rnokpp}");
        assert_eq!(
            ask("registerTaxpayer", q)
                .unwrap()
                .split("<registrationDate>")
                .next(),
            a.split("<registrationDate>").next()
        );
        let u = ask(
            "assignUnzr",
            "<actRecordNumber>1</actRecordNumber><child><birthDate>2026-11-20</birthDate></child>",
        )
        .unwrap();
        assert!(u.contains("<unzr>20261120-"), "{u}");
        // A birth date the number cannot hold is refused, not a panic or a wrong number.
        for born in ["1850-01-01", "2200-01-01"] {
            let q = q.replace("2026-11-20", born);
            let e = ask("registerTaxpayer", &q).unwrap_err();
            assert!(e.message.contains("has no DRFO number"), "{}", e.message);
        }
    }
}
