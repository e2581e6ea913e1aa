"""The batch file parser on generated fixtures of every variant real tools export, plus a fuzz."""

from __future__ import annotations

import contextlib
import io
import time
import tracemalloc
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from core.batch_parse import Limits, parse_lines, parse_upload
from core.errors import UserError

LIMITS = Limits(max_rows=10_000, max_bytes=20 * 1024 * 1024, max_xlsx_uncompressed=50 * 1024 * 1024)
CONCEPTS = ["Café jazz at dawn", "It’s a “rainy” polka", "A ballad, slow and sad"]


def concept_column(table) -> list[str]:
    return [text for _, text in table.values(table.suggested)]


def csv_text(delim: str = ",", header: bool = True) -> str:
    lines = [f"id{delim}concept{delim}mood"] if header else []
    for i, c in enumerate(CONCEPTS, start=1):
        lines.append(f'{i}{delim}"{c}"{delim}calm')
    return "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (csv_text().encode("utf-8"), "UTF-8"),
        (csv_text().encode("utf-8-sig"), "UTF-8 with BOM"),
        (csv_text("\t").encode("utf-16"), "UTF-16"),  # Excel "Unicode Text": UTF-16 LE with BOM, tabs
        (csv_text(";").encode("cp1252"), "Windows-1252"),
    ],
)
def test_encodings_decode_to_the_same_concepts(data, encoding):
    table = parse_upload(data, "list.csv", LIMITS)
    assert encoding in table.source
    assert table.columns == ["id", "concept", "mood"] and table.suggested == 1
    assert concept_column(table) == CONCEPTS
    assert table.row_numbers == [2, 3, 4]


def test_utf16_from_excel_is_little_endian_with_bom():
    data = b"\xff\xfe" + csv_text("\t").encode("utf-16-le")
    assert concept_column(parse_upload(data, "x.txt", LIMITS)) == CONCEPTS


@pytest.mark.parametrize(("delim", "name"), [(",", "comma"), (";", "semicolon"), ("\t", "tab")])
def test_delimiter_is_detected(delim, name):
    table = parse_upload(csv_text(delim).encode(), "x.csv", LIMITS)
    assert f"{name} separated" in table.source and len(table.columns) == 3


def test_no_header_single_column_keeps_the_first_row():
    table = parse_upload(b"A lullaby for owls\nA march for ants\n", "x.csv", LIMITS)
    assert not table.has_header and concept_column(table) == ["A lullaby for owls", "A march for ants"]
    assert table.row_numbers == [1, 2]


def test_no_header_several_columns_picks_the_longest_text():
    data = b"1,A slow waltz about the sea,x\n2,An angry punk song about taxes,y\n"
    table = parse_upload(data, "x.csv", LIMITS)
    assert not table.has_header and table.suggested == 1


def test_header_can_be_forced_off():
    table = parse_upload(csv_text().encode(), "x.csv", LIMITS, header=False)
    assert len(table.rows) == 4 and table.row_numbers[0] == 1


def test_quoted_commas_newlines_blank_lines_and_trailing_empty_columns():
    data = (
        b'Title,Prompt,,,\n\n"x","A song, with commas",,,\n,,,,\n'
        b'"y","A song over\ntwo lines",,,\n\n\n"z","He said ""hi""",,\n'
    )
    table = parse_upload(data, "x.csv", LIMITS)
    assert table.columns == ["Title", "Prompt"] and table.suggested == 1
    assert concept_column(table) == ["A song, with commas", "A song over\ntwo lines", 'He said "hi"']
    assert table.row_numbers == [3, 5, 8]


@pytest.mark.parametrize("name", ["Concept", "PROMPT", "caption", "Description"])
def test_concept_column_preselected_by_name(name):
    data = f"id,author,{name},notes\n1,me,A waltz,none\n".encode()
    table = parse_upload(data, "x.csv", LIMITS)
    assert table.columns[table.suggested] == name


def test_xlsx_made_with_openpyxl():
    wb = Workbook()
    ws = wb.active
    ws.append(["id", "Prompt", None])
    for i, c in enumerate(CONCEPTS, start=1):
        ws.append([i, c, None])
    ws.append([None, None, None])
    ws.append([4.0, 12.0, None])
    buf = io.BytesIO()
    wb.save(buf)
    table = parse_upload(buf.getvalue(), "book.xlsx", LIMITS)
    assert table.source == "XLSX" and table.columns == ["id", "Prompt"] and table.suggested == 1
    assert concept_column(table) == [*CONCEPTS, "12"]
    assert table.row_numbers == [2, 3, 4, 6]


