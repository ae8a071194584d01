"""The benchmark scripts' shared helpers (benchmarks/common.py), on the CPU."""
import importlib.util
from pathlib import Path

import torch

COMMON = Path(__file__).resolve().parents[1] / "benchmarks" / "common.py"


def load_common():
    spec = importlib.util.spec_from_file_location("benchmarks_common", COMMON)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_print_table_with_no_rows_prints_the_header(capsys):
    # Every model skipped (e.g. SAM not installed on a lent GPU) used to raise a TypeError
    # after all the timing was done, losing the table.
    load_common().print_table(["model", "px"], [])
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["model | px", "------+---"]


def test_print_table_pads_columns_to_the_widest_cell(capsys):
    load_common().print_table(["a", "px"], [["hrsam_tiny", 1024], ["b", 64]])
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == "hrsam_tiny | 1024"
    assert lines[3] == "b          | 64  "


def test_matmul_roofline_in_bfloat16_is_measured_in_that_dtype():
    rate = load_common().matmul_gflops(size=64, repeats=1, dtype=torch.bfloat16)
    assert rate > 0
