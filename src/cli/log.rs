//! The process's log: text (one line per event) or JSON, neither of which a peer can forge a line
//! in. Values that come from the network (identifiers, paths, fault strings) reach the log as
//! fields or in messages; every control character in them is escaped in the text form, as JSON
//! escapes them in its own.

use std::fmt::Write as _;

use tracing_subscriber::field::MakeExt;

pub fn init(format: &str, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().with_current_span(true).try_init()
    } else {
        let fields = tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
            let text = format!("{value:?}");
            if field.name() == "message" {
                w.write_str(&escape_controls(&text))
            } else {
                write!(w, "{}={}", field.name(), escape_controls(&text))
            }
        })
        .delimited(" ");
        builder.fmt_fields(fields).try_init()
    };
}

/// `text` with every control character (C0, DEL, C1) and Unicode line or paragraph separator
/// written as an escape, so one event stays one line.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    let forged = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    if !text.chars().any(forged) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if forged(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_start_a_line() {
        assert_eq!(escape_controls("getBirthRecord"), "getBirthRecord");
        assert_eq!(
            escape_controls("x\n2026-12-06T00:00:00Z  WARN security: FORGED\r\u{1b}[31m\u{2028}"),
            "x\\n2026-12-06T00:00:00Z  WARN security: FORGED\\r\\u{1b}[31m\\u{2028}"
        );
        assert_eq!(escape_controls("Олена\u{85}"), "Олена\\u{85}");
    }
}
