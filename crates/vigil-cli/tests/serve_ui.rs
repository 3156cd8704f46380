//! The web UI in a real browser: Debian's headless `chromium`, driven through `chromedriver`
//! by the WebDriver protocol. `vigil serve` scores two entities, one with an injected anomaly;
//! the overview lists both; the entity view draws the alarm (its band's pixels are read off the
//! canvas); brushing the alarm and choosing "False alarm" stores feedback that the API returns.
//!
//! With `VIGIL_UI_SCREENSHOTS=DIR` the test also saves the pages it sees there as PNG (how the
//! screenshots in docs/serve.md are made).

mod common;
mod serve_support;

use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use serve_support::*;
use std::path::Path;
use std::time::Duration;

const T0: i64 = 1_700_000_000_000;
const STEP_MS: i64 = 10_000;
const STEPS: usize = 200;
/// web-1's steps with the metrics' relation broken.
const ANOMALY: std::ops::Range<usize> = 120..130;

/// VictoriaMetrics import lines: each entity's three metrics over every step.
fn import_lines() -> String {
    let mut lines = String::new();
    for entity in ["web-1", "web-2"] {
        let steps: Vec<[f64; 3]> = (0..STEPS)
            .map(|t| match entity == "web-1" && ANOMALY.contains(&t) {
                true => anomalous(t),
                false => normal(t),
            })
            .collect();
        for (m, metric) in METRICS.iter().enumerate() {
            let line = json!({
                "metric": {"__name__": metric, "instance": entity},
                "values": steps.iter().map(|s| s[m]).collect::<Vec<_>>(),
                "timestamps": (0..STEPS).map(|t| T0 + t as i64 * STEP_MS).collect::<Vec<_>>(),
            });
            lines.push_str(&format!("{line}\n"));
        }
    }
    lines
}

fn start_chromedriver(dir: &Path) -> (Proc, String) {
    let port = free_port();
    // In a group of its own: if the test fails midway, the browser it started goes with it.
    let driver = Proc::spawn_group(
        "chromedriver",
        &[format!("--port={port}")],
        dir,
        "chromedriver",
    );
    // It keeps connections open whatever the request says, so its own word is awaited.
    wait_for("chromedriver to start", Duration::from_secs(30), || {
        driver.log_text().contains("started successfully")
    });
    (driver, format!("http://127.0.0.1:{port}"))
}

/// Debian's `chromium` on the PATH (chromedriver would look for Google Chrome).
fn chromium() -> String {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("chromium"))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!("no `chromium` on the PATH; the browser test needs Debian's chromium and chromium-driver (`bash .ci/test` installs them)")
        })
        .display()
        .to_string()
}

async fn browser(webdriver: &str) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium(),
            // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1200", "--force-device-scale-factor=1"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(webdriver)
        .await
        .expect("chromedriver starts a headless Chromium")
}

async fn screenshot(client: &Client, name: &str) {
    if let Ok(dir) = std::env::var("VIGIL_UI_SCREENSHOTS") {
        let png = client.screenshot().await.unwrap();
        std::fs::write(Path::new(&dir).join(name), png).unwrap();
    }
}

async fn wait_loaded(client: &Client, what: &str) {
    let loaded = client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(&format!("#view[data-loaded='{what}']")))
        .await;
    if let Err(e) = loaded {
        let problem = client
            .execute(
                "return document.getElementById('problem').textContent",
                vec![],
            )
            .await;
        panic!("the page did not show {what} ({e}); it says: {problem:?}");
    }
}

async fn script(client: &Client, source: &str) -> Value {
    client
        .execute(source, vec![])
        .await
        .unwrap_or_else(|e| panic!("script failed ({e}): {source}"))
}

