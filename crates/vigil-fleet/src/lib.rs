//! # vigil-fleet
//!
//! OmniTransfer (`../shared/papers/omnitransfer.txt`) for fleets of many entities: cluster
//! them, train one base model per cluster, adapt a new entity from a short span of data.
//!
//! This crate holds the clustering half, I-HAC (the paper's §III-B), one step per module:
//! [`baseline`] extraction (drop the 5% of points furthest from the mean, interpolate, moving
//! average), [`segments`] of the target length with each metric standardised, [`align`]ment of
//! every segment's phase to the pivot by normalised cross-correlation over all circular shifts
//! (by FFT), and [`cluster`]ing by average-linkage HAC, with centroids and the segments nearest
//! them. [`fleet`] runs it over a fleet's entities and keeps the result in a fleet directory;
//! [`rand_index`] scores a clustering against known groups.

pub mod align;
pub mod baseline;
pub mod cluster;
pub mod fleet;
pub mod rand_index;
pub mod segments;
