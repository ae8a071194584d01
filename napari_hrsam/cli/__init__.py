"""The ``hrsam`` command line: one module per command (``segment``, ``embed``, ``demo``,
``eval``), the model behind them (``model``) and the entry point (``main``)."""
from .main import main

__all__ = ["main"]
