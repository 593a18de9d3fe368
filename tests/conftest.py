"""Shared fixtures: a real embedded broker per test session, and settings with topics unique to each test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from ops.broker import EmbeddedBroker
from streams.settings import BrokerURL, Settings

# Property tests draw their examples from a fixed seed, so a run is repeatable (set HYPOTHESIS_PROFILE=explore
# to draw fresh ones while hunting bugs).
hypothesis_settings.register_profile("repeatable", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

SHARED_DATA = Path(os.environ.get("VALUEDRIFT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_path=log) as b:
        yield b


@pytest.fixture
def settings(broker: EmbeddedBroker, tmp_path: Path) -> Settings:
    """Worker settings on the test broker; topic names and consumer group are unique to the test.

    The keyword classifier makes exact expected counts easy to state; tests of the learned ONNX classifier
    set ``classifier="default"``.
    """
    tag = uuid.uuid4().hex[:8]
    return Settings(
        broker=BrokerURL.parse(broker.url), app_id=f"vd-test-{tag}", topic_prefix=f"t{tag}.", partitions=2,
        window_seconds=60.0, lateness_seconds=0.0, idle_close_seconds=2.0, datadir=tmp_path / "worker",
        session_timeout_seconds=4.0, batch_size=32, log_level="INFO", classifier="rules",
    )
