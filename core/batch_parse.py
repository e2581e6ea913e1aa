"""Turns an uploaded CSV/XLSX or pasted lines into a table of text cells, or a UserError saying why not.

Pure functions over bytes: no database, no Redis. Files exported by real tools must just work, so
decoding sniffs BOMs (UTF-8, UTF-16 LE/BE as Excel writes them), then tries strict UTF-8, then
Windows-1252; the delimiter is chosen among `,` `;` and tab by how consistently each splits the first
records (csv.Sniffer breaks ties); quoted cells may hold delimiters and newlines; blank rows and
trailing empty columns are dropped. XLSX is read with openpyxl in read-only mode after the zip's
declared uncompressed sizes were checked, so a zip bomb is refused before anything is inflated.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time

from core.errors import UserError

CONCEPT_NAMES = ("concept", "prompt", "caption", "description")
DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
SNIFF_CHARS = 64 * 1024
# Physical records (blank ones included) read before giving up: a file of a million empty lines is
# refused after this many instead of being walked to the end.
BLANK_SLACK = 1000
MAX_ZIP_RATIO = 200
MAX_COLUMNS = 200
XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"


@dataclass(frozen=True)
class Limits:
    max_rows: int
    max_bytes: int
    max_xlsx_uncompressed: int = 100 * 1024 * 1024


@dataclass(frozen=True)
class Table:
    """Data rows with their spreadsheet row numbers (1-based, the header is row 1 when there is one)."""

    columns: list[str]
    rows: list[list[str]]
    row_numbers: list[int]
    has_header: bool
    source: str  # e.g. "CSV, UTF-8, comma separated" or "XLSX" or "pasted lines"
    suggested: int  # the pre-selected concept column

    def values(self, column: int) -> list[tuple[int, str]]:
        return [
            (n, row[column] if column < len(row) else "")
            for n, row in zip(self.row_numbers, self.rows, strict=True)
        ]


def parse_upload(data: bytes, filename: str | None, limits: Limits, *, header: bool | None = None) -> Table:
    """CSV/TSV/TXT or XLSX bytes → Table. `header=None` detects a header row."""
    if len(data) > limits.max_bytes:
        raise UserError(
            f"The file is {len(data):,} bytes; the limit is {limits.max_bytes:,} bytes "
            "(BATCH_MAX_FILE_BYTES). Split it into smaller files."
        )
    name = (filename or "").lower()
    if data.startswith(OLE_MAGIC) or name.endswith(".xls"):
        raise UserError("Old .xls workbooks are not supported: save the sheet as .xlsx or CSV.")
    if data.startswith(XLSX_MAGIC) or name.endswith((".xlsx", ".xlsm")):
        records = _xlsx_records(data, limits)
        return _build(records, limits, header=header, source="XLSX")
    text, encoding = decode(data)
    return parse_text(text, limits, header=header, encoding=encoding)


def parse_lines(text: str, limits: Limits) -> Table:
    """Pasted text: one concept per non-blank line; line numbers are the row numbers."""
    if len(text.encode("utf-8", "surrogatepass")) > limits.max_bytes:
        raise UserError(
            f"The pasted text is larger than {limits.max_bytes:,} bytes (BATCH_MAX_FILE_BYTES); "
            "upload it as a file in parts."
        )
    records = ([line] for line in text.splitlines())
    return _build(records, limits, header=False, source="pasted lines", columns=["Concept"])


def decode(data: bytes) -> tuple[str, str]:
    """Bytes → (text, encoding name). Never fails: Windows-1252/Latin-1 decode any byte string."""
    for bom, enc in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(enc), {"utf-8-sig": "UTF-8 with BOM"}.get(enc, enc.upper())
            except UnicodeDecodeError:
                raise UserError(
                    f"The file starts like {enc.upper()} but is not valid {enc.upper()}: re-export it."
                ) from None
    sample = data[:4096]
    if len(sample) >= 4 and sample.count(0) > len(sample) // 4:
        enc = "utf-16-le" if sample[1::2].count(0) > sample[0::2].count(0) else "utf-16-be"
        try:
            return data.decode(enc), enc.upper()
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "Latin-1"


def parse_text(text: str, limits: Limits, *, header: bool | None = None, encoding: str = "text") -> Table:
    text = text.lstrip("\ufeff")
    delimiter = detect_delimiter(text[:SNIFF_CHARS])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    source = f"CSV, {encoding}, {DELIMITER_NAMES[delimiter]} separated"
    return _build(_guard_csv(reader), limits, header=header, source=source)


def _guard_csv(reader: Iterator[list[str]]) -> Iterator[list[str]]:
    try:
        yield from reader
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise UserError(
                f"A cell near line {reader.line_num} is longer than {csv.field_size_limit():,} characters "
                "(often an unclosed quote); concepts are far shorter. Fix the file and upload it again."
            ) from None
        raise UserError(f"The file could not be read as CSV near line {reader.line_num}: {exc}.") from None


def detect_delimiter(sample: str) -> str:
    """The delimiter among , ; tab that splits the first records into the most consistent columns."""
    cut = sample.rfind("\n")
    sample = sample[:cut] if cut > 0 else sample
    try:
        # Sniffer is regex-heavy: a short sample keeps it fast; it only breaks ties here.
        sniffed: str | None = csv.Sniffer().sniff(sample[:8192], delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        sniffed = None
    best, best_score = ",", (False, 0.0, 0, False)
    for delim in DELIMITERS:
        try:
            reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delim)
            records = [r for r in reader if not _blank(r)]
        except csv.Error:
            continue
        records = [_trim(r) for r in records[:50]]
        if not records:
            continue
        widths = Counter(len(r) for r in records)
        mode, hits = widths.most_common(1)[0]
        score = (mode > 1, hits / len(records), mode, delim == sniffed)
        if score > best_score:
            best, best_score = delim, score
    return best


def _newlines(cell: str) -> str:
    """A quoted cell's line breaks as Excel writes them (CRLF, or a lone CR) become plain newlines."""
    return cell.replace("\r\n", "\n").replace("\r", "\n") if "\r" in cell else cell


