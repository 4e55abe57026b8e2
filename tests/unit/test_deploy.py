"""deploy/ checked statically, without building an image or reaching a cluster: the files parse;
the Dockerfile is multi-stage, non-root, health-checked and installs from constraints.txt; the
Kubernetes probes call the gRPC health service on the gRPC port; ports, grace periods and volumes
agree with the settings; every EFFORT_* variable set anywhere in deploy/ is a setting of
service/settings.py, with a value it accepts."""

import importlib.util
import json
import os
import re
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

import pytest
import yaml

from features.catalog import MODEL_FEATURES
from features.domain import COMPLAINT_UNACKNOWLEDGED
from service.exposure import ensure_safe_exposure
from service.routing import RoutingPolicy
from service.server import CLOSING_SECONDS, GRACE_SECONDS, SERVICE_NAMES
from service.settings import Settings
from service.tokens import read_tokens

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
HEALTHCHECK = DEPLOY / "healthcheck.py"

# EFFORT_* variables that are not settings but are read elsewhere (the CLI's EFFORT_TOKEN,
# EFFORT_DEBUG): allowed when set in deploy/, though none is today.
NON_SETTING_VARIABLES = frozenset({"EFFORT_TOKEN", "EFFORT_DEBUG"})
HEALTH_SERVICES = frozenset({"", *SERVICE_NAMES})
MEASURED_RSS_BYTES = 346 * 10**6  # README, Latest figures: resident memory per server process

Manifest = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# Reading the files


def yaml_documents(path: Path) -> list[Manifest]:
    """The non-empty YAML documents of a file (compose's anchors and merge keys resolved)."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def k8s_objects() -> list[Manifest]:
    return [doc for path in sorted(K8S.glob("*.yaml")) if path.name != "kustomization.yaml"
            for doc in yaml_documents(path)]


def k8s_object(kind: str, name: str) -> Manifest:
    found = [o for o in k8s_objects() if o["kind"] == kind and o["metadata"].get("name") == name]
    assert len(found) == 1, f"expected one {kind} {name} in deploy/k8s, found {len(found)}"
    return found[0]


def deployment() -> Manifest:
    return k8s_object("Deployment", "effort")


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def effort_container() -> Manifest:
    containers = pod_spec(deployment())["containers"]
    assert [c["name"] for c in containers] == ["effort"]
    container: Manifest = containers[0]
    return container


def container_env(container: Manifest) -> dict[str, str | None]:
    """Variables a container gets: env (None when from a Secret or field) and the keys of the
    ConfigMaps it takes through envFrom."""
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            config_map = k8s_object("ConfigMap", source["configMapRef"]["name"])
            env.update({source.get("prefix", "") + k: v for k, v in config_map["data"].items()})
        else:
            secret = k8s_object("Secret", source["secretRef"]["name"])
            env.update({source.get("prefix", "") + k: None for k in secret["stringData"]})
    for item in container.get("env", []):
        env[item["name"]] = item.get("value") if "valueFrom" not in item else None
    return env


def workloads() -> Iterator[Manifest]:
    """Objects with a pod template: the Deployment and the example training Job."""
    yield from (o for o in k8s_objects() if "template" in o.get("spec", {}))


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += " " + stripped.removesuffix("\\").strip()
        if stripped.endswith("\\"):
            continue
        keyword, _, arguments = pending.strip().partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends in a continuation line"
    return instructions


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The instructions of each stage, from its FROM on (ARGs before the first FROM dropped)."""
    stages: list[list[tuple[str, str]]] = []
    for instruction in dockerfile_instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def dockerfile_env() -> dict[str, str]:
    """ENV key=value pairs of the runtime (last) stage."""
    env: dict[str, str] = {}
    for keyword, arguments in dockerfile_stages()[-1]:
        if keyword == "ENV":
            for word in shlex.split(arguments):
                name, _, value = word.partition("=")
                env[name] = value
    return env


