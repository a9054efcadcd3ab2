//! On a Windows host, windows-drivers-rs configures the WDM link (WDK library
//! paths, `/DRIVER /SUBSYSTEM:NATIVE /ENTRY:DriverEntry` ...).
//!
//! On any other host the crate is normally the portable DSM core and needs
//! no build step. The exception is the **cross-check path**: wincheck
//! (`../shared/tools/wincheck`) builds the driver for
//! `x86_64-pc-windows-msvc` on Linux, where `wdk-build` is absent (cargo
//! resolves `[target.'cfg(windows)'.build-dependencies]` against the host).
//! For that case this script emits the same WDM linker arguments that
//! `wdk_build::configure_wdk_binary_build` emits for a WDM driver, so that
//! `wincheck.sh --link` produces a native-subsystem image with the
//! `DriverEntry` entry point. The resulting `.sys` is a link smoke test, not
//! a shippable driver.

#[cfg(windows)]
fn main() -> Result<(), wdk_build::ConfigError> {
    wdk_build::configure_wdk_binary_build()
}

#[cfg(not(windows))]
fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("windows") {
        return;
    }
    // Cross-check path (non-Windows host, Windows target): WDM link flags.
    for arg in [
        "/DRIVER",
        "/NODEFAULTLIB",
        "/SUBSYSTEM:NATIVE",
        "/KERNEL",
        "/ENTRY:DriverEntry",
        "/INTEGRITYCHECK",
        "/NXCOMPAT",
        "/DYNAMICBASE",
        "/OPT:REF,ICF",
        "/MANIFEST:NO",
    ] {
        println!("cargo::rustc-cdylib-link-arg={arg}");
    }
}
