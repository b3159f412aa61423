// Builds a Flotilla JavaScript plugin into a WebAssembly component with componentize-js.
//
//   node flotilla-plugin-sdk/build.mjs              # in the project: reads flotilla-plugin.json
//
// componentize-js is looked up in $FLOTILLA_NPM_PREFIX, else ~/.cache/flotilla/npm (one
// install shared by every project), else the project's own node_modules.

import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export const COMPONENTIZE_JS_VERSION = '0.23.0';
const prefix = process.env.FLOTILLA_NPM_PREFIX || join(homedir(), '.cache', 'flotilla', 'npm');
export const INSTALL = `npm install --prefix ${prefix.startsWith(homedir()) ? prefix.replace(homedir(), '~') : prefix} --no-audit --no-fund @bytecodealliance/componentize-js@${COMPONENTIZE_JS_VERSION}`;

function findComponentize() {
  for (const base of [prefix, process.cwd()]) {
    const pkg = join(base, 'node_modules', '@bytecodealliance', 'componentize-js', 'package.json');
    if (existsSync(pkg)) {
      const meta = JSON.parse(readFileSync(pkg, 'utf8'));
      const entry = join(dirname(pkg), meta.exports?.import ?? meta.main ?? 'src/componentize.js');
      return { entry, version: meta.version };
    }
  }
  return undefined;
}

async function main() {
  const project = resolve(process.argv[2] ?? '.');
  const manifest = JSON.parse(readFileSync(join(project, 'flotilla-plugin.json'), 'utf8'));
  const source = join(project, manifest.source ?? 'src/plugin.js');
  const out = join(project, manifest.component);
  const found = findComponentize();
  if (!found) {
    console.error(`componentize-js is missing: install it with \`${INSTALL}\``);
    process.exit(127);
  }
  if (found.version !== COMPONENTIZE_JS_VERSION) {
    console.error(`warning: componentize-js ${found.version} found, this SDK is tested with ${COMPONENTIZE_JS_VERSION} (${INSTALL})`);
  }
  const { componentize } = await import(pathToFileURL(found.entry).href);
  const started = Date.now();
  // componentize-js lets the engine read only files under the working directory, and no
  // symbolic link out of it: build from a copy of the project's sources with links resolved
  // (the examples link flotilla-plugin-sdk/ to the SDK in the repository).
  const staging = mkdtempSync(join(tmpdir(), 'flotilla-js-'));
  const skip = new Set(['node_modules', 'dist', 'fixtures', 'wit', '.git', dirname(manifest.component).split('/')[0]]);
  for (const entry of readdirSync(project)) {
    if (!skip.has(entry)) cpSync(join(project, entry), join(staging, entry), { recursive: true, dereference: true });
  }
  const back = process.cwd();
  let component;
  try {
    process.chdir(staging);
    ({ component } = await componentize({
      sourcePath: join(staging, relative(project, source)),
      witPath: join(project, 'wit'),
      worldName: manifest.world,
      // The worlds grant no HTTP; stdio stays so that uncaught errors reach the host's log,
      // and clocks and randomness are the host's deterministic ones.
      disableFeatures: ['http', 'fetch-event'],
    }));
  } finally {
    process.chdir(back);
    rmSync(staging, { recursive: true, force: true });
  }
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, component);
  const size = statSync(out).size;
  console.error(`built ${manifest.component} (${(size / 1048576).toFixed(1)} MiB) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(out);
}

main().catch((e) => {
  console.error(`build failed: ${e?.stack ?? e}`);
  process.exit(1);
});
