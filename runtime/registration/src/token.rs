//! Bootstrap tokens: kubeadm's `[a-z0-9]{6}.[a-z0-9]{16}` (`ID.SECRET`), stored as a
//! `BootstrapToken` named ID that holds only `sha256:<hex>` of SECRET. A valid token
//! authenticates as `system:bootstrap:<ID>` in the bootstrappers' groups.

use std::fmt;

use async_trait::async_trait;
use flotilla_apimachinery::ApiError;
use flotilla_apiserver::objects::meta;
use flotilla_apiserver::{TokenAuthenticator, UserInfo};
use jiff::Timestamp;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::Hub;
use crate::names::{
    AUTHENTICATED_GROUP, BOOTSTRAP_USER_PREFIX, BOOTSTRAPPERS_GROUP, BOOTSTRAPPERS_MANAGED_CLUSTER_GROUP,
};

pub use flotilla_pki::bootstrap_token::{ID_LEN, SECRET_LEN};
/// The one usage a token can have.
pub const USAGE_REGISTRATION: &str = "registration";
pub const API_VERSION: &str = "flotilla.dev/v1alpha1";
pub const KIND: &str = "BootstrapToken";

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A bootstrap token. `Debug` hides the secret; [`Token::expose`] is the one way to print it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub id: String,
    secret: String,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token").field("id", &self.id).field("secret", &"<redacted>").finish()
    }
}

impl Token {
    /// Parses `ID.SECRET`; `None` when the text is not in the bootstrap token format (so
    /// that other authenticators may try it).
    pub fn parse(text: &str) -> Option<Token> {
        let (id, secret) = flotilla_pki::split_bootstrap_token(text)?;
        Some(Token { id: id.to_string(), secret: secret.to_string() })
    }

    /// A new random token.
    pub fn generate() -> Result<Token, getrandom::Error> {
        Ok(Token { id: random_string(ID_LEN)?, secret: random_string(SECRET_LEN)? })
    }

    /// The whole token, `ID.SECRET`, to hand to whoever joins a cluster.
    pub fn expose(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }

    /// What the hub stores: `sha256:<hex>` of the secret.
    pub fn secret_hash(&self) -> String {
        secret_hash(&self.secret)
    }

    /// The user a request with this token authenticates as.
    pub fn user(&self) -> UserInfo {
        user_for(&self.id)
    }
}

/// `system:bootstrap:<ID>` in the bootstrappers' groups.
pub fn user_for(id: &str) -> UserInfo {
    UserInfo {
        name: format!("{BOOTSTRAP_USER_PREFIX}{id}"),
        groups: vec![
            BOOTSTRAPPERS_GROUP.to_string(),
            BOOTSTRAPPERS_MANAGED_CLUSTER_GROUP.to_string(),
            AUTHENTICATED_GROUP.to_string(),
        ],
    }
}

/// `sha256:` followed by the lowercase hex SHA-256 of `secret`.
pub fn secret_hash(secret: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(secret.as_bytes())))
}

/// Equality whose time depends only on the lengths, so that a wrong secret's hash does not
/// reveal through timing how many leading characters matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn random_string(len: usize) -> Result<String, getrandom::Error> {
    let mut out = String::with_capacity(len);
    // Rejection sampling keeps every character equally likely (256 is not a multiple of 36).
    let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    while out.len() < len {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes)?;
        for b in bytes {
            if b < limit && out.len() < len {
                out.push(ALPHABET[usize::from(b) % ALPHABET.len()] as char);
            }
        }
    }
    Ok(out)
}

/// The `BootstrapToken` object for a new token.
pub fn object(token: &Token, expiration: Option<Timestamp>, description: &str) -> Value {
    let mut spec = json!({"secretHash": token.secret_hash(), "usages": [USAGE_REGISTRATION]});
    if let Some(expiration) = expiration {
        spec["expiration"] = json!(expiration.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    }
    if !description.is_empty() {
        spec["description"] = json!(description);
    }
    json!({"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": token.id}, "spec": spec})
}

/// When a stored token expires (`None`: never). An unparsable value is an error.
pub fn expiration(obj: &Value) -> Result<Option<Timestamp>, String> {
    match obj.pointer("/spec/expiration").and_then(Value::as_str) {
        None | Some("") => Ok(None),
        Some(text) => text.parse::<Timestamp>().map(Some).map_err(|e| format!("invalid expiration {text:?}: {e}")),
    }
}

/// Checks a presented token against its stored object at `now`. The secret is checked
/// first, so only a holder of the right secret learns that a token expired.
pub fn check(obj: &Value, token: &Token, now: Timestamp) -> Result<UserInfo, String> {
    let id = &token.id;
    if meta::deletion_timestamp(obj).is_some() {
        return Err(format!("bootstrap token {id:?} has been revoked"));
    }
    let stored = obj.pointer("/spec/secretHash").and_then(Value::as_str).unwrap_or_default();
    if !constant_time_eq(stored.as_bytes(), token.secret_hash().as_bytes()) {
        return Err(format!("bootstrap token {id:?} is not valid: its secret does not match"));
    }
    match expiration(obj) {
        Ok(Some(at)) if now >= at => return Err(format!("bootstrap token {id:?} has expired")),
        Ok(_) => {}
        Err(detail) => return Err(format!("bootstrap token {id:?} is not usable: {detail}")),
    }
    let usages = obj.pointer("/spec/usages").and_then(Value::as_array);
    let for_registration = usages.is_none_or(|u| u.iter().any(|v| v.as_str() == Some(USAGE_REGISTRATION)));
    if !for_registration {
        return Err(format!("bootstrap token {id:?} is not valid for registration"));
    }
    Ok(token.user())
}

