"""Predictions remembered so that redo, undo and a repeated prompt need no model run.

Contract: a remembered ``SliceResult`` stands in for a prediction only on the same slice,
for the same prompts and under the same settings (``SliceResult.settings``: contrast limits,
channels, zoom-in, target size, model, mask policy). A snapshot that undo or redo brings
back whose mask was made under other settings than the current ones is due again
(``pending``; its mask still shows until the new prediction lands). Bounded: the least
recently remembered results are forgotten first.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace

from .state import ObjectState, SliceKey, SliceResult

RESULTS_KEPT = 128


class ResultMemo:
    """Up to ``kept`` results by (slice, prompts, settings)."""

    def __init__(self, kept: int = RESULTS_KEPT):
        self.kept = kept
        self._results: OrderedDict = OrderedDict()

    def __len__(self) -> int:
        return len(self._results)

    def remember(self, key: SliceKey, result: SliceResult) -> None:
        memo_key = (key, result.prompts, result.settings)
        self._results[memo_key] = result
        self._results.move_to_end(memo_key)
        while len(self._results) > self.kept:
            self._results.popitem(last=False)

    def clear(self) -> None:
        self._results.clear()

    def resolved(self, state: ObjectState, settings) -> ObjectState:
        """``state`` with pending slices filled from results remembered under ``settings``."""
        return self.refreshed(state, state, settings)

    def refreshed(self, state: ObjectState, shown: ObjectState, settings) -> ObjectState:
        """``state`` (a snapshot undo/redo brings back, replacing ``shown``) as of the current
        ``settings``: pending slices and brought-back slices whose mask was made under other
        settings take a result remembered under ``settings``, else become pending. Slices
        the step does not change (the same ``SliceState`` as in ``shown``) stay as they are."""
        for key, old in state.slices.items():
            stale = (old.result is not None and old.result.settings != settings
                     and old is not shown.slices.get(key))
            if not (old.pending or stale):
                continue
            result = self._results.get((key, old.prompts, settings))
            if result is not None:
                state = state.with_slice(key, replace(old, result=result, pending=False))
            elif not old.pending:
                state = state.with_slice(key, replace(old, pending=True))
        return state
