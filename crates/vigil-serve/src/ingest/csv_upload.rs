//! Backfill from a CSV file: `POST /api/v1/import/csv?entity=NAME` with a header row
//! `timestamp,<metric>,<metric>,...` and one row per step (timestamps in milliseconds since
//! the epoch; an empty cell is a metric missing from that step).

use super::Series;
use crate::error::ServeError;

/// The series of `entity` in a CSV body (labels `__name__` and `entity_label`).
pub fn decode(body: &[u8], entity: &str, entity_label: &str) -> Result<Vec<Series>, ServeError> {
    let bad = |m: String| ServeError::BadRequest(m);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(body);
    let header = reader
        .headers()
        .map_err(|e| bad(format!("the CSV header cannot be read ({e})")))?
        .clone();
    if header.get(0).map(str::trim) != Some("timestamp") || header.len() < 2 {
        return Err(bad(
            "the CSV header must be `timestamp,<metric>,...` (timestamps in ms since the epoch)"
                .into(),
        ));
    }
    let mut series: Vec<Series> = header
        .iter()
        .skip(1)
        .map(|metric| Series {
            labels: vec![
                ("__name__".into(), metric.trim().to_string()),
                (entity_label.to_string(), entity.to_string()),
            ],
            points: Vec::new(),
        })
        .collect();
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        let record = record.map_err(|e| bad(format!("CSV line {line}: {e}")))?;
        let ts: i64 = record
            .get(0)
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| {
                bad(format!(
                    "CSV line {line}: the timestamp is not whole milliseconds"
                ))
            })?;
        for (column, cell) in record.iter().skip(1).enumerate() {
            let cell = cell.trim();
            if cell.is_empty() {
                continue;
            }
            let value: f64 = cell.parse().map_err(|_| {
                bad(format!(
                    "CSV line {line}, column {}: `{cell}` is not a number",
                    column + 2
                ))
            })?;
            series
                .get_mut(column)
                .ok_or_else(|| bad(format!("CSV line {line} has more cells than the header")))?
                .points
                .push((ts, value));
        }
    }
    Ok(series)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_series_and_bad_cells_are_named() {
        let series = decode(b"timestamp,cpu,mem\n1000,1.5,2\n2000,,3\n", "a", "instance").unwrap();
        assert_eq!(series[0].points, vec![(1000, 1.5)]);
        assert_eq!(series[1].points, vec![(1000, 2.0), (2000, 3.0)]);
        assert_eq!(series[1].labels[1], ("instance".into(), "a".into()));
        let err = decode(b"timestamp,cpu\n1000,x\n", "a", "instance")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2, column 2"), "{err}");
        assert!(decode(b"time,cpu\n1,2\n", "a", "instance").is_err());
    }
}
