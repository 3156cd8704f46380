//! Generated microservice systems, for topology-aware detection and fault localisation
//! (TopoMAD) where the paper's data sets are not available.
//!
//! A system is a call graph whose first component, the gateway, takes the outside load; every
//! other component is called by one or two earlier ones. Load flows down the calls (a callee
//! serves what its callers send it, times the calls per request on that edge), and latency and
//! errors flow back up: a caller waits for its callees' answers and passes their failures on,
//! one step later per hop. Each component's service time also drifts on its own (an AR(1)
//! process), and its callers' latency follows that drift through the calls: in normal operation
//! too, a component's latency is explained by its callees' — the relation a graph model can
//! learn. Every component reports the same five metrics — `cpu`, `memory`, `latency`, `rate`
//! (requests served) and `errors` — as columns `component.metric`.
//!
//! The test series carries faults, one component at a time: a CPU hog, a memory leak, slow
//! queries or an error burst. Each changes its component's own metrics, and its callers inherit
//! the latency and errors it causes a step per hop later, scaled by their calls per request. A
//! caller gives up on a call after a timeout (2.5 times the callee's normal mean latency), so a
//! callee slow enough makes its callers fail requests: the symptoms spread up the call chain and
//! change kind on the way (latency at the root, errors at its callers), so the component that
//! deviates most is not always the faulty one — what a localiser must see through. Labels cover
//! the fault's own steps; its callers keep showing it for a step per hop after it ends.

use crate::error::{CoreError, Result};
use crate::series::{Interpretation, Series};
use crate::topology::Topology;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};
use std::f64::consts::TAU;
use std::path::Path;

/// The files [`GeneratedSystem::write`] writes.
pub const SYSTEM_FILES: [&str; 4] = ["train.csv", "test.csv", "edges.csv", "faults.csv"];

/// The metrics every component reports, in column order.
pub const METRICS: [&str; 5] = ["cpu", "memory", "latency", "rate", "errors"];

/// How to generate a system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SystemConfig {
    /// Components, the gateway included (at least 2).
    pub components: usize,
    /// Training steps (fault-free).
    pub train_len: usize,
    /// Test steps.
    pub test_len: usize,
    /// Steps per load cycle (a day).
    pub period: usize,
    /// Faults injected into the test series.
    pub faults: usize,
    /// Shortest and longest fault, in steps.
    pub fault_len: (usize, usize),
    /// Relative measurement noise on every metric; the service-time drift's standard deviation
    /// is five times it (0: a noise-free, deterministic system).
    pub noise: f64,
    /// Seed for every random choice.
    pub seed: u64,
}

impl Default for SystemConfig {
    fn default() -> Self {
        SystemConfig {
            components: 8,
            train_len: 3000,
            test_len: 3000,
            period: 288,
            faults: 12,
            fault_len: (20, 40),
            noise: 0.03,
            seed: 0,
        }
    }
}

/// What a fault does to its component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// A process burns CPU: the component's CPU rises and its service slows.
    CpuHog,
    /// Memory grows through the fault and slows the service as it does.
    MemoryLeak,
    /// Queries take three times as long.
    SlowQueries,
    /// A share of requests fail.
    ErrorBurst,
}

const KINDS: [FaultKind; 4] = [
    FaultKind::CpuHog,
    FaultKind::MemoryLeak,
    FaultKind::SlowQueries,
    FaultKind::ErrorBurst,
];

impl FaultKind {
    fn name(self) -> &'static str {
        match self {
            FaultKind::CpuHog => "cpu-hog",
            FaultKind::MemoryLeak => "memory-leak",
            FaultKind::SlowQueries => "slow-queries",
            FaultKind::ErrorBurst => "error-burst",
        }
    }
}

/// One injected fault: steps `start..=end` of the test series, at one component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// First faulty step.
    pub start: usize,
    /// Last faulty step (inclusive).
    pub end: usize,
    /// Index of the faulty component.
    pub component: usize,
    /// What went wrong.
    pub kind: FaultKind,
}

