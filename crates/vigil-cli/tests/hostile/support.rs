//! What every hostile case needs: a sandbox with a trained model, a snapshot of the files
//! that are not vigil's to change, and assertions on exit code and message.

use crate::common::{vigil, vigil_ok};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

/// A scratch folder holding `train.csv` (200 steps of metrics a, b) and, once
/// [`Sandbox::with_model`] ran, a PCA model in `model/`.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let sandbox = Sandbox {
            dir: tempfile::tempdir().unwrap(),
        };
        sandbox.write("train.csv", &periodic_csv(200, 0.0));
        sandbox
    }

    /// A sandbox with `model/` trained on `train.csv`.
    pub fn with_model() -> Sandbox {
        let sandbox = Sandbox::new();
        sandbox.ok(&[
            "train",
            "--train",
            "train.csv",
            "--model",
            "model",
            "--detector",
            "pca",
            "-q",
        ]);
        sandbox
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, content).unwrap();
        path
    }

    pub fn run(&self, args: &[&str]) -> Output {
        vigil(args, self.dir.path())
    }

    /// Runs vigil and insists on success.
    pub fn ok(&self, args: &[&str]) -> Output {
        vigil_ok(args, self.dir.path())
    }

    /// Scores `train.csv` with `model/` into `output`, insisting on success.
    pub fn detect_ok(&self, output: &str) -> Output {
        self.ok(&[
            "detect",
            "--model",
            "model",
            "--input",
            "train.csv",
            "--output",
            output,
            "-q",
        ])
    }

    /// Runs vigil and insists on exit 2 with `expect` in the message and no panic.
    pub fn refused(&self, args: &[&str], expect: &str) -> Output {
        let out = self.run(args);
        refused_with(&out, args, expect);
        out
    }

    /// Every regular file and link under the sandbox, with its bytes (a link: its target).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot(snapshot(self.dir.path()))
    }

    /// vigil's temporary names (`.name.vigil-<pid>-...`) anywhere in the sandbox.
    pub fn leftovers(&self) -> Vec<PathBuf> {
        self.snapshot()
            .0
            .into_keys()
            .chain(dirs(self.dir.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.') && n.contains(".vigil-"))
            })
            .collect()
    }
}

/// Asserts exit code 2, `expect` in stderr, and no panic.
pub fn refused_with(out: &Output, args: &[&str], expect: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "vigil {} should exit 2: {stderr}",
        args.join(" ")
    );
    assert!(
        stderr.contains(expect),
        "vigil {}: expected `{expect}` in: {stderr}",
        args.join(" ")
    );
    assert!(!stderr.contains("panicked"), "a panic: {stderr}");
}

/// Paths and contents of a folder's files, taken before and after a command.
pub struct Snapshot(pub BTreeMap<PathBuf, Vec<u8>>);

impl Snapshot {
    /// Every file of `self` is in `after` with the same bytes.
    pub fn unchanged_in(&self, after: &Snapshot) {
        for (path, bytes) in &self.0 {
            match after.0.get(path) {
                None => panic!("{} was removed", path.display()),
                Some(now) => assert!(now == bytes, "{} was changed", path.display()),
            }
        }
    }
}

fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).unwrap();
            files.insert(path, format!("link:{}", target.display()).into_bytes());
        } else if meta.is_dir() {
            files.extend(snapshot(&path));
        } else if meta.is_file() {
            files.insert(path.clone(), std::fs::read(&path).unwrap());
        }
    }
    files
}

fn dirs(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            found.push(path.clone());
            found.extend(dirs(&path));
        }
    }
    found
}

/// `rows` rows of two periodic metrics `a`, `b`, shifted by `level`.
pub fn periodic_csv(rows: usize, level: f64) -> String {
    let mut s = String::from("a,b\n");
    for t in 0..rows {
        let x = t as f64 / 10.0;
        s.push_str(&format!("{:.4},{:.4}\n", level + x.sin(), x.cos()));
    }
    s
}

/// The manifest of a model directory, parsed.
pub fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}
