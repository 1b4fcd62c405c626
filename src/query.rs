//! jq filters over the ledger through jaq, printed exactly as jq 1.6 prints them, so scripts
//! written for `jq` keep working without jq installed. Input is parsed by serde_json (key order
//! kept) and every result goes through the ledger's jq 1.6 printer (`ledger::json`); errors name
//! the filter position, and values quoted in error messages are shortened.

use std::io::Write;
use std::path::Path;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{data, Ctx, Vars};
use jaq_json::{Num, Val};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::ledger::json;

type Filter = jaq_core::Filter<data::JustLut<Val>>;

/// Definitions jq 1.6 has and jaq lacks, written in jq over the variables of [`BUILTIN_VARS`].
const PRELUDE: &str = "def input_filename: $__postflight_input_filename;";

/// Variables every filter sees after the user's: jq's `$ENV`, and the input's name.
const BUILTIN_VARS: [&str; 2] = ["$ENV", "$__postflight_input_filename"];

/// The longest value text quoted in an error message; longer values are cut with `...`.
pub const MAX_VALUE_IN_ERROR: usize = 80;

/// How results are printed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `-r`: print strings without quotes.
    pub raw: bool,
    /// `-c`: one line per result.
    pub compact: bool,
}

/// A named variable given to the filter (`--arg` / `--argjson`).
#[derive(Debug, Clone, PartialEq)]
pub struct Var {
    /// The name without `$`.
    pub name: String,
    /// The value.
    pub value: Value,
}

impl Var {
    /// `--arg NAME VALUE`: a string variable.
    pub fn string(name: &str, value: &str) -> Var {
        Var { name: name.to_owned(), value: Value::String(value.to_owned()) }
    }

    /// `--argjson NAME JSON`: a variable holding parsed JSON.
    ///
    /// # Errors
    /// `Filter` when `text` is not one JSON value.
    pub fn json(name: &str, text: &str) -> Result<Var> {
        let value = serde_json::from_str(text).map_err(|e| Error::Filter {
            message: format!("--argjson {name}: invalid JSON text `{}`: {e}", shorten(text, MAX_VALUE_IN_ERROR)),
        })?;
        Ok(Var { name: name.to_owned(), value })
    }
}

/// A compiled filter.
pub struct Query {
    filter: Filter,
    vars: Vec<String>,
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Query").field("vars", &self.vars).finish_non_exhaustive()
    }
}

