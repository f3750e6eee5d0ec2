"""Issue 18: input files that used to give wrong results without an error.

A CSV with a byte-order mark, another delimiter, another encoding, corrupted or repeated
header names, ragged rows; JSON Lines with a byte-order mark; a replayed file without a
valid event; skew's offline CSV read as text. Each gives the right result or one line
naming the file, the line or column and what to do (exit 2 from ``baseline``).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import random
import re
from pathlib import Path

import pytest

from driftsentinel.detectors.skew import SkewDetector, TextCells
from driftsentinel.schemas import SidecarConfig
from driftsentinel.schemas.skew import SkewConfig
from driftsentinel.stream.baseline import make_profile, read_rows
from driftsentinel.stream.cli import main
from driftsentinel.stream.input_files import InputFileError, read_csv, sniff_delimiter
from driftsentinel.stream.offline_file import read_offline_file
from driftsentinel.stream.replay import NoEventsError, replay_file

NAMES = ["age", "amount", "n_items", "plan", "country"]


def training_rows(n: int = 400, seed: int = 3) -> list[list[object]]:
    rng = random.Random(seed)
    return [
        [rng.randint(18, 80), round(rng.gauss(50, 10), 2), rng.randint(1, 9), rng.choice(["free", "pro"]), "DE"]
        for _ in range(n)
    ]


def csv_text(delimiter: str = ",", header: list[str] = NAMES, rows: list[list[object]] | None = None) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(training_rows() if rows is None else rows)
    return buf.getvalue()


def baseline(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["baseline", "--input", str(path), "--out", str(path.parent / "profile.json")])
    return code, capsys.readouterr().err


def features_of(path: Path) -> dict[str, object]:
    prof = make_profile(read_rows(path), "t")
    return {name: feature.model_dump() for name, feature in prof.features.items()}


# ---------------------------------------------------------------------- CSV read right
@pytest.mark.parametrize(
    ("name", "delimiter", "encoding"),
    [
        ("bom.csv", ",", "utf-8-sig"),  # the issue: "\ufeffage"
        ("semicolon.csv", ";", "utf-8"),  # the issue: one feature "age;amount;..."
        ("tab.csv", "\t", "utf-8"),
        ("pipe.csv", "|", "utf-8"),
        ("excel-unicode.tsv", "\t", "utf-16"),  # Excel's "Unicode text": UTF-16 LE with a BOM, tabs
        ("utf16be.csv", ";", "utf-16-be"),
        ("utf32.csv", ",", "utf-32"),
    ],
)
def test_csv_any_delimiter_and_encoding_profiles_like_plain_csv(
    tmp_path: Path, name: str, delimiter: str, encoding: str
) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_text(csv_text())
    path = tmp_path / name
    text = csv_text(delimiter)
    path.write_bytes((codecs.BOM_UTF16_BE if encoding == "utf-16-be" else b"") + text.encode(encoding))
    got = features_of(path)
    assert sorted(got) == sorted(NAMES)
    assert got == features_of(plain)


def test_semicolon_csv_with_decimal_commas(tmp_path: Path) -> None:
    """A German/French Excel export: ';' between fields, ',' as the decimal mark."""
    plain = tmp_path / "plain.csv"
    plain.write_text(csv_text())
    european = tmp_path / "eu.csv"
    european.write_text(csv_text(";").replace(".", ","))
    assert all("," in line.split(";")[1] for line in european.read_text().splitlines()[1:])  # every amount
    assert features_of(european) == features_of(plain)


def test_semicolon_csv_replays_without_false_alerts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "train.csv").write_text("\ufeff" + csv_text(";", rows=training_rows(3000)))
    assert main(["baseline", "--input", str(tmp_path / "train.csv"), "--out", str(tmp_path / "p.json")]) == 0
    rows = training_rows(3000, seed=4)
    (tmp_path / "live.jsonl").write_text(
        "".join(
            json.dumps({"id": str(i), "features": dict(zip(NAMES, r, strict=True))}) + "\n" for i, r in enumerate(rows)
        )
    )
    out = io.StringIO()
    stats = replay_file(tmp_path / "live.jsonl", SidecarConfig(reference=str(tmp_path / "p.json")), out)
    assert stats["events"] == 3000
    assert [json.loads(line)["feature"] for line in out.getvalue().splitlines()] == []


def test_quoted_fields_hold_delimiters_and_line_breaks(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('"city","note","n"\n"Berlin, DE","a;b\nsecond line",1\n"Paris, FR","x",2\n')
    header, rows = read_csv(path)
    assert header == ["city", "note", "n"]
    assert list(rows) == [(3, ["Berlin, DE", "a;b\nsecond line", "1"]), (4, ["Paris, FR", "x", "2"])]


def test_sniffer_keeps_comma_when_cells_hold_other_delimiters() -> None:
    lines = ["a,b,c\n"] + [f"{i},x;y|z\tw,{i}\n" for i in range(60)]
    assert sniff_delimiter(lines[:50], complete=False) == ","
    assert sniff_delimiter(["a;b;c\n", "1;2,5;x\n", "2;3,5;y\n"], complete=True) == ";"  # decimal commas


# ---------------------------------------------------------------------- one clear line instead
ERRORS = [
    ("latin1.csv", "age,plan\n1,free\n2,caf\xe9\n".encode("latin-1"), r"latin1\.csv:3: not UTF-8 \(byte 0xe9"),
    ("nobom16.csv", "age,plan\n1,free\n".encode("utf-16-le"), r"nobom16\.csv:1: NUL bytes"),
    ("empty.csv", b"", r"empty\.csv: empty file"),
    ("blank.csv", b"\n\n", r"blank\.csv: empty file"),
    ("header.csv", b"age,plan\r\n", r"header\.csv: a header and no data rows"),
    ("dup.csv", b"age,plan,age\n1,a,2\n", r"dup\.csv: columns 1 and 3 are both named 'age': rename one"),
    ("space.csv", b"age, plan\n1,a\n", r"space\.csv: column 2 name ' plan' starts or ends with a space"),
    ("ctrl.csv", b"age,pl\x01an\n1,a\n", r"ctrl\.csv: column 2 name 'pl\\x01an' holds the invisible character U\+0001"),
    ("midbom.csv", "age,\ufeffplan\n1,a\n".encode(), r"midbom\.csv: column 2 name '\\ufeffplan' holds .* U\+FEFF"),
    (
        "zwsp.csv",
        "age,plan\u200b\n1,a\n".encode(),
        r"column 2 name 'plan\\u200b' holds .* U\+200B",
    ),
    ("noname.csv", b"age,,plan\n1,2,a\n", r"noname\.csv: column 2 name '' is empty"),
    ("ragged.csv", b"age,plan\n1,a\n2,Berlin, DE\n", r"ragged\.csv:3: 3 fields, the header has 2 \(delimiter ','\)"),
    ("short.tsv", b"age\tplan\tn\n1\ta\t3\n2\tb\n", r"short\.tsv:3: 2 fields, the header has 3 \(delimiter tab\)"),
    ("notes.txt", b"age,plan\n1,a\n", r"notes\.txt: unknown format"),
    ("bad.jsonl", b'{"age": 1}\n{"age": 2\n', r"bad\.jsonl:2: not JSON"),
    (
        "badname.jsonl",
        b'{"age": 1}\n{"age": 2, "pl\\u0000an": "a"}\n',
        r"badname\.jsonl:2: feature name 'pl\\x00an'",
    ),
    ("latin1.jsonl", b'{"plan": "free"}\n{"plan": "caf\xe9"}\n', r"latin1\.jsonl:2: not UTF-8"),
]


@pytest.mark.parametrize(("name", "content", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_unreadable_input_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    code, err = baseline(path, capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("driftsentinel baseline: ")
    assert re.search(message, err), err


def test_directory_and_missing_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "d.csv").mkdir()
    for name, problem in (("d.csv", "is a directory; give a file"), ("none.csv", "no such file")):
        with pytest.raises(InputFileError, match=f"{name}: {problem}"):
            read_rows(tmp_path / name)
        with pytest.raises(InputFileError, match=f"{name}: {problem}"):
            read_offline_file(tmp_path / name)
        code, err = baseline(tmp_path / name, capsys)
        assert code == 2 and len(err.splitlines()) == 1 and f"{tmp_path / name}" in err


def test_json_lines_with_a_bom_and_utf16(tmp_path: Path) -> None:
    lines = "".join(json.dumps(dict(zip(NAMES, r, strict=True))) + "\n" for r in training_rows())
    (tmp_path / "plain.jsonl").write_text(lines)
    (tmp_path / "bom.jsonl").write_bytes(codecs.BOM_UTF8 + lines.encode())
    (tmp_path / "wide.jsonl").write_bytes(lines.encode("utf-16"))
    plain = features_of(tmp_path / "plain.jsonl")
    assert sorted(plain) == sorted(NAMES)
    assert features_of(tmp_path / "bom.jsonl") == plain == features_of(tmp_path / "wide.jsonl")


def test_parquet_names_checked_by_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"age": [1, 2], "\ufeffplan": ["a", "b"]}), tmp_path / "t.parquet")
    code, err = baseline(tmp_path / "t.parquet", capsys)
    assert code == 2 and "t.parquet: column 2 name '\\ufeffplan' holds the invisible character U+FEFF" in err
    (tmp_path / "fake.parquet").write_text("age,plan\n1,a\n")
    code, err = baseline(tmp_path / "fake.parquet", capsys)
    assert code == 2 and "fake.parquet: not a readable Parquet file" in err and len(err.splitlines()) == 1


def test_parquet_times_and_decimals_are_numbers_nested_columns_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pa = pytest.importorskip("pyarrow")
    import datetime as dt
    import decimal

    import pyarrow.parquet as pq

    utc = dt.UTC
    created = pa.array([dt.datetime(2024, 1, 1, tzinfo=utc), None], pa.timestamp("ns", tz="UTC"))
    day = pa.array([dt.date(2024, 1, 2), dt.date(2024, 1, 3)])
    price = pa.array([decimal.Decimal("1.25"), decimal.Decimal("2.50")])
    plan = pa.array(["a", "b"]).dictionary_encode()
    pq.write_table(pa.table({"created": created, "day": day, "price": price, "plan": plan}), tmp_path / "t.parquet")
    assert list(read_rows(tmp_path / "t.parquet")) == [
        {"created": 1704067200.0, "day": 1704153600.0, "price": 1.25, "plan": "a"},
        {"created": None, "day": 1704240000.0, "price": 2.5, "plan": "b"},
    ]
    pq.write_table(pa.table({"x": [1.0, 2.0], "tags": [["a"], []]}), tmp_path / "n.parquet")
    code, err = baseline(tmp_path / "n.parquet", capsys)
    assert code == 2 and "n.parquet: column 2 'tags' is of type list<element: string>: a feature is" in err
    (tmp_path / "n.jsonl").write_text('{"x": 1}\n{"x": 2, "tags": {"a": 1}}\n')
    code, err = baseline(tmp_path / "n.jsonl", capsys)
    assert code == 2 and "n.jsonl:2: feature 'tags' is a JSON dict" in err


# ---------------------------------------------------------------------- replay
def events_text(n: int) -> str:
    return "".join(json.dumps({"features": {"x": float(i % 7)}}) + "\n" for i in range(n))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("train.csv", csv_text().encode(), r"no valid event in 401 lines \(line 1: not_json\): it looks like CSV; "),
        ("e.jsonl", events_text(50).encode("utf-16"), r"no valid event in 51 lines .*: it looks like UTF-16"),
        ("empty.jsonl", b"", r"empty.jsonl: empty: replay needs JSON Lines"),
        ("noise.jsonl", b'{"a": 1}\n[2]\n', r"no valid event in 2 lines \(line 1: "),
    ],
)
def test_replay_without_a_valid_event_is_an_error(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    out = io.StringIO()
    with pytest.raises(NoEventsError, match=message) as info:
        replay_file(path, SidecarConfig(), out)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)
    assert out.getvalue() == ""


def test_replay_drops_a_bom_and_refuses_a_labels_file_without_labels(tmp_path: Path) -> None:
    (tmp_path / "e.jsonl").write_bytes(codecs.BOM_UTF8 + events_text(100).encode())
    stats = replay_file(tmp_path / "e.jsonl", SidecarConfig(), io.StringIO())
    assert stats["events"] == 100 and stats["invalid"] == {}
    (tmp_path / "labels.csv").write_text("id,label\n1,0\n")
    with pytest.raises(NoEventsError, match=r"labels.csv: no valid label in 2 lines"):
        replay_file(tmp_path / "e.jsonl", SidecarConfig(), io.StringIO(), labels=tmp_path / "labels.csv")


# ---------------------------------------------------------------------- skew's offline files
def test_offline_csv_semicolon_bom_gives_text_cells(tmp_path: Path) -> None:
    path = tmp_path / "off.csv"
    path.write_bytes(codecs.BOM_UTF8 + b"id;ts;flag;zip;amount\nu1;5;True;04100;12,5\nu2;;1;;3\n")
    rows = list(read_offline_file(path))
    assert rows == [
        ("u1", {"flag": "True", "zip": "04100", "amount": "12,5"}, 5.0),  # as written: typed_cell reads the comma
        ("u2", {"flag": "1", "zip": None, "amount": "3"}, None),
    ]
    assert all(isinstance(r.features, TextCells) and r.features.decimal_comma for r in rows if r is not None)


def test_offline_semicolon_file_compares_decimal_commas_by_the_serving_type(tmp_path: Path) -> None:
    """A ';' file's "1,5" is 1.5 against a serving number and the text "1,5" against a serving string."""
    path = tmp_path / "off.csv"
    path.write_text("id;ts;amount;code\n" + "".join(f"u{i};1,5;1.234,5;1,5\n" for i in range(20)))
    rows = [r for r in read_offline_file(path) if r is not None]
    assert rows[0].ts == 1.5
    det = SkewDetector(SkewConfig(window_pairs=20, min_pairs=10))
    [result] = det.update([r.id for r in rows], [{"amount": 1234.5, "code": "1,5"}] * 20, [r.features for r in rows])
    assert result.signals == []
    assert {n: r.exact_match_rate for n, r in result.reports.items()} == {"amount": 1.0, "code": 1.0}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"user,x\n1,2\n", r"off.csv: no 'id' column in the header \['user', 'x'\]"),
        (b"id,x\n,1\n,2\n", r"off.csv: none of its 2 rows has an id"),
        ("id,plan\nu1,caf\xe9\n".encode("latin-1"), r"off.csv:2: not UTF-8"),
    ],
)
def test_offline_file_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "off.csv"
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=message):
        list(read_offline_file(path))


