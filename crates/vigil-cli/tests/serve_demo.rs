//! `vigil serve --demo`, the newcomer's first look at the service: within seconds its entities
//! are scored and an injected anomaly alarms; SIGTERM stops it cleanly and its temporary folder
//! goes with it.

mod common;
mod serve_support;

use serve_support::*;
use std::time::Duration;

#[test]
fn the_demo_scores_its_fleet_alarms_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let args = [
        "serve",
        "--demo",
        "--listen",
        &address,
        "--demo-step-ms",
        "10",
        "--demo-entities",
        "3",
    ];
    let mut vigil = Proc::spawn(
        env!("CARGO_BIN_EXE_vigil"),
        &args.map(String::from),
        dir.path(),
        "demo",
    );
    wait_for("the demo to answer", Duration::from_secs(60), || {
        http("GET", &address, "/-/healthy", &[], b"").is_ok_and(|(s, _)| s == 200)
    });
    let entities = || -> serde_json::Value {
        let body = http("GET", &address, "/api/v1/entities", &[], b"")
            .map(|r| r.1)
            .unwrap_or_default();
        serde_json::from_str(&body).unwrap_or_default()
    };
    wait_for("three entities scored", Duration::from_secs(30), || {
        entities()["entities"]
            .as_array()
            .is_some_and(|e| e.len() == 3 && e.iter().all(|e| e["latest"].is_array()))
    });
    let alarmed = |k: usize| {
        entity_rows(&address, &format!("demo-{k}"), "scores")
            .iter()
            .any(|r| r["alarm"] == true)
    };
    wait_for("an alarm in the demo", Duration::from_secs(60), || {
        (0..3).any(alarmed)
    });
    // Graceful stop on SIGTERM: exit 0, the temporary folder removed.
    let stdout = vigil.log_text();
    let folder = stdout
        .split_whitespace()
        .find(|w| w.contains("vigil-serve-demo-"))
        .unwrap_or_else(|| panic!("the demo names its folder: {stdout}"))
        .to_string();
    assert!(std::path::Path::new(&folder).exists());
    unsafe { libc::kill(vigil.child.id() as i32, libc::SIGTERM) };
    let status = vigil.child.wait().unwrap();
    assert!(status.success(), "{status}: {}", vigil.log_text());
    assert!(
        !std::path::Path::new(&folder).exists(),
        "{folder} is left behind"
    );
}