impl Query {
    /// Compiles `code` with the global variables `vars` (names without `$`).
    ///
    /// # Errors
    /// `Filter` naming the first problem's line, column and offset, with a caret excerpt.
    pub fn compile(code: &str, vars: &[&str]) -> Result<Query> {
        let own = jaq_core::load::parse(PRELUDE, |p| p.defs()).expect("the prelude parses");
        let defs = jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs()).chain(own);
        let funs = jaq_core::funs().chain(jaq_std::funs()).chain(jaq_json::funs());
        let arena = Arena::default();
        let modules = Loader::new(defs).load(&arena, File { code, path: () }).map_err(|errs| {
            let mut problems = Vec::new();
            for (_, err) in errs {
                match err {
                    jaq_core::load::Error::Lex(es) => problems
                        .extend(es.iter().map(|(expect, found)| (format!("expected {}", expect.as_str()), *found))),
                    jaq_core::load::Error::Parse(es) => problems.extend(es.iter().map(|(expect, found)| {
                        let what = if found.is_empty() { "end of filter".to_owned() } else { format!("`{found}`") };
                        (format!("expected {}, found {what}", expect.as_str()), *found)
                    })),
                    jaq_core::load::Error::Io(es) => {
                        problems.extend(es.into_iter().map(|(path, msg)| (format!("cannot load {path}: {msg}"), path)))
                    }
                }
            }
            filter_error(code, "syntax error", problems)
        })?;
        let mut names: Vec<String> = vars.iter().map(|v| format!("${v}")).collect();
        names.extend(BUILTIN_VARS.iter().map(|v| (*v).to_owned()));
        let filter = jaq_core::Compiler::default()
            .with_funs(funs)
            .with_global_vars(names.iter().map(String::as_str))
            .compile(modules)
            .map_err(|errs| {
                let problems = errs
                    .into_iter()
                    .flat_map(|(_, es)| es)
                    .map(|(name, undefined)| (format!("undefined {} `{name}`", undefined.as_str()), name))
                    .collect();
                filter_error(code, "compile error", problems)
            })?;
        Ok(Query { filter, vars: vars.iter().map(|v| (*v).to_owned()).collect() })
    }

    /// Runs the filter on every JSON value of `input` and prints each result to `out`.
    ///
    /// # Errors
    /// `Json` when the input does not parse (nothing printed); `Filter` on the first runtime
    /// error (results before it are printed, as jq does); `Io` when `out` fails.
    pub fn run(
        &self,
        input_name: &Path,
        input: &[u8],
        vars: &[Value],
        opts: Options,
        out: &mut dyn Write,
    ) -> Result<()> {
        let values: Vec<Value> = serde_json::Deserializer::from_slice(input)
            .into_iter::<Value>()
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::json(input_name, &e))?;
        let mut var_vals: Vec<Val> = vars.iter().map(to_val).collect();
        // `$ENV` and the file name behind `input_filename`, in BUILTIN_VARS order.
        var_vals.push(Val::obj(std::env::vars().map(|(k, v)| (Val::from(k), Val::from(v))).collect()));
        var_vals.push(Val::from(input_name.display().to_string()));
        for (i, value) in values.iter().enumerate() {
            let ctx = Ctx::<data::JustLut<Val>>::new(&self.filter.lut, Vars::new(var_vals.iter().cloned()));
            for result in self.filter.id.run((ctx, to_val(value))) {
                match result {
                    Ok(v) => write_value(out, &v, opts).map_err(|e| Error::io("write", "standard output", e))?,
                    Err(exn) => {
                        let message = match exn.get_err() {
                            // `error("text")` shows the text as jq does; other values as JSON.
                            Ok(err) => match err.into_val() {
                                Val::TStr(b) => truncate_values(&String::from_utf8_lossy(&b), MAX_VALUE_IN_ERROR),
                                other => truncate_values(&other.to_string(), MAX_VALUE_IN_ERROR),
                            },
                            Err(exn) => match exn.get_halt() {
                                Ok(code) => format!("halt with exit code {code}"),
                                Err(_) => "unexpected filter exception".to_owned(),
                            },
                        };
                        let at = if values.len() > 1 { format!(" (input value {})", i + 1) } else { String::new() };
                        return Err(Error::Filter {
                            message: format!("filter failed on {}{at}: {message}", input_name.display()),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// The variable names the filter was compiled with, in order.
    pub fn vars(&self) -> &[String] {
        &self.vars
    }
}

/// Compiles `code` with `vars`, runs it over `input` and prints the results.
///
/// # Errors
/// As [`Query::compile`] and [`Query::run`].
pub fn run(
    code: &str,
    input_name: &Path,
    input: &[u8],
    vars: &[Var],
    opts: Options,
    out: &mut dyn Write,
) -> Result<()> {
    let names: Vec<&str> = vars.iter().map(|v| v.name.as_str()).collect();
    let query = Query::compile(code, &names)?;
    let values: Vec<Value> = vars.iter().map(|v| v.value.clone()).collect();
    query.run(input_name, input, &values, opts, out)
}

/// Prints one result as jq 1.6 does: pretty (or compact) JSON, or a raw string with `-r`.
fn write_value(out: &mut dyn Write, v: &Val, opts: Options) -> std::io::Result<()> {
    if opts.raw {
        if let Val::TStr(bytes) = v {
            out.write_all(bytes)?;
            return out.write_all(b"\n");
        }
    }
    let value = to_json(v);
    let bytes = if opts.compact { json::to_jq_compact(&value) } else { json::to_jq_pretty(&value) };
    out.write_all(&bytes)
}

/// Converts serde_json to jaq (numbers: integers stay integers, the rest become floats).
fn to_val(v: &Value) -> Val {
    match v {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => match isize::try_from(i) {
                Ok(i) => Val::Num(Num::Int(i)),
                Err(_) => Val::Num(Num::Float(i as f64)),
            },
            (None, Some(u), _) => match isize::try_from(u) {
                Ok(i) => Val::Num(Num::Int(i)),
                Err(_) => Val::Num(Num::Float(u as f64)),
            },
            (_, _, Some(f)) => Val::Num(Num::Float(f)),
            _ => Val::Null,
        },
        Value::String(s) => Val::from(s.clone()),
        Value::Array(a) => Val::Arr(a.iter().map(to_val).collect::<Vec<_>>().into()),
        Value::Object(o) => Val::obj(o.iter().map(|(k, v)| (Val::from(k.clone()), to_val(v))).collect()),
    }
}

/// Converts a jaq result to serde_json for jq 1.6 printing: every number is a double as in jq 1.6
/// (infinities become the largest double, NaN becomes null), byte strings become text.
fn to_json(v: &Val) -> Value {
    match v {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Num(n) => number(n),
        Val::TStr(b) | Val::BStr(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        Val::Arr(a) => Value::Array(a.iter().map(to_json).collect()),
        Val::Obj(o) => Value::Object(
            o.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Val::TStr(b) | Val::BStr(b) => String::from_utf8_lossy(b).into_owned(),
                        other => other.to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
    }
}

fn number(n: &Num) -> Value {
    let f = match n {
        Num::Int(i) => return Value::from(*i as i64),
        Num::Float(f) => *f,
        Num::BigInt(b) => b.to_string().parse::<f64>().unwrap_or(f64::NAN),
        Num::Dec(s) => s.parse::<f64>().unwrap_or(f64::NAN),
    };
    if f.is_nan() {
        return Value::Null;
    }
    let f = if f.is_infinite() { f64::MAX.copysign(f) } else { f };
    serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)
}

/// Builds the `Filter` error for compile problems: the first problem with its line, column and
/// offset, the filter line with a caret, and how many more problems there were.
fn filter_error(code: &str, kind: &str, problems: Vec<(String, &str)>) -> Error {
    let Some((what, part)) = problems.first() else {
        return Error::Filter { message: format!("{kind} in filter") };
    };
    let offset = offset_in(code, part);
    let before = &code[..offset];
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line_end = code[line_start..].find('\n').map(|i| line_start + i).unwrap_or(code.len());
    let column = code[line_start..offset].chars().count() + 1;
    let line_text = &code[line_start..line_end];
    let mut message = format!("{kind} in filter at line {line_no}, column {column} (offset {offset}): {what}");
    if problems.len() > 1 {
        message.push_str(&format!(" (and {} more)", problems.len() - 1));
    }
    // The excerpt is printed only for reasonably short lines, where a caret is still readable.
    if line_text.chars().count() <= 200 {
        message.push_str(&format!("\n  {line_text}\n  {}^", " ".repeat(column - 1)));
    }
    Error::Filter { message }
}

/// The byte offset of `part` inside `whole` when it is a slice of it, else the end of `whole`.
fn offset_in(whole: &str, part: &str) -> usize {
    let (w, p) = (whole.as_ptr() as usize, part.as_ptr() as usize);
    if p >= w && p + part.len() <= w + whole.len() {
        jaq_core::load::span(whole, part).start
    } else {
        whole.len()
    }
}

/// Cuts `s` to at most `max` characters, ending in `...` when cut.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(3)).collect();
    out.push_str("...");
    out
}

/// Shortens every JSON value (object, array or string) quoted in `message` to `max` characters,
/// so an error about a 16 MB document stays one readable line; the whole message is capped too.
pub fn truncate_values(message: &str, max: usize) -> String {
    let chars: Vec<char> = message.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if matches!(c, '{' | '[' | '"') {
            let end = json_token_end(&chars, i);
            let token: String = chars[i..end].iter().collect();
            out.push_str(&shorten(&token, max));
            i = end;
        } else {
            out.push(c);
            i += 1;
        }
    }
    shorten(&out.replace('\n', " "), max * 4)
}

/// The index after the JSON value starting at `start` (balanced brackets, strings with escapes);
/// the end of the text when it is unbalanced.
fn json_token_end(chars: &[char], start: usize) -> usize {
    let mut depth = 0usize;
    let mut in_str = false;
    let mut i = start;
    while i < chars.len() {
        let c = chars[i];
        if in_str {
            match c {
                '\\' => i += 1,
                '"' => {
                    in_str = false;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
        } else {
            match c {
                '"' => in_str = true,
                '{' | '[' => depth += 1,
                '}' | ']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    chars.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(code: &str, input: &str, vars: &[Var], opts: Options) -> Result<String> {
        let mut out = Vec::new();
        run(code, Path::new("input.json"), input.as_bytes(), vars, opts, &mut out)?;
        Ok(String::from_utf8(out).expect("utf8"))
    }

    const DOC: &str = r#"{"active_projects": [{"project_number": 7, "status": "planned", "n": 1.0, "artifacts": [{"type": "plan", "path": "p"}, {"type": "summary", "path": "s"}]}], "next_project_number": 8}"#;

    #[test]
    fn select_update_and_raw_output_print_like_jq() {
        let vars = [Var::json("num", "7").expect("json"), Var::string("ts", "2026-03-16T21:11:23Z")];
        let out = q(
            ".active_projects[] | select(.project_number == $num) | .status",
            DOC,
            &vars,
            Options { raw: true, compact: false },
        )
        .expect("run");
        assert_eq!(out, "planned\n");
        let out = q(
            "(.active_projects[] | select(.project_number == $num)) |= . + {last_updated: $ts} | .active_projects[0] | {n, last_updated}",
            DOC,
            &vars,
            Options::default(),
        )
        .expect("run");
        assert_eq!(out, "{\n  \"n\": 1,\n  \"last_updated\": \"2026-03-16T21:11:23Z\"\n}\n");
        let out = q(
            r#"[.active_projects[0].artifacts // [] | .[] | select(.type == "summary" | not)]"#,
            DOC,
            &[],
            Options { raw: false, compact: true },
        )
        .expect("run");
        assert_eq!(out, "[{\"type\":\"plan\",\"path\":\"p\"}]\n");
        assert_eq!(q("empty", DOC, &[], Options::default()).expect("run"), "");
    }

    #[test]
    fn syntax_errors_point_at_the_filter() {
        let err = q(".a | select(.b == 1", "{}", &[], Options::default()).expect_err("bad");
        let msg = err.to_string();
        assert!(msg.contains("syntax error in filter at line 1, column"), "{msg}");
        assert!(msg.contains("\n  .a | select(.b == 1\n"), "{msg}");
        let err = q(".a | nosuchfn(1)", "{}", &[], Options::default()).expect_err("bad");
        assert!(err.to_string().contains("undefined filter `nosuchfn` at") || err.to_string().contains("`nosuchfn`"));
        assert!(err.to_string().contains("column 6 (offset 5)"), "{err}");
        let err = q("$nope", "{}", &[], Options::default()).expect_err("bad");
        assert!(err.to_string().contains("undefined variable `$nope`"), "{err}");
    }

    #[test]
    fn runtime_errors_truncate_values() {
        let big = format!("{{\"active_projects\": [{}]}}", vec![r#"{"project_number": 1}"#; 500].join(","));
        let err = q(".active_projects + 1", &big, &[], Options::default()).expect_err("bad");
        let msg = err.to_string();
        assert!(msg.len() < 400, "{msg}");
        assert!(msg.contains("..."), "{msg}");
        assert!(msg.starts_with("filter failed on input.json: "), "{msg}");
    }

    #[test]
    fn env_input_filename_and_error_text() {
        assert_eq!(
            q("$ENV | type, input_filename", "{}", &[], Options::default()).expect("run"),
            "\"object\"\n\"input.json\"\n"
        );
        let err = q("error(\"boom\")", "{}", &[], Options::default()).expect_err("error");
        assert_eq!(err.to_string(), "filter failed on input.json: boom");
        let err = q("error({a: 1})", "{}", &[], Options::default()).expect_err("error");
        assert_eq!(err.to_string(), "filter failed on input.json: {\"a\":1}");
    }

    #[test]
    fn bad_input_and_bad_argjson_are_errors() {
        assert!(matches!(q(".", "{\"a\": ", &[], Options::default()), Err(Error::Json { .. })));
        assert!(Var::json("x", "{nope").is_err());
        assert_eq!(q(".", "1 2", &[], Options::default()).expect("run"), "1\n2\n");
    }

    #[test]
    fn truncation_keeps_short_values_and_cuts_long_ones() {
        let long = format!("cannot index [{}] with \"x\"", "1,".repeat(100));
        let t = truncate_values(&long, 20);
        assert!(t.starts_with("cannot index [1,1,1,1,1,1,1,1,..."), "{t}");
        assert!(t.ends_with(" with \"x\""), "{t}");
    }
}
