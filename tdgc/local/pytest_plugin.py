"""tdgc's simulator as a pytest plugin, shared by tdgc's tests and by the tests of what is built on it (the
Airflow DAG):

    pytest_plugins = ("tdgc.local.pytest_plugin",)

Every test then runs in an AWS environment that cannot reach real AWS (autouse), and may ask for `sim`: a
Simulator answering what AWS leaves undocumented as the `behaviour` fixture says (the hardest combination,
unless the test is parametrised indirectly over `Behaviour.pairwise()`), which checks on the way out that every
answer it gave fits botocore's output model.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tdgc.local.simulator import Behaviour, Simulator, without_real_aws


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test may find real credentials or config, or reach the instance metadata service."""
    for name, value in without_real_aws(tmp_path_factory.mktemp("awsconfig")).items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


@pytest.fixture
def behaviour(request: pytest.FixtureRequest) -> Behaviour:
    """How the simulator answers where AWS documents no answer: the hardest combination, unless the test is
    parametrised over `Behaviour.pairwise()`."""
    chosen: Behaviour = getattr(request, "param", Behaviour())
    return chosen


@pytest.fixture
def sim(behaviour: Behaviour) -> Iterator[Simulator]:
    with Simulator(behaviour=behaviour) as simulator:
        yield simulator
    assert simulator.shape_errors == [], "every answer fits botocore's output model"
