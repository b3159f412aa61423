//! The extension points ("worlds"), their WIT names and versions, what each may import, and
//! the version-compatibility rule.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One extension point. The names are the WIT world names and the `WasmPlugin` CRD's
/// `spec.world` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    PlacementFilter,
    PlacementScorer,
    PolicyCheck,
    RolloutStrategy,
    ManifestTransform,
}

/// The version of every `flotilla:` package this host implements.
pub const WIT_VERSION: Version = Version { major: 0, minor: 1, patch: 0 };

impl World {
    pub const ALL: [World; 5] = [
        World::PlacementFilter,
        World::PlacementScorer,
        World::PolicyCheck,
        World::RolloutStrategy,
        World::ManifestTransform,
    ];

    /// The world's name, as in WIT and in `WasmPlugin.spec.world`.
    pub fn name(self) -> &'static str {
        match self {
            World::PlacementFilter => "placement-filter",
            World::PlacementScorer => "placement-scorer",
            World::PolicyCheck => "policy-check",
            World::RolloutStrategy => "rollout-strategy",
            World::ManifestTransform => "manifest-transform",
        }
    }

    /// The WIT package (`flotilla:<package>`) that defines the world.
    pub fn package(self) -> &'static str {
        self.name()
    }

    /// The interface the world exports, inside its package.
    pub fn interface(self) -> &'static str {
        match self {
            World::PlacementFilter => "filter",
            World::PlacementScorer => "scorer",
            World::PolicyCheck => "check",
            World::RolloutStrategy => "strategy",
            World::ManifestTransform => "transform",
        }
    }

    /// The export name without version, for example `flotilla:placement-filter/filter`.
    pub fn export_base(self) -> String {
        format!("flotilla:{}/{}", self.package(), self.interface())
    }

    /// The versioned export name this host calls, for example
    /// `flotilla:placement-filter/filter@0.1.0`.
    pub fn export_name(self) -> String {
        format!("{}@{WIT_VERSION}", self.export_base())
    }

    /// The minimum version of the world's package the host requires of a component.
    pub fn required_version(self) -> Version {
        WIT_VERSION
    }

    /// Deterministic worlds see no clock and no randomness: the same input always gives the
    /// same answer, so scheduling and rollout decisions can be replayed and audited.
    pub fn deterministic(self) -> bool {
        matches!(self, World::PlacementFilter | World::PlacementScorer | World::RolloutStrategy)
    }

    /// The interfaces (`namespace:package/interface`, without version) a component of this
    /// world may import. WIT imports are the capability list: anything else is refused when
    /// the plugin is pushed, before it runs.
    ///
    /// The WASI interfaces are the ones a `wasm32-wasip2` guest's standard library (and
    /// CPython's, for componentize-py) imports. The host links them with no environment, no
    /// arguments, empty stdin, stdout and stderr kept in a small bounded buffer, no filesystem
    /// preopens (so no path can ever be opened), and, for deterministic worlds, clocks fixed at
    /// 0 and a random source of zeros. Sockets and HTTP are never linked.
    pub fn grants(self) -> Vec<&'static str> {
        let mut grants = vec!["flotilla:types/log", "flotilla:types/types"];
        if self == World::PolicyCheck {
            grants.push("flotilla:policy-check/spoke");
        }
        grants.extend(WASI_GRANTS);
        grants
    }
}

const WASI_GRANTS: [&str; 20] = [
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
];

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for World {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        World::ALL.into_iter().find(|w| w.name() == s).ok_or_else(|| {
            let names: Vec<&str> = World::ALL.iter().map(|w| w.name()).collect();
            format!("unknown world {s:?}: expected one of {}", names.join(", "))
        })
    }
}

/// A semantic version `major.minor.patch`, as in a WIT package name. Pre-release and build
/// suffixes are refused: the host only links released interfaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Version {
    /// Whether a component that exports this version of a package can be called by a host
    /// that requires `required`. Semver's rule, with 0.x minors treated as majors:
    ///
    /// - from 1.0: the same major, and a minor at least the required one (a minor version only
    ///   adds functions and types, so a newer component has everything the host calls);
    /// - before 1.0: the same `0.minor` (every 0.x minor may break, so 0.1 and 0.2 are as
    ///   different as 1 and 2); the patch never matters.
    pub fn satisfies(self, required: Version) -> bool {
        if required.major == 0 {
            self.major == 0 && self.minor == required.minor
        } else {
            self.major == required.major && self.minor >= required.minor
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for Version {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split('.');
        let mut next = || -> Result<u64, String> {
            let p = parts.next().ok_or_else(|| format!("version {s:?} is not major.minor.patch"))?;
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("version {s:?} is not major.minor.patch"));
            }
            p.parse().map_err(|_| format!("version {s:?} has a component too large"))
        };
        let v = Version { major: next()?, minor: next()?, patch: next()? };
        if parts.next().is_some() {
            return Err(format!("version {s:?} is not major.minor.patch"));
        }
        Ok(v)
    }
}

/// An import or export name of a component, split: `wasi:io/streams@0.2.6` is namespace
/// `wasi`, package `io`, interface `streams`, version 0.2.6. Plain names (a bare function
/// export) have no package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemName {
    pub full: String,
    /// `namespace:package/interface`, or the plain name.
    pub base: String,
    pub version: Option<String>,
}

impl ItemName {
    pub fn parse(full: &str) -> ItemName {
        let (base, version) = match full.split_once('@') {
            Some((b, v)) => (b.to_string(), Some(v.to_string())),
            None => (full.to_string(), None),
        };
        ItemName { full: full.to_string(), base, version }
    }

    /// The world whose export this is, if it is one of Flotilla's.
    pub fn world(&self) -> Option<World> {
        World::ALL.into_iter().find(|w| w.export_base() == self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().expect("version")
    }

    #[test]
    fn zero_x_minor_is_a_major() {
        assert!(v("0.1.0").satisfies(v("0.1.0")));
        assert!(v("0.1.7").satisfies(v("0.1.0")));
        assert!(v("0.1.0").satisfies(v("0.1.3")), "patches never matter");
        assert!(!v("0.2.0").satisfies(v("0.1.0")));
        assert!(!v("0.0.9").satisfies(v("0.1.0")));
        assert!(!v("1.1.0").satisfies(v("0.1.0")));
    }

    #[test]
    fn from_one_minor_only_adds() {
        assert!(v("1.2.0").satisfies(v("1.2.0")));
        assert!(v("1.3.1").satisfies(v("1.2.0")), "a newer minor has everything");
        assert!(!v("1.1.9").satisfies(v("1.2.0")), "an older minor may lack what the host calls");
        assert!(!v("2.2.0").satisfies(v("1.2.0")));
    }

    #[test]
    fn versions_parse_strictly() {
        assert_eq!(v("0.2.6"), Version { major: 0, minor: 2, patch: 6 });
        for bad in ["0.1", "0.1.0-rc1", "a.b.c", "0.1.0.1", "", "1..0"] {
            assert!(bad.parse::<Version>().is_err(), "{bad}");
        }
    }

    #[test]
    fn worlds_round_trip_and_name_their_exports() {
        for w in World::ALL {
            assert_eq!(w.name().parse::<World>(), Ok(w));
            assert_eq!(ItemName::parse(&w.export_name()).world(), Some(w));
        }
        assert_eq!(World::PlacementFilter.export_name(), "flotilla:placement-filter/filter@0.1.0");
        assert!("placement".parse::<World>().is_err());
        assert_eq!(serde_json::to_string(&World::RolloutStrategy).ok().as_deref(), Some("\"rollout-strategy\""));
    }
}
