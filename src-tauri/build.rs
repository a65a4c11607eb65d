//! The desktop build reads `tauri.conf.json` (app identity, icons). A Linux release build also
//! lays out its code in the order of `link-order.txt`, when the linker can.

use std::path::Path;
use std::process::{Command, Stdio};

/// The functions Keyway runs at start, then those it runs serving requests, as the linker
/// names them (written by `scripts/link-order`). Placed first and together, they fill a few
/// megabytes of the executable instead of being spread over all of it, so far fewer of its
/// pages are read in: the kernel maps 64 KiB around every page a process touches first, and
/// with start-up code strewn over 24 MB of code that alone made most of the idle RSS.
const LINK_ORDER: &str = "link-order.txt";

fn main() {
    #[cfg(feature = "desktop")]
    tauri_build::build();

    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed={LINK_ORDER}");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let order = Path::new(env("CARGO_MANIFEST_DIR").as_str()).join(LINK_ORDER);
    // `keyway` only: the file is what it runs; the dashboard window's program is not in it.
    if linux && release && order.is_file() && linker_orders_symbols(&order) {
        println!(
            "cargo::rustc-link-arg-bin=keyway=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        // Names the build does not have (another toolchain, another dependency version) are
        // skipped; the layout is then only less compact.
        println!("cargo::rustc-link-arg-bin=keyway=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether the linker this build uses takes `--symbol-ordering-file` (LLD, which Rust uses on
/// x86-64 Linux, and mold do; GNU ld does not): an empty program is linked with the option,
/// the build's own rustc, target, linker and flags.
fn linker_orders_symbols(order: &Path) -> bool {
    let out = Path::new(env("OUT_DIR").as_str()).to_path_buf();
    let probe = out.join("link-order-probe.rs");
    if std::fs::write(&probe, "fn main() {}\n").is_err() {
        return false;
    }
    let mut rustc = Command::new(env("RUSTC"));
    rustc
        .arg("--target")
        .arg(env("TARGET"))
        .arg("--crate-type=bin")
        .arg("-o")
        .arg(out.join("link-order-probe"))
        .arg(&probe)
        .arg("-C")
        .arg(format!(
            "link-arg=-Wl,--symbol-ordering-file={}",
            order.display()
        ))
        .arg("-C")
        .arg("link-arg=-Wl,--no-warn-symbol-ordering")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Ok(linker) = std::env::var("RUSTC_LINKER") {
        rustc.arg("-C").arg(format!("linker={linker}"));
    }
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    rustc.args(flags.split('\x1f').filter(|f| !f.is_empty()));
    rustc.status().is_ok_and(|s| s.success())
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}
