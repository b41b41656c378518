"""The rendered Kubernetes manifests: schema-valid, hardened, and consistent
with the server they start (ports, probes, grace period, device)."""

from __future__ import annotations

import copy
from typing import Any

import click
import pytest
from gan_server.cli import main

from .manifests import (
    DOCKERFILE,
    DOCKERFILE_GPU,
    K8S_VERSION,
    SERVER_ENV_PREFIX,
    container,
    container_env,
    dockerfile_user,
    effective_security,
    find,
    flag_values,
    job_invocation,
    pod_spec,
    prestop_seconds,
    server_invocation,
    server_option_envvars,
    server_setting,
)

try:
    import kubernetes_validate
except ImportError:  # a dev dependency: fail loudly rather than skip validation
    kubernetes_validate = None

WORKLOAD_KINDS = ("Deployment", "Job", "StatefulSet", "DaemonSet")


def _validate(obj: dict) -> None:
    assert kubernetes_validate is not None, "kubernetes-validate is not installed: add it to the `dev` extra"
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def _workloads(objects: list[dict]) -> list[dict]:
    return [o for o in objects if o["kind"] in WORKLOAD_KINDS]


def _all_containers(pod: dict) -> list[dict]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def _port_named(c: dict, name: str) -> int:
    for p in c.get("ports", []):
        if p.get("name") == name:
            return p["containerPort"]
    raise LookupError(f"container {c['name']} has no port named {name!r}")


def _selects(selector: dict, labels: dict) -> bool:
    assert set(selector) <= {"matchLabels"}, f"only matchLabels selectors are checked here: {selector}"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


# ------------------------------------------------------------------ schemas


@pytest.mark.parametrize("target", ["cpu", "gpu", "job"])
def test_every_rendered_object_is_schema_valid(rendered, target: str) -> None:
    objects = rendered[target]
    assert objects, f"{target} rendered nothing"
    assert kubernetes_validate is not None, "kubernetes-validate is not installed: add it to the `dev` extra"
    for obj in objects:
        try:
            _validate(obj)
        except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as exc:
            pytest.fail(
                f"{target}: {obj['kind']}/{obj['metadata']['name']} is invalid for Kubernetes "
                f"{K8S_VERSION}: {getattr(exc, 'message', exc)}"
            )


def test_validation_is_strict_about_unknown_fields(cpu) -> None:
    dep = copy.deepcopy(find(cpu, "Deployment", "gan-server"))
    _validate(dep)
    container(dep, "gan-server")["imagePulPolicy"] = "Always"  # a typo strict mode must reject
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(dep)


def test_server_renders_have_the_expected_objects(cpu, gpu) -> None:
    for objects in (cpu, gpu):
        kinds = sorted(o["kind"] for o in objects)
        assert kinds == sorted(
            ["ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"]
        ), kinds


# ------------------------------------------------------- probes and ports


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_probes_check_grpc_health_on_the_served_port(rendered, variant: str) -> None:
    from gan_server.server import SERVICE_NAME

    objects = rendered[variant]
    c = container(find(objects, "Deployment", "gan-server"), "gan-server")
    grpc_port = _port_named(c, "grpc")
    inv = server_invocation(objects)
    assert server_setting(inv, "--port") == str(grpc_port), "the server must listen on the port named grpc"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert probe in c, f"{variant}: no {probe}"
        assert set(c[probe]) & {"grpc", "httpGet", "tcpSocket", "exec"} == {"grpc"}, f"{probe} is not a gRPC probe"
        assert c[probe]["grpc"]["port"] == grpc_port, f"{probe} checks port {c[probe]['grpc']['port']}"
    # Readiness asks for the Generator service, which turns SERVING with the models.
    assert c["readinessProbe"]["grpc"].get("service") == SERVICE_NAME
    assert c["livenessProbe"]["grpc"].get("service", "") in ("", SERVICE_NAME)


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_service_exposes_grpc_http_and_metrics_ports_of_the_pods(rendered, variant: str) -> None:
    objects = rendered[variant]
    dep = find(objects, "Deployment", "gan-server")
    c = container(dep, "gan-server")
    svc = find(objects, "Service", "gan-server")
    assert _selects({"matchLabels": svc["spec"]["selector"]}, dep["spec"]["template"]["metadata"]["labels"])
    ports = {p["name"]: p for p in svc["spec"]["ports"]}
    assert ports["grpc"]["appProtocol"] == "grpc"
    assert ports["grpc"]["port"] == 50051
    assert ports["http"]["appProtocol"] == "http"
    for name in ("grpc", "http", "metrics"):
        target = ports[name]["targetPort"]
        assert target == name or target == _port_named(c, name)
    inv = server_invocation(objects)
    assert server_setting(inv, "--metrics-port") == str(_port_named(c, "metrics"))
    assert server_setting(inv, "--http-port") == str(_port_named(c, "http")), (
        "the server must serve HTTP on the port named http"
    )


