//! The process's log: text (one line per event) or JSON, neither of which a peer can forge a line
//! in. Values that come from the network (identifiers, paths, fault strings) reach the log as
//! fields or in messages; every control character in them is escaped in the text form, as JSON
//! escapes them in its own.

use std::fmt::Write as _;

use tracing_subscriber::field::MakeExt;

/// Installs the process's log on stderr: `format` `text` or `json`, `level` a filter such as
/// `info` or `warn,access=info` (`RUST_LOG`, when set, wins). Colour only on a terminal.
/// A level that is not a filter is refused, naming why. Lines are written by a thread of their
/// own, batched (one `write` for all the lines waiting), never dropped: a full queue makes the
/// logging task wait. Keep the returned guard until the process ends; dropping it writes out
/// what is left.
pub fn init(format: &str, level: &str) -> Result<LogGuard, String> {
    use std::io::IsTerminal;
    let filter = match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(f) => f,
        Err(_) => tracing_subscriber::EnvFilter::try_new(level)
            .map_err(|e| format!("log level {level:?}: {e}"))?,
    };
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("brama-log")
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    if format == "json" {
        let b = builder
            .json()
            .with_current_span(true)
            .with_filter_reloading();
        let handle = b.reload_handle();
        keep_reloader(move |f| handle.reload(f).map_err(|e| e.to_string()));
        let _ = b.try_init();
    } else {
        let fields = tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
            let text = format!("{value:?}");
            let text = plain(&text);
            if field.name() == "message" {
                w.write_str(&escape_controls(text))
            } else {
                write!(w, "{}={}", field.name(), escape_controls(text))
            }
        })
        .delimited(" ");
        let b = builder.fmt_fields(fields).with_filter_reloading();
        let handle = b.reload_handle();
        keep_reloader(move |f| handle.reload(f).map_err(|e| e.to_string()));
        let _ = b.try_init();
    }
    Ok(LogGuard(guard))
}

/// Keeps the log's writer thread; dropped, it writes out the lines still queued.
pub struct LogGuard(#[allow(dead_code)] tracing_appender::non_blocking::WorkerGuard);

type SetFilter = Box<dyn Fn(tracing_subscriber::EnvFilter) -> Result<(), String> + Send + Sync>;

/// How the log's filter is replaced, once the log is installed.
static RELOADER: std::sync::OnceLock<SetFilter> = std::sync::OnceLock::new();

fn keep_reloader(
    f: impl Fn(tracing_subscriber::EnvFilter) -> Result<(), String> + Send + Sync + 'static,
) {
    let _ = RELOADER.set(Box::new(f));
}

/// Puts `level` in force for the next event (a configuration reload).
pub fn set_level(level: &str) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .map_err(|e| format!("log level {level:?}: {e}"))?;
    match RELOADER.get() {
        Some(set) => set(filter),
        None => Err("the log is not installed".into()),
    }
}

/// A string field as its plain value, `node=a-1` rather than `node="a-1"`; quoted still when the
/// value could otherwise pass for more than one field (space, `=`, quote, escape).
fn plain(debug: &str) -> &str {
    let ambiguous = |c: char| c.is_whitespace() || matches!(c, '=' | '"' | '\\');
    match debug.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) if !inner.is_empty() && !inner.contains(ambiguous) => inner,
        _ => debug,
    }
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

    #[test]
    fn string_fields_lose_their_quotes_only() {
        assert_eq!(plain("\"a-1\""), "a-1");
        assert_eq!(plain("\"\""), "\"\"");
        assert_eq!(plain("42"), "42");
        assert_eq!(plain("\"a code=X\""), "\"a code=X\"");
        assert_eq!(plain("\"say\\\"hi\\\"\""), "\"say\\\"hi\\\"\"");
    }
}
