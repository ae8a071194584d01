"""Training code: the LiteMedSAM teacher, stage 1 distillation, stage 2 click training, export.

Loops run on a tiny HRSAM configuration; the teacher test needs lite_medsam.pth (not in the repo:
`python -m hrsam_model.training.fetch_data --out DIR`, then HRSAM_DATA=DIR) and is skipped without it.
"""
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from hrsam_model import build_model, load_checkpoint
from hrsam_model.training import clicks, distill, export, finetune
from hrsam_model.training.images import Source, draw_unlabelled, synthetic_shapes
from hrsam_model.training.losses import masked_mse, normalized_focal_loss

LITE_MEDSAM = Path(os.environ.get("HRSAM_DATA", "/work/data")) / "lite_medsam.pth"
SAMPLE_DIR = Path(__file__).resolve().parents[2] / "napari_hrsam" / "data"
TINY = dict(embed_dim=32, depth=2, num_heads=2, out_indices=(1,), state_dim=4)


def tiny_model():
    torch.manual_seed(0)
    return build_model("hrsam_tiny", **TINY)


# ------------------------------------------------------------------------------ teacher
@pytest.mark.skipif(not LITE_MEDSAM.is_file(), reason="lite_medsam.pth not available")
def test_teacher_embedding_gives_good_box_masks_on_nuclei():
    """LiteMedSAM's encoder (ours, from its state dict) + its decoder (loaded into ours) segment
    nuclei from box prompts: a wrong layer anywhere in the teacher gives near-zero IoU."""
    import tifffile
    import torch.nn.functional as F
    from scipy import ndimage as ndi

    from hrsam_model.training.teacher import load_teacher, teacher_input_np

    torch.set_num_threads(2)
    image = tifffile.imread(SAMPLE_DIR / "nuclei_2d.tif")[:128, :128].astype(np.float32)
    labels = tifffile.imread(SAMPLE_DIR / "nuclei_2d_mask.tif")[:128, :128]
    lo, hi = np.percentile(image, (0.5, 99.5))
    rgb = np.repeat((np.clip((image - lo) / (hi - lo), 0, 1) * 255)[..., None], 3, axis=-1)
    teacher = load_teacher(LITE_MEDSAM)
    model = build_model("hrsam_tiny")
    load_checkpoint(model, LITE_MEDSAM)  # prompt encoder + mask decoder
    with torch.no_grad():
        embedding = teacher(teacher_input_np(rgb))
    assert embedding.shape == (1, 256, 64, 64)
    scale = 1024 / 128
    ious = []
    for label, where in enumerate(ndi.find_objects(labels), start=1):
        if where is None:
            continue
        gt = labels == label
        if gt.sum() < 60 or gt[0].any() or gt[-1].any() or gt[:, 0].any() or gt[:, -1].any():
            continue  # skip tiny and border-cut nuclei
        ys, xs = np.nonzero(gt)
        box = torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=torch.float32) * scale
        with torch.no_grad():
            logits, _ = model.decode(embedding, boxes=box)
        up = F.interpolate(logits, size=(128, 128), mode="bilinear", align_corners=False)[0, 0].numpy()
        pred = up > 0
        ious.append((pred & gt).sum() / (pred | gt).sum())
    assert len(ious) >= 5
    assert np.mean(ious) > 0.7, ious


def test_teacher_missing_file_is_a_clear_error(tmp_path):
    from hrsam_model.training.teacher import load_teacher

    with pytest.raises(FileNotFoundError, match="fetch_data"):
        load_teacher(tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"something.else": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="image_encoder"):
        load_teacher(bad)


# ------------------------------------------------------------------------------ data
def test_unlabelled_draw_is_canvas_sized_rgb_and_deterministic():
    pool = [Source("grey16", (np.random.default_rng(0).random((300, 200)) * 4000).astype(np.uint16)),
            Source("volume", np.random.default_rng(1).random((40, 50, 30)).astype(np.float32), is_volume=True)]
    a, name = draw_unlabelled(pool, np.random.default_rng([0, 5]))
    b, _ = draw_unlabelled(pool, np.random.default_rng([0, 5]))
    assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3 and max(a.shape[:2]) == 1024
    np.testing.assert_array_equal(a, b)
    assert a.std() > 1  # not a flat image


