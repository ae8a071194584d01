"""The session's prediction half: what is due, the worker-thread calls and how their answers are
taken back (``Session`` inherits it; see ``napari_hrsam.engine.session`` for the threading rules).

Worker-safe methods (``compute``, ``prepare_slice``, ``compute_propagation``) read the image
lazily and never change session state; ``apply`` (main thread) takes their answers and drops
outdated ones.
"""
from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Callable

import numpy as np

from . import propagation
from .history import Step
from .propagation_rules import PropagationRules
from .session_auto import AutoResult
from .slice_engine import NoContrastWarning
from .state import (
    Prediction,
    PredictRequest,
    Prompts,
    PropagationRequest,
    PropagationResult,
    SliceKey,
)


class SessionWork:
    """Prediction and propagation for ``Session`` (which owns the state these methods read)."""

    def predict(self) -> np.ndarray | None:
        """Run every pending prediction now (synchronously); returns the preview. Warns
        (``NoContrastWarning``) when the current slice has no contrast: its mask is empty."""
        return self._predict(stacklevel=3)

    def _predict(self, stacklevel: int) -> np.ndarray | None:  # the warning names the caller's line
        while (request := self.pending_request()) is not None:
            self.apply(self.compute(request))
        if self.warning is not None:
            warnings.warn(self.warning, NoContrastWarning, stacklevel=stacklevel)
        return self.preview

    def predict_again(self) -> None:
        """Predict the current slice's object anew (after a setting changed). Not an undo step."""
        self._results.clear()
        state = self._object.slices.get(self._key) if self._key is not None else None
        if state is not None and state.result is not None:
            self._object = self._object.with_slice(self._key, replace(state, pending=True))
            self._generation += 1

    def pending_request(self) -> PredictRequest | None:
        """The next prediction due (current slice first), or None."""
        for key in sorted(self._object.slices, key=lambda k: k != self._key):
            state = self._object.slices[key]
            if not state.pending:
                continue
            previous = state.result
            # a mask made under other settings (another contrast window...) is no prompt here
            fresh = previous is not None and previous.settings == self._engine.settings
            closer = previous.look_closer if fresh else None
            if closer is not None and previous.prompts == state.prompts:  # zoom-in's second pass
                return PredictRequest(self._generation, key, state.prompts, closer, None)
            region = self._engine.region(key, state.prompts, previous)
            use_logits = fresh and state.prompts.extends(previous.prompts)
            return PredictRequest(self._generation, key, state.prompts, region,
                                  self._engine.mask_input(previous, region) if use_logits else None)
        return None

    def compute(self, request: PredictRequest) -> Prediction | None:
        """Worker-safe: embed (cached) and predict. Returns None when the request is
        already stale. Raises ValueError for unusable slices (NaN)."""
        if request is None or not self._wanted(request.key, request.prompts):
            return None
        engine = self._engine  # the same predictor throughout, even if set_predictor runs
        engine.embedding(request.key, request.region)  # the slow part, cached
        if not self._wanted(request.key, request.prompts):  # the user moved on meanwhile
            return None
        result = engine.predict(request.key, request.region, request.prompts,
                                request.mask_input)
        if request.mask_input is None:  # zoom-in's first click: the coarse mask shows meanwhile
            result = engine.with_closer_look(request.key, request.prompts, result)
        return Prediction(request.generation, request.key, request.prompts, result)

    def prepare_slice(self, key: SliceKey | None = None) -> bool:
        """Worker-safe: compute and cache the embedding of a slice (default: current) so
        the first click there is fast. Huge slices are skipped (their window follows the
        prompts). Returns True if it computed one."""
        key = key if key is not None else self._require_slice()
        region = self._engine.full_region(key)
        if region is None:
            return False
        return self._engine.embedding(key, region)[1]

    def apply(self, answer: Prediction | PropagationResult | AutoResult | None) -> bool:
        """Main thread: store a worker's answer. False (and nothing changes) when it is
        None or stale (the prompts or the settings changed meanwhile: ask again)."""
        if isinstance(answer, PropagationResult):
            return self._apply_propagation(answer)
        if isinstance(answer, AutoResult):  # segment all: one undo step of new objects
            return bool(self._apply_auto(answer))
        if answer is None or not self._wanted(answer.key, answer.prompts) \
                or answer.result.settings != self._engine.settings:  # also a switched predictor
            return False
        closer = answer.result.look_closer is not None  # zoom-in's second pass is due
        if not closer:
            self._results.remember(answer.key, answer.result)
        state = replace(self._object.slices[answer.key], result=answer.result, pending=closer)
        self._object = self._object.with_slice(answer.key, state)
        self._generation += 1
        return True

    def discard(self, request: PredictRequest | PropagationRequest) -> bool:
        """Main thread: after ``compute`` failed, remove the step that made the request
        (if it is still the latest), so the user's state is as before the prompt."""
        step = self._history.top
        if step is None or step.generation != request.generation \
                or self._generation != request.generation or step.labels is not None:
            return False
        if not self._history.retract(step):
            return False
        self._restore(step.before, self._objects)
        return True

    def propagate(self, direction: str = "both", *, axis: int | None = None,
                  max_slices: int | None = None, rules: PropagationRules | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  should_cancel: Callable[[], bool] | None = None) -> PropagationResult:
        """Synchronous propagation: propagation_request + compute_propagation + apply."""
        request = self.propagation_request(direction, axis=axis, max_slices=max_slices,
                                           rules=rules)
        result = self.compute_propagation(request, progress, should_cancel)
        self.apply(result)
        return result

    def propagation_request(self, direction: str = "both", *, axis: int | None = None,
                            max_slices: int | None = None,
                            rules: PropagationRules | None = None) -> PropagationRequest:
        """Main thread: check and freeze a propagation from the current slice's mask along
        spatial ``axis`` (default: the last non-displayed axis), ``direction`` "forward"
        (+1), "backward" (-1) or "both", at most ``max_slices`` slices each way, stopped by
        ``rules`` (default ``PropagationRules()``; see ``napari_hrsam.engine.propagation_rules``).
        ValueError if the current slice has no mask or a prediction is pending."""
        if self.pending:
            raise ValueError("a prediction is still pending: wait for it before propagating")
        return propagation.make_request(self._object, self._require_slice(),
                                        self._layout.spatial_shape, self._generation,
                                        direction, axis, max_slices, rules)

    def compute_propagation(self, request: PropagationRequest,
                            progress: Callable[[int, int], None] | None = None,
                            should_cancel: Callable[[], bool] | None = None
                            ) -> PropagationResult:
        """Worker-safe: on each next slice prompt with the previous slice's low-res logits
        (mask_input) and a positive click at its deepest interior point, keep the answer
        within a step of the previous mask, and stop a direction by ``request.rules``, at a
        user-prompted slice or at the range end (``stop_reasons``). ``progress(done,
        at_most)`` after each slice; ``should_cancel()`` before each (a cancelled run keeps
        the finished slices). Apply the result with ``apply``: one undo step."""
        return propagation.run(self._engine, request, progress, should_cancel)

    def _wanted(self, key: SliceKey, prompts: Prompts) -> bool:
        state = self._object.slices.get(key)
        return state is not None and state.pending and state.prompts == prompts

    def _apply_propagation(self, result: PropagationResult) -> bool:
        if result.generation != self._generation or not result.slices:
            return False
        after = self._object
        for key, state in result.slices.items():
            after = after.with_slice(key, state)
        self._push(Step("propagate", self._object, after, self._generation + 1))
        return True
