#!/usr/bin/env python3
"""Benchmarks the Python examples with ``flotilla plugin bench`` on generated inputs of
1,000 clusters (a policy check gets one cluster with 100 Deployments).

    bench.py [FLOTILLA] [--iterations N]     # prints a Markdown table

Build the examples first (``scaffold.py build plugins/examples/<name>/python``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
N = 1000


def clusters() -> list[dict[str, Any]]:
    regions = ["eu-west-1", "eu-central-1", "us-east-1", "ap-south-1"]
    return [
        {
            "name": f"cluster-{i:04d}",
            "labels": {"region": regions[i % len(regions)]},
            "claims": {"registry.example.com": f"mirror-{i % 3}.example.com", "replicas.example.com": str(i % 5 + 1)},
            "resources": {
                "cpu": {"capacity": "16", "allocatable": f"{(i * 37) % 16000}m"},
                "memory": {"capacity": "64Gi", "allocatable": f"{(i * 53) % 64}Gi"},
            },
        }
        for i in range(N)
    ]


def fixtures() -> dict[str, dict[str, Any]]:
    deployment = lambda i: {  # noqa: E731
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"namespace": f"ns-{i % 7}", "name": f"web-{i}"},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": ("ghcr.io/acme/web:1" if i % 2 else f"docker.io/library/redis:{i}")}]}}},
    }
    statuses = ["Succeeded", "Progressing", "ToApply", "ToApply"]
    return {
        "region-capacity-filter": {
            "world": "placement-filter",
            "config": {"regions": ["eu-west-1", "eu-central-1"], "minAllocatableMilli": {"cpu": 4000}},
            "input": {"clusters": clusters()},
        },
        "least-loaded-scorer": {"world": "placement-scorer", "config": {}, "input": {"clusters": clusters()}},
        "allowed-registries": {
            "world": "policy-check",
            "config": {"registries": ["ghcr.io/acme"], "rewriteTo": "ghcr.io/acme"},
            "input": {"cluster": {"name": "spoke-1"}, "objects": [deployment(i) for i in range(100)]},
        },
        "canary-waves": {
            "world": "rollout-strategy",
            "config": {"canary": 10, "waves": [10, 50, 100], "maxFailures": 5},
            "input": {
                "now": 1767225600000,
                "clusters": [
                    {"name": c["name"], "groupIndex": i % 3, "status": statuses[min(i // 100, 3)]}
                    for i, c in enumerate(clusters())
                ],
            },
        },
        "claims-transform": {
            "world": "manifest-transform",
            "config": {"registryClaim": "registry.example.com", "replicasClaim": "replicas.example.com"},
            "input": {"manifests": [deployment(0), deployment(1)], "clusters": clusters()},
        },
    }


def main(argv: list[str]) -> int:
    cli = os.environ.get("FLOTILLA", "/work/ci-target/debug/flotilla")
    iterations = "50"
    args = list(argv)
    if "--iterations" in args:
        i = args.index("--iterations")
        iterations = args[i + 1]
        del args[i : i + 2]
    if args:
        cli = args[0]
    print("| example | world | size (bytes) | result |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, fixture in fixtures().items():
            manifest = json.loads((EXAMPLES / name / "python" / "flotilla-plugin.json").read_text())
            wasm = EXAMPLES / name / "python" / manifest["component"]
            path = Path(tmp) / f"{name}.json"
            path.write_text(json.dumps(fixture))
            out = subprocess.run(
                [cli, "plugin", "bench", "--input", str(path), str(wasm), "--iterations", iterations, "-o", "json"],
                capture_output=True,
                text=True,
            )
            result = out.stdout.strip().replace("\n", " ") if out.returncode == 0 else f"FAILED: {out.stderr.strip()}"
            print(f"| {name} | {fixture['world']} | {wasm.stat().st_size} | {result} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
