//! The replay tool (`src/bin/replay.rs`) under the name the endpoint-policy issue gives it, so
//! that `cargo run --release --example replay -- --compare` works as
//! `cargo run --release --bin replay -- --compare` does. One tool: this file only calls it.
#![allow(dead_code)]

#[path = "../src/bin/replay.rs"]
mod replay;

fn main() -> std::process::ExitCode {
    replay::main()
}
