//! The WIT interfaces through which a graph's component may reach the host.
//!
//! Every effect op names one (the op table, `graph::ops`); the runtime's import allow-list,
//! the dispatcher's footprint check, `explain` and the assumption inventory all speak of
//! interfaces through this enum, never through strings, so a new interface is a compile error
//! wherever it must be handled.
//!
//! Invariant: `wit` and `from_wit` are inverse, and the names are those of `wit/graph.wit`.

use crate::footprint::Footprint;

/// One host interface of the `graphjit:guest` package.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub(crate) enum Interface {
    /// SQL against the configured database (`db_query`, `db_execute`).
    Db,
    /// Outbound HTTP (`http`).
    Http,
    /// Host tensor kernels (`kernel`).
    Kernels,
    /// Log lines (`log`).
    Log,
    /// Several independent db, http and kernel calls as one round (the `batch` pass).
    Rounds,
    /// Pure host computations the optimizer placed there (`native_matmul`, the `place` pass).
    Native,
    /// The memo of `cached` nodes (`crate::memo`).
    Memo,
}

impl Interface {
    pub(crate) const ALL: [Interface; 7] = [
        Interface::Db,
        Interface::Http,
        Interface::Kernels,
        Interface::Log,
        Interface::Rounds,
        Interface::Native,
        Interface::Memo,
    ];

    /// The short name used in messages and in `explain`.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Interface::Db => "db",
            Interface::Http => "http",
            Interface::Kernels => "kernels",
            Interface::Log => "log",
            Interface::Rounds => "rounds",
            Interface::Native => "native",
            Interface::Memo => "memo",
        }
    }

    /// The interface's full WIT name, as a component imports it.
    pub(crate) const fn wit(self) -> &'static str {
        match self {
            Interface::Db => "graphjit:guest/db@0.1.0",
            Interface::Http => "graphjit:guest/http@0.1.0",
            Interface::Kernels => "graphjit:guest/kernels@0.1.0",
            Interface::Log => "graphjit:guest/log@0.1.0",
            Interface::Rounds => "graphjit:guest/rounds@0.1.0",
            Interface::Native => "graphjit:guest/native@0.1.0",
            Interface::Memo => "graphjit:guest/memo@0.1.0",
        }
    }

    /// The interface a component import names, if it is one of these.
    pub(crate) fn from_wit(name: &str) -> Option<Interface> {
        Interface::ALL.into_iter().find(|i| i.wit() == name)
    }

    /// Whether a graph with `footprint` may import this interface (the link-time check; each
    /// call is checked again, against the footprint's rules, when it is served).
    pub(crate) fn allowed_by(self, footprint: &Footprint) -> bool {
        match self {
            Interface::Db => !footprint.db.read.is_empty() || !footprint.db.write.is_empty(),
            Interface::Http => !footprint.http.is_empty(),
            Interface::Kernels => !footprint.kernels.is_empty(),
            // A log line changes nothing outside the run, and it is bounded.
            Interface::Log => true,
            // Rounds carry db, http and kernel calls (never a log line); each call is checked
            // against its own interface when served (`Dispatcher::call_round`).
            Interface::Rounds => [Interface::Db, Interface::Http, Interface::Kernels]
                .into_iter()
                .any(|i| i.allowed_by(footprint)),
            // Pure, placed by the optimizer: returns what the guest's own op would and reaches
            // nothing outside the run, so no footprint is needed for it.
            Interface::Native => true,
            // Values this graph's own `cached` nodes computed (the key holds the footprint, so
            // a hit never gives a graph what its footprint would refuse to fetch).
            Interface::Memo => true,
        }
    }
}

impl std::fmt::Display for Interface {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Interface;

    #[test]
    fn wit_names_round_trip_and_are_in_the_wit_file() {
        let wit = include_str!("../../wit/graph.wit");
        for interface in Interface::ALL {
            assert_eq!(Interface::from_wit(interface.wit()), Some(interface));
            assert!(
                wit.contains(&format!("interface {} {{", interface.name())),
                "wit/graph.wit declares no interface {interface}"
            );
        }
        assert_eq!(Interface::from_wit("graphjit:guest/types@0.1.0"), None);
        assert_eq!(Interface::from_wit("wasi:io/streams@0.2.0"), None);
    }
}