def _blank(row: list[str]) -> bool:
    """Empty, whitespace-only, or only delimiters (a spreadsheet's `,,,,` line) counts as blank."""
    return not any(cell.strip(" \t\r\n,;") for cell in row)


def _trim(row: list[str]) -> list[str]:
    end = len(row)
    while end and not row[end - 1].strip():
        end -= 1
    return row[:end]


def _build(
    records: Iterable[list[str]],
    limits: Limits,
    *,
    header: bool | None,
    source: str,
    columns: list[str] | None = None,
) -> Table:
    rows: list[list[str]] = []
    numbers: list[int] = []
    max_records = limits.max_rows * 2 + BLANK_SLACK
    for number, raw in enumerate(records, start=1):
        if number > max_records:
            raise UserError(
                f"The file has more than {max_records:,} lines (most of them blank); the limit is "
                f"{limits.max_rows:,} rows per batch (BATCH_MAX_ROWS)."
            )
        row = _trim([_newlines(cell if isinstance(cell, str) else str(cell)) for cell in raw])
        if _blank(row):
            continue
        if len(rows) > limits.max_rows:  # one extra row allowed for a header
            raise UserError(
                f"The file has more than {limits.max_rows:,} rows; the limit is {limits.max_rows:,} "
                "rows per batch (BATCH_MAX_ROWS). Split it into several batches."
            )
        rows.append(row[:MAX_COLUMNS])
        numbers.append(number)
    if not rows:
        raise UserError("No concepts found: the file is empty or has only blank lines.")
    width = max(len(r) for r in rows)
    has_header = _looks_like_header(rows) if header is None else header
    if has_header:
        names = _column_names(rows[0], width)
        rows, numbers = rows[1:], numbers[1:]
    else:
        names = columns or [f"Column {i + 1}" for i in range(width)]
    if len(rows) > limits.max_rows:
        raise UserError(
            f"The file has {len(rows):,} rows; the limit is {limits.max_rows:,} rows per batch "
            "(BATCH_MAX_ROWS). Split it into several batches."
        )
    if not rows:
        raise UserError("No concepts found: the file has a header row but no rows under it.")
    return Table(
        columns=names,
        rows=rows,
        row_numbers=numbers,
        has_header=has_header,
        source=source,
        suggested=suggest_column(names, rows, has_header),
    )


