//! Operators' feedback on an entity's scores (the convention of Azure Metrics Advisor and
//! Lookout for Metrics): a point or range marked `anomaly` (a missed anomaly when vigil did not
//! alarm), `not_anomaly` (a false alarm when it did) or `auto` (withdraws earlier feedback), or
//! a maintenance window. History is kept whole; where pieces overlap the latest wins.

use crate::error::{Result, ServeError};
use crate::store::FeedbackRow;
use serde::{Deserialize, Serialize};

/// A time as JSON gives it: milliseconds since the epoch, or an RFC 3339 string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Time {
    Millis(i64),
    Text(String),
}

impl Time {
    fn millis(&self, field: &str) -> Result<i64> {
        match self {
            Time::Millis(ms) => Ok(*ms),
            Time::Text(text) => chrono::DateTime::parse_from_rfc3339(text)
                .map(|t| t.timestamp_millis())
                .map_err(|e| {
                    ServeError::BadRequest(format!(
                        "`{field}` is `{text}`, not a time ({e}); give milliseconds since the epoch \
                         or RFC 3339 such as 2026-12-07T10:00:00Z"
                    ))
                }),
        }
    }
}

/// `POST /api/v1/feedback`'s body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    pub entity: String,
    pub start: Time,
    /// Defaults to `start` (a point).
    pub end: Option<Time>,
    pub label: Label,
    #[serde(default)]
    pub kind: Kind,
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub author: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    Anomaly,
    NotAnomaly,
    /// Withdraws earlier feedback on the range: vigil's own judgement stands again.
    Auto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Point,
    #[default]
    Range,
    /// Planned work: kept out of what retraining learns as normal.
    Maintenance,
}

fn name<T: Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// Feedback may reach this far past the service's clock (senders' clocks drift).
pub const CLOCK_SKEW_MS: i64 = 60_000;

impl FeedbackRequest {
    /// Parses a body, naming what is wrong (400).
    pub fn parse(body: &[u8]) -> Result<FeedbackRequest> {
        serde_json::from_slice(body).map_err(|e| {
            ServeError::BadRequest(format!(
                "the feedback is not valid: {e}; send {{\"entity\", \"start\", \"end\", \"label\": \
                 \"anomaly\"|\"not_anomaly\"|\"auto\", \"kind\": \"point\"|\"range\"|\"maintenance\", \
                 \"comment\", \"author\"}}"
            ))
        })
    }

    /// The row to keep, checked against `now_ms`.
    pub fn to_row(&self, now_ms: i64) -> Result<FeedbackRow> {
        let start = self.start.millis("start")?;
        let end = match &self.end {
            Some(end) => end.millis("end")?,
            None => start,
        };
        let bad = |m: String| Err(ServeError::BadRequest(m));
        if end < start {
            return bad(format!("`end` ({end}) is before `start` ({start})"));
        }
        if self.kind == Kind::Point && end != start {
            return bad("a `point` has one time: leave `end` out or equal to `start`".into());
        }
        if end > now_ms + CLOCK_SKEW_MS && self.kind != Kind::Maintenance {
            return bad(format!(
                "the range ends at {end} ms, in the future (now is {now_ms} ms); feedback is on \
                 what happened — plan future work with `kind: maintenance`"
            ));
        }
        if self.entity.is_empty() || self.comment.len() > 4096 || self.author.len() > 256 {
            return bad(
                "`entity` must be given; `comment` is at most 4096 bytes, `author` 256".into(),
            );
        }
        Ok(FeedbackRow {
            id: 0,
            entity: self.entity.clone(),
            start,
            end,
            label: name(self.label),
            kind: name(self.kind),
            comment: self.comment.clone(),
            author: self.author.clone(),
            received_at: now_ms,
        })
    }
}

/// A stretch of time and the feedback in force over it (the latest that covers it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Effective {
    pub start: i64,
    pub end: i64,
    pub label: String,
    pub kind: String,
    /// The feedback it comes from.
    pub id: i64,
}

/// What `history` (oldest first) says now, over each stretch of time: where pieces overlap the
/// latest wins, and `auto` leaves a stretch to vigil's judgement (it is not listed). Ranges are
/// inclusive of both ends, in milliseconds.
pub fn effective(history: &[FeedbackRow]) -> Vec<Effective> {
    let mut bounds: Vec<i64> = history
        .iter()
        .flat_map(|f| [f.start, f.end.saturating_add(1)])
        .collect();
    bounds.sort_unstable();
    bounds.dedup();
    let mut out: Vec<Effective> = Vec::new();
    for pair in bounds.windows(2) {
        let (from, to) = (pair[0], pair[1] - 1);
        let Some(latest) = history
            .iter()
            .rev()
            .find(|f| f.start <= from && to <= f.end)
        else {
            continue;
        };
        if latest.label == "auto" {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.id == latest.id && last.end + 1 == from => last.end = to,
            _ => out.push(Effective {
                start: from,
                end: to,
                label: latest.label.clone(),
                kind: latest.kind.clone(),
                id: latest.id,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, start: i64, end: i64, label: &str) -> FeedbackRow {
        FeedbackRow {
            id,
            entity: "a".into(),
            start,
            end,
            label: label.into(),
            kind: "range".into(),
            comment: String::new(),
            author: String::new(),
            received_at: 0,
        }
    }

    #[test]
    fn the_latest_feedback_wins_where_pieces_overlap_and_auto_withdraws() {
        let history = [
            row(1, 0, 100, "anomaly"),
            row(2, 50, 60, "not_anomaly"),
            row(3, 90, 200, "auto"),
        ];
        let now = effective(&history);
        let spans: Vec<(i64, i64, &str)> = now
            .iter()
            .map(|e| (e.start, e.end, e.label.as_str()))
            .collect();
        assert_eq!(
            spans,
            vec![
                (0, 49, "anomaly"),
                (50, 60, "not_anomaly"),
                (61, 89, "anomaly")
            ]
        );
    }

    #[test]
    fn bad_feedback_is_refused_with_what_to_send() {
        let now = 1_000_000;
        let parse =
            |json: &str| FeedbackRequest::parse(json.as_bytes()).and_then(|f| f.to_row(now));
        assert!(parse(r#"{"entity":"a","start":1,"end":5,"label":"anomaly"}"#).is_ok());
        assert!(parse(r#"{"entity":"a","start":"2026-12-07T00:00:00Z","label":"not_anomaly","kind":"point"}"#).is_err(), "in the future");
        for bad in [
            r#"{"entity":"a","start":1,"label":"maybe"}"#,
            r#"{"entity":"a","start":5,"end":1,"label":"anomaly"}"#,
            r#"{"entity":"a","start":1,"end":5,"label":"anomaly","kind":"point"}"#,
            r#"{"entity":"a","start":"yesterday","label":"anomaly"}"#,
            r#"{"entity":"a","start":1,"end":99999999,"label":"anomaly"}"#,
            r#"{"start":1,"label":"anomaly"}"#,
            r#"not json"#,
        ] {
            let err = parse(bad).unwrap_err();
            assert!(matches!(err, ServeError::BadRequest(_)), "{bad}: {err}");
        }
        // Planned maintenance may lie ahead.
        assert!(parse(
            r#"{"entity":"a","start":1,"end":99999999,"label":"anomaly","kind":"maintenance"}"#
        )
        .is_ok());
    }
}