def test_synthetic_shapes_labels_match_the_image():
    image, labels = synthetic_shapes(np.random.default_rng(3), 128)
    assert image.shape == labels.shape == (128, 128)
    assert labels.max() >= 1
    # every object differs from its surroundings somewhere (it is visible)
    for value in np.unique(labels)[1:]:
        assert abs(image[labels == value].mean() - image[labels == 0].mean()) > 0.005 or labels.max() > 1


# ------------------------------------------------------------------------------ losses
def test_losses_on_known_cases():
    target = torch.zeros(1, 1, 8, 8)
    target[..., 2:6, 2:6] = 1
    good = (target * 2 - 1) * 10
    assert normalized_focal_loss(good, target) < 1e-3
    assert normalized_focal_loss(-good, target) > 1.0
    s, t = torch.ones(1, 2, 2, 2), torch.zeros(1, 2, 2, 2)
    valid = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    t[..., 1, 1] = 100.0  # outside the valid area: must not count
    assert masked_mse(s, t, valid).item() == pytest.approx(1.0)


# ------------------------------------------------------------------------------ stage 1
def fake_cache(folder: Path, count=2):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        img, emb = distill.sample_paths(folder, i)
        np.save(emb, rng.standard_normal((256, 64, 64)).astype(np.float16))
        np.save(img, rng.integers(0, 255, (128, 96, 3), dtype=np.uint8))


