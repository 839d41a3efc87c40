"""state/batch.py: the one chunking helper."""

import pytest

from crmsync.state.batch import batched


@pytest.mark.parametrize(
    ("items", "n", "want"),
    [
        ([], 3, []),
        ([1, 2, 3], 3, [[1, 2, 3]]),
        ([1, 2, 3, 4], 3, [[1, 2, 3], [4]]),
        (range(5), 2, [[0, 1], [2, 3], [4]]),
        ("ab", 1, [["a"], ["b"]]),
    ],
)
def test_batched_keeps_order_and_the_last_batch_may_be_shorter(items, n, want):
    assert list(batched(items, n)) == want


def test_batched_reads_a_generator_lazily():
    seen = []

    def gen():
        for i in range(10):
            seen.append(i)
            yield i

    first = next(batched(gen(), 3))
    assert first == [0, 1, 2] and seen == [0, 1, 2]


def test_batched_refuses_a_size_below_one():
    with pytest.raises(ValueError):
        list(batched([1], 0))