/// Authenticates `Authorization: Bearer ID.SECRET` against the stored BootstrapTokens.
pub struct BootstrapTokenAuthenticator {
    hub: Hub,
}

impl BootstrapTokenAuthenticator {
    pub(crate) fn new(hub: Hub) -> Self {
        BootstrapTokenAuthenticator { hub }
    }
}

#[async_trait]
impl TokenAuthenticator for BootstrapTokenAuthenticator {
    async fn authenticate(&self, bearer: &str) -> Result<Option<UserInfo>, ApiError> {
        let Some(token) = Token::parse(bearer) else {
            return Ok(None);
        };
        let Some(bound) = self.hub.get() else {
            let mut err = ApiError::service_unavailable("the hub is starting; retry in a moment");
            err.retry_after_seconds = Some(1);
            return Err(err);
        };
        let obj = match bound.storage.get(&bound.kinds.bootstrap_tokens, None, &token.id).await {
            Ok(obj) => obj,
            Err(e) if e.code == 404 => {
                tracing::info!(token_id = %token.id, "refused a bootstrap token that does not exist or was revoked");
                return Err(ApiError::unauthorized(format!(
                    "Unauthorized: bootstrap token {:?} does not exist or has been revoked",
                    token.id
                )));
            }
            Err(e) => return Err(e),
        };
        match check(&obj, &token, Timestamp::now()) {
            Ok(user) => Ok(Some(user)),
            Err(reason) => {
                tracing::info!(token_id = %token.id, %reason, "refused a bootstrap token");
                Err(ApiError::unauthorized(format!("Unauthorized: {reason}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(token: &Token, expiration: Option<&str>) -> Value {
        let mut obj = object(token, None, "test");
        if let Some(at) = expiration {
            obj["spec"]["expiration"] = json!(at);
        }
        obj
    }

    fn now() -> Timestamp {
        "2030-01-01T00:00:00Z".parse().expect("timestamp")
    }

    #[test]
    fn parses_only_the_bootstrap_format() {
        let token = Token::parse("abcdef.0123456789abcdef").expect("valid");
        assert_eq!(token.id, "abcdef");
        assert_eq!(token.expose(), "abcdef.0123456789abcdef");
        for bad in [
            "",
            "abcdef",
            "abcdef.",
            "abcde.0123456789abcdef",
            "abcdefg.0123456789abcdef",
            "abcdef.0123456789abcde",
            "ABCDEF.0123456789abcdef",
            "abcdef.0123456789abcdeF",
            "abc-ef.0123456789abcdef",
            "abcdef.0123456789abcdef.x",
            "abcdef:0123456789abcdef",
        ] {
            assert!(Token::parse(bad).is_none(), "{bad:?}");
        }
        assert!(!format!("{token:?}").contains("0123456789abcdef"), "Debug hides the secret");
    }

    #[test]
    fn generated_tokens_parse_and_differ() {
        let a = Token::generate().expect("random");
        let b = Token::generate().expect("random");
        assert_eq!(Token::parse(&a.expose()), Some(a.clone()));
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn hashes_the_secret_only() {
        let token = Token::parse("abcdef.0123456789abcdef").expect("valid");
        // printf %s 0123456789abcdef | sha256sum
        assert_eq!(token.secret_hash(), "sha256:9f9f5111f7b27a781f1f1ddde5ebc2dd2b796bfc7365c9c28b548e564176929f");
        let obj = object(&token, None, "");
        assert!(!obj.to_string().contains("0123456789abcdef"), "the secret is never stored");
        assert_eq!(obj["spec"]["usages"], json!(["registration"]));
    }

    #[test]
    fn constant_time_eq_compares_everything() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn checks_secret_expiry_and_usage() {
        let token = Token::parse("abcdef.0123456789abcdef").expect("valid");
        let user = check(&stored(&token, None), &token, now()).expect("no expiry");
        assert_eq!(user.name, "system:bootstrap:abcdef");
        assert!(user.in_group("system:bootstrappers:managedcluster") && user.in_group("system:bootstrappers"));

        assert!(check(&stored(&token, Some("2030-01-01T00:00:01Z")), &token, now()).is_ok());
        let err = check(&stored(&token, Some("2030-01-01T00:00:00Z")), &token, now()).expect_err("expires at now");
        assert_eq!(err, "bootstrap token \"abcdef\" has expired");

        let wrong = Token::parse("abcdef.aaaaaaaaaaaaaaaa").expect("valid");
        let err = check(&stored(&token, Some("2000-01-01T00:00:00Z")), &wrong, now()).expect_err("wrong secret");
        assert!(err.contains("secret does not match"), "the secret is checked before expiry: {err}");

        let err = check(&stored(&token, Some("tomorrow")), &token, now()).expect_err("bad expiry");
        assert!(err.contains("invalid expiration"), "{err}");

        let mut other_use = stored(&token, None);
        other_use["spec"]["usages"] = json!(["signing"]);
        assert!(check(&other_use, &token, now()).expect_err("usage").contains("not valid for registration"));

        let mut deleting = stored(&token, None);
        deleting["metadata"]["deletionTimestamp"] = json!("2029-01-01T00:00:00Z");
        assert!(check(&deleting, &token, now()).expect_err("revoked").contains("revoked"));
    }

    #[test]
    fn expiration_is_written_in_rfc3339() {
        let token = Token::parse("abcdef.0123456789abcdef").expect("valid");
        let obj = object(&token, Some(now()), "for cluster1");
        assert_eq!(obj["spec"]["expiration"], "2030-01-01T00:00:00Z");
        assert_eq!(obj["spec"]["description"], "for cluster1");
        assert_eq!(expiration(&obj), Ok(Some(now())));
    }
}
