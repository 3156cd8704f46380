//! What vigil pushes to other programs: alarms to Alertmanager, scores by remote-write. Each
//! runs as its own task fed by a bounded queue, so a slow or absent peer never holds up
//! scoring; a full queue drops (counted in `vigil_push_dropped_total`).

pub mod alertmanager;
pub mod client;
pub mod remote_write_out;

use crate::config::ServeConfig;
use crate::exposition::Exposition;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Queue length of each push task.
const QUEUE: usize = 100_000;

/// The queues into the push tasks (those configured), and the tasks.
pub struct Outbound {
    pub alarms: Option<mpsc::Sender<alertmanager::AlarmChange>>,
    pub scores: Option<mpsc::Sender<remote_write_out::ScoredStep>>,
    exposition: Arc<Exposition>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Outbound {
    /// Starts the push tasks the config asks for.
    pub fn start(config: &ServeConfig, exposition: Arc<Exposition>) -> Outbound {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let alarms = config.alertmanager.clone().map(|am| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tasks.push(tokio::spawn(alertmanager::run(
                am,
                rx,
                exposition.clone(),
                stopped.clone(),
            )));
            tx
        });
        let scores = config.remote_write_out.clone().map(|rw| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tasks.push(tokio::spawn(remote_write_out::run(
                rw,
                rx,
                exposition.clone(),
                stopped.clone(),
            )));
            tx
        });
        Outbound {
            alarms,
            scores,
            exposition,
            stop,
            tasks: Mutex::new(tasks),
        }
    }

    pub fn alarm(&self, change: alertmanager::AlarmChange) {
        if let Some(tx) = &self.alarms {
            if tx.try_send(change).is_err() {
                self.dropped("alertmanager");
            }
        }
    }

    pub fn score(&self, step: remote_write_out::ScoredStep) {
        if let Some(tx) = &self.scores {
            if tx.try_send(step).is_err() {
                self.dropped("remote_write");
            }
        }
    }

    pub fn wants_scores(&self) -> bool {
        self.scores.is_some()
    }

    pub fn wants_alarms(&self) -> bool {
        self.alarms.is_some()
    }

    fn dropped(&self, to: &str) {
        self.exposition
            .push_dropped
            .get_or_create(&vec![("to".into(), to.into())])
            .inc();
    }

    /// Tells the tasks to push what they hold and stop, and waits for them.
    pub async fn finish(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock().expect("tasks lock"));
        for task in tasks {
            let _ = task.await;
        }
    }
}
