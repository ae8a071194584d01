"""The mask policy (only the clicked pieces, every click held), applied once by the engine to the
decoder's own mask: pure functions, the Predictor's raw answer, and the session's shown mask."""
import numpy as np
import torch

from hrsam_model import Predictor
from napari_hrsam.engine.mask_policy import (
    MaskPolicy,
    hold_clicks,
    hold_clicks_on_slice,
    keep_clicked_pieces,
    keep_clicked_pieces_on_slice,
)
from napari_hrsam.engine.session import Session
from napari_hrsam.engine.state import SparseMask


def two_blobs():
    mask = np.zeros((40, 60), bool)
    mask[5:15, 5:20] = True  # clicked object
    mask[25:35, 40:55] = True  # look-alike elsewhere
    return mask


def test_only_the_clicked_piece_is_kept():
    kept = keep_clicked_pieces(two_blobs(), points=[[10, 8]], labels=[1])
    assert kept[5:15, 5:20].all() and not kept[25:35, 40:55].any()


def test_each_positive_click_keeps_its_piece_and_negatives_keep_none():
    mask = two_blobs()
    assert np.array_equal(keep_clicked_pieces(mask, [[10, 8], [45, 30]], [1, 1]), mask)
    assert not keep_clicked_pieces(mask, [[10, 8], [45, 30]], [1, 0])[25:35, 40:55].any()


def test_diagonal_neighbours_are_one_piece():
    mask = np.eye(20, dtype=bool)  # a thin diagonal line: 8-connected, not 4-connected
    mask[0, 19] = True  # and one stray pixel
    kept = keep_clicked_pieces(mask, [[0, 0]], [1])
    assert kept[np.arange(20), np.arange(20)].all() and not kept[0, 19]


def test_mask_without_a_clicked_piece_is_left_as_it_is():
    mask = two_blobs()
    assert np.array_equal(keep_clicked_pieces(mask, [[30, 2]], [1]), mask)  # click on background
    assert np.array_equal(keep_clicked_pieces(mask, [[10, 8]], [0]), mask)  # negative clicks only
    empty = np.zeros((40, 60), bool)
    assert not keep_clicked_pieces(empty, [[10, 8]], [1]).any()


def test_a_contradicted_click_gets_its_own_pixels_and_nothing_else_changes():
    mask = np.zeros((20, 30), bool)
    mask[5:15, 5:15] = True
    points, labels = [(10, 10), (25, 10), (8, 8)], [0, 1, 1]  # (x, y): a wrong negative, a missed positive
    held = hold_clicks(mask, points, labels)
    assert not held[10, 10] and held[10, 25]  # both clicks now on their side...
    assert not held[9:12, 10].any() and not held[10, 9:12].any() and held[9:12, 25].all()  # ...with 4 neighbours
    assert held[8, 8] and (held ^ mask).sum() == 2 * 5  # an obeyed click and every other pixel left alone
    assert (hold_clicks(mask, points, labels, radius=2) ^ mask).sum() == 2 * 13
    assert (hold_clicks(mask, points, labels, radius=0) ^ mask).sum() == 2
    assert mask.sum() == 100  # the input is not modified
    corner = hold_clicks(np.zeros((4, 4), bool), [(-3, 0)], [1])  # clipped to the image, disc cut at its edge
    assert corner.sum() == 3 and corner[0, 0]


def test_two_clicks_side_by_side_both_hold():
    mask = np.zeros((5, 5), bool)
    mask[3:] = True  # the decoder's edge sits one row off: both clicks below are contradicted
    held = hold_clicks(mask, [(2, 2), (2, 3)], [1, 0])  # (x, y): a positive above a negative
    assert held[2, 2] and not held[3, 2]  # each click's own pixel, though the other's disc covers it
    assert held[1, 2] and held[2, 1] and not held[4, 2] and not held[3, 1]  # elsewhere: their discs
    assert held[4, 0] and not held[0, 0]  # the rest as the decoder drew it
    assert not hold_clicks(mask, [(0, 0), (0, 0)], [1, 0])[0, 0]  # two on one pixel: the later


