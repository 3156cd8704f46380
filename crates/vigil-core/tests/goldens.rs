//! vigil's metrics against golden values from independent implementations: scikit-learn,
//! tadpak (PA%K), and TSB-AD 1.5 (the affiliation reference code and VUS). The values and the
//! script that produced them are in `tests/goldens/`.

use serde_json::Value;
use vigil_core::metrics::adjust::adjust_pa_k;
use vigil_core::metrics::affiliation::affiliation;
use vigil_core::metrics::auc::{average_precision, roc_auc};
use vigil_core::metrics::point::Confusion;
use vigil_core::metrics::vus::{vus, DEFAULT_THRESHOLDS};

struct Case {
    name: String,
    labels: Vec<u8>,
    scores: Vec<f64>,
    alarms: Vec<u8>,
    vus_window: usize,
    expected: Value,
}

fn cases() -> Vec<Case> {
    let text = include_str!("goldens/metrics.json");
    let root: Value = serde_json::from_str(text).expect("goldens parse");
    let as_u8 = |v: &Value| -> Vec<u8> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u8)
            .collect()
    };
    root["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            labels: as_u8(&c["labels"]),
            alarms: as_u8(&c["alarms"]),
            scores: c["scores"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect(),
            vus_window: c["vus_window"].as_u64().unwrap() as usize,
            expected: c["expected"].clone(),
        })
        .collect()
}

fn assert_close(ours: f64, theirs: &Value, what: &str, case: &str) {
    let theirs = theirs
        .as_f64()
        .unwrap_or_else(|| panic!("{case}: no golden {what}"));
    assert!(
        (ours - theirs).abs() < 1e-9,
        "{case}: {what} = {ours}, reference {theirs}"
    );
}

#[test]
fn point_wise_measures_match_scikit_learn() {
    for c in cases() {
        let m = Confusion::count(&c.alarms, &c.labels);
        assert_close(
            m.precision(),
            &c.expected["precision"],
            "precision",
            &c.name,
        );
        assert_close(m.recall(), &c.expected["recall"], "recall", &c.name);
        assert_close(m.f1(), &c.expected["f1"], "F1", &c.name);
        assert_close(m.mcc(), &c.expected["mcc"], "MCC", &c.name);
        assert_close(
            roc_auc(&c.scores, &c.labels).unwrap(),
            &c.expected["roc_auc"],
            "ROC-AUC",
            &c.name,
        );
        assert_close(
            average_precision(&c.scores, &c.labels).unwrap(),
            &c.expected["average_precision"],
            "average precision",
            &c.name,
        );
    }
}

#[test]
fn pa_k_matches_tadpak() {
    for c in cases() {
        for k in [0, 20, 50, 80, 100] {
            let adjusted = adjust_pa_k(&c.alarms, &c.labels, k as f64);
            let f1 = Confusion::count(&adjusted, &c.labels).f1();
            assert_close(
                f1,
                &c.expected["pa_k_f1"][k.to_string()],
                &format!("PA%{k} F1"),
                &c.name,
            );
        }
    }
}

#[test]
fn affiliation_matches_the_reference_code() {
    for c in cases() {
        let a = affiliation(&c.alarms, &c.labels).unwrap();
        assert_close(
            a.precision.unwrap(),
            &c.expected["affiliation_precision"],
            "affiliation precision",
            &c.name,
        );
        assert_close(
            a.recall,
            &c.expected["affiliation_recall"],
            "affiliation recall",
            &c.name,
        );
    }
}

#[test]
fn vus_matches_tsb_ad() {
    for c in cases() {
        let v = vus(&c.scores, &c.labels, c.vus_window, DEFAULT_THRESHOLDS).unwrap();
        assert_close(v.roc, &c.expected["vus_roc"], "VUS-ROC", &c.name);
        assert_close(v.pr, &c.expected["vus_pr"], "VUS-PR", &c.name);
    }
}
