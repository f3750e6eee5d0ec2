"""detectors.state_check: a checkpoint is untrusted input, checked before anything is allocated.

Genuine states (plain, with late labels and concept drift, with a reference profile) pass
after the codec; each crafted record of issue 24 item 3 is rejected with a reason; and no
mutation of a genuine state gets past the check into ``Engine.restore`` with anything but a
clean ``ValueError``/``KeyError``/``TypeError`` (the sidecar catches those and rebuilds).
"""

from __future__ import annotations

import copy
import resource
from typing import Any

import numpy as np
import pytest

from driftsentinel.detectors.engine import Engine, Item
from driftsentinel.detectors.profile import build_profile
from driftsentinel.detectors.state_check import REASONS, StateRejected, check_engine_state
from driftsentinel.schemas import SidecarConfig
from driftsentinel.schemas.fastdecode import EventView
from driftsentinel.schemas.labels import LabelEvent
from driftsentinel.schemas.profile import ReferenceProfile
from driftsentinel.stream.checkpoint import Checkpoint

T = "features"


def _items(n: int = 3000, seed: int = 1, wide: int = 0) -> list[Item]:
    rng = np.random.default_rng(seed)
    extra = {f"w{k}": float(k) for k in range(wide)}
    return [
        (
            i,
            EventView(
                model="m" if i % 4 else "n",
                id=f"r{i}",
                prediction=float(i % 2),
                features={"x": float(rng.normal()), "y": float(rng.normal(5)), "c": "DE" if i % 3 else "FR", **extra},
            ),
            float(i),
        )
        for i in range(n)
    ]


def _state(
    config: SidecarConfig, profile: ReferenceProfile | None = None, labels: bool = False, wide: int = 0
) -> dict[str, Any]:
    """A genuine partition state after the checkpoint codec (what the sidecar reads back)."""
    engine = Engine(config, T, "labels" if labels else None, profile)
    engine.restore(T, 0, None)
    engine.process(T, 0, _items(wide=wide), 0.0)
    if labels:
        labelled = [(k, LabelEvent(id=f"r{k}", label=1.0), float(k)) for k in range(0, 3000, 2)]
        engine.process_labels("labels", 0, labelled, 0.0)
    blob = Checkpoint("g", T, 0, 3000, engine.state(T, 0), 5 if labels else None).encode()
    return dict(Checkpoint.decode(blob).engine)


def _profile() -> ReferenceProfile:
    rng = np.random.default_rng(3)
    return build_profile({"x": list(rng.normal(0, 1, 2000)), "c": ["DE", "FR"] * 1000}, "train")


@pytest.fixture(scope="module")
def genuine() -> dict[str, Any]:
    return _state(SidecarConfig())


def _rejected(state: Any, config: SidecarConfig | None = None) -> StateRejected:
    with pytest.raises(StateRejected) as info:
        check_engine_state(state, config or SidecarConfig())
    assert info.value.reason in REASONS
    return info.value


def test_genuine_states_pass_and_restore() -> None:
    for config, profile, labels in [
        (SidecarConfig(), None, False),
        (SidecarConfig(), None, True),
        (SidecarConfig(), _profile(), False),
    ]:
        state = _state(config, profile, labels)
        check_engine_state(state, config, profile)
        Engine(config, T, "labels" if labels else None, profile).restore(T, 0, state)


def test_banks_a_string_is_rejected(genuine: dict[str, Any]) -> None:
    exc = _rejected({**genuine, "banks": "m"})
    assert exc.reason == "shape" and "state.banks" in str(exc)


def test_a_bank_null_is_rejected(genuine: dict[str, Any]) -> None:
    exc = _rejected({**genuine, "banks": {**genuine["banks"], "m": None}})
    assert exc.reason == "shape" and "state.banks['m']" in str(exc)


def test_n_features_2e8_is_rejected_before_any_allocation(genuine: dict[str, Any]) -> None:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for det in ("adwin", "page_hinkley"):
        state = copy.deepcopy(genuine)
        state["banks"]["m"]["detectors"][det]["n_features"] = 200_000_000
        assert "n_features" in str(_rejected(state))
    state = copy.deepcopy(genuine)
    state["banks"]["m"]["live"]["current"]["n_features"] = 200_000_000
    _rejected(state)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 50 * 1024  # KiB: under 50 MB


