//! Checks the generated `validate()` methods call: simple-type facets, built-in lexical forms,
//! presence of required text and of one alternative of each choice.

use std::fmt;

use crate::pattern;

/// One problem in a payload: where (`child.birthDate`, `people[1].surname`) and what.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    pub path: String,
    pub problem: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.problem)
    }
}

/// The facets of a simple type (or the lexical form of a built-in one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextRules {
    /// A value must match one of these (when there are any).
    pub patterns: &'static [&'static str],
    /// A value must be one of these (when there are any).
    pub values: &'static [&'static str],
    pub min_length: Option<u32>,
    pub max_length: Option<u32>,
}

impl TextRules {
    pub const NONE: TextRules = TextRules {
        patterns: &[],
        values: &[],
        min_length: None,
        max_length: None,
    };
    const fn pattern(p: &'static [&'static str]) -> TextRules {
        TextRules {
            patterns: p,
            ..TextRules::NONE
        }
    }
    /// `xs:date` (with an optional time zone).
    pub const DATE: TextRules =
        TextRules::pattern(&["-?[0-9]{4}-[0-9]{2}-[0-9]{2}(Z|[+\\-][0-9]{2}:[0-9]{2})?"]);
    /// `xs:dateTime`.
    pub const DATE_TIME: TextRules = TextRules::pattern(&[
        "-?[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+\\-][0-9]{2}:[0-9]{2})?",
    ]);
    /// `xs:decimal`.
    pub const DECIMAL: TextRules = TextRules::pattern(&["[+\\-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)"]);

    /// What is wrong with `value`, if anything.
    pub fn problem(&self, value: &str) -> Option<String> {
        if !self.values.is_empty() && !self.values.contains(&value) {
            return Some(format!(
                "'{value}' is not one of {}",
                self.values.join(", ")
            ));
        }
        let len = value.chars().count() as u64;
        if let Some(min) = self.min_length.filter(|&m| len < m as u64) {
            return Some(format!("shorter than {min} characters"));
        }
        if let Some(max) = self.max_length.filter(|&m| len > m as u64) {
            return Some(format!("longer than {max} characters"));
        }
        if !self.patterns.is_empty() && !self.patterns.iter().any(|p| pattern::matches(p, value)) {
            return Some(format!(
                "'{value}' does not match the pattern {}",
                self.patterns.join(" | ")
            ));
        }
        None
    }
}

/// `path` + `.name` (or `name` at the top).
fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Checks one text value; an empty required value is reported as missing.
pub fn check_text(
    out: &mut Vec<Violation>,
    path: &str,
    name: &str,
    value: &str,
    required: bool,
    rules: &TextRules,
) {
    let problem = if value.is_empty() && required {
        Some("required value is missing".to_string())
    } else if value.is_empty() && rules.values.is_empty() && rules.patterns.is_empty() {
        None
    } else {
        rules.problem(value)
    };
    if let Some(problem) = problem {
        out.push(Violation {
            path: join(path, name),
            problem,
        });
    }
}

/// At least one alternative of an `xs:choice` must be present.
pub fn check_choice(out: &mut Vec<Violation>, path: &str, names: &[&str], present: &[bool]) {
    if !present.iter().any(|&p| p) {
        out.push(Violation {
            path: if path.is_empty() {
                names.join("|")
            } else {
                join(path, &names.join("|"))
            },
            problem: format!("one of {} is required", names.join(", ")),
        });
    }
}

/// The path of a nested element (`child`, `people[2]`).
pub fn nested(path: &str, name: &str, index: Option<usize>) -> String {
    match index {
        Some(i) => format!("{}[{i}]", join(path, name)),
        None => join(path, name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_and_facets() {
        assert_eq!(TextRules::DATE.problem("2026-01-15"), None);
        assert_eq!(TextRules::DATE.problem("2026-01-15+02:00"), None);
        assert!(TextRules::DATE.problem("15.01.2026").is_some());
        assert_eq!(TextRules::DATE_TIME.problem("2026-01-15T10:30:00.5Z"), None);
        assert!(TextRules::DATE_TIME.problem("2026-01-15 10:30").is_some());
        assert_eq!(TextRules::DECIMAL.problem("-41500.00"), None);
        assert!(TextRules::DECIMAL.problem("1,5").is_some());
        let sex = TextRules {
            values: &["M", "F"],
            ..TextRules::NONE
        };
        let mut out = Vec::new();
        check_text(&mut out, "child", "sex", "X", true, &sex);
        check_text(&mut out, "", "surname", "", true, &TextRules::NONE);
        check_text(&mut out, "", "patronymic", "", false, &TextRules::NONE);
        check_choice(&mut out, "", &["recordNumber", "rnokpp"], &[false, false]);
        let paths: Vec<_> = out.iter().map(|v| v.to_string()).collect();
        assert_eq!(
            paths,
            [
                "child.sex: 'X' is not one of M, F",
                "surname: required value is missing",
                "recordNumber|rnokpp: one of recordNumber, rnokpp is required"
            ]
        );
    }
}
