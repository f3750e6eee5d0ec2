"""The Kafka shell stays small: no function over 60 lines, a consume loop of at most 250 lines,
and the sidecar's import chain never reaches the local Kafka launcher (a dev tool)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

STREAM = Path(__file__).resolve().parents[2] / "stream"
MAX_FUNCTION_LINES = 60
MAX_LOOP_LINES = 250


def _long_functions() -> list[tuple[str, str, int]]:
    out = []
    for path in sorted(STREAM.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    out.append((path.name, node.name, lines))
    return out


def test_no_shell_function_is_over_60_lines() -> None:
    assert _long_functions() == []


def test_the_consume_loop_is_at_most_250_lines() -> None:
    assert len((STREAM / "consumer.py").read_text().splitlines()) <= MAX_LOOP_LINES


def test_run_never_imports_the_local_kafka_launcher() -> None:
    code = (
        "import sys; from driftsentinel.stream.cli import build_parser; "
        "from driftsentinel.stream.consumer import Sidecar; build_parser().parse_args(['run']); "
        "print('driftsentinel.stream.local_kafka' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