def test_sizes_over_the_configured_bounds_are_rejected(genuine: dict[str, Any]) -> None:
    small = SidecarConfig.model_validate({"detectors": {"max_features": 4}})
    wide = _state(SidecarConfig(), wide=5)  # x, y, w0..w4 and @prediction: 8 > 4 + @prediction, @label
    assert _rejected(wide, small).reason == "size"
    state = copy.deepcopy(genuine)
    state["banks"]["m"]["detectors"]["adwin"]["max_buckets"][:] = 10**9  # sizes ADWIN's rings
    assert _rejected(state).reason == "size"
    state = copy.deepcopy(genuine)
    state["banks"]["m"]["live"]["previous"]["alpha"] = 1e-300  # sizes (and divides) the sketch
    assert _rejected(state).reason == "size"
    state = copy.deepcopy(genuine)
    state["banks"]["m"]["live"]["rows_in_current"] = -(10**9)  # the live window would never roll
    assert _rejected(state).reason == "size"
    many = {"detectors": {"max_models": 1}}
    assert _rejected(genuine, SidecarConfig.model_validate(many)).reason == "size"


def test_wrong_shapes_are_rejected(genuine: dict[str, Any]) -> None:
    cases = [
        lambda s: s.update(policy="x"),
        lambda s: s.update(policy=[["m", "x", "adwin", "nope"]]),
        lambda s: s["banks"]["m"].update(features="xy"),
        lambda s: s["banks"]["m"].update(features=["x", "x", "c"][: len(s["banks"]["m"]["features"])] + ["x"]),
        lambda s: s["banks"]["m"].update(ref_mean=np.zeros(99)),
        lambda s: s["banks"]["m"].update(reference=[]),
        lambda s: s["banks"]["m"].update(warm_values=np.zeros(7)),
        lambda s: s["banks"]["m"].update(recent=np.zeros((3, 99))),
        lambda s: s["banks"]["m"]["detectors"].pop("adwin"),
        lambda s: s["banks"]["m"]["detectors"]["page_hinkley"].update(mean="0"),
        lambda s: s["banks"]["m"]["active"].update(adwin=None),
    ]
    for mutate in cases:
        state = copy.deepcopy(genuine)
        mutate(state)
        assert _rejected(state).reason in ("shape", "size")


def test_no_mutation_gets_past_the_check_to_a_crash(genuine: dict[str, Any]) -> None:
    """Replace each field of the state in turn by values of other types and sizes: either the
    check rejects it, or the engine restores it (or refuses with the errors the sidecar catches)."""
    rng = np.random.default_rng(0)
    junk: list[Any] = [None, "s", -1, 2**70, 1e308, float("nan"), [], {}, [None], np.zeros(3), np.zeros((2, 2), bool)]

    def paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        out = [prefix]
        if isinstance(obj, dict):
            for k, v in obj.items():
                out += paths(v, (*prefix, k))
        return out

    all_paths = paths(genuine)[1:]
    more = _items(300, seed=2)[:300]
    for path in [all_paths[i] for i in rng.choice(len(all_paths), size=min(120, len(all_paths)), replace=False)]:
        for value in junk:
            state = copy.deepcopy(genuine)
            holder = state
            for k in path[:-1]:
                holder = holder[k]
            holder[path[-1]] = value
            try:
                check_engine_state(state, SidecarConfig())
            except StateRejected:
                continue
            engine = Engine(SidecarConfig(), T)
            try:
                engine.restore(T, 0, state)
            except (ValueError, KeyError, TypeError):
                continue
            engine.process(T, 0, more, 0.0)  # and the restored engine goes on


def test_the_codec_refuses_crafted_arrays_and_nesting() -> None:
    import zlib

    import msgpack

    from driftsentinel.stream.checkpoint import StateFormatError, decode_state

    def blob(state: Any) -> bytes:
        return zlib.compress(msgpack.packb({"codec": 1, "state": state}, use_bin_type=True))

    nested: Any = 0
    for _ in range(500):
        nested = [nested]
    for state in [
        {"a": {"__ndarray__": "<f8", "shape": [-1, -3], "data": b"\0" * 24}},
        {"a": {"__ndarray__": "<f8", "shape": "3", "data": b"\0" * 24}},
        {"a": {"__ndarray__": "<f8", "shape": [3], "data": "x"}},
        {"a": {"__ndarray__": "<f8", "shape": [2], "data": b"\0" * 7}},
        {"a": {"__ndarray__": ["<f8"], "shape": [1], "data": b"\0" * 8}},
        {"a": nested},
    ]:
        with pytest.raises(StateFormatError):
            decode_state(blob(state))


def test_a_rejected_checkpoint_makes_the_plan_rebuild_from_the_earliest_offset() -> None:
    from confluent_kafka import OFFSET_BEGINNING

    from driftsentinel.stream.checkpoint import Rejected
    from driftsentinel.stream.restore import plan_restore
    from driftsentinel.stream.state_topic import Checkpoints

    found = Checkpoints()
    found.rejected[(T, 0)] = [Rejected("checkpoint", "offset", "offset -1 is negative")]
    found.rejected[(T, 1)] = [Rejected("progress", "offset", "offset 10**15 is beyond the high watermark")]
    found[(T, 1)] = Checkpoint("g", T, 1, 40, {"banks": {}, "policy": []})
    plan = plan_restore([(T, 0), (T, 1)], {(T, 0): 2000, (T, 1): 50}, {}, found, None)
    rebuilt, kept = plan.inputs
    assert (rebuilt.start, rebuilt.replay_until, rebuilt.checkpoint, rebuilt.rebuild) == (
        OFFSET_BEGINNING,
        2000,
        None,
        True,
    )
    assert (kept.start, kept.replay_until, kept.checkpoint is found[(T, 1)], kept.rebuild) == (40, 50, True, False)
    assert plan.label_start(0, checkpoint_used=False, rebuilt=True) == OFFSET_BEGINNING


