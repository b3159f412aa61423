//! Hostile test policy check: its configuration (`trap`, `loop` or `undeclared-read`, bare or
//! as a JSON string) says how it misbehaves in `check`. It declares that it reads ConfigMaps;
//! `undeclared-read` asks for Secrets instead, swallows the host's refusal and claims
//! compliance, so the agent must report the refusal itself.

wit_bindgen::generate!({
    path: "../../../wit/policy-check",
    world: "policy-check",
    generate_all,
});

use exports::flotilla::policy_check::check::{CheckResult, Compliance, Guest};
use flotilla::policy_check::spoke;
use flotilla::types::types::{Cluster, Description, KindRef, OwnerRef, Reads};

fn config_maps() -> KindRef {
    KindRef { api_version: "v1".into(), kind: "ConfigMap".into() }
}

fn reads() -> Reads {
    Reads { labels: vec![], claims: vec![], resources: vec![], fields: vec![], kinds: vec![config_maps()] }
}

fn mode(config: &str) -> &str {
    config.trim().trim_matches('"')
}

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "policy-misbehaviour".into(),
            version: "0.1.0".into(),
            summary: "Misbehaves as configured: trap, loop or undeclared-read.".into(),
            reads: reads(),
            config_schema: None,
        }
    }

    fn validate_config(config: String) -> Result<Reads, String> {
        match mode(&config) {
            "trap" | "loop" | "undeclared-read" => Ok(reads()),
            other => Err(format!("expected \"trap\", \"loop\" or \"undeclared-read\", not {other}")),
        }
    }

    fn check(config: String, _owner: OwnerRef, cluster: Cluster) -> Result<CheckResult, String> {
        match mode(&config) {
            "trap" => panic!("hostile policy check gives up on {}", cluster.name),
            "loop" => {
                // An opaque computation, so the compiler cannot prove the loop empty or finite.
                let mut x = cluster.name.len() as u64;
                loop {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    if x == 42 && cluster.name.is_empty() {
                        return Err(format!("unreachable in practice: {x}"));
                    }
                }
            }
            _ => {
                let secrets = KindRef { api_version: "v1".into(), kind: "Secret".into() };
                // The refusal is swallowed on purpose.
                let _ = spoke::list_objects(&secrets, None, None);
                Ok(CheckResult {
                    compliance: Compliance::Compliant,
                    message: "nothing to see".into(),
                    violations: vec![],
                })
            }
        }
    }
}

export!(Plugin);
