//! Prometheus remote-write 1.0: a snappy-compressed (block format) protobuf `WriteRequest`.
//!
//! The messages are derived by hand from `prompb/types.proto` and `prompb/remote.proto` (field
//! numbers as there), so that building vigil needs no `protoc`. Only what a receiver reads is
//! declared; prost skips the rest (metadata, exemplars, native histograms).

use super::Series;
use crate::error::ServeError;

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`: a series' labels and its samples, oldest first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`: a value at a time in milliseconds since the epoch.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// The content type remote-write 1.0 sends.
pub const CONTENT_TYPE: &str = "application/x-protobuf";

/// Checks the request's content type and encoding as the spec gives them (415 otherwise: the
/// sender is misconfigured, not overloaded).
pub fn check_headers(content_type: Option<&str>, encoding: Option<&str>) -> Result<(), ServeError> {
    let media = content_type.map(|c| c.split(';').next().unwrap_or("").trim());
    if media != Some(CONTENT_TYPE) {
        return Err(ServeError::Unsupported(format!(
            "remote-write takes `Content-Type: {CONTENT_TYPE}`, not {}; send protobuf \
             (VictoriaMetrics' JSON lines go to /api/v1/import)",
            content_type.map_or("none".into(), |c| format!("`{c}`"))
        )));
    }
    // A `proto=` parameter naming remote-write 2.0's message is a format vigil does not read.
    if let Some(proto) = content_type
        .and_then(|c| {
            c.split(';')
                .skip(1)
                .find_map(|p| p.trim().strip_prefix("proto="))
        })
        .filter(|p| *p != "prometheus.WriteRequest")
    {
        return Err(ServeError::Unsupported(format!(
            "remote-write message `{proto}` is not supported; send remote-write 1.0 \
             (prometheus.WriteRequest)"
        )));
    }
    if encoding.map(str::trim) != Some("snappy") {
        return Err(ServeError::Unsupported(format!(
            "remote-write takes `Content-Encoding: snappy`, not {}",
            encoding.map_or("none".into(), |e| format!("`{e}`"))
        )));
    }
    Ok(())
}

/// The series in a request body, which may decompress to at most `max_decoded` bytes (a few
/// bytes of snappy can claim gigabytes: the claim is checked before anything is allocated).
pub fn decode(body: &[u8], max_decoded: usize) -> Result<Vec<Series>, ServeError> {
    let claimed = snap::raw::decompress_len(body).map_err(|e| {
        ServeError::BadRequest(format!(
            "the body is not snappy block-compressed data ({e}); remote-write compresses each \
             request with snappy's block format, not its framed format"
        ))
    })?;
    if claimed > max_decoded {
        return Err(ServeError::TooLarge(format!(
            "the body decompresses to {claimed} bytes, over the {max_decoded} byte limit \
             (limits.decoded_bytes); send smaller batches"
        )));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| {
            ServeError::BadRequest(format!(
                "the body is not snappy block-compressed data ({e}); remote-write compresses each \
             request with snappy's block format, not its framed format"
            ))
        })?;
    let request = <WriteRequest as prost::Message>::decode(raw.as_slice()).map_err(|e| {
        ServeError::BadRequest(format!("the body is not a remote-write WriteRequest ({e})"))
    })?;
    Ok(request
        .timeseries
        .into_iter()
        .map(|series| Series {
            labels: series
                .labels
                .into_iter()
                .map(|l| (l.name, l.value))
                .collect(),
            points: series
                .samples
                .into_iter()
                .map(|s| (s.timestamp, s.value))
                .collect(),
        })
        .collect())
}

/// A request body with `series` (what Prometheus sends; tests and `vigil serve`'s own push use it).
pub fn encode(series: &[Series]) -> Vec<u8> {
    let request = WriteRequest {
        timeseries: series
            .iter()
            .map(|s| TimeSeries {
                labels: s
                    .labels
                    .iter()
                    .map(|(name, value)| Label {
                        name: name.clone(),
                        value: value.clone(),
                    })
                    .collect(),
                samples: s
                    .points
                    .iter()
                    .map(|&(timestamp, value)| Sample { value, timestamp })
                    .collect(),
            })
            .collect(),
    };
    let raw = prost::Message::encode_to_vec(&request);
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .expect("snappy compresses any input below 4 GiB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips_and_garbage_is_refused_with_a_reason() {
        let series = vec![Series {
            labels: vec![
                ("__name__".into(), "cpu".into()),
                ("instance".into(), "a".into()),
            ],
            points: vec![(1000, 0.5), (2000, 1.5)],
        }];
        assert_eq!(decode(&encode(&series), 1 << 20).unwrap(), series);
        let big = encode(&series);
        assert!(matches!(decode(&big, 10), Err(ServeError::TooLarge(_))));
        let not_snappy = decode(b"plain text", 1 << 20).unwrap_err().to_string();
        assert!(not_snappy.contains("snappy"), "{not_snappy}");
        let not_proto = snap::raw::Encoder::new().compress_vec(&[0xff; 9]).unwrap();
        let message = decode(&not_proto, 1 << 20).unwrap_err().to_string();
        assert!(message.contains("WriteRequest"), "{message}");
    }

    #[test]
    fn headers_other_than_the_specs_are_unsupported() {
        assert!(check_headers(Some(CONTENT_TYPE), Some("snappy")).is_ok());
        assert!(check_headers(
            Some("application/x-protobuf;proto=prometheus.WriteRequest"),
            Some("snappy")
        )
        .is_ok());
        for (ct, enc) in [
            (Some("application/json"), Some("snappy")),
            (None, Some("snappy")),
            (Some(CONTENT_TYPE), Some("gzip")),
            (Some(CONTENT_TYPE), None),
            (
                Some("application/x-protobuf;proto=io.prometheus.write.v2.Request"),
                Some("snappy"),
            ),
        ] {
            assert!(
                matches!(check_headers(ct, enc), Err(ServeError::Unsupported(_))),
                "{ct:?} {enc:?}"
            );
        }
    }
}
