"""The encoder's bf16 path on a CPU that has it keeps the masks: on the bundled validation crop the
click figures stay within 0.005 mIoU of fp32 (the project's rule for a lower-precision path)."""
import numpy as np
import pytest
import tifffile
import torch

from hrsam_model import Predictor, build_model
from hrsam_model.device import cpu_bf16_supported, encoder_autocast_dtype
from hrsam_model.evaluation.datasets import Instance
from hrsam_model.evaluation.runner import evaluate
from test_bundled_model import DATA


def test_precision_choice_and_its_switch(monkeypatch):
    cpu = torch.device("cpu")
    assert encoder_autocast_dtype(cpu, "fp32") is None
    monkeypatch.setenv("HRSAM_CPU_BF16", "0")
    assert encoder_autocast_dtype(cpu, "auto") is None
    monkeypatch.delenv("HRSAM_CPU_BF16")
    assert encoder_autocast_dtype(cpu, "auto") == (torch.bfloat16 if cpu_bf16_supported() else None)
    with pytest.raises(ValueError, match="unknown precision"):
        encoder_autocast_dtype(cpu, "fp8")
    if not cpu_bf16_supported():
        with pytest.raises(ValueError, match="no native bf16"):
            encoder_autocast_dtype(cpu, "bf16")


@pytest.mark.skipif(not cpu_bf16_supported(), reason="this CPU has no native bf16: the path is never taken")
def test_bf16_keeps_the_click_figures_within_half_a_point():
    image = tifffile.imread(DATA / "nuclei_val_crop.tif")
    labels = tifffile.imread(DATA / "nuclei_val_crop_labels.tif")
    nuclei = [Instance(image, labels == v, f"nucleus{v}", "nuclei") for v in np.unique(labels) if v]
    model = build_model("hrsam_tiny", pretrained=True)
    curves = {}
    for precision in ("fp32", "bf16"):
        results = evaluate(Predictor(model, device="cpu", precision=precision), nuclei, num_clicks=5)
        curves[precision] = np.array([r.ious for r in results]).mean(axis=0)
    assert np.abs(curves["fp32"] - curves["bf16"]).max() <= 0.005, curves


@pytest.mark.skipif(not cpu_bf16_supported(), reason="this CPU has no native bf16: the path is never taken")
def test_bf16_batch_decoding_keeps_segment_alls_objects(monkeypatch):
    """Batches of prompts (segment all) decode under bf16 where the CPU has it: on the bundled crop
    they find the objects that fp32 decoding finds, with the same masks to within a few pixels."""
    from hrsam_model import predictor as predictor_module
    from napari_hrsam import Session

    image = tifffile.imread(DATA / "nuclei_val_crop.tif")
    predictor = Predictor(build_model("hrsam_tiny", pretrained=True), device="cpu", precision="bf16")
    found = {}
    for name, min_batch in (("bf16", predictor_module.BF16_DECODE_MIN_BATCH), ("fp32", 10**9)):
        monkeypatch.setattr(predictor_module, "BF16_DECODE_MIN_BATCH", min_batch)
        session = Session(image, predictor)
        found[name] = [f.mask.dense() for f in session.compute_segment_all(session.segment_all_request()).objects]
    best = [max((a & b).sum() / (a | b).sum() for b in found["bf16"]) for a in found["fp32"]]
    shared = [iou for iou in best if iou >= 0.5]
    assert len(found["fp32"]) >= 5 and len(shared) >= len(found["fp32"]) - 1 and len(found["bf16"]) <= len(shared) + 1
    assert min(shared) >= 0.97, best  # an object both find has the same mask to within a few pixels
