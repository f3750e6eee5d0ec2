"""stream.join: the bounded-memory join by id."""

from __future__ import annotations

import gc
import math
import os
import time
import tracemalloc
from pathlib import Path

import pytest

from driftsentinel.detectors.join import StreamJoin


def test_pairs_whichever_side_comes_first() -> None:
    join = StreamJoin(("serving", "offline"), max_pending=10, max_age_s=60)
    assert join.add("offline", "a", "off-a", 0) is None
    assert join.add("serving", "a", "srv-a", 1) == ("srv-a", "off-a")  # always (sides[0], sides[1])
    assert join.add("serving", "b", "srv-b", 2) is None
    assert join.add("offline", "b", "off-b", 3) == ("srv-b", "off-b")
    assert join.matched == 2 and join.pending("serving") == join.pending("offline") == 0


def test_count_window_evicts_oldest_and_counts_it() -> None:
    join = StreamJoin(("serving", "offline"), max_pending=3, max_age_s=1e9)
    for i in range(5):
        join.add("serving", str(i), i, 0)
    assert join.pending("serving") == 3 and join.unmatched == {"serving": 2, "offline": 0}
    assert join.add("offline", "0", "x", 0) is None  # "0" was evicted: no pair
    assert join.add("offline", "4", "x", 0) == (4, "x")


def test_time_window() -> None:
    join = StreamJoin(("serving", "offline"), max_pending=100, max_age_s=10)
    join.add("serving", "old", 1, t=0)
    join.add("offline", "young", 2, t=8)
    assert join.expire(t=9) == {"serving": 0, "offline": 0}
    assert join.expire(t=10.5) == {"serving": 1, "offline": 0}
    assert join.expire(t=18.5) == {"serving": 0, "offline": 1}
    assert join.unmatched == {"serving": 1, "offline": 1}
    # event-time clock: the newest t seen is the watermark
    join.add("serving", "e1", 1, t=100)
    join.add("serving", "e2", 1, t=120)
    assert join.expire() == {"serving": 1, "offline": 0}


def test_duplicates_and_drain() -> None:
    join = StreamJoin(("a", "b"), max_pending=10, max_age_s=10)
    join.add("a", "k", 1, 0)
    join.add("a", "k", 2, 0)
    assert join.duplicates == {"a": 1, "b": 0}
    assert join.add("b", "k", 3, 0) == (1, 3)  # the first value is kept
    join.add("b", "z", 1, 0)
    assert join.drain() == {"a": 0, "b": 1}
    assert join.stats() == {
        "matched": 1,
        "unmatched": {"a": 0, "b": 1},
        "pending": {"a": 0, "b": 0},
        "duplicates": {"a": 1, "b": 0},
    }


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        StreamJoin(("a", "a"), 1, 1)
    with pytest.raises(ValueError):
        StreamJoin(("a", "b"), 0, 1)
    with pytest.raises(ValueError):
        StreamJoin(("a", "b"), 1, 1).add("c", "k", 1, 0)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_million_ids_that_never_match_stay_within_the_window() -> None:
    """1,000,000 ids on each side, none ever matching: memory is bounded by max_pending."""
    window = 10_000
    join = StreamJoin(("serving", "offline"), max_pending=window, max_age_s=1e9)
    features = {"latency": 0.1, "plan": "pro"}
    gc.collect()
    rss_before = _rss_bytes()
    started = time.perf_counter()
    rss_at_window = 0
    for i in range(1_000_000):
        join.add("serving", f"s{i}", features, float(i))
        join.add("offline", f"o{i}", features, float(i))
        if i == 2 * window:
            rss_at_window = _rss_bytes()
        if i % 50_000 == 0:
            assert join.pending("serving") <= window and join.pending("offline") <= window
    elapsed = time.perf_counter() - started
    gc.collect()
    rss_after = _rss_bytes()
    assert join.pending("serving") == join.pending("offline") == window
    assert join.unmatched == {"serving": 1_000_000 - window, "offline": 1_000_000 - window}
    assert join.matched == 0
    print(
        f"\njoin after 2 x 1M never-matching ids: RSS +{(rss_after - rss_before) / 1e6:.1f} MB "
        f"(+{(rss_at_window - rss_before) / 1e6:.1f} MB at 2x window), {elapsed:.1f}s"
    )
    # keeping 2M ids would take ~250 MB; the window holds 2 x 10,000
    assert rss_after - rss_at_window < 16_000_000
    assert rss_after - rss_before < 32_000_000


def test_structure_size_is_the_same_after_10x_more_ids() -> None:
    """Allocated bytes (tracemalloc) after 10k and after 100k never-matching ids per side."""

    def held(n: int) -> int:
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            join = StreamJoin(("serving", "offline"), max_pending=1_000, max_age_s=1e9)
            for i in range(n):
                join.add("serving", f"s{i}", None, 0.0)
                join.add("offline", f"o{i}", None, 0.0)
            size = tracemalloc.get_traced_memory()[0] - base
            assert join.pending("serving") == 1_000
            return size
        finally:
            tracemalloc.stop()

    small, large = held(10_000), held(100_000)
    assert large < 1.2 * small + 100_000, (small, large)


def test_infinite_times_do_not_move_the_watermark() -> None:
    join = StreamJoin(("a", "b"), max_pending=10, max_age_s=5)
    join.add("a", "no-ts", 1, math.inf)  # no time limit, only the count limit
    join.add("a", "k", 1, 100.0)
    assert join.watermark == 100.0
    assert join.expire() == {"a": 0, "b": 0}  # the front entry is timeless: eviction stops there
    assert join.pending("a") == 2


def test_offline_files_csv_and_json_lines(tmp_path: Path) -> None:
    from driftsentinel.stream.offline_file import read_offline_file

    csv_path = tmp_path / "off.csv"
    csv_path.write_text("id,ts,latency,plan,clicks\nu1,10,0.25,pro,3\n,11,1,x,1\nu2,,,basic,\n")
    assert list(read_offline_file(csv_path)) == [
        ("u1", {"latency": "0.25", "plan": "pro", "clicks": "3"}, 10.0),  # text cells, typed by the serving value
        None,  # no id
        ("u2", {"latency": None, "plan": "basic", "clicks": None}, None),
    ]
    jsonl = tmp_path / "off.jsonl"
    jsonl.write_bytes(
        b'{"id": "a", "features": {"x": 1}}\n\nnot json\n[1]\n{"id": "b", "x": 2, "model": "m", "ts": 5}\n'
    )
    rows = list(read_offline_file(jsonl))
    assert rows[0] == ("a", {"x": 1}, None)
    assert rows[1] is None and rows[2] is None  # not JSON, not an object
    assert rows[3] == ("b", {"x": 2}, 5.0)
    jsonl.write_bytes(b'{"id": "a", "x": 1}\n\xff{"id":1}\n')
    with pytest.raises(ValueError, match=":2: not UTF-8"):  # undecodable bytes: the line is named, not guessed at
        list(read_offline_file(jsonl))
    bad = tmp_path / "bad.csv"
    bad.write_text("user,x\n1,2\n")
    with pytest.raises(ValueError):
        list(read_offline_file(bad))
