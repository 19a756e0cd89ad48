//! The `certmill` binary: parse the command line, run it, map errors to exit codes.
//!
//! Exit codes: 0 success; 1 failure; 2 usage error (from clap); 3 input refused (profile,
//! CSV rows, parameters, password): nothing was issued.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = certmill::cli::args::Cli::parse();
    let outcome = certmill::cli::run(cli);
    // Every CA key is dropped by now: PKCS#11 modules are finalized before the process exits.
    certmill::ca::finalize_modules();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            let code = if error
                .downcast_ref::<certmill::cli::InvalidInput>()
                .is_some()
            {
                certmill::cli::EXIT_INVALID_INPUT
            } else {
                certmill::cli::EXIT_FAILURE
            };
            ExitCode::from(code as u8)
        }
    }
}
