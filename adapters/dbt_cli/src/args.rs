//! The dbt command line of an invocation.

use std::ffi::OsString;

use pluto_duck_application::ports::{DbtCommand, DbtInvocation, TransformError};

/// `dbt <command> <flags>`. Events come as JSON lines on stdout at debug level: `NodeStart`, `NodeFinished` and
/// `CommandCompleted` are debug events. dbt's own log file goes to the invocation's target path.
pub(crate) fn command_line(inv: &DbtInvocation) -> Result<Vec<OsString>, TransformError> {
    let mut args: Vec<OsString> = Vec::with_capacity(24);
    let mut flag = |name: &str| args.push(name.into());
    match inv.command {
        DbtCommand::DocsGenerate => {
            flag("docs");
            flag("generate");
        }
        other => flag(other.as_str()),
    }
    for f in ["--log-format", "json", "--log-level", "debug", "--no-use-colors"] {
        args.push(f.into());
    }
    args.push("--project-dir".into());
    args.push(inv.project_dir.clone().into_os_string());
    args.push("--profiles-dir".into());
    args.push(inv.profiles_dir.clone().into_os_string());
    args.push("--target-path".into());
    args.push(inv.target_path.clone().into_os_string());
    args.push("--log-path".into());
    args.push(inv.target_path.clone().into_os_string());
    if let Some(target) = &inv.target {
        args.push("--target".into());
        args.push(target.into());
    }
    if let Some(threads) = inv.threads {
        args.push("--threads".into());
        args.push(threads.to_string().into());
    }
    for s in &inv.select {
        args.push("--select".into());
        args.push(s.into());
    }
    for s in &inv.exclude {
        args.push("--exclude".into());
        args.push(s.into());
    }
    if !inv.vars.is_empty() {
        let vars = serde_json::to_string(&inv.vars)
            .map_err(|e| TransformError::InvalidInvocation(format!("vars cannot be written as JSON: {e}")))?;
        args.push("--vars".into());
        args.push(vars.into());
    }
    if inv.full_refresh {
        args.push("--full-refresh".into());
    }
    if inv.command == DbtCommand::List {
        // One JSON object per selected node, read back into `listed`.
        for f in ["--output", "json", "--output-keys", "unique_id"] {
            args.push(f.into());
        }
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(inv: &DbtInvocation) -> Vec<String> {
        command_line(inv)
            .unwrap()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn carries_every_flag_of_the_invocation() {
        let mut inv = DbtInvocation::new(DbtCommand::Build, "/p", "/profiles", "/t/1")
            .select("stg_orders+")
            .select("tag:nightly")
            .exclude("orders")
            .var("start", serde_json::json!("2024-01-01"))
            .full_refresh(true);
        inv.target = Some("local".into());
        inv.threads = Some(4);
        let l = line(&inv).join(" ");
        assert!(
            l.starts_with("build --log-format json --log-level debug --no-use-colors"),
            "{l}"
        );
        for part in [
            "--project-dir /p",
            "--profiles-dir /profiles",
            "--target-path /t/1",
            "--log-path /t/1",
            "--target local",
            "--threads 4",
            "--select stg_orders+ --select tag:nightly",
            "--exclude orders",
            r#"--vars {"start":"2024-01-01"}"#,
            "--full-refresh",
        ] {
            assert!(l.contains(part), "{part} in {l}");
        }
    }

    #[test]
    fn docs_generate_and_ls_have_their_words() {
        let l = line(&DbtInvocation::new(DbtCommand::DocsGenerate, "/p", "/p", "/t"));
        assert_eq!(&l[..2], ["docs", "generate"]);
        let l = line(&DbtInvocation::new(DbtCommand::List, "/p", "/p", "/t")).join(" ");
        assert!(
            l.starts_with("ls ") && l.ends_with("--output json --output-keys unique_id"),
            "{l}"
        );
        assert!(!l.contains("--vars"), "no empty vars: {l}");
    }
}
