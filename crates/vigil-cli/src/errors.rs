//! How a failed command reports itself: the message on stderr, and with `--json` also a JSON
//! object on stdout that a script can read without parsing prose —
//! `{"error": "...", "path": "...", "line": 3, "column": "cpu"}` (`path`, `line` and `column`
//! present where the error names them). The exit code is the same either way.

use serde_json::{json, Map, Value};
use std::error::Error;
use std::path::PathBuf;
use vigil_core::CoreError;
use vigil_fleet::fleet::FleetError;
use vigil_models::ModelError;

/// Where an error points: a file, and in it a line and a column.
#[derive(Debug, Default, PartialEq)]
struct Place {
    path: Option<PathBuf>,
    line: Option<usize>,
    column: Option<String>,
}

fn core_place(e: &CoreError) -> Place {
    match e {
        CoreError::Parse {
            path, line, column, ..
        } => Place {
            path: Some(path.clone()),
            line: (*line > 0).then_some(*line),
            column: column.clone(),
        },
        CoreError::Io { path, .. }
        | CoreError::Write { path, .. }
        | CoreError::File { path, .. } => Place {
            path: Some(path.clone()),
            ..Place::default()
        },
        CoreError::Invalid(_) => Place::default(),
    }
}

fn model_place(e: &ModelError) -> Place {
    match e {
        ModelError::Core(inner) => core_place(inner),
        ModelError::ModelDir { path, .. } => Place {
            path: Some(path.clone()),
            ..Place::default()
        },
        _ => Place::default(),
    }
}

fn fleet_place(e: &FleetError) -> Place {
    match e {
        FleetError::Core(inner) => core_place(inner),
        FleetError::Model(inner) => model_place(inner),
        FleetError::Write { path, .. } | FleetError::Corrupt { path, .. } => Place {
            path: Some(path.clone()),
            ..Place::default()
        },
        _ => Place::default(),
    }
}

/// The first place any error of the chain names.
fn place_of(error: &anyhow::Error) -> Place {
    error
        .chain()
        .map(|cause: &(dyn Error + 'static)| {
            if let Some(e) = cause.downcast_ref::<CoreError>() {
                core_place(e)
            } else if let Some(e) = cause.downcast_ref::<ModelError>() {
                model_place(e)
            } else if let Some(e) = cause.downcast_ref::<FleetError>() {
                fleet_place(e)
            } else {
                Place::default()
            }
        })
        .find(|p| *p != Place::default())
        .unwrap_or_default()
}

/// The JSON object `--json` prints for a failed command.
pub fn error_json(error: &anyhow::Error) -> Value {
    let place = place_of(error);
    let mut object = Map::new();
    object.insert("error".into(), json!(format!("{error:#}")));
    if let Some(path) = place.path {
        object.insert("path".into(), json!(path.display().to_string()));
    }
    if let Some(line) = place.line {
        object.insert("line".into(), json!(line));
    }
    if let Some(column) = place.column {
        object.insert("column".into(), json!(column));
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parse_error_inside_a_model_error_gives_its_file_line_and_column() {
        let inner = CoreError::Parse {
            path: "t.csv".into(),
            line: 3,
            column: Some("cpu".into()),
            message: "`x` is not a number".into(),
        };
        let error = anyhow::Error::from(ModelError::Core(inner)).context("reading the series");
        let value = error_json(&error);
        assert_eq!(value["path"], "t.csv");
        assert_eq!(value["line"], 3);
        assert_eq!(value["column"], "cpu");
        assert!(value["error"].as_str().unwrap().contains("not a number"));
        let plain = error_json(&anyhow::anyhow!("no place"));
        assert!(plain.get("path").is_none() && plain["error"] == "no place");
    }
}
