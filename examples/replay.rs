//! The replay tool (`src/bin/replay/`) under a second name, so that
//! `cargo run --release --example replay -- --compare` prints what
//! `cargo run --release --bin replay -- --compare` prints. One tool: this file only calls its
//! `main`. Cargo builds no binary for an example, so the tool's source is compiled again here.

#[path = "../src/bin/replay/main.rs"]
mod replay;

fn main() -> std::process::ExitCode {
    replay::main()
}
