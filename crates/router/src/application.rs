//! The eMalyatko application as Diia posts it, and its validation: every problem is named by its
//! field path in one answer, so the portal can show them all at once.

use serde::Serialize;
use serde_json::{Map, Value};

/// Services the applicant may choose, by their name in the application.
pub(crate) const CHOICES: &[(&str, &str)] = &[
    ("unzr", "assignUnzr"),
    ("citizenship", "determineCitizenship"),
    ("taxpayer", "registerTaxpayer"),
    ("birthAssistance", "assignBirthAssistance"),
    ("largeFamilySupport", "assignLargeFamilySupport"),
    ("residence", "registerResidence"),
    ("patient", "registerNewbornPatient"),
];

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

/// A validated application, with the chosen operations.
#[derive(Clone, Debug)]
pub struct Application {
    pub json: Value,
    pub chosen: Vec<&'static str>,
}

impl Application {
    /// A string field by JSON pointer (`/child/surname`); validated applications have every
    /// required one.
    pub fn str(&self, pointer: &str) -> Option<&str> {
        self.json.pointer(pointer).and_then(Value::as_str)
    }

    /// `/applicant` or `/secondParent`, whichever has `role` = `role`.
    pub fn parent(&self, role: &str) -> Option<&str> {
        ["/applicant", "/secondParent"]
            .into_iter()
            .find(|p| self.str(&format!("{p}/role")) == Some(role))
    }

    pub(crate) fn from_stored(json: Value) -> Result<Application, Vec<FieldError>> {
        validate(&json).map(|chosen| Application { json, chosen })
    }
}

/// Parses and validates the posted bytes.
pub fn parse(bytes: &[u8]) -> Result<Application, Vec<FieldError>> {
    let json: Value = serde_json::from_slice(bytes).map_err(|e| {
        vec![FieldError {
            field: String::new(),
            problem: format!("not JSON: {e}"),
        }]
    })?;
    Application::from_stored(json)
}

struct Check {
    errors: Vec<FieldError>,
}

