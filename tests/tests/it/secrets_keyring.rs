//! The real binary with the OS keyring: the Secret Service of a gnome-keyring-daemon on a private
//! `dbus-run-session` bus, and the kernel keyring inside `keyctl session`. A missing wrapper program fails the
//! test, naming its Debian package: these tests never pass without a keyring.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::helpers::{stderr, stdout, Sandbox};

/// Unlocks a fresh login keyring, waits (with a deadline) until the daemon owns the Secret Service name, prints
/// the bus address and keeps the bus up until stdin closes.
const SECRET_SERVICE_HOLDER: &str = r#"set -e
printf '%s' pluto-duck-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null
tries=0
until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true'; do
  tries=$((tries + 1))
  [ "$tries" -lt 200 ] || { echo "gnome-keyring-daemon did not take org.freedesktop.secrets within 20 s" >&2; exit 1; }
  sleep 0.1
done
echo "$DBUS_SESSION_BUS_ADDRESS"
exec cat >/dev/null
"#;

fn require(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()));
    assert!(
        found,
        "{program} not found: install the Debian package {package} (scripts/setup.sh installs it); \
         the keyring tests need it and do not skip"
    );
}

/// A private session bus with an unlocked gnome-keyring on it; both end when this is dropped.
struct SecretService {
    holder: Child,
    address: String,
    /// The daemon's HOME, kept for a restart (its login keyring file lives there).
    home: Option<TempDir>,
}

impl SecretService {
    fn start() -> Self {
        // The keyring daemon's files live apart from the sandbox, whose files are checked for leaks.
        Self::start_in(tempfile::tempdir().unwrap())
    }

    /// Stops the bus and the daemon, then starts both again on the same files: a new login session.
    fn restart(mut self) -> Self {
        let home = self.home.take().unwrap();
        drop(self);
        Self::start_in(home)
    }

    fn start_in(home: TempDir) -> Self {
        require("dbus-run-session", "dbus");
        require("dbus-send", "dbus-bin");
        require("gnome-keyring-daemon", "gnome-keyring");
        let runtime = home.path().join("run");
        if !runtime.is_dir() {
            std::fs::create_dir(&runtime).unwrap();
            std::fs::set_permissions(&runtime, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        }
        let mut holder = Command::new("dbus-run-session")
            .args(["--", "sh", "-c", SECRET_SERVICE_HOLDER])
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("share"))
            .env("XDG_RUNTIME_DIR", &runtime)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut address = String::new();
        // The script ends by itself (deadline above) if the daemon does not come up, closing stdout.
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_owned();
        if address.is_empty() {
            let _ = holder.kill();
            let out = holder.wait_with_output().unwrap();
            panic!("no Secret Service session: {}", String::from_utf8_lossy(&out.stderr));
        }
        Self {
            holder,
            address,
            home: Some(home),
        }
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        drop(self.holder.stdin.take());
        let holder = &mut self.holder;
        let ended = (0..200).any(|_| {
            let done = matches!(holder.try_wait(), Ok(Some(_)));
            if !done {
                std::thread::sleep(Duration::from_millis(50));
            }
            done
        });
        if !ended {
            let _ = holder.kill();
            let _ = holder.wait();
        }
    }
}

/// A service name of its own per test, so runs never see each other's entries.
fn unique_service(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("pluto-duck-it-{test}-{}-{nanos}", std::process::id())
}

/// `pluto-duck` with the sandbox's environment, a secrets backend, and no session bus unless one is added.
fn pd(sb: &Sandbox, backend: &str, service: &str) -> Command {
    let mut cmd = sb.cmd();
    cmd.env("PLUTODUCK_SECRETS__BACKEND", backend)
        .env("PLUTODUCK_SECRETS__KEYRING_SERVICE", service)
        .env("XDG_RUNTIME_DIR", sb.path())
        .env_remove("DBUS_SESSION_BUS_ADDRESS");
    cmd
}

/// The same command run by a wrapper program (`keyctl session - pluto-duck ...`).
fn wrapped(inner: Command, wrapper: &[&str]) -> Command {
    let mut cmd = Command::new(wrapper[0]);
    cmd.args(&wrapper[1..]).arg(inner.get_program()).args(inner.get_args());
    for (key, value) in inner.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    if let Some(dir) = inner.get_current_dir() {
        cmd.current_dir(dir);
    }
    cmd.stdin(Stdio::null());
    cmd
}

fn run(mut cmd: Command, args: &[&str]) -> Output {
    cmd.args(args).output().unwrap()
}

/// `secret set NAME` with the value on stdin.
fn set_secret(mut cmd: Command, name: &str, value: &str) -> Output {
    let mut child = cmd
        .args(["secret", "set", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{value}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "secret set {name}: {}", stderr(&out));
    out
}

fn listed(out: &Output) -> Vec<String> {
    assert!(out.status.success(), "secret list: {}", stderr(out));
    stdout(out).lines().map(str::to_owned).collect()
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    hits.push(path.display().to_string());
                }
            }
        }
    }
    hits
}

fn encrypted_files(sb: &Sandbox) -> [std::path::PathBuf; 2] {
    [
        sb.data_dir().join("configs/secrets.enc"),
        sb.path().join("config/pluto-duck/secret.key"),
    ]
}

