//! Parquet with the wide-CSV columns: one numeric column per metric, an optional `timestamp`
//! (integer epoch seconds, an Arrow timestamp of any unit, or RFC 3339 text) and an optional
//! `label` (0/1 as integers, floats, booleans or text).
//!
//! Null metric cells are read as NaN and left to the cleaning policy, as empty CSV cells are.
//! Errors name the column and, for a bad cell, its row ("line" = row index + 1, as for `.npy`).
//! Compression: uncompressed and Snappy (pandas' and pyarrow's default) are built in.

use crate::error::{CoreError, Result};
use crate::read::csv::{parse_label, parse_timestamp};
use crate::series::{Series, Source};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampSecondType};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::Path;

enum Role {
    Timestamp,
    Label,
    Metric,
}

/// Reads a Parquet file laid out like a wide CSV file.
pub fn read_parquet(path: &Path) -> Result<Series> {
    let file = std::fs::File::open(path).map_err(|e| CoreError::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| {
        CoreError::file(
            path,
            format!("not a readable Parquet file ({e}); check the file"),
        )
    })?;
    let schema = builder.schema().clone();
    let roles: Vec<Role> = schema
        .fields()
        .iter()
        .map(|f| match f.name().trim() {
            "timestamp" => Role::Timestamp,
            "label" => Role::Label,
            _ => Role::Metric,
        })
        .collect();
    let mut metric_names = Vec::new();
    for (field, role) in schema.fields().iter().zip(&roles) {
        if matches!(role, Role::Metric) {
            if !(field.data_type().is_numeric() || field.data_type() == &DataType::Boolean) {
                return Err(parse_error(
                    path,
                    0,
                    field.name(),
                    format!(
                        "this column has type {}; metric columns must be numeric",
                        field.data_type()
                    ),
                ));
            }
            metric_names.push(field.name().trim().to_string());
        }
    }
    if metric_names.is_empty() {
        return Err(CoreError::file(
            path,
            "the file has no metric column (only timestamp/label columns); add at least one metric",
        ));
    }
    let m = metric_names.len();
    let has_ts = roles.iter().any(|r| matches!(r, Role::Timestamp));
    let has_label = roles.iter().any(|r| matches!(r, Role::Label));
    let reader = builder
        .build()
        .map_err(|e| CoreError::file(path, format!("cannot read the Parquet data: {e}")))?;
    let (mut values, mut timestamps, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    let mut first_row = 0usize;
    for batch in reader {
        let batch =
            batch.map_err(|e| CoreError::file(path, format!("corrupt Parquet data: {e}")))?;
        let rows = batch.num_rows();
        let start = values.len();
        values.resize(start + rows * m, f64::NAN);
        let mut metric = 0;
        for ((column, field), role) in batch.columns().iter().zip(schema.fields()).zip(&roles) {
            let name = field.name();
            match role {
                Role::Metric => {
                    let col = cast(path, column, &DataType::Float64, name)?;
                    let col = col.as_primitive::<Float64Type>();
                    for r in 0..rows {
                        if col.is_valid(r) {
                            values[start + r * m + metric] = col.value(r);
                        }
                    }
                    metric += 1;
                }
                Role::Timestamp => {
                    timestamps.extend(read_timestamps(path, column, name, first_row)?)
                }
                Role::Label => labels.extend(read_labels(path, column, name, first_row)?),
            }
        }
        first_row += rows;
    }
    if first_row == 0 {
        return Err(CoreError::file(
            path,
            "the file has columns but no rows; add at least one row of values",
        ));
    }
    let mut series = Series::new(metric_names, values)?;
    series.timestamps = has_ts.then_some(timestamps);
    series.labels = has_label.then_some(labels);
    series.source = Some(Source {
        path: path.to_path_buf(),
        first_line: 1,
    });
    Ok(series)
}

fn cast(path: &Path, column: &ArrayRef, to: &DataType, name: &str) -> Result<ArrayRef> {
    arrow_cast::cast(column, to).map_err(|e| {
        parse_error(
            path,
            0,
            name,
            format!("cannot read this column as {to}: {e}"),
        )
    })
}

fn read_timestamps(
    path: &Path,
    column: &ArrayRef,
    name: &str,
    first_row: usize,
) -> Result<Vec<i64>> {
    let missing = |r: usize| parse_error(path, first_row + r + 1, name, "missing timestamp".into());
    match column.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let text = cast(path, column, &DataType::Utf8, name)?;
            let text = text.as_string::<i32>();
            (0..text.len())
                .map(|r| {
                    if text.is_null(r) {
                        return Err(missing(r));
                    }
                    parse_timestamp(text.value(r)).ok_or_else(|| {
                        parse_error(
                            path,
                            first_row + r + 1,
                            name,
                            format!(
                                "`{}` is not a timestamp (use RFC 3339 or epoch seconds)",
                                text.value(r)
                            ),
                        )
                    })
                })
                .collect()
        }
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
            let secs = cast(
                path,
                column,
                &DataType::Timestamp(TimeUnit::Second, None),
                name,
            )?;
            let secs = secs.as_primitive::<TimestampSecondType>();
            (0..secs.len())
                .map(|r| {
                    secs.is_valid(r)
                        .then(|| secs.value(r))
                        .ok_or_else(|| missing(r))
                })
                .collect()
        }
        _ => {
            let secs = cast(path, column, &DataType::Int64, name)?;
            let secs = secs.as_primitive::<Int64Type>();
            (0..secs.len())
                .map(|r| {
                    secs.is_valid(r)
                        .then(|| secs.value(r))
                        .ok_or_else(|| missing(r))
                })
                .collect()
        }
    }
}

