//! `vigil models`: the registered detectors, their config keys and defaults, their layer groups
//! (what `vigil tune --freeze` and fleet transfer work with) and whether they fine-tune.

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
        if d.fine_tunes {
            let groups: Vec<String> = d
                .layer_groups
                .iter()
                .map(|g| {
                    let role = serde_json::to_value(g.role).unwrap_or_default();
                    format!("{} ({})", g.name, role.as_str().unwrap_or_default())
                })
                .collect();
            crate::say!("    layer groups: {}", groups.join(", "))?;
            crate::say!("    fine-tunes with labels (`vigil tune`)")?;
        }
    }
    Ok(())
}
