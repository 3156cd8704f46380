//! NumPy `.npy` files: 2-D (time x metrics) or 1-D (one metric), float32 or float64, C order.

use crate::error::{CoreError, Result};
use crate::series::{default_metric_names, Series, Source};
use std::path::Path;

/// Reads a 2-D (or 1-D) float `.npy` array as a series with metrics `m0, m1, ...`.
pub fn read_npy(path: &Path) -> Result<Series> {
    let bytes = std::fs::read(path).map_err(|e| CoreError::io(path, e))?;
    let npy = npyz::NpyFile::new(bytes.as_slice()).map_err(|e| {
        CoreError::file(
            path,
            format!("not a valid .npy file ({e}); write it with numpy.save"),
        )
    })?;
    let shape = npy.shape().to_vec();
    if npy.order() != npyz::Order::C {
        return Err(CoreError::file(
            path,
            "the array is in Fortran order; save it with numpy.ascontiguousarray first",
        ));
    }
    let (rows, cols) = match shape.as_slice() {
        [t] => (*t as usize, 1),
        [t, m] => (*t as usize, *m as usize),
        other => {
            return Err(CoreError::file(
                path,
                format!(
                    "the array has shape {other:?}; a series needs 2 dimensions (time x metrics)"
                ),
            ))
        }
    };
    if rows == 0 || cols == 0 {
        return Err(CoreError::file(
            path,
            format!("the array is empty (shape {shape:?})"),
        ));
    }
    let dtype = npy.dtype();
    let type_str = match &dtype {
        npyz::DType::Plain(ts) => ts.to_string(),
        other => format!("{other:?}"),
    };
    // The header's shape is only a claim: check it against the bytes the file really holds
    // before anything is allocated for it (an absurd shape would overflow or exhaust memory).
    let item_size: u64 = match type_str.as_str() {
        "<f4" => 4,
        "<f8" => 8,
        _ => 1,
    };
    let claimed = (rows as u64)
        .checked_mul(cols as u64)
        .and_then(|cells| cells.checked_mul(item_size));
    let data_bytes = bytes.len() as u64;
    if claimed.is_none_or(|claimed| claimed > data_bytes) {
        return Err(CoreError::file(
            path,
            format!(
                "the header declares shape {shape:?} ({}), but the file holds only {data_bytes} bytes; the file is truncated or its header is corrupt — write it again with numpy.save",
                claimed.map_or("more bytes than a file can hold".to_string(), |c| format!("{c} bytes of data"))
            ),
        ));
    }
    let values: Vec<f64> = match type_str.as_str() {
        "<f4" => npy
            .into_vec::<f32>()
            .map_err(|e| CoreError::file(path, format!("cannot decode float32 data: {e}")))?
            .into_iter()
            .map(f64::from)
            .collect(),
        "<f8" => npy
            .into_vec::<f64>()
            .map_err(|e| CoreError::file(path, format!("cannot decode float64 data: {e}")))?,
        other => {
            return Err(CoreError::file(
                path,
                format!("dtype {other} is not supported; convert the array to float32 or float64"),
            ))
        }
    };
    debug_assert_eq!(values.len(), rows * cols);
    let mut series = Series::new(default_metric_names(cols), values)?;
    // For arrays, "line" means the row index + 1.
    series.source = Some(Source {
        path: path.to_path_buf(),
        first_line: 1,
    });
    Ok(series)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_npy(path: &Path, rows: u64, cols: u64, data: &[f64]) {
        let mut out = Vec::new();
        use npyz::WriterBuilder;
        let mut w = npyz::WriteOptions::<f64>::new()
            .default_dtype()
            .shape(&[rows, cols])
            .writer(&mut out)
            .begin_nd()
            .unwrap();
        w.extend(data.iter().copied()).unwrap();
        w.finish().unwrap();
        std::fs::write(path, out).unwrap();
    }

    #[test]
    fn reads_float64_matrix() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        write_npy(&p, 2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let s = read_npy(&p).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.n_metrics(), 3);
        assert_eq!(s.row(1), &[4.0, 5.0, 6.0]);
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.npy");
        std::fs::write(&p, b"not numpy").unwrap();
        assert!(read_npy(&p)
            .unwrap_err()
            .to_string()
            .contains("not a valid .npy"));
    }
}
