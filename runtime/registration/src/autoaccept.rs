//! `autoAccept` in hub.json: clusters accepted without `flotilla accept`. An entry is
//! either a cluster-name glob (`edge-*`, `prod-??`) or, when it contains a `:`, a glob
//! over the identity that requested the cluster's certificate (`system:bootstrap:abc123`,
//! the user of one bootstrap token).

use crate::RegistrationError;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutoAccept {
    cluster_patterns: Vec<String>,
    identity_patterns: Vec<String>,
}

impl AutoAccept {
    pub fn parse(entries: &[String]) -> Result<AutoAccept, RegistrationError> {
        let mut out = AutoAccept::default();
        for entry in entries {
            let entry = entry.trim();
            let bad =
                |reason: &str| RegistrationError::AutoAccept { entry: entry.to_string(), reason: reason.to_string() };
            if entry.is_empty() {
                return Err(bad("is empty"));
            }
            if entry.contains(':') {
                if entry.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(bad("an identity pattern has no spaces"));
                }
                out.identity_patterns.push(entry.to_string());
            } else {
                let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '*' | '?');
                if !entry.chars().all(allowed) {
                    return Err(bad(
                        "a cluster-name pattern has only lowercase letters, digits, '-', and the wildcards '*' and '?'",
                    ));
                }
                out.cluster_patterns.push(entry.to_string());
            }
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.cluster_patterns.is_empty() && self.identity_patterns.is_empty()
    }

    /// The pattern that accepts a cluster by its name, if any.
    pub fn cluster_pattern(&self, cluster: &str) -> Option<&str> {
        self.cluster_patterns.iter().find(|p| glob_match(p, cluster)).map(String::as_str)
    }

    /// The pattern that accepts clusters whose certificate `requester` asked for, if any.
    pub fn identity_pattern(&self, requester: &str) -> Option<&str> {
        if requester.is_empty() {
            return None;
        }
        self.identity_patterns.iter().find(|p| glob_match(p, requester)).map(String::as_str)
    }
}

/// `*` matches any run of characters (also empty), `?` any one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matching with backtracking to the last star: linear in practice.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("edge-*", "edge-1"));
        assert!(glob_match("edge-*", "edge-"));
        assert!(!glob_match("edge-*", "core-1"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*-prod-*", "eu-prod-7"));
        assert!(!glob_match("cluster1", "cluster10"));
        assert!(glob_match("system:bootstrap:*", "system:bootstrap:abcdef"));
    }

    #[test]
    fn entries_are_cluster_names_or_identities() {
        let auto = AutoAccept::parse(&["edge-*".into(), "system:bootstrap:abc123".into()]).expect("valid");
        assert_eq!(auto.cluster_pattern("edge-7"), Some("edge-*"));
        assert_eq!(auto.cluster_pattern("core"), None);
        assert_eq!(auto.identity_pattern("system:bootstrap:abc123"), Some("system:bootstrap:abc123"));
        assert_eq!(auto.identity_pattern("system:bootstrap:zzz999"), None);
        assert_eq!(auto.identity_pattern(""), None);
        assert!(auto.cluster_pattern("system:bootstrap:abc123").is_none(), "identities do not match names");
        assert!(AutoAccept::parse(&["".into()]).is_err());
        assert!(AutoAccept::parse(&["Edge_*".into()]).is_err());
        assert!(AutoAccept::parse(&["system:bootstrap: x".into()]).is_err());
        assert!(AutoAccept::parse(&[]).expect("empty").is_empty());
    }
}