# ---------------------------------------------------------------- security


@pytest.mark.parametrize("target", ["cpu", "gpu", "job"])
def test_no_container_can_run_as_root(rendered, target: str) -> None:
    workloads = _workloads(rendered[target])
    assert workloads
    image_uid = int(_dockerfile_uid())
    for w in workloads:
        pod = pod_spec(w)
        assert pod.get("automountServiceAccountToken") is False
        for c in _all_containers(pod):
            sc = effective_security(pod, c)
            where = f"{target}: {w['kind']}/{w['metadata']['name']} container {c['name']}"
            assert sc["runAsNonRoot"] is True, where
            assert sc["runAsUser"] not in (None, 0), f"{where}: runAsUser must be set and not 0"
            assert sc["runAsUser"] == image_uid, f"{where}: runAsUser differs from the image's USER"
            assert sc["runAsGroup"] not in (None, 0), where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("privileged") in (None, False), where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not sc.get("capabilities", {}).get("add"), where
            assert (sc["seccompProfile"] or {}).get("type") == "RuntimeDefault", where
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{where}: a read-only root needs a writable /tmp volume"


def _dockerfile_uid() -> str:
    uids = {dockerfile_user(p).split(":")[0] for p in (DOCKERFILE, DOCKERFILE_GPU)}
    assert len(uids) == 1, f"the images run as different users: {uids}"
    return uids.pop()


@pytest.mark.parametrize("target", ["cpu", "gpu", "job"])
def test_service_links_are_off(rendered, target: str, cpu) -> None:
    # Service links set <SERVICE>_PORT=tcp://IP:PORT for every Service of the
    # namespace; for the Service gan-server that is GAN_SERVER_PORT, which
    # gan-server reads as its --port setting.
    svc = find(cpu, "Service", "gan-server")
    link_prefix = svc["metadata"]["name"].upper().replace("-", "_") + "_"
    assert link_prefix == SERVER_ENV_PREFIX  # why this test exists
    for w in _workloads(rendered[target]):
        assert pod_spec(w).get("enableServiceLinks") is False, w["metadata"]["name"]


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_network_policy_admits_only_labelled_clients_and_prometheus(rendered, variant: str, job_objects) -> None:
    objects = rendered[variant]
    dep = find(objects, "Deployment", "gan-server")
    c = container(dep, "gan-server")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    netpol = find(objects, "NetworkPolicy", "gan-server")
    spec = netpol["spec"]
    assert _selects(spec["podSelector"], pod_labels), "the NetworkPolicy does not select the server pods"
    assert spec["policyTypes"] == ["Ingress"]
    rules = spec["ingress"]
    assert rules, "an empty ingress list would drop the gRPC clients too"
    for rule in rules:
        assert rule.get("from"), "a rule without `from` admits every source"
        assert rule.get("ports"), "a rule without `ports` opens every port"
        for port in rule["ports"]:
            if isinstance(port["port"], str):
                _port_named(c, port["port"])  # a named port must exist on the pod
    grpc_rule = next(r for r in rules if any(p["port"] in ("grpc", _port_named(c, "grpc")) for p in r["ports"]))
    # HTTP admits the same clients as gRPC: the same rule
    assert {p["port"] for p in grpc_rule["ports"]} in (
        {"grpc", "http"},
        {_port_named(c, "grpc"), _port_named(c, "http")},
    )
    (peer,) = grpc_rule["from"]
    assert set(peer) == {"podSelector"}, "gRPC is for labelled pods of this namespace only"
    assert peer["podSelector"]["matchLabels"] == {"gan-client-access": "true"}
    assert not _selects(peer["podSelector"], pod_labels), "server pods must not carry the client label"
    # The batch Job's pods are admitted.
    job = find(job_objects, "Job", "gan-batch-generate")
    assert _selects(peer["podSelector"], job["spec"]["template"]["metadata"]["labels"])
    metrics_rule = next(r for r in rules if r is not grpc_rule)
    assert [p["port"] for p in metrics_rule["ports"]] in (["metrics"], [_port_named(c, "metrics")])
    (scraper,) = metrics_rule["from"]
    assert scraper["namespaceSelector"]["matchLabels"], "the metrics rule must name the Prometheus namespace"
    assert scraper["podSelector"]["matchLabels"], "the metrics rule must name the Prometheus pods"


