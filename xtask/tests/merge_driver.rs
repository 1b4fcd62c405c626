//! The ledger merge driver through real `git merge`: a corpus of three-way cases (a table of
//! edits on a generated ledger, each with its expected result), merged once with the driver
//! installed (`xtask hooks install --merge`) and once without it (the attribute alone, as in a
//! fresh clone: git merges as text); `task renumber`; the setup that `check` and `doctor` report.
//! jq 1.6 is the oracle for the printed state.json.

use std::process::Command;

use serde_json::{json, Map, Value};

use crate::support::{render, skipped, TestRepo};

const BASE_TS: &str = "2026-01-01T00:00:00Z";
/// The time ours writes, and the later time theirs writes.
const OURS_TS: &str = "2026-02-01T00:00:00Z";
const THEIRS_TS: &str = "2026-03-01T00:00:00Z";

/// One task of the model ledger.
#[derive(Clone, Debug)]
struct Task {
    n: u32,
    name: String,
    title: String,
    status: String,
    /// Further state.json fields, in order, after the fixed ones.
    extra: Vec<(String, Value)>,
    /// TODO.md only: the description paragraph and extra bullets.
    desc: String,
    bullets: Vec<String>,
}

/// The model of a ledger: both files are rendered from it.
#[derive(Clone, Debug)]
struct L {
    /// Newest first, as `task new` puts them.
    tasks: Vec<Task>,
    next: u32,
    top: Vec<(String, Value)>,
    /// TODO.md text between `# TODO` and `## Tasks`.
    preamble: String,
    /// state.json printed on one line (not as jq prints it).
    compact: bool,
}

impl L {
    fn base() -> L {
        let mut l = L { tasks: Vec::new(), next: 1, top: Vec::new(), preamble: String::new(), compact: false };
        for (n, name) in [(1, "alpha"), (2, "beta"), (3, "gamma")] {
            l.add_at(n, name, BASE_TS);
        }
        l.top.push(("repository_health".into(), json!({"status": "good"})));
        l
    }

    fn add_at(&mut self, n: u32, name: &str, ts: &str) {
        let title = format!("Task {name}");
        self.tasks.insert(
            0,
            Task {
                n,
                name: name.into(),
                title,
                status: "not_started".into(),
                extra: vec![("created".into(), json!(ts)), ("last_updated".into(), json!(ts))],
                desc: format!("About {name}."),
                bullets: Vec::new(),
            },
        );
        self.next = self.next.max(n + 1);
    }

    fn task(&mut self, n: u32) -> &mut Task {
        self.tasks.iter_mut().find(|t| t.n == n).expect("task in the model")
    }

    fn set(&mut self, n: u32, key: &str, value: Value) {
        let t = self.task(n);
        match t.extra.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => t.extra.push((key.into(), value)),
        }
    }

    fn unset(&mut self, n: u32, key: &str) {
        self.task(n).extra.retain(|(k, _)| k != key);
    }

    fn status(&mut self, n: u32, status: &str, ts: &str) {
        self.task(n).status = status.into();
        self.set(n, "last_updated", json!(ts));
    }

    fn remove(&mut self, n: u32) {
        self.tasks.retain(|t| t.n != n);
    }

    fn state(&self) -> Value {
        let mut doc = Map::new();
        doc.insert("next_project_number".into(), json!(self.next));
        let entries: Vec<Value> = self
            .tasks
            .iter()
            .map(|t| {
                let mut e = Map::new();
                e.insert("project_number".into(), json!(t.n));
                e.insert("project_name".into(), json!(t.name));
                e.insert("status".into(), json!(t.status));
                e.insert("language".into(), json!("general"));
                for (k, v) in &t.extra {
                    e.insert(k.clone(), v.clone());
                }
                Value::Object(e)
            })
            .collect();
        doc.insert("active_projects".into(), Value::Array(entries));
        for (k, v) in &self.top {
            doc.insert(k.clone(), v.clone());
        }
        Value::Object(doc)
    }

    fn state_text(&self) -> String {
        let v = self.state();
        if self.compact {
            format!("{}\n", serde_json::to_string(&v).expect("json"))
        } else {
            format!("{}\n", serde_json::to_string_pretty(&v).expect("json"))
        }
    }

    fn todo_text(&self) -> String {
        let mut out =
            format!("---\nnext_project_number: {}\n---\n\n# TODO\n\n{}## Tasks\n\n", self.next, self.preamble);
        let blocks: Vec<String> = self
            .tasks
            .iter()
            .map(|t| {
                let marker = t.status.to_uppercase().replace('_', " ");
                let mut b = format!(
                    "### {}. {}\n- **Effort**: TBD\n- **Status**: [{marker}]\n- **Language**: general\n",
                    t.n, t.title
                );
                for line in &t.bullets {
                    b.push_str(line);
                    b.push('\n');
                }
                b.push_str(&format!("\n**Description**: {}\n\n---\n", t.desc));
                b
            })
            .collect();
        out.push_str(&blocks.join("\n"));
        out
    }
}

