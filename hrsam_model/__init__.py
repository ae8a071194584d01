"""HRSAM in plain PyTorch: model, checkpoints and an interactive predictor.

    from hrsam_model import build_model, Predictor

The names below load their modules (and torch) on first use, so the torch-free parts
(``hrsam_model.configs``, ``hrsam_model.pixels``) import without torch.
"""
from importlib import import_module

_PUBLIC = {
    "HRSAM": "model", "count_parameters": "model",
    "build_model": "build", "bundled_weights_path": "build",
    "load_checkpoint": "checkpoints", "save_checkpoint": "checkpoints",
    "available_models": "configs", "get_config": "configs",
    "resolve_device": "device",
    "Predictor": "predictor", "Prediction": "predictor", "ImageEmbedding": "predictor",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'hrsam_model' has no attribute {name!r}")
    value = getattr(import_module(f".{_PUBLIC[name]}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