# -------------------------------------------------------------- the server


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_server_binds_all_interfaces(rendered, variant: str) -> None:
    inv = server_invocation(rendered[variant])
    assert inv.argv[0] == "gan-server"
    assert server_setting(inv, "--host") == "0.0.0.0"
    # Explicit in the manifest itself, not only inherited from the image.
    c = container(find(rendered[variant], "Deployment", "gan-server"), "gan-server")
    assert flag_values(c.get("command", []) + c.get("args", []), "--host")[-1:] == ["0.0.0.0"]
    assert server_setting(inv, "--models") == "/models"


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_termination_grace_exceeds_prestop_plus_drain(rendered, variant: str) -> None:
    objects = rendered[variant]
    dep = find(objects, "Deployment", "gan-server")
    c = container(dep, "gan-server")
    inv = server_invocation(objects)
    grace = server_setting(inv, "--grace")
    drain = float(grace) if grace is not None else float(server_option_envvars()["GAN_SERVER_GRACE"].default)
    prestop = prestop_seconds(c)
    assert prestop > 0, "a preStop delay lets endpoint removal propagate before the server drains"
    period = pod_spec(dep).get("terminationGracePeriodSeconds", 30)
    assert period > prestop + drain, f"terminationGracePeriodSeconds {period} <= preStop {prestop} + grace {drain}"


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_configmap_settings_are_real_server_flags(rendered, variant: str) -> None:
    objects = rendered[variant]
    c = container(find(objects, "Deployment", "gan-server"), "gan-server")
    refs = [src["configMapRef"]["name"] for src in c.get("envFrom", []) if "configMapRef" in src]
    assert refs, "server settings must come from a ConfigMap (envFrom)"
    env = container_env(c, objects)
    known = server_option_envvars()
    settings = {k: v for k, v in env.items() if k.startswith(SERVER_ENV_PREFIX)}
    assert settings
    unknown = sorted(set(settings) - set(known))
    assert not unknown, f"not gan-server settings (typos?): {unknown}; known: {sorted(known)}"
    # Each value parses as its option's type, as click does at start-up
    # (raises click.BadParameter otherwise).
    ctx = click.Context(main)
    for key, value in settings.items():
        known[key].type_cast_value(ctx, value)
    # Ports and paths the probes and Service depend on stay in args.
    fixed_settings = (
        "GAN_SERVER_HOST",
        "GAN_SERVER_PORT",
        "GAN_SERVER_HTTP_PORT",
        "GAN_SERVER_METRICS_PORT",
        "GAN_SERVER_MODELS",
    )
    for fixed in fixed_settings:
        assert fixed not in settings, f"{fixed} belongs in the container args"


def test_deployment_leaves_replicas_to_the_autoscaler(cpu) -> None:
    dep = find(cpu, "Deployment", "gan-server")
    assert "replicas" not in dep["spec"], "kubectl apply would reset the HPA's replica count"
    hpa = find(cpu, "HorizontalPodAutoscaler", "gan-server")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gan-server"}
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    requests = container(dep, "gan-server")["resources"]["requests"]
    assert "cpu" in requests, "CPU utilisation is relative to the CPU request"
    pdb = find(cpu, "PodDisruptionBudget", "gan-server")
    assert _selects(pdb["spec"]["selector"], dep["spec"]["template"]["metadata"]["labels"])
    assert hpa["spec"]["minReplicas"] > pdb["spec"].get("maxUnavailable", 0), "a drain could take every pod"


# ------------------------------------------------------------- cpu vs gpu


def _gpu_settings(dep: dict) -> dict[str, Any]:
    pod = pod_spec(dep)
    c = container(dep, "gan-server")
    res = c.get("resources", {})
    return {
        "limits": res.get("limits", {}).get("nvidia.com/gpu"),
        "requests": res.get("requests", {}).get("nvidia.com/gpu"),
        "tolerations": [t for t in pod.get("tolerations", []) if "nvidia" in t.get("key", "")],
        "nodeSelector": {k: v for k, v in pod.get("nodeSelector", {}).items() if "nvidia" in k},
    }


