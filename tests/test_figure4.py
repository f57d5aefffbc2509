"""AlexNet's figure 4 for several queries: hand-made features whose nearest neighbours are known,
and the picture of five rows (query + six neighbours) at slide size."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz.figures.neighbours import DIFFERENT, draw_query_rows, query_rows_picture
from cnnviz.figures.pictures import TextCanvas
from cnnviz.inspect.neighbours import NeighbourIndex, QueryNeighbours, pick_queries, query_neighbours

LONG = ["abraham_grampa_simpson", "apu_nahasapeemapetilon", "charles_montgomery_burns", "homer_simpson"]


def line_data():
    """40 training points on a line at x = 0, 1, ..., 39 (second coordinate 0), class x // 10;
    queries at x = 0.2, 12.2, 25.4, 38.9 and 19.6 (second coordinate 0.5)."""
    train = np.stack([np.arange(40, dtype=np.float32), np.zeros(40, np.float32)], 1)
    labels = np.arange(40) // 10
    qx = np.array([0.2, 12.2, 25.4, 38.9, 19.6], np.float32)
    queries = np.stack([qx, np.full(5, 0.5, np.float32)], 1)
    return train, labels, queries, np.array([0, 1, 2, 3, 1])


def test_given_queries_get_their_known_nearest_training_points():
    train, labels, queries, qlabels = line_data()
    res = query_neighbours(NeighbourIndex(train), queries, labels, qlabels, queries=[0, 1, 2, 3, 4], k=6)
    assert isinstance(res, QueryNeighbours) and len(res) == 5 and res.k == 6
    assert res.queries.tolist() == [0, 1, 2, 3, 4]
    assert res.indices.tolist() == [[0, 1, 2, 3, 4, 5], [12, 13, 11, 14, 10, 15], [25, 26, 24, 27, 23, 28],
                                    [39, 38, 37, 36, 35, 34], [20, 19, 21, 18, 22, 17]]
    np.testing.assert_allclose(res.distances[0, :2], [np.hypot(0.2, 0.5), np.hypot(0.8, 0.5)], rtol=1e-6)
    assert res.labels.tolist()[4] == [2, 1, 2, 1, 2, 1]
    # query 4 (x = 19.6, class 1): its neighbours alternate between classes 2 and 1
    assert res.same[4].tolist() == [False, True, False, True, False, True]
    assert res.same[:4].all() and res.same_count == 24 + 3


def test_the_queries_are_drawn_at_random_with_a_seed_from_distinct_classes():
    train, labels, _, _ = line_data()
    index = NeighbourIndex(train)
    a = query_neighbours(index, train, labels, labels, seed=3, same_set=True)
    b = query_neighbours(index, train, labels, labels, seed=3, same_set=True)
    c = query_neighbours(index, train, labels, labels, seed=4, same_set=True)
    assert a.queries.tolist() == b.queries.tolist() and len(a) == 5  # five by default
    assert a.queries.tolist() != c.queries.tolist()
    assert len(set(labels[a.queries[:4]].tolist())) == 4  # four classes: one of each first, then any other
    assert len(set(a.queries.tolist())) == 5
    # the queries are training points themselves: each one's own row is left out
    assert not (a.indices == a.queries[:, None]).any()
    for q, row in zip(a.queries, a.indices):
        assert sorted(abs(row - q).tolist()) == sorted(sorted(abs(np.arange(40) - q).tolist())[1:7])
    assert pick_queries(3, 5).tolist() == [0, 1, 2]  # fewer images than asked: all of them
    assert len(set(pick_queries(100, 5, distinct_classes=False, seed=1).tolist())) == 5


def test_bad_arguments_say_what_to_give():
    train, labels, queries, qlabels = line_data()
    index = NeighbourIndex(train)
    with pytest.raises(ValueError, match="k=41"):
        query_neighbours(index, queries, labels, qlabels, k=41)
    with pytest.raises(ValueError, match="query rows must be 0 to 4"):
        query_neighbours(index, queries, labels, qlabels, queries=[7])
    with pytest.raises(ValueError, match=r"must be \(M, 2\)"):
        query_neighbours(index, np.zeros((3, 5)), labels)
    unlabelled = query_neighbours(index, queries, k=2)
    assert (unlabelled.labels == -1).all() and unlabelled.same_count == 0


def picture_inputs(side: int = 32, mixed: bool = False):
    """Figure 4 of five queries over 60 training images of four long-named classes, every image
    one flat colour. Training points on a line at x = 0..59, class x // 15; queries near x = 2,
    24, 37, 52 (all neighbours of their class) and 18 (five of its class, one of class 0). With
    ``mixed``, random features and classes: neighbours of every class, in no order."""
    rng = np.random.default_rng(0)
    tl = np.arange(60) // 15
    if mixed:
        train, queries = rng.normal(size=(60, 8)).astype(np.float32), rng.normal(size=(10, 8)).astype(np.float32)
        tl, ql = np.arange(60) % 4, np.arange(10) % 4
        res = query_neighbours(NeighbourIndex(train), queries, tl, ql, count=5, k=6, seed=0)
    else:
        train = np.stack([np.arange(60, dtype=np.float32), np.zeros(60, np.float32)], 1)
        tl[20] = 0  # one of class 0 among the neighbours of x = 18, between two of class 1
        qx = np.array([2.0, 24.0, 37.0, 52.0, 18.0], np.float32)
        queries = np.stack([qx, np.full(5, 0.5, np.float32)], 1)
        res = query_neighbours(NeighbourIndex(train), queries, tl, np.array([0, 1, 2, 3, 1]), queries=range(5))
        assert res.indices[4].tolist() == [18, 17, 19, 16, 20, 15] and res.labels[4].tolist() == [1, 1, 1, 1, 0, 1]
    train_images = np.zeros((60, side, side, 3), np.uint8)
    train_images[:] = np.array([[40, 90, 200], [60, 180, 60], [230, 200, 40], [150, 60, 170]], np.uint8)[tl][:, None, None]
    query_images = np.full((10, side, side, 3), 128, np.uint8)
    return res, query_images, train_images


def check_texts(canvas: TextCanvas) -> None:
    """Every line at least 20 px, inside the picture, inked where its box says, and no two lines
    overlapping."""
    texts = canvas.texts
    w, h = canvas.size
    assert min(t.size for t in texts) >= 20 and min(t.height for t in texts) >= 20
    for t in texts:
        l, top, r, b = t.box
        assert 0 <= l < r <= w and 0 <= top < b <= h, t
        assert (np.asarray(canvas.image.crop(t.box).convert("L")) < 200).any(), t
    for a in range(len(texts)):
        for c in range(a + 1, len(texts)):
            p, q = texts[a].box, texts[c].box
            assert p[2] <= q[0] or q[2] <= p[0] or p[3] <= q[1] or q[3] <= p[1], (texts[a], texts[c])


def check_names(canvas: TextCanvas, res: QueryNeighbours) -> None:
    """Every query's and neighbour's class is named in full; each label's lines hold its text."""
    blocks = {t.block for t in canvas.texts}
    for q in range(len(res)):
        names = {LONG[c].replace("_", " ") for c in [*res.labels[q], res.query_labels[q]]}
        assert all(any(n in b for b in blocks) for n in names), names
    for b in blocks:
        lines = [t.text for t in canvas.texts if t.block == b]
        assert "".join(lines).replace(" ", "") in {b.replace(" ", "") * m for m in range(1, 8)}


