"""Where a restored consumer starts: the first message after its recorded ack floor, in the restored stream's
numbering (which may differ from the original's: messages deleted from the stream, duplicates dropped)."""

from __future__ import annotations

from shared.backup import start_position


def test_the_consumer_starts_after_its_floor_in_the_new_numbering() -> None:
    # the original stream started at #5 (older messages expired) and had #7 deleted
    mapping = {5: 1, 6: 2, 8: 3, 9: 4}
    assert start_position(0, mapping) == 1  # nothing acked: everything replays
    assert start_position(6, mapping) == 3  # #7 is gone: #8 is next
    assert start_position(7, mapping) == 3
    assert start_position(9, mapping) is None  # caught up: only new messages


def test_a_dropped_duplicate_maps_to_the_message_kept() -> None:
    mapping = {1: 1, 2: 2, 3: 2, 4: 3}  # #3 repeated #2's id inside the duplicate window
    assert start_position(2, mapping) == 2  # redelivered: the inbox drops it
    assert start_position(3, mapping) == 3
