"""The HRSAM architectures: official key layout, parameter counts, and numerical
equality with a literal restatement of the official forward pass."""
import copy

import numpy as np
import pytest
import torch

from fixtures.official_layout import official_layout
from hrsam_model import Predictor, build_model, count_parameters
from official_reference import backbone_forward, decode_head_forward


def perturbed(model, scale=0.05, seed=0):
    """Move every parameter off its initial value so no term can hide at zero or one."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)
    return model


@pytest.mark.parametrize("name, plusplus, keys", [("hrsam_vit_b", False, 368), ("hrsam_plusplus_vit_b", True, 432)])
def test_state_dict_matches_the_official_layout(name, plusplus, keys):
    expected = official_layout(plusplus)
    state = build_model(name).state_dict()
    assert len(expected) == keys
    assert sorted(state) == sorted(expected)
    wrong = {k: tuple(v.shape) for k, v in state.items() if tuple(v.shape) != expected[k]}
    assert wrong == {}


def test_parameter_counts_match_the_official_ones():
    hrsam, plus = build_model("hrsam_vit_b"), build_model("hrsam_plusplus_vit_b")
    assert round(count_parameters(hrsam.backbone) / 1e6, 2) == 96.37
    assert round(count_parameters(plus.backbone) / 1e6, 2) == 106.93
    assert round(count_parameters(hrsam.decode_head) / 1e6, 2) == 4.06
    assert round(count_parameters(hrsam.neck) / 1e3, 1) == 6.2


@pytest.mark.parametrize(
    "name, overrides, shape",
    [
        ("hrsam_tiny", {}, (2, 3, 384, 320)),  # 24x20 tokens: bottom/right padding in both layers
        ("hrsam_tiny", {}, (1, 3, 80, 592)),  # 5x37 tokens: a strip narrower than one window
        ("hrsam_vit_b", {}, (1, 3, 256, 320)),  # the real ViT-B, small input
        ("hrsam_plusplus_vit_b",
         dict(embed_dim=64, depth=4, num_heads=2, out_indices=(1, 3), state_dim=8, downsample_sizes=(128,)),
         (2, 3, 208, 272)),
    ],
)
def test_backbone_equals_the_official_forward(name, overrides, shape):
    torch.manual_seed(0)
    model = perturbed(build_model(name, **overrides))
    x = torch.randn(*shape)
    with torch.no_grad():
        ours = model.encode(x)
        ref = backbone_forward(copy.deepcopy(model.backbone).double(), x.double())
    assert ours.shape == (shape[0], 256, shape[2] // 16, shape[3] // 16)
    rel = ((ours.double() - ref).norm() / ref.norm()).item()
    assert rel < 5e-6, rel


def test_layernorm_eps_matters_to_the_reference():
    """Guards the test above: a model with LayerNorm eps 1e-6 must fail the 5e-6 bar."""
    torch.manual_seed(1)
    model = perturbed(build_model("hrsam_tiny"))
    x = torch.randn(1, 3, 256, 256)
    ref = backbone_forward(copy.deepcopy(model.backbone).double(), x.double())
    for module in model.modules():
        if isinstance(module, torch.nn.LayerNorm):
            module.eps = 1e-6
    with torch.no_grad():
        ours = model.encode(x)
    assert ((ours.double() - ref).norm() / ref.norm()).item() > 5e-6


def test_decode_single_mask_is_token_zero_and_prompts_matter():
    torch.manual_seed(0)
    model = perturbed(build_model("hrsam_tiny"), scale=0.2)
    emb = torch.randn(1, 256, 64, 64)
    pts, lbl = torch.tensor([[[300.0, 500.0]]]), torch.tensor([[1]])
    with torch.no_grad():
        single, iou1 = model.decode(emb, pts, lbl)
        multi, iou4 = model.decode(emb, pts, lbl, multimask=True)
        moved, _ = model.decode(emb, torch.tensor([[[700.0, 100.0]]]), lbl)
        with_mask, _ = model.decode(emb, pts, lbl, mask_input=torch.randn(1, 1, 256, 256))
        boxed, _ = model.decode(emb, boxes=torch.tensor([[100.0, 100.0, 600.0, 400.0]]))
    assert single.shape == (1, 1, 256, 256) and multi.shape == (1, 4, 256, 256)
    assert torch.allclose(single, multi[:, :1], atol=1e-4) and torch.allclose(iou1, iou4[:, :1], atol=1e-5)
    assert not torch.allclose(single, moved) and not torch.allclose(single, with_mask)
    assert boxed.shape == (1, 1, 256, 256)
    with pytest.raises(ValueError):
        model.decode(emb)


@pytest.mark.parametrize("points", [1, 9, 20])  # 20 clicks: too many prompt tokens to fold
def test_mask_decoder_equals_the_plain_sam_formulation(points):
    """Our decoder folds the image-side projections into the prompt side and upscales in
    channels-last order; outputs and gradients must equal SAM's literal order (float64)."""
    head = perturbed(build_model("hrsam_tiny").decode_head, scale=0.2).double()
    gen = torch.Generator().manual_seed(points)
    emb = torch.randn(2, 256, 12, 20, generator=gen, dtype=torch.float64, requires_grad=True)
    pe = torch.randn(1, 256, 12, 20, generator=gen, dtype=torch.float64)
    sparse = torch.randn(2, points + 1, 256, generator=gen, dtype=torch.float64)
    dense = torch.randn(2, 256, 12, 20, generator=gen, dtype=torch.float64)
    ref_masks, ref_iou = decode_head_forward(head, emb, pe, sparse, dense)
    masks, iou = head(emb, pe, sparse, dense, multimask=True)
    single, single_iou = head(emb, pe, sparse, dense, multimask=False)
    assert masks.shape == ref_masks.shape == (2, 4, 48, 80) and single.shape == (2, 1, 48, 80)
    assert torch.allclose(masks, ref_masks, rtol=1e-9, atol=1e-9) and torch.allclose(iou, ref_iou, atol=1e-9)
    assert torch.allclose(single, ref_masks[:, :1], atol=1e-9) and torch.allclose(single_iou, ref_iou[:, :1])
    ref_grad, = torch.autograd.grad(ref_masks[:, 0].square().sum(), emb)
    grad, = torch.autograd.grad(single.square().sum(), emb)
    assert (grad - ref_grad).norm() / ref_grad.norm() < 1e-10  # stage-2 training goes through it too


