//! Running this same command again in child processes: the memory-budget workers, the one-row
//! runs of `vigil bench --memory` and the fleet's worker processes all do, and in one way — a
//! child gets exactly this process's own arguments, less the options its parent replaces, plus
//! what it adds. A flag added to a command then reaches its children without anyone having to
//! pass it on.

use anyhow::Context;
use std::ffi::OsString;
use std::process::Command;

/// A command that runs this program again with this process's arguments, without the
/// `replaced` options (`--name value` or `--name=value`) and `dropped` flags (no value); the
/// caller adds its own arguments after these.
pub fn again(replaced: &[&str], dropped: &[&str]) -> anyhow::Result<Command> {
    let exe = std::env::current_exe().context("cannot find the vigil executable to run")?;
    let mut command = Command::new(exe);
    command.args(without(std::env::args_os().skip(1), replaced, dropped));
    Ok(command)
}

/// `args` without the `replaced` options and their values and without the `dropped` flags.
fn without(
    args: impl Iterator<Item = OsString>,
    replaced: &[&str],
    dropped: &[&str],
) -> Vec<OsString> {
    let mut kept = Vec::new();
    let mut skip_value = false;
    for arg in args {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        let text = arg.to_string_lossy();
        let name = text.split('=').next().unwrap_or(&text);
        if dropped.contains(&text.as_ref()) {
            continue;
        }
        if replaced.contains(&name) {
            skip_value = !text.contains('=');
            continue;
        }
        kept.push(arg);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::without;

    #[test]
    fn a_child_keeps_every_option_but_those_its_parent_replaces() {
        let parent = "bench --dataset smd --memory --detectors gon,usad --seed 3 --output=t.md --json -q --entities a,b --epochs 2"
            .split(' ')
            .map(Into::into);
        let kept = without(
            parent,
            &["--output", "--detectors", "--entities"],
            &["--memory", "--json", "-q", "--quiet"],
        );
        assert_eq!(
            kept.join(std::ffi::OsStr::new(" ")),
            "bench --dataset smd --seed 3 --epochs 2"
        );
    }
}
