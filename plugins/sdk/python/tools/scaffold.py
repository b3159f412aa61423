#!/usr/bin/env python3
"""Builds Python plugin projects the way ``flotilla plugin new`` / ``build`` / ``test`` do,
for checking the templates and examples before (and besides) the CLI.

    scaffold.py new NAME WORLD DIR     # a project from the templates, as `plugin new` writes it
    scaffold.py build DIR              # runs the manifest's build commands; prints the .wasm
    scaffold.py test DIR [FLOTILLA]    # build, then `flotilla plugin test` on the fixtures
    scaffold.py check-templates OUT [FLOTILLA]   # new+build+test for every world under OUT
    scaffold.py check-examples [FLOTILLA]        # build+test plugins/examples/*/python

Timings go to stderr as ``componentize WORLD: N.Ns, SIZE bytes``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SDK = HERE.parent  # plugins/sdk/python
PLUGINS = SDK.parent.parent  # plugins/
REPO = PLUGINS.parent
TEMPLATES = PLUGINS / "templates" / "python"
WIT = REPO / "wit"
WORLDS = ["placement-filter", "placement-scorer", "policy-check", "rollout-strategy", "manifest-transform"]


def substitute(text: str, name: str, world: str) -> str:
    return (
        text.replace("{{name}}", name)
        .replace("{{name_snake}}", name.replace("-", "_"))
        .replace("{{world_snake}}", world.replace("-", "_"))
        .replace("{{world}}", world)
    )


def new(name: str, world: str, dest: Path) -> None:
    """Writes a project as `flotilla plugin new NAME --lang python --world WORLD` does."""
    dest.mkdir(parents=True, exist_ok=True)
    for src_root in (TEMPLATES / "common", TEMPLATES / world):
        for src in sorted(src_root.rglob("*")):
            if src.is_dir() or "__pycache__" in src.parts:
                continue
            rel = substitute(str(src.relative_to(src_root)), name, world)
            if rel == "gitignore":
                rel = ".gitignore"
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(substitute(src.read_text(), name, world))
    wit = dest / "wit"
    shutil.rmtree(wit, ignore_errors=True)
    (wit / "deps" / "types").mkdir(parents=True)
    shutil.copy(WIT / world / f"{world}.wit", wit / f"{world}.wit")
    shutil.copy(WIT / "types" / "types.wit", wit / "deps" / "types" / "types.wit")
    sdk = dest / "flotilla-plugin-sdk"
    shutil.rmtree(sdk, ignore_errors=True)
    shutil.copytree(SDK, sdk, ignore=shutil.ignore_patterns("__pycache__"))
    for w in WORLDS:  # as the CLI: every world's WIT in the SDK's wit/
        (sdk / "wit" / w / "deps" / "types").mkdir(parents=True)
        shutil.copy(WIT / w / f"{w}.wit", sdk / "wit" / w / f"{w}.wit")
        shutil.copy(WIT / "types" / "types.wit", sdk / "wit" / w / "deps" / "types" / "types.wit")


def build(project: Path) -> Path:
    manifest = json.loads((project / "flotilla-plugin.json").read_text())
    for tool in manifest.get("tools", []):
        if shutil.which(tool["command"]) is None:
            sys.exit(f"{tool['command']} is missing: install it with `{tool['install']}`")
    start = time.monotonic()
    for argv in manifest["build"]:
        subprocess.run(argv, cwd=project, check=True, stdout=subprocess.DEVNULL)
    took = time.monotonic() - start
    wasm = project / manifest["component"]
    print(f"componentize {manifest['world']} ({project.name}): {took:.1f}s, {wasm.stat().st_size} bytes", file=sys.stderr)
    return wasm


def test(project: Path, flotilla: str) -> bool:
    wasm = build(project)
    manifest = json.loads((project / "flotilla-plugin.json").read_text())
    fixtures = project / manifest.get("fixtures", "fixtures")
    return subprocess.run([flotilla, "plugin", "test", str(wasm), str(fixtures)]).returncode == 0


def main(argv: list[str]) -> int:
    default_cli = os.environ.get("FLOTILLA", "/work/ci-target/debug/flotilla")
    if len(argv) >= 4 and argv[0] == "new":
        new(argv[1], argv[2], Path(argv[3]))
    elif len(argv) == 2 and argv[0] == "build":
        print(build(Path(argv[1])))
    elif len(argv) in (2, 3) and argv[0] == "test":
        return 0 if test(Path(argv[1]), argv[2] if len(argv) == 3 else default_cli) else 1
    elif len(argv) in (2, 3) and argv[0] == "check-templates":
        out, cli = Path(argv[1]), argv[2] if len(argv) == 3 else default_cli
        failed = []
        for world in WORLDS:
            name = f"my-{world}"
            new(name, world, out / name)
            if not test(out / name, cli):
                failed.append(world)
        print(f"{len(WORLDS) - len(failed)} passed, {len(failed)} failed", file=sys.stderr)
        return 1 if failed else 0
    elif len(argv) in (1, 2) and argv[0] == "check-examples":
        cli = argv[1] if len(argv) == 2 else default_cli
        projects = sorted(p.parent for p in (PLUGINS / "examples").glob("*/python/flotilla-plugin.json"))
        failed = [p.parent.name for p in projects if not test(p, cli)]
        print(f"{len(projects) - len(failed)} passed, {len(failed)} failed", file=sys.stderr)
        return 1 if failed else 0
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
