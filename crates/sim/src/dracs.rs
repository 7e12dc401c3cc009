//! The simulated DRACS civil registry: `getBirthRecord` (wsdl/dracs.wsdl).
//!
//! Records are made up, but deterministically from the query, so repeated calls (and the two
//! security servers' message logs in a test) see the same answer.

use quick_xml::escape::escape;
use quick_xml::events::Event;
use quick_xml::reader::Reader;
use time::{Date, Duration, Month};

pub(crate) const OPERATION: &str = "getBirthRecord";

const OFFICE: &str =
    "Шевченківський відділ державної реєстрації актів цивільного стану у місті Києві";
const KYIV_KATOTTG: &str = "UA80000000000093317";

/// (name, patronymic of a son, patronymic of a daughter)
const MALE: &[(&str, &str, &str)] = &[
    ("Олександр", "Олександрович", "Олександрівна"),
    ("Андрій", "Андрійович", "Андріївна"),
    ("Дмитро", "Дмитрович", "Дмитрівна"),
    ("Максим", "Максимович", "Максимівна"),
    ("Іван", "Іванович", "Іванівна"),
    ("Тарас", "Тарасович", "Тарасівна"),
    ("Богдан", "Богданович", "Богданівна"),
    ("Микола", "Миколайович", "Миколаївна"),
    ("Сергій", "Сергійович", "Сергіївна"),
    ("Володимир", "Володимирович", "Володимирівна"),
    ("Юрій", "Юрійович", "Юріївна"),
    ("Петро", "Петрович", "Петрівна"),
];
const FEMALE: &[&str] = &[
    "Олена",
    "Марія",
    "Анна",
    "Софія",
    "Ірина",
    "Оксана",
    "Наталія",
    "Катерина",
    "Юлія",
    "Дарина",
    "Вікторія",
    "Тетяна",
];
/// Surnames that are the same for men and women, so no declension is needed.
const SURNAMES: &[&str] = &[
    "Шевченко",
    "Коваленко",
    "Бондаренко",
    "Ткаченко",
    "Кравченко",
    "Мельник",
    "Ковальчук",
    "Поліщук",
    "Бойко",
    "Лисенко",
    "Савченко",
    "Руденко",
    "Марченко",
    "Гнатюк",
    "Левченко",
    "Петренко",
];

/// The search keys of a `getBirthRecord` request.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Query {
    pub record_number: Option<String>,
    pub rnokpp: Option<String>,
    pub unzr: Option<String>,
    pub birth_date: Option<String>,
}

