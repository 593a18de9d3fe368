"""Shared fixtures: a real embedded broker per test session, and settings with topics unique to each test."""

from __future__ import annotations

import importlib.abc
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from valuedrift.ops.broker import EmbeddedBroker
from valuedrift.streams.settings import BrokerURL, Settings

# Property tests draw their examples from a fixed seed, so a run is repeatable (set HYPOTHESIS_PROFILE=explore
# to draw fresh ones while hunting bugs).
hypothesis_settings.register_profile("repeatable", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))



class _SourceFolderImports(importlib.abc.MetaPathFinder):
    """Refuse ``import streams`` (and the other source folders): tests import ``valuedrift.*`` only.

    pytest puts the checkout's root on ``sys.path``, where the folders would import as a second copy of each
    module, with its own globals and classes; an import of a bare name is a bug in the test, so it fails loudly.
    """

    NAMES = frozenset({"streams", "classifier", "sampler", "ops"})

    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001, ANN201 - the finder protocol
        if fullname.split(".")[0] in self.NAMES:
            raise ImportError(f"import valuedrift.{fullname}, not {fullname}: the source folders are not packages")
        return None


sys.meta_path.insert(0, _SourceFolderImports())


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
        session_timeout_seconds=4.0, poll_batch_size=32, log_level="INFO", classifier="rules",
    )
