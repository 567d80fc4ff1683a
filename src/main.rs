//! The `recalcd` binary: parse the command line and hand over to the library.

mod cli;

use std::process::ExitCode;

/// mimalloc rather than the system allocator: a batch allocates and frees millions of
/// small strings and values, and glibc's malloc took about a fifth of recalcd's CPU
/// time in the engine benchmark (with mimalloc the computation alone runs about 7%
/// faster).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    cli::main()
}
