"""Session.set_predictor: another model or target size keeps prompts, labels and history."""
import numpy as np

from _session_fakes import FakePredictor, disk
from napari_hrsam.engine.session import Session

SHAPE = (80, 100)
CENTRES = ((20, 25), (55, 70), (20, 75))


def image():
    return sum(disk(SHAPE, centre, 9) for centre in CENTRES)


def test_switching_predictor_keeps_history_and_draws_every_mask_again():
    old, new = FakePredictor(target_size=1024), FakePredictor(target_size=2048)
    session = Session(image(), old)
    for centre in CENTRES[:2]:
        session.add_point(centre)
        session.commit()
    after_one = np.where(session.labels == 2, 0, session.labels)
    session.add_point(CENTRES[2], predict=False)
    stale = session.compute(session.pending_request())  # computed by the old predictor

    session.set_predictor(new)
    assert session.predictor is new and session.pending and session.preview is None
    assert not session.apply(stale)  # an answer of the old predictor is dropped
    session.predict()
    np.testing.assert_array_equal(session.preview, disk(SHAPE, CENTRES[2], 9) > 0)
    assert new.predict_calls and session.history[0] == ["add point", "commit", "add point", "commit", "add point"]

    assert session.undo() and session.undo()  # the click, then the second commit
    np.testing.assert_array_equal(session.labels, after_one)
    assert session.pending  # object 2's mask was the old model's: it is drawn again
    calls = len(new.predict_calls)
    session.predict()
    assert len(new.predict_calls) > calls
    np.testing.assert_array_equal(session.preview, disk(SHAPE, CENTRES[1], 9) > 0)
    assert session.redo()  # the commit again, exactly
    assert (session.labels == 2).sum() == (disk(SHAPE, CENTRES[1], 9) > 0).sum()