def test_distill_batch_aligns_crops_with_the_teacher_grid(tmp_path):
    fake_cache(tmp_path)
    x, target, valid = distill.make_batch(tmp_path, [0, 1], 64, np.random.default_rng(0))
    assert x.shape == (2, 3, 64, 64) and target.shape == (2, 256, 4, 4) and valid.shape == (2, 1, 4, 4)
    # a 96 px wide image has 6 valid tokens: a 4-token crop lies fully inside
    assert valid.sum() == 2 * 16
    big_x, _, big_valid = distill.make_batch(tmp_path, [0], 1024, np.random.default_rng(0))
    assert big_valid.sum() == (128 // 16) * (96 // 16)
    assert (big_x[0, :, 128:, :] == 0).all()  # padding = mean colour = 0 after normalisation


def test_distill_steps_lower_the_loss_and_resume_keeps_the_step(tmp_path):
    fake_cache(tmp_path / "cache")
    cfg = distill.DistillConfig(steps=2, crop=64, batch=2, warmup=1, lr=2e-3, bf16=False)
    student = tiny_model().backbone
    distill.train(tmp_path / "cache", tmp_path / "run", cfg, student=student, log=lambda *_: None)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert state["step"] == 2
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert len(lines) == 2
    cfg3 = distill.DistillConfig(steps=3, crop=64, batch=2, warmup=1, lr=2e-3, bf16=False)
    messages = []
    distill.train(tmp_path / "cache", tmp_path / "run", cfg3, resume=True, student=tiny_model().backbone,
                  log=messages.append)
    assert any("resumed at step 2" in m for m in messages)
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["step"] == 3
    # the same batch again and again: the loss must go down
    x, target, valid = distill.make_batch(tmp_path / "cache", [0, 1], 64, np.random.default_rng(1))
    student = tiny_model().backbone
    opt = torch.optim.AdamW(student.parameters(), lr=2e-3)
    losses = [distill.distill_step(student, opt, x, target, valid, cfg)[0] for _ in range(6)]
    assert losses[-1] < losses[0]


# ------------------------------------------------------------------------------ stage 2
def test_click_views_and_training_loop(tmp_path):
    model = tiny_model()
    made = clicks.build_views(tmp_path / "views", model.backbone, 2, seed=0, synthetic_fraction=1.0,
                              log=lambda *_: None)
    assert made == 2
    views = clicks.load_views(tmp_path / "views")
    assert views[0]["embedding"].shape == (256, 64, 64) and views[0]["masks"]
    cfg = clicks.ClickConfig(steps=2, batch=1, max_clicks=1, warmup=1, lr=1e-3)
    clicks.train(tmp_path / "views", tmp_path / "run", cfg, None, None, model=model, views=views,
                 log=lambda *_: None)
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["step"] == 2
    assert not any(p.requires_grad for p in model.backbone.parameters())  # frozen in stage 2
    # A repeated batch with fixed prompts (first click only): the prediction must fit the mask
    # better. (The normalized focal loss itself is rescaled per step, so compare plain BCE.)
    emb, gt = clicks.draw_batch(views, np.random.default_rng(0), 1)[0]
    cfg0 = clicks.ClickConfig(max_clicks=0, box_prob=0.0)

    def bce():
        prompts = clicks.simulate(model, emb, gt, np.random.default_rng(0), 0, 0.0)
        with torch.no_grad():
            logits = clicks.decode(model, emb, prompts)
        up = torch.nn.functional.interpolate(logits, size=(1024, 1024), mode="bilinear")[..., : gt.shape[0], : gt.shape[1]]
        return torch.nn.functional.binary_cross_entropy_with_logits(up, torch.from_numpy(gt)[None, None].float())

    before = bce()
    opt = torch.optim.AdamW(clicks.trainable_parameters(model), lr=1e-3)
    for _ in range(4):
        clicks.click_step(model, opt, [(emb, gt)], np.random.default_rng(0), cfg0)
    assert bce() < before


def test_simulated_first_click_is_inside_the_object():
    gt = np.zeros((64, 64), bool)
    gt[10:30, 20:50] = True
    model = tiny_model()
    emb = torch.zeros(1, 256, 64, 64)
    prompts = clicks.simulate(model, emb, gt, np.random.default_rng(0), max_clicks=0, box_prob=0.0)
    (x, y), = prompts.points
    assert gt[int(y), int(x)] and prompts.labels == [1]
    assert 15 <= y <= 24  # the interior, far from the boundary


def test_first_click_can_keep_off_a_structure_nested_in_the_target():
    # A "brain" with a "putamen" at its centre: the official first click (the centre) lands on the
    # putamen; with the nested region excluded it lands on the brain's own tissue.
    brain = np.zeros((80, 80), bool)
    brain[5:75, 5:75] = True
    putamen = np.zeros_like(brain)
    putamen[30:50, 30:50] = True
    beside = np.zeros_like(brain)
    beside[0:4, 0:80] = True  # outside the brain: not nested
    nested = clicks.nested_region(brain, [brain, putamen, beside])
    assert (nested == putamen).all()
    assert not clicks.nested_region(putamen, [brain, putamen]).any()  # the container is not nested
    model, emb = tiny_model(), torch.zeros(1, 256, 64, 64)
    (x, y), = clicks.simulate(model, emb, brain, np.random.default_rng(0), 0, 0.0).points
    assert putamen[int(y), int(x)]
    (x, y), = clicks.simulate(model, emb, brain, np.random.default_rng(0), 0, 0.0,
                              first_region=brain & ~nested).points
    assert brain[int(y), int(x)] and not putamen[int(y), int(x)]


def test_click_gamma_sets_how_many_clicks_a_training_sample_gets():
    gt = np.zeros((64, 64), bool)
    gt[10:30, 20:50] = True
    model, emb = tiny_model(), torch.zeros(1, 256, 64, 64)

    def clicks_made(gamma):
        rng = np.random.default_rng(0)
        return [len(clicks.simulate(model, emb, gt, rng, 4, 0.0, gamma=gamma).points) for _ in range(4)]

    assert clicks_made(1e-3) == [1, 1, 1, 1]  # first click only
    assert clicks_made(1e3) == [5, 5, 5, 5]  # first click + max_clicks (a random model leaves errors)


def test_kind_balanced_weights_give_each_kind_of_target_the_same_share():
    from hrsam_model.evaluation.datasets import Instance

    images = [np.full((8, 8), v, np.uint8) for v in range(5)]
    mask = np.ones((8, 8), bool)
    # the whole brain on all five slices, the putamen on the first only
    instances = [Instance(im, mask, f"brain/train/whole_brain/axial{i:03d}", "brain") for i, im in enumerate(images)]
    instances.append(Instance(images[0], mask, "brain/train/putamen/axial000", "brain"))
    weights = clicks.kind_balanced_image_weights(instances)
    assert len(weights) == len(clicks.group_by_image(instances)) == 5
    # slice 0: 1/5 (brain) + 1 (putamen); the others 1/5 each; normalised by 2
    assert np.allclose(weights, [0.6, 0.1, 0.1, 0.1, 0.1])
    nuclei = [Instance(images[0], mask, f"nuclei/train/nucleus{i:03d}", "nuclei") for i in range(3)]
    assert np.allclose(clicks.kind_balanced_image_weights(nuclei), [1.0])


def test_finetune_crops_report_the_structures_nested_in_each_object():
    yy, xx = np.ogrid[:400, :400]
    brain = (yy - 200) ** 2 + (xx - 200) ** 2 < 150 ** 2
    putamen = (yy - 200) ** 2 + (xx - 230) ** 2 < 20 ** 2
    image = (brain * 120 + putamen * 60).astype(np.uint8)
    cfg = finetune.FinetuneConfig(synthetic_fraction=0.0, whole_image_fraction=1.0, crop=128, objects=2,
                                  unnested_first_click=1.0)
    rng, seen = np.random.default_rng(1), 0
    for _ in range(12):
        x, origin, side, inside, canvas, nested, source = finetune.draw_crop(
            {"toy": [(image, [brain, putamen])]}, rng, cfg)
        assert source == "toy"
        assert len(nested) == len(inside)
        for gt, inner in zip(inside, nested):
            assert not (inner & ~gt).any()
            if gt.sum() > 20000:  # the brain: the putamen (~10x smaller on the canvas) lies in it
                assert 0 < inner.sum() < 0.1 * gt.sum()
                seen += 1
            else:
                assert not inner.any()
    assert seen


def test_finetune_image_weights_steer_which_image_is_viewed(monkeypatch):
    yy, xx = np.ogrid[:200, :200]
    disc = (yy - 100) ** 2 + (xx - 100) ** 2 < 60 ** 2
    first, second = np.full((200, 200), 50, np.uint8), np.full((200, 200), 150, np.uint8)
    viewed = []

    def recording_view(image, *args, **kwargs):
        viewed.append(image is second)
        return clicks.make_view(image, *args, **kwargs)

    monkeypatch.setattr(finetune, "make_view", recording_view)
    cfg = finetune.FinetuneConfig(synthetic_fraction=0.0, crop=128)
    groups, rng = {"toy": [(first, [disc]), (second, [disc])]}, np.random.default_rng(0)
    for weights in ([0.0, 1.0], [1.0, 0.0]):
        viewed.clear()
        for _ in range(6):
            finetune.draw_crop(groups, rng, cfg, {"toy": np.array(weights)})
        assert viewed and all(v == bool(weights[1]) for v in viewed)


def test_finetune_window_sits_on_the_canvas_grid_and_keeps_most_of_each_object():
    rng = np.random.default_rng(3)
    masks = []
    for y, x, r in [(100, 100, 30), (320, 600, 150), (600, 1000, 20)]:
        yy, xx = np.ogrid[:640, :1024]
        masks.append((yy - y) ** 2 + (xx - x) ** 2 < r * r)
    for _ in range(20):
        (y0, x0), side, inside = finetune.crop_around((640, 1024), masks, rng, 128, objects=2)
        assert y0 % 16 == 0 and x0 % 16 == 0 and side % 16 == 0 and 128 <= side <= 1024
        assert y0 + side <= 1024 and x0 + side <= 1024  # inside the canvas
        assert 1 <= len(inside) <= 2
        assert all(m.shape == (min(side, 640 - y0), min(side, 1024 - x0)) for m in inside)
        # every returned object keeps at least 70% of itself inside the window
        assert all(any(0.7 <= part.sum() / m.sum() <= 1 for m in masks) for part in inside)


def test_decoding_a_window_in_the_canvas_frame_equals_decoding_the_canvas():
    model = tiny_model().eval()
    emb = torch.randn(1, 256, 64, 64)
    prompts = clicks.Prompts([[300.0, 200.0], [500.0, 610.0]], [1, 0], None, torch.randn(1, 1, 256, 256))
    with torch.no_grad():
        whole = clicks.decode(model, emb, prompts)
        window = finetune.decode_in_canvas(model, emb, prompts, origin=(0, 0))
        assert torch.allclose(window, whole, atol=1e-5)
        # a window: clicks given in window pixels land where the canvas PE says they are
        prompts_in_window = clicks.Prompts([[300.0 - 256, 200.0 - 128]], [1], None, None)
        prompts_in_canvas = clicks.Prompts([[300.0, 200.0]], [1], None, None)
        sub = emb[..., 8:40, 16:48]
        a = finetune.decode_in_canvas(model, sub, prompts_in_window, origin=(128, 256))
        b = finetune.decode_in_canvas(model, sub, prompts_in_canvas, origin=(0, 0))
        assert not torch.allclose(a, b)  # the frame matters (the first try got it wrong)


def test_decoding_in_a_2048_canvas_matches_inference_at_2048():
    model = tiny_model().eval()
    emb = torch.randn(1, 256, 128, 128)  # the grid of a 2048 px input
    prompts = clicks.Prompts([[1500.0, 300.0], [200.0, 1800.0]], [1, 0], None, None)
    with torch.no_grad():
        whole = clicks.decode(model, emb, prompts)
        window = finetune.decode_in_canvas(model, emb, prompts, origin=(0, 0), canvas=2048)
        assert torch.allclose(window, whole, atol=1e-5)
        # the same top-left window read as part of a 1024 canvas is a different frame
        corner = emb[..., :64, :64]
        near = clicks.Prompts([[500.0, 300.0]], [1], None, None)
        large = finetune.decode_in_canvas(model, corner, near, origin=(0, 0), canvas=2048)
        assert not torch.allclose(large, finetune.decode_in_canvas(model, corner, near, origin=(0, 0)))


@pytest.mark.parametrize("device,max_clicks,click_gamma", [
    ("cpu", 1, 0.6),
    # on a GPU, enough simulated clicks that the no-grad decode loop surely runs there too
    pytest.param("cuda", 3, 0.9, marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")),
])
def test_finetune_trains_the_backbone_and_resumes(tmp_path, device, max_clicks, click_gamma):
    model = tiny_model()
    before = {n: p.detach().clone() for n, p in model.backbone.named_parameters()}
    cfg = finetune.FinetuneConfig(steps=3, stop_step=2, batch=1, objects=1, crop=128, warmup=1, lr=1e-3,
                                  max_clicks=max_clicks, click_gamma=click_gamma, synthetic_fraction=1.0,
                                  device=device)
    finetune.train(None, tmp_path / "run", cfg, model=model, groups={}, log=lambda *_: None)
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["step"] == 2
    assert all(p.device.type == device for p in model.parameters())
    changed = [n for n, p in model.backbone.named_parameters() if not torch.equal(p.cpu(), before[n])]
    assert len(changed) > len(before) // 2  # unfrozen: the backbone learns in this stage
    lines = []
    finetune.train(None, tmp_path / "run", finetune.FinetuneConfig(**{**cfg.__dict__, "stop_step": 0}),
                   resume=True, model=tiny_model(), groups={}, log=lines.append)
    assert lines[0] == "resumed at step 2"
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["step"] == 3
    exported = export.export(tmp_path / "run" / "model.pt", tmp_path / "tiny.safetensors", overrides=TINY)
    assert next(exported.parameters()).device.type == "cpu"  # the export reads weights saved on a GPU


def test_click_loss_counts_only_the_pixels_around_the_clicks():
    near = finetune.click_neighbourhood([[10, 4], [0, 0]], (12, 16), radius=2)
    assert near[4, 10] and near[4, 12] and near[2, 10] and not near[4, 13] and not near[7, 10]
    assert near[0, 0] and near[2, 0] and not near[3, 0]  # a click at the corner keeps its quarter disk
    target = torch.zeros(1, 1, 12, 16)
    target[..., 4, 10] = 1
    logits = torch.full((1, 1, 12, 16), -8.0)
    logits[..., 0, 0] = 8.0  # wrong only at the corner click
    logits[..., 9:, :] = 8.0  # wrong far from both clicks (rows 9-11): must not count
    loss = finetune.click_loss(logits, target, near)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    wrong, right = bce(torch.tensor(8.0), torch.tensor(0.0)), bce(torch.tensor(-8.0), torch.tensor(0.0))
    centre_right = bce(torch.tensor(-8.0), torch.tensor(1.0))  # the clicked pixel itself is missed
    n = int(near.sum())
    assert loss.item() == pytest.approx(((n - 2) * right + wrong + centre_right).item() / n, rel=1e-5)
    assert finetune.click_loss(logits, target, np.zeros((12, 16), bool)).item() == 0.0


def test_finetune_step_with_the_click_loss_trains(tmp_path):
    model = tiny_model()
    cfg = finetune.FinetuneConfig(steps=1, batch=1, objects=1, crop=128, warmup=1, lr=1e-3, max_clicks=2,
                                  synthetic_fraction=1.0, click_loss_weight=1.0)
    before = {n: p.detach().clone() for n, p in model.decode_head.named_parameters()}
    finetune.train(None, tmp_path / "run", cfg, model=model, groups={}, log=lambda *_: None)
    record = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    assert np.isfinite(record["loss"]) and record["loss"] > 0
    assert any(not torch.equal(p, before[n]) for n, p in model.decode_head.named_parameters())


def test_anchor_loss_is_zero_where_the_masks_agree_and_pulls_towards_the_anchor():
    anchor = torch.tensor([[[[4.0, -4.0], [0.0, 2.0]]]])
    assert finetune.anchor_loss(anchor.clone(), anchor).abs().item() < 1e-6
    student = torch.zeros_like(anchor, requires_grad=True)
    loss = finetune.anchor_loss(student, anchor)
    assert loss.item() > 0.05
    loss.backward()
    assert (torch.sign(-student.grad) == torch.sign(anchor)).view(-1)[[0, 1, 3]].all()  # steps towards it


def test_finetune_anchor_term_holds_the_first_click_of_the_anchored_sources(tmp_path):
    """At the start the model is its anchor: the term is 0 and so is its gradient, so the first step
    matches a run without it; from the second step on it adds to the loss of an anchored source
    only."""
    yy, xx = np.ogrid[:256, :256]
    disc = (yy - 128) ** 2 + (xx - 110) ** 2 < 40 ** 2
    image = (disc * 150 + 40).astype(np.uint8)
    base = dict(steps=3, batch=1, objects=1, crop=128, warmup=1, lr=1e-3, max_clicks=2, synthetic_fraction=0.0)

    def losses(name, source, **extra):
        cfg = finetune.FinetuneConfig(**base, **extra)
        finetune.train(None, tmp_path / name, cfg, model=tiny_model(), groups={source: [(image, [disc])]},
                       log=lambda *_: None)
        return [json.loads(line)["loss"] for line in (tmp_path / name / "log.jsonl").read_text().splitlines()]

    plain = losses("plain", "nuclei")
    anchored = losses("anchored", "nuclei", anchor_weight=5.0)
    assert anchored[0] == pytest.approx(plain[0], rel=1e-4)
    assert anchored[1] > plain[1] + 1e-6 or anchored[2] > plain[2] + 1e-6
    elsewhere = losses("elsewhere", "bbbc007", anchor_weight=5.0)  # not one of the default anchored sources
    assert elsewhere == pytest.approx(losses("elsewhere-plain", "bbbc007"), rel=1e-4)
    with pytest.raises(ValueError, match="sources names"):
        losses("unknown", "nuclei", anchor_weight=1.0, anchor_sources="nope")


def test_finetune_asks_for_a_missing_gpu_clearly(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SystemExit):
        finetune.main(["--init", "x.safetensors", "--out", str(tmp_path / "run"), "--device", "cuda"])
    assert "no CUDA GPU is available" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------ export
def test_export_round_trip(tmp_path):
    model = tiny_model()
    torch.save(model.state_dict(), tmp_path / "model.pt")
    out = tmp_path / "w.safetensors"
    loaded = export.export(tmp_path / "model.pt", out, "hrsam_tiny", overrides=TINY)
    assert out.is_file()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a = model.eval().encode(x)
        b = loaded.eval().encode(x)
    assert torch.allclose(a, b, atol=5e-2)


def test_average_weights_is_the_mean_of_the_files(tmp_path):
    first, second = tiny_model(), tiny_model()
    with torch.no_grad():
        for p in second.parameters():
            p.add_(1.0)
    paths = []
    for i, model in enumerate((first, second)):
        torch.save(model.state_dict(), tmp_path / f"m{i}.pt")
        paths.append(tmp_path / f"w{i}.safetensors")
        export.export(tmp_path / f"m{i}.pt", paths[-1], "hrsam_tiny", overrides=TINY)
    mean = export.average_weights(paths, "hrsam_tiny", overrides=TINY)
    a, b = (export.average_weights([p, p], "hrsam_tiny", overrides=TINY) for p in paths)
    for key, value in mean.items():
        if value.is_floating_point():
            assert torch.allclose(value, (a[key] + b[key]) / 2)
    name = next(n for n, _ in first.named_parameters())
    assert torch.allclose(mean[name], first.state_dict()[name] + 0.5, atol=1e-2)  # fp16 storage
    with pytest.raises(ValueError, match="two"):
        export.average_weights(paths[:1], "hrsam_tiny", overrides=TINY)


def test_finetune_source_weights_set_how_often_each_dataset_is_drawn():
    names = ["nuclei", "ecoli", "brain"]
    assert finetune.source_probabilities(names, "") is None  # uniform, the shipped runs' stream
    np.testing.assert_allclose(finetune.source_probabilities(names, "ecoli=2"), [0.25, 0.5, 0.25])
    np.testing.assert_allclose(finetune.source_probabilities(names, "nuclei=0,brain=0"), [0, 1, 0])
    for bad in ("ecol=2", "nuclei=-1", "nuclei=0,ecoli=0,brain=0"):
        with pytest.raises(ValueError):
            finetune.source_probabilities(names, bad)


def test_zoom_views_frame_an_object_like_inference_zoom_in():
    rng = np.random.default_rng(5)
    yy, xx = np.ogrid[:700, :1000]
    masks = [(yy - 300) ** 2 + (xx - 400) ** 2 < 12 ** 2, (yy - 500) ** 2 + (xx - 700) ** 2 < 150 ** 2]
    image = (np.any(masks, axis=0) * 200).astype(np.uint8)
    for _ in range(10):
        y0, y1, x0, x1 = clicks.zoom_window(image.shape, masks, rng)
        held = [m for m in masks if m[y0:y1, x0:x1].sum() == m.sum()]
        assert held, "the window holds its whole object"
        side = max(y1 - y0, x1 - x0)
        # a small object gets the minimum window (150-260 px); a big one 1.2-2x its extent
        big = any(m is masks[1] for m in held)
        assert 1.2 * 299 <= side <= 2.0 * 301 if big else 150 <= side <= 260
    cfg = finetune.FinetuneConfig(zoom_view_fraction=1.0, synthetic_fraction=0.0, crop=128)
    groups = {"toy": [(image, masks)]}
    x, origin, side, inside, canvas, nested, _ = finetune.draw_crop(groups, rng, cfg)
    assert canvas == 1024 and inside and x.shape[-1] == side
    # the view is a zoomed window: even the 24 px object now spans over 80 canvas pixels (>= 3.9x)
    assert all(np.ptp(np.nonzero(m)[0]) > 80 for m in inside)
