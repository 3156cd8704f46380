//! # vigil-fleet
//!
//! OmniTransfer (`../shared/papers/omnitransfer.txt`) for fleets of many entities: cluster
//! them, train one base model per cluster, adapt a new entity from a short span of data.
//!
//! The clustering, I-HAC (the paper's §III-B), one step per module: [`segments`] of the target
//! length, [`baseline`] extraction (drop the 5% of points furthest from the mean, interpolate, moving
//! average) within each segment, each metric then standardised, [`align`]ment of
//! every segment's phase to the pivot by normalised cross-correlation over all circular shifts
//! (by FFT), and [`cluster`]ing by average-linkage HAC, with centroids and the segments nearest
//! them. [`fleet`] runs it over a fleet's entities and keeps the result in a fleet directory;
//! [`rand_index`] scores a clustering against known groups. Then [`transfer`]: a base model per
//! cluster, and each new entity adapted from its short-term data by full or partial transfer
//! (§III-C), and the paper's [`evaluation`] of it all. docs/fleet.md has the whole story and the measurements.

pub mod align;
pub mod baseline;
pub mod cluster;
pub mod evaluation;
pub mod fleet;
pub mod rand_index;
pub mod segments;
pub mod transfer;
