//! `completions`: prints the shell completion script that clap_complete generates from the
//! command line's own definition.

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;

#[derive(clap::Args, Debug)]
#[command(after_help = "bash: xtask completions bash > ~/.local/share/bash-completion/completions/xtask\n\
                        zsh:  xtask completions zsh > ~/.zfunc/_xtask (with ~/.zfunc on $fpath)\n\
                        fish: xtask completions fish > ~/.config/fish/completions/xtask.fish")]
pub struct CompletionsArgs {
    /// The shell
    shell: clap_complete::Shell,
}

impl CompletionsArgs {
    pub fn run(self, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        let mut cmd = crate::flags::Cli::command();
        let mut buf = Vec::new();
        clap_complete::generate(self.shell, &mut cmd, "xtask", &mut buf);
        out.write_all(&buf)?;
        Ok(ExitCode::SUCCESS)
    }
}
