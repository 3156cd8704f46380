//! The public benchmark data sets in the layouts their publishers distribute
//! (see `../shared/data/README.md`): SMD, SKAB and NASA SMAP/MSL.

use crate::error::{CoreError, Result};
use crate::read::csv::{read_csv_with, CsvLayout};
use crate::read::npy::read_npy;
use crate::read::text::{read_headerless, read_label_lines};
use crate::series::{Dataset, Entity, Interpretation, Series};
use std::path::{Path, PathBuf};

/// The benchmark layouts vigil reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchmarkKind {
    /// Server Machine Dataset (`SMD/{train,test,test_label,interpretation_label}/machine-*.txt`).
    Smd,
    /// NASA SMAP channels (`SMAP_MSL/{train,test}/*.npy` + `labeled_anomalies.csv`).
    Smap,
    /// NASA MSL channels.
    Msl,
    /// Skoltech Anomaly Benchmark (`SKAB/{valve1,valve2,other}/*.csv`).
    Skab,
}

impl std::str::FromStr for BenchmarkKind {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "smd" => Ok(Self::Smd),
            "smap" => Ok(Self::Smap),
            "msl" => Ok(Self::Msl),
            "skab" => Ok(Self::Skab),
            other => Err(CoreError::invalid(format!(
                "unknown data set `{other}`; choose one of smd, smap, msl, skab"
            ))),
        }
    }
}

/// Rows of each SKAB experiment used for training, as in the SKAB leaderboard's protocol.
pub const SKAB_TRAIN_ROWS: usize = 400;

/// Loads a benchmark from `data_dir` (the folder that holds `SMD/`, `SKAB/`, `SMAP_MSL/`).
/// `only` keeps the entities whose names it lists (all when empty).
pub fn load_benchmark(kind: BenchmarkKind, data_dir: &Path, only: &[String]) -> Result<Dataset> {
    let dataset = match kind {
        BenchmarkKind::Smd => load_smd(&data_dir.join("SMD"), only)?,
        BenchmarkKind::Smap => load_nasa(&data_dir.join("SMAP_MSL"), "SMAP", only)?,
        BenchmarkKind::Msl => load_nasa(&data_dir.join("SMAP_MSL"), "MSL", only)?,
        BenchmarkKind::Skab => load_skab(&data_dir.join("SKAB"), only)?,
    };
    if dataset.entities.is_empty() {
        return Err(CoreError::file(
            data_dir,
            format!(
                "no {} entity found{}",
                dataset.name,
                if only.is_empty() {
                    String::new()
                } else {
                    format!(" among {only:?}")
                }
            ),
        ));
    }
    Ok(dataset)
}

fn sorted_files(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| CoreError::io(dir, e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort_by_key(|p| natural_key(p));
    Ok(files)
}

/// Sorts `2.csv` before `10.csv`.
pub(crate) fn natural_key(p: &Path) -> (String, Vec<NaturalChunk>, String) {
    let parent = p
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let stem = stem(p);
    (parent, natural_chunks(&stem), stem)
}

/// The order of entity names that the folder readers give their files (`machine-1-2` before
/// `machine-1-10`), for entities that come without files (the Python package's fleet).
pub fn natural_name_key(name: &str) -> (Vec<NaturalChunk>, String) {
    (natural_chunks(name), name.to_string())
}

/// A run of digits (compared as a number) or of other characters (compared as text).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum NaturalChunk {
    Number(u128),
    Text(String),
}

/// `machine-1-10` as `machine-`, 1, `-`, 10: names then sort as people number them.
fn natural_chunks(name: &str) -> Vec<NaturalChunk> {
    let mut chunks = Vec::new();
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        let digits = c.is_ascii_digit();
        let end = rest
            .find(|x: char| x.is_ascii_digit() != digits)
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(end);
        chunks.push(match run.parse() {
            Ok(n) if digits => NaturalChunk::Number(n),
            _ => NaturalChunk::Text(run.to_string()),
        });
        rest = tail;
    }
    chunks
}

pub(crate) fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default()
}

fn wanted(name: &str, only: &[String]) -> bool {
    only.is_empty() || only.iter().any(|o| o == name)
}

/// SMD: headerless text files; labels one a line; interpretation labels `start-end:d1,d2,...`.
pub fn load_smd(dir: &Path, only: &[String]) -> Result<Dataset> {
    let mut entities = Vec::new();
    for train_path in sorted_files(&dir.join("train"), "txt")? {
        let name = stem(&train_path);
        if !wanted(&name, only) {
            continue;
        }
        let file = format!("{name}.txt");
        let train = read_headerless(&train_path)?;
        let mut test = read_headerless(&dir.join("test").join(&file))?;
        train.check_same_metrics(&test, &format!("SMD test file {file}"))?;
        let labels = read_label_lines(&dir.join("test_label").join(&file))?;
        check_label_length(
            &dir.join("test_label").join(&file),
            labels.len(),
            test.len(),
        )?;
        test.labels = Some(labels);
        let interp = dir.join("interpretation_label").join(&file);
        if interp.exists() {
            test.interpretation = Some(read_interpretation(&interp, test.n_metrics())?);
        }
        entities.push(Entity { name, train, test });
    }
    Ok(Dataset {
        name: "smd".into(),
        entities,
    })
}