def exec_form(arguments: str) -> list[str]:
    """A JSON-array instruction argument (CMD, ENTRYPOINT, HEALTHCHECK's CMD)."""
    words = json.loads(arguments)
    assert isinstance(words, list) and all(isinstance(w, str) for w in words), arguments
    return words


def compose() -> Manifest:
    documents = yaml_documents(COMPOSE)
    assert len(documents) == 1
    return documents[0]


def compose_env(service: Manifest) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    return {name: str(value) for name, value in environment.items()}


def load_healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_healthcheck", HEALTHCHECK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def setting_variables() -> set[str]:
    return {f"EFFORT_{name.upper()}" for name in Settings.model_fields}


def default(name: str) -> Any:
    return Settings.model_fields[name].default


def settings_from(env: Mapping[str, str | None], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as a process with these EFFORT_* variables would read them (values from Secrets,
    None here, left out)."""
    with monkeypatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("EFFORT_")]:
            patch.delenv(name)
        for name, value in env.items():
            if name.startswith("EFFORT_") and value is not None:
                patch.setenv(name, value)
        return Settings(_env_file=None)


def seconds(duration: str) -> float:
    """A compose duration such as 30s, 1m30s or 1500ms."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(number) * units[unit] for number, unit in parts)


def quantity_bytes(quantity: str) -> float:
    """A Kubernetes memory quantity (512Mi, 1Gi, 500M) in bytes."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?", quantity)
    assert match, quantity
    factor = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3,
              "M": 10**6, "G": 10**9, "T": 10**12}[match.group(2)]
    return float(match.group(1)) * factor


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def probe_exec_args(probe: Manifest) -> Any:
    """The healthcheck.py arguments of an exec probe, parsed by its own parser."""
    command = probe["exec"]["command"]
    assert command[:2] == ["python", "/app/healthcheck.py"], command
    return load_healthcheck().build_parser().parse_args(command[2:])


# ---------------------------------------------------------------------------------------------
# Parsing


def test_every_yaml_file_of_deploy_parses() -> None:
    paths = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
    assert {DEPLOY / "compose.yaml", DEPLOY / "prometheus.yml", K8S / "deployment.yaml"} <= set(paths)
    for path in paths:
        documents = yaml_documents(path)
        assert documents, f"{path} holds no YAML document"
        assert all(isinstance(doc, dict) for doc in documents), path


def test_kubernetes_objects_are_well_formed_and_namespace_less() -> None:
    objects = k8s_objects()
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Secret",
            "ConfigMap", "PersistentVolumeClaim", "NetworkPolicy", "Job"} <= kinds
    for o in objects:
        assert {"apiVersion", "kind", "metadata"} <= set(o), o
        assert "name" in o["metadata"] or "generateName" in o["metadata"], o["metadata"]
        assert "namespace" not in o["metadata"], f"{o['kind']} sets a namespace"


def test_kustomization_applies_every_manifest_but_the_examples() -> None:
    kustomization = yaml_documents(K8S / "kustomization.yaml")[0]
    listed = set(kustomization["resources"])
    expected = {p.name for p in K8S.glob("*.yaml")
                if p.name != "kustomization.yaml" and not p.name.endswith(".example.yaml")}
    assert listed == expected
    assert not any(o["kind"] == "Secret" for name in listed for o in yaml_documents(K8S / name))


# ---------------------------------------------------------------------------------------------
# The image


def test_dockerfile_is_multi_stage_and_runs_as_a_user_with_a_health_check() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "the Dockerfile should have a builder and a runtime stage"
    builder_name = stages[0][0][1].split()[-1]
    assert stages[0][0][1].split()[-2].upper() == "AS"
    runtime = stages[-1]
    assert any(k == "COPY" and f"--from={builder_name}" in a for k, a in runtime), \
        "the runtime stage should copy what the builder installed"
    users = [a for k, a in runtime if k == "USER"]
    assert users, "the runtime stage runs as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert user.isdigit(), "a numeric USER lets Kubernetes' runAsNonRoot verify it"
    assert int(user) == pod_spec(deployment())["securityContext"]["runAsUser"]
    healthchecks = [a for k, a in runtime if k == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    command = exec_form(healthchecks[0].split(" CMD ", 1)[1])
    assert command[:2] == ["python", "/app/healthcheck.py"]
    assert any(k == "COPY" and a.split() == ["deploy/healthcheck.py", "/app/healthcheck.py"]
               for k, a in runtime)
    assert exec_form(next(a for k, a in reversed(runtime) if k == "CMD")) == ["effort", "serve"]
    exposed = {int(p.split("/")[0]) for k, a in runtime if k == "EXPOSE" for p in a.split()}
    assert exposed == {default("grpc_port"), default("metrics_port")}


def test_the_image_installs_from_constraints_without_dev_extras() -> None:
    installs = [command for keyword, arguments in dockerfile_stages()[0] if keyword == "RUN"
                for command in re.split(r"&&|;", arguments) if "pip install" in command]
    assert installs
    for command in installs:
        if "--upgrade pip" in command:
            continue
        assert "-c constraints.txt" in command, f"not constrained: {command}"
        assert "[dev]" not in command and " -e " not in command, command
    assert any(re.search(r"pip install .*-c constraints\.txt \.$", c.strip()) for c in installs), \
        "the project itself is installed non-editable"


def test_the_image_gets_every_folder_the_package_is_built_from() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    package_dir = project["tool"]["setuptools"]["package-dir"]
    roots = set()
    for package in project["tool"]["setuptools"]["packages"]:
        top = package.split(".")[0]
        roots.add(PurePosixPath(package_dir.get(top, top)).parts[0])
    copied = {PurePosixPath(source).parts[0]
              for keyword, arguments in dockerfile_stages()[0] if keyword == "COPY"
              for source in arguments.split()[:-1] if not source.startswith("--")}
    assert roots | {"pyproject.toml", project["project"]["readme"], "constraints.txt"} <= copied
    # .dockerignore is an allow-list: each copied path is let back in.
    allowed = {line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.startswith("!")}
    copied_everywhere = {source.rstrip("/")
                         for stage in dockerfile_stages() for keyword, arguments in stage
                         if keyword == "COPY" and "--from=" not in arguments
                         for source in arguments.split()[:-1]}
    assert copied_everywhere <= allowed
    assert all((REPO / source).exists() for source in copied_everywhere)


# ---------------------------------------------------------------------------------------------
# Probes, ports, grace periods


def test_probes_call_the_health_service_on_the_grpc_port() -> None:
    container = effort_container()
    env = container_env(container)
    grpc_port = int(env.get("EFFORT_GRPC_PORT") or default("grpc_port"))
    tls = env.get("EFFORT_TLS_CERT_FILE") is not None
    healthcheck = load_healthcheck()
    assert healthcheck.health_pb2_grpc.HealthStub.__module__ == "grpc_health.v1.health_pb2_grpc"
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container.get(kind)
        if probe is None and kind == "startupProbe":
            continue
        assert probe is not None, f"no {kind}"
        if "grpc" in probe:  # kubelet's own gRPC probe: plaintext only
            assert not tls, f"{kind}: kubelet's gRPC probes cannot speak TLS"
            assert probe["grpc"]["port"] == grpc_port
            assert probe["grpc"].get("service", "") in HEALTH_SERVICES
            continue
        args = probe_exec_args(probe)
        assert port_of(args.address) == grpc_port, f"{kind} dials {args.address}"
        assert args.service in HEALTH_SERVICES, f"{kind} asks about {args.service!r}"
        assert args.timeout < probe["timeoutSeconds"], f"{kind}: the check outlives the probe"
        if tls:
            assert args.ca is not None, f"{kind} should trust the server's CA"
            tls_volume = mount_volume_of(container, str(env["EFFORT_TLS_CERT_FILE"]))
            assert mount_volume_of(container, str(args.ca)) == tls_volume
            secret = volume(tls_volume)["secret"]["secretName"]
            assert args.ca.name in k8s_object("Secret", secret)["stringData"]


def test_container_ports_match_the_settings() -> None:
    container = effort_container()
    env = container_env(container)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["grpc"] == int(env.get("EFFORT_GRPC_PORT") or default("grpc_port"))
    assert ports["metrics"] == int(env.get("EFFORT_METRICS_PORT") or default("metrics_port"))
    template = deployment()["spec"]["template"]["metadata"]
    assert int(template["annotations"]["prometheus.io/port"]) == ports["metrics"]
    for service in (o for o in k8s_objects() if o["kind"] == "Service"):
        assert service["spec"]["selector"].items() <= template["labels"].items()
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, port
            assert port["port"] == ports[port["targetPort"]]
    effort = compose()["services"]["effort"]
    lab = compose_env(effort)
    published = {int(p.rsplit(":", 1)[1]) for p in effort["ports"]}
    compose_grpc = int(lab.get("EFFORT_GRPC_PORT") or default("grpc_port"))
    compose_metrics = int(lab.get("EFFORT_METRICS_PORT") or default("metrics_port"))
    assert published == {compose_grpc, compose_metrics}
    assert all(p.startswith("127.0.0.1:") for p in effort["ports"]), "a lab publishes on loopback"
    prometheus = yaml_documents(DEPLOY / "prometheus.yml")[0]
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "effort")
    targets = [t for config in job["static_configs"] for t in config["targets"]]
    assert targets == [f"effort:{compose_metrics}"]


def test_termination_grace_covers_pre_stop_drain_and_call_grace() -> None:
    spec = pod_spec(deployment())
    container = effort_container()
    pre_stop = container["lifecycle"]["preStop"]
    if "sleep" in pre_stop:
        sleep = float(pre_stop["sleep"]["seconds"])
    else:
        command = pre_stop["exec"]["command"]
        assert command[0] == "sleep" and len(command) == 2, command
        sleep = float(command[1])
    drain = float(container_env(container).get("EFFORT_DRAIN_SECONDS") or default("drain_seconds"))
    assert sleep == drain, "the preStop sleep should match the shutdown drain"
    assert spec["terminationGracePeriodSeconds"] > sleep + drain + CLOSING_SECONDS + GRACE_SECONDS
    effort = compose()["services"]["effort"]
    compose_drain = float(compose_env(effort).get("EFFORT_DRAIN_SECONDS") or default("drain_seconds"))
    assert seconds(effort["stop_grace_period"]) > compose_drain + CLOSING_SECONDS + GRACE_SECONDS


def test_resources_follow_the_measured_memory() -> None:
    resources = effort_container()["resources"]
    request = quantity_bytes(resources["requests"]["memory"])
    limit = quantity_bytes(resources["limits"]["memory"])
    assert MEASURED_RSS_BYTES < request <= limit
    assert limit >= 2 * MEASURED_RSS_BYTES, "room for the probes' processes and model swaps"
    assert "cpu" in resources["requests"]
    assert container_env(effort_container()).get("EFFORT_WORKERS", "1") == "1"


def test_autoscaler_and_disruption_budget_target_the_deployment() -> None:
    labels = deployment()["spec"]["template"]["metadata"]["labels"]
    assert "replicas" not in deployment()["spec"], "the autoscaler owns the replica count"
    hpa = k8s_object("HorizontalPodAutoscaler", "effort")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": "effort"}
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    pdb = k8s_object("PodDisruptionBudget", "effort")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert deployment()["spec"]["selector"]["matchLabels"].items() <= labels.items()


# ---------------------------------------------------------------------------------------------
# Settings


def test_every_effort_variable_set_in_deploy_is_a_setting() -> None:
    found: dict[str, set[str]] = {}
    for name in dockerfile_env():
        found.setdefault(name, set()).add("Dockerfile")
    for service_name, service in compose()["services"].items():
        for name in compose_env(service):
            found.setdefault(name, set()).add(f"compose.yaml: {service_name}")
    for workload in workloads():
        spec = pod_spec(workload)
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            for name in container_env(container):
                found.setdefault(name, set()).add(f"k8s: {workload['kind']} {container['name']}")
    for workload in workloads():
        # Service links would add EFFORT_PORT, EFFORT_SERVICE_HOST, ... for the Service `effort`.
        assert pod_spec(workload)["enableServiceLinks"] is False, workload["metadata"]
    effort_variables = {name for name in found if name.startswith("EFFORT_")}
    assert len(effort_variables) >= 10, "the collection found too little to be trusted"
    unknown = effort_variables - setting_variables() - NON_SETTING_VARIABLES
    assert not unknown, {name: sorted(found[name]) for name in unknown}


def test_the_values_set_are_accepted_and_kubernetes_is_secure(
        monkeypatch: pytest.MonkeyPatch) -> None:
    image = dockerfile_env()
    for workload in workloads():
        for container in pod_spec(workload)["containers"]:
            settings_from({**image, **container_env(container)}, monkeypatch)
    k8s_env = container_env(effort_container())
    assert (k8s_env.get("EFFORT_ALLOW_INSECURE") or "false").lower() in {"false", "0"}
    k8s = settings_from({**image, **k8s_env}, monkeypatch)
    assert k8s.grpc_host == "0.0.0.0"
    assert k8s.tls_cert_file and k8s.tls_key_file and k8s.auth_tokens_file
    ensure_safe_exposure(k8s)  # TLS and tokens, no opt-out
    assert k8s.online_store == "redis" and k8s_env["EFFORT_REDIS_URL"] is None, \
        "the Redis URL carries a password: it comes from a Secret"
    for service in compose()["services"].values():
        if compose_env(service):
            settings_from({**image, **compose_env(service)}, monkeypatch)
    lab = settings_from({**image, **compose_env(compose()["services"]["effort"])}, monkeypatch)
    assert lab.allow_insecure and lab.online_store == "redis"
    ensure_safe_exposure(lab)
    # The image alone keeps the secure default: 0.0.0.0 without TLS refuses to start.
    bare = settings_from(image, monkeypatch)
    assert bare.grpc_host == "0.0.0.0" and not bare.allow_insecure


# ---------------------------------------------------------------------------------------------
# Volumes, Secrets, the routing policy


def volume(name: str) -> Manifest:
    found: Manifest = next(v for v in pod_spec(deployment())["volumes"] if v["name"] == name)
    return found


def mount_volume_of(container: Manifest, path: str) -> str:
    """The volume mounted at the deepest mount path holding `path`."""
    holders = [m for m in container["volumeMounts"]
               if PurePosixPath(path).is_relative_to(PurePosixPath(m["mountPath"]))]
    assert holders, f"{path} is on no mounted volume"
    name: str = max(holders, key=lambda m: len(m["mountPath"]))["name"]
    return name


def test_files_the_settings_name_are_on_mounted_volumes() -> None:
    container = effort_container()
    env = container_env(container)
    names = {v["name"] for v in pod_spec(deployment())["volumes"]}
    assert {m["name"] for m in container["volumeMounts"]} <= names
    secrets = {o["metadata"]["name"]: o for o in k8s_objects() if o["kind"] == "Secret"}
    for variable in ("EFFORT_TLS_CERT_FILE", "EFFORT_TLS_KEY_FILE", "EFFORT_TLS_CLIENT_CA_FILE",
                     "EFFORT_AUTH_TOKENS_FILE", "EFFORT_AUTH_JWKS_FILE", "EFFORT_ROUTING_POLICY"):
        path = env.get(variable)
        if path is None:
            continue
        source = volume(mount_volume_of(container, path))
        key = PurePosixPath(path).name
        if "secret" in source:
            assert key in secrets[source["secret"]["secretName"]]["stringData"], variable
        else:
            assert key in k8s_object("ConfigMap", source["configMap"]["name"])["data"], variable
    for item in container["env"]:
        reference = item.get("valueFrom", {}).get("secretKeyRef")
        if reference:
            assert reference["key"] in secrets[reference["name"]]["stringData"], item["name"]
    models = next(m for m in container["volumeMounts"]
                  if m["name"] == mount_volume_of(container, str(env["EFFORT_MODELS_DIR"])))
    assert models["readOnly"] is True, "serving pods only read the model folders"
    claim = volume(models["name"])["persistentVolumeClaim"]["claimName"]
    assert "ReadWriteMany" in k8s_object("PersistentVolumeClaim", claim)["spec"]["accessModes"]
    repo = volume(mount_volume_of(container, str(env["EFFORT_FEATURE_REPO"])))
    assert "persistentVolumeClaim" in repo, "the Feast registry and history are shared"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    tmp = volume(mount_volume_of(container, "/tmp/numba-cache"))
    assert "emptyDir" in tmp, "numba's cache (NUMBA_CACHE_DIR) needs a writable /tmp"
    assert dockerfile_env()["NUMBA_CACHE_DIR"].startswith("/tmp/")


def test_the_example_token_file_is_valid_and_holds_no_token(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text(k8s_object("Secret", "effort-tokens")["stringData"]["tokens.json"])
    assert read_tokens(tokens) == []


def test_the_routing_policy_is_valid_and_names_model_inputs() -> None:
    config_map = k8s_object("ConfigMap", "effort-routing-policy")
    policy = RoutingPolicy.model_validate(json.loads(config_map["data"]["policy.json"]))
    assert policy.rules, "rules replace the default complaint rule: keep it listed"
    for rule in policy.rules:
        assert rule.feature in MODEL_FEATURES, f"{rule.code}: a rule on an unknown input never fires"
    assert any(r.feature == "complaint_state" and r.value == COMPLAINT_UNACKNOWLEDGED
               for r in policy.rules)


# ---------------------------------------------------------------------------------------------
# Compose and Prometheus


def test_compose_runs_effort_redis_prometheus_and_grafana() -> None:
    services = compose()["services"]
    assert {"effort", "redis", "prometheus", "grafana"} <= set(services)
    env = compose_env(services["effort"])
    assert env["EFFORT_ONLINE_STORE"] == "redis"
    assert env["EFFORT_REDIS_URL"].startswith("redis://redis:")
    assert "demo" in services and services["demo"]["profiles"] == ["demo"]
    assert compose_env(services["demo"])["EFFORT_MODELS_DIR"] == env["EFFORT_MODELS_DIR"]
    mounts: dict[str, str] = {}
    for service in services.values():
        for spec in service.get("volumes", []):
            source, target = spec.split(":")[:2]
            if source.startswith("."):
                path = (DEPLOY / source).resolve()
                assert path.exists(), f"compose mounts {source}, which does not exist"
                mounts[target] = source
    prometheus = yaml_documents(DEPLOY / "prometheus.yml")[0]
    assert prometheus["rule_files"], "Prometheus should load Effort's rules"
    for rule_file in prometheus["rule_files"]:
        assert rule_file in mounts, f"{rule_file} is not mounted into Prometheus"
        assert mounts[rule_file].startswith("../monitoring/prometheus/")
    assert mounts["/etc/prometheus/prometheus.yml"] == "./prometheus.yml"
    assert mounts["/etc/grafana/provisioning"] == "../monitoring/grafana/provisioning"
    assert mounts["/var/lib/grafana/dashboards"] == "../monitoring/grafana/dashboards"