#[test]
fn the_ui_lists_entities_draws_the_alarm_and_takes_feedback_by_brushing() {
    let dir = tempfile::tempdir().unwrap();
    train_model(dir.path());
    let address = format!("127.0.0.1:{}", free_port());
    std::fs::write(
        dir.path().join("vigil.toml"),
        format!("listen = \"{address}\"\nstore = \"sqlite://vigil.db\"\nmodels = \"models\"\nmodel = \"m\"\n"),
    )
    .unwrap();
    let _vigil = start_vigil(dir.path(), &address);
    let (status, body) = http(
        "POST",
        &address,
        "/api/v1/import",
        &[],
        import_lines().as_bytes(),
    )
    .unwrap();
    assert_eq!(status, 204, "{body}");
    // Every step arrives whole, so every one is scored, and nothing changes after that.
    wait_for("every step scored", Duration::from_secs(60), || {
        ["web-1", "web-2"]
            .iter()
            .all(|e| entity_rows(&address, e, "scores").len() == STEPS)
    });
    let web1 = entity_rows(&address, "web-1", "scores");
    let alarm_at: Vec<bool> = web1.iter().map(|r| r["alarm"] == true).collect();
    let alarmed: Vec<i64> = web1
        .iter()
        .filter(|r| r["alarm"] == true)
        .map(|r| r["ts"].as_i64().unwrap())
        .collect();
    let in_anomaly = |ts: i64| {
        let step = ((ts - T0) / STEP_MS) as usize;
        ANOMALY.contains(&step)
    };
    assert!(
        alarmed.iter().any(|&ts| in_anomaly(ts)),
        "the injected anomaly alarms: {alarmed:?}"
    );

    let first_alarm = *alarmed.iter().find(|&&ts| in_anomaly(ts)).unwrap();
    let last_alarm = *alarmed.iter().rev().find(|&&ts| in_anomaly(ts)).unwrap();
    // Where the band is drawn: an alarmed step of the anomaly; where none is: a step with no
    // alarm within three steps either side.
    let in_band = alarmed
        .iter()
        .filter(|&&ts| in_anomaly(ts))
        .nth(2)
        .copied()
        .unwrap_or(first_alarm);
    let quiet = (3..STEPS - 3)
        .find(|&t| !alarm_at[t - 3..=t + 3].contains(&true))
        .map(|t| T0 + t as i64 * STEP_MS)
        .expect("a quiet stretch of web-1");

    let (_driver, webdriver) = start_chromedriver(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = browser(&webdriver).await;

        // The overview lists both entities; web-1's alarms are counted.
        client.goto(&format!("http://{address}/")).await.unwrap();
        wait_loaded(&client, "overview").await;
        let rows = script(
            &client,
            "return [...document.querySelectorAll('#entities tbody tr')].map(r => \
             [r.dataset.entity, r.cells[5].textContent])",
        )
        .await;
        let rows: Vec<(String, i64)> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_str().unwrap().parse().unwrap()))
            .collect();
        let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        assert!(names.contains(&"web-1") && names.contains(&"web-2"), "{rows:?}");
        let web1_alarms = rows.iter().find(|r| r.0 == "web-1").unwrap().1;
        // (Every one of web-1's 200 steps lies in the hour before its newest.)
        assert_eq!(web1_alarms, alarmed.len() as i64, "the overview counts web-1's alarmed steps");
        screenshot(&client, "ui-overview.png").await;

        // The entity view: its alarm listed, and drawn as a band on the score chart.
        client
            .find(Locator::Css("#entities a[href='#/entity/web-1']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_loaded(&client, "entity:web-1").await;
        let listed = script(&client, "return document.querySelectorAll('#alarms tbody tr td.number').length").await;
        assert!(listed.as_u64().unwrap() >= 2, "the alarms table lists the alarm");
        // A pixel near the top of the plot, in the alarm and at a quiet step, with the lines
        // hidden (one could pass there): the band's red is drawn at the one and not the other.
        script(
            &client,
            "const u = window.vigil.charts.score; u.setSeries(1, {show: false}); \
             u.setSeries(2, {show: false}); return true;",
        )
        .await;
        let pixel = |ts: i64| {
            format!(
                "const u = window.vigil.charts.score; \
                 const x = Math.round(u.valToPos({} / 1000, 'x', true)); \
                 const y = Math.round(u.bbox.top + 2); \
                 return [...u.ctx.getImageData(x, y, 1, 1).data];",
                ts
            )
        };
        let at_alarm = script(&client, &pixel(in_band)).await;
        let at_normal = script(&client, &pixel(quiet)).await;
        let rgba = |v: &Value| -> Vec<u64> { v.as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).collect() };
        let (band, clear) = (rgba(&at_alarm), rgba(&at_normal));
        assert!(
            band[3] > 0 && band[0] > band[1] + 100 && band[0] > band[2] + 100,
            "the alarm is drawn as a red band: pixel {band:?}"
        );
        // (Grid lines are grey: only a red pixel is a band.)
        assert!(
            clear[3] == 0 || clear[0] <= clear[1] + 20,
            "no band at a normal step: pixel {clear:?}"
        );
        script(
            &client,
            "const u = window.vigil.charts.score; u.setSeries(1, {show: true}); \
             u.setSeries(2, {show: true}); return true;",
        )
        .await;
        // No refresh from here on: the chart stays the one measured below.
        client.find(Locator::Id("auto-refresh")).await.unwrap().click().await.unwrap();

        // Brush across the alarm (half a step beyond each end) and mark it a false alarm.
        let geometry = script(
            &client,
            &format!(
                "const u = window.vigil.charts.score; const box = u.over.getBoundingClientRect(); \
                 return [u.valToPos({} / 1000, 'x'), u.valToPos({} / 1000, 'x'), box.width, box.height];",
                first_alarm - STEP_MS / 2,
                last_alarm + STEP_MS / 2
            ),
        )
        .await;
        let g: Vec<f64> = geometry.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let over = client.find(Locator::Css("#score-chart .u-over")).await.unwrap();
        // Pointer offsets are from the element's centre.
        let (from_x, to_x) = (g[0] - g[2] / 2.0, g[1] - g[2] / 2.0);
        let brush = MouseActions::new("mouse".into())
            .then(PointerAction::MoveToElement { element: over.clone(), duration: None, x: from_x, y: 0.0 })
            .then(PointerAction::Down { button: MOUSE_BUTTON_LEFT })
            .then(PointerAction::MoveToElement { element: over.clone(), duration: Some(Duration::from_millis(200)), x: (from_x + to_x) / 2.0, y: 10.0 })
            .then(PointerAction::MoveToElement { element: over.clone(), duration: Some(Duration::from_millis(200)), x: to_x, y: 10.0 })
            .then(PointerAction::Up { button: MOUSE_BUTTON_LEFT });
        client.perform_actions(brush).await.unwrap();
        let choice = client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("#selection:not([hidden]) #mark-false-alarm"))
            .await
            .expect("brushing a range offers feedback");
        screenshot(&client, "ui-brushed.png").await;
        choice.click().await.unwrap();
        let saved = client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::XPath("//*[@id='saved'][starts-with(text(), 'Saved')]"))
            .await
            .expect("the feedback is saved");
        assert!(saved.text().await.unwrap().starts_with("Saved as feedback #"));
        // No script error on the way (the page shows any in its problem box).
        let problem = script(&client, "return document.getElementById('problem').textContent").await;
        assert_eq!(problem, "", "the page reported a problem");
        // The feedback is in force: drawn along the chart's foot and listed.
        client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("#feedback tbody .badge.not_anomaly"))
            .await
            .expect("the feedback is listed");
        screenshot(&client, "ui-entity.png").await;
        client.close().await.unwrap();
    });

    // The API returns it: a false alarm over exactly the brushed steps.
    let (status, body) = http("GET", &address, "/api/v1/feedback?entity=web-1", &[], b"").unwrap();
    assert_eq!(status, 200, "{body}");
    let feedback: Value = serde_json::from_str(&body).unwrap();
    let history = feedback["history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{feedback}");
    assert_eq!(history[0]["label"], "not_anomaly");
    assert_eq!(history[0]["kind"], "range");
    assert_eq!(
        history[0]["start"].as_i64(),
        Some(first_alarm),
        "{feedback}"
    );
    assert_eq!(history[0]["end"].as_i64(), Some(last_alarm), "{feedback}");
    assert_eq!(feedback["effective"][0]["label"], "not_anomaly");
}
