//! `flotilla plugin bench --input FIXTURE.json FILE`: what a component costs in the host:
//! the first load (compilation), a load from the compilation cache, one instantiation, then
//! a warm-up and sampled calls on the fixture, with percentiles. Nothing is asserted.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use flotilla_plugin_host::{FixtureInput, LoadSource, World};
use serde_json::json;

use super::common;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// The component (.wasm).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The fixture whose call is measured (its "expect" is ignored).
    #[arg(short, long, value_name = "FIXTURE.json")]
    pub input: PathBuf,
    /// The world to run the component as [default: the fixture's, else the one it exports].
    #[arg(long, value_parser = common::parse_world, value_name = "WORLD")]
    pub world: Option<World>,
    /// The plugin's configuration as JSON, instead of the fixture's; @FILE reads it from a file.
    #[arg(long, value_name = "JSON")]
    pub config: Option<String>,
    /// Calls measured after the warm-up.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub iterations: u32,
    /// Calls made, and timed together, before measuring.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub warmup: u32,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: super::inspect::Format,
}

/// The value at quantile `q` of sorted samples (nearest rank).
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    quantile(&samples, 0.5)
}

fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 1000.0 { format!("{:.3} ms", us / 1000.0) } else { format!("{us:.1} µs") }
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.iterations == 0 {
        anyhow::bail!("--iterations must be at least 1");
    }
    let bytes = common::read_component(&args.file)?;
    let mut fixture = common::read_fixture(&args.input)?;
    if let Some(config) = &args.config {
        fixture.config = common::config_arg(config)?;
    }
    let name = common::plugin_name(&args.file);
    // A cache of its own, so the first load compiles.
    let cache = tempfile::tempdir().context("creating a temporary compilation cache")?;

    // First load: compile, write the cache, validate, describe().
    let host = common::host(Some(cache.path()))?;
    let world = common::resolve_world(&host, &bytes, args.world, Some((&args.input, &fixture)))?;
    let started = Instant::now();
    let plugin = common::load(&host, &args.file, &bytes, world)?;
    let first_load = started.elapsed();
    if plugin.info().loaded_from != LoadSource::Compiled {
        anyhow::bail!("the first load did not compile ({:?}): the cache was not empty", plugin.info().loaded_from);
    }
    drop((plugin, host));

    // Cached loads: a new host (new engine) each time, as after a restart.
    let mut cached = Vec::new();
    for _ in 0..5 {
        let h = common::host(Some(cache.path()))?;
        let started = Instant::now();
        let p = common::load(&h, &args.file, &bytes, world)?;
        cached.push(started.elapsed());
        if p.info().loaded_from != LoadSource::DiskCache {
            anyhow::bail!("a cached load did not come from the disk cache ({:?})", p.info().loaded_from);
        }
    }
    let cached_load = median(cached);

    let host = common::host(Some(cache.path()))?;
    let plugin = common::load(&host, &args.file, &bytes, world)?;
    let limits = match &fixture.limits {
        Some(o) => host.limits(&[o]),
        None => host.limits(&[]),
    };
    let started = Instant::now();
    let prepared = host.prepare_with(&plugin, &fixture.config_text(), &limits)?;
    let validate = started.elapsed();
    let input = FixtureInput::decode(world, &fixture.input)
        .map_err(|e| anyhow::anyhow!("fixture {}: {e}", args.input.display()))?;
    let call = input.bind(&prepared)?;

    let instantiations = args.iterations.clamp(1, 100);
    let mut inst = Vec::new();
    for _ in 0..instantiations {
        let started = Instant::now();
        host.probe_instantiation(&plugin, &limits)?;
        inst.push(started.elapsed());
    }
    let instantiation = median(inst);

    let started = Instant::now();
    let mut first_call = None;
    for _ in 0..args.warmup {
        let t = Instant::now();
        call.invoke(&host, &limits).map_err(|e| anyhow::anyhow!("the call failed: {e} ({})", e.reason()))?;
        first_call.get_or_insert(t.elapsed());
    }
    let warmup = started.elapsed();

    let mut samples = Vec::with_capacity(args.iterations as usize);
    for _ in 0..args.iterations {
        let t = Instant::now();
        let result = call.invoke(&host, &limits);
        samples.push(t.elapsed());
        result.map_err(|e| anyhow::anyhow!("the call failed: {e} ({})", e.reason()))?;
    }
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    samples.sort();
    let (p50, p90, p99) = (quantile(&samples, 0.5), quantile(&samples, 0.9), quantile(&samples, 0.99));
    let max = samples.last().copied().unwrap_or_default();

    match args.output {
        super::inspect::Format::Json => {
            let us = |d: Duration| (d.as_secs_f64() * 1e6 * 10.0).round() / 10.0;
            let out = json!({
                "file": args.file.display().to_string(),
                "plugin": name,
                "world": world,
                "sizeBytes": bytes.len(),
                "pooling": host.pooling(),
                "firstLoadMicros": us(first_load),
                "cachedLoadMicros": us(cached_load),
                "validateConfigMicros": us(validate),
                "instantiationMicros": us(instantiation),
                "warmup": {"calls": args.warmup, "totalMicros": us(warmup), "firstCallMicros": first_call.map(us)},
                "calls": {"samples": args.iterations, "p50Micros": us(p50), "p90Micros": us(p90),
                          "p99Micros": us(p99), "maxMicros": us(max), "meanMicros": us(mean)},
            });
            crate::kubectl::emit(&format!("{}\n", serde_json::to_string_pretty(&out)?))?;
        }
        super::inspect::Format::Text => {
            use std::fmt::Write as _;
            let mut text = format!(
                "{} ({world}, {} KiB) on {}; pooling allocator: {}\n",
                args.file.display(),
                bytes.len().div_ceil(1024),
                args.input.display(),
                host.pooling()
            );
            let row = |text: &mut String, what: &str, d: String| {
                let _ = writeln!(text, "  {what:<44} {d:>12}");
            };
            row(&mut text, "first load (compile, cache, validate)", fmt(first_load));
            row(&mut text, "cached load (new engine, median of 5)", fmt(cached_load));
            row(&mut text, "validate-config (one call)", fmt(validate));
            row(&mut text, &format!("instantiation (median of {instantiations})"), fmt(instantiation));
            match first_call {
                Some(first) => {
                    row(&mut text, &format!("warm-up: {} calls (first {})", args.warmup, fmt(first)), fmt(warmup))
                }
                None => row(&mut text, "warm-up: none", String::new()),
            }
            let _ = writeln!(text, "  calls, {} sampled (instantiation included):", args.iterations);
            for (what, d) in [("p50", p50), ("p90", p90), ("p99", p99), ("max", max), ("mean", mean)] {
                row(&mut text, &format!("  {what}"), fmt(d));
            }
            crate::kubectl::emit(&text)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
