//! Registration from the operator's side: bootstrap tokens (`token create|list|revoke`)
//! and the hub's half of the double opt-in (`accept`, `deny`). See docs/registration.md.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use flotilla_registration::names::{
    CLUSTER_NAME_LABEL, CSR_APPROVED, CSR_DENIED, REASON_FLOTILLA_ACCEPT, REASON_FLOTILLA_DENY,
};
use flotilla_registration::token::{self, Token};
use flotilla_registration::{CsrState, csr_state};
use jiff::Timestamp;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};

use crate::kubectl::age::human_duration;
use crate::kubectl::errors::{api_code, kube_message};
use crate::kubectl::session::Session;
use crate::kubectl::tabwriter::TabWriter;

#[derive(clap::Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a bootstrap token and print the command that joins a cluster with it.
    Create(TokenCreateArgs),
    /// List bootstrap tokens (IDs only; secrets are never stored).
    List,
    /// Revoke a bootstrap token: requests with it are refused from now on.
    Revoke {
        /// The token ID (the part before the dot), or the whole token.
        id: String,
    },
}

#[derive(clap::Args, Debug)]
pub struct TokenCreateArgs {
    /// How long the token is valid, such as 30m, 1h, 24h, 7d or 1h30m; 0 never expires.
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    pub ttl: String,
    /// What the token is for, shown by `token list`.
    #[arg(long, default_value = "", value_name = "TEXT")]
    pub description: String,
}

#[derive(clap::Args, Debug)]
pub struct ClusterNames {
    /// Managed cluster names.
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

fn bootstrap_tokens() -> ApiResource {
    ApiResource {
        group: "flotilla.dev".into(),
        version: "v1alpha1".into(),
        api_version: token::API_VERSION.into(),
        kind: token::KIND.into(),
        plural: "bootstraptokens".into(),
    }
}

pub(crate) fn managed_clusters() -> ApiResource {
    ApiResource {
        group: "cluster.open-cluster-management.io".into(),
        version: "v1".into(),
        api_version: "cluster.open-cluster-management.io/v1".into(),
        kind: "ManagedCluster".into(),
        plural: "managedclusters".into(),
    }
}

pub(crate) fn csrs() -> ApiResource {
    ApiResource {
        group: "certificates.k8s.io".into(),
        version: "v1".into(),
        api_version: "certificates.k8s.io/v1".into(),
        kind: "CertificateSigningRequest".into(),
        plural: "certificatesigningrequests".into(),
    }
}

/// Parses `30m`, `1h`, `24h`, `7d`, `90s`, `1h30m`; `0` means no expiry (`None`).
pub fn parse_ttl(text: &str) -> anyhow::Result<Option<std::time::Duration>> {
    let text = text.trim();
    if text == "0" {
        return Ok(None);
    }
    let invalid =
        || anyhow::anyhow!("--ttl {text:?} is not a duration such as 30m, 1h, 24h, 7d or 1h30m (0: never expires)");
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(invalid()),
        };
        let amount: u64 = digits.parse().map_err(|_| invalid())?;
        total = amount.checked_mul(unit).and_then(|s| total.checked_add(s)).ok_or_else(invalid)?;
        digits.clear();
    }
    if !digits.is_empty() || total == 0 {
        return Err(invalid());
    }
    Ok(Some(std::time::Duration::from_secs(total)))
}

/// A bootstrap token stored on the hub, with what an agent needs to join with it.
pub struct CreatedToken {
    pub token: Token,
    pub expiration: Option<Timestamp>,
    /// The hub's URL, from the kubeconfig in use.
    pub hub_url: String,
    /// `sha256:<hex>` of the hub CA's public key, for `--hub-ca-hash`.
    pub hub_ca_hash: String,
}

