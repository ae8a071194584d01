"""Loading official, SAM/LiteMedSAM and our own weight files; refusing wrong ones cleanly."""
import collections

import pytest
import torch

import hrsam_model.build as build_module
from hrsam_model import build_model, load_checkpoint, save_checkpoint
from test_model import perturbed


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_safetensors_round_trip_is_bit_exact(tmp_path):
    model = perturbed(build_model("hrsam_tiny"))
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(model, path)
    other = build_model("hrsam_tiny")
    report = load_checkpoint(other, path)
    assert report.source_format == "hrsam" and not report.missing and not report.unexpected
    assert same(snapshot(model), snapshot(other))


@pytest.mark.parametrize("name", ["hrsam_vit_b", "hrsam_plusplus_vit_b"])
def test_official_mmengine_checkpoint_loads_as_it_is(tmp_path, name):
    source = perturbed(build_model(name), scale=0.01)
    path = tmp_path / "iter_40000.pth"
    torch.save({"meta": {"iter": 40000}, "state_dict": collections.OrderedDict(source.state_dict())}, path)
    del source
    target = build_model(name)
    report = load_checkpoint(target, path)
    assert len(report.loaded) == (368 if name == "hrsam_vit_b" else 432)
    reference = torch.load(path, weights_only=True)["state_dict"]
    assert same(dict(reference), snapshot(target))


def test_sam_layout_loads_prompt_encoder_and_decoder_only(tmp_path):
    donor = perturbed(build_model("hrsam_tiny"), seed=3)
    sam = {}
    for key, value in donor.state_dict().items():
        if key.startswith("neck."):
            key = "prompt_encoder." + key.removeprefix("neck.")
            key = key.replace("pos_embed_layer.", "pe_layer.").replace("point_embeds.", "point_embeddings.")
        elif key.startswith("decode_head."):
            key = "mask_decoder." + key.removeprefix("decode_head.")
        else:
            continue
        sam[key] = value
    sam["image_encoder.patch_embed.proj.weight"] = torch.zeros(64, 3, 4, 4)  # a TinyViT/SAM ViT part
    path = tmp_path / "lite_medsam.pth"
    torch.save(sam, path)
    model = build_model("hrsam_tiny")
    backbone_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    report = load_checkpoint(model, path)
    assert report.source_format == "sam" and report.skipped == ["image_encoder.patch_embed.proj.weight"]
    for key, value in donor.state_dict().items():
        if key.startswith(("neck.", "decode_head.")):
            assert torch.equal(model.state_dict()[key], value), key
    assert same(backbone_before, model.backbone.state_dict())