#[test]
fn auto_puts_secrets_in_the_secret_service_and_nothing_on_disk() {
    let mut ss = SecretService::start();
    let sb = Sandbox::new();
    let service = unique_service("ss");
    let on = |ss: &SecretService| {
        let mut c = pd(&sb, "auto", &service);
        c.env("DBUS_SESSION_BUS_ADDRESS", &ss.address);
        c
    };

    let out = set_secret(on(&ss), "api_token", "tok-in-keyring-4711");
    assert!(
        stderr(&out).contains("secret store selected") && stderr(&out).contains("OS keyring: secret service"),
        "auto picks the secret service and says so: {}",
        stderr(&out)
    );
    set_secret(on(&ss), "pg_main", "pg-pass-in-keyring-0815");
    assert_eq!(listed(&run(on(&ss), &["secret", "list"])), vec!["api_token", "pg_main"]);
    for f in encrypted_files(&sb) {
        assert!(!f.exists(), "{} was created", f.display());
    }

    // The keyring daemon keeps them on disk: a new session (the next login) still has them.
    ss = ss.restart();
    assert_eq!(listed(&run(on(&ss), &["secret", "list"])), vec!["api_token", "pg_main"]);

    // The value is usable: the server resolves its API token from the keyring.
    let mut server = sb.spawn_server_with_env(&[
        ("PLUTODUCK_SECRETS__BACKEND", "auto"),
        ("PLUTODUCK_SECRETS__KEYRING_SERVICE", &service),
        ("DBUS_SESSION_BUS_ADDRESS", &ss.address),
        ("PLUTODUCK_SERVER__API_TOKEN", "secret:api_token"),
    ]);
    let projects = format!("{}/api/v1/projects", server.url);
    let client = reqwest::blocking::Client::new();
    assert_eq!(client.get(&projects).send().unwrap().status(), 401);
    let ok = client.get(&projects).bearer_auth("tok-in-keyring-4711").send().unwrap();
    assert_eq!(ok.status(), 200);
    assert!(server.terminate().success());

    // Neither value reached a file: not the data dir, its logs, the config dir or anything else under HOME.
    for value in ["tok-in-keyring-4711", "pg-pass-in-keyring-0815"] {
        assert_eq!(
            files_containing(sb.path(), value),
            Vec::<String>::new(),
            "{value} leaked"
        );
    }

    assert!(run(on(&ss), &["secret", "delete", "api_token"]).status.success());
    let again = run(on(&ss), &["secret", "delete", "api_token"]);
    assert!(
        !again.status.success() && stderr(&again).contains("not found"),
        "{}",
        stderr(&again)
    );
    assert_eq!(listed(&run(on(&ss), &["secret", "list"])), vec!["pg_main"]);
    assert!(run(on(&ss), &["secret", "delete", "pg_main"]).status.success());
    assert!(listed(&run(on(&ss), &["secret", "list"])).is_empty());
}

#[test]
fn auto_keeps_an_existing_encrypted_file_when_a_keyring_appears() {
    let sb = Sandbox::new();
    let service = unique_service("keep");
    // No session bus: auto falls back to the encrypted file.
    let out = set_secret(pd(&sb, "auto", &service), "old", "old-value-1234");
    assert!(stderr(&out).contains("no OS keyring"), "{}", stderr(&out));
    assert!(sb.data_dir().join("configs/secrets.enc").is_file());

    // A keyring appears later: auto stays with the file, so the secret written before stays reachable.
    let ss = SecretService::start();
    let with_bus = || {
        let mut c = pd(&sb, "auto", &service);
        c.env("DBUS_SESSION_BUS_ADDRESS", &ss.address);
        c
    };
    let out = set_secret(with_bus(), "new", "new-value-5678");
    assert!(stderr(&out).contains("auto: it exists"), "{}", stderr(&out));
    assert_eq!(listed(&run(with_bus(), &["secret", "list"])), vec!["new", "old"]);
    // Forcing the keyring shows it holds none of them.
    let mut keyring = pd(&sb, "keyring", &service);
    keyring.env("DBUS_SESSION_BUS_ADDRESS", &ss.address);
    assert!(listed(&run(keyring, &["secret", "list"])).is_empty());
}

#[test]
fn keyring_backend_uses_the_kernel_keyring_inside_keyctl_session() {
    require("keyctl", "keyutils");
    let sb = Sandbox::new();
    let service = unique_service("keyutils");
    let keyctl = || wrapped(pd(&sb, "keyring", &service), &["keyctl", "session", "-"]);

    let out = set_secret(keyctl(), "pg_main", "kernel-kept-value-31337");
    assert!(
        stderr(&out).contains("OS keyring: kernel keyring") && stderr(&out).contains("forgets secrets at reboot"),
        "no session bus, so the kernel keyring, with a warning: {}",
        stderr(&out)
    );
    assert_eq!(listed(&run(keyctl(), &["secret", "list"])), vec!["pg_main"]);
    for f in encrypted_files(&sb) {
        assert!(!f.exists(), "{} was created", f.display());
    }
    assert_eq!(
        files_containing(sb.path(), "kernel-kept-value-31337"),
        Vec::<String>::new()
    );
    assert!(run(keyctl(), &["secret", "delete", "pg_main"]).status.success());
    assert!(listed(&run(keyctl(), &["secret", "list"])).is_empty());
}

#[test]
fn doctor_reports_the_secret_backend() {
    let ss = SecretService::start();
    let sb = Sandbox::new();
    let service = unique_service("doctor");
    let cmd = || {
        let mut c = pd(&sb, "auto", &service);
        c.env("DBUS_SESSION_BUS_ADDRESS", &ss.address);
        c
    };
    let out = run(cmd(), &["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "secrets")
        .unwrap_or_else(|| panic!("no secrets check: {report}"))
        .clone();
    assert_eq!(check["ok"], true, "{check}");
    assert!(check["detail"].as_str().unwrap().contains("secret service"), "{check}");
    // Probing stored no name.
    assert!(listed(&run(cmd(), &["secret", "list"])).is_empty());
}
