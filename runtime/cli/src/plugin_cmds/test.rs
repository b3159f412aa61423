//! `flotilla plugin test FILE FIXTURES...`: runs each fixture and checks its expectation;
//! `flotilla plugin test` alone, in a plugin project: builds it, then runs its fixtures (the
//! `fixtures` directory its `flotilla-plugin.json` names, else `fixtures/`), or those given
//! with `--fixtures`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use flotilla_plugin_host::{World, run_fixture};

use super::common::out;
use super::{build, common, project};

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// The component (.wasm) [default: build the plugin project in --dir].
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Fixture files, or directories of them [default: the project's fixtures directory].
    #[arg(value_name = "FIXTURES")]
    pub fixtures: Vec<PathBuf>,
    /// A fixture file or directory, instead of the project's own (repeatable): examples in
    /// several languages share one, `--fixtures ../fixtures`.
    #[arg(long = "fixtures", value_name = "PATH")]
    pub fixture_dirs: Vec<PathBuf>,
    /// The plugin project, built when no FILE is given, and whose fixtures/ is the default.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
    /// The world to run the component as [default: the one it exports].
    #[arg(long, value_parser = common::parse_world, value_name = "WORLD")]
    pub world: Option<World>,
}

pub fn run(args: TestArgs) -> anyhow::Result<ExitCode> {
    let file = match &args.file {
        Some(file) => file.clone(),
        None => build::build_project(&args.dir)?,
    };
    let given: Vec<PathBuf> = args.fixtures.iter().chain(&args.fixture_dirs).cloned().collect();
    let fixtures = if given.is_empty() {
        let own = project::read(&args.dir)?.map_or_else(|| "fixtures".to_string(), |m| m.fixtures);
        let dir = args.dir.join(own);
        if !dir.is_dir() {
            anyhow::bail!("no fixtures given, and {} is not a directory", dir.display());
        }
        common::fixture_files(&[dir])?
    } else {
        for path in &given {
            if !path.exists() {
                anyhow::bail!("no fixtures at {}", path.display());
            }
        }
        common::fixture_files(&given)?
    };
    if fixtures.is_empty() {
        anyhow::bail!("no fixtures (*.json) to run");
    }
    let host = common::host(None)?;
    let bytes = common::read_component(&file)?;
    let world = common::resolve_world(&host, &bytes, args.world, None)?;
    let plugin = common::load(&host, &file, &bytes, world)?;
    let limits = host.limits(&[]);
    out!("testing {} ({world}) on {} fixture(s)", file.display(), fixtures.len());
    let (mut passed, mut failed) = (0, 0);
    for path in &fixtures {
        let started = Instant::now();
        let verdict = common::read_fixture(path).and_then(|fixture| {
            if let Some(w) = fixture.world.filter(|w| *w != world) {
                anyhow::bail!("the fixture is for a {w}, the component is a {world}");
            }
            let outcome = run_fixture(&host, &plugin, &fixture, &limits).map_err(anyhow::Error::msg)?;
            fixture.check(&outcome).map_err(anyhow::Error::msg)
        });
        let ms = started.elapsed().as_secs_f64() * 1e3;
        match verdict {
            Ok(()) => {
                passed += 1;
                out!("PASS {} ({ms:.1} ms)", path.display());
            }
            Err(e) => {
                failed += 1;
                out!("FAIL {}", path.display());
                for line in format!("{e:#}").lines() {
                    out!("    {line}");
                }
            }
        }
    }
    out!("{passed} passed, {failed} failed");
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