def test_wrong_architecture_names_the_mismatch_and_changes_nothing(tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(build_model("hrsam_tiny"), path)
    model = build_model("hrsam_plusplus_vit_b", embed_dim=64, depth=2, num_heads=2, out_indices=(1,), state_dim=8)
    before = snapshot(model)
    with pytest.raises(ValueError) as err:
        load_checkpoint(model, path)
    message = str(err.value)
    assert "of another shape such as backbone." in message and "missing 30 tensors such as backbone.ss_mamba" in message
    assert "The file holds an HRSAM backbone of width 192 and depth 6 (model hrsam_tiny)" in message
    assert same(before, snapshot(model))
    report = load_checkpoint(model, path, strict=False)  # the decoder still fits
    assert "decode_head.iou_token.weight" in report.loaded and "backbone.pos_embed" in report.unexpected


@pytest.mark.parametrize("damage", ["truncated", "garbage", "code", "not_a_state_dict", "unknown_keys"])
def test_bad_files_raise_clear_errors(tmp_path, damage):
    good = tmp_path / "good.safetensors"
    save_checkpoint(build_model("hrsam_tiny"), good)
    bad = tmp_path / ("bad.safetensors" if damage == "truncated" else "bad.pth")
    if damage == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif damage == "garbage":
        bad.write_bytes(b"\x00not a checkpoint" * 100)
    elif damage == "code":
        torch.save({"state_dict": collections.Counter(a=1)}, bad)  # weights_only refuses arbitrary classes
    elif damage == "not_a_state_dict":
        torch.save([1, 2, 3], bad)
    else:
        torch.save({"encoder.weight": torch.zeros(3)}, bad)
    model = build_model("hrsam_tiny")
    before = snapshot(model)
    with pytest.raises(ValueError, match=str(bad.name)):
        load_checkpoint(model, bad)
    assert same(before, snapshot(model))


def assert_plain_line(message, path):
    """What the widget's notification and the CLI's one error line show: no terminal codes, no
    advice that neither offers (weights_only, strict=False, add_safe_globals)."""
    assert str(path) in message and len(message.splitlines()) == 1, message
    assert "\x1b" not in message and "weights_only" not in message and "strict" not in message, message
    assert "safe_globals" not in message and len(message.replace(str(path), "")) < 400, message


def test_garbage_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_bytes(b"\x00not a checkpoint" * 100)
    with pytest.raises(ValueError, match="not a PyTorch or safetensors checkpoint") as err:
        load_checkpoint(build_model("hrsam_tiny"), path)
    assert_plain_line(str(err.value), path)


def test_pickle_with_a_disallowed_global_is_refused_plainly(tmp_path):
    import fractions

    path = tmp_path / "objects.pth"
    torch.save({"state_dict": {"scale": fractions.Fraction(1, 3)}}, path)
    with pytest.raises(ValueError, match=r"Python objects \(fractions.Fraction\)") as err:
        load_checkpoint(build_model("hrsam_tiny"), path)
    assert_plain_line(str(err.value), path)


def test_state_dict_with_wrong_keys_says_how_many_and_which(tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(build_model("hrsam_tiny"), path)
    model = build_model("hrsam_plusplus_vit_b", embed_dim=64, depth=2, num_heads=2, out_indices=(1,), state_dim=8)
    with pytest.raises(ValueError) as err:
        load_checkpoint(model, path)
    message = str(err.value)
    assert_plain_line(message, path)
    assert "missing 30 tensors such as backbone.ss_mamba" in message and "100 unexpected such as backbone." in message
    assert "is this an HRSAM checkpoint of the chosen model?" in message
    unknown = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(3), "head.bias": torch.zeros(2)}, unknown)
    with pytest.raises(ValueError, match="not an HRSAM, SAM or LiteMedSAM checkpoint") as err:
        load_checkpoint(model, unknown)
    assert_plain_line(str(err.value), unknown)


def test_widget_model_loader_passes_the_plain_line_on(tmp_path):
    """The widget shows str(error) of the lazily built model as its notification."""
    import fractions

    from napari_hrsam.engine.model_choice import ModelChoice, ModelStore

    path = tmp_path / "objects.pth"
    torch.save({"scale": fractions.Fraction(1, 3)}, path)
    lazy = ModelStore().predictor(ModelChoice(checkpoint=str(path), device="cpu"))
    with pytest.raises(ValueError) as err:
        lazy.embed(torch.zeros(32, 32).numpy())
    assert_plain_line(str(err.value), path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(build_model("hrsam_tiny"), tmp_path / "nope.pth")


def test_bundled_weights_missing_or_corrupt(tmp_path, monkeypatch):
    monkeypatch.setattr(build_module, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="bundled weights missing"):
        build_model("hrsam_tiny", pretrained=True)
    (tmp_path / "hrsam_tiny.safetensors").write_bytes(b"corrupt")
    with pytest.raises(ValueError, match="corrupt or truncated"):
        build_model("hrsam_tiny", pretrained=True)
    with pytest.raises(ValueError, match="no weights are bundled"):
        build_model("hrsam_vit_b", pretrained=True)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="hrsam_tiny"):
        build_model("hrsam_huge")