def _column_names(first: list[str], width: int) -> list[str]:
    names: list[str] = []
    for i in range(width):
        base = first[i].strip() if i < len(first) and first[i].strip() else f"Column {i + 1}"
        name, n = base, 2
        while name in names:
            name, n = f"{base} ({n})", n + 1
        names.append(name)
    return names


def _looks_like_header(rows: list[list[str]]) -> bool:
    first = [c.strip() for c in rows[0]]
    if any(c.lower() in CONCEPT_NAMES for c in first):
        return True
    if len(rows) < 2 or max(len(r) for r in rows) < 2:
        return False
    # A header row: every cell filled, short, distinct, not numeric, and shorter than the data under it.
    if not all(first) or len(set(first)) != len(first) or any(len(c) > 40 for c in first):
        return False
    if any(_numeric(c) for c in first):
        return False
    body = rows[1:51]
    body_len = sum(len(c) for r in body for c in r) / max(1, sum(len(r) for r in body))
    numeric_below = any(
        all(_numeric(r[i]) for r in body if i < len(r) and r[i].strip()) for i in range(len(first))
    )
    return numeric_below or body_len > 1.5 * (sum(len(c) for c in first) / len(first))


def _numeric(cell: str) -> bool:
    try:
        float(cell.replace(",", "."))
    except ValueError:
        return False
    return True


def suggest_column(names: list[str], rows: list[list[str]], has_header: bool) -> int:
    """By name (concept, prompt, caption, description; case-insensitive), else the longest text."""
    if has_header:
        lowered = [n.strip().lower() for n in names]
        for wanted in CONCEPT_NAMES:
            if wanted in lowered:
                return lowered.index(wanted)
        for wanted in CONCEPT_NAMES:
            for i, n in enumerate(lowered):
                if wanted in n:
                    return i
    sample = rows[:200]
    lengths = [sum(len(r[i]) for r in sample if i < len(r)) for i in range(len(names))]
    return max(range(len(names)), key=lambda i: lengths[i]) if names else 0


def _xlsx_records(data: bytes, limits: Limits) -> Iterator[list[str]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise UserError("This .xlsx file is damaged or not really an Excel workbook.") from None
    total = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos)
    worst = max((i.file_size / max(1, i.compress_size) for i in infos), default=0)
    if (
        total > limits.max_xlsx_uncompressed
        or worst > MAX_ZIP_RATIO
        or total > MAX_ZIP_RATIO * max(1, packed)
    ):
        raise UserError(
            f"This workbook would unpack to {total:,} bytes; the limit is "
            f"{limits.max_xlsx_uncompressed:,} bytes (BATCH_MAX_XLSX_UNCOMPRESSED_BYTES). Save it as CSV."
        )
    return _xlsx_rows(data)


def _xlsx_rows(data: bytes) -> Iterator[list[str]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many types (KeyError, InvalidFileException, XML errors) for bad files
        raise UserError("This .xlsx file could not be opened: save it again from Excel, or as CSV.") from None
    try:
        ws = wb.worksheets[0] if wb.worksheets else None
        if ws is None:
            return
        for row in ws.iter_rows(values_only=True):
            yield [_cell_text(v) for v in row[:MAX_COLUMNS]]
    except UserError:
        raise
    except Exception:
        raise UserError("This .xlsx file could not be read to the end: save it again, or as CSV.") from None
    finally:
        wb.close()


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)
