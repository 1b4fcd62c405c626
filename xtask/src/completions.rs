//! `completions`: prints the shell completion script that clap_complete generates from the
//! command line's own definition.

use std::io::Write;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(after_help = "bash: xtask completions bash > ~/.local/share/bash-completion/completions/xtask\n\
                        zsh:  xtask completions zsh > ~/.zfunc/_xtask (with ~/.zfunc on $fpath)\n\
                        fish: xtask completions fish > ~/.config/fish/completions/xtask.fish")]
pub struct CompletionsArgs {
    /// The shell
    shell: clap_complete::Shell,
}

impl CompletionsArgs {
    /// `cmd` is the whole command line's definition (`Cli::command()`, which `main` passes in:
    /// this module does not import `flags.rs`, which imports it).
    pub fn run(self, mut cmd: clap::Command, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        let mut buf = Vec::new();
        clap_complete::generate(self.shell, &mut cmd, "xtask", &mut buf);
        out.write_all(&buf)?;
        Ok(ExitCode::SUCCESS)
    }
}
