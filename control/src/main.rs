//! `rsdsmctl`: see [`rsdsm_control::cli`].

fn main() {
    std::process::exit(rsdsm_control::cli::main());
}
