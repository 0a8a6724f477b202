//! The command's errors: the library's, and the command's own (a file it cannot read, output it
//! cannot write); the CLI's policy on both: exit statuses, and the flag each remediation means.

use std::fmt;

use graphjit::{ErrorKind, Setting, Stage};
use serde_json::json;

/// A failure of one command.
#[derive(Debug)]
pub(crate) enum CliError {
    /// What the library reported.
    Library(graphjit::Error),
    /// What the command itself could not do.
    Own {
        /// snake_case, from the same vocabulary as the library's kinds.
        kind: &'static str,
        stage: Stage,
        message: String,
        remediation: &'static str,
    },
}

impl From<graphjit::Error> for CliError {
    fn from(e: graphjit::Error) -> Self {
        CliError::Library(e)
    }
}

/// The flag that changes `setting`.
fn flag(setting: Setting) -> Option<&'static str> {
    Some(match setting {
        Setting::Fuel => "--fuel",
        Setting::Memory => "--memory",
        Setting::Deadline => "--deadline-ms",
        Setting::Database => "--database-url",
        Setting::DatabaseInit => "--db-init",
        Setting::CacheDir => "--cache-dir",
        Setting::Passes => "--passes none",
        Setting::Inputs => "--input NAME=VALUE",
        Setting::TlsRoots => "--tls-root",
        _ => return None,
    })
}

impl CliError {
    /// An error of the command itself, reading or writing a file or starting up.
    pub(crate) fn own(
        kind: &'static str,
        stage: Stage,
        message: String,
        remediation: &'static str,
    ) -> CliError {
        CliError::Own {
            kind,
            stage,
            message,
            remediation,
        }
    }

    fn kind_name(&self) -> &'static str {
        match self {
            CliError::Library(e) => e.kind_name(),
            CliError::Own { kind, .. } => kind,
        }
    }

    fn stage(&self) -> Stage {
        match self {
            CliError::Library(e) => e.stage,
            CliError::Own { stage, .. } => *stage,
        }
    }

    /// The exit status: 2 for the graph, its inputs or the setup; 3 for compilation; 4 for
    /// the run.
    pub(crate) fn exit_code(&self) -> u8 {
        match self.stage() {
            Stage::Setup | Stage::Parse | Stage::Input => 2,
            Stage::Optimize | Stage::Codegen | Stage::Compile | Stage::Load => 3,
            Stage::Run | Stage::Eval => 4,
        }
    }

    /// What to do, naming the flag where the library names a setting.
    fn remediation(&self) -> String {
        match self {
            CliError::Library(e) => match e.setting().and_then(flag) {
                Some(flag) => format!("{} ({flag})", e.remediation),
                None => e.remediation.clone(),
            },
            CliError::Own { remediation, .. } => (*remediation).to_owned(),
        }
    }

    /// The error as `--json` prints it: kind, stage, node, message, remediation, and for a
    /// failed effect its class.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let (node, message) = match self {
            CliError::Library(e) => (e.node.clone(), e.message.as_str()),
            CliError::Own { message, .. } => (None, message.as_str()),
        };
        let mut error = json!({
            "kind": self.kind_name(),
            "stage": self.stage().name(),
            "node": node,
            "message": message,
            "remediation": self.remediation(),
        });
        // A failed effect says which class of failure (retry a timeout, fix a syntax).
        if let CliError::Library(e) = self
            && let ErrorKind::EffectFailed { class } = &e.kind
        {
            error["class"] = json!(class.name());
        }
        json!({ "error": error })
    }

    /// Prints the error and its remediation on stderr.
    pub(crate) fn print(&self) {
        eprintln!("error: {self}\n  remediation: {}", self.remediation());
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Library(e) => e.fmt(f),
            CliError::Own {
                kind,
                stage,
                message,
                ..
            } => write!(f, "{message} ({kind}, stage {})", stage.name()),
        }
    }
}