type Edit = Box<dyn Fn(&mut L)>;
type ModelEdit = fn(&mut L);

enum Expect {
    /// Merges cleanly to the base with this edit applied.
    Clean(Edit),
    /// A conflict whose report contains each of these.
    Conflict(&'static [&'static str]),
}

struct Case {
    name: String,
    ours: Edit,
    theirs: Edit,
    expect: Expect,
}

fn case(name: impl Into<String>, ours: Edit, theirs: Edit, expect: Expect) -> Case {
    Case { name: name.into(), ours, theirs, expect }
}

fn e(f: impl Fn(&mut L) + 'static) -> Edit {
    Box::new(f)
}

fn nothing() -> Edit {
    e(|_| {})
}

/// The corpus: at least 50 cases over the kinds of change two branches make to a ledger.
fn corpus() -> Vec<Case> {
    let mut c = Vec::new();

    // Appends on both sides: tasks under different numbers (as clones that allocate from
    // different ranges do), and artifacts appended to one task.
    for (ours_new, theirs_new) in
        [(vec![4], vec![5]), (vec![4, 5], vec![6]), (vec![4], vec![5, 6]), (vec![5], vec![4]), (vec![4, 6], vec![5, 7])]
    {
        let (a, b) = (ours_new.clone(), theirs_new.clone());
        let mut all: Vec<u32> = ours_new.iter().chain(&theirs_new).copied().collect();
        all.sort_unstable();
        c.push(case(
            format!("append tasks {ours_new:?} and {theirs_new:?}"),
            e(move |l| a.iter().for_each(|n| l.add_at(*n, &format!("ours{n}"), OURS_TS))),
            e(move |l| b.iter().for_each(|n| l.add_at(*n, &format!("theirs{n}"), THEIRS_TS))),
            Expect::Clean(e(move |l| {
                for n in &all {
                    let side = if ours_new.contains(n) { "ours" } else { "theirs" };
                    l.add_at(*n, &format!("{side}{n}"), if side == "ours" { OURS_TS } else { THEIRS_TS });
                }
            })),
        ));
    }
    c.push(case(
        "append artifacts to one task on both sides",
        e(|l| {
            l.set(2, "artifacts", json!(["specs/2_beta/reports/research-001.md"]));
            l.set(2, "last_updated", json!(OURS_TS));
        }),
        e(|l| {
            l.set(2, "artifacts", json!(["specs/2_beta/plans/implementation-001.md"]));
            l.set(2, "last_updated", json!(THEIRS_TS));
        }),
        Expect::Clean(e(|l| {
            l.set(
                2,
                "artifacts",
                json!(["specs/2_beta/reports/research-001.md", "specs/2_beta/plans/implementation-001.md"]),
            );
            l.set(2, "last_updated", json!(THEIRS_TS));
        })),
    ));
    c.push(case(
        "append a task on one side, an artifact on the other",
        e(|l| l.add_at(4, "delta", OURS_TS)),
        e(|l| l.set(1, "artifacts", json!(["specs/1_alpha/reports/r.md"]))),
        Expect::Clean(e(|l| {
            l.set(1, "artifacts", json!(["specs/1_alpha/reports/r.md"]));
            l.add_at(4, "delta", OURS_TS);
        })),
    ));

    // Different tasks changed: every pair of the three tasks, status on both.
    for (x, y) in [(1, 2), (2, 3), (1, 3), (3, 1)] {
        c.push(case(
            format!("status of task {x} on ours, task {y} on theirs"),
            e(move |l| l.status(x, "planned", OURS_TS)),
            e(move |l| l.status(y, "researched", THEIRS_TS)),
            Expect::Clean(e(move |l| {
                l.status(x, "planned", OURS_TS);
                l.status(y, "researched", THEIRS_TS);
            })),
        ));
    }
    c.push(case(
        "description of one task, priority of another",
        e(|l| l.set(1, "description", json!("Ours."))),
        e(|l| l.set(3, "priority", json!("high"))),
        Expect::Clean(e(|l| {
            l.set(1, "description", json!("Ours."));
            l.set(3, "priority", json!("high"));
        })),
    ));
    c.push(case(
        "a task completed on ours, another blocked on theirs, both files",
        e(|l| {
            l.status(1, "completed", OURS_TS);
            l.set(1, "completion_summary", json!("Done."));
        }),
        e(|l| {
            l.status(2, "blocked", THEIRS_TS);
            l.task(2).bullets.push("- **Blocked on**: task 1".into());
        }),
        Expect::Clean(e(|l| {
            l.status(1, "completed", OURS_TS);
            l.set(1, "completion_summary", json!("Done."));
            l.status(2, "blocked", THEIRS_TS);
            l.task(2).bullets.push("- **Blocked on**: task 1".into());
        })),
    ));

    // Same task, different fields.
    let same_task: Vec<(&str, ModelEdit, ModelEdit)> = vec![
        (
            "status and priority",
            |l| l.status(2, "planned", OURS_TS),
            |l| {
                l.set(2, "priority", json!("high"));
                l.set(2, "last_updated", json!(THEIRS_TS));
            },
        ),
        (
            "status and a new TODO bullet",
            |l| l.status(2, "planned", OURS_TS),
            |l| {
                l.task(2).bullets.push("- **Priority**: high".into());
                l.set(2, "priority", json!("high"));
                l.set(2, "last_updated", json!(THEIRS_TS));
            },
        ),
        (
            "description and artifacts",
            |l| {
                l.task(1).desc = "Rewritten by ours.".into();
                l.set(1, "description", json!("Rewritten by ours."));
                l.set(1, "last_updated", json!(OURS_TS));
            },
            |l| {
                l.set(1, "artifacts", json!([{"path": "specs/1_alpha/plans/implementation-001.md", "type": "plan"}]));
                l.set(1, "last_updated", json!(THEIRS_TS));
            },
        ),
        (
            "a field added on each side",
            |l| {
                l.set(3, "effort", json!("2 hours"));
                l.set(3, "last_updated", json!(OURS_TS));
            },
            |l| {
                l.set(3, "session_id", json!("sess_1773695483_a1b2c3"));
                l.set(3, "last_updated", json!(THEIRS_TS));
            },
        ),
        (
            "a field removed on one side, another changed",
            |l| {
                l.unset(3, "created");
            },
            |l| l.status(3, "researched", THEIRS_TS),
        ),
        (
            "title in TODO.md and status",
            |l| l.task(1).title = "Renamed by ours".into(),
            |l| l.status(1, "planned", THEIRS_TS),
        ),
        (
            "both bump last_updated only",
            |l| l.set(2, "last_updated", json!(OURS_TS)),
            |l| l.set(2, "last_updated", json!(THEIRS_TS)),
        ),
        (
            "planned stamp and priority",
            |l| {
                l.status(2, "planned", OURS_TS);
                l.set(2, "planned", json!(OURS_TS));
            },
            |l| l.set(2, "priority", json!("low")),
        ),
    ];
    for (name, ours, theirs) in same_task {
        c.push(case(
            format!("same task, different fields: {name}"),
            e(ours),
            e(theirs),
            // Theirs writes the later stamp, so applying theirs second leaves the stamp that wins.
            Expect::Clean(e(move |l| {
                ours(l);
                theirs(l);
            })),
        ));
    }

    // The same field.
    c.push(case(
        "same field, same value on both sides",
        e(|l| l.status(2, "planned", OURS_TS)),
        e(|l| l.status(2, "planned", OURS_TS)),
        Expect::Clean(e(|l| l.status(2, "planned", OURS_TS))),
    ));
    c.push(case(
        "same field: status completed against blocked",
        e(|l| l.status(2, "completed", OURS_TS)),
        e(|l| l.status(2, "blocked", THEIRS_TS)),
        Expect::Conflict(&["task 2", "`status`", "\"completed\"", "\"blocked\""]),
    ));
    c.push(case(
        "same field: description",
        e(|l| l.set(1, "description", json!("Ours."))),
        e(|l| l.set(1, "description", json!("Theirs."))),
        Expect::Conflict(&["task 1", "`description`"]),
    ));
    c.push(case(
        "same field: priority added differently",
        e(|l| l.set(3, "priority", json!("high"))),
        e(|l| l.set(3, "priority", json!("low"))),
        Expect::Conflict(&["task 3", "`priority`"]),
    ));
    c.push(case(
        "same field: TODO.md title",
        e(|l| l.task(2).title = "Ours title".into()),
        e(|l| l.task(2).title = "Theirs title".into()),
        Expect::Conflict(&["task 2", "heading"]),
    ));
    c.push(case(
        "same field: top-level key",
        e(|l| l.top[0].1 = json!({"status": "concerning"})),
        e(|l| l.top[0].1 = json!({"status": "critical"})),
        Expect::Conflict(&["`repository_health`"]),
    ));
    c.push(case(
        "same field plus clean changes elsewhere",
        e(|l| {
            l.status(1, "planned", OURS_TS);
            l.status(3, "implementing", OURS_TS);
        }),
        e(|l| {
            l.status(2, "planned", THEIRS_TS);
            l.status(3, "blocked", THEIRS_TS);
        }),
        Expect::Conflict(&["task 3", "`status`"]),
    ));

    // Deletions.
    c.push(case(
        "a task deleted on ours, untouched on theirs",
        e(|l| l.remove(2)),
        e(|l| l.status(1, "planned", THEIRS_TS)),
        Expect::Clean(e(|l| {
            l.remove(2);
            l.status(1, "planned", THEIRS_TS);
        })),
    ));
    c.push(case(
        "a task deleted on theirs, another changed on ours",
        e(|l| l.status(3, "planned", OURS_TS)),
        e(|l| l.remove(1)),
        Expect::Clean(e(|l| {
            l.status(3, "planned", OURS_TS);
            l.remove(1);
        })),
    ));
    c.push(case(
        "the same task deleted on both sides",
        e(|l| l.remove(2)),
        e(|l| l.remove(2)),
        Expect::Clean(e(|l| l.remove(2))),
    ));
    c.push(case(
        "deleted on ours, changed on theirs",
        e(|l| l.remove(2)),
        e(|l| l.status(2, "planned", THEIRS_TS)),
        Expect::Conflict(&["task 2", "deleted in ours, changed in theirs"]),
    ));
    c.push(case(
        "changed on ours, deleted on theirs",
        e(|l| l.status(1, "planned", OURS_TS)),
        e(|l| l.remove(1)),
        Expect::Conflict(&["task 1", "changed in ours, deleted in theirs"]),
    ));
    c.push(case(
        "different tasks deleted on each side",
        e(|l| l.remove(1)),
        e(|l| l.remove(3)),
        Expect::Clean(e(|l| {
            l.remove(1);
            l.remove(3);
        })),
    ));
    c.push(case(
        "a deletion on ours, a new task on theirs",
        e(|l| l.remove(3)),
        e(|l| l.add_at(4, "delta", THEIRS_TS)),
        Expect::Clean(e(|l| {
            l.remove(3);
            l.add_at(4, "delta", THEIRS_TS);
        })),
    ));

    // Number collisions.
    c.push(case(
        "two different tasks created under one number",
        e(|l| l.add_at(4, "ours_feature", OURS_TS)),
        e(|l| l.add_at(4, "theirs_feature", THEIRS_TS)),
        Expect::Conflict(&["task 4", "ours_feature", "theirs_feature", "renumber"]),
    ));
    c.push(case(
        "two different tasks under one number, among clean appends",
        e(|l| {
            l.add_at(4, "shared_number_a", OURS_TS);
            l.add_at(6, "only_ours", OURS_TS);
        }),
        e(|l| {
            l.add_at(4, "shared_number_b", THEIRS_TS);
            l.add_at(7, "only_theirs", THEIRS_TS);
        }),
        Expect::Conflict(&["task 4", "shared_number_a", "shared_number_b"]),
    ));
    c.push(case(
        "the same task created identically on both sides",
        e(|l| l.add_at(4, "same", OURS_TS)),
        e(|l| l.add_at(4, "same", OURS_TS)),
        Expect::Clean(e(|l| l.add_at(4, "same", OURS_TS))),
    ));
    c.push(case(
        "the same task created on both sides, then changed differently in different fields",
        e(|l| {
            l.add_at(4, "same", OURS_TS);
            l.set(4, "priority", json!("high"));
        }),
        e(|l| {
            l.add_at(4, "same", OURS_TS);
            l.set(4, "effort", json!("1 hour"));
        }),
        Expect::Clean(e(|l| {
            l.add_at(4, "same", OURS_TS);
            l.set(4, "priority", json!("high"));
            l.set(4, "effort", json!("1 hour"));
        })),
    ));

    // TODO.md-only edits.
    c.push(case(
        "TODO.md only: descriptions of different tasks",
        e(|l| l.task(1).desc = "Ours wrote this.".into()),
        e(|l| l.task(3).desc = "Theirs wrote this.".into()),
        Expect::Clean(e(|l| {
            l.task(1).desc = "Ours wrote this.".into();
            l.task(3).desc = "Theirs wrote this.".into();
        })),
    ));
    c.push(case(
        "TODO.md only: description and a bullet of one task",
        e(|l| l.task(2).desc = "Ours wrote this.".into()),
        e(|l| l.task(2).bullets.push("- **Dependencies**: 1".into())),
        Expect::Clean(e(|l| {
            l.task(2).desc = "Ours wrote this.".into();
            l.task(2).bullets.push("- **Dependencies**: 1".into());
        })),
    ));
    c.push(case(
        "TODO.md only: the same description",
        e(|l| l.task(2).desc = "Ours wrote this.".into()),
        e(|l| l.task(2).desc = "Theirs wrote this.".into()),
        Expect::Conflict(&["task 2", "Description"]),
    ));
    c.push(case(
        "TODO.md only: preamble on ours, a block on theirs",
        e(|l| l.preamble = "Read the contributing guide first.\n\n".into()),
        e(|l| l.task(1).desc = "Theirs wrote this.".into()),
        Expect::Clean(e(|l| {
            l.preamble = "Read the contributing guide first.\n\n".into();
            l.task(1).desc = "Theirs wrote this.".into();
        })),
    ));
    c.push(case(
        "TODO.md only: preamble on theirs, a bullet on ours",
        e(|l| l.task(3).bullets.push("- **Related**: 2".into())),
        e(|l| l.preamble = "Theirs' note.\n\n".into()),
        Expect::Clean(e(|l| {
            l.task(3).bullets.push("- **Related**: 2".into());
            l.preamble = "Theirs' note.\n\n".into();
        })),
    ));
    c.push(case(
        "TODO.md only: the preamble on both sides",
        e(|l| l.preamble = "Ours' note.\n\n".into()),
        e(|l| l.preamble = "Theirs' note.\n\n".into()),
        Expect::Conflict(&["outside the task blocks"]),
    ));
    c.push(case(
        "TODO.md only on one side, state.json only on the other",
        e(|l| l.task(1).bullets.push("- **Files**: src/a.rs".into())),
        e(|l| l.set(1, "priority", json!("medium"))),
        Expect::Clean(e(|l| {
            l.task(1).bullets.push("- **Files**: src/a.rs".into());
            l.set(1, "priority", json!("medium"));
        })),
    ));

    // A side not printed as jq prints it (compact JSON, as a hand edit or another tool leaves it).
    for (which, label) in [(0, "theirs"), (1, "ours"), (2, "both sides"), (3, "the base")] {
        c.push(case(
            format!("state.json not jq-printed on {label}"),
            e(move |l| {
                l.status(1, "planned", OURS_TS);
                l.compact = which == 1 || which == 2;
            }),
            e(move |l| {
                l.status(3, "researched", THEIRS_TS);
                l.compact = which == 0 || which == 2;
            }),
            Expect::Clean(e(|l| {
                l.status(1, "planned", OURS_TS);
                l.status(3, "researched", THEIRS_TS);
                l.compact = false;
            })),
        ));
    }

    // The top level and the counters.
    c.push(case(
        "next_project_number raised on both sides takes the larger",
        e(|l| l.next = 10),
        e(|l| {
            l.next = 12;
            l.status(2, "planned", THEIRS_TS);
        }),
        Expect::Clean(e(|l| {
            l.next = 12;
            l.status(2, "planned", THEIRS_TS);
        })),
    ));
    c.push(case(
        "a top-level key added on each side",
        e(|l| l.top.push(("last_updated".into(), json!(OURS_TS)))),
        e(|l| l.top.push(("vault_count".into(), json!(2)))),
        Expect::Clean(e(|l| {
            l.top.push(("last_updated".into(), json!(OURS_TS)));
            l.top.push(("vault_count".into(), json!(2)));
        })),
    ));
    c.push(case(
        "top-level last_updated on both sides takes the later",
        e(|l| l.top.push(("last_updated".into(), json!(OURS_TS)))),
        e(|l| l.top.push(("last_updated".into(), json!(THEIRS_TS)))),
        Expect::Clean(e(|l| l.top.push(("last_updated".into(), json!(THEIRS_TS))))),
    ));
    c.push(case(
        "a non-ASCII description on one side, a status on the other",
        e(|l| l.set(1, "description", json!("Édition spéciale, ü"))),
        e(|l| l.status(1, "planned", THEIRS_TS)),
        Expect::Clean(e(|l| {
            l.set(1, "description", json!("Édition spéciale, ü"));
            l.status(1, "planned", THEIRS_TS);
        })),
    ));
    c.push(case(
        "nothing changed on theirs",
        e(|l| l.status(2, "planned", OURS_TS)),
        nothing(),
        Expect::Clean(e(|l| l.status(2, "planned", OURS_TS))),
    ));
    c.push(case(
        "many tasks changed on both sides at once",
        e(|l| {
            for n in 4..=9 {
                l.add_at(n, &format!("bulk{n}"), OURS_TS);
            }
            l.status(1, "planned", OURS_TS);
        }),
        e(|l| {
            l.status(2, "planned", THEIRS_TS);
            l.status(3, "researched", THEIRS_TS);
            l.task(2).bullets.push("- **Priority**: high".into());
        }),
        Expect::Clean(e(|l| {
            for n in 4..=9 {
                l.add_at(n, &format!("bulk{n}"), OURS_TS);
            }
            l.status(1, "planned", OURS_TS);
            l.status(2, "planned", THEIRS_TS);
            l.status(3, "researched", THEIRS_TS);
            l.task(2).bullets.push("- **Priority**: high".into());
        })),
    ));
    c
}

