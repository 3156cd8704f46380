//! The hostile suite (issue 33): the `vigil` binary run as an adversarial user would — on files
//! vigil did not write, odd file types, odd names, odd numbers, closed pipes and full disks, and
//! killed at every step of every write. Each case asserts the exit code, the message, and that
//! every file that is not vigil's to change is byte-identical afterwards.

mod common;

#[path = "hostile/support.rs"]
mod support;

#[path = "hostile/crash.rs"]
mod crash;
#[path = "hostile/fleet.rs"]
mod fleet;
#[path = "hostile/numbers.rs"]
mod numbers;
#[path = "hostile/outputs.rs"]
mod outputs;
#[path = "hostile/ownership.rs"]
mod ownership;
#[path = "hostile/process.rs"]
mod process;
