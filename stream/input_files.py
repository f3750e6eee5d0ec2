"""Reading a user's text files: encodings, CSV delimiters, header names.

Shared by ``baseline`` (:mod:`driftsentinel.stream.baseline`) and ``skew --offline-file``
(:mod:`driftsentinel.stream.offline_file`). A file that cannot be read as what it claims
to be raises :class:`InputFileError`, one line naming the file, the line or column, and
what to do; nothing is guessed silently.

- **Encoding**: UTF-8, with or without a byte-order mark (dropped); UTF-16 and UTF-32
  with a byte-order mark (Excel's "Unicode text"). Any other bytes (Latin-1, UTF-16
  without a mark) are an error naming the line.
- **CSV delimiter**: comma, tab, semicolon or ``|``, whichever splits the header and the
  first rows into the same number of fields (more than one); quoted fields may hold the
  delimiter and line breaks. A row with another number of fields than the header is an
  error naming its line.
- **Decimal commas**: in a semicolon-separated file (the CSV of locales whose decimal
  mark is a comma), a cell that is a number written with a decimal comma (``12,5``,
  ``-0,25``), with dots grouping thousands (``1.234,50``, ``1.234.567``), is read with a
  decimal point (:func:`~driftsentinel.detectors.skew.decimal_comma`). ``1.234`` alone is
  ambiguous and read as 1.234. :func:`read_csv_text` keeps the cells as written.
- **Header names**: a name that is empty, holds a control or invisible character (a
  byte-order mark, a zero-width space) or starts or ends with a space, or that repeats an
  earlier column's name, is an error naming its column (1-based).

>>> import pathlib, tempfile
>>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
>>> _ = p.write_bytes("\\ufeffage;amount;plan\\n31;12,5;pro\\n".encode())
>>> header, rows = read_csv(p)
>>> header, list(rows)
(['age', 'amount', 'plan'], [(2, ['31', '12.5', 'pro'])])
>>> _ = p.write_text("age,age\\n1,2\\n")
>>> try:
...     read_csv(p)
... except InputFileError as exc:
...     print(str(exc).split(": ", 1)[1])
columns 1 and 2 are both named 'age': rename one
"""

from __future__ import annotations

import codecs
import csv
import io
import unicodedata
from collections.abc import Iterable, Iterator
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

from driftsentinel.detectors.skew import decimal_comma

if TYPE_CHECKING:
    from _csv import Reader as _CsvReader

#: CSV delimiters tried, in order of preference on a tie.
DELIMITERS = (",", "\t", ";", "|")
#: Lines (at most) the delimiter is chosen from.
SNIFF_LINES = 50
#: Byte-order marks and their codecs, longest first (UTF-32 LE starts like UTF-16 LE).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_SAVE_AS_UTF8 = "save it as UTF-8 (e.g. iconv -f latin1 -t utf-8 FILE > NEW)"


class InputFileError(ValueError):
    """A user's input file that cannot be read as given; the message says where and what to do."""


def check_path(path: Path) -> None:
    """An input path that is a readable file, else :class:`InputFileError`."""
    if path.is_dir():
        raise InputFileError(f"{path}: is a directory; give a file")
    if not path.is_file():
        raise InputFileError(f"{path}: no such file")


def encoding_of(head: bytes) -> str:
    """The codec of a file starting with ``head``: by its byte-order mark, else UTF-8.

    >>> encoding_of(b"\\xef\\xbb\\xbfa,b"), encoding_of(b"\\xff\\xfea\\x00"), encoding_of(b"a,b")
    ('utf-8-sig', 'utf-16', 'utf-8')
    """
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return codec
    return "utf-8"


def text_lines(path: Path) -> Iterator[str]:
    """The decoded lines of ``path``, line endings kept, byte-order mark dropped.

    Undecodable bytes raise :class:`InputFileError` naming the line; so does a NUL byte
    in the first line of a file without a byte-order mark (UTF-16 without one, or binary).
    """
    check_path(path)
    with path.open("rb") as fh:
        codec = encoding_of(fh.read(4))
        fh.seek(0)
        if codec not in ("utf-8", "utf-8-sig"):
            yield from _wide_lines(path, io.TextIOWrapper(fh, encoding=codec, newline=""))
            return
        for no, raw in enumerate(fh, 1):
            if no == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputFileError(
                    f"{path}:{no}: not UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line): "
                    + _SAVE_AS_UTF8
                ) from None
            if no == 1 and "\x00" in line:
                raise InputFileError(
                    f"{path}:1: NUL bytes (UTF-16 without a byte-order mark, or not text): {_SAVE_AS_UTF8}"
                )
            yield line


def _wide_lines(path: Path, text: io.TextIOWrapper) -> Iterator[str]:
    """Lines of a UTF-16/32 file; a decoding error names the line it happened in."""
    no = 0
    try:
        for no, line in enumerate(text, 1):  # noqa: B007 (no is read after the loop)
            yield line
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{path}:{no + 1}: not {text.encoding.upper()} ({exc.reason}): {_SAVE_AS_UTF8}") from None


