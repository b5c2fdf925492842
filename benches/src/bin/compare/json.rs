//! A small JSON reader: enough for criterion's `estimates.json` and
//! `benchmark.json` and for `cargo metadata`, no more.
//!
//! It parses a whole document into a [`Value`] tree (objects keep their
//! keys in order, numbers are `f64`) and refuses anything that is not
//! JSON, saying at which byte. It does not write JSON. A dependency for this
//! would be the only one the benches crate has outside the runtimes it
//! compares and the harness it measures with.

use std::fmt;

/// A parsed JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// Any number; criterion's and cargo's fit an `f64` (counts up to 2^53).
    Number(f64),
    /// A string, its escapes resolved.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object's members, in the order written.
    Object(Vec<(String, Value)>),
}

/// Why a text is not JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What was expected or found.
    what: &'static str,
    /// The byte offset where it went wrong.
    at: usize,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not JSON: {} at byte {}", self.what, self.at)
    }
}

impl std::error::Error for ParseError {}

impl Value {
    /// The member `key` of an object; `None` for a missing key or a value
    /// that is not an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().find(|(name, _)| name == key).map(|(_, value)| value),
            _ => None,
        }
    }

    /// The value at `path`, one key per level.
    pub fn at(&self, path: &[&str]) -> Option<&Value> {
        path.iter().try_fold(self, |value, key| value.get(key))
    }

    /// The number, if this is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(number) => Some(*number),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(text) => Some(text),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(elements) => Some(elements),
            _ => None,
        }
    }
}

/// Parses `text` as one JSON document (surrounding whitespace allowed).
pub fn parse(text: &str) -> Result<Value, ParseError> {
    let mut reader = Reader { text: text.as_bytes(), at: 0 };
    let value = reader.value(0)?;
    reader.skip_whitespace();
    if reader.at != reader.text.len() {
        return Err(reader.error("text after the document"));
    }
    Ok(value)
}

/// How deeply arrays and objects may nest: a bound so that a hostile file
/// cannot overflow the stack; criterion's and cargo's nest a few levels.
const MAX_DEPTH: usize = 128;

/// A position in the text being parsed.
struct Reader<'a> {
    /// The whole document.
    text: &'a [u8],
    /// The offset of the next byte to read.
    at: usize,
}

