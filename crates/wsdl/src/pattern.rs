//! `xs:pattern` values: a small backtracking matcher for the XSD regex subset registry schemas use
//! (literals, `.`, `\d \s \w` and their negations, character classes with ranges, groups,
//! alternation, `? * + {n} {n,} {n,m}`), and a generator of a matching sample value.
//!
//! Shared with `build.rs` (included by path), which checks every pattern compiles, so a schema
//! outside the subset fails the build instead of going unchecked. XSD patterns are anchored.

use std::cell::Cell;

/// Longest value checked against an unbounded pattern: the matcher recurses per character.
const MAX_UNBOUNDED_LEN: usize = 4096;
/// Backtracking steps before a value counts as not matching (nested quantifiers explode).
const MAX_STEPS: u32 = 200_000;

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Pattern {
    alts: Vec<Vec<Piece>>,
}

#[derive(Clone, Debug, PartialEq)]
struct Piece {
    atom: Atom,
    min: u32,
    max: Option<u32>,
}

#[derive(Clone, Debug, PartialEq)]
enum Atom {
    Char(char),
    Class(Class),
    Group(Vec<Vec<Piece>>),
}

#[derive(Clone, Debug, PartialEq)]
struct Class {
    negated: bool,
    items: Vec<ClassItem>,
}

#[derive(Clone, Debug, PartialEq)]
enum ClassItem {
    Range(char, char),
    Digit(bool),
    Space(bool),
    Word(bool),
    Any,
}

impl ClassItem {
    fn accepts(&self, c: char) -> bool {
        match *self {
            ClassItem::Range(a, b) => a <= c && c <= b,
            ClassItem::Digit(neg) => c.is_ascii_digit() != neg,
            ClassItem::Space(neg) => matches!(c, ' ' | '\t' | '\n' | '\r') != neg,
            ClassItem::Word(neg) => (c.is_alphanumeric() || c == '_') != neg,
            ClassItem::Any => c != '\n' && c != '\r',
        }
    }
}

impl Class {
    fn accepts(&self, c: char) -> bool {
        self.items.iter().any(|i| i.accepts(c)) != self.negated
    }

    /// The `n`-th character (cycling) the class accepts, preferring its first range.
    fn sample(&self, n: usize) -> char {
        if !self.negated {
            match self.items.first() {
                Some(&ClassItem::Range(a, b)) => {
                    let span = (b as u32 - a as u32 + 1) as usize;
                    return char::from_u32(a as u32 + (n % span) as u32).unwrap_or(a);
                }
                Some(ClassItem::Digit(false)) => return (b'0' + (n % 10) as u8) as char,
                _ => {}
            }
        }
        "aA0x-_ .".chars().find(|&c| self.accepts(c)).unwrap_or('?')
    }
}

impl Pattern {
    /// Compiles an XSD pattern, or says what in it is outside the supported subset.
    pub fn parse(src: &str) -> Result<Pattern, String> {
        let mut p = Parser {
            chars: src.chars().collect(),
            pos: 0,
        };
        let alts = p.alternatives()?;
        if p.pos < p.chars.len() {
            return Err(p.error("unbalanced ')'"));
        }
        Ok(Pattern { alts })
    }

    /// Whether the whole of `value` matches.
    pub(crate) fn is_match(&self, value: &str) -> bool {
        let s: Vec<char> = value.chars().collect();
        match max_len(&self.alts) {
            Some(max) if s.len() > max as usize => return false,
            None if s.len() > MAX_UNBOUNDED_LEN => return false,
            _ => {}
        }
        let m = Matcher {
            s: &s,
            steps: Cell::new(0),
        };
        m.alts(&self.alts, 0, &mut |end| end == s.len())
    }

    /// A value that matches: classes give cycling characters (`[0-9]{4}` -> `0123`).
    pub fn sample(&self) -> String {
        let mut out = String::new();
        sample_alts(&self.alts, &mut out);
        out
    }
}

/// Whether `value` matches `pattern`; a pattern that does not compile matches nothing.
pub fn matches(pattern: &str, value: &str) -> bool {
    Pattern::parse(pattern).is_ok_and(|p| p.is_match(value))
}

fn max_len(alts: &[Vec<Piece>]) -> Option<u32> {
    let mut best = 0u32;
    for seq in alts {
        let mut len = 0u32;
        for p in seq {
            let one = match &p.atom {
                Atom::Group(g) => max_len(g)?,
                _ => 1,
            };
            len = len.saturating_add(one.saturating_mul(p.max?));
        }
        best = best.max(len);
    }
    Some(best)
}