def sniff_delimiter(lines: list[str], complete: bool) -> str:
    """The delimiter splitting the header and the sampled rows into the same number (> 1) of fields.

    ``complete``: ``lines`` are the whole file (else the last record may be cut and is not
    judged). The most fields wins; on a tie, the order of :data:`DELIMITERS`. When no
    delimiter splits every row like the header, the one splitting the header into the most
    fields (the reader then names the first row that differs); a one-column file: a comma.

    >>> sniff_delimiter(["a;b;c\\n", "1;2,5;x\\n"], True), sniff_delimiter(["a,b\\n", '1,"x;y"\\n'], True)
    (';', ',')
    >>> sniff_delimiter(["a\\tb\\n"], True), sniff_delimiter(["only\\n", "1\\n"], True)
    ('\\t', ',')
    >>> sniff_delimiter(["a\\tb\\tc\\n", "1\\t2\\n"], True)
    '\\t'
    """
    consistent: tuple[int, str] = (1, ",")
    widest: tuple[int, str] = (1, ",")
    for delim in DELIMITERS:
        try:
            records = [r for r in csv.reader(lines, delimiter=delim) if r]
        except csv.Error:
            continue
        if not complete and len(records) > 2:
            records = records[:-1]
        if not records:
            continue
        width = len(records[0])
        if width > widest[0]:
            widest = (width, delim)
        if width > consistent[0] and all(len(r) == width for r in records[1:]):
            consistent = (width, delim)
    return consistent[1] if consistent[0] > 1 else widest[1]


def check_names(names: Iterable[object], where: str) -> list[str]:
    """Header names as strings; :class:`InputFileError` for a corrupted-looking or repeated one.

    ``where`` starts the message (the file name).

    >>> check_names(["age", "plan"], "t.csv")
    ['age', 'plan']
    >>> try:
    ...     check_names(["age", "pl\\x01an"], "t.csv")
    ... except InputFileError as exc:
    ...     print(exc)
    t.csv: column 2 name 'pl\\x01an' holds the invisible character U+0001: fix the header
    """
    seen: dict[str, int] = {}
    out: list[str] = []
    for col, raw in enumerate(names, 1):
        name = str(raw)
        problem = name_problem(name)
        if problem is not None:
            raise InputFileError(f"{where}: column {col} name {name!r} {problem}")
        if name in seen:
            raise InputFileError(f"{where}: columns {seen[name]} and {col} are both named {name!r}: rename one")
        seen[name] = col
        out.append(name)
    return out


def name_problem(name: str) -> str | None:
    """Why ``name`` looks corrupted as a feature name, or None.

    >>> name_problem("\\ufeffage"), name_problem(" amount"), name_problem("n_items")
    ('holds the invisible character U+FEFF: fix the header', 'starts or ends with a space: remove it', None)
    """
    if not name.strip():
        return "is empty: name every column"
    for ch in name:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") or ch == "\ufffd":
            return f"holds the invisible character U+{ord(ch):04X}: fix the header"
    if name != name.strip():
        return "starts or ends with a space: remove it"
    return None


def read_csv(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """A CSV file's checked header and its rows as ``(line number, fields)``, blank lines skipped.

    The delimiter is sniffed (:func:`sniff_delimiter`); an empty file, a header without
    rows, or a row with another number of fields than the header raise :class:`InputFileError`.
    In a semicolon-separated file, numbers written with a decimal comma get a decimal point.

    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "de.csv"
    >>> _ = p.write_text("amount;n;code\\n1.234,50;1.234.567;12,5x\\n")
    >>> [fields for _, fields in read_csv(p)[1]]
    [['1234.50', '1234567', '12,5x']]
    """
    header, rows, delim = read_csv_text(path)
    if delim != ";":
        return header, rows
    return header, ((line, [decimal_comma(f) or f for f in fields]) for line, fields in rows)


def read_csv_text(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]], str]:
    """:func:`read_csv` with the cells as written (no decimal commas read), and the delimiter."""
    lines = text_lines(path)
    sample: list[str] = []
    for line in lines:
        sample.append(line)
        if len(sample) >= SNIFF_LINES:
            break
    complete = len(sample) < SNIFF_LINES
    delim = sniff_delimiter(sample, complete)
    reader = csv.reader(chain(sample, lines), delimiter=delim)
    try:
        first = next((r for r in reader if r), None)
    except csv.Error as exc:
        raise InputFileError(f"{path}:{reader.line_num}: not CSV ({exc})") from None
    if first is None:
        raise InputFileError(f"{path}: empty file: a CSV needs a header row and data rows")
    header = check_names(first, str(path))
    return header, _csv_rows(path, reader, len(header), delim), delim


def _csv_rows(path: Path, reader: _CsvReader, width: int, delim: str) -> Iterator[tuple[int, list[str]]]:
    """The data rows of ``reader`` (past its header), each with its last line's number."""
    rows = 0
    try:
        for fields in reader:
            line = reader.line_num
            if not fields:
                continue
            if len(fields) != width:
                shown = "tab" if delim == "\t" else repr(delim)
                raise InputFileError(
                    f"{path}:{line}: {len(fields)} fields, the header has {width} (delimiter {shown}): "
                    f"quote fields that hold the delimiter, or fix the row"
                )
            rows += 1
            yield line, fields
    except csv.Error as exc:
        raise InputFileError(f"{path}:{reader.line_num}: not CSV ({exc})") from None
    if rows == 0:
        raise InputFileError(f"{path}: a header and no data rows")
