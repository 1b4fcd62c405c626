//! `query`: jq filters over specs/state.json (or any JSON file) through `postflight::query`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use postflight::query::{self, Options, Var};

#[derive(clap::Args, Debug)]
pub struct QueryArgs {
    /// The jq filter, e.g. '.active_projects[] | select(.project_number == $num)'
    filter: String,
    /// Bind $NAME to the string VALUE
    #[arg(long = "arg", num_args = 2, value_names = ["NAME", "VALUE"], action = clap::ArgAction::Append)]
    arg: Vec<String>,
    /// Bind $NAME to the parsed JSON value
    #[arg(long = "argjson", num_args = 2, value_names = ["NAME", "JSON"], action = clap::ArgAction::Append)]
    argjson: Vec<String>,
    /// Print strings without quotes
    #[arg(short = 'r', long = "raw-output")]
    raw: bool,
    /// Print each result on one line
    #[arg(short = 'c', long = "compact-output")]
    compact: bool,
    /// Read this JSON file instead of specs/state.json
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
}

impl QueryArgs {
    pub fn run(self, dir: &Path, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        let QueryArgs { filter, arg, argjson, raw, compact, file } = self;
        let mut vars = Vec::new();
        for pair in arg.chunks(2) {
            vars.push(Var::string(&pair[0], &pair[1]));
        }
        for pair in argjson.chunks(2) {
            vars.push(Var::json(&pair[0], &pair[1])?);
        }
        let path = match file {
            Some(f) => dir.join(f),
            None => postflight::repo::Repo::discover(dir)?.specs_dir().join("state.json"),
        };
        let input = std::fs::read(&path).map_err(|e| {
            postflight::Error::refused(format!("cannot read {}: {e}", path.display()), Some("pass --file <PATH>"))
        })?;
        let shown = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
        query::run(&filter, &shown, &input, &vars, Options { raw, compact }, out)?;
        Ok(ExitCode::SUCCESS)
    }
}
