"""napari plugin, interactive session and command line for HRSAM.

    from napari_hrsam import Session, MaskPolicy, ModelChoice

``engine/`` is the Qt-free interactive engine, ``_qt/`` the dock widget, ``cli/`` the ``hrsam``
command and ``io/`` the file formats; importing this package loads neither Qt nor torch.
"""
from .engine.mask_policy import MaskPolicy
from .engine.model_choice import ModelChoice
from .engine.session import Session
from .engine.slice_engine import NoContrastWarning

__all__ = ["MaskPolicy", "ModelChoice", "NoContrastWarning", "Session"]
