use std::process::ExitCode;

use clap::Parser;
use pluto_duck_bootstrap::{cli::Cli, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // One line, so scripts and people see what went wrong at a glance.
            eprintln!("error: {}", e.message.replace('\n', "; "));
            ExitCode::from(e.exit_code())
        }
    }
}
