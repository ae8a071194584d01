"""The benchmark scripts' shared helpers (benchmarks/common.py), on the CPU."""
import torch

from _benchmark_scripts import load_benchmark

common = load_benchmark("common")


def test_print_table_with_no_rows_prints_the_header(capsys):
    # Every model skipped (e.g. SAM not installed on a lent GPU) used to raise a TypeError
    # after all the timing was done, losing the table.
    common.print_table(["model", "px"], [])
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["model | px", "------+---"]


def test_print_table_pads_columns_to_the_widest_cell(capsys):
    common.print_table(["a", "px"], [["hrsam_tiny", 1024], ["b", 64]])
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == "hrsam_tiny | 1024"
    assert lines[3] == "b          | 64  "


def test_matmul_roofline_in_bfloat16_is_measured_in_that_dtype():
    rate = common.matmul_gflops(size=64, repeats=1, dtype=torch.bfloat16)
    assert rate > 0


def test_contrast_window_reaches_the_session():
    variants = load_benchmark("inference_variants")
    args = variants.parse_args(["--untrained", "--contrast", "20", "160", "--disc-radii"])
    rows = dict(variants.variants(args))
    assert rows["contrast 20-160"]().contrast_limits == (20, 160)
    assert rows["widget (zoom-in, clicks held 1 px)"]().contrast_limits is None
