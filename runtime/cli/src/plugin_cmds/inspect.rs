//! `flotilla plugin inspect FILE [-o json]`: what a component is, as a push would see it:
//! the world it exports and at which version, its imports and exports, and `describe()`.

use std::path::PathBuf;
use std::process::ExitCode;

use flotilla_plugin_host::{ComponentInterface, Description, Plugin};
use serde_json::{Value, json};

use super::common::{self, out};

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// The component (.wasm).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Format,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let host = common::host(None)?;
    let bytes = common::read_component(&args.file)?;
    let interface = host.interface(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    // Validation as on push: the right world at a compatible version, only granted imports,
    // instantiation and describe().
    let loaded = match interface.world {
        Some(world) => host.load(&common::plugin_name(&args.file), world, &bytes),
        None => host.detect_world(&bytes).and_then(|w| host.load(&common::plugin_name(&args.file), w, &bytes)),
    };
    match args.output {
        Format::Json => {
            let mut out = json!({"file": args.file.display().to_string()});
            if let (Value::Object(out), Value::Object(i)) = (&mut out, serde_json::to_value(&interface)?) {
                out.extend(i);
            }
            match &loaded {
                Ok(plugin) => out["describe"] = describe_json(plugin),
                Err(e) => out["error"] = json!({"reason": e.reason(), "message": e.to_string()}),
            }
            out!("{}", serde_json::to_string_pretty(&out)?);
        }
        Format::Text => {
            crate::kubectl::emit(&text(&args.file, &interface, loaded.as_deref().ok().map(|p| &p.info().describe)))?
        }
    }
    match loaded {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(anyhow::anyhow!("{} does not validate: {e}", args.file.display())),
    }
}

fn describe_json(plugin: &Plugin) -> Value {
    // The same shape as WasmPlugin.status.describe.
    serde_json::to_value(plugin.info()).map(|mut v| v["describe"].take()).unwrap_or(Value::Null)
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "-".into() } else { items.join(", ") }
}

fn text(file: &std::path::Path, i: &ComponentInterface, describe: Option<&Description>) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<10}{v}\n"));
    line("file:", file.display().to_string());
    line("digest:", i.digest.clone());
    line("size:", format!("{} bytes", i.size_bytes));
    line(
        "world:",
        match (&i.world, &i.world_version) {
            (Some(w), Some(v)) => format!("{w} {v}"),
            (Some(w), None) => format!("{w} (unversioned)"),
            (None, _) => "none of Flotilla's worlds".into(),
        },
    );
    out.push_str("imports:\n");
    for name in &i.imports {
        out.push_str(&format!("  {name}\n"));
    }
    out.push_str("exports:\n");
    for name in &i.exports {
        out.push_str(&format!("  {name}\n"));
    }
    if let Some(d) = describe {
        out.push_str("describe():\n");
        out.push_str(&format!("  name:      {}\n  version:   {}\n  summary:   {}\n", d.name, d.version, d.summary));
        let r = &d.reads;
        let kinds: Vec<String> = r.kinds.iter().map(|k| format!("{} {}", k.api_version, k.kind)).collect();
        out.push_str(&format!(
            "  reads:     labels: {}; claims: {}; resources: {}; fields: {}; kinds: {}\n",
            list(&r.labels),
            list(&r.claims),
            list(&r.resources),
            list(&r.fields),
            list(&kinds)
        ));
        match &d.config_schema {
            None => out.push_str("  config schema: none\n"),
            Some(schema) => {
                out.push_str("  config schema:\n");
                let pretty = serde_json::from_str::<Value>(schema)
                    .and_then(|v| serde_json::to_string_pretty(&v))
                    .unwrap_or_else(|_| schema.clone());
                for l in pretty.lines() {
                    out.push_str(&format!("    {l}\n"));
                }
            }
        }
    }
    out
}