fn sample_alts(alts: &[Vec<Piece>], out: &mut String) {
    for piece in alts.first().map(Vec::as_slice).unwrap_or_default() {
        for _ in 0..piece.min {
            match &piece.atom {
                Atom::Char(c) => out.push(*c),
                Atom::Class(c) => out.push(c.sample(out.chars().count())),
                Atom::Group(g) => sample_alts(g, out),
            }
        }
    }
}

struct Matcher<'s> {
    s: &'s [char],
    steps: Cell<u32>,
}

impl Matcher<'_> {
    fn tick(&self) -> bool {
        self.steps.set(self.steps.get() + 1);
        self.steps.get() <= MAX_STEPS
    }

    fn alts(&self, alts: &[Vec<Piece>], pos: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
        alts.iter().any(|seq| self.seq(seq, pos, k))
    }

    fn seq(&self, seq: &[Piece], pos: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
        match seq.split_first() {
            None => k(pos),
            Some((first, rest)) => self.piece(first, 0, pos, &mut |p| self.seq(rest, p, k)),
        }
    }

    /// Greedy: one more repetition first, then stop if `min` is reached.
    fn piece(
        &self,
        piece: &Piece,
        count: u32,
        pos: usize,
        k: &mut dyn FnMut(usize) -> bool,
    ) -> bool {
        if !self.tick() {
            return false;
        }
        if piece.max.is_none_or(|m| count < m) {
            let more = self.atom(&piece.atom, pos, &mut |p| {
                // An empty repetition past `min` would loop forever.
                (p > pos || count < piece.min) && self.piece(piece, count + 1, p, k)
            });
            if more {
                return true;
            }
        }
        count >= piece.min && k(pos)
    }

    fn atom(&self, atom: &Atom, pos: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
        match atom {
            Atom::Char(c) => self.s.get(pos) == Some(c) && k(pos + 1),
            Atom::Class(class) => self.s.get(pos).is_some_and(|&c| class.accepts(c)) && k(pos + 1),
            Atom::Group(g) => self.alts(g, pos, k),
        }
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn error(&self, what: &str) -> String {
        let src: String = self.chars.iter().collect();
        format!("pattern '{src}' at {}: {what}", self.pos)
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn alternatives(&mut self) -> Result<Vec<Vec<Piece>>, String> {
        let mut alts = vec![self.sequence()?];
        while self.peek() == Some('|') {
            self.pos += 1;
            alts.push(self.sequence()?);
        }
        Ok(alts)
    }

    fn sequence(&mut self) -> Result<Vec<Piece>, String> {
        let mut seq = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            let (min, max) = self.quantifier()?;
            seq.push(Piece { atom, min, max });
        }
        Ok(seq)
    }

    fn atom(&mut self) -> Result<Atom, String> {
        let c = self.peek().ok_or_else(|| self.error("unexpected end"))?;
        self.pos += 1;
        Ok(match c {
            '(' => {
                let g = self.alternatives()?;
                if self.peek() != Some(')') {
                    return Err(self.error("missing ')'"));
                }
                self.pos += 1;
                Atom::Group(g)
            }
            '[' => Atom::Class(self.class()?),
            '.' => Atom::Class(Class {
                negated: false,
                items: vec![ClassItem::Any],
            }),
            '\\' => match self.escape()? {
                Escaped::Char(c) => Atom::Char(c),
                Escaped::Item(i) => Atom::Class(Class {
                    negated: false,
                    items: vec![i],
                }),
            },
            '?' | '*' | '+' | '{' => return Err(self.error("quantifier without an atom")),
            ']' | '}' => return Err(self.error(&format!("unescaped '{c}'"))),
            c => Atom::Char(c),
        })
    }

    fn escape(&mut self) -> Result<Escaped, String> {
        let c = self.peek().ok_or_else(|| self.error("'\\' at the end"))?;
        self.pos += 1;
        Ok(match c {
            'd' | 'D' => Escaped::Item(ClassItem::Digit(c == 'D')),
            's' | 'S' => Escaped::Item(ClassItem::Space(c == 'S')),
            'w' | 'W' => Escaped::Item(ClassItem::Word(c == 'W')),
            'n' => Escaped::Char('\n'),
            'r' => Escaped::Char('\r'),
            't' => Escaped::Char('\t'),
            '\\' | '|' | '.' | '-' | '^' | '?' | '*' | '+' | '{' | '}' | '(' | ')' | '[' | ']' => {
                Escaped::Char(c)
            }
            other => {
                return Err(self.error(&format!(
                    "'\\{other}' is not supported (only \\d \\s \\w, their negations and escaped metacharacters)"
                )))
            }
        })
    }

    fn class(&mut self) -> Result<Class, String> {
        let negated = self.peek() == Some('^');
        if negated {
            self.pos += 1;
        }
        let mut items = Vec::new();
        loop {
            let c = self
                .peek()
                .ok_or_else(|| self.error("unterminated character class"))?;
            self.pos += 1;
            let first = match c {
                ']' if !items.is_empty() => break,
                '[' => {
                    return Err(self.error("nested classes and class subtraction are not supported"))
                }
                '\\' => match self.escape()? {
                    Escaped::Char(c) => c,
                    Escaped::Item(i) => {
                        items.push(i);
                        continue;
                    }
                },
                c => c,
            };
            if self.peek() == Some('-') && self.chars.get(self.pos + 1).is_some_and(|&n| n != ']') {
                self.pos += 1;
                let mut last = self
                    .peek()
                    .ok_or_else(|| self.error("unterminated range"))?;
                self.pos += 1;
                if last == '[' {
                    return Err(self.error("class subtraction is not supported"));
                }
                if last == '\\' {
                    last = match self.escape()? {
                        Escaped::Char(c) => c,
                        Escaped::Item(_) => {
                            return Err(self.error("a range cannot end in a class escape"))
                        }
                    };
                }
                if last < first {
                    return Err(self.error("range out of order"));
                }
                items.push(ClassItem::Range(first, last));
            } else {
                items.push(ClassItem::Range(first, first));
            }
        }
        Ok(Class { negated, items })
    }

    fn number(&mut self) -> Result<u32, String> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits: String = self.chars[start..self.pos].iter().collect();
        digits
            .parse()
            .map_err(|_| self.error("expected a number in '{...}'"))
    }

    fn quantifier(&mut self) -> Result<(u32, Option<u32>), String> {
        let q = match self.peek() {
            Some('?') => (0, Some(1)),
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('{') => {
                self.pos += 1;
                let min = self.number()?;
                let max = if self.peek() == Some(',') {
                    self.pos += 1;
                    if self.peek() == Some('}') {
                        None
                    } else {
                        Some(self.number()?)
                    }
                } else {
                    Some(min)
                };
                if self.peek() != Some('}') {
                    return Err(self.error("missing '}'"));
                }
                if max.is_some_and(|m| m < min) {
                    return Err(self.error("{n,m} with m < n"));
                }
                (min, max)
            }
            _ => return Ok((1, Some(1))),
        };
        self.pos += 1;
        Ok(q)
    }
}

