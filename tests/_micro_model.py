"""A seeded, very small HRSAM for command-line and store tests (seconds, not minutes).

Same code paths as hrsam_tiny; random weights, so tests using it never judge quality.
Seeded: two builds in one test give identical weights (stores made by one command are
accepted by the next, as with real weights)."""
import torch

from hrsam_model import build_model, bundled_weights_path

MICRO = dict(embed_dim=32, depth=2, num_heads=1, out_indices=(1,), state_dim=8)


def micro_model(name="hrsam_tiny", pretrained=False, checkpoint=None, seed=0):
    """Stand-in for napari_hrsam.cli.model.build_model with the same failure modes:
    missing bundled file -> FileNotFoundError, bad checkpoint -> load_checkpoint's error."""
    if pretrained:
        path = bundled_weights_path(name)
        if path is None:
            raise ValueError(f"no weights are bundled for {name!r}")
        if not path.is_file():
            raise FileNotFoundError(f"bundled weights missing: {path}")
    torch.manual_seed(seed)
    return build_model(name, checkpoint=checkpoint, **MICRO)