/// A generated system: its graph, a fault-free training series and a test series with faults.
#[derive(Debug, Clone)]
pub struct GeneratedSystem {
    /// Component names (`gateway`, `svc1`, ...).
    pub components: Vec<String>,
    /// Calls `(caller, callee)`.
    pub edges: Vec<(usize, usize)>,
    /// Fault-free training series.
    pub train: Series,
    /// Test series, labelled per step, with each fault's component's columns as its
    /// interpretation.
    pub test: Series,
    /// The faults, in time order.
    pub faults: Vec<Fault>,
}

impl GeneratedSystem {
    /// The system's topology over its columns.
    pub fn topology(&self) -> Topology {
        let c = METRICS.len();
        Topology {
            components: self.components.clone(),
            metrics: METRICS.iter().map(|m| m.to_string()).collect(),
            columns: (0..self.components.len() * c).collect(),
            edges: self.edges.clone(),
        }
    }

    /// Writes `train.csv`, `test.csv` (with a `label` column), `edges.csv` and `faults.csv`
    /// (`start,end,component,kind`, steps of the test series) into `dir`.
    /// The folder must not exist yet, or be empty: a new folder is written as a staging folder
    /// beside it that becomes `dir` only once all four files are complete.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let occupied = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
        if occupied || (dir.exists() && !dir.is_dir()) {
            return Err(CoreError::file(
                dir,
                "already exists and is not an empty folder; choose a new folder for the system",
            ));
        }
        if dir.is_dir() {
            // An empty folder (`--out .` included, which cannot be renamed into place): the
            // files go straight in, each written whole, and are removed again on failure.
            let written = self.write_files(dir);
            if written.is_err() {
                for name in SYSTEM_FILES {
                    let _ = std::fs::remove_file(dir.join(name));
                }
            }
            return written;
        }
        let staged = crate::write::staging_dir(dir)?;
        let written = self
            .write_files(&staged)
            .and_then(|()| std::fs::rename(&staged, dir).map_err(|e| CoreError::write(dir, e)));
        if written.is_err() {
            let _ = std::fs::remove_dir_all(&staged);
        }
        written
    }

    fn write_files(&self, dir: &Path) -> Result<()> {
        crate::write::write_series_csv(&self.train, &dir.join("train.csv"))?;
        crate::write::write_series_csv(&self.test, &dir.join("test.csv"))?;
        let mut edges = String::from("source,target\n");
        for &(a, b) in &self.edges {
            edges += &format!("{},{}\n", self.components[a], self.components[b]);
        }
        let mut faults = String::from("start,end,component,kind\n");
        for f in &self.faults {
            faults += &format!(
                "{},{},{},{}\n",
                f.start,
                f.end,
                self.components[f.component],
                f.kind.name()
            );
        }
        for (name, text) in [("edges.csv", edges), ("faults.csv", faults)] {
            let path = dir.join(name);
            crate::write::write_atomically(&path, |w| {
                w.write_all(text.as_bytes())
                    .map_err(|e| CoreError::write(&path, e))
            })?;
        }
        Ok(())
    }
}

/// One component's fixed traits.
struct Profile {
    base_cpu: f64,
    cpu_per_request: f64,
    base_memory: f64,
    service_time: f64,
    base_errors: f64,
}

/// Generates a system from `cfg`, with `cfg.faults` faults placed at random.
pub fn generate_system(cfg: &SystemConfig) -> Result<GeneratedSystem> {
    generate(cfg, None)
}

/// Generates the system of `cfg` (the same graph and profiles as [`generate_system`] gives for
/// it) with the given faults instead of random ones, e.g. one chosen fault at one component.
pub fn generate_system_with_faults(
    cfg: &SystemConfig,
    faults: Vec<Fault>,
) -> Result<GeneratedSystem> {
    if let Some(f) = faults
        .iter()
        .find(|f| f.component >= cfg.components || f.end < f.start || f.end >= cfg.test_len)
    {
        return Err(CoreError::invalid(format!(
            "fault at component {} over steps {}..={} does not fit a system of {} components \
             and {} test steps",
            f.component, f.start, f.end, cfg.components, cfg.test_len
        )));
    }
    generate(cfg, Some(faults))
}

