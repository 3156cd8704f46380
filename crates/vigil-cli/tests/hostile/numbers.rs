//! Numbers: parsed and normalised in f64, checked before they reach a model in f32; odd
//! metric names survive the trip through vigil's CSV files.

use crate::support::{manifest, Sandbox};

#[test]
fn a_finite_value_beyond_f32_is_read_and_normalised_into_range() {
    let s = Sandbox::new();
    let mut csv = crate::support::periodic_csv(100, 0.0);
    csv.push_str("1e39,0.5\n");
    s.write("huge.csv", &csv);
    s.ok(&[
        "train",
        "--train",
        "huge.csv",
        "--model",
        "m",
        "--detector",
        "pca",
        "-q",
    ]);
}

#[test]
fn a_value_that_leaves_f32_once_normalised_names_its_cell() {
    let s = Sandbox::new();
    let mut csv = crate::support::periodic_csv(100, 0.0);
    csv.push_str("1e39,0.5\n");
    s.write("huge.csv", &csv);
    let args = [
        "train",
        "--train",
        "huge.csv",
        "--model",
        "m",
        "--detector",
        "pca",
        "--normaliser",
        "none",
    ];
    s.refused(&args, "huge.csv:102: column `a`: the value 1e39");
    assert!(!s.path("m").exists());
}

#[test]
fn a_tiny_move_on_a_large_level_is_not_flattened() {
    let s = Sandbox::new();
    let mut csv = String::from("a,b\n");
    for t in 0..100 {
        csv.push_str(&format!("{},{}\n", 1e6 + f64::from(t % 5) * 1e-4, t % 3));
    }
    s.write("fine.csv", &csv);
    s.ok(&[
        "train",
        "--train",
        "fine.csv",
        "--model",
        "m",
        "--detector",
        "pca",
        "-q",
    ]);
    let scale = manifest(&s.path("m"))["normaliser"]["scale"][0]
        .as_f64()
        .unwrap();
    assert!(
        (scale - 4e-4).abs() < 1e-9,
        "scale {scale}: the metric was treated as constant"
    );
}

#[test]
fn a_model_trained_on_constant_data_does_not_alarm_on_it() {
    let s = Sandbox::new();
    let csv: String = std::iter::once("a,b\n".to_string())
        .chain((0..300).map(|_| "5,1000000\n".to_string()))
        .collect();
    s.write("flat.csv", &csv);
    for detector in ["pca", "iforest"] {
        s.ok(&[
            "train",
            "--train",
            "flat.csv",
            "--model",
            detector,
            "--detector",
            detector,
            "-q",
        ]);
        for threshold in ["spot", "pot", "quantile", "pot-batch"] {
            let out = s.ok(&[
                "--json",
                "detect",
                "--model",
                detector,
                "--input",
                "flat.csv",
                "--output",
                "s.csv",
                "--threshold",
                threshold,
            ]);
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(report["alarms"], 0, "{detector} with {threshold}");
        }
    }
}

#[test]
fn a_missing_cell_is_named() {
    let s = Sandbox::new();
    s.write("gap.csv", "a,b\n1,2\n,3\n4,5\n");
    s.refused(
        &[
            "train",
            "--train",
            "gap.csv",
            "--model",
            "m",
            "--detector",
            "pca",
        ],
        "gap.csv:3: column `a`: a missing value",
    );
}

#[test]
fn a_number_beyond_f64_is_an_infinite_value_named_by_its_cell() {
    let s = Sandbox::new();
    let mut csv = crate::support::periodic_csv(50, 0.0);
    csv.push_str("0.5,1e400\n");
    s.write("inf.csv", &csv);
    s.refused(
        &[
            "train",
            "--train",
            "inf.csv",
            "--model",
            "m",
            "--detector",
            "pca",
        ],
        "inf.csv:52: column `b`: an infinite value",
    );
}

/// Metric names with a comma, a quote, a semicolon and a line break go through train, detect
/// (its scores CSV names every metric) and plot (which reads that CSV back).
#[test]
fn hostile_metric_names_survive_detect_and_plot() {
    let s = Sandbox::new();
    let mut csv = String::from("\"m,0\",\"say \"\"hi\"\"\",\"x;y\",\"two\nlines\"\n");
    for t in 0..120 {
        let x = f64::from(t) / 7.0;
        csv.push_str(&format!(
            "{},{},{},{}\n",
            x.sin(),
            x.cos(),
            (2.0 * x).sin(),
            t % 4
        ));
    }
    s.write("odd.csv", &csv);
    s.ok(&[
        "train",
        "--train",
        "odd.csv",
        "--model",
        "m",
        "--detector",
        "pca",
        "-q",
    ]);
    let names = manifest(&s.path("m"))["metric_names"].clone();
    assert_eq!(
        names,
        serde_json::json!(["m,0", "say \"hi\"", "x;y", "two\nlines"])
    );
    s.ok(&[
        "detect",
        "--model",
        "m",
        "--input",
        "odd.csv",
        "--output",
        "scores.csv",
        "-q",
    ]);
    let mut reader = csv::Reader::from_path(s.path("scores.csv")).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header[..5],
        ["step", "score", "threshold", "alarm", "anomaly_score"]
    );
    assert_eq!(header[5..], ["m,0", "say \"hi\"", "x;y", "two\nlines"]);
    // anomaly_score is the score over the threshold in force: 1 is the alarm boundary.
    for record in reader.records() {
        let record = record.unwrap();
        let number = |i: usize| record[i].parse::<f64>().unwrap();
        let (score, threshold, alarm, relative) = (number(1), number(2), number(3), number(4));
        assert!(threshold > 0.0);
        assert!((relative - score / threshold).abs() <= 1e-12 * relative.abs().max(1.0));
        assert_eq!(alarm == 1.0, score >= threshold);
        if alarm == 1.0 {
            assert!(relative >= 1.0);
        }
    }
    s.ok(&[
        "plot",
        "--series",
        "odd.csv",
        "--scores",
        "scores.csv",
        "--output",
        "odd.png",
        "-q",
    ]);
}

#[test]
fn an_npy_header_declaring_an_absurd_shape_is_refused_before_allocating() {
    let s = Sandbox::new();
    for (name, shape) in [
        ("overflow.npy", "(18446744073709551615, 2)"),
        ("huge.npy", "(100000000000, 4)"),
        ("truncated.npy", "(100, 2)"),
    ] {
        let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
        while (header.len() + 11) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        bytes.extend([0u8; 64]);
        std::fs::write(s.path(name), bytes).unwrap();
        s.refused(
            &[
                "train",
                "--train",
                name,
                "--model",
                "m",
                "--detector",
                "pca",
            ],
            "the header declares shape",
        );
    }
}
