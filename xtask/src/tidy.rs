//! Tidy checks run by plain `cargo test`: the layering of ARCHITECTURE.md and the house rules of STYLE.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

mod citations;
mod external;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Which workspace crates each crate may depend on (normal dependencies).
const ALLOWED: &[(&str, &[&str])] = &[
    ("jobs-model", &[]),
    ("jobs-cron", &["jobs-model"]),
    ("jobs-balance", &["jobs-model"]),
    ("jobs-migrations", &[]),
    ("jobs-storage", &["jobs-model", "jobs-migrations"]),
    ("jobs-election", &["jobs-model", "jobs-storage"]),
    ("jobs-registry", &["jobs-model", "jobs-storage"]),
    ("jobs-engine", &["jobs-model", "jobs-cron", "jobs-balance", "jobs-storage", "jobs-election", "jobs-registry"]),
    (
        "jobs-api",
        &["jobs-model", "jobs-cron", "jobs-balance", "jobs-storage", "jobs-election", "jobs-registry", "jobs-engine"],
    ),
    ("jobs-executor", &["jobs-model"]),
    (
        "scheduler",
        &[
            "jobs-model",
            "jobs-storage",
            "jobs-election",
            "jobs-registry",
            "jobs-engine",
            "jobs-api",
            "jobs-balance",
            "jobs-cron",
        ],
    ),
    ("example-executor", &["jobs-executor"]),
    ("xtask", &["jobs-migrations", "jobs-executor", "jobs-model", "jobs-storage"]),
];

/// Each workspace package's normal and build dependencies (dev-dependencies are exempt), by package name.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let packages = metadata["packages"].as_array().expect("packages");
    packages
        .iter()
        .map(|package| {
            let deps = package["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|dep| dep["kind"].as_str() != Some("dev"))
                .filter_map(|dep| dep["name"].as_str())
                .map(str::to_owned)
                .collect();
            (package["name"].as_str().unwrap_or_default().to_owned(), deps)
        })
        .collect()
}

/// Each workspace package's dependencies on other workspace packages.
fn workspace_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let all = dependencies();
    let names: BTreeSet<String> = all.keys().cloned().collect();
    all.into_iter().map(|(name, deps)| (name, deps.intersection(&names).cloned().collect())).collect()
}

#[test]
fn crates_depend_only_downwards() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    for (name, deps) in workspace_dependencies() {
        let permitted =
            allowed.get(name.as_str()).unwrap_or_else(|| panic!("crate `{name}` is missing from tidy's layering"));
        for dep in deps {
            assert!(permitted.contains(&dep.as_str()), "`{name}` must not depend on `{dep}` (see ARCHITECTURE.md)");
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    files_ending_with(dir, &[".rs"], out);
}

/// Every file under `dir` whose name ends with one of `endings`, skipping `target` and hidden folders.
fn files_ending_with(dir: &Path, endings: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path.file_name().and_then(|name| name.to_str()).unwrap_or_default();
        if path.is_dir() && name != "target" && !name.starts_with('.') {
            files_ending_with(&path, endings, out);
        } else if endings.iter().any(|ending| name.ends_with(ending)) {
            out.push(path);
        }
    }
}

#[test]
fn every_file_starts_with_a_module_doc() {
    let mut files = Vec::new();
    for dir in ["crates", "bins", "migrations", "xtask"] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(!files.is_empty());
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable source");
        assert!(text.starts_with("//!"), "{} must start with a `//!` line", file.display());
    }
}

#[test]
fn architecture_names_every_crate() {
    let architecture = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md exists");
    for name in workspace_dependencies().keys() {
        assert!(architecture.contains(&format!("`{name}`")), "ARCHITECTURE.md does not mention `{name}`");
    }
}

#[test]
fn internal_dependencies_use_the_workspace_table() {
    let mut manifests = Vec::new();
    for dir in ["crates", "bins"] {
        for entry in std::fs::read_dir(root().join(dir)).expect("folder exists").flatten() {
            manifests.push(entry.path().join("Cargo.toml"));
        }
    }
    manifests.push(root().join("migrations/Cargo.toml"));
    manifests.push(root().join("xtask/Cargo.toml"));
    for manifest in manifests {
        let text = std::fs::read_to_string(&manifest).expect("manifest readable");
        for line in text.lines() {
            if line.starts_with("jobs-") || line.starts_with("scheduler ") {
                assert!(
                    line.contains("workspace = true"),
                    "{}: `{line}` must use workspace = true",
                    manifest.display()
                );
            }
        }
        assert!(text.contains("[lints]\nworkspace = true"), "{} must use the workspace lints", manifest.display());
    }
}