def test_a_rejected_state_record_shows_on_readyz_past_the_next_commit() -> None:
    """The rejection is a lasting readiness reason: the ``set_ready(None)`` of the commit that
    follows the restore does not hide it."""
    from driftsentinel.detectors.engine import Engine
    from driftsentinel.schemas import SidecarConfig
    from driftsentinel.stream.checkpoint import Rejected
    from driftsentinel.stream.metrics import HealthState, Metrics
    from driftsentinel.stream.partitions import Partitions

    config = SidecarConfig()
    health, metrics = HealthState(), Metrics()
    parts = Partitions(config, Engine(config, input_topic="in"), True, metrics=metrics, health=health)
    parts._report(("in", 3), Rejected("checkpoint", "shape", "banks is a str"))
    health.set_ready(None)  # what a commit does
    ok, reason = health.ready()
    assert not ok and "checkpoint of in[3] rejected (shape)" in reason
    assert b'driftsentinel_checkpoints_rejected_total{reason="shape"} 1.0' in metrics.render()


@pytest.fixture(scope="module")
def profiled() -> tuple[dict[str, Any], SidecarConfig, ReferenceProfile]:
    """A genuine state against a profile with a categorical feature: the reference monitor
    carries its categorical sequential tests' state (``cusum_categories``, ``cusum_unseen``)."""
    config, profile = SidecarConfig(), _profile()
    state = _state(config, profile)
    assert state["banks"]["m"]["monitor"]["sequential"] is not None
    return state, config, profile


def _tests_of(state: dict[str, Any]) -> dict[str, Any]:
    tests: dict[str, Any] = state["banks"]["m"]["monitor"]["sequential"]["tests"]
    return tests


def test_the_monitors_sequential_state_is_checked(
    profiled: tuple[dict[str, Any], SidecarConfig, ReferenceProfile],
) -> None:
    genuine, config, profile = profiled
    check_engine_state(genuine, config, profile)
    ring = genuine["banks"]["m"]["monitor"]["sequential"]["recent"]["c"]
    cases = [
        # the estimate ring's codes index the counts inside the numba kernel, which does not check bounds
        ("tests.ring", lambda s: _tests_of(s)["ring"].__setitem__((slice(None), 0), 10**9)),
        ("tests.ring", lambda s: _tests_of(s)["ring"].__setitem__((slice(None), 0), -5)),
        ("tests.ring", lambda s: _tests_of(s)["pos"].__setitem__(slice(None), 10**6)),
        ("tests.ring", lambda s: _tests_of(s)["cnt_u"].__setitem__((slice(None), 1), 7.0)),
        ("tests.n_cats", lambda s: _tests_of(s)["n_cats"].__setitem__(slice(None), 10**6)),
        ("tests.n_features", lambda s: _tests_of(s).update(n_features=200_000_000)),
        ("tests.cnt_c", lambda s: _tests_of(s).update(cnt_c=np.zeros((1, 10**5)))),
        ("tests", lambda s: _tests_of(s).update(kind="adwin")),
        ("recent", lambda s: s["banks"]["m"]["monitor"]["sequential"].update(recent={"other": ring})),
        ("recent.c", lambda s: s["banks"]["m"]["monitor"]["sequential"]["recent"].update(c=np.zeros(10**5, np.int64))),
        ("recent.c", lambda s: s["banks"]["m"]["monitor"]["sequential"]["recent"].update(c=[1, 2])),
        # the numeric sequential tests' seed bins likewise
        ("sequential.b_sh", lambda s: s["banks"]["m"]["sequential"]["b_sh"].__setitem__(slice(None), 10**9)),
        ("sequential.b_mi", lambda s: s["banks"]["m"]["sequential"]["b_mi"].__setitem__(slice(None), 2)),
    ]
    for where, mutate in cases:
        state = copy.deepcopy(genuine)
        mutate(state)
        with pytest.raises(StateRejected) as info:
            check_engine_state(state, config, profile)
        assert info.value.reason in ("shape", "size") and where in str(info.value), (where, str(info.value))
    # a state without the monitor's sequential tests (written before them) still passes and restores
    older = copy.deepcopy(genuine)
    older["banks"]["m"]["monitor"]["sequential"] = None
    check_engine_state(older, config, profile)
    Engine(config, T, None, profile).restore(T, 0, older)