impl Check {
    fn fail(&mut self, field: &str, problem: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            problem: problem.into(),
        });
    }

    fn object<'a>(&mut self, v: Option<&'a Value>, field: &str) -> Option<&'a Map<String, Value>> {
        match v {
            None | Some(Value::Null) => {
                self.fail(field, "is required");
                None
            }
            Some(Value::Object(m)) => Some(m),
            Some(_) => {
                self.fail(field, "must be an object");
                None
            }
        }
    }

    fn unknown(&mut self, m: &Map<String, Value>, prefix: &str, known: &[&str]) {
        for k in m.keys().filter(|k| !known.contains(&k.as_str())) {
            self.fail(&join(prefix, k), "is not a field of the application");
        }
    }

    /// A required (or optional) string, checked by `rule` (which returns the problem).
    fn string(
        &mut self,
        m: &Map<String, Value>,
        prefix: &str,
        key: &str,
        required: bool,
        rule: fn(&str) -> Option<&'static str>,
    ) {
        let field = join(prefix, key);
        match m.get(key) {
            None | Some(Value::Null) if required => self.fail(&field, "is required"),
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                if let Some(p) = rule(s) {
                    self.fail(&field, p);
                }
            }
            Some(_) => self.fail(&field, "must be a string"),
        }
    }

    fn name(&mut self, m: &Map<String, Value>, prefix: &str, key: &str, required: bool) {
        self.string(m, prefix, key, required, name_rule);
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

const PARENT_FIELDS: &[&str] = &[
    "role",
    "surname",
    "givenName",
    "patronymic",
    "birthDate",
    "rnokpp",
    "unzr",
    "iban",
    "phone",
    "email",
];

/// The chosen operations, or every problem found.
fn validate(json: &Value) -> Result<Vec<&'static str>, Vec<FieldError>> {
    let mut c = Check { errors: Vec::new() };
    let Some(root) = c.object(Some(json), "") else {
        return Err(c.errors);
    };
    c.unknown(
        root,
        "",
        &[
            "applicant",
            "secondParent",
            "child",
            "medicalBirthCertificate",
            "registrationOfficeKatottg",
            "residence",
            "childrenCount",
            "services",
        ],
    );
    let applicant_role = parent(&mut c, root.get("applicant"), "applicant", true);
    let second_role = parent(&mut c, root.get("secondParent"), "secondParent", false);
    match (applicant_role, second_role) {
        (Some(a), Some(b)) if a == b => {
            c.fail("secondParent.role", "must differ from the applicant's")
        }
        (Some(a), None) if a != "mother" && root.get("secondParent").is_none() => c.fail(
            "secondParent",
            "is required when the applicant is not the mother (the medical certificate names her)",
        ),
        _ => {}
    }
    if let Some(child) = c.object(root.get("child"), "child") {
        c.unknown(
            child,
            "child",
            &[
                "surname",
                "givenName",
                "patronymic",
                "sex",
                "birthDate",
                "birthPlaceKatottg",
            ],
        );
        c.name(child, "child", "surname", true);
        c.name(child, "child", "givenName", true);
        c.name(child, "child", "patronymic", false);
        c.string(child, "child", "sex", true, |s| {
            (!matches!(s, "M" | "F")).then_some("must be \"M\" or \"F\"")
        });
        c.string(child, "child", "birthDate", true, date_rule);
        c.string(child, "child", "birthPlaceKatottg", true, katottg_rule);
    }
    c.string(root, "", "medicalBirthCertificate", true, |s| {
        (!pattern(s, &[4, 4, 4, 4])).then_some("must be NNNN-NNNN-NNNN-NNNN")
    });
    c.string(root, "", "registrationOfficeKatottg", false, katottg_rule);

    let mut chosen = Vec::new();
    match root.get("services") {
        None | Some(Value::Null) => c.fail("services", "is required (it may be empty)"),
        Some(Value::Array(list)) => {
            for (i, v) in list.iter().enumerate() {
                let field = format!("services[{i}]");
                match v
                    .as_str()
                    .and_then(|s| CHOICES.iter().find(|(n, _)| *n == s))
                {
                    Some((_, op)) if chosen.contains(op) => c.fail(&field, "is listed twice"),
                    Some((_, op)) => chosen.push(*op),
                    None => c.fail(
                        &field,
                        format!(
                            "must be one of {}",
                            CHOICES
                                .iter()
                                .map(|(n, _)| *n)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                }
            }
        }
        Some(_) => c.fail("services", "must be an array"),
    }
    if chosen.contains(&"assignBirthAssistance") {
        let has_iban = root
            .get("applicant")
            .and_then(|a| a.get("iban"))
            .is_some_and(|v| !v.is_null());
        if !has_iban {
            c.fail("applicant.iban", "is required for birthAssistance");
        }
    }
    match root.get("childrenCount") {
        None | Some(Value::Null) => {
            if chosen.contains(&"assignLargeFamilySupport") {
                c.fail("childrenCount", "is required for largeFamilySupport");
            }
        }
        Some(v) => match v.as_u64() {
            Some(n) if (1..=30).contains(&n) => {
                if n < 3 && chosen.contains(&"assignLargeFamilySupport") {
                    c.fail("childrenCount", "must be at least 3 for largeFamilySupport");
                }
            }
            _ => c.fail("childrenCount", "must be a whole number from 1 to 30"),
        },
    }
    match root.get("residence") {
        None | Some(Value::Null) => {
            if chosen.contains(&"registerResidence") {
                c.fail("residence", "is required for residence");
            }
        }
        v => {
            if let Some(r) = c.object(v, "residence") {
                c.unknown(
                    r,
                    "residence",
                    &["katottg", "settlement", "street", "building", "apartment"],
                );
                c.string(r, "residence", "katottg", true, katottg_rule);
                for k in ["settlement", "street", "building"] {
                    c.string(r, "residence", k, true, text_rule);
                }
                c.string(r, "residence", "apartment", false, text_rule);
            }
        }
    }
    if c.errors.is_empty() {
        Ok(chosen)
    } else {
        Err(c.errors)
    }
}

/// Checks one parent; returns its role when readable.
fn parent(c: &mut Check, v: Option<&Value>, field: &str, required: bool) -> Option<String> {
    if !required && v.is_none_or(Value::is_null) {
        return None;
    }
    let p = c.object(v, field)?;
    c.unknown(p, field, PARENT_FIELDS);
    c.string(p, field, "role", true, |s| {
        (!matches!(s, "mother" | "father")).then_some("must be \"mother\" or \"father\"")
    });
    c.name(p, field, "surname", true);
    c.name(p, field, "givenName", true);
    c.name(p, field, "patronymic", false);
    c.string(p, field, "birthDate", true, date_rule);
    c.string(p, field, "rnokpp", true, rnokpp_rule);
    c.string(p, field, "unzr", false, |s| {
        (!pattern(s, &[8, 5])).then_some("must be YYYYMMDD-NNNNN")
    });
    c.string(p, field, "iban", false, |s| {
        let ok = s.len() == 29 && s.starts_with("UA") && s[2..].bytes().all(|b| b.is_ascii_digit());
        (!ok).then_some("must be a Ukrainian IBAN: UA and 27 digits")
    });
    c.string(p, field, "phone", false, |s| {
        let ok =
            s.len() == 13 && s.starts_with("+380") && s[1..].bytes().all(|b| b.is_ascii_digit());
        (!ok).then_some("must be +380 and 9 digits")
    });
    c.string(p, field, "email", false, |s| {
        (!(s.len() <= 254 && s.contains('@'))).then_some("is not an e-mail address")
    });
    p.get("role").and_then(Value::as_str).map(str::to_string)
}

fn name_rule(s: &str) -> Option<&'static str> {
    let t = s.trim();
    if t.is_empty() {
        return Some("must not be empty");
    }
    if t.chars().count() > 100 {
        return Some("is longer than 100 characters");
    }
    let ok = t
        .chars()
        .all(|ch| ch.is_alphabetic() || matches!(ch, '\'' | '’' | 'ʼ' | '-' | ' '));
    (!ok).then_some("may hold only letters, apostrophes, hyphens and spaces")
}

fn text_rule(s: &str) -> Option<&'static str> {
    let t = s.trim();
    if t.is_empty() {
        Some("must not be empty")
    } else if t.chars().count() > 200 {
        Some("is longer than 200 characters")
    } else if t.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    }
}

