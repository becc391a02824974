"""The storage process over its real pipes: answers in order, big groups split into bounded
transactions, a bad request answered as an error without stopping the process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.storage.helpers import APP, command

from optin.storage import open_storage
from optin.storage.base import prepare_batch
from optin.storage.process import GROUP_EVENTS, HEADER, decode_frame, encode_frame


def _answer(proc: subprocess.Popen[bytes]) -> Any:
    assert proc.stdout is not None
    (length,) = HEADER.unpack(proc.stdout.read(HEADER.size))
    return decode_frame(proc.stdout.read(length))


def _request(*batches: tuple[str, list[dict[str, Any]]]) -> bytes:
    return encode_frame([tuple(prepare_batch(app, events)) for app, events in batches])


def test_the_storage_process_answers_each_request_in_order(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    per_batch = GROUP_EVENTS // 2 + 100
    first = [command(i, hour=i % 24) for i in range(per_batch)]
    second = [command(10_000 + i) for i in range(per_batch)] + first[:5]
    broken = [(APP, [], 0, 0)]  # a bug in the collector, say: too few fields
    proc = subprocess.Popen(
        [sys.executable, "-m", "optin.storage.process", url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdin is not None
    try:
        # Three requests written at once: the process reads them together.
        proc.stdin.write(
            _request((APP, first), (APP, second))
            + encode_frame(broken)
            + _request((APP, [command(20_000)]), ("other-app", [command(20_001)]))
        )
        proc.stdin.flush()
        assert _answer(proc) == {"results": [[per_batch, 0, 0], [per_batch, 5, 0]]}
        error = _answer(proc)
        assert error["error"] == "error"
        assert _answer(proc) == {"results": [[1, 0, 0], [1, 0, 0]]}
    finally:
        proc.stdin.close()
        code = proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()
    assert code == 0, "the process exits when its input ends"
    with open_storage(url) as storage:
        assert len(storage.raw_events(APP)) == 2 * per_batch + 1
        assert len(storage.raw_events("other-app")) == 1
