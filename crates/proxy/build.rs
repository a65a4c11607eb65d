//! A release build embeds the dashboard (`ui/dist`, see `src/dashboard.rs`). Without it, the
//! binary would serve a "not built" page instead, and nothing would say so until a user
//! opened it: so a release build without `ui/dist/index.html` fails here, naming the command
//! that builds it. Debug builds read the files from disk at run time and need no check.

use std::path::Path;

fn main() {
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    if !release {
        println!("cargo::rerun-if-changed=build.rs");
        return;
    }
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui");
    let index = ui.join("dist/index.html");
    if index.exists() {
        println!("cargo::rerun-if-changed={}", index.display());
        return;
    }
    // Rerun once the dashboard appears (creating `dist` changes `ui`'s modification time).
    println!("cargo::rerun-if-changed={}", ui.display());
    eprintln!(
        "error: a release build embeds the dashboard, and {} is missing.\n\
         Build it first: npm --prefix ui ci && npm --prefix ui run build\n\
         (scripts/run does both, then builds and runs Keyway.)",
        index.display()
    );
    std::process::exit(1);
}
