//! rocketchatd binary: everything lives in the library; see `cli::main_with_args`.
#![forbid(unsafe_code)]

fn main() {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(rocketchatd::cli::main_with_args(&argv));
}