def test_gpu_overlay_asks_for_a_gpu_and_runs_cuda(gpu) -> None:
    dep = find(gpu, "Deployment", "gan-server")
    s = _gpu_settings(dep)
    assert str(s["limits"]) == "1", "nvidia.com/gpu must be in limits"
    assert s["requests"] in (None, s["limits"]), "an extended resource's request must equal its limit"
    assert any(t["key"] == "nvidia.com/gpu" and t["effect"] == "NoSchedule" for t in s["tolerations"])
    assert s["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert server_setting(server_invocation(gpu, DOCKERFILE_GPU), "--device") == "cuda"
    assert container(dep, "gan-server")["image"].endswith("-gpu")


def test_cpu_overlay_has_no_gpu_settings(cpu) -> None:
    dep = find(cpu, "Deployment", "gan-server")
    s = _gpu_settings(dep)
    assert s == {"limits": None, "requests": None, "tolerations": [], "nodeSelector": {}}, s
    assert "nvidia" not in str(dep).lower()
    assert server_setting(server_invocation(cpu), "--device") == "cpu"
    assert container(dep, "gan-server")["image"].endswith("-cpu")


def test_overlays_differ_only_where_intended(cpu, gpu) -> None:
    """The GPU overlay changes the device, image, scheduling and sizing; not
    ports, probes' targets, security or the drain arithmetic."""
    a, b = (container(find(o, "Deployment", "gan-server"), "gan-server") for o in (cpu, gpu))
    for key in ("args", "ports", "securityContext", "lifecycle", "readinessProbe", "livenessProbe", "volumeMounts"):
        assert a[key] == b[key], key
    assert {k: v for k, v in a["startupProbe"].items() if k != "failureThreshold"} == {
        k: v for k, v in b["startupProbe"].items() if k != "failureThreshold"
    }


# --------------------------------------------------------------- batch Job


def test_batch_job_is_indexed_and_shard_count_matches_completions(job_objects, cpu) -> None:
    job = find(job_objects, "Job", "gan-batch-generate")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec.get("backoffLimitPerIndex", 0) >= 1
    assert "backoffLimit" not in spec, "backoffLimit counts failures of all shards together"
    assert 0 <= spec["maxFailedIndexes"] <= spec["completions"]
    assert 1 <= spec["parallelism"] <= spec["completions"]
    inv = job_invocation(job, job_objects)
    assert inv.env["GAN_SHARD_COUNT"] == str(spec["completions"])
    assert "JOB_COMPLETION_INDEX" not in inv.env, "Kubernetes sets the index; a literal would pin every shard"
    assert "--shard-index" not in inv.argv and "--shard-count" not in inv.argv, (
        "the shard comes from the environment, so completions is the single source"
    )
    assert pod_spec(job)["restartPolicy"] == "Never"  # required by podFailurePolicy / per-index backoff


def test_batch_job_runs_gan_client_batch_against_the_service(job_objects, cpu) -> None:
    job = find(job_objects, "Job", "gan-batch-generate")
    inv = job_invocation(job, job_objects)
    assert inv.argv[:2] == ["gan-client", "batch"], inv.argv
    for flag in ("--model", "--total", "--seed", "--out"):
        assert flag_values(inv.argv, flag), f"{flag} missing"
    svc = find(cpu, "Service", "gan-server")
    grpc_port = next(p["port"] for p in svc["spec"]["ports"] if p["name"] == "grpc")
    assert inv.env["GAN_SERVER"] == f"{svc['metadata']['name']}:{grpc_port}"
    total = int(flag_values(inv.argv, "--total")[-1])
    assert total >= job["spec"]["completions"], "more shards than images"


def test_batch_job_writes_to_its_pvc(job_objects) -> None:
    job = find(job_objects, "Job", "gan-batch-generate")
    pvc = find(job_objects, "PersistentVolumeClaim")
    volumes = {v["name"]: v for v in pod_spec(job)["volumes"]}
    claimed = [
        n for n, v in volumes.items() if v.get("persistentVolumeClaim", {}).get("claimName") == pvc["metadata"]["name"]
    ]
    assert len(claimed) == 1
    mount = next(m for m in container(job, "gan-client")["volumeMounts"] if m["name"] == claimed[0])
    assert not mount.get("readOnly")
    out = flag_values(job_invocation(job, job_objects).argv, "--out")[-1]
    assert out.startswith(mount["mountPath"].rstrip("/") + "/"), f"--out {out} is not on the PVC"
    assert "ReadWriteMany" in pvc["spec"]["accessModes"], "parallel shards may run on different nodes"


def test_batch_job_fails_a_shard_fast_only_on_unretryable_exit_codes(job_objects) -> None:
    job = find(job_objects, "Job", "gan-batch-generate")
    rules = job["spec"]["podFailurePolicy"]["rules"]
    codes = [r for r in rules if "onExitCodes" in r]
    for r in codes:
        assert r["action"] == "FailIndex"
        assert r["onExitCodes"]["containerName"] == "gan-client"
        assert r["onExitCodes"]["operator"] == "In"
        # 3 = server unavailable, 1 = unexpected: worth a retry.
        assert not {1, 3} & set(r["onExitCodes"]["values"])
    assert any(r["action"] == "Ignore" and r["onPodConditions"][0]["type"] == "DisruptionTarget" for r in rules)
