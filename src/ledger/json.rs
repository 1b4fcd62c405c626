//! Reads JSON keeping key order and prints it exactly as jq 1.6's `jq .` does (2-space indent,
//! `": "`, raw UTF-8, `\u007f` escaped, numbers in jq's `%.17g` shortest form), so that a
//! jq-formatted ledger changes only where it was edited.

use std::io;
use std::path::Path;

use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter};
use serde_json::Value;

use crate::error::{Error, Result};

/// Parses `bytes` as one JSON document, reporting errors with the file's line and column.
///
/// # Errors
/// `Json` with the position of the first syntax error.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| Error::json(path, &e))
}

/// Prints `value` as `jq .` would: pretty, 2-space indent, final newline.
pub fn to_jq_pretty(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, JqFormatter::pretty());
    value.serialize(&mut ser).expect("serialising a Value into memory cannot fail");
    out.push(b'\n');
    out
}

/// Prints `value` as `jq -c .` would: one line, final newline.
pub fn to_jq_compact(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, JqFormatter::compact());
    value.serialize(&mut ser).expect("serialising a Value into memory cannot fail");
    out.push(b'\n');
    out
}

/// A serde_json formatter reproducing jq 1.6's printer.
struct JqFormatter {
    pretty: Option<PrettyFormatter<'static>>,
}

impl JqFormatter {
    fn pretty() -> Self {
        JqFormatter { pretty: Some(PrettyFormatter::with_indent(b"  ")) }
    }
    fn compact() -> Self {
        JqFormatter { pretty: None }
    }
}

macro_rules! delegate {
    ($($name:ident ( $($arg:ident : $ty:ty),* );)*) => {
        $(
            fn $name<W: ?Sized + io::Write>(&mut self, writer: &mut W $(, $arg: $ty)*) -> io::Result<()> {
                match &mut self.pretty {
                    Some(p) => p.$name(writer $(, $arg)*),
                    None => serde_json::ser::CompactFormatter.$name(writer $(, $arg)*),
                }
            }
        )*
    };
}

impl Formatter for JqFormatter {
    delegate! {
        begin_array();
        end_array();
        begin_array_value(first: bool);
        end_array_value();
        begin_object();
        end_object();
        begin_object_key(first: bool);
        end_object_key();
        begin_object_value();
        end_object_value();
    }

    fn write_i64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: i64) -> io::Result<()> {
        if value.unsigned_abs() > (1u64 << 53) {
            writer.write_all(format_jq_number(value as f64).as_bytes())
        } else {
            write!(writer, "{value}")
        }
    }

    fn write_u64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: u64) -> io::Result<()> {
        if value > (1u64 << 53) {
            writer.write_all(format_jq_number(value as f64).as_bytes())
        } else {
            write!(writer, "{value}")
        }
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        writer.write_all(format_jq_number(value).as_bytes())
    }

    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        // serde_json leaves DEL raw; jq 1.6 escapes it.
        let mut rest = fragment;
        while let Some(i) = rest.find('\u{7f}') {
            writer.write_all(&rest.as_bytes()[..i])?;
            writer.write_all(b"\\u007f")?;
            rest = &rest[i + 1..];
        }
        writer.write_all(rest.as_bytes())
    }
}

/// Formats a number as jq 1.6 does: the shortest digits that round-trip (at most 17), printed
/// plainly unless the point is 4+ places left of the digits or more than 15 past them (then `1e+20`, `1e-07`).
pub fn format_jq_number(value: f64) -> String {
    if value.is_nan() {
        return "null".into();
    }
    if value.is_infinite() {
        // jq 1.6 prints infinities as the largest finite double.
        return if value > 0.0 { "1.7976931348623157e+308".into() } else { "-1.7976931348623157e+308".into() };
    }
    let sign = if value.is_sign_negative() { "-" } else { "" };
    if value == 0.0 {
        return format!("{sign}0");
    }
    // `{:e}` gives the shortest round-trip digits: "1.2345e19".
    let sci = format!("{:e}", value.abs());
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let ndigits = digits.len() as i32;
    // Position of the decimal point relative to the digit string (David Gay's `decpt`).
    let decpt = exp + 1;
    let mut out = String::from(sign);
    if decpt <= -4 || decpt > ndigits + 15 {
        out.push_str(&digits[..1]);
        if ndigits > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = decpt - 1;
        out.push('e');
        out.push(if e < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", e.abs()));
    } else if decpt <= 0 {
        out.push_str("0.");
        for _ in 0..(-decpt) {
            out.push('0');
        }
        out.push_str(&digits);
    } else if decpt >= ndigits {
        out.push_str(&digits);
        for _ in 0..(decpt - ndigits) {
            out.push('0');
        }
    } else {
        let (int, frac) = digits.split_at(decpt as usize);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_like_jq_1_6() {
        let cases = [
            (1.0, "1"),
            (1000.0, "1000"),
            (1e-7, "1e-07"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e20, "1e+20"),
            (1.5e300, "1.5e+300"),
            (0.5, "0.5"),
            (2.5, "2.5"),
            (-0.0, "-0"),
            (0.30000000000000004, "0.30000000000000004"),
            (12345678901234567890.0, "12345678901234567000"),
            (123456.0, "123456"),
            (1e17, "1e+17"),
            (1e6, "1000000"),
            (1.5e6, "1500000"),
            (123e-5, "0.00123"),
            (9007199254740992.0, "9007199254740992"),
            (5e-324, "5e-324"),
        ];
        for (v, want) in cases {
            assert_eq!(format_jq_number(v), want, "{v:e}");
        }
    }

    /// Found by `cargo fuzz run state_edit`: serde_json's default float parser can be one unit
    /// in the last place off, so a number the tool printed read back as another and changed on
    /// the next write (`1234567890.2345679` became `1234567890.234568`). The workspace enables
    /// serde_json's `float_roundtrip`; printing then parsing is the identity.
    #[test]
    fn printed_numbers_read_back_exactly() {
        for text in
            ["1234567890.2345679", "0.30000000000000004", "9007199254740993", "5e-324", "1.7976931348623157e+308"]
        {
            let v: Value = parse(Path::new("n.json"), text.as_bytes()).expect("parse");
            let printed = String::from_utf8(to_jq_compact(&v)).expect("utf8");
            let again: Value = parse(Path::new("n.json"), printed.as_bytes()).expect("parse");
            assert_eq!(String::from_utf8(to_jq_compact(&again)).expect("utf8"), printed, "{text}");
        }
        let v: Value = parse(Path::new("n.json"), b"1234567890.2345679").expect("parse");
        assert_eq!(to_jq_compact(&v), b"1234567890.2345679\n");
    }

    #[test]
    fn pretty_output_matches_jq_layout() {
        let v: Value = serde_json::from_str(r#"{"b":[],"a":{},"c":[1,{"x":"é/\u007f"}],"d":1.0}"#).expect("parse");
        let out = String::from_utf8(to_jq_pretty(&v)).expect("utf8");
        assert_eq!(
            out,
            "{\n  \"b\": [],\n  \"a\": {},\n  \"c\": [\n    1,\n    {\n      \"x\": \"é/\\u007f\"\n    }\n  ],\n  \"d\": 1\n}\n"
        );
        assert_eq!(
            String::from_utf8(to_jq_compact(&v)).expect("utf8"),
            "{\"b\":[],\"a\":{},\"c\":[1,{\"x\":\"é/\\u007f\"}],\"d\":1}\n"
        );
    }
}