enum Escaped {
    Char(char),
    Item(ClassItem),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_patterns_match_and_sample() {
        for (p, good, bad) in [
            ("[0-9]{10}", "3456789012", "345678901"),
            ("[0-9]{8}-[0-9]{5}", "20260115-00012", "20260115000012"),
            ("UA[0-9]{17}", "UA80000000000093317", "UB80000000000093317"),
            (
                "[0-9]{4}-[0-9]{4}-[0-9]{4}-[0-9]{4}",
                "1234-5678-9012-3456",
                "1234-5678-9012-345",
            ),
            ("([01][0-9]|2[0-3]):[0-5][0-9]", "23:59", "24:00"),
            (
                "[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}",
                "123e4567-e89b-12d3-a456-426614174000",
                "123e4567",
            ),
            ("\\d+(\\.\\d{1,2})?", "1000.50", "1000."),
            ("[^ ]*x", "abcx", "ab cx"),
            ("[A-Z\\-]{1,3}", "I-Т".replace('Т', "T").as_str(), "ABCD"),
        ] {
            let pat = Pattern::parse(p).unwrap();
            assert!(pat.is_match(good), "{p} should match {good}");
            assert!(!pat.is_match(bad), "{p} should not match {bad}");
            let s = pat.sample();
            assert!(pat.is_match(&s), "{p}: sample {s} does not match");
        }
        assert_eq!(Pattern::parse("UA[0-9]{5}").unwrap().sample(), "UA23456");
    }

    #[test]
    fn unsupported_syntax_is_named() {
        for p in ["\\p{L}+", "[a-z-[aeiou]]", "(ab", "a{2,1}", "*a", "\\i"] {
            let e = Pattern::parse(p).unwrap_err();
            assert!(e.contains(p), "{e}");
        }
    }

    #[test]
    fn pathological_input_ends() {
        let p = Pattern::parse("(a*)*b").unwrap();
        assert!(!p.is_match(&"a".repeat(40)));
        assert!(!Pattern::parse(".*").unwrap().is_match(&"a".repeat(10_000)));
    }
}