impl CreatedToken {
    /// The `flotilla agent join` command line for this token.
    pub fn join_command(&self) -> String {
        format!(
            "flotilla agent join --hub {} --token {} --hub-ca-hash {} --cluster-name <name>",
            self.hub_url,
            self.token.expose(),
            self.hub_ca_hash
        )
    }
}

/// Creates a bootstrap token on the hub. The hub URL and CA hash for the join command come
/// from the kubeconfig in use; they are read first, so a kubeconfig without a CA fails
/// before a token exists.
pub async fn create_token(
    session: &Session,
    kubeconfig: &Path,
    context: Option<&str>,
    args: &TokenCreateArgs,
) -> anyhow::Result<CreatedToken> {
    let config = flotilla_pki::Kubeconfig::load(kubeconfig)?;
    let resolved = config.resolve(context)?;
    let hub_url = resolved.server.trim_end_matches('/').to_string();
    if hub_url.is_empty() {
        bail!("kubeconfig {}: the cluster has no server URL", kubeconfig.display());
    }
    let ca = resolved.ca_pem.with_context(|| {
        format!("kubeconfig {}: the cluster has no certificate-authority(-data) to pin", kubeconfig.display())
    })?;
    let hub_ca_hash = flotilla_pki::ca_hash_of_pem(&ca)?;
    let expiration = match parse_ttl(&args.ttl)? {
        Some(ttl) => Some(
            Timestamp::now()
                .checked_add(jiff::SignedDuration::try_from(ttl).context("--ttl is too long")?)
                .context("--ttl is too long")?,
        ),
        None => None,
    };
    let token = Token::generate().context("no randomness for the token")?;
    let object: DynamicObject = serde_json::from_value(token::object(&token, expiration, &args.description))?;
    let api: Api<DynamicObject> = Api::all_with(session.client.clone(), &bootstrap_tokens());
    api.create(&PostParams::default(), &object).await.map_err(|e| anyhow::anyhow!(kube_message(&e)))?;
    Ok(CreatedToken { token, expiration, hub_url, hub_ca_hash })
}

