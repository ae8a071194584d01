"""The model behind every ``hrsam`` command: the options shared by all of them, read into one
``ModelChoice`` (bundled weights, a checkpoint, or, loudly, none) and a ``MaskPolicy``."""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

from hrsam_model.configs import DEFAULT_MODEL, DEVICES, TARGET_SIZES

from ..engine.mask_policy import MaskPolicy
from ..engine.model_choice import ModelChoice

RANDOM_WARNING = ("WARNING: bundled weights not found, using random weights: results are "
                  "noise. Reinstall napari-hrsam or pass --checkpoint PATH.")


def model_options() -> argparse.ArgumentParser:
    """--model, --checkpoint, --device, --target-size, --all-pieces, --no-click-hold."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--model", default=DEFAULT_MODEL, metavar="NAME",
                         help=f"architecture (default {DEFAULT_MODEL}; hrsam_vit_b and "
                              "hrsam_plusplus_vit_b need --checkpoint)")
    options.add_argument("--checkpoint", metavar="PATH",
                         help="weights file (.safetensors, official HRSAM .pth, SAM/LiteMedSAM "
                              ".pth); default: the bundled weights")
    options.add_argument("--device", default="auto", choices=DEVICES,
                         help="where the model runs (default auto: cuda > mps > cpu)")
    options.add_argument("--target-size", type=int, default=None, choices=TARGET_SIZES,
                         metavar="N", help="model input size in pixels: 1024 (default), 2048, "
                                           "3072 or 4096; larger resolves finer detail, slower")
    options.add_argument("--all-pieces", action="store_true",
                         help="keep every piece of the model's mask (keep_clicked_pieces off); by "
                              "default only the pieces holding a positive click are kept")
    options.add_argument("--no-click-hold", action="store_true",
                         help="leave the clicks the mask contradicts as the model drew them "
                              "(hold_clicks off); with --all-pieces: the model's mask as drawn")
    return options


def model_choice(args, untrained: bool = False) -> ModelChoice:
    """The ``ModelChoice`` of the shared options (target size 1024 when not given)."""
    return ModelChoice(args.model, args.checkpoint or "", args.device, args.target_size or 1024,
                       untrained)


def mask_policy(args) -> MaskPolicy:
    return MaskPolicy(keep_clicked_pieces=not args.all_pieces, hold_clicks=not args.no_click_hold)


@dataclass
class LoadedModel:
    predictor: object  # hrsam_model.Predictor
    choice: ModelChoice
    seconds: float

    @property
    def random(self) -> bool:
        return self.choice.weights()[0] == "random"

    def describe(self) -> str:
        return (f"{self.choice.describe()}, target size {self.predictor.target_size}, device "
                f"{self.predictor.device}")


def load_model(args, warn=None) -> LoadedModel:
    """The Predictor of the shared options. Without a checkpoint the bundled weights are used;
    when the package lacks them the model runs on random weights after printing
    ``RANDOM_WARNING`` (``warn``, default: stderr), so demos still run end to end and nobody
    mistakes the output for a result."""
    choice = model_choice(args)
    if choice.weights()[0] == "random" and choice.name == DEFAULT_MODEL:
        (warn or (lambda text: print(text, file=sys.stderr)))(RANDOM_WARNING)
    start = time.perf_counter()
    predictor = choice.predictor()
    return LoadedModel(predictor, choice, time.perf_counter() - start)


def add_dask_options(parser, when: str = "") -> None:
    """``--workers`` and ``--scheduler``: where a command's units of work run (``napari_hrsam.scale``);
    ``when`` prefixes their help (e.g. "with many inputs: ")."""
    from ..scale import default_workers

    parser.add_argument("--workers", type=int, default=0, nargs="?", const=default_workers(), metavar="N",
                        help=f"{when}N worker processes on this machine (a Dask LocalCluster; "
                             f"--workers alone: one per physical core, here {default_workers()}); "
                             "0 (default): in this process")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help=f"{when}a running Dask scheduler (tcp://host:8786 or a scheduler file)")