fn check_label_length(path: &Path, n_labels: usize, n_steps: usize) -> Result<()> {
    if n_labels != n_steps {
        return Err(CoreError::file(
            path,
            format!("{n_labels} labels for {n_steps} test time steps; the label file must have one line per test row"),
        ));
    }
    Ok(())
}

/// Parses SMD interpretation labels (1-based inclusive ranges and metric numbers) to 0-based.
pub fn read_interpretation(path: &Path, n_metrics: usize) -> Result<Vec<Interpretation>> {
    let text = std::fs::read_to_string(path).map_err(|e| CoreError::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = |m: &str| CoreError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            column: None,
            message: format!("{m}; expected `start-end:d1,d2,...`"),
        };
        let (range, dims) = line.split_once(':').ok_or_else(|| bad("no `:`"))?;
        let (a, b) = range
            .split_once('-')
            .ok_or_else(|| bad("no `-` in the range"))?;
        let start: usize = a.trim().parse().map_err(|_| bad("bad range start"))?;
        let end: usize = b.trim().parse().map_err(|_| bad("bad range end"))?;
        let metrics = dims
            .split(',')
            .map(|d| {
                d.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|&d| d >= 1 && d <= n_metrics)
                    .map(|d| d - 1)
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("a metric number is not in 1..=M"))?;
        if start == 0 || end < start {
            return Err(bad("the range must be 1-based with start <= end"));
        }
        out.push(Interpretation {
            start: start - 1,
            end: end - 1,
            metrics,
        });
    }
    Ok(out)
}

/// NASA SMAP/MSL: one entity per channel of the spacecraft; labels from `labeled_anomalies.csv`.
pub fn load_nasa(dir: &Path, spacecraft: &str, only: &[String]) -> Result<Dataset> {
    let meta_path = dir.join("labeled_anomalies.csv");
    let text = std::fs::read_to_string(&meta_path).map_err(|e| CoreError::io(&meta_path, e))?;
    let mut entities = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let (chan, rest) = line.split_once(',').ok_or_else(|| CoreError::Parse {
            path: meta_path.clone(),
            line: i + 1,
            column: None,
            message: "expected `chan_id,spacecraft,anomaly_sequences,...`".into(),
        })?;
        let Some(rest) = rest
            .strip_prefix(spacecraft)
            .and_then(|r| r.strip_prefix(','))
        else {
            continue;
        };
        if !wanted(chan, only) {
            continue;
        }
        // `"[[2149, 2349], [4536, 4844]]"` — the first quoted field holds the ranges.
        let ranges_text = rest.split('"').nth(1).unwrap_or("");
        let numbers: Vec<usize> = ranges_text
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse().ok())
            .collect();
        let train = read_npy(&dir.join("train").join(format!("{chan}.npy")))?;
        let mut test = read_npy(&dir.join("test").join(format!("{chan}.npy")))?;
        train.check_same_metrics(&test, &format!("test/{chan}.npy"))?;
        let mut labels = vec![0u8; test.len()];
        for pair in numbers.chunks(2) {
            if let [a, b] = pair {
                for l in labels.iter_mut().take(b + 1).skip(*a) {
                    *l = 1;
                }
            }
        }
        test.labels = Some(labels);
        entities.push(Entity {
            name: chan.to_string(),
            train,
            test,
        });
    }
    entities.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Dataset {
        name: spacecraft.to_ascii_lowercase(),
        entities,
    })
}

/// SKAB: each experiment file is an entity; its first [`SKAB_TRAIN_ROWS`] rows train, the rest test.
pub fn load_skab(dir: &Path, only: &[String]) -> Result<Dataset> {
    let layout = CsvLayout {
        timestamp_columns: vec!["datetime"],
        label_columns: vec!["anomaly"],
        ignored_columns: vec!["changepoint"],
    };
    let mut entities = Vec::new();
    for group in ["valve1", "valve2", "other"] {
        let group_dir = dir.join(group);
        if !group_dir.exists() {
            continue;
        }
        for path in sorted_files(&group_dir, "csv")? {
            let name = format!("{group}/{}", stem(&path));
            if !wanted(&name, only) {
                continue;
            }
            let series: Series = read_csv_with(&path, &layout)?;
            if series.len() <= SKAB_TRAIN_ROWS {
                return Err(CoreError::file(
                    &path,
                    format!(
                        "{} rows; SKAB experiments need more than {SKAB_TRAIN_ROWS}",
                        series.len()
                    ),
                ));
            }
            let mut train = series.slice(0, SKAB_TRAIN_ROWS);
            train.labels = None;
            let test = series.slice(SKAB_TRAIN_ROWS, series.len());
            entities.push(Entity { name, train, test });
        }
    }
    Ok(Dataset {
        name: "skab".into(),
        entities,
    })
}