def test_offline_json_lines_without_rows_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "off.jsonl").write_bytes(b"")
    with pytest.raises(InputFileError, match="holds no rows"):
        list(read_offline_file(tmp_path / "off.jsonl"))
    (tmp_path / "off.jsonl").write_bytes(codecs.BOM_UTF8 + b'{"id": "a", "x": 1}\n')
    assert list(read_offline_file(tmp_path / "off.jsonl")) == [("a", {"x": 1}, None)]


# ---------------------------------------------------------------------- event fields in a flat file
def test_event_fields_of_a_flat_file_are_not_features(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A training CSV with ``id``, ``ts``, ``model``, ``prediction`` and ``label`` columns: the
    stream sends those as the event's own fields, so profiled as features they read as missing
    there (a false critical ``missing_rate``). They are left out, and the user is told."""
    rng = random.Random(5)
    rows = [[f"r{i}", 1_700_000_000 + i, "m", rng.gauss(40, 10), round(rng.random(), 3), i % 2] for i in range(3000)]
    train = tmp_path / "train.csv"
    train.write_text(csv_text(header=["id", "ts", "model", "age", "prediction", "label"], rows=rows))
    code, err = baseline(train, capsys)
    assert code == 0, err
    assert "not profiled (event fields, not features on the stream): id, ts, model, label" in err
    profile = json.loads((tmp_path / "profile.json").read_text())
    assert sorted(profile["features"]) == ["@prediction", "age"]
    live = tmp_path / "live.jsonl"
    with live.open("w") as fh:
        for i in range(6000):
            event = {"model": "m", "id": f"q{i}", "ts": 1_800_000_000 + i, "prediction": round(rng.random(), 3)}
            fh.write(json.dumps({**event, "features": {"age": rng.gauss(40, 10)}}) + "\n")
    alerts = tmp_path / "alerts.jsonl"
    argv = ["replay", "--input", str(live), "--reference", str(tmp_path / "profile.json"), "--output", str(alerts)]
    assert main(argv) == 0
    assert [json.loads(line)["feature"] for line in alerts.read_text().splitlines()] == []


# ---------------------------------------------------------------------- a column mixing numbers and text
def test_german_thousands_separators_are_numbers(tmp_path: Path) -> None:
    """A German-locale export: ``1.234,50`` in a ';' file is 1234.5, and the column stays numeric."""
    path = tmp_path / "de.csv"
    path.write_text("amount;plan\n" + "".join(f"{a};pro\n" for a in ["1.234,50", "999,00", "12,5", "2.000.000"] * 5))
    prof = make_profile(read_rows(path), "de.csv")
    amount = prof.features["amount"]
    assert amount.kind == "numeric" and amount.max == 2_000_000 and amount.min == 12.5


def test_a_mixed_column_is_refused_unless_pinned_categorical(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("age,plan\n" + "".join(f"{20 + i},pro\n" for i in range(9)) + "n/a,pro\n")
    with pytest.raises(InputFileError, match=r"t.csv:11: column 'age' holds 9 numbers and the text 'n/a'"):
        make_profile(read_rows(path), "t.csv")
    prof = make_profile(read_rows(path, {"age": "categorical"}), "t.csv", {"age": "categorical"})
    assert prof.features["age"].kind == "categorical"
    with pytest.raises(InputFileError, match=r"column 'age' holds 9 numbers"):  # pinned numeric: refused too
        make_profile(read_rows(path, {"age": "numeric"}), "t.csv", {"age": "numeric"})
    mostly_text = tmp_path / "codes.csv"  # a text column with a few numbers is categorical, as before
    mostly_text.write_text("code\n" + "a\nb\nc\n7\n")
    assert make_profile(read_rows(mostly_text), "codes.csv").features["code"].kind == "categorical"


def test_a_mixed_json_lines_column_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps({"x": i}) + "\n" for i in range(5)) + '{"x": "5"}\n')
    with pytest.raises(InputFileError, match=r"t.jsonl:6: column 'x' holds 5 numbers and the text '5'"):
        make_profile(read_rows(path), "t.jsonl")
