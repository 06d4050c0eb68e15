//! Scenario errors: every one names the field path and the line and column.

use std::fmt;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};

/// A 1-based line and column (in characters) in the scenario's source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1, counted in characters.
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` in `src` (clamped to the text; a split character
    /// counts from its start).
    #[must_use]
    pub fn of_offset(src: &str, offset: usize) -> Location {
        let mut offset = offset.min(src.len());
        while !src.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &src[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Location { line, column }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// What is wrong with a scenario, and where.
///
/// Displays as `line:column: path: message`, e.g.
/// `12:8: provider[0].rpm: must be at least 0, found -5`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {}{message}", path_prefix(.path))]
pub struct ScenarioError {
    /// The field path in serde's notation (`storm[2].provider`); empty for a syntax error.
    pub path: String,
    /// Where in the source the problem is.
    pub at: Location,
    /// What is wrong.
    pub message: String,
}

fn path_prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

impl ScenarioError {
    /// An error at `path`, located in `src` (at the start of the file if the path cannot
    /// be found there).
    #[must_use]
    pub fn at_path(src: &str, path: &str, message: impl Into<String>) -> ScenarioError {
        ScenarioError {
            path: path.to_owned(),
            at: locate(src, path).unwrap_or(Location { line: 1, column: 1 }),
            message: message.into(),
        }
    }

    /// Wraps a TOML parse or type error: the span toml reports gives the location.
    pub(crate) fn from_toml(src: &str, path: &str, error: &toml::de::Error) -> ScenarioError {
        let at = match error.span() {
            Some(span) => Location::of_offset(src, span.start),
            None => locate(src, path).unwrap_or(Location { line: 1, column: 1 }),
        };
        ScenarioError {
            path: path.to_owned(),
            at,
            message: compact_floats(error.message().trim_end()),
        }
    }
}

/// A number as an error message shows it: plain, or in exponent form when plain would
/// be a wall of digits (`1e300`, `1e-12`).
pub(super) fn shown(v: f64) -> String {
    if v != 0.0 && !(1e-6..1e15).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// `message` with every float that serde quotes in a type error ("floating point
/// \`…\`") written as [`shown`] writes it when it is long: serde prints a float in
/// full, so `1e300` where an integer belongs came out as 301 digits.
fn compact_floats(message: &str) -> String {
    const QUOTE: &str = "floating point `";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(QUOTE) {
        let (before, after) = rest.split_at(at + QUOTE.len());
        out.push_str(before);
        let end = after.find('`').unwrap_or(after.len());
        let (number, tail) = after.split_at(end);
        match number.parse::<f64>() {
            Ok(value) if number.len() > 20 => out.push_str(&shown(value)),
            _ => out.push_str(number),
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// Where the value at `path` (serde notation: `provider[0].model[1].name`) is written in
/// `src`, if the text parses and the path exists; the closest existing ancestor otherwise.
/// Returns `None` only when `src` is not TOML.
#[must_use]
pub fn locate(src: &str, path: &str) -> Option<Location> {
    let root = DeTable::parse(src).ok()?;
    let mut span = root.span();
    let mut current: Option<&DeValue<'_>> = None;
    let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
    for segment in segments(path) {
        let next = match (segment, table, current) {
            (Segment::Key(key), Some(t), _) => t
                .iter()
                .find(|(k, _)| k.get_ref().as_ref() == key)
                .map(|(_, v)| v),
            (Segment::Key(key), None, Some(v)) => v.get(key),
            (Segment::Index(i), _, Some(v)) => v.as_array().and_then(|a| a.get(i)),
            _ => None,
        };
        let Some(next) = next else { break };
        span = next.span();
        current = Some(next.get_ref());
        table = None;
    }
    Some(Location::of_offset(src, span.start))
}

/// Deserializes a free-form table kept by the scenario (a policy's `route`, `registry`
/// or `plan`) into `T`, with errors that name the full path (`base` plus the path inside
/// the table) and its location in `src`.
///
/// # Errors
///
/// When `T` rejects the table; the error names where.
pub fn deserialize_table<T: DeserializeOwned>(
    src: &str,
    base: &str,
    table: &toml::Table,
) -> Result<T, ScenarioError> {
    let value = toml::Value::Table(table.clone());
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = if inner == "." {
            base.to_owned()
        } else if inner.starts_with('[') {
            format!("{base}{inner}")
        } else {
            format!("{base}.{inner}")
        };
        ScenarioError::at_path(src, &path, compact_floats(e.inner().message().trim_end()))
    })
}

#[derive(Debug, PartialEq)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits `a.b[2].c` into keys and indices; an unparsable index ends the walk there.
fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    if path.is_empty() || path == "." {
        return out;
    }
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while let Some(stripped) = rest.strip_prefix('[') {
            let Some(end) = stripped.find(']') else {
                return out;
            };
            let Ok(i) = stripped[..end].parse() else {
                return out;
            };
            out.push(Segment::Index(i));
            rest = &stripped[end + 1..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "a = 1\n[[t]]\nx = 2\n[[t]]\nx = 3\ny = { z = [4, 5] }\n";

    #[test]
    fn long_floats_in_messages_are_written_short() {
        let long = format!("{}", 1e300);
        let message = format!("invalid type: floating point `{long}`, expected u64");
        assert_eq!(
            compact_floats(&message),
            "invalid type: floating point `1e300`, expected u64"
        );
        let two = format!("floating point `{long}` or floating point `{}`", -1e25);
        assert_eq!(
            compact_floats(&two),
            "floating point `1e300` or floating point `-1e25`"
        );
        for kept in [
            "invalid type: floating point `1.5`, expected u64",
            "missing field `step`",
            "floating point `unterminated",
        ] {
            assert_eq!(compact_floats(kept), kept);
        }
    }

    #[test]
    fn offsets_become_lines_and_columns() {
        assert_eq!(
            Location::of_offset("ab\ncd", 4),
            Location { line: 2, column: 2 }
        );
        assert_eq!(
            Location::of_offset("é\nx", 1),
            Location { line: 1, column: 1 }
        );
        assert_eq!(
            Location::of_offset("x", 99),
            Location { line: 1, column: 2 }
        );
    }

    #[test]
    fn paths_are_found_in_the_source() {
        let at = |p| locate(SRC, p).map(|l| (l.line, l.column));
        assert_eq!(at("a"), Some((1, 5)));
        assert_eq!(at("t[1].x"), Some((5, 5)));
        assert_eq!(at("t[1].y.z[1]"), Some((6, 15)));
        // A missing leaf points at its closest ancestor.
        assert_eq!(at("t[0].missing"), at("t[0]"));
        assert_eq!(locate("= =", "a"), None);
    }

    #[test]
    fn segments_parse() {
        assert_eq!(
            segments("a[1][2].b"),
            [
                Segment::Key("a"),
                Segment::Index(1),
                Segment::Index(2),
                Segment::Key("b")
            ]
        );
        assert_eq!(segments("a[x].b"), [Segment::Key("a")]);
    }

    #[test]
    fn displays_location_path_message() {
        let e = ScenarioError::at_path(SRC, "t[0].x", "bad");
        assert_eq!(e.to_string(), "3:5: t[0].x: bad");
    }
}