fn generate(cfg: &SystemConfig, given_faults: Option<Vec<Fault>>) -> Result<GeneratedSystem> {
    if cfg.train_len == 0 || cfg.test_len == 0 {
        return Err(CoreError::invalid(format!(
            "a system needs training and test steps, got train_len {} and test_len {}",
            cfg.train_len, cfg.test_len
        )));
    }
    if cfg.components < 2 {
        return Err(CoreError::invalid(format!(
            "a system needs at least 2 components (a gateway and a service), got {}",
            cfg.components
        )));
    }
    let (shortest, longest) = cfg.fault_len;
    if shortest == 0 || longest < shortest {
        return Err(CoreError::invalid(format!(
            "fault_len must be (shortest, longest) with 1 <= shortest <= longest, got {:?}",
            cfg.fault_len
        )));
    }
    let room = (longest + 2 * shortest).checked_mul(cfg.faults);
    if given_faults.is_none() && room.is_none_or(|room| room > cfg.test_len) {
        return Err(CoreError::invalid(format!(
            "{} faults of up to {longest} steps do not fit apart in {} test steps; lower \
             faults or raise test_len",
            cfg.faults, cfg.test_len
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let n = cfg.components;
    let components: Vec<String> = (0..n)
        .map(|i| match i {
            0 => "gateway".to_string(),
            i => format!("svc{i}"),
        })
        .collect();
    // Component i is called by one of the three before it, and sometimes by a second earlier
    // one: a call graph a few levels deep whose edges all point to later components.
    let mut edges = Vec::new();
    for i in 1..n {
        let parent = rng.gen_range(i.saturating_sub(3)..i);
        edges.push((parent, i));
        if i >= 2 && rng.gen_bool(0.3) {
            let other = rng.gen_range(0..i);
            if other != parent {
                edges.push((other, i));
            }
        }
    }
    edges.sort();
    // Calls per request on each edge: the callee's share of the caller's load, and how many
    // of its answers the caller waits for.
    let fan_out: Vec<f64> = edges.iter().map(|_| rng.gen_range(0.5..1.5)).collect();
    let profiles: Vec<Profile> = (0..n)
        .map(|_| Profile {
            base_cpu: rng.gen_range(5.0..15.0),
            cpu_per_request: rng.gen_range(0.2..0.5),
            base_memory: rng.gen_range(200.0..800.0),
            service_time: rng.gen_range(2.0..10.0),
            base_errors: rng.gen_range(0.0..0.5),
        })
        .collect();
    let system = System {
        n,
        edges: &edges,
        fan_out: &fan_out,
        profiles: &profiles,
        period: cfg.period.max(2) as f64,
        noise: cfg.noise,
        timeouts: Vec::new(),
    }
    .with_timeouts();
    let faults = match given_faults {
        Some(faults) => faults,
        None => place_faults(cfg, n, &mut rng),
    };
    // One run for both series, so the test continues the training's state (load cycle,
    // service-time drift, latencies in flight) instead of restarting it.
    let mut train = system.run(
        cfg.train_len + cfg.test_len,
        &faults,
        cfg.train_len,
        &mut rng,
    );
    let test = train.split_off(cfg.train_len * n * METRICS.len());
    let names: Vec<String> = components
        .iter()
        .flat_map(|c| METRICS.iter().map(move |m| format!("{c}.{m}")))
        .collect();
    let train = Series::new(names.clone(), train)?;
    let mut test = Series::new(names, test)?;
    let mut labels = vec![0u8; cfg.test_len];
    for f in &faults {
        labels[f.start..=f.end].fill(1);
    }
    test.labels = Some(labels);
    let c = METRICS.len();
    test.interpretation = Some(
        faults
            .iter()
            .map(|f| Interpretation {
                start: f.start,
                end: f.end,
                metrics: (f.component * c..(f.component + 1) * c).collect(),
            })
            .collect(),
    );
    Ok(GeneratedSystem {
        components,
        edges,
        train,
        test,
        faults,
    })
}

/// Faults spread over the test series (one per equal slot, at a random place inside it), at
/// components taken in a shuffled round so that every component is faulty about as often.
fn place_faults(cfg: &SystemConfig, n: usize, rng: &mut ChaCha8Rng) -> Vec<Fault> {
    let (shortest, longest) = cfg.fault_len;
    let slot = cfg.test_len / cfg.faults.max(1);
    let mut order: Vec<usize> = Vec::new();
    (0..cfg.faults)
        .map(|k| {
            if order.is_empty() {
                order = (0..n).collect();
                for i in (1..n).rev() {
                    order.swap(i, rng.gen_range(0..=i));
                }
            }
            let len = rng.gen_range(shortest..=longest);
            // A gap of `shortest` steps at each end of the slot keeps faults apart.
            let start = k * slot + shortest + rng.gen_range(0..=slot - len - 2 * shortest);
            Fault {
                start,
                end: start + len - 1,
                component: order.pop().expect("refilled above"),
                kind: KINDS[rng.gen_range(0..KINDS.len())],
            }
        })
        .collect()
}

/// A system's fixed structure, run step by step.
struct System<'a> {
    n: usize,
    edges: &'a [(usize, usize)],
    fan_out: &'a [f64],
    profiles: &'a [Profile],
    period: f64,
    noise: f64,
    /// How long a caller waits on each edge before giving up on the call (ms; infinite: never).
    timeouts: Vec<f64>,
}

/// A caller's timeout on a call, as a multiple of the callee's mean latency in normal operation.
const TIMEOUT_OVER_NORMAL: f64 = 2.5;

impl System<'_> {
    /// Sets every edge's timeout to [`TIMEOUT_OVER_NORMAL`] times its callee's mean latency over
    /// one noise-free, fault-free cycle (as operators size timeouts from what they see).
    fn with_timeouts(mut self) -> Self {
        let quiet = System {
            noise: 0.0,
            timeouts: vec![f64::INFINITY; self.edges.len()],
            ..self
        };
        let steps = self.period as usize;
        let values = quiet.run(steps, &[], 0, &mut ChaCha8Rng::seed_from_u64(0));
        let c = METRICS.len();
        let mean_latency = |i: usize| {
            values
                .chunks_exact(self.n * c)
                .map(|row| row[i * c + 2])
                .sum::<f64>()
                / steps as f64
        };
        self.timeouts = self
            .edges
            .iter()
            .map(|&(_, callee)| TIMEOUT_OVER_NORMAL * mean_latency(callee))
            .collect();
        self
    }

    /// `len` recorded steps, component-major rows of the five metrics; `faults` are placed in
    /// steps counted from step `offset` of the recording.
    fn run(&self, len: usize, faults: &[Fault], offset: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
        let (n, c) = (self.n, METRICS.len());
        let normal = Normal::new(0.0, 1.0).expect("unit normal");
        let mut values = Vec::with_capacity(len * n * c);
        // Latency and errors a caller sees from its callees are those of the step before.
        let (mut latency, mut errors) = (vec![0.0; n], vec![0.0; n]);
        // Each component's own slow drift of service time (garbage collection, caches, noisy
        // neighbours): an AR(1) process whose effect its callers inherit through the calls,
        // so that a caller's latency moves with its callees' in normal operation too.
        let mut jitter = vec![0.0f64; n];
        let (phi, jitter_sd) = (0.9f64, 5.0 * self.noise);
        let mut draw = || normal.sample(rng);
        // The system starts idle (no latency or errors in flight): it runs a few steps more
        // than the longest chain of calls before the first recorded step.
        let warmup = self.n + 5;
        for simulated in 0..warmup + len {
            let step = simulated.saturating_sub(warmup);
            let t = simulated as f64 - warmup as f64;
            // Faults are placed in steps counted from `offset` (the test series' start).
            let at = (simulated >= warmup + offset).then(|| step - offset);
            let load = 100.0
                * (1.0
                    + 0.4 * (TAU * t / self.period).sin()
                    + 0.1 * (TAU * 7.0 * t / self.period).sin())
                * (1.0 + self.noise * draw());
            let mut rate = vec![0.0; n];
            rate[0] = load;
            // Edges point to later components, so callers are done before their callees.
            for (k, &(a, b)) in self.edges.iter().enumerate() {
                rate[b] += rate[a] * self.fan_out[k];
            }
            let (previous_latency, previous_errors) = (latency.clone(), errors.clone());
            let mut row = vec![0.0; n * c];
            for i in 0..n {
                let p = &self.profiles[i];
                jitter[i] = phi * jitter[i] + jitter_sd * (1.0 - phi * phi).sqrt() * draw();
                let fault = faults.iter().find(|f| {
                    f.component == i && at.is_some_and(|a| (f.start..=f.end).contains(&a))
                });
                let progress = match (fault, at) {
                    (Some(f), Some(a)) => (a - f.start + 1) as f64 / (f.end - f.start + 1) as f64,
                    _ => 0.0,
                };
                let mut cpu = p.base_cpu + p.cpu_per_request * rate[i];
                let mut memory = p.base_memory + 0.5 * rate[i];
                let mut service =
                    p.service_time * (1.0 + 0.5 * (cpu / 100.0).min(1.0)) * jitter[i].exp();
                let mut own_errors = p.base_errors * (1.0 + jitter[i]).max(0.0) + 0.002 * rate[i];
                match fault.map(|f| f.kind) {
                    Some(FaultKind::CpuHog) => {
                        cpu += 25.0;
                        service *= 2.0;
                    }
                    Some(FaultKind::MemoryLeak) => {
                        memory += 0.5 * p.base_memory * progress;
                        service *= 1.0 + progress;
                    }
                    Some(FaultKind::SlowQueries) => service *= 3.0,
                    Some(FaultKind::ErrorBurst) => own_errors += 2.0 + 0.02 * rate[i],
                    None => {}
                }
                // A caller waits for every call it makes (`fan_out` calls per request), at most
                // its timeout, and passes its callees' failures on; calls that time out fail
                // too: the share of them grows as the callee's latency passes the timeout.
                let (mut waited, mut passed_on) = (0.0, 0.0);
                for (k, e) in self.edges.iter().enumerate().filter(|(_, e)| e.0 == i) {
                    let (latency, timeout) = (previous_latency[e.1], self.timeouts[k]);
                    let timed_out = ((latency - timeout) / timeout).clamp(0.0, 1.0);
                    waited += self.fan_out[k] * latency.min(timeout);
                    passed_on += self.fan_out[k] * previous_errors[e.1] + 0.3 * timed_out * rate[i];
                }
                latency[i] = service + waited;
                errors[i] = own_errors + passed_on;
                let out = &mut row[i * c..(i + 1) * c];
                let mut measured = |v: f64, scale: f64| v * (1.0 + self.noise * scale * draw());
                out[0] = measured(cpu, 1.0);
                out[1] = measured(memory, 0.3);
                out[2] = measured(latency[i], 1.0);
                out[3] = measured(rate[i], 0.5);
                out[4] = measured(errors[i], 2.0);
            }
            if simulated >= warmup {
                values.extend_from_slice(&row);
            }
        }
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SystemConfig {
        SystemConfig {
            components: 6,
            train_len: 400,
            test_len: 600,
            period: 100,
            faults: 4,
            fault_len: (10, 20),
            noise: 0.0,
            seed: 3,
        }
    }

    #[test]
    fn systems_are_seeded_and_labelled() {
        let a = generate_system(&small()).unwrap();
        let b = generate_system(&small()).unwrap();
        assert_eq!(a.test.values, b.test.values);
        assert_eq!(a.train.n_metrics(), 6 * METRICS.len());
        assert_eq!(a.faults.len(), 4);
        let labels = a.test.labels.as_ref().unwrap();
        let labelled: usize = a.faults.iter().map(|f| f.end - f.start + 1).sum();
        assert_eq!(labels.iter().filter(|&&l| l == 1).count(), labelled);
        assert!(a.edges.iter().all(|&(x, y)| x < y));
        assert!(a.train.values.iter().all(|v| v.is_finite() && *v >= 0.0));
        // No start-up transient: the first steps' latencies (all of a callee's waited for) are
        // like the later ones, and the test continues where the training left off.
        let m = a.train.n_metrics();
        let gateway_latency = |s: &Series, t: usize| s.values[t * m + 2];
        let later = gateway_latency(&a.train, 50);
        assert!((gateway_latency(&a.train, 0) / later - 1.0).abs() < 0.5);
        let last = gateway_latency(&a.train, a.train.len() - 1);
        assert!((gateway_latency(&a.test, 0) / last - 1.0).abs() < 0.2);
    }

    #[test]
    fn a_fault_shows_most_at_its_component_and_reaches_its_callers_later() {
        let mut cfg = small();
        cfg.faults = 0;
        let clean = generate_system(&cfg).unwrap();
        let s = System {
            n: cfg.components,
            edges: &clean.edges,
            fan_out: &vec![0.7; clean.edges.len()],
            profiles: &(0..cfg.components)
                .map(|_| Profile {
                    base_cpu: 10.0,
                    cpu_per_request: 0.3,
                    base_memory: 500.0,
                    service_time: 5.0,
                    base_errors: 0.1,
                })
                .collect::<Vec<_>>(),
            period: 100.0,
            noise: 0.0,
            timeouts: vec![f64::INFINITY; clean.edges.len()],
        };
        let leaf = (0..cfg.components)
            .rev()
            .find(|&i| clean.edges.iter().all(|e| e.0 != i))
            .unwrap();
        let caller = clean.edges.iter().find(|e| e.1 == leaf).unwrap().0;
        let fault = Fault {
            start: 50,
            end: 59,
            component: leaf,
            kind: FaultKind::SlowQueries,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let healthy = s.run(100, &[], 0, &mut rng);
        let faulty = s.run(100, &[fault], 0, &mut rng);
        let c = METRICS.len();
        let lat = |v: &[f64], t: usize, i: usize| v[t * cfg.components * c + i * c + 2];
        assert!(lat(&faulty, 50, leaf) > 1.5 * lat(&healthy, 50, leaf));
        // The caller sees it one step later, and less.
        assert_eq!(lat(&faulty, 50, caller), lat(&healthy, 50, caller));
        let own = lat(&faulty, 51, leaf) - lat(&healthy, 51, leaf);
        let seen = lat(&faulty, 51, caller) - lat(&healthy, 51, caller);
        assert!(seen > 0.0 && seen < own, "{seen} vs {own}");
    }

    #[test]
    fn written_files_read_back_as_a_topology() {
        let system = generate_system(&small()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        system.write(dir.path()).unwrap();
        let t = Topology::read(
            &system.test.metric_names,
            Path::new("test.csv"),
            &dir.path().join("edges.csv"),
        )
        .unwrap();
        assert_eq!(t, system.topology());
        let faults = std::fs::read_to_string(dir.path().join("faults.csv")).unwrap();
        assert_eq!(faults.lines().count(), 5);
        // A folder that holds anything is not written into.
        let err = system.write(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not an empty folder"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
        // A new folder is staged beside and renamed into place: nothing else is left.
        let parent = tempfile::tempdir().unwrap();
        system.write(&parent.path().join("new")).unwrap();
        let names: Vec<String> = std::fs::read_dir(parent.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["new"]);
        assert_eq!(
            std::fs::read_dir(parent.path().join("new"))
                .unwrap()
                .count(),
            4
        );
    }
}
