"""The files a user edits to get a cluster (cluster/): they parse, Ray's launcher accepts them, and they keep the
security and GPU invariants: private binds, token auth, GPU resources, the sweep command (fast, no cluster)."""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

CLUSTER = Path(__file__).resolve().parents[2] / "cluster"
LAUNCHER = ("aws.yaml", "local.yaml")
KUBERAY = ("kuberay/raycluster.yaml", "kuberay/rayjob.yaml")


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((CLUSTER / name).read_text())


def _strings(node: Any) -> Iterator[str]:
    """Every string value (and key) of a parsed YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


@pytest.mark.parametrize("name", LAUNCHER + KUBERAY)
def test_no_value_binds_to_all_interfaces(name):
    # Comments may explain why; no value may ask for it (0.0.0.0, ::, a public dashboard, a public service).
    for text in _strings(_load(name)):
        assert "0.0.0.0" not in text and "dashboard-host=::" not in text, (name, text)
        assert text not in ("LoadBalancer", "NodePort"), (name, text)


@pytest.mark.parametrize("name", LAUNCHER)
def test_launcher_files_pass_rays_own_config_schema(name):
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = _load(name)
    validate_config(prepare_config(copy.deepcopy(config)))  # ray-schema.json (jsonschema) + Ray's own checks
    # The check is real: a misspelled key is refused by the same schema.
    broken = copy.deepcopy(config)
    broken["head_start_ray_command"] = broken.pop("head_start_ray_commands")
    with pytest.raises(Exception, match="head_start_ray_command"):
        validate_config(prepare_config(broken))


@pytest.mark.parametrize("name", LAUNCHER)
def test_launcher_nodes_start_with_token_auth_on_private_addresses(name):
    config = _load(name)
    head = " ".join(config["head_start_ray_commands"])
    workers = " ".join(config["worker_start_ray_commands"])
    for command in (head, workers):
        assert "RAY_AUTH_MODE=token" in command and "RAY_AUTH_TOKEN_PATH=" in command
    assert "--dashboard-host=127.0.0.1" in head and "--node-ip-address=" in head
    # The token travels to every node with the project.
    assert "~/.ray/auth_token" in config["file_mounts"]


def test_aws_launcher_has_a_cpu_head_and_gpu_workers_on_private_ips():
    config = _load("aws.yaml")
    assert config["provider"]["type"] == "aws" and config["provider"]["use_internal_ips"] is True
    types = config["available_node_types"]
    assert types[config["head_node_type"]]["resources"] == {"CPU": 0}  # no trial on the head
    worker = types["gpu_worker"]["node_config"]["InstanceType"]
    assert re.match(r"(g[456]|p[345])", worker), worker  # an instance family with NVIDIA GPUs


def test_local_launcher_names_existing_machines():
    provider = _load("local.yaml")["provider"]
    assert provider["type"] == "local" and provider["head_ip"] and provider["worker_ips"]
    assert provider["head_ip"] not in provider["worker_ips"]


def _pods(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Head and worker groups of a RayCluster spec (or of a RayJob's rayClusterSpec)."""
    spec = doc["spec"].get("rayClusterSpec", doc["spec"])
    groups = {"head": spec["headGroupSpec"]}
    groups.update({g["groupName"]: g for g in spec["workerGroupSpecs"]})
    return groups


@pytest.mark.parametrize("name", KUBERAY)
def test_kuberay_pods_use_token_auth_and_gpu_workers(name):
    doc = _load(name)
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] in ("RayCluster", "RayJob")
    groups = _pods(doc)
    for group_name, group in groups.items():
        (container,) = group["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["RAY_AUTH_MODE"]["value"] == "token", group_name
        assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "auth_token", group_name
        assert group["rayStartParams"]["node-ip-address"] == "$(POD_IP)"
    head = groups.pop("head")
    assert head["serviceType"] == "ClusterIP" and head["rayStartParams"]["dashboard-host"] == "$(POD_IP)"
    assert head["rayStartParams"]["num-cpus"] == "0"
    limits = [g["template"]["spec"]["containers"][0]["resources"]["limits"] for g in groups.values()]
    assert limits and all(int(lim["nvidia.com/gpu"]) >= 1 for lim in limits)


def test_rayjob_runs_the_sweep_with_the_study_url_from_a_secret():
    doc = _load("kuberay/rayjob.yaml")
    entry = doc["spec"]["entrypoint"]
    assert re.search(r"python -m search\.cli sweep run \S+\.yaml --address auto", entry), entry
    assert entry.startswith("/app/.venv/bin/python")  # the image's venv, not the first python on PATH
    runtime_env = yaml.safe_load(doc["spec"]["runtimeEnvYAML"])
    assert runtime_env["working_dir"] == "/app"
    # Ray's stop signal reaches a driver that saves its state, with time to do it (Ray's default is 3 s).
    assert runtime_env["env_vars"]["RAY_JOB_STOP_SIGNAL"] in ("SIGTERM", "SIGINT")
    assert int(runtime_env["env_vars"]["RAY_JOB_STOP_WAIT_TIME_S"]) >= 30
    (submitter,) = doc["spec"]["submitterPodTemplate"]["spec"]["containers"]  # `ray job submit` needs the token
    env = {e["name"]: e for e in submitter["env"]}
    assert env["RAY_AUTH_MODE"]["value"] == "token" and "secretKeyRef" in env["RAY_AUTH_TOKEN"]["valueFrom"]
    assert "command" not in submitter  # KubeRay supplies `ray job submit ... -- <entrypoint>`
    env = {e["name"]: e for e in _pods(doc)["head"]["template"]["spec"]["containers"][0]["env"]}
    assert env["HUMANLIKE_STUDY_DB"]["valueFrom"]["secretKeyRef"] == {"name": "humanlike-study", "key": "url"}
    assert "postgresql://" not in yaml.safe_dump(doc)  # the URL itself lives only in the Secret