impl Reader<'_> {
    fn error(&self, what: &'static str) -> ParseError {
        ParseError { what, at: self.at }
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.text.get(self.at) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.text.get(self.at).copied()
    }

    /// Consumes `word` if the text continues with it.
    fn literal(&mut self, word: &str, value: Value) -> Result<Value, ParseError> {
        if self.text[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.error("an unknown word"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        match self.peek() {
            None => Err(self.error("a value expected, end of text found")),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("a value expected")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, ParseError> {
        self.at += 1; // '{'
        let mut members = Vec::new();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Value::Object(members));
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.error("a member name expected"));
            }
            let name = self.string()?;
            if self.peek() != Some(b':') {
                return Err(self.error("':' expected"));
            }
            self.at += 1;
            members.push((name, self.value(depth + 1)?));
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Value::Object(members));
                }
                _ => return Err(self.error("',' or '}' expected")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, ParseError> {
        self.at += 1; // '['
        let mut elements = Vec::new();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Value::Array(elements));
        }
        loop {
            elements.push(self.value(depth + 1)?);
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Value::Array(elements));
                }
                _ => return Err(self.error("',' or ']' expected")),
            }
        }
    }

    fn number(&mut self) -> Result<Value, ParseError> {
        let start = self.at;
        while let Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') = self.text.get(self.at) {
            self.at += 1;
        }
        // The bytes are ASCII, so this cannot fail; `str::parse` then
        // checks the grammar (it is a little more lenient than JSON's,
        // e.g. about leading zeros, which costs nothing here).
        let digits = std::str::from_utf8(&self.text[start..self.at]).map_err(|_| self.error("a number"))?;
        match digits.parse::<f64>() {
            Ok(number) if number.is_finite() => Ok(Value::Number(number)),
            _ => Err(ParseError { what: "a malformed number", at: start }),
        }
    }

    /// A string starting at the `"` under the cursor.
    fn string(&mut self) -> Result<String, ParseError> {
        self.at += 1; // '"'
        let mut out = Vec::new();
        loop {
            let Some(&byte) = self.text.get(self.at) else {
                return Err(self.error("an unterminated string"));
            };
            self.at += 1;
            match byte {
                b'"' => break,
                b'\\' => self.escape(&mut out)?,
                0..0x20 => return Err(self.error("a control character in a string")),
                _ => out.push(byte),
            }
        }
        // The input was a `&str` and escapes add whole characters, so the
        // bytes are UTF-8; checked anyway rather than assumed.
        String::from_utf8(out).map_err(|_| self.error("a string that is not UTF-8"))
    }

    /// The escape after a `\`, appended to `out` as UTF-8.
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), ParseError> {
        let Some(&kind) = self.text.get(self.at) else {
            return Err(self.error("an unterminated escape"));
        };
        self.at += 1;
        let simple = match kind {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let mut code = u32::from(self.hex4()?);
                if (0xd800..0xdc00).contains(&code) {
                    // A high surrogate: its low half must follow as `\uXXXX`.
                    if !self.text[self.at..].starts_with(b"\\u") {
                        return Err(self.error("a lone surrogate"));
                    }
                    self.at += 2;
                    let low = u32::from(self.hex4()?);
                    if !(0xdc00..0xe000).contains(&low) {
                        return Err(self.error("a lone surrogate"));
                    }
                    code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
                }
                let character = char::from_u32(code).ok_or_else(|| self.error("a lone surrogate"))?;
                out.extend_from_slice(character.encode_utf8(&mut [0; 4]).as_bytes());
                return Ok(());
            }
            _ => return Err(ParseError { what: "an unknown escape", at: self.at - 1 }),
        };
        out.push(simple);
        Ok(())
    }

    /// Four hex digits of a `\u` escape.
    fn hex4(&mut self) -> Result<u16, ParseError> {
        let digits = self.text.get(self.at..self.at + 4).ok_or_else(|| self.error("a short \\u escape"))?;
        let digits = std::str::from_utf8(digits).map_err(|_| self.error("a malformed \\u escape"))?;
        let code = u16::from_str_radix(digits, 16).map_err(|_| self.error("a malformed \\u escape"))?;
        self.at += 4;
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_value() {
        let value = parse(r#" {"a": [1, -2.5e3, true, false, null], "b": {"c": "d"}, "e": []} "#).unwrap();
        assert_eq!(
            value.get("a").and_then(Value::as_array),
            Some(
                &[
                    Value::Number(1.0),
                    Value::Number(-2500.0),
                    Value::Bool(true),
                    Value::Bool(false),
                    Value::Null
                ][..]
            )
        );
        assert_eq!(value.at(&["b", "c"]).and_then(Value::as_str), Some("d"));
        assert_eq!(value.get("e"), Some(&Value::Array(Vec::new())));
        assert_eq!(value.get("missing"), None);
        assert_eq!(value.at(&["a", "deeper"]), None);
    }

    #[test]
    fn string_escapes_resolve() {
        let value = parse(r#""tab\there \"quoted\" \\ \/ \u00e9 \ud83d\ude00 µ""#).unwrap();
        assert_eq!(value.as_str(), Some("tab\there \"quoted\" \\ / é 😀 µ"));
    }

    #[test]
    fn what_is_not_json_is_refused_with_its_place() {
        for (text, at) in [
            ("", 0),
            ("{", 1),
            ("[1,]", 3),
            (r#"{"a" 1}"#, 5),
            (r#"{"a":1,}"#, 7),
            ("tru", 0),
            ("1 2", 2),
            (r#""open"#, 5),
            (r#""\x""#, 2),
            (r#""\ud800""#, 7),
            ("-", 0),
            ("1e999", 0),
        ] {
            let err = parse(text).expect_err(text);
            assert_eq!(err.at, at, "{text:?}: {err}");
        }
        let deep = "[".repeat(MAX_DEPTH + 2);
        assert_eq!(parse(&deep).map_err(|err| err.what), Err("nesting too deep"));
    }
}
