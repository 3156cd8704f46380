//! Everything vigil writes goes through here: output files replaced atomically (or written in
//! place where the path is a FIFO or a device), folders swapped so that a kill leaves the old or
//! the new one, temporary names that a later run can recognise and clean, crash points for the
//! tests that kill vigil mid-write, and CSV written with the `csv` crate's quoting.

mod atomic;
pub mod crash;
mod csv_out;
mod distinct;
pub mod durable;
mod swap;

pub use atomic::{is_stdout, write_atomically};
pub use csv_out::{csv_writer, write_csv_header, write_series_csv};
pub use distinct::{refuse_overwriting_inputs, refuse_writing_inside};
pub use swap::{staging_dir, swap_dir};
