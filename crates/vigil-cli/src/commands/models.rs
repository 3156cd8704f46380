//! `vigil models`: the registered detectors, their config keys and defaults.

use crate::output::Ui;

pub fn run(ui: &Ui) -> anyhow::Result<()> {
    let detectors = vigil_models::registry::detectors();
    if ui.json {
        crate::say!("{}", serde_json::to_string_pretty(&detectors)?)?;
        return Ok(());
    }
    for d in detectors {
        crate::say!("{}  —  {}", d.name, d.summary)?;
        if let Some(map) = d.defaults.as_object() {
            for (key, value) in map {
                crate::say!("    {key} = {value}")?;
            }
        }
    }
    Ok(())
}
