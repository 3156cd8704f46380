//! Which components an alarm points at: for `vigil detect --ranking` and `vigil eval --faults`,
//! components are the model's topology's when it has one, else the columns' `component.`
//! prefixes.

use crate::output::write_atomic_with;
use std::path::Path;
use vigil_core::metrics::localisation::{component_scores, components_of_columns, ranking};
use vigil_models::TrainedModel;

/// The components of a model's data: their names and each column's component.
pub struct Components {
    pub names: Vec<String>,
    pub of_column: Vec<usize>,
}

/// The components of the data `model` scores.
pub fn components(model: &TrainedModel) -> anyhow::Result<Components> {
    Ok(match model.topology()? {
        Some(topology) => Components {
            of_column: topology.component_of_column(),
            names: topology.components,
        },
        None => {
            let (names, of_column) = components_of_columns(&model.manifest.metric_names)?;
            Components { names, of_column }
        }
    })
}

/// Writes `step,rank,component,contribution` for every alarm step: every component, ranked
/// by its summed contributions at that step (rank 1 first).
pub fn write(
    path: &Path,
    components: &Components,
    scores: &vigil_models::Scores,
    alarms: &[u8],
) -> anyhow::Result<()> {
    write_atomic_with(path, |w| {
        let mut out = vigil_core::write::csv_writer(w);
        out.write_record(["step", "rank", "component", "contribution"])?;
        for (t, _) in alarms.iter().enumerate().filter(|(_, &a)| a != 0) {
            let sums = component_scores(
                &scores.per_metric,
                &components.of_column,
                components.names.len(),
                [t],
            );
            for (rank, &c) in ranking(&sums).iter().enumerate() {
                out.write_record([
                    t.to_string(),
                    (rank + 1).to_string(),
                    components.names[c].clone(),
                    sums[c].to_string(),
                ])?;
            }
        }
        out.flush()?;
        Ok(())
    })
}
