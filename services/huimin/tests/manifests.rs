//! The deployment manifests against the real binary: every container of k8s/
//! (the Helm chart rendered with its default and its production values) is
//! started with exactly the environment the manifests give it, so a variable
//! the code requires and the chart forgot, or misnamed, fails here and not in
//! a county's cluster. Being an integration test of this package, it gets the
//! `huimin` binary cargo built for it (`CARGO_BIN_EXE_huimin`).
//!
//! The work is in `scripts/manifests.py envcheck` (it reads the YAML, fills the
//! Secret's keys with fresh ones, and uses the local PostgreSQL and Redis, a
//! database of its own and a Redis prefix of its own); the tools come from
//! `.venv-tools`, which `scripts/setup` installs.

use std::{path::Path, process::Command};

#[test]
fn every_container_of_the_manifests_starts_with_the_environment_they_give_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv-tools/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup",
        python.display()
    );
    let output = Command::new(&python)
        .arg(root.join("scripts/manifests.py"))
        .arg("envcheck")
        .arg(env!("CARGO_BIN_EXE_huimin"))
        .output()
        .expect("scripts/manifests.py runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{report}");
}
