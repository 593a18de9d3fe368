"""No Docker engine runs here, so the deployment files are checked for their wiring: images and build files,
ports published on 127.0.0.1 only, environment names that the settings module knows, commands that exist,
and dashboard queries that name metrics the worker exports."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner
from valuedrift.ops.cli import app
from valuedrift.streams.settings import Settings
from valuedrift.streams.worker.metrics import WorkerMetrics

DOCKER = Path(__file__).resolve().parents[1] / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
OTHER_ENV = {"VALUEDRIFT_WEBHOOK_SECRET", "VALUEDRIFT_SECURITY_PROTOCOL", "VALUEDRIFT_SASL_MECHANISM",
             "VALUEDRIFT_SASL_USERNAME", "VALUEDRIFT_SASL_PASSWORD", "VALUEDRIFT_SASL_PASSWORD_FILE",
             "VALUEDRIFT_SSL_CAFILE", "VALUEDRIFT_SSL_CERTFILE", "VALUEDRIFT_SSL_KEYFILE", "VALUEDRIFT_CACHE",
             "VALUEDRIFT_MODEL_DIR", "VALUEDRIFT_SHARED_DATA", "VALUEDRIFT_THREADS"}


def test_compose_has_kafka_in_kraft_mode_the_worker_the_gpu_sampler_prometheus_and_grafana():
    assert {"kafka", "worker", "sampler", "prometheus", "grafana"} <= set(SERVICES)
    kafka = SERVICES["kafka"]["environment"]
    assert "controller" in kafka["KAFKA_PROCESS_ROLES"] and "ZOOKEEPER" not in json.dumps(kafka).upper()
    assert SERVICES["sampler"]["profiles"] == ["gpu"]
    assert SERVICES["sampler"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    for name in ("worker", "sampler", "topics"):
        build = SERVICES[name]["build"]
        assert (DOCKER.parent / build["dockerfile"]).is_file()


def test_every_published_port_binds_loopback():
    published = [p for s in SERVICES.values() for p in s.get("ports", [])]
    assert published and all(str(p).startswith("127.0.0.1:") for p in published)


def test_environment_names_match_the_settings_module():
    fields = {"VALUEDRIFT_" + f.name.upper() for f in dataclasses.fields(Settings)}
    text = (DOCKER / "compose.yaml").read_text()
    names = set(re.findall(r"VALUEDRIFT_[A-Z_]+", text))
    assert names and names <= fields | OTHER_ENV, names - fields - OTHER_ENV
    for service in ("worker", "topics"):
        env = SERVICES[service]["environment"]
        Settings.from_env({k: str(v) for k, v in env.items()})  # the values parse, too


@pytest.mark.parametrize("service", ["worker", "topics", "sampler"])
def test_service_commands_exist(service):
    cmd = SERVICES[service]["command"]
    r = CliRunner().invoke(app, [*[c for c in cmd if not c.startswith("--") and "/" not in c and c != "hf"],
                                 "--help"])
    assert r.exit_code == 0, r.output


def test_prometheus_scrapes_the_worker_metrics_port_and_grafana_queries_exported_metrics():
    prom = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    target = prom["scrape_configs"][0]["dns_sd_configs"][0]
    assert target["names"] == ["worker"]
    assert str(target["port"]) == SERVICES["worker"]["environment"]["VALUEDRIFT_METRICS_PORT"]
    m = WorkerMetrics()
    m.entropy("k", 1.0)
    m.shares("k", {"g1": 3, "g2": 1})
    m.drift_moves.labels(category="g2", direction="toward harmful compliance").inc()
    m.lag.labels(partition="0").set(0)
    m.alerts.labels(rule="drift", severity="warning").inc()
    m.dead_letters.labels(stage="classify").inc()
    m.sink_failures.labels(sink="stdout", why="failed").inc()
    exported = set(re.findall(r"^(valuedrift_[a-z_]+)", m.exposition().decode(), re.M))
    dash = json.loads((DOCKER / "grafana" / "dashboards" / "valuedrift.json").read_text())
    queried = {n for p in dash["panels"] for t in p["targets"] for n in re.findall(r"valuedrift_[a-z_]+", t["expr"])}
    assert queried and queried <= exported, queried - exported
    ds = yaml.safe_load((DOCKER / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    assert {p["datasource"]["uid"] for p in dash["panels"]} == {ds["datasources"][0]["uid"]}


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.gpu"])
def test_dockerfiles_copy_existing_folders_and_run_valuedrift_as_a_user(name):
    text = (DOCKER / name).read_text()
    for src in re.findall(r"^COPY (\S+)", text, re.M):
        for part in src.split():
            assert (DOCKER.parent / part).exists(), part
    assert 'ENTRYPOINT ["valuedrift"]' in text and re.search(r"^USER \w+", text, re.M)
    assert "build-default" in text  # the default model is built into the image: no network at run time
    if name.endswith("gpu"):
        assert "onnxruntime-gpu" in text and "uninstall -y onnxruntime" in text