fn read_labels(path: &Path, column: &ArrayRef, name: &str, first_row: usize) -> Result<Vec<u8>> {
    let bad = |r: usize, v: String| {
        parse_error(
            path,
            first_row + r + 1,
            name,
            format!("label `{v}` is not 0 or 1"),
        )
    };
    if matches!(
        column.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) {
        let text = cast(path, column, &DataType::Utf8, name)?;
        let text = text.as_string::<i32>();
        return (0..text.len())
            .map(|r| {
                let v = if text.is_null(r) { "" } else { text.value(r) };
                parse_label(v).ok_or_else(|| bad(r, v.to_string()))
            })
            .collect();
    }
    let numbers = cast(path, column, &DataType::Float64, name)?;
    let numbers = numbers.as_primitive::<Float64Type>();
    (0..numbers.len())
        .map(|r| match (numbers.is_valid(r), numbers.value(r)) {
            (true, 0.0) => Ok(0),
            (true, 1.0) => Ok(1),
            (true, v) => Err(bad(r, v.to_string())),
            (false, _) => Err(bad(r, "null".into())),
        })
        .collect()
}

fn parse_error(path: &Path, line: usize, column: &str, message: String) -> CoreError {
    CoreError::Parse {
        path: path.to_path_buf(),
        line,
        column: Some(column.trim().to_string()),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
    use arrow_schema::{Field, Schema};
    use parquet::arrow::ArrowWriter;
    use std::sync::Arc;

    fn write(path: &Path, columns: Vec<(&str, ArrayRef)>) {
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        let batch = RecordBatch::try_new(
            schema.clone(),
            columns.into_iter().map(|(_, a)| a).collect(),
        )
        .unwrap();
        let mut w =
            ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    #[test]
    fn reads_metrics_timestamps_labels_and_nulls() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.parquet");
        write(
            &path,
            vec![
                (
                    "timestamp",
                    Arc::new(StringArray::from(vec![
                        "2024-01-01T00:00:00Z",
                        "2024-01-01T00:01:00Z",
                    ])) as ArrayRef,
                ),
                ("cpu", Arc::new(Float64Array::from(vec![Some(0.5), None]))),
                ("mem", Arc::new(Int64Array::from(vec![3, 4]))),
                ("label", Arc::new(Int64Array::from(vec![0, 1]))),
            ],
        );
        let s = read_parquet(&path).unwrap();
        assert_eq!(s.metric_names, vec!["cpu", "mem"]);
        assert_eq!(s.values[0], 0.5);
        assert!(s.values[2].is_nan());
        assert_eq!(s.values[3], 4.0);
        assert_eq!(s.timestamps, Some(vec![1_704_067_200, 1_704_067_260]));
        assert_eq!(s.labels, Some(vec![0, 1]));
    }

    #[test]
    fn bad_cells_and_columns_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.parquet");
        write(
            &path,
            vec![
                (
                    "cpu",
                    Arc::new(Float64Array::from(vec![1.0, 2.0])) as ArrayRef,
                ),
                ("label", Arc::new(Int64Array::from(vec![0, 7]))),
            ],
        );
        let e = read_parquet(&path).unwrap_err().to_string();
        assert!(
            e.contains(":2") && e.contains("label") && e.contains("`7`"),
            "{e}"
        );

        write(
            &path,
            vec![(
                "host",
                Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef,
            )],
        );
        let e = read_parquet(&path).unwrap_err().to_string();
        assert!(e.contains("host") && e.contains("numeric"), "{e}");

        std::fs::write(&path, b"not parquet").unwrap();
        let e = read_parquet(&path).unwrap_err().to_string();
        assert!(e.contains("Parquet"), "{e}");
    }
}
