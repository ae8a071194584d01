"""Read and write model weights: official HRSAM/HRSAM++ (mmengine files), SAM and
LiteMedSAM (prompt encoder + mask decoder), and our own .safetensors.

Loading is all-or-nothing: every key and shape is checked before a single tensor is
copied, so a wrong file never leaves a half-loaded model behind. A file that cannot be
loaded is a ValueError of one plain line (no terminal codes, no library advice) that names
the file and what is wrong with it: the napari notification and `hrsam`'s error line show it.
"""
import os
import pickle
import re
import zipfile
from dataclasses import dataclass, field

import torch

OFFICIAL_PREFIXES = ("backbone.", "neck.", "decode_head.")
SAM_PREFIXES = ("image_encoder.", "prompt_encoder.", "mask_decoder.")


@dataclass
class LoadReport:
    source_format: str
    loaded: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # keys of parts we do not use (e.g. SAM's ViT)


def read_state_dict(path):
    """Load a flat {name: tensor} dict from `path` without executing pickled code."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.endswith(".safetensors"):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except (SafetensorError, OSError, ValueError) as err:
            raise ValueError(f"cannot read {path}: the safetensors file is corrupt or truncated ({_plain(err)})") from err
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        objects = sorted(set(re.findall(r"GLOBAL ([\w.]+)", str(err))))
        if objects:  # a pickle of more than tensors: not loaded, it could run code
            raise ValueError(f"cannot read {path}: it holds Python objects ({', '.join(objects)}) besides "
                             "tensors, which are not loaded for safety; it is not a plain weights file") from err
        raise ValueError(f"cannot read {path}: not a PyTorch or safetensors checkpoint, or it is truncated") from err
    for key in ("state_dict", "model"):  # mmengine files / other trainers wrap the weights
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} is not a weights file: it holds a {type(obj).__name__}, not named tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _plain(err, limit=160):
    """The first line of an error's text without terminal escape codes, at most `limit` characters."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()
    return (text.splitlines() or [type(err).__name__])[0][:limit]


def sam_to_official(state_dict):
    """SAM key names -> the official HRSAM neck/decode_head names (focsam's converter rules)."""
    converted, image_encoder = {}, []
    for key, value in state_dict.items():
        if key.startswith("image_encoder."):
            image_encoder.append(key)  # SAM's global-attention ViT is not an HRSAM backbone
            continue
        if key.startswith("prompt_encoder."):
            key = "neck." + key.removeprefix("prompt_encoder.")
            key = key.replace("neck.pe_layer.", "neck.pos_embed_layer.")
            key = key.replace("neck.point_embeddings.", "neck.point_embeds.")
        elif key.startswith("mask_decoder."):
            key = "decode_head." + key.removeprefix("mask_decoder.")
        converted[key] = value
    return converted, image_encoder


def detect_format(state_dict):
    keys = list(state_dict)
    if any(k.startswith(SAM_PREFIXES) for k in keys):
        return "sam"
    if any(k.startswith(OFFICIAL_PREFIXES) for k in keys):
        return "hrsam"
    return "unknown"


def describe_architecture(state_dict):
    """A short guess of which architecture a state dict was made for."""
    pos = state_dict.get("backbone.pos_embed")
    if pos is None:
        return "no backbone weights"
    dim = pos.shape[-1]
    depth = len({k.split(".")[2] for k in state_dict if k.startswith("backbone.blocks.")})
    plus = any(k.startswith("backbone.ss_mamba_blocks.") for k in state_dict)
    guess = {(768, 12, False): "hrsam_vit_b", (768, 12, True): "hrsam_plusplus_vit_b",
             (192, 6, False): "hrsam_tiny"}.get((dim, depth, plus))
    kind = "HRSAM++" if plus else "HRSAM"
    text = f"{kind} backbone of width {dim} and depth {depth}"
    return text + (f" (model {guess})" if guess else "")


def load_checkpoint(model, path, strict=True):
    """Load `path` into `model` (an hrsam_model.HRSAM) and return a LoadReport.

    Official HRSAM/HRSAM++ and our .safetensors files must match the model exactly.
    SAM and LiteMedSAM files provide the prompt encoder and mask decoder only; their
    ViT image encoder is skipped and the backbone keeps its current weights.
    With strict=False, matching tensors are loaded and the rest is reported.
    """
    source = read_state_dict(path)
    fmt = detect_format(source)
    skipped = []
    if fmt == "sam":
        source, skipped = sam_to_official(source)
    elif fmt == "unknown":
        sample = ", ".join(list(source)[:2])
        raise ValueError(
            f"{path} is not an HRSAM, SAM or LiteMedSAM checkpoint: its {len(source)} tensors have names "
            f"such as {sample}, none starting with {', '.join(OFFICIAL_PREFIXES + SAM_PREFIXES)}"
        )
    target = model.state_dict()
    required = target if fmt != "sam" else {k: v for k, v in target.items() if not k.startswith("backbone.")}
    missing = [k for k in required if k not in source]
    unexpected = [k for k in source if k not in target]
    mismatched = [k for k in source if k in target and source[k].shape != target[k].shape]
    if strict and (missing or unexpected or mismatched):
        problems = []
        if missing:
            problems.append(f"missing {len(missing)} tensors such as {missing[0]}")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected such as {unexpected[0]}")
        if mismatched:
            k = mismatched[0]
            problems.append(f"{len(mismatched)} of another shape such as {k} (file {tuple(source[k].shape)}, "
                            f"model {tuple(target[k].shape)})")
        raise ValueError(
            f"{path} does not fit model {getattr(model, 'name', type(model).__name__)}: {', '.join(problems)}. "
            f"The file holds an {describe_architecture(source)}: is this an HRSAM checkpoint of the chosen model?"
        )
    bad = set(mismatched)
    loadable = {k: v for k, v in source.items() if k in target and k not in bad}
    model.load_state_dict(loadable, strict=False)
    return LoadReport(fmt, sorted(loadable), missing, unexpected + sorted(bad), skipped)


def save_checkpoint(model, path, dtype=None, metadata=None):
    """Write the full state dict as .safetensors (optionally cast floats, e.g. to fp16)."""
    from safetensors.torch import save_file

    tensors = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu()
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        tensors[key] = value.contiguous()
    meta = {"format": "napari-hrsam", "model": getattr(model, "name", "")}
    meta.update(metadata or {})
    save_file(tensors, os.fspath(path), metadata=meta)