def test_kept_image_pe_follows_the_loaded_weights():
    """The decoder's dense PE is kept between clicks; loading other weights must not reuse it."""
    model = build_model("hrsam_tiny").eval()
    other = perturbed(build_model("hrsam_tiny"), scale=0.5, seed=3).eval()
    emb, pts, lbl = torch.randn(1, 256, 128, 128), torch.tensor([[[900.0, 1500.0]]]), torch.tensor([[1]])
    with torch.inference_mode():
        model.decode(emb, pts, lbl)  # fills the kept PE for the 128 grid
        model.load_state_dict(other.state_dict())
        after_load, _ = model.decode(emb, pts, lbl)
        expected, _ = other.decode(emb, pts, lbl)
    assert torch.allclose(after_load, expected, atol=1e-4)
    model.train()  # a PE made under inference_mode still serves training
    logits, _ = model.decode(emb.requires_grad_(), pts, lbl)
    logits.sum().backward()
    assert emb.grad is not None and emb.grad.abs().sum() > 0


def test_decode_at_2048_uses_a_128_grid():
    model = build_model("hrsam_tiny")
    with torch.no_grad():
        logits, _ = model.decode(torch.randn(1, 256, 128, 128), torch.tensor([[[1500.0, 200.0]]]),
                                 torch.tensor([[1]]), mask_input=torch.randn(1, 1, 512, 512))
    assert logits.shape == (1, 1, 512, 512)
    pe = model.neck.image_pe((128, 128))
    base = model.neck.pos_embed_layer.grid((64, 64))[None]
    assert torch.allclose(pe, torch.nn.functional.interpolate(base, size=(128, 128), mode="bilinear"))


@pytest.mark.parametrize("shape", [(100, 75), (700, 1100), (75, 100, 3)])
def test_masks_come_back_on_the_original_grid(shape):
    pred = Predictor(build_model("hrsam_tiny"), device="cpu")
    image = (np.random.default_rng(0).random(shape) * 255).astype(np.uint8)
    pred.set_image(image)
    res = pred.predict(points=[[shape[1] // 2, shape[0] // 2]], labels=[1])
    assert res.mask.shape == shape[:2] and res.mask.dtype == bool
    assert res.logits.shape == (1, 256, 256)


def test_encoder_rejects_sizes_that_are_not_multiples_of_16():
    with pytest.raises(ValueError, match="multiples of 16"):
        build_model("hrsam_tiny").encode(torch.zeros(1, 3, 100, 96))
