//! The command line over the library: flags, the commands, their output, and the CLI's policy
//! on errors (exit statuses, flag names in remediations).

pub(crate) mod args;
pub(crate) mod error;
pub(crate) mod explain;
pub(crate) mod files;
pub(crate) mod run;

use std::time::Duration;

/// `println!` that does not panic when stdout is gone (`graphjit explain | head`): a line that
/// cannot be written is dropped, as a closed pipe means nobody reads it.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
pub(crate) use say;

/// Milliseconds, as the output prints them.
pub(crate) fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