/// Reads the wrapper's children by local name (they are unqualified in the WSDL; a qualified
/// form is accepted too). The error is a sentence for a `Client` fault.
pub(crate) fn parse_query(inner: &str) -> Result<Query, String> {
    let mut r = Reader::from_str(inner);
    let mut q = Query::default();
    let mut depth = 0usize;
    let mut field: Option<String> = None;
    let mut text = String::new();
    loop {
        match r
            .read_event()
            .map_err(|e| format!("malformed getBirthRecord: {e}"))?
        {
            Event::Start(e) => {
                depth += 1;
                if depth == 1 {
                    field = Some(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                    text.clear();
                }
            }
            Event::End(_) => {
                if depth == 1 {
                    let value = text.trim().to_string();
                    match field.take().as_deref() {
                        Some("recordNumber") => q.record_number = Some(value),
                        Some("rnokpp") => q.rnokpp = Some(value),
                        Some("unzr") => q.unzr = Some(value),
                        Some("birthDate") => q.birth_date = Some(value),
                        _ => {}
                    }
                }
                depth = depth.saturating_sub(1);
            }
            Event::Text(t) if depth == 1 => {
                text.push_str(
                    &t.unescape()
                        .map_err(|e| format!("malformed getBirthRecord: {e}"))?,
                );
            }
            Event::CData(t) if depth == 1 => text.push_str(&String::from_utf8_lossy(&t)),
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(q)
}

/// The content of `getBirthRecordResponse` (unqualified children), or a `Client` fault sentence
/// when the request does not satisfy the schema.
pub(crate) fn answer(q: &Query) -> Result<String, String> {
    let birth_date = q.birth_date.as_deref().map(parse_date).transpose()?;
    let (key, record_number, birth_date, sex) = if let Some(n) = &q.record_number {
        let digits: String = n.chars().filter(char::is_ascii_digit).collect();
        if digits.trim_start_matches('0').is_empty() {
            return Ok(business_error(
                "NOT_FOUND",
                "Актовий запис про народження не знайдено",
            ));
        }
        (
            format!("no:{}", digits.trim_start_matches('0')),
            n.trim().to_string(),
            birth_date,
            None,
        )
    } else if let Some(id) = &q.rnokpp {
        if id.len() != 10 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err("rnokpp must be 10 digits".into());
        }
        let birth_date = birth_date.ok_or("birthDate is required with rnokpp")?;
        // The 9th RNOKPP digit is odd for men and even for women.
        let sex = id.as_bytes()[8] % 2 == 1;
        (
            format!("id:{id}"),
            String::new(),
            Some(birth_date),
            Some(sex),
        )
    } else if let Some(id) = &q.unzr {
        let b = id.as_bytes();
        let ok = b.len() == 14
            && b[8] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 8 || c.is_ascii_digit());
        if !ok {
            return Err("unzr must have the form YYYYMMDD-NNNNN".into());
        }
        let birth_date = birth_date.ok_or("birthDate is required with unzr")?;
        (format!("id:{id}"), String::new(), Some(birth_date), None)
    } else {
        return Err("getBirthRecord needs recordNumber, or rnokpp or unzr with birthDate".into());
    };

    let mut rng = SplitMix(fnv1a(key.as_bytes()));
    let record_number = if record_number.is_empty() {
        format!("№ {}", 1 + rng.below(4999))
    } else {
        record_number
    };
    let base = time::macros::date!(2000 - 01 - 01);
    let birth_date = match birth_date {
        Some(d) => d,
        None => base
            .checked_add(Duration::days(rng.below(9131) as i64))
            .unwrap_or(base),
    };
    let act_date = birth_date
        .checked_add(Duration::days(3 + rng.below(25) as i64))
        .unwrap_or(birth_date);
    let male = sex.unwrap_or_else(|| rng.below(2) == 1);
    let surname = SURNAMES[rng.below(SURNAMES.len() as u64) as usize];
    let father = MALE[rng.below(MALE.len() as u64) as usize];
    let child_name = if male {
        MALE[rng.below(MALE.len() as u64) as usize].0
    } else {
        FEMALE[rng.below(FEMALE.len() as u64) as usize]
    };
    let grandfather = MALE[rng.below(MALE.len() as u64) as usize];
    let mother = FEMALE[rng.below(FEMALE.len() as u64) as usize];
    let mothers_father = MALE[rng.below(MALE.len() as u64) as usize];
    let status = if rng.below(20) == 0 {
        "AMENDED"
    } else {
        "ACTIVE"
    };

    let mut x = String::with_capacity(2048);
    let person = |x: &mut String, tag: &str, (surname, given, patronymic): (&str, &str, &str)| {
        line(x, 1, &format!("<{tag}>"));
        line(x, 2, &format!("<surname>{surname}</surname>"));
        line(x, 2, &format!("<givenName>{given}</givenName>"));
        line(x, 2, &format!("<patronymic>{patronymic}</patronymic>"));
    };
    line(&mut x, 0, "<birthRecord>");
    let number = escape(&record_number);
    line(
        &mut x,
        1,
        &format!("<actRecordNumber>{number}</actRecordNumber>"),
    );
    line(
        &mut x,
        1,
        &format!("<actRecordDate>{}</actRecordDate>", fmt_date(act_date)),
    );
    let child_patronymic = if male { father.1 } else { father.2 };
    person(&mut x, "child", (surname, child_name, child_patronymic));
    line(
        &mut x,
        2,
        if male { "<sex>M</sex>" } else { "<sex>F</sex>" },
    );
    line(&mut x, 1, "</child>");
    line(
        &mut x,
        1,
        &format!("<birthDate>{}</birthDate>", fmt_date(birth_date)),
    );
    line(&mut x, 1, "<birthPlace>");
    line(&mut x, 2, "<country>Україна</country>");
    line(&mut x, 2, "<settlement>м. Київ</settlement>");
    line(&mut x, 2, &format!("<katottg>{KYIV_KATOTTG}</katottg>"));
    line(&mut x, 1, "</birthPlace>");
    person(&mut x, "father", (surname, father.0, grandfather.1));
    line(&mut x, 1, "</father>");
    person(&mut x, "mother", (surname, mother, mothers_father.2));
    line(&mut x, 1, "</mother>");
    line(
        &mut x,
        1,
        &format!("<registryOffice>{OFFICE}</registryOffice>"),
    );
    line(&mut x, 1, &format!("<status>{status}</status>"));
    line(&mut x, 0, "</birthRecord>");
    Ok(x)
}

/// Indentation for a reader of `curl` output: the response wrapper sits at 8 spaces.
fn line(out: &mut String, depth: usize, text: &str) {
    out.push('\n');
    out.extend(std::iter::repeat_n(' ', 12 + 4 * depth));
    out.push_str(text);
}

fn business_error(code: &str, message: &str) -> String {
    let mut x = String::new();
    line(&mut x, 0, "<error>");
    line(&mut x, 1, &format!("<code>{code}</code>"));
    line(&mut x, 1, &format!("<message>{message}</message>"));
    line(&mut x, 0, "</error>");
    x
}

/// `xs:date`: `YYYY-MM-DD`, optionally followed by a time zone, which is ignored.
fn parse_date(s: &str) -> Result<Date, String> {
    let bad = || format!("birthDate '{s}' is not a date (YYYY-MM-DD)");
    let d = s.get(..10).ok_or_else(bad)?;
    let tz = &s[10..];
    if !(tz.is_empty()
        || tz == "Z"
        || (tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-'))))
    {
        return Err(bad());
    }
    let b = d.as_bytes();
    if b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let year: i32 = d[..4].parse().map_err(|_| bad())?;
    let month: u8 = d[5..7].parse().map_err(|_| bad())?;
    let day: u8 = d[8..10].parse().map_err(|_| bad())?;
    let month = Month::try_from(month).map_err(|_| bad())?;
    Date::from_calendar_date(year, month, day).map_err(|_| bad())
}

fn fmt_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// SplitMix64: a tiny deterministic generator seeded from the query.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(inner: &str) -> Query {
        parse_query(inner).unwrap()
    }

    #[test]
    fn query_fields() {
        assert_eq!(
            q("<recordNumber>№ 1234</recordNumber>")
                .record_number
                .as_deref(),
            Some("№ 1234")
        );
        let x = q(
            "\n <d:rnokpp xmlns:d='urn:d'> 4243001256 </d:rnokpp><birthDate>2016-03-02</birthDate>",
        );
        assert_eq!(x.rnokpp.as_deref(), Some("4243001256"));
        assert_eq!(x.birth_date.as_deref(), Some("2016-03-02"));
        let _ = parse_query("<a><b>"); // must not panic
    }

    #[test]
    fn deterministic_and_cyrillic() {
        let a = answer(&q("<recordNumber>№ 1234</recordNumber>")).unwrap();
        assert_eq!(
            a,
            answer(&q("<recordNumber>№ 1234</recordNumber>")).unwrap()
        );
        assert!(
            a.contains("<actRecordNumber>№ 1234</actRecordNumber>"),
            "{a}"
        );
        assert!(a.contains(KYIV_KATOTTG) && a.contains(OFFICE));
        assert_ne!(
            a,
            answer(&q("<recordNumber>№ 1235</recordNumber>")).unwrap()
        );
        // Same digits, same record.
        let b = answer(&q("<recordNumber>1234</recordNumber>")).unwrap();
        assert_eq!(a.replace("№ 1234", "1234"), b);
    }

    #[test]
    fn rnokpp_gives_sex_and_date() {
        let a = answer(&q(
            "<rnokpp>4243001256</rnokpp><birthDate>2016-03-02</birthDate>",
        ))
        .unwrap();
        assert!(
            a.contains("<birthDate>2016-03-02</birthDate>") && a.contains("<sex>M</sex>"),
            "{a}"
        );
        assert!(a.contains("<actRecordNumber>№ "));
        let f = answer(&q(
            "<rnokpp>4243001246</rnokpp><birthDate>2016-03-02Z</birthDate>",
        ))
        .unwrap();
        assert!(f.contains("<sex>F</sex>"), "{f}");
        let child = &f[f.find("<child>").unwrap()..f.find("</child>").unwrap()];
        assert!(child.contains("вна</patronymic>"), "{child}");
    }

    #[test]
    fn refusals_and_not_found() {
        assert!(answer(&q("")).is_err());
        assert!(answer(&q("<rnokpp>42</rnokpp><birthDate>2016-03-02</birthDate>")).is_err());
        assert!(answer(&q("<rnokpp>4243001256</rnokpp>")).is_err());
        assert!(answer(&q(
            "<unzr>20160302-0125</unzr><birthDate>2016-03-02</birthDate>"
        ))
        .is_err());
        assert!(answer(&q(
            "<unzr>20160302-01256</unzr><birthDate>2016-02-30</birthDate>"
        ))
        .is_err());
        assert!(answer(&q(
            "<unzr>20160302-01256</unzr><birthDate>2016-03-02</birthDate>"
        ))
        .is_ok());
        for d in ["", "2016", "2016-3-2xx", "ЖЖЖЖ-ЖЖ-ЖЖ", "2016-03-02+0"] {
            assert!(parse_date(d).is_err(), "{d}");
        }
        let nf = answer(&q("<recordNumber>№ 0</recordNumber>")).unwrap();
        assert!(nf.contains("<code>NOT_FOUND</code>") && !nf.contains("birthRecord"));
    }
}