pub async fn token(
    session: &Session,
    kubeconfig: &Path,
    context: Option<&str>,
    command: TokenCommand,
) -> anyhow::Result<ExitCode> {
    let api: Api<DynamicObject> = Api::all_with(session.client.clone(), &bootstrap_tokens());
    match command {
        TokenCommand::Create(args) => {
            let created = create_token(session, kubeconfig, context, &args).await?;
            let expires = match created.expiration {
                Some(at) => format!("{} (in {})", at.strftime("%Y-%m-%dT%H:%M:%SZ"), args.ttl.trim()),
                None => "never".to_string(),
            };
            session.out(&format!(
                "token: {}\nexpires: {expires}\nJoin a cluster with:\n  {}\n",
                created.token.expose(),
                created.join_command()
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::List => {
            let list = api.list(&ListParams::default()).await.map_err(|e| anyhow::anyhow!(kube_message(&e)))?;
            if list.items.is_empty() {
                session.err("No bootstrap tokens found.\n");
                return Ok(ExitCode::SUCCESS);
            }
            let now = Timestamp::now();
            let mut tw = TabWriter::for_tables();
            tw.write_str("ID\tTTL\tEXPIRES\tUSAGES\tDESCRIPTION\n");
            for item in &list.items {
                let obj = serde_json::to_value(item)?;
                let (ttl, expires) = match token::expiration(&obj) {
                    Ok(Some(at)) if at <= now => {
                        ("<expired>".to_string(), at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
                    }
                    Ok(Some(at)) => (
                        human_duration(at.as_second() - now.as_second()),
                        at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    ),
                    Ok(None) => ("<forever>".to_string(), "<never>".to_string()),
                    Err(_) => ("<invalid>".to_string(), "<invalid>".to_string()),
                };
                let usages: Vec<&str> = obj
                    .pointer("/spec/usages")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let description = obj.pointer("/spec/description").and_then(Value::as_str).unwrap_or("<none>");
                let name = item.metadata.name.as_deref().unwrap_or_default();
                tw.write_str(&format!("{name}\t{ttl}\t{expires}\t{}\t{description}\n", usages.join(",")));
            }
            session.out(&tw.flush())?;
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Revoke { id } => {
            let id = id.split('.').next().unwrap_or_default().to_string();
            match api.delete(&id, &DeleteParams::default()).await {
                Ok(_) => {
                    session.out(&format!("bootstrap token {id:?} revoked\n"))?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) if api_code(&e) == Some(404) => bail!("bootstrap token {id:?} not found"),
                Err(e) => bail!(kube_message(&e)),
            }
        }
    }
}

/// Pending CSRs of a cluster.
async fn pending_csrs(session: &Session, cluster: &str) -> anyhow::Result<Vec<Value>> {
    let api: Api<DynamicObject> = Api::all_with(session.client.clone(), &csrs());
    let params = ListParams::default().labels(&format!("{CLUSTER_NAME_LABEL}={cluster}"));
    let list = api.list(&params).await.map_err(|e| anyhow::anyhow!(kube_message(&e)))?;
    let mut out = Vec::new();
    for item in list.items {
        let obj = serde_json::to_value(&item)?;
        if csr_state(&obj) == CsrState::Pending {
            out.push(obj);
        }
    }
    Ok(out)
}

/// Approves or denies one CSR through its `approval` subresource, as `kubectl certificate approve` does.
async fn decide_csr(session: &Session, csr: &Value, type_: &str, reason: &str, message: &str) -> anyhow::Result<()> {
    let api: Api<DynamicObject> = Api::all_with(session.client.clone(), &csrs());
    let name = csr.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let now = Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut updated = csr.clone();
    let mut conditions: Vec<Value> =
        updated.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    conditions.push(json!({
        "type": type_, "status": "True", "reason": reason, "message": message,
        "lastUpdateTime": now, "lastTransitionTime": now,
    }));
    updated["status"]["conditions"] = json!(conditions);
    let body: DynamicObject = serde_json::from_value(updated)?;
    // The resourceVersion in the body makes this a compare-and-swap: a CSR the hub decided
    // on meanwhile is not overwritten.
    api.replace_subresource("approval", name, &PostParams::default(), &body)
        .await
        .map_err(|e| anyhow::anyhow!(kube_message(&e)))?;
    Ok(())
}

async fn set_accepts(session: &Session, cluster: &str, accept: bool) -> anyhow::Result<()> {
    let api: Api<DynamicObject> = Api::all_with(session.client.clone(), &managed_clusters());
    let patch = json!({"spec": {"hubAcceptsClient": accept}});
    api.patch(cluster, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(|e| {
        if api_code(&e) == Some(404) {
            anyhow::anyhow!("managed cluster {cluster:?} not found (has its agent joined yet?)")
        } else {
            anyhow::anyhow!(kube_message(&e))
        }
    })?;
    Ok(())
}

/// `flotilla accept NAME...`: approve each cluster's pending CSRs and set `hubAcceptsClient`.
pub async fn accept(session: &Session, args: ClusterNames) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for cluster in &args.names {
        match accept_one(session, cluster).await {
            Ok(approved) => {
                let csrs = match approved {
                    0 => " (no pending certificate request yet: run accept again once the agent has asked)".to_string(),
                    1 => ", approved 1 certificate request".to_string(),
                    n => format!(", approved {n} certificate requests"),
                };
                session.out(&format!("managed cluster {cluster:?} accepted{csrs}\n"))?;
            }
            Err(e) => {
                session.err(&format!("error: accepting {cluster:?}: {e:#}\n"));
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

async fn accept_one(session: &Session, cluster: &str) -> anyhow::Result<usize> {
    // The cluster first: a name that does not exist must not get its CSRs approved.
    set_accepts(session, cluster, true).await?;
    let mut approved = 0;
    let mut skipped = Vec::new();
    for csr in pending_csrs(session, cluster).await? {
        let name = csr.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
        // Only requests for this cluster's agent identity are approved; the hub's signer
        // would refuse the others anyway.
        if let Err(reason) = flotilla_registration::identity::validate_agent_csr(&csr) {
            skipped.push(format!("{name}: {reason}"));
            continue;
        }
        let message = format!("Approved by the hub administrator (flotilla accept {cluster})");
        decide_csr(session, &csr, CSR_APPROVED, REASON_FLOTILLA_ACCEPT, &message).await?;
        approved += 1;
    }
    for skip in skipped {
        session.err(&format!("warning: not approving certificate request {skip}\n"));
    }
    Ok(approved)
}

/// `flotilla deny NAME...`: deny each cluster's pending CSRs and clear `hubAcceptsClient`.
pub async fn deny(session: &Session, args: ClusterNames) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for cluster in &args.names {
        let result = async {
            let mut denied = 0;
            for csr in pending_csrs(session, cluster).await? {
                let message = format!("Denied by the hub administrator (flotilla deny {cluster})");
                decide_csr(session, &csr, CSR_DENIED, REASON_FLOTILLA_DENY, &message).await?;
                denied += 1;
            }
            set_accepts(session, cluster, false).await?;
            anyhow::Ok(denied)
        }
        .await;
        match result {
            Ok(denied) => {
                let csrs = match denied {
                    0 => String::new(),
                    1 => ", denied 1 certificate request".to_string(),
                    n => format!(", denied {n} certificate requests"),
                };
                session.out(&format!("managed cluster {cluster:?} denied{csrs}\n"))?;
            }
            Err(e) => {
                session.err(&format!("error: denying {cluster:?}: {e:#}\n"));
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;

    #[test]
    fn parses_registration_commands() {
        use clap::Parser as _;

        use crate::args::{Cli, Command};
        let parse = |args: &[&str]| Cli::try_parse_from(std::iter::once("flotilla").chain(args.iter().copied()));
        let cli = parse(&["token", "create", "--ttl", "30m", "--description", "edge"]).unwrap();
        let Command::Token { command: TokenCommand::Create(create) } = cli.command else { panic!("not token create") };
        assert_eq!((create.ttl.as_str(), create.description.as_str()), ("30m", "edge"));
        let cli = parse(&["token", "create"]).unwrap();
        let Command::Token { command: TokenCommand::Create(create) } = cli.command else { panic!("not token create") };
        assert_eq!(create.ttl, "24h");
        assert!(matches!(parse(&["token", "list"]).unwrap().command, Command::Token { command: TokenCommand::List }));
        let cli = parse(&["token", "revoke", "abcdef"]).unwrap();
        assert!(matches!(cli.command, Command::Token { command: TokenCommand::Revoke { ref id } } if id == "abcdef"));
        let cli = parse(&["accept", "c1", "c2"]).unwrap();
        assert!(matches!(cli.command, Command::Accept(ref a) if a.names == ["c1", "c2"]));
        assert!(matches!(parse(&["deny", "c3"]).unwrap().command, Command::Deny(_)));
        assert!(parse(&["accept"]).is_err(), "accept needs a name");
        assert!(parse(&["token", "revoke"]).is_err());
    }

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl("1h").unwrap(), Some(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("30m").unwrap(), Some(Duration::from_secs(1800)));
        assert_eq!(parse_ttl("24h").unwrap(), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_ttl("1h30m").unwrap(), Some(Duration::from_secs(5400)));
        assert_eq!(parse_ttl("7d").unwrap(), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_ttl("90s").unwrap(), Some(Duration::from_secs(90)));
        assert_eq!(parse_ttl("0").unwrap(), None);
        for bad in ["", "1", "h", "1x", "-1h", "0h", "1.5h", "99999999999999999999h"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }
}
