//! Progress bars: shown on a terminal, silent otherwise (and under `--quiet`/`--json`).

use crate::output::Ui;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use vigil_models::EpochCallback;

/// An epoch callback that drives a progress bar (epoch, loss, ETA), or nothing when not on a terminal.
pub fn epoch_bar(ui: &Ui, label: &str) -> (Option<ProgressBar>, Option<EpochCallback>) {
    if ui.quiet || ui.json || !std::io::stderr().is_terminal() {
        return (None, None);
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] epoch {pos}/{len} loss {msg} ETA {eta}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    let handle = bar.clone();
    let callback: EpochCallback = Arc::new(move |epoch, epochs, loss| {
        handle.set_length(epochs as u64);
        handle.set_position(epoch as u64);
        handle.set_message(format!("{loss:.5}"));
    });
    (Some(bar), Some(callback))
}