fn jq_available() -> bool {
    Command::new("jq").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// What `jq .` prints for `value`.
fn jq_print(value: &Value) -> String {
    use std::io::Write;
    let mut child = Command::new("jq")
        .arg(".")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run jq");
    child.stdin.take().expect("stdin").write_all(value.to_string().as_bytes()).expect("write");
    let out = child.wait_with_output().expect("jq");
    String::from_utf8(out.stdout).expect("utf8")
}

fn write_ledger(repo: &TestRepo, l: &L) {
    repo.write("specs/state.json", &l.state_text());
    repo.write("specs/TODO.md", &l.todo_text());
}

/// The outcome of one merge.
struct Merged {
    ok: bool,
    state: String,
    todo: String,
    output: String,
    unmerged: String,
}

/// Builds base, ours (main) and theirs (a branch) as commits and runs `git merge theirs`.
fn merge_case(c: &Case, driver: bool) -> Merged {
    let repo = TestRepo::empty();
    let base = L::base();
    write_ledger(&repo, &base);
    repo.write(".gitattributes", "specs/state.json merge=postflight\nspecs/TODO.md merge=postflight\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "base"]);
    if driver {
        let out = repo.run(&["hooks", "install", "--merge"]);
        assert!(out.status.success(), "{}", render(&out));
    }
    // The base may itself be compact: the base-compact case sets it on both sides.
    let mut ours = base.clone();
    (c.ours)(&mut ours);
    let mut theirs = base.clone();
    (c.theirs)(&mut theirs);
    if c.name.ends_with("the base") {
        let mut b = base.clone();
        b.compact = true;
        write_ledger(&repo, &b);
        repo.git(&["commit", "-q", "-am", "base, compact"]);
    }
    repo.git(&["checkout", "-q", "-b", "theirs"]);
    write_ledger(&repo, &theirs);
    repo.git(&["commit", "-q", "--allow-empty", "-am", "theirs"]);
    repo.git(&["checkout", "-q", "main"]);
    write_ledger(&repo, &ours);
    repo.git(&["commit", "-q", "--allow-empty", "-am", "ours"]);
    let out = repo.command("git").args(["merge", "--no-edit", "theirs"]).output().expect("git merge");
    Merged {
        ok: out.status.success(),
        state: repo.read("specs/state.json"),
        todo: repo.read("specs/TODO.md"),
        output: format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        unmerged: repo.git(&["diff", "--name-only", "--diff-filter=U"]),
    }
}

/// Whether a merge's result is the case's expected one (always false for a conflict case).
fn expected_files(c: &Case) -> Option<(String, String)> {
    let Expect::Clean(edit) = &c.expect else { return None };
    let mut l = L::base();
    edit(&mut l);
    Some((jq_print(&l.state()), l.todo_text()))
}

#[test]
fn the_corpus_merges_through_git_merge_with_the_driver_as_expected() {
    if !jq_available() {
        return skipped("jq not on PATH: the merge-driver corpus needs jq 1.6 as its oracle");
    }
    let cases = corpus();
    assert!(cases.len() >= 50, "the corpus has {} cases", cases.len());
    let mut failures = Vec::new();
    let (mut clean, mut conflicts) = (0, 0);
    for c in &cases {
        let m = merge_case(c, true);
        match (&c.expect, expected_files(c)) {
            (Expect::Clean(_), Some((state, todo))) => {
                clean += 1;
                if !m.ok {
                    failures.push(format!("{}: expected a clean merge:\n{}", c.name, m.output));
                } else if m.state != state {
                    failures.push(format!("{}: state.json\n--- got\n{}--- expected (jq .)\n{state}", c.name, m.state));
                } else if m.todo != todo {
                    failures.push(format!("{}: TODO.md\n--- got\n{}--- expected\n{todo}", c.name, m.todo));
                }
            }
            (Expect::Conflict(words), _) => {
                conflicts += 1;
                if m.ok {
                    failures.push(format!("{}: expected a conflict, git merged:\n{}\n{}", c.name, m.state, m.todo));
                } else if m.unmerged.trim().is_empty() {
                    failures.push(format!("{}: no path left unmerged:\n{}", c.name, m.output));
                } else if let Some(w) = words.iter().find(|w| !m.output.contains(**w)) {
                    failures.push(format!("{}: the report does not name {w}:\n{}", c.name, m.output));
                }
            }
            _ => unreachable!("a clean case has expected files"),
        }
    }
    eprintln!(
        "merge-driver corpus: {} cases ({clean} clean, {conflicts} conflicts), {} as expected",
        cases.len(),
        cases.len() - failures.len()
    );
    assert!(failures.is_empty(), "{} of {} cases failed:\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}

#[test]
fn the_corpus_without_the_driver_merges_as_text() {
    if !jq_available() {
        return skipped("jq not on PATH: the merge-driver corpus needs jq 1.6 as its oracle");
    }
    let cases = corpus();
    let (mut text_clean, mut text_right, mut text_wrong, mut lost_conflicts) = (0, 0, 0, 0);
    let (mut expected_clean, mut expected_conflict) = (0, 0);
    for c in &cases {
        let m = merge_case(c, false);
        assert!(!m.output.contains("postflight merge-driver"), "{}: the driver ran without its config", c.name);
        match expected_files(c) {
            Some((state, todo)) => {
                expected_clean += 1;
                if m.ok {
                    text_clean += 1;
                    // Right: the same content (jq's layout aside, as text merges keep each side's).
                    let same_state =
                        serde_json::from_str::<Value>(&m.state).ok() == serde_json::from_str::<Value>(&state).ok();
                    if same_state && m.todo == todo {
                        text_right += 1;
                    } else {
                        text_wrong += 1;
                    }
                }
            }
            None => {
                expected_conflict += 1;
                if m.ok {
                    text_clean += 1;
                    lost_conflicts += 1;
                }
            }
        }
    }
    // Printed for docs/parallel.md.
    eprintln!(
        "merge-driver corpus without the driver: {text_clean} of {} merge cleanly as text ({text_right} of the {expected_clean} clean cases with the expected content, {text_wrong} clean but wrong; {lost_conflicts} of the {expected_conflict} true conflicts merged silently)",
        cases.len()
    );
    assert!(
        text_right < expected_clean,
        "the text merge got every clean case right: the corpus does not show what the driver is for"
    );
}

#[test]
fn renumber_moves_a_task_and_refuses_a_number_in_use() {
    let repo = sample_repo();
    let before = repo.snapshot();
    let out = repo.run(&["task", "renumber", "350", "351"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("351 is in use"), "{}", render(&out));
    assert_eq!(repo.snapshot(), before, "a refused renumber changes nothing");
    let out = repo.run(&["task", "renumber", "999", "400"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    assert_eq!(repo.snapshot(), before);

    let out = repo.run(&["task", "renumber", "350", "360", "--json"]);
    assert!(out.status.success(), "{}", render(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["moved"]["to"], "specs/360_add_feature");
    assert!(repo.exists("specs/360_add_feature/plans/implementation-001.md") && !repo.exists("specs/350_add_feature"));
    let entry = repo.state_entry(360);
    assert_eq!(entry["artifacts"][0]["path"], "specs/360_add_feature/plans/implementation-001.md");
    let state: Value = serde_json::from_str(&repo.read("specs/state.json")).expect("json");
    assert_eq!(state["next_project_number"], 361);
    assert_eq!(repo.read("specs/state.json"), jq_print_or_self(&state, &repo.read("specs/state.json")));
    let todo = repo.read("specs/TODO.md");
    assert!(todo.contains("### 360. Add feature") && !todo.contains("### 350."), "{todo}");
    assert!(
        todo.contains("(specs/360_add_feature/plans/implementation-001.md)")
            && todo.contains("next_project_number: 361"),
        "{todo}"
    );
    let plan = repo.read("specs/360_add_feature/plans/implementation-001.md");
    assert!(
        plan.starts_with("# Implementation Plan: Task #360\n") && plan.contains("- **Task**: 360 - add_feature"),
        "{plan}"
    );
    let out = repo.run(&["check"]);
    assert!(out.status.success(), "{}", render(&out));
}

/// The support repository with task 352's artifact present, so that `check` is clean on it.
fn sample_repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write("specs/352_odd_legacy_task/reports/research-001.md", "# Research\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "artifact"]);
    repo
}

/// `jq .` of `value` when jq is there, else `text` itself (the equality is then not checked).
fn jq_print_or_self(value: &Value, text: &str) -> String {
    if jq_available() {
        jq_print(value)
    } else {
        text.to_owned()
    }
}

#[test]
fn a_collision_is_resolved_by_renumbering_one_branch_and_merging_again() {
    let repo = sample_repo();
    assert!(repo.run(&["hooks", "install", "--merge"]).status.success());
    repo.git(&["add", ".gitattributes"]);
    repo.git(&["commit", "-q", "-m", "attributes"]);
    repo.git(&["checkout", "-q", "-b", "feature"]);
    assert!(repo.run(&["task", "new", "Feature side", "--plan"]).status.success());
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "feature task"]);
    repo.git(&["checkout", "-q", "main"]);
    assert!(repo.run(&["task", "new", "Main side"]).status.success());
    repo.git(&["commit", "-q", "-am", "main task"]);
    let out = repo.command("git").args(["merge", "--no-edit", "feature"]).output().expect("merge");
    let text = render(&out);
    assert!(
        !out.status.success()
            && text.contains("task 353")
            && text.contains("feature_side")
            && text.contains("main_side"),
        "{text}"
    );
    repo.git(&["merge", "--abort"]);
    repo.git(&["checkout", "-q", "feature"]);
    let out = repo.run(&["task", "renumber", "353", "354"]);
    assert!(out.status.success(), "{}", render(&out));
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "renumber"]);
    repo.git(&["checkout", "-q", "main"]);
    let out = repo.command("git").args(["merge", "--no-edit", "feature"]).output().expect("merge");
    assert!(out.status.success(), "{}", render(&out));
    let state: Value = serde_json::from_str(&repo.read("specs/state.json")).expect("json");
    let numbers: Vec<u64> = state["active_projects"]
        .as_array()
        .expect("arr")
        .iter()
        .map(|e| e["project_number"].as_u64().expect("n"))
        .collect();
    assert_eq!(numbers, [354, 353, 352, 351, 350]);
    assert_eq!(state["next_project_number"], 355);
    let out = repo.run(&["check"]);
    assert!(out.status.success(), "{}", render(&out));
}

#[test]
fn check_and_doctor_report_an_attribute_whose_driver_is_not_configured() {
    let repo = sample_repo();
    repo.write(".gitattributes", "specs/state.json merge=postflight\n");
    for ci in [None, Some("true")] {
        let mut cmd = repo.xtask(&["check", "--json"]);
        if let Some(v) = ci {
            cmd.env("CI", v);
        }
        let out = cmd.output().expect("check");
        assert_eq!(out.status.code(), Some(0), "a warning, not an error (CI={ci:?}): {}", render(&out));
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        let f = v["findings"].as_array().expect("findings").iter().find(|f| f["rule"] == "merge-driver").cloned();
        let f = f.unwrap_or_else(|| panic!("no merge-driver finding: {v}"));
        assert_eq!(f["severity"], "warning");
        assert_eq!(f["file"], ".gitattributes");
        let mut cmd = repo.xtask(&["doctor", "--json"]);
        if let Some(v) = ci {
            cmd.env("CI", v);
        }
        let out = cmd.output().expect("doctor");
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        let d = v["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .find(|c| c["name"] == "merge-driver")
            .cloned()
            .expect("check");
        assert_eq!(d["level"], "warn", "{d}");
        assert!(d["fix"].as_str().expect("fix").contains("hooks install --merge"), "{d}");
    }
    // Configured with the wrong placeholders (Beads' old mistake): doctor names it.
    repo.git(&["config", "merge.postflight.driver", "xtask merge-driver %A %O %B"]);
    let out = repo.run(&["doctor", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let d =
        v["checks"].as_array().expect("checks").iter().find(|c| c["name"] == "merge-driver").cloned().expect("check");
    assert!(d["level"] == "warn" && d["detail"].as_str().expect("detail").contains("%A %O %B"), "{d}");
    // Installed: no finding, doctor ok; uninstalled: the lines and the config are gone.
    let out = repo.run(&["hooks", "install", "--merge"]);
    assert!(out.status.success(), "{}", render(&out));
    assert_eq!(repo.read(".gitattributes"), "specs/state.json merge=postflight\nspecs/TODO.md merge=postflight\n");
    let out = repo.run(&["check", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(v["findings"].as_array().expect("findings").iter().all(|f| f["rule"] != "merge-driver"), "{v}");
    let out = repo.run(&["doctor", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let d =
        v["checks"].as_array().expect("checks").iter().find(|c| c["name"] == "merge-driver").cloned().expect("check");
    assert_eq!(d["level"], "ok", "{d}");
    let again = repo.run(&["hooks", "install", "--merge"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("already up to date"), "{}", render(&again));
    let out = repo.run(&["hooks", "uninstall", "--merge"]);
    assert!(out.status.success(), "{}", render(&out));
    assert_eq!(repo.read(".gitattributes"), "");
    let cfg = repo.command("git").args(["config", "--get", "merge.postflight.driver"]).output().expect("git");
    assert_eq!(cfg.status.code(), Some(1), "the config is gone");
}

#[test]
fn a_rebase_replays_each_commit_through_the_driver() {
    {
        let repo = sample_repo();
        repo.write(".gitattributes", "specs/state.json merge=postflight\nspecs/TODO.md merge=postflight\n");
        repo.git(&["add", ".gitattributes"]);
        repo.git(&["commit", "-q", "-m", "attributes"]);
        assert!(repo.run(&["hooks", "install", "--merge"]).status.success());
        // Count the driver's clean calls (git runs the command through the shell).
        let command = repo.git(&["config", "--get", "merge.postflight.driver"]);
        repo.git(&[
            "config",
            "merge.postflight.driver",
            &format!("{} && echo call >> .git/driver-calls", command.trim()),
        ]);
        repo.git(&["checkout", "-q", "-b", "feature"]);
        for args in [&["set-status", "350", "blocked"][..], &["task", "new", "Feature task"][..]] {
            let out = repo.run(args);
            assert!(out.status.success(), "{}", render(&out));
            repo.git(&["add", "-A"]);
            repo.git(&["commit", "-q", "-m", &args.join(" ")]);
        }
        repo.git(&["checkout", "-q", "main"]);
        let out = repo.run(&["set-status", "352", "implementing"]);
        assert!(out.status.success(), "{}", render(&out));
        repo.git(&["commit", "-q", "-am", "352 implementing"]);
        repo.git(&["checkout", "-q", "feature"]);
        let out = repo.command("git").args(["rebase", "main"]).output().expect("rebase");
        assert!(out.status.success(), "{}", render(&out));
        let calls = std::fs::read_to_string(repo.file(".git/driver-calls")).unwrap_or_default().lines().count();
        assert_eq!(calls, 4, "both files, for each of the two replayed commits");
        assert_eq!(repo.state_entry(352)["status"], "implementing");
        assert_eq!(repo.state_entry(350)["status"], "blocked");
        assert_eq!(repo.state_entry(353)["project_name"], "feature_task");
        let todo = repo.read("specs/TODO.md");
        assert!(
            todo.contains("### 353. Feature task") && todo.contains("[BLOCKED]") && todo.contains("[IMPLEMENTING]"),
            "{todo}"
        );
        let out = repo.run(&["check"]);
        assert!(out.status.success(), "{}", render(&out));
    }
}
