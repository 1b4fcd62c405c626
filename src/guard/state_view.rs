//! What `xtask check` reads of state.json: each entry's number, slug, status, session id and
//! artifacts, and the top-level `next_project_number`, parsed straight from the bytes without
//! building a JSON tree (an order-preserving tree of a 14 MB ledger costs more to build and to
//! free than the rest of the check). Every value is still parsed, so a file this accepts is one
//! that `StateFile::parse` accepts, and the fields mean what `serde_json::Value` would give:
//! the last of duplicate keys wins, a number is a task number only as an unsigned integer.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::ledger::json::{Any, Plain};
use crate::ledger::state::{entry_number, StateFile};
use crate::ledger::status::Status;

/// The parts of state.json a check looks at.
#[derive(Debug, Default)]
pub struct StateView<'a> {
    /// The `active_projects` entries, in file order.
    pub entries: Vec<Entry<'a>>,
    /// The top-level `next_project_number`, when it is an unsigned integer.
    pub next_project_number: Option<u64>,
}

/// One `active_projects` entry.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Entry<'a> {
    /// Whether it is a JSON object (nothing else has fields).
    pub object: bool,
    /// `project_number`, when an integer that fits a u32.
    pub number: Option<u32>,
    /// `project_name`, when a string.
    pub slug: Option<Cow<'a, str>>,
    /// `status`, when a string.
    pub status: Option<Cow<'a, str>>,
    /// `session_id` as it is, when present.
    pub session_id: Option<Value>,
    /// `artifacts`, when an array.
    pub artifacts: Vec<Artifact<'a>>,
}

/// One element of an entry's `artifacts`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Artifact<'a> {
    /// The element itself when a string, else its `path` when a string.
    pub path: Option<Cow<'a, str>>,
    /// Whether it is an object whose `type` is `summary`.
    pub summary: bool,
}

