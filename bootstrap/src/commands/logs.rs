use std::io::{Read, Seek, SeekFrom};
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::LogsArgs;
use crate::config::Config;
use crate::error::{CliError, CliResult};

/// Prints the last lines of the server log, and with `--follow` everything appended after.
pub async fn logs(config: &Config, args: &LogsArgs) -> CliResult<ExitCode> {
    let path = config.log_file();
    let mut file = std::fs::File::open(&path).map_err(|e| {
        CliError::new(
            pluto_duck_application::ErrorKind::NotFound,
            format!(
                "no server log at {} ({e}); has `pluto-duck serve` run with this data dir?",
                path.display()
            ),
        )
    })?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines[lines.len().saturating_sub(args.lines)..] {
        println!("{line}");
    }
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut pos = file.stream_position()?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        let len = std::fs::metadata(&path)?.len();
        if len < pos {
            pos = 0; // truncated or replaced
        }
        if len > pos {
            file = std::fs::File::open(&path)?;
            file.seek(SeekFrom::Start(pos))?;
            let mut chunk = String::new();
            file.read_to_string(&mut chunk)?;
            print!("{chunk}");
            pos = len;
        }
    }
}
