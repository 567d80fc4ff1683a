//! The `recalcd` binary: parse the command line and hand over to the library.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
