#!/usr/bin/env python3
"""Writes the benchmark inputs of plugins/bench-sdks.sh: one fixture per example, in the
example's world, with a 1,000-cluster batch (the policy check, which sees one cluster, gets
100 Deployments instead). Deterministic: the same files on every run.

    python3 plugins/bench-inputs.py OUT_DIR

The fixtures have no "expect": `flotilla plugin bench` ignores it, and the results are not
the point. Every input takes the plugin's main path (regions allowed and not, capacity above
and below the minimum, clusters in every rollout state, claims on every cluster).
"""

import json
import os
import sys

N = 1000
REGIONS = ["eu-west-1", "eu-central-1", "us-east-1", "ap-south-1"]


def cluster_with_cpu(i):
    # Allocatable cpu walks 0..16 cores in steps of 37m, so about a quarter of the clusters
    # clear a 4-core minimum.
    return {
        "name": f"c{i:04d}",
        "labels": {"region": REGIONS[i % len(REGIONS)]},
        "resources": {"cpu": {"capacity": "16", "allocatable": f"{(i * 37) % 16000}m"}},
    }


def inputs():
    clusters = [cluster_with_cpu(i) for i in range(N)]
    yield "region-capacity-filter", {
        "world": "placement-filter",
        "config": {"regions": ["eu-west-1", "eu-central-1"], "minAllocatableMilli": {"cpu": 4000}},
        "input": {"clusters": clusters},
    }
    yield "least-loaded-scorer", {
        "world": "placement-scorer",
        "config": {"resource": "cpu"},
        "input": {"clusters": clusters},
    }
    # One Deployment in three uses a registry outside the list: violations with remediation.
    yield "allowed-registries", {
        "world": "policy-check",
        "config": {"registries": ["registry.example.com"], "rewriteTo": "registry.example.com"},
        "input": {
            "cluster": {"name": "spoke"},
            "objects": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"namespace": f"ns{i % 10}", "name": f"d{i}"},
                    "spec": {"template": {"spec": {"containers": [
                        {"name": "c", "image": f"{'docker.io' if i % 3 == 0 else 'registry.example.com'}/app:{i}"}
                    ]}}},
                }
                for i in range(100)
            ],
        },
    }
    # The canary and the first wave are done, a second wave is in progress: the strategy
    # sorts all 1,000 and waits.
    yield "canary-waves", {
        "world": "rollout-strategy",
        "config": {"canary": 1, "waves": [10, 50, 100], "maxFailures": 5},
        "input": {
            "now": 1000000,
            "clusters": [
                {
                    "name": f"c{i:04d}",
                    "groupIndex": i % 3,
                    "status": "Succeeded" if i < 200 else "Progressing" if i < 300 else "ToApply",
                    "lastTransitionTime": 900000,
                }
                for i in range(N)
            ],
        },
    }
    # Two manifests rendered for each of 1,000 clusters, each with its own claims.
    yield "claims-transform", {
        "world": "manifest-transform",
        "config": {"registryClaim": "registry.flotilla.dev", "replicasClaim": "replicas.flotilla.dev"},
        "input": {
            "manifests": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": "web"},
                    "spec": {"replicas": 1, "template": {"spec": {"containers": [
                        {"name": "web", "image": "docker.io/acme/web:1"}
                    ]}}},
                },
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
            ],
            "clusters": [
                {
                    "name": f"c{i:04d}",
                    "claims": {
                        "registry.flotilla.dev": f"r{i % 5}.example.com",
                        "replicas.flotilla.dev": str(i % 7 + 1),
                    },
                }
                for i in range(N)
            ],
        },
    }


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUT_DIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for example, fixture in inputs():
        fixture = {"description": f"bench-sdks.sh input for {example}", **fixture}
        with open(os.path.join(out, f"{example}.json"), "w") as f:
            json.dump(fixture, f, separators=(",", ":"))
            f.write("\n")


if __name__ == "__main__":
    main()
