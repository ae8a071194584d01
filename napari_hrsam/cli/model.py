"""The model behind every ``hrsam`` command: bundled weights, a checkpoint, or (loudly) none."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

RANDOM_WARNING = ("WARNING: bundled weights not found, using random weights: results are "
                  "noise. Reinstall napari-hrsam or pass --checkpoint PATH.")


@dataclass
class LoadedModel:
    predictor: object  # hrsam_model.Predictor
    weights: str  # "bundled" | "checkpoint <path>" | "RANDOM"
    seconds: float

    @property
    def random(self) -> bool:
        return self.weights == "RANDOM"

    def describe(self) -> str:
        model = self.predictor.model
        return (f"{model.name} ({self.weights} weights), target size "
                f"{self.predictor.target_size}, device {self.predictor.device}")


def build_model(name: str, pretrained: bool = False, checkpoint: str | None = None):
    """hrsam_model.build_model (one seam, so tests can substitute a smaller network)."""
    from hrsam_model import build_model as build

    return build(name, pretrained=pretrained, checkpoint=checkpoint)


def load_model(args, warn=None) -> LoadedModel:
    """The Predictor for ``--model``, ``--checkpoint``, ``--device``, ``--target-size``.

    Without a checkpoint the bundled weights are used; when the package lacks them the
    model runs on random weights after printing ``RANDOM_WARNING`` (``warn``, default:
    stderr), so demos still run end to end and nobody mistakes the output for a result.
    """
    from hrsam_model import Predictor, available_models, bundled_weights_path, resolve_device

    warn = warn or (lambda text: print(text, file=sys.stderr))
    if args.model not in available_models():
        raise ValueError(f"unknown model {args.model!r}; choose one of "
                         f"{', '.join(available_models())}")
    if not args.checkpoint and bundled_weights_path(args.model) is None:
        raise ValueError(f"no weights are bundled for {args.model}: pass --checkpoint PATH "
                         "(an official HRSAM .pth or a .safetensors file)")
    device = resolve_device(None if args.device == "auto" else args.device)
    start = time.perf_counter()
    if args.checkpoint:
        model = build_model(args.model, checkpoint=args.checkpoint)
        weights = f"checkpoint {args.checkpoint}"
    else:
        try:
            model = build_model(args.model, pretrained=True)
            weights = "bundled"
        except FileNotFoundError:
            warn(RANDOM_WARNING)
            model = build_model(args.model, pretrained=False)
            weights = "RANDOM"
    predictor = Predictor(model, device=device, target_size=args.target_size or 1024,
                          clicked_pieces_only=not getattr(args, "all_pieces", False),
                          clicks_hold=not getattr(args, "all_pieces", False))
    return LoadedModel(predictor, weights, time.perf_counter() - start)
