"""build_model: a named architecture, optionally with the bundled or a given checkpoint."""
from pathlib import Path

from .checkpoints import load_checkpoint
from .configs import get_config
from .model import HRSAM

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def bundled_weights_path(name="hrsam_tiny"):
    config = get_config(name)
    if not config.weights_file:
        return None
    return WEIGHTS_DIR / config.weights_file


def build_model(name="hrsam_tiny", pretrained=False, checkpoint=None, **backbone_overrides):
    """Build `name` ("hrsam_tiny", "hrsam_vit_b", "hrsam_plusplus_vit_b").

    pretrained=True loads the weights shipped with the package (hrsam_tiny only);
    checkpoint=PATH loads a file (official HRSAM/HRSAM++ .pth, SAM/LiteMedSAM for the
    decoder, or .safetensors). Never downloads anything.
    """
    model = HRSAM(get_config(name, **backbone_overrides))
    if pretrained:
        path = bundled_weights_path(name)
        if path is None:
            raise ValueError(
                f"no weights are bundled for {name!r}; pass checkpoint=PATH to an official file "
                "(model hubs are not used)"
            )
        if not path.is_file():
            raise FileNotFoundError(
                f"bundled weights missing: {path}. Reinstall napari-hrsam, or pass checkpoint=PATH"
            )
        load_checkpoint(model, path)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    return model.eval()
