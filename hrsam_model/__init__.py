"""HRSAM in plain PyTorch: model, checkpoints and an interactive predictor."""
from .build import build_model, bundled_weights_path
from .checkpoints import load_checkpoint, save_checkpoint
from .configs import available_models, get_config
from .device import resolve_device
from .model import HRSAM, count_parameters
from .predictor import ImageEmbedding, Prediction, Predictor

__all__ = [
    "HRSAM", "build_model", "bundled_weights_path", "load_checkpoint", "save_checkpoint",
    "available_models", "get_config", "count_parameters", "Predictor", "Prediction",
    "ImageEmbedding", "resolve_device",
]
