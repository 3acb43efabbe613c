//! The `tracevm` binary: everything is in the library's `cli` module.

fn main() {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("tracevm: internal error (a VM bug, please report it): {info}");
    }));
    let status = std::panic::catch_unwind(tracevm::cli::main).unwrap_or(70);
    std::process::exit(status);
}
