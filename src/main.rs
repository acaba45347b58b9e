//! rocketchatd binary: everything lives in the library; see `cli::main_with_args`.
#![forbid(unsafe_code)]

/// Under message floods the static build's RSS kept climbing with musl's
/// allocator (mallocng), past 27 MiB, while the live heap stayed under 3 MB;
/// with dlmalloc the same floods level off near 6.5 MiB (README "Dependencies"
/// and "Performance"). Used on glibc builds too, so the tests run what ships.
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

fn main() {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(rocketchatd::main_with_args(&argv));
}