impl<'a> StateView<'a> {
    /// Parses state.json; `None` when the bytes are not JSON or not shaped as `StateFile::parse`
    /// requires (an object with an `active_projects` array): parse with it then, for its error.
    pub fn parse(bytes: &'a [u8]) -> Option<StateView<'a>> {
        let top: Top<'a> = serde_json::from_slice(bytes).ok()?;
        match top {
            Top::Object { active_projects: Some(Some(entries)), next_project_number } => {
                Some(StateView { entries, next_project_number })
            }
            _ => None,
        }
    }

    /// The view of an already parsed state.json (for `--fix`, which edits through the ledger).
    ///
    /// # Errors
    /// As `StateFile::doc`.
    pub fn of(state: &'a StateFile) -> crate::Result<StateView<'a>> {
        let str_of = |v: Option<&'a Value>| v.and_then(Value::as_str).map(Cow::Borrowed);
        let entries = state
            .entries()?
            .iter()
            .map(|e| Entry {
                object: e.is_object(),
                number: entry_number(e),
                slug: str_of(e.get("project_name")),
                status: str_of(e.get("status")),
                session_id: e.get("session_id").cloned(),
                artifacts: e
                    .get("artifacts")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|v| Artifact {
                                path: v.as_str().or_else(|| v.get("path").and_then(Value::as_str)).map(Cow::Borrowed),
                                summary: v.get("type").and_then(Value::as_str) == Some("summary"),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect();
        Ok(StateView { entries, next_project_number: state.next_project_number()? })
    }

    /// The status of task `n` when exactly one entry has that number; `Err(true)` when none has,
    /// `Err(false)` when several have (as `StateFile::task` would fail).
    pub fn task_status(&self, n: u32) -> Result<Status, bool> {
        let mut hits = self.entries.iter().filter(|e| e.number == Some(n));
        match (hits.next(), hits.next()) {
            (None, _) => Err(true),
            (Some(e), None) => Ok(e.status()),
            (Some(_), Some(_)) => Err(false),
        }
    }
}

impl Entry<'_> {
    /// Its status (`Status::from_state` of the string, or of "" when there is none).
    pub fn status(&self) -> Status {
        Status::from_state(self.status.as_deref().unwrap_or(""))
    }
}

// ---------------------------------------------------------------------------------------------
// Deserialization: every value goes through `deserialize_any`, as for the tree `StateFile`
// parses (`ledger::json::Plain`), so numbers, strings and nesting are checked exactly as that
// parse checks them (`IgnoredAny` would skip values without checking number ranges or string
// escapes), and an object is read as an object whatever its first key.

/// The visitor methods for every value but objects, arrays all giving
/// `$value`.
macro_rules! other_scalars {
    ($value:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// The document's top level.
enum Top<'a> {
    Object {
        /// `None` when absent, `Some(None)` when not an array.
        active_projects: Option<Option<Vec<Entry<'a>>>>,
        next_project_number: Option<u64>,
    },
    Other,
}

impl<'de> Deserialize<'de> for Top<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Top<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top<'de>, A::Error> {
                let (mut active_projects, mut next_project_number) = (None, None);
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    match key.0.as_ref() {
                        "active_projects" => active_projects = Some(map.next_value::<ArrayOf<Entry<'de>>>()?.0),
                        "next_project_number" => next_project_number = map.next_value::<Unsigned>()?.0,
                        _ => {
                            map.next_value::<Any>()?;
                        }
                    }
                }
                Ok(Top::Object { active_projects, next_project_number })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Top<'de>, A::Error> {
                Any::visit_seq_all(seq).map(|()| Top::Other)
            }
            other_scalars!(Top::Other);
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Entry<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entry<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an entry")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry<'de>, A::Error> {
                let mut e = Entry { object: true, ..Entry::default() };
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    match key.0.as_ref() {
                        "project_number" => {
                            e.number = map.next_value::<Unsigned>()?.0.and_then(|n| u32::try_from(n).ok())
                        }
                        "project_name" => e.slug = map.next_value::<Text<'de>>()?.0,
                        "status" => e.status = map.next_value::<Text<'de>>()?.0,
                        "session_id" => e.session_id = Some(map.next_value::<Plain>()?.0),
                        "artifacts" => e.artifacts = map.next_value::<ArrayOf<Artifact<'de>>>()?.0.unwrap_or_default(),
                        _ => {
                            map.next_value::<Any>()?;
                        }
                    }
                }
                Ok(e)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Entry<'de>, A::Error> {
                Any::visit_seq_all(seq).map(|()| Entry::default())
            }
            other_scalars!(Entry::default());
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Artifact<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Artifact<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an artifact")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Artifact<'de>, A::Error> {
                let (mut path, mut kind) = (None, None);
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    match key.0.as_ref() {
                        "path" => path = map.next_value::<Text<'de>>()?.0,
                        "type" => kind = map.next_value::<Text<'de>>()?.0,
                        _ => {
                            map.next_value::<Any>()?;
                        }
                    }
                }
                Ok(Artifact { path, summary: kind.as_deref() == Some("summary") })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Artifact<'de>, A::Error> {
                Any::visit_seq_all(seq).map(|()| Artifact::default())
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Artifact<'de>, E> {
                Ok(Artifact { path: Some(Cow::Borrowed(v)), summary: false })
            }
            fn visit_str<E>(self, v: &str) -> Result<Artifact<'de>, E> {
                Ok(Artifact { path: Some(Cow::Owned(v.to_owned())), summary: false })
            }
            fn visit_bool<E>(self, _: bool) -> Result<Artifact<'de>, E> {
                Ok(Artifact::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Artifact<'de>, E> {
                Ok(Artifact::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Artifact<'de>, E> {
                Ok(Artifact::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Artifact<'de>, E> {
                Ok(Artifact::default())
            }
            fn visit_unit<E>(self) -> Result<Artifact<'de>, E> {
                Ok(Artifact::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// An object key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Text::deserialize(d).map(|t| Key(t.0.unwrap_or_default()))
    }
}

/// A value that counts only when it is a string.
struct Text<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Text<'de>, A::Error> {
                Any::visit_map_all(map).map(|()| Text(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Text<'de>, A::Error> {
                Any::visit_seq_all(seq).map(|()| Text(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_unit<E>(self) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A value that counts only when it is an unsigned integer (`Value::as_u64`).
struct Unsigned(Option<u64>);

impl<'de> Deserialize<'de> for Unsigned {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Unsigned;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_u64<E>(self, v: u64) -> Result<Unsigned, E> {
                Ok(Unsigned(Some(v)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Unsigned, A::Error> {
                Any::visit_map_all(map).map(|()| Unsigned(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Unsigned, A::Error> {
                Any::visit_seq_all(seq).map(|()| Unsigned(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Unsigned, E> {
                Ok(Unsigned(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Unsigned, E> {
                Ok(Unsigned(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Unsigned, E> {
                Ok(Unsigned(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Unsigned, E> {
                Ok(Unsigned(None))
            }
            fn visit_unit<E>(self) -> Result<Unsigned, E> {
                Ok(Unsigned(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// An array of `T`, or `None` for any other value.
struct ArrayOf<T>(Option<Vec<T>>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ArrayOf<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = ArrayOf<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ArrayOf<T>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(item) = seq.next_element::<T>()? {
                    out.push(item);
                }
                Ok(ArrayOf(Some(out)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ArrayOf<T>, A::Error> {
                Any::visit_map_all(map).map(|()| ArrayOf(None))
            }
            other_scalars!(ArrayOf(None));
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The view of `text` through both ways in; they must agree.
    fn both(text: &str) -> Option<(Vec<Entry<'_>>, Option<u64>)> {
        let fast = StateView::parse(text.as_bytes());
        let slow = StateFile::parse(Path::new("state.json"), text.as_bytes().to_vec()).ok();
        match (fast, slow) {
            (Some(f), Some(s)) => {
                let of = StateView::of(&s).expect("parsed");
                assert_eq!(f.entries, of.entries, "{text}");
                assert_eq!(f.next_project_number, of.next_project_number, "{text}");
                Some((f.entries, f.next_project_number))
            }
            (None, None) => None,
            (f, s) => {
                panic!("the views disagree on {text:?}: fast {:?}, StateFile::parse {:?}", f.is_some(), s.is_some())
            }
        }
    }

    #[test]
    fn fields_mean_what_a_json_value_gives() {
        let (entries, next) = both(
            r#"{"next_project_number": 7, "x": [1, {"a": null}], "active_projects": [
                {"project_number": 3, "project_name": "a\u0062c", "status": "planned", "session_id": "sess_1",
                 "artifacts": ["specs/3_abc/reports/r.md", {"type": "summary", "path": "s.md", "extra": [true]},
                               {"path": 5}, [1], 2, null, {"type": "plan", "path": "p.md"}]},
                {"project_number": 3.0, "status": 4, "session_id": {"b": [1.5e3, -2]}},
                {"project_number": -1, "project_name": null, "artifacts": {"path": "x"}},
                {"project_number": 4294967296},
                {"project_number": 1, "project_number": 2, "status": "a", "status": "b", "session_id": 1, "session_id": "s"},
                "not an object", 5, [], null
            ]}"#,
        )
        .expect("valid");
        assert_eq!(next, Some(7));
        let e = &entries[0];
        assert_eq!((e.number, e.slug.as_deref(), e.status.as_deref()), (Some(3), Some("abc"), Some("planned")));
        assert_eq!(
            e.artifacts.iter().map(|a| (a.path.as_deref(), a.summary)).collect::<Vec<_>>(),
            [
                (Some("specs/3_abc/reports/r.md"), false),
                (Some("s.md"), true),
                (None, false),
                (None, false),
                (None, false),
                (None, false),
                (Some("p.md"), false)
            ]
        );
        assert_eq!((entries[1].number, entries[1].status.as_deref()), (None, None));
        assert_eq!(entries[1].session_id, Some(serde_json::json!({"b": [1.5e3, -2]})));
        assert_eq!((entries[2].number, entries[2].artifacts.len()), (None, 0));
        assert_eq!(entries[3].number, None, "does not fit a u32");
        let last = &entries[4];
        assert_eq!(
            (last.number, last.status.as_deref(), last.session_id.clone()),
            (Some(2), Some("b"), Some("s".into()))
        );
        assert!(entries[5..].iter().all(|e| !e.object && e.number.is_none()));
    }

    #[test]
    fn what_state_file_refuses_is_refused() {
        for bad in [
            "",
            "  \n",
            "[]",
            "{}",
            r#"{"active_projects": {}}"#,
            r#"{"active_projects": [], "active_projects": 1}"#,
            r#"{"active_projects": [{"x": 1e400}]}"#,
            r#"{"active_projects": [{"project_name": "\ud800"}]}"#,
            r#"{"active_projects": [{"project_name": "bad \x escape"}]}"#,
            r#"{"active_projects": []} trailing"#,
            r#"{"active_projects": [1,]}"#,
            "{\"active_projects\": [\"\u{1}\"]}",
        ] {
            assert!(both(bad).is_none(), "{bad:?} accepted");
        }
        let deep = format!("{{\"active_projects\": [{}{}]}}", "[".repeat(200), "]".repeat(200));
        assert!(both(&deep).is_none(), "nesting beyond serde_json's limit");
        assert!(both(r#"{"active_projects": [], "active_projects": []}"#).is_some());
    }

    #[test]
    fn task_status_is_state_file_task() {
        let text = r#"{"active_projects": [{"project_number": 1, "status": "implementing"},
            {"project_number": 2}, {"project_number": 2}, {"project_number": 3, "status": "weird"}]}"#;
        let view = StateView::parse(text.as_bytes()).expect("valid");
        let state = StateFile::parse(Path::new("s"), text.as_bytes().to_vec()).expect("valid");
        for n in 0..5 {
            let want = match state.task(n) {
                Ok(t) => Ok(t.status),
                Err(crate::Error::TaskNotFound { .. }) => Err(true),
                Err(_) => Err(false),
            };
            assert_eq!(view.task_status(n), want, "task {n}");
        }
    }
}