fn date_rule(s: &str) -> Option<&'static str> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    match time::Date::parse(s, &fmt) {
        Err(_) => Some("must be a date YYYY-MM-DD"),
        Ok(d) if d > time::OffsetDateTime::now_utc().date() => Some("must not be in the future"),
        Ok(d) if d.year() < 1900 => Some("must not be before 1900"),
        Ok(_) => None,
    }
}

fn katottg_rule(s: &str) -> Option<&'static str> {
    let ok = s.len() == 19 && s.starts_with("UA") && s[2..].bytes().all(|b| b.is_ascii_digit());
    (!ok).then_some("must be a KATOTTG code: UA and 17 digits")
}

/// RNOKPP: 10 digits, the last a check digit over the first nine.
fn rnokpp_rule(s: &str) -> Option<&'static str> {
    if s.len() != 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Some("must be 10 digits");
    }
    (!brama_xroad::rnokpp::valid(s)).then_some("has a wrong check digit")
}

/// Digit groups joined by '-': `pattern("1234-5678", &[4, 4])`.
fn pattern(s: &str, groups: &[usize]) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == groups.len()
        && parts
            .iter()
            .zip(groups)
            .all(|(p, n)| p.len() == *n && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        serde_json::from_str(include_str!(
            "../../../examples/applications/all-services.json"
        ))
        .unwrap()
    }

    #[test]
    fn the_examples_are_valid_and_invalid_as_named() {
        let app = parse(include_bytes!(
            "../../../examples/applications/all-services.json"
        ))
        .unwrap();
        assert_eq!(app.chosen.len(), CHOICES.len());
        parse(include_bytes!(
            "../../../examples/applications/birth-and-tax.json"
        ))
        .unwrap();
        let errs = parse(include_bytes!(
            "../../../examples/applications/invalid-rnokpp.json"
        ))
        .unwrap_err();
        assert!(
            errs.iter().any(|e| e.field == "applicant.rnokpp"),
            "{errs:?}"
        );
    }

    #[test]
    fn every_problem_is_named_in_one_answer() {
        let mut v = sample();
        v["child"]["sex"] = "X".into();
        v["child"]["birthDate"] = "2026-02-30".into();
        v["applicant"]["rnokpp"] = "12345".into();
        v["medicalBirthCertificate"] = Value::Null;
        v["services"] = serde_json::json!(["unzr", "unzr", "lottery"]);
        v["extra"] = 1.into();
        let errs = Application::from_stored(v).unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "child.sex",
            "child.birthDate",
            "applicant.rnokpp",
            "medicalBirthCertificate",
            "services[1]",
            "services[2]",
            "extra",
        ] {
            assert!(fields.contains(&f), "{f} missing in {fields:?}");
        }
    }

    #[test]
    fn check_digit() {
        for ok in ["3456789014", "2975103848", "3104207750"] {
            assert!(brama_xroad::rnokpp::valid(ok), "{ok}");
        }
        for bad in ["3456789013", "2975103840", "310420775", "31042077500"] {
            assert!(!brama_xroad::rnokpp::valid(bad), "{bad}");
        }
    }
}
