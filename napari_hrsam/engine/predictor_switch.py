"""Switching a session's predictor (model, weights, target size) without losing its history.

A mask belongs to the predictor that drew it: its logits are a mask prompt for the same
model at the same size only, and a user who switched wants to see the new model's answer.
So after a switch every mask of the object, and of every state undo or redo returns to,
is dropped and its slice marked pending: the prompts stay and the new predictor draws the
masks when they are next shown. Committed labels and their undo steps are voxels, not
predictions: they are untouched.
"""
from __future__ import annotations

from dataclasses import replace

from .history import Step
from .state import ObjectState


def unpredicted(state: ObjectState) -> ObjectState:
    """``state`` with every slice's mask dropped and the slice pending (same prompts)."""
    if all(s.result is None and s.pending for s in state.slices.values()):
        return state
    return replace(state, slices={key: replace(s, result=None, pending=True) for key, s in state.slices.items()})


def unpredicted_step(step: Step) -> Step:
    """``step`` with ``unpredicted`` object states before and after (labels diff kept)."""
    return replace(step, before=unpredicted(step.before), after=unpredicted(step.after))
