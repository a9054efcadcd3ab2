//! On a Windows host, windows-drivers-rs configures the WDM link (WDK library
//! paths, `/DRIVER /SUBSYSTEM:NATIVE /ENTRY:DriverEntry` ...). Elsewhere the
//! crate is the portable DSM core and needs no build step.

#[cfg(windows)]
fn main() -> Result<(), wdk_build::ConfigError> {
    wdk_build::configure_wdk_binary_build()
}

#[cfg(not(windows))]
fn main() {}
