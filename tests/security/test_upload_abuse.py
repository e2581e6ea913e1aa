"""Upload abuse: over-size files, a zip bomb dressed as .xlsx, a million empty rows, junk bytes.

Each is refused by the service the pages call (`core.batches.read_upload`) with a message naming the
limit, and the parse's peak Python memory (tracemalloc) stays under a fixed bound. Time is not asserted.
"""

from __future__ import annotations

import functools
import io
import tracemalloc
import zipfile

import pytest

from core.batches import read_upload

MEMORY_BOUND = 64 * 1024 * 1024


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


@functools.cache
def _bomb(inflated: int) -> bytes:
    """A valid-looking workbook whose sheet inflates ~1000:1 (zeros deflate extremely well)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", "<workbook/>")
        chunk = b"<row><c><v>0</v></c></row>" * 4096
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            for _ in range(inflated // len(chunk)):
                sheet.write(chunk)
    return buf.getvalue()


def test_a_file_over_the_size_limit_is_refused_naming_the_limit(deps, hostile):
    data = b"concept\n" + b"a song about the sea\n" * (deps.settings.batch_max_file_bytes // 20 + 1)
    assert len(data) > deps.settings.batch_max_file_bytes
    box: dict = {}

    def run() -> None:
        box["err"] = hostile.refused(
            "upload over BATCH_MAX_FILE_BYTES",
            lambda: read_upload(deps, data, "big.csv"),
            match="BATCH_MAX_FILE_BYTES",
        )

    peak = _peak(run)
    assert f"{deps.settings.batch_max_file_bytes:,} bytes" in box["err"].message
    hostile.held("oversize upload memory bounded", peak < MEMORY_BOUND)


@pytest.mark.parametrize("filename", ["report.xlsx", "report.csv", None])
def test_a_zip_bomb_disguised_as_xlsx_is_refused_before_inflating(deps, hostile, filename):
    data = _bomb(300 * 1024 * 1024)  # 300 MB inflated, well under 1 MB on the wire
    assert len(data) < 2 * 1024 * 1024
    peak = _peak(
        lambda: hostile.refused(
            f"zip bomb named {filename}",
            lambda: read_upload(deps, data, filename),
            match="BATCH_MAX_XLSX_UNCOMPRESSED_BYTES",
        )
    )
    hostile.held(f"zip bomb {filename} memory bounded ({peak:,} B)", peak < MEMORY_BOUND)


def test_a_modest_ratio_bomb_under_the_size_cap_is_refused_by_its_ratio(deps, hostile):
    data = _bomb(20 * 1024 * 1024)  # under the 100 MB cap but ~1000:1
    hostile.refused("20 MB high-ratio bomb", lambda: read_upload(deps, data, "x.xlsx"), match="would unpack")


@pytest.mark.parametrize("line", [b"\n", b",,,,\r\n", b'"",""\n'])
def test_a_million_empty_rows_is_refused_with_bounded_memory(deps, hostile, line):
    data = b"concept\n" + line * 1_000_000
    if len(data) > deps.settings.batch_max_file_bytes:
        pytest.skip("larger than the file limit; covered by the size test")
    peak = _peak(
        lambda: hostile.refused(
            f"a million {line!r} rows", lambda: read_upload(deps, data, "empty.csv"), match="BATCH_MAX_ROWS"
        )
    )
    hostile.held(f"million {line!r} rows memory bounded ({peak:,} B)", peak < MEMORY_BOUND)


def test_more_rows_than_the_limit_is_refused(deps, hostile):
    n = deps.settings.batch_max_rows + 1
    data = b"concept\n" + b"".join(b"song %d\n" % i for i in range(n))
    hostile.refused(
        "BATCH_MAX_ROWS + 1 rows", lambda: read_upload(deps, data, "x.csv"), match="BATCH_MAX_ROWS"
    )


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"PK\x03\x04" + b"\x00" * 200, "damaged"),  # zip magic, no zip
        (b"\xd0\xcf\x11\xe0" + b"\x00" * 200, ".xls"),  # old OLE workbook
        (b"\xff\xfe" + b"\x00\xd8" * 10, "UTF-16"),  # UTF-16 BOM, lone surrogates
        (b'"unterminated\n' + b"x" * 100, None),  # may parse as one cell or be refused: never crash
    ],
    ids=["fake-zip", "ole", "bad-utf16", "unterminated-quote"],
)
def test_junk_files_get_a_message_not_a_crash(deps, hostile, data, match):
    try:
        table = read_upload(deps, data, "junk.xlsx" if data.startswith(b"PK") else "junk.csv")
    except Exception as exc:  # noqa: BLE001 - the point: only UserError may come out
        from core.errors import UserError

        hostile.held(f"junk {data[:8]!r} → {type(exc).__name__}", isinstance(exc, UserError))
        if match:
            assert match in exc.message
        return
    hostile.held(f"junk {data[:8]!r} accepted", match is None and len(table.rows) >= 1)
