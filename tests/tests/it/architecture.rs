//! The layering of STYLE.md, enforced: arrows point inward only.

use std::path::Path;
use std::process::Command;

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn cargo(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(workspace_root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn domain_depends_on_no_framework_or_engine() {
    let tree = cargo(&[
        "tree",
        "--offline",
        "-p",
        "pluto-duck-domain",
        "-e",
        "normal",
        "--prefix",
        "none",
    ]);
    let crates: Vec<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(
        crates.contains(&"pluto-duck-domain"),
        "unexpected cargo tree output: {tree}"
    );
    for forbidden in ["serde", "sqlx", "duckdb", "axum", "utoipa", "tokio"] {
        assert!(
            !crates
                .iter()
                .any(|c| *c == forbidden || c.starts_with(&format!("{forbidden}-"))),
            "domain depends on {forbidden}:\n{tree}"
        );
    }
}

#[test]
fn adapters_do_not_depend_on_each_other_and_inner_layers_not_on_adapters() {
    let meta: serde_json::Value =
        serde_json::from_str(&cargo(&["metadata", "--offline", "--format-version", "1", "--no-deps"])).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let in_dir = |p: &serde_json::Value, dir: &str| {
        p["manifest_path"].as_str().unwrap().contains(&format!(
            "{}{dir}{}",
            std::path::MAIN_SEPARATOR,
            std::path::MAIN_SEPARATOR
        ))
    };
    let adapters: Vec<&str> = packages
        .iter()
        .filter(|p| in_dir(p, "adapters"))
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(adapters.len() >= 4, "expected the adapter crates, found {adapters:?}");
    for p in packages {
        let name = p["name"].as_str().unwrap();
        let may_use_adapters = name == "pluto-duck" || name == "pluto-duck-tests";
        for dep in p["dependencies"].as_array().unwrap() {
            let dep = dep["name"].as_str().unwrap();
            if adapters.contains(&dep) {
                assert!(
                    may_use_adapters,
                    "{name} depends on adapter {dep}: only bootstrap wires adapters"
                );
            }
        }
    }
}