@pytest.mark.parametrize("side", [32, 64])
def test_five_rows_of_a_query_and_six_neighbours_fit_a_slide(side):
    res, qimg, timg = picture_inputs(side)
    canvas = query_rows_picture(res, qimg, timg, LONG, 1600, 900)
    assert canvas.size == (1600, 900)
    layout = draw_query_rows(TextCanvas(1600, 900), (48, 98, 1552, 894), res, qimg, timg, LONG)  # the slide's room
    assert layout.thumb >= 120 and layout.thumb % side == 0  # whole multiples of the image: sharp pixels
    assert len(layout.rows) == 5 and len(layout.columns) == 7 and layout.band == (24,) * 5  # one line a row
    check_texts(canvas)
    check_names(canvas, res)
    # the neighbour of another class has a red frame and a marked label; the others none
    red = (np.asarray(canvas.image) == DIFFERENT).all(-1)
    for t in canvas.texts:  # the frames only, not the red label
        red[t.box[1]:t.box[3], t.box[0]:t.box[2]] = False
    assert 3 * 4 * 120 < red.sum() < 4 * 4 * 220  # one frame, 4 px wide, round one thumbnail (its foot by the label)
    assert [t.text for t in canvas.texts if t.text.startswith("\u2717")] == ["\u2717 abraham grampa simpson"]


def test_neighbours_of_every_class_are_still_named_in_full():
    res, qimg, timg = picture_inputs(32, mixed=True)
    canvas = query_rows_picture(res, qimg, timg, LONG, 1600, 900)
    check_texts(canvas)
    check_names(canvas, res)  # wrapped onto two lines (smaller thumbnails), never cut
