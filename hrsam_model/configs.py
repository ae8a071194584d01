"""Named HRSAM architectures.

`hrsam_vit_b` and `hrsam_plusplus_vit_b` follow the official configs
(configs/hrsam/hrsam.py and hrsam_plusplus.py) so that the released checkpoints load
as they are. `hrsam_tiny` is the same family, shrunk to run on a laptop CPU; it is
the bundled default.
"""
from dataclasses import dataclass, field, replace

DEFAULT_MODEL = "hrsam_tiny"  # the bundled model
TARGET_SIZES = (1024, 2048, 3072, 4096)  # model input sizes (px); multiples of the 16 px patch
DEVICES = ("auto", "cpu", "cuda", "mps")  # "auto": cuda > mps > cpu


@dataclass(frozen=True)
class BackboneConfig:
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    patch_size: int = 16
    # img_size only sizes the absolute pos-embed grid (224 / 16 = 14x14, MAE layout)
    # and the RoPE position scale; real inputs are 1024 px and larger.
    img_size: int = 224
    window_size: int = 16
    out_indices: tuple = (2, 5, 8, 11)
    final_embed_dim: int = 256
    state_dim: int = 32
    extend_ratio: int = 3
    # HRSAM++: extra scales at fixed absolute sizes, e.g. (512,) for a 512x512 copy.
    downsample_sizes: tuple = ()
    drop_path_rate: float = 0.0


@dataclass(frozen=True)
class PromptConfig:
    embed_dim: int = 256
    image_embed_size: int = 64
    input_image_size: int = 1024
    mask_in_dim: int = 16


@dataclass(frozen=True)
class DecoderConfig:
    embed_dim: int = 256
    depth: int = 2
    num_heads: int = 8
    mlp_dim: int = 2048
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256


@dataclass(frozen=True)
class ModelConfig:
    name: str
    backbone: BackboneConfig
    prompt: PromptConfig = field(default_factory=PromptConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    # The file under hrsam_model/weights that pretrained=True loads, if any.
    weights_file: str = ""


_CONFIGS = {
    "hrsam_vit_b": ModelConfig("hrsam_vit_b", BackboneConfig()),
    "hrsam_plusplus_vit_b": ModelConfig(
        "hrsam_plusplus_vit_b", BackboneConfig(downsample_sizes=(512,))
    ),
    # Small enough for a 2-core CPU (about a quarter second per 1024 px image),
    # same code paths: windows of 16 with shifts, RoPE, cycle-scan SSM, fusion neck.
    "hrsam_tiny": ModelConfig(
        "hrsam_tiny",
        BackboneConfig(
            embed_dim=192,
            depth=6,
            num_heads=3,
            out_indices=(1, 3, 5),
            state_dim=16,
        ),
        weights_file="hrsam_tiny.safetensors",
    ),
}


def available_models():
    return sorted(_CONFIGS)


def get_config(name, **backbone_overrides):
    """Return the ModelConfig called `name`; keyword overrides change backbone fields."""
    if name not in _CONFIGS:
        raise ValueError(
            f"Unknown model {name!r}; choose one of {', '.join(available_models())}"
        )
    config = _CONFIGS[name]
    if backbone_overrides:
        config = replace(config, backbone=replace(config.backbone, **backbone_overrides))
    return config
