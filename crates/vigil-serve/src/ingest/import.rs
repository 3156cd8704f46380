//! VictoriaMetrics' `/api/v1/import`: one JSON object a line,
//! `{"metric":{"__name__":"cpu","instance":"a"},"values":[0.5,1.5],"timestamps":[1000,2000]}`
//! (timestamps in milliseconds). Also vigil's backfill upload: the same lines, from a file.

use super::Series;
use crate::error::ServeError;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    metric: BTreeMap<String, String>,
    values: Vec<Value>,
    timestamps: Vec<i64>,
}

/// A value as VictoriaMetrics writes it: a number, or null / "NaN" / "Inf" for what JSON cannot
/// spell (refused later, with the rest of the non-finite values).
#[derive(Deserialize)]
#[serde(untagged)]
enum Value {
    Number(f64),
    Null(()),
    Text(String),
}

/// The series in a body of JSON lines, or the first bad line's number and what is wrong with it.
pub fn decode(body: &[u8]) -> Result<Vec<Series>, ServeError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ServeError::BadRequest(format!("the body is not UTF-8 text ({e})")))?;
    let mut series = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: String| ServeError::BadRequest(format!("line {}: {why}", index + 1));
        let line: Line = serde_json::from_str(line).map_err(|e| {
            bad(format!(
                "{e}; each line is {{\"metric\":{{...}},\"values\":[...],\"timestamps\":[...]}}"
            ))
        })?;
        if line.values.len() != line.timestamps.len() {
            return Err(bad(format!(
                "{} values but {} timestamps; give one timestamp per value",
                line.values.len(),
                line.timestamps.len()
            )));
        }
        let points = line
            .timestamps
            .into_iter()
            .zip(line.values)
            .map(|(ts, value)| {
                let value = match value {
                    Value::Number(v) => Ok(v),
                    Value::Null(()) => Ok(f64::NAN),
                    Value::Text(t) => t
                        .parse::<f64>()
                        .map_err(|_| bad(format!("value `{t}` at timestamp {ts} is not a number"))),
                }?;
                Ok((ts, value))
            })
            .collect::<Result<Vec<_>, ServeError>>()?;
        series.push(Series {
            labels: line.metric.into_iter().collect(),
            points,
        });
    }
    Ok(series)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_and_a_bad_line_is_named() {
        let body = b"{\"metric\":{\"__name__\":\"cpu\",\"instance\":\"a\"},\"values\":[1,2.5],\"timestamps\":[10,20]}\n\n";
        let series = decode(body).unwrap();
        assert_eq!(series[0].points, vec![(10, 1.0), (20, 2.5)]);
        assert_eq!(series[0].labels[0], ("__name__".into(), "cpu".into()));
        let bad = b"{\"metric\":{},\"values\":[1],\"timestamps\":[1]}\n{\"metric\":{},\"values\":[1,2],\"timestamps\":[1]}";
        let message = decode(bad).unwrap_err().to_string();
        assert!(
            message.starts_with("line 2: 2 values but 1 timestamps"),
            "{message}"
        );
        assert!(decode(b"{nope")
            .unwrap_err()
            .to_string()
            .starts_with("line 1:"));
    }
}
