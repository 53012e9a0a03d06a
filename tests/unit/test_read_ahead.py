import threading
import time

import pytest

from annotation_loop.data.read_ahead import prefetch, read_ahead


def slow_numbers(count: int, produced: list[int], delay: float = 0.0):
    for number in range(count):
        time.sleep(delay)
        produced.append(number)
        yield number


def test_read_ahead_hands_over_everything_produced_meanwhile_in_order():
    produced: list[int] = []
    groups = []
    for group in read_ahead(slow_numbers(30, produced, delay=0.002), limit=100):
        groups.append(group)
        time.sleep(0.02)  # a busy consumer: the producer gets ahead meanwhile
    assert [n for group in groups for n in group] == list(range(30))
    assert len(groups) < 30  # items were grouped, not handed over one by one


def test_read_ahead_holds_and_hands_over_at_most_its_limit():
    produced: list[int] = []
    groups = read_ahead(slow_numbers(100, produced), limit=4)
    first = next(groups)
    time.sleep(0.2)  # the producer runs until the queue is full
    # what was handed over, 4 waiting in the queue, 1 blocked on putting it
    assert len(produced) <= len(first) + 5
    rest = list(groups)
    assert all(len(group) <= 4 for group in [first, *rest])
    assert [n for group in [first, *rest] for n in group] == list(range(100))


def test_prefetch_stays_within_its_limit_ahead_of_the_consumer():
    produced: list[int] = []
    items = prefetch(slow_numbers(100, produced), limit=5)
    assert next(items) == 0
    time.sleep(0.2)  # the producer runs until the queue is full
    # 1 consumed, 5 waiting in the queue, 1 blocked on putting it
    assert len(produced) <= 7
    assert list(items) == list(range(1, 100))


@pytest.mark.parametrize(
    "reader", [lambda source: read_ahead(source, limit=3), lambda source: prefetch(source, limit=3)]
)
def test_a_failing_producer_fails_the_consumer(reader):
    def failing():
        yield 1
        raise OSError("bucket went away")

    with pytest.raises(OSError, match="bucket went away"):
        list(reader(failing()))


def test_a_consumer_that_stops_early_stops_the_producer():
    produced: list[int] = []
    items = prefetch(slow_numbers(10_000, produced), limit=2)
    next(items)
    items.close()
    time.sleep(0.3)
    stopped_at = len(produced)
    time.sleep(0.2)
    assert len(produced) == stopped_at < 10_000
    assert not [t for t in threading.enumerate() if t.name == "read-ahead" and t.is_alive()]