def test_xlsx_zip_bomb_is_refused_before_inflating():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/worksheets/sheet1.xml", b"\0" * (12 * 1024 * 1024))
    started = time.perf_counter()
    with pytest.raises(UserError, match="BATCH_MAX_XLSX_UNCOMPRESSED_BYTES"):
        parse_upload(
            buf.getvalue(), "bomb.xlsx", Limits(10_000, 10**7, max_xlsx_uncompressed=8 * 1024 * 1024)
        )
    with pytest.raises(UserError, match="would unpack"):  # under the size cap, but a 1000:1 ratio
        parse_upload(buf.getvalue(), "bomb.xlsx", LIMITS)
    assert time.perf_counter() - started < 2


def test_oversize_file_is_refused_naming_the_limit():
    with pytest.raises(UserError, match=r"limit is 1,000 bytes \(BATCH_MAX_FILE_BYTES\)"):
        parse_upload(b"x" * 1001, "x.csv", Limits(max_rows=10, max_bytes=1000))


def test_over_row_limit_is_refused_naming_the_limit():
    data = "concept\n" + "".join(f"song {i}\n" for i in range(11))
    with pytest.raises(UserError, match=r"limit is 10 rows per batch \(BATCH_MAX_ROWS\)"):
        parse_upload(data.encode(), "x.csv", Limits(max_rows=10, max_bytes=10**6))
    assert len(parse_upload(data.encode(), "x.csv", Limits(max_rows=11, max_bytes=10**6)).rows) == 11


@pytest.mark.parametrize("line", [b"\n", b",,,,\r\n"])
def test_a_million_empty_rows_is_refused_quickly_with_bounded_memory(line):
    data = line * 1_000_000
    started = time.perf_counter()
    with pytest.raises(UserError, match="BATCH_MAX_ROWS"):
        parse_upload(data, "empty.csv", LIMITS)
    assert time.perf_counter() - started < 2
    tracemalloc.start()
    try:
        with pytest.raises(UserError, match="BATCH_MAX_ROWS"):
            parse_upload(data, "empty.csv", LIMITS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * len(data) + 20 * 1024 * 1024  # the decoded text, not a list of a million rows


def test_empty_file_and_header_only():
    with pytest.raises(UserError, match="empty"):
        parse_upload(b"", "x.csv", LIMITS)
    with pytest.raises(UserError, match="no rows"):
        parse_upload(b"concept\n", "x.csv", LIMITS)


def test_old_xls_and_damaged_xlsx_get_clear_messages():
    with pytest.raises(UserError, match=".xlsx or CSV"):
        parse_upload(b"\xd0\xcf\x11\xe0" + b"\0" * 100, "old.xls", LIMITS)
    with pytest.raises(UserError, match="damaged"):
        parse_upload(b"PK\x03\x04 not a zip", "x.xlsx", LIMITS)


def test_pasted_lines():
    table = parse_lines("first\n\n  second  \r\nthird", LIMITS)
    assert [(n, t) for n, t in table.values(0)] == [(1, "first"), (3, "  second  "), (4, "third")]
    with pytest.raises(UserError, match="BATCH_MAX_ROWS"):
        parse_lines("a\nb\nc\n", Limits(max_rows=2, max_bytes=100))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=2000), st.text(max_size=500).map(lambda t: t.encode("utf-8", "surrogatepass"))
    )
)
def test_fuzz_parser_never_raises_anything_but_user_error(data):
    for name in ("x.csv", "x.xlsx"):
        try:
            table = parse_upload(data, name, Limits(max_rows=50, max_bytes=10_000))
        except UserError:
            continue
        assert table.rows and 0 <= table.suggested < len(table.columns)
        assert len(table.rows) == len(table.row_numbers) <= 50


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from(["a", "b,c", '"q""x"', ";", "\t", "\n", "\r\n", ",", " ", "é", "\x00"]), max_size=60
    )
)
def test_fuzz_csv_like_text(parts):
    data = "".join(parts).encode()
    with contextlib.suppress(UserError):
        parse_upload(data, "x.csv", Limits(max_rows=50, max_bytes=10_000))
