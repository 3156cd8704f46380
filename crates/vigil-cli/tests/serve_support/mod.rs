//! Running `vigil serve` and real peers (Prometheus, Alertmanager) as child processes for the
//! service's end-to-end tests: free ports, a plain HTTP/1.1 client, a trained model, fresh
//! PostgreSQL databases (through `psql`), and children that are killed when dropped.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const METRICS: [&str; 3] = ["cpu", "mem", "net"];

/// One normal step at step `t` (three metrics that move together), as the model learnt them.
pub fn normal(t: usize) -> [f64; 3] {
    let phase = t as f64 * std::f64::consts::TAU / 50.0;
    let wobble = ((t * 7919) % 1000) as f64 / 1000.0 - 0.5;
    let cpu = 50.0 + 10.0 * phase.sin() + wobble;
    [
        cpu,
        30.0 + 5.0 * phase.cos() + 0.5 * wobble,
        0.5 * cpu + 0.3 * wobble,
    ]
}

/// A step with the metrics' relation broken.
pub fn anomalous(t: usize) -> [f64; 3] {
    let [cpu, mem, _] = normal(t);
    [cpu * 4.0, mem, 0.0]
}

/// A child process killed (SIGKILL) and reaped when dropped, its output in `log`; with
/// `group`, the children it started too (a browser's driver and the browser).
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
    group: bool,
}

impl Proc {
    pub fn spawn(program: &str, args: &[String], dir: &Path, name: &str) -> Proc {
        Proc::start(program, args, dir, name, false)
    }

    /// [`Proc::spawn`] in a process group of its own, which is killed whole.
    pub fn spawn_group(program: &str, args: &[String], dir: &Path, name: &str) -> Proc {
        Proc::start(program, args, dir, name, true)
    }

    fn start(program: &str, args: &[String], dir: &Path, name: &str, group: bool) -> Proc {
        use std::os::unix::process::CommandExt;
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(program);
        if group {
            command.process_group(0);
        }
        let child = command
            .args(args)
            .current_dir(dir)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `{program}` ({e}); the service's end-to-end tests need Debian's \
                     prometheus, prometheus-alertmanager, chromium and chromium-driver \
                     (`bash .ci/test` installs them)"
                )
            });
        Proc { child, log, group }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        if self.group {
            // SAFETY: kill(2) with a negative pid signals that process group; no memory involved.
            unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request; the status and body (chunked bodies joined).
pub fn http(
    method: &str,
    address: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {head}")))?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((
        status,
        if chunked {
            unchunk(body)
        } else {
            body.to_string()
        },
    ))
}

fn unchunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Waits until `check` holds, or panics after `timeout` naming `what`.
pub fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A PCA model of [`normal`]'s three metrics at `dir/models/m/1`.
pub fn train_model(dir: &Path) {
    let mut csv = String::from("cpu,mem,net\n");
    for t in 0..600 {
        let [a, b, c] = normal(t);
        csv.push_str(&format!("{a},{b},{c}\n"));
    }
    std::fs::write(dir.join("train.csv"), csv).unwrap();
    crate::common::train_ok(dir, "train.csv", "models/m/1", "pca", &[]);
}

/// An entity's stored rows of `what` (`scores` or `samples`) from the service at `address`;
/// empty when the service does not answer or has none.
pub fn entity_rows(address: &str, entity: &str, what: &str) -> Vec<serde_json::Value> {
    let path = format!("/api/v1/entities/{entity}/{what}?limit=100000");
    let body = http("GET", address, &path, &[], b"")
        .map(|r| r.1)
        .unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v[what].as_array().cloned())
        .unwrap_or_default()
}

/// Starts `vigil serve --config vigil.toml` in `dir` and waits until it answers.
pub fn start_vigil(dir: &Path, address: &str) -> Proc {
    let vigil = Proc::spawn(
        env!("CARGO_BIN_EXE_vigil"),
        &["serve".into(), "--config".into(), "vigil.toml".into()],
        dir,
        "vigil",
    );
    wait_for("vigil serve to answer", Duration::from_secs(30), || {
        http("GET", address, "/-/healthy", &[], b"").is_ok_and(|(s, _)| s == 200)
    });
    vigil
}

/// The PostgreSQL server the tests use, as a URL without the database.
pub fn postgres_server() -> String {
    std::env::var("VIGIL_TEST_POSTGRES_SERVER")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A fresh database on the test server; dropped by [`drop_database`].
pub fn create_database(name: &str) -> String {
    let server = postgres_server();
    let status = Command::new("psql")
        .args([
            &format!("{server}/test"),
            "-q",
            "-c",
            &format!("DROP DATABASE IF EXISTS {name}"),
            "-c",
            &format!("CREATE DATABASE {name}"),
        ])
        .env("PGOPTIONS", "--client-min-messages=warning")
        .stdout(Stdio::null())
        .status()
        .expect("psql runs (PostgreSQL's client is needed for the PostgreSQL tests)");
    assert!(
        status.success(),
        "cannot create database {name} on {server}"
    );
    format!("{server}/{name}")
}

pub fn drop_database(name: &str) {
    let _ = Command::new("psql")
        .args([
            &format!("{}/test", postgres_server()),
            "-q",
            "-c",
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        ])
        .stdout(Stdio::null())
        .status();
}