class TwoBlobDecoder(torch.nn.Module):
    """A stand-in model whose low-res logits always show the same two blobs."""

    name = "two-blobs"

    def encode(self, x):
        return torch.zeros(1, 256, x.shape[-2] // 16, x.shape[-1] // 16)

    def decode(self, features, multimask=False, **prompts):
        side = features.shape[-1] * 4
        low = torch.full((1, 4 if multimask else 1, side, side), -5.0)
        low[..., 10:30, 10:30] = 5.0
        low[..., 60:80, 60:80] = 5.0
        return low, torch.zeros(1, low.shape[1])


def test_the_predictor_returns_the_decoders_own_mask_as_segment_anything_does():
    predictor = Predictor(TwoBlobDecoder(), device="cpu")
    predictor.set_image(np.zeros((256, 256), np.uint8))  # 1024 canvas: low-res cell = 1 image pixel
    raw = predictor.predict(points=[[20, 20], [45, 45]], labels=[1, 1])
    assert raw.mask[12:28, 12:28].all() and raw.mask[62:78, 62:78].all()  # both pieces
    assert not raw.mask[45, 45]  # a contradicted click is not held by the predictor
    multi = predictor.predict(points=[[70, 70]], labels=[1], multimask=True)
    assert multi.masks.shape == (3, 256, 256) and multi.masks[:, 12:28, 12:28].all()


def two_blob_session(policy: MaskPolicy) -> Session:
    noise = np.random.default_rng(0).integers(0, 255, (256, 256), dtype=np.uint8)  # has contrast
    return Session(noise, Predictor(TwoBlobDecoder(), device="cpu"), mask_policy=policy)


def test_the_session_shows_the_clicked_piece_and_feeds_back_the_raw_logits():
    shown, raw = two_blob_session(MaskPolicy()), two_blob_session(MaskPolicy(False, False))
    for session in (shown, raw):
        session.add_point((20, 20))
    assert shown.preview[12:28, 12:28].all() and not shown.preview[62:78, 62:78].any()
    assert raw.preview[12:28, 12:28].all() and raw.preview[62:78, 62:78].all()
    logits = [s.object.slices[s.slice_key].result.logits for s in (shown, raw)]
    assert np.array_equal(*logits)  # the next click sees the decoder's own answer


def test_the_session_holds_the_user_clicks_on_the_shown_mask_only():
    held, as_drawn = two_blob_session(MaskPolicy()), two_blob_session(MaskPolicy(hold_clicks=False))
    for session in (held, as_drawn):  # (row, col): a negative inside, a positive outside
        session.set_prompts([(20, 20), (15, 15), (45, 45)], [1, 0, 1])
    shown, raw = held.preview, as_drawn.preview
    assert not shown[15, 14:17].any() and shown[44:47, 45].all()
    assert raw[15, 15] and not raw[45, 45]
    assert (shown ^ raw).sum() == 2 * 5


def test_a_box_prompt_keeps_every_piece():
    session = two_blob_session(MaskPolicy())
    session.set_prompts([(20, 20)], [1], box=(0, 0, 100, 100))
    assert session.preview[12:28, 12:28].all() and session.preview[62:78, 62:78].all()


def test_the_mask_policy_has_one_name_on_every_command_line():
    from napari_hrsam.cli.main import build_parser
    from napari_hrsam.cli.model import mask_policy

    for command in (["segment", "x.tif", "--out", "m.tif"], ["eval", "--dataset", "nuclei"]):
        args = build_parser().parse_args(command)
        assert mask_policy(args) == MaskPolicy()
        args = build_parser().parse_args(command + ["--all-pieces", "--no-click-hold"])
        assert mask_policy(args) == MaskPolicy(keep_clicked_pieces=False, hold_clicks=False)


def test_keep_clicked_pieces_on_slice_matches_the_dense_rule():
    dense = np.zeros((300, 400), bool)
    dense[100:120, 200:220] = True
    dense[150:170, 250:270] = True
    sparse = SparseMask.from_dense(dense)
    kept = keep_clicked_pieces_on_slice(sparse, [(110, 210)], [1])
    assert np.array_equal(kept.dense(), keep_clicked_pieces(dense, [(210, 110)], [1]))
    assert kept.area == 400 and keep_clicked_pieces_on_slice(sparse, [(5, 5)], [1]) is sparse


def test_a_shrunk_window_does_not_bring_dropped_pieces_back_from_the_logits():
    from napari_hrsam.engine.resampling import paste_logits
    from napari_hrsam.engine.state import Region

    # a 2048x2048 slice seen at 1024x1024: one low-res cell = 4 px of the 1024 grid = 8 slice px
    logits = np.full((1, 256, 256), -5.0, np.float32)
    logits[0, 10:20, 10:20] = 5.0  # the clicked piece
    logits[0, 30:40, 30:40] = 5.0  # a second clicked piece: the box now spans...
    logits[0, 10:20, 30:40] = 5.0  # ...a piece the predictor dropped
    coarse = np.zeros((1024, 1024), bool)
    coarse[40:80, 40:80] = True
    coarse[120:160, 120:160] = True
    region = Region(box=(0, 0, 2048, 2048), size=(1024, 1024))
    mask = paste_logits(logits, coarse, region, (2048, 2048), 1024, (1024, 1024)).dense()
    assert mask[90:150, 90:150].all() and mask[250:310, 250:310].all()
    assert not mask[70:170, 230:330].any()  # the dropped piece (slice rows 80-160, columns 240-320)


def test_a_shrunk_windows_mask_holds_the_clicks_on_the_slices_own_pixels():

    dense = np.zeros((3000, 4000), bool)
    dense[1000:1100, 2000:2100] = True
    sparse = SparseMask.from_dense(dense)
    points, labels = [(1050, 2050), (2500, 3500), (1010, 2010)], [0, 1, 1]  # (row, col) slice pixels
    held = hold_clicks_on_slice(sparse, points, labels)
    assert held.shape == (3000, 4000) and held.crop.shape[0] < 1600  # still a bounding box, not the slice
    expected = hold_clicks(dense, [(c, r) for r, c in points], labels)
    assert np.array_equal(held.dense(), expected)
    assert hold_clicks_on_slice(sparse, points[2:], labels[2:]) is sparse  # nothing contradicted: as it was
    empty = SparseMask.from_dense(np.zeros((50, 50), bool))
    assert hold_clicks_on_slice(empty, [(10, 20)], [1]).area == 5
