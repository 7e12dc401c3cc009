//! eHealth (ЕСОЗ) declarations, made up but deterministic (`openapi/ehealth-declarations.yaml`).
//!
//! A patient's declarations follow from a hash of the patient id: one to three, the newest
//! `active` (sometimes `pending_verification`), older ones `terminated`; a patient id starting
//! with `00000000-` has none. A declaration id carries its own check value and its place in the
//! list, and every field of a declaration follows from its id alone, so `GET
//! /declarations/{id}` answers exactly the entry of the list with no state kept, and an id the
//! simulator never issued is unknown (404).

use serde::Serialize;
use sha2::{Digest, Sha256};
use time::Date;
use uuid::Uuid;

/// A declaration as the API sends it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Declaration {
    pub id: String,
    pub status: &'static str,
    pub signed_at: String,
    pub start_date: String,
    pub end_date: String,
    pub doctor: Doctor,
    pub legal_entity: LegalEntity,
    pub division: Division,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Doctor {
    pub id: String,
    pub full_name: String,
    pub speciality: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct LegalEntity {
    pub edrpou: &'static str,
    pub name: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Division {
    pub id: String,
    pub name: String,
    pub settlement: &'static str,
    pub katottg: &'static str,
}

/// The answer to `GET /declarations?patient=`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct PatientDeclarations {
    pub patient: String,
    pub declarations: Vec<Declaration>,
}

/// Why a lookup has no answer: the error `type` and sentence of the API's error body.
#[derive(Debug, PartialEq)]
pub(crate) enum Refused {
    Invalid(String),
    NotFound(String),
}

/// The most declarations a patient has.
const MAX_DECLARATIONS: u8 = 3;

/// A hyphenated UUID (eHealth ids), any case; other spellings `uuid` would accept (braces,
/// `urn:uuid:`, no hyphens) are refused.
pub(crate) fn parse_uuid(field: &str, value: &str) -> Result<Uuid, Refused> {
    let hyphens = [8, 13, 18, 23];
    let shaped = value.len() == 36
        && value.bytes().enumerate().all(|(i, b)| {
            if hyphens.contains(&i) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        });
    let bad = || {
        let shown: String = value.chars().take(64).collect();
        Refused::Invalid(format!("{field}: '{shown}' не є UUID (is not a UUID)"))
    };
    if !shaped {
        return Err(bad());
    }
    Uuid::try_parse(value).map_err(|_| bad())
}

/// A patient's declarations, newest first.
pub(crate) fn for_patient(patient: &str) -> Result<PatientDeclarations, Refused> {
    let id = parse_uuid("patient", patient)?;
    let count = if id.as_bytes()[..4] == [0; 4] {
        0
    } else {
        1 + sha(&[b"patient", id.as_bytes()])[0] % MAX_DECLARATIONS
    };
    Ok(PatientDeclarations {
        patient: id.hyphenated().to_string(),
        declarations: (0..count)
            .map(|i| declaration(&declaration_id(&id, i), i))
            .collect(),
    })
}

/// One declaration by id.
pub(crate) fn by_id(id: &str) -> Result<Declaration, Refused> {
    let uuid = parse_uuid("declarationId", id)?;
    let index = issued_index(&uuid).ok_or_else(|| {
        Refused::NotFound(format!(
            "Декларацію {} не знайдено (declaration not found)",
            uuid.hyphenated()
        ))
    })?;
    Ok(declaration(&uuid, index))
}

fn sha(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// A random-looking version 4 UUID from hash bytes.
fn uuid_from(bytes: &[u8; 32]) -> Uuid {
    let mut b = [0u8; 16];
    b.copy_from_slice(&bytes[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid()
}

/// Bytes 0..11 from the patient's hash (version and variant bits set), byte 11 the place in the
/// list, bytes 12..16 a check value over the rest.
fn declaration_id(patient: &Uuid, index: u8) -> Uuid {
    let h = sha(&[b"declaration", patient.as_bytes(), &[index]]);
    let mut b = *uuid_from(&h).as_bytes();
    b[11] = index;
    let check = sha(&[b"issued", &b[..12]]);
    b[12..].copy_from_slice(&check[..4]);
    Uuid::from_bytes(b)
}

/// The place in its patient's list of a declaration id the simulator issues, if it is one.
fn issued_index(id: &Uuid) -> Option<u8> {
    let b = id.as_bytes();
    let check = sha(&[b"issued", &b[..12]]);
    let v4 = b[6] >> 4 == 4 && b[8] >> 6 == 0b10;
    (v4 && b[11] < MAX_DECLARATIONS && b[12..] == check[..4]).then_some(b[11])
}

/// Numbers drawn from a declaration's hash.
struct Draw([u8; 32]);

impl Draw {
    fn n(&self, i: usize, modulo: u64) -> u64 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.0[(i * 4) % 28..(i * 4) % 28 + 4]);
        u64::from(u32::from_le_bytes(b)) % modulo
    }

    fn pick<T: Copy>(&self, i: usize, items: &[T]) -> T {
        items[self.n(i, items.len() as u64) as usize]
    }
}

fn days_after(base: Date, days: u64) -> Date {
    base.saturating_add(time::Duration::days(days as i64))
}

/// Every field from the id: the newest (index 0) is current, older ones ended before the next
/// one began (their windows do not overlap).
fn declaration(id: &Uuid, index: u8) -> Declaration {
    use time::macros::date;
    let d = Draw(sha(&[b"declaration-data", id.as_bytes()]));
    let (status, signed, end) = match index {
        0 if d.n(0, 8) == 0 => {
            let signed = days_after(date!(2025 - 06 - 01), d.n(1, 180));
            ("pending_verification", signed, years_after(signed, 20))
        }
        0 => {
            let signed = days_after(date!(2023 - 01 - 01), d.n(1, 1095));
            ("active", signed, years_after(signed, 20))
        }
        i => {
            let base = if i == 1 {
                date!(2019 - 01 - 01)
            } else {
                date!(2015 - 01 - 01)
            };
            let signed = days_after(base, d.n(1, 730));
            ("terminated", signed, days_after(signed, 365 + d.n(2, 365)))
        }
    };
    let female = d.n(3, 2) == 0;
    let given = if female {
        d.pick(4, FEMALE_NAMES)
    } else {
        d.pick(4, MALE_NAMES)
    };
    let (father_m, father_f) = d.pick(5, PATRONYMICS);
    let place = d.pick(6, PLACES);
    let division = d.n(7, 12) + 1;
    Declaration {
        id: id.hyphenated().to_string(),
        status,
        signed_at: signed.to_string(),
        start_date: signed.to_string(),
        end_date: end.to_string(),
        doctor: Doctor {
            id: uuid_from(&sha(&[b"doctor", &d.0])).hyphenated().to_string(),
            full_name: format!(
                "{} {given} {}",
                d.pick(2, SURNAMES),
                if female { father_f } else { father_m }
            ),
            speciality: d.pick(0, SPECIALITIES),
        },
        legal_entity: LegalEntity {
            edrpou: place.edrpou,
            name: place.legal_entity,
        },
        division: Division {
            id: uuid_from(&sha(&[
                b"division",
                place.edrpou.as_bytes(),
                &[division as u8],
            ]))
            .hyphenated()
            .to_string(),
            name: format!("{} № {division}", place.division),
            settlement: place.settlement,
            katottg: place.katottg,
        },
    }
}

fn years_after(d: Date, years: i32) -> Date {
    // 29 February moves to 28 February in a year that has none.
    d.replace_year(d.year() + years)
        .or_else(|_| {
            d.replace_day(28)
                .and_then(|d| d.replace_year(d.year() + years))
        })
        .unwrap_or(d)
}

const SPECIALITIES: &[&str] = &["FAMILY_DOCTOR", "PEDIATRICIAN", "THERAPIST"];

/// Surnames that read the same for women and men.
const SURNAMES: &[&str] = &[
    "Коваленко",
    "Шевченко",
    "Бондаренко",
    "Ткаченко",
    "Кравченко",
    "Мельник",
    "Лисенко",
    "Савчук",
    "Поліщук",
    "Марченко",
    "Гнатюк",
    "Остапчук",
];

const FEMALE_NAMES: &[&str] = &[
    "Ірина",
    "Олена",
    "Наталія",
    "Оксана",
    "Тетяна",
    "Світлана",
    "Галина",
    "Юлія",
];

const MALE_NAMES: &[&str] = &[
    "Андрій",
    "Олександр",
    "Сергій",
    "Володимир",
    "Микола",
    "Дмитро",
    "Тарас",
    "Богдан",
];

/// (for a man, for a woman).
const PATRONYMICS: &[(&str, &str)] = &[
    ("Петрович", "Петрівна"),
    ("Іванович", "Іванівна"),
    ("Миколайович", "Миколаївна"),
    ("Васильович", "Василівна"),
    ("Олегович", "Олегівна"),
    ("Степанович", "Степанівна"),
];

#[derive(Clone, Copy)]
struct Place {
    edrpou: &'static str,
    legal_entity: &'static str,
    division: &'static str,
    settlement: &'static str,
    katottg: &'static str,
}

/// Primary care providers: names in the usual form, made-up ЄДРПОУ codes, real КАТОТТГ codes of
/// the cities.
const PLACES: &[Place] = &[
    Place {
        edrpou: "38425961",
        legal_entity:
            "КНП «Центр первинної медико-санітарної допомоги № 1 Шевченківського району м. Києва»",
        division: "Амбулаторія загальної практики — сімейної медицини",
        settlement: "м. Київ",
        katottg: "UA80000000000093317",
    },
    Place {
        edrpou: "38520417",
        legal_entity: "КНП «Консультативно-діагностичний центр Печерського району м. Києва»",
        division: "Відділення сімейної медицини",
        settlement: "м. Київ",
        katottg: "UA80000000000093317",
    },
    Place {
        edrpou: "41230578",
        legal_entity:
            "КНП «Міський центр первинної медико-санітарної допомоги» Львівської міської ради",
        division: "Амбулаторія загальної практики — сімейної медицини",
        settlement: "м. Львів",
        katottg: "UA46060250010015970",
    },
    Place {
        edrpou: "40187263",
        legal_entity:
            "КНП «Центр первинної медико-санітарної допомоги № 2» Вінницької міської ради",
        division: "Амбулаторія загальної практики — сімейної медицини",
        settlement: "м. Вінниця",
        katottg: "UA05020030010063857",
    },
    Place {
        edrpou: "39914528",
        legal_entity:
            "КНП «Центр первинної медико-санітарної допомоги № 5» Харківської міської ради",
        division: "Амбулаторія загальної практики — сімейної медицини",
        settlement: "м. Харків",
        katottg: "UA63120270010096107",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    const PATIENT: &str = "7c3e1f0a-5b2d-4e8f-9a61-2d4b8c0e7f13";

    #[test]
    fn a_patient_has_one_to_three_declarations_newest_current() {
        let mut counts = [0usize; 4];
        for i in 0..200u32 {
            let patient = format!("{i:08x}-5b2d-4e8f-9a61-2d4b8c0e7f13");
            let p = for_patient(&patient).unwrap();
            if i == 0 {
                assert!(p.declarations.is_empty(), "00000000- has none");
                continue;
            }
            counts[p.declarations.len()] += 1;
            let current = &p.declarations[0];
            assert!(
                matches!(current.status, "active" | "pending_verification"),
                "{current:?}"
            );
            for (older, newer) in p.declarations[1..].iter().zip(&p.declarations) {
                assert_eq!(older.status, "terminated");
                assert!(older.end_date < newer.start_date, "{older:?} {newer:?}");
            }
            for d in &p.declarations {
                assert!(
                    d.signed_at <= d.start_date && d.start_date < d.end_date,
                    "{d:?}"
                );
                assert!(d.legal_entity.edrpou.len() == 8);
                assert!(d.division.katottg.starts_with("UA") && d.division.katottg.len() == 19);
                assert_eq!(d.doctor.full_name.split(' ').count(), 3);
                assert!(SPECIALITIES.contains(&d.doctor.speciality));
            }
        }
        assert!(
            counts[1] > 0 && counts[2] > 0 && counts[3] > 0,
            "{counts:?}"
        );
    }

    #[test]
    fn answers_are_repeatable_and_ids_resolve_to_the_same_declaration() {
        let a = for_patient(PATIENT).unwrap();
        assert_eq!(a, for_patient(&PATIENT.to_uppercase()).unwrap());
        assert_eq!(a.patient, PATIENT);
        for d in &a.declarations {
            assert_eq!(&by_id(&d.id).unwrap(), d);
            assert_eq!(&by_id(&d.id.to_uppercase()).unwrap(), d);
        }
        let other = for_patient("11111111-5b2d-4e8f-9a61-2d4b8c0e7f13").unwrap();
        assert_ne!(a.declarations[0].id, other.declarations[0].id);
    }

    #[test]
    fn unknown_and_malformed_ids() {
        let known = for_patient(PATIENT).unwrap().declarations[0].id.clone();
        // One changed hex digit in the check value, the place in the list, the random part.
        for pos in [35, 25, 0] {
            let mut s = known.clone().into_bytes();
            s[pos] = if s[pos] == b'0' { b'1' } else { b'0' };
            let s = String::from_utf8(s).unwrap();
            assert!(matches!(by_id(&s), Err(Refused::NotFound(_))), "{s}");
        }
        assert!(matches!(
            by_id("00000000-0000-4000-8000-000000000000"),
            Err(Refused::NotFound(_))
        ));
        for bad in [
            "",
            "123",
            "7c3e1f0a5b2d4e8f9a612d4b8c0e7f13",
            "{7c3e1f0a-5b2d-4e8f-9a61-2d4b8c0e7f13}",
            "urn:uuid:7c3e1f0a-5b2d-4e8f-9a61-2d4b8c0e7f13",
            "7c3e1f0a-5b2d-4e8f-9a61-2d4b8c0e7f1g",
            "7c3e1f0a-5b2d-4e8f-9a61+2d4b8c0e7f13",
        ] {
            match for_patient(bad) {
                Err(Refused::Invalid(m)) => assert!(m.contains("patient"), "{m}"),
                other => panic!("{bad}: {other:?}"),
            }
            assert!(matches!(by_id(bad), Err(Refused::Invalid(_))), "{bad}");
        }
    }

    #[test]
    fn leap_days_move_to_the_28th() {
        use time::macros::date;
        assert_eq!(
            years_after(date!(2024 - 02 - 29), 20),
            date!(2044 - 02 - 29)
        );
        assert_eq!(years_after(date!(2024 - 02 - 29), 1), date!(2025 - 02 - 28));
    }
}
