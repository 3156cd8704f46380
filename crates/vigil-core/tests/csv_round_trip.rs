//! Property: any series whose metric names a CSV header can hold comes back from vigil's CSV
//! writer and reader exactly — names with commas, quotes, semicolons, line breaks and any
//! Unicode; values of any magnitude, bit for bit, infinities and NaN included.

use proptest::prelude::*;
use vigil_core::read::read_series;
use vigil_core::write::write_series_csv;
use vigil_core::Series;

/// Names the CSV reader gives back as written: not empty, not padded with whitespace (the
/// reader trims hand-written headers), not `timestamp`/`label`, not starting with a BOM.
fn metric_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_.]{0,8}",
        "[a-z]{1,3}[,;\"\n\r\t '=|{}][a-z]{1,3}",
        any::<String>(),
    ]
    .prop_filter("a name the CSV reader trims or reserves", |n| {
        !n.trim().is_empty()
            && n.trim() == n
            && !n.starts_with('\u{feff}')
            && n != "timestamp"
            && n != "label"
    })
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        -1e6..1e6f64,
        Just(1e6 + 1e-4),
        Just(1e39),
        Just(f64::MIN_POSITIVE),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
    ]
}

fn series() -> impl Strategy<Value = Series> {
    proptest::collection::hash_set(metric_name(), 1..5)
        .prop_flat_map(|names| {
            let names: Vec<String> = names.into_iter().collect();
            let m = names.len();
            (
                Just(names),
                proptest::collection::vec(value(), m..=m * 6),
                any::<bool>(),
                any::<bool>(),
            )
        })
        .prop_map(|(names, mut values, timestamps, labels)| {
            let m = names.len();
            values.truncate(values.len() / m * m);
            let mut s = Series::new(names, values).expect("rows of m values");
            let t = s.len() as i64;
            s.timestamps = timestamps.then(|| (0..t).map(|i| 1_700_000_000 + 60 * i).collect());
            s.labels = labels.then(|| (0..t).map(|i| (i % 2) as u8).collect());
            s
        })
}

fn same_bits(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            if x.is_nan() {
                y.is_nan()
            } else {
                x.to_bits() == y.to_bits()
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn a_series_written_as_csv_reads_back_the_same(series in series()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.csv");
        write_series_csv(&series, &path).unwrap();
        let back = read_series(&path).unwrap();
        prop_assert_eq!(&back.metric_names, &series.metric_names);
        prop_assert!(same_bits(&back.values, &series.values), "{:?} vs {:?}", back.values, series.values);
        prop_assert_eq!(&back.timestamps, &series.timestamps);
        prop_assert_eq!(&back.labels, &series.labels);
    }
}
