"""The reference server's settings against the spec: every limit's minimum as spec/11-limits.md's table
states it (parsed from the Markdown, independently of the code under test), the nesting cap, and the
CLI refusing an out-of-range value with exit status 2 before it touches the store."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rs_harness import REPO

from stui_protocol_kit.protocol.requirements import spec_dir
from stui_protocol_kit.reference_server.config import MAX_NESTING_DEPTH_CAP, ServerConfig


def spec_limit_table() -> dict[str, int]:
    """limit name -> minimum, read from the table in spec/11-limits.md."""
    text = (spec_dir() / "11-limits.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\|\s*`([a-z_]+)`[^|]*\|[^|]*\|\s*(\d+)\s*\|", text, re.M)
    assert rows, "no limits table found in spec/11-limits.md"
    return {name: int(minimum) for name, minimum in rows}


SPEC_MINIMUMS = spec_limit_table()


def test_the_config_has_a_setting_for_every_limit_of_the_spec() -> None:
    fields = {f.name for f in dataclasses.fields(ServerConfig)}
    assert set(SPEC_MINIMUMS) <= fields
    assert set(ServerConfig().limits()) == set(SPEC_MINIMUMS)


@pytest.mark.parametrize(("name", "minimum"), sorted(SPEC_MINIMUMS.items()))
def test_config_refuses_values_below_the_spec_minimum(name: str, minimum: int) -> None:
    assert ServerConfig(**{name: minimum}).limits()[name] == minimum
    with pytest.raises(ValueError, match=f"{name} must be at least {minimum}"):
        ServerConfig(**{name: minimum - 1})


def test_config_refuses_nesting_deeper_than_the_decoder_handles() -> None:
    ServerConfig(max_nesting_depth=MAX_NESTING_DEPTH_CAP)
    with pytest.raises(ValueError, match="at most"):
        ServerConfig(max_nesting_depth=MAX_NESTING_DEPTH_CAP + 1)


@pytest.mark.parametrize(("option", "value"), [("--max-message-bytes", "65535"), ("--retry-window", "0"),
                                               ("--max-nesting-depth", "513"), ("--max-revisions", "1")])
def test_cli_refuses_a_limit_out_of_range_with_exit_2(tmp_path: Path, option: str, value: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stui_protocol_kit.reference_server.cli", "--bind", "tcp://127.0.0.1:0", "--data-dir",
         str(tmp_path / "d"), option, value],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 2
    assert option in done.stderr and "listening on" not in done.stderr
    assert not (tmp_path / "d").exists()  # refused before the store is touched
