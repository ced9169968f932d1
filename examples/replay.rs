//! `cargo run --release --example replay -- ARGS` is `cargo run --release --bin replay --
//! ARGS`: the replay tool is a binary (`src/bin/replay/`), and an example cannot run a binary
//! target Cargo did not build for it, so this one asks Cargo to build and run it, under the
//! same profile, and exits as it does.

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    // Cargo sets `CARGO` for what it runs; `cargo` on the path otherwise.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["run", "--quiet", "--bin", "replay", "--features", "serde"]);
    command.args([
        "--manifest-path",
        concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
    ]);
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    command.arg("--").args(std::env::args_os().skip(1));
    match command.status() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            // A code of the tool's own, or 1 for a signal.
            ExitCode::from(
                status
                    .code()
                    .and_then(|c| u8::try_from(c).ok())
                    .unwrap_or(1),
            )
        }
        Err(err) => {
            eprintln!("replay: could not run cargo: {err}");
            ExitCode::FAILURE
        }
    }
}
