//! The journal of a `vigil bench --output` run: every finished (detector, entity) row is
//! appended to `<output>.journal.jsonl` as it completes, so a run that is interrupted (a killed
//! process, a machine that restarts) and started again with the same command skips the rows it
//! already has instead of spending hours on them again. The table is written, and the journal
//! removed, only when every row is there.
//!
//! The first line names what made the rows (vigil's version, the arguments, the config file's
//! text); a journal made by anything else is refused rather than mixed into a new table.

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use vigil_models::experiment::EntityOutcome;

/// What made a journal's rows; two runs may share rows only when these are equal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalHeader {
    /// vigil's version.
    pub vigil: String,
    /// The command's arguments, without those that change only how results are shown.
    pub arguments: Vec<String>,
    /// The text of the `--config` file, if one was given.
    pub config: Option<String>,
}

impl JournalHeader {
    /// The header of the running command: `arguments` as given after `vigil`, `config` the
    /// `--config` file if any.
    pub fn of_command(
        arguments: impl Iterator<Item = String>,
        config: Option<&Path>,
    ) -> anyhow::Result<JournalHeader> {
        // Quiet and JSON output change what is printed, not what is measured.
        const DISPLAY_ONLY: [&str; 3] = ["-q", "--quiet", "--json"];
        let config = match config {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?,
            ),
            None => None,
        };
        Ok(JournalHeader {
            vigil: env!("CARGO_PKG_VERSION").to_string(),
            arguments: arguments
                .filter(|a| !DISPLAY_ONLY.contains(&a.as_str()))
                .collect(),
            config,
        })
    }
}

/// An open journal: the rows an earlier run of the same command finished, and the file that
/// this run appends its own rows to.
pub struct Journal {
    path: PathBuf,
    header: JournalHeader,
    /// Opened on the first row, so a run that fails before finishing one leaves no file.
    file: Option<File>,
    earlier: Vec<EntityOutcome>,
}

impl Journal {
    /// The journal of the table at `output`.
    pub fn path_for(output: &Path) -> PathBuf {
        let mut name = output.as_os_str().to_owned();
        name.push(".journal.jsonl");
        PathBuf::from(name)
    }

    /// The journal beside `output`, with the rows of an earlier run of the same command if
    /// there was one. A journal written by another command is an error that says what differs
    /// and how to start over.
    pub fn open(output: &Path, header: JournalHeader) -> anyhow::Result<Journal> {
        let path = Self::path_for(output);
        let earlier = if path.exists() {
            read_rows(&path, &header)?
        } else {
            Vec::new()
        };
        Ok(Journal {
            path,
            header,
            file: None,
            earlier,
        })
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The row an earlier run finished for this pair, if any.
    pub fn finished(&self, detector: &str, entity: &str) -> Option<&EntityOutcome> {
        self.earlier
            .iter()
            .find(|o| o.detector == detector && o.entity == entity)
    }

    /// How many rows came from earlier runs.
    pub fn earlier_rows(&self) -> usize {
        self.earlier.len()
    }

    /// Appends a finished row, on disk before this returns (a kill right after keeps it).
    pub fn record(&mut self, outcome: &EntityOutcome) -> anyhow::Result<()> {
        let cannot = || format!("cannot append to the bench journal {}", self.path.display());
        if self.file.is_none() {
            self.file = Some(self.start_file().with_context(cannot)?);
        }
        let file = self.file.as_mut().expect("opened above");
        writeln!(file, "{}", serde_json::to_string(outcome)?)
            .and_then(|_| file.sync_data())
            .with_context(cannot)
    }

    /// The file to append rows to: the earlier run's, or a new one that starts with the header.
    fn start_file(&self) -> std::io::Result<File> {
        if self.path.exists() {
            // A row cut short by a kill is dropped first, so the next row starts a line.
            let bytes = std::fs::read(&self.path)?;
            let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let file = OpenOptions::new().append(true).open(&self.path)?;
            file.set_len(whole as u64)?;
            return Ok(file);
        }
        let mut file = File::create(&self.path)?;
        writeln!(file, "{}", serde_json::to_string(&self.header)?)?;
        Ok(file)
    }

    /// Removes the journal once the table holding its rows is written.
    pub fn remove(self) -> anyhow::Result<()> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| {
                format!("cannot remove the bench journal {}", self.path.display())
            }),
        }
    }
}

/// The rows of the journal at `path`, which must have been written by `header`'s command. A
/// last line cut short (the process was killed while writing it) is dropped; any other
/// unreadable line is an error.
fn read_rows(path: &Path, header: &JournalHeader) -> anyhow::Result<Vec<EntityOutcome>> {
    let start_over = format!(
        "delete {} to start the bench over, or run the command that wrote it",
        path.display()
    );
    let reader = BufReader::new(
        File::open(path).with_context(|| format!("cannot read {}", path.display()))?,
    );
    let lines: Vec<String> = reader
        .lines()
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read the bench journal {}", path.display()))?;
    let Some(first) = lines.first() else {
        bail!(
            "the bench journal {} is empty; {start_over}",
            path.display()
        );
    };
    let written_by: JournalHeader = serde_json::from_str(first).with_context(|| {
        format!(
            "the first line of {} is not a bench journal header; {start_over}",
            path.display()
        )
    })?;
    if written_by != *header {
        bail!(
            "the bench journal {} was written by another command (vigil {}, arguments `{}`{}); \
             this one is vigil {}, arguments `{}`{}; {start_over}",
            path.display(),
            written_by.vigil,
            written_by.arguments.join(" "),
            config_note(&written_by),
            header.vigil,
            header.arguments.join(" "),
            config_note(header),
        );
    }
    let mut rows = Vec::new();
    let last = lines.len() - 1;
    for (i, line) in lines.iter().enumerate().skip(1) {
        match serde_json::from_str::<EntityOutcome>(line) {
            Ok(row) => rows.push(row),
            Err(_) if i == last => {} // cut short by a kill: that row runs again
            Err(e) => bail!(
                "line {} of the bench journal {} is not a bench row ({e}); {start_over}",
                i + 1,
                path.display()
            ),
        }
    }
    Ok(rows)
}

fn config_note(header: &JournalHeader) -> &'static str {
    if header.config.is_some() {
        " and its config file's text"
    } else {
        ""
    }
}
