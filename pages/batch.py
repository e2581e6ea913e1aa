"""Create a batch: upload a CSV/XLSX or paste lines, pick the concept column, preview problems, create."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import batches
from ui import state
from ui.auth import require_actor
from ui.deps import get_dependencies
from ui.widgets import guarded

TOKEN = "batch.token"
actor = require_actor()
deps = get_dependencies()
cfg = deps.settings
st.title("New batch")
st.caption(
    f"Upload a CSV or XLSX (UTF-8, UTF-16 or Windows-1252; comma, semicolon or tab separated) or paste "
    f"one concept per line. Up to {cfg.batch_max_rows:,} rows and {cfg.batch_max_file_bytes // 1_048_576} MB."
)

source = st.radio("Source", ["Upload a file", "Paste lines"], horizontal=True, key="batch.source")
table, filename = None, None
if source == "Upload a file":
    upload = st.file_uploader("CSV or XLSX file", type=["csv", "tsv", "txt", "xlsx"], key="batch.file")
    if upload is not None:
        filename, data = upload.name, upload.getvalue()
        detected = guarded(lambda: batches.read_upload(deps, data, filename))
        if detected is not None:
            header = st.toggle(
                "The first row is a header", value=detected.has_header, key=f"batch.header.{filename}"
            )
            table = (
                detected
                if header == detected.has_header
                else guarded(lambda: batches.read_upload(deps, data, filename, header=header))
            )
else:
    pasted = st.text_area("Concepts, one per line", key="batch.paste", height=200)
    if pasted.strip():
        table = guarded(lambda: batches.read_pasted(deps, pasted))

if table is None:
    st.stop()

st.caption(f"Read as {table.source}; {len(table.rows):,} rows.")
column = st.selectbox(
    "Concept column",
    range(len(table.columns)),
    index=table.suggested,
    format_func=lambda i: table.columns[i],
    key="batch.column",
    disabled=len(table.columns) == 1,
)
rows = batches.rows_of(table, column)
checked = guarded(lambda: batches.preview(deps, rows))
if checked is None:
    st.stop()

left, mid, right = st.columns(3)
left.metric("Rows", f"{checked.total_rows:,}")
mid.metric("Ready", f"{checked.valid_rows:,}")
right.metric("Problems", f"{len(checked.problems):,}")
st.dataframe(pd.DataFrame({"Concept": checked.concepts[:20]}), hide_index=True, width="stretch", height=200)
skip = True
if checked.problems:
    st.warning(f"{len(checked.problems):,} row(s) have problems.")
    st.dataframe(
        pd.DataFrame([p.model_dump() for p in checked.problems[:500]]).rename(
            columns={"row": "Row", "kind": "Problem", "message": "Details"}
        ),
        hide_index=True,
        width="stretch",
    )
    choice = st.radio(
        "What to do with the problem rows",
        ["Skip them and create the rest", "I will fix the file first"],
        key="batch.skip",
    )
    skip = choice.startswith("Skip")

name = st.text_input("Batch name", value=(filename or "Pasted concepts"), max_chars=200, key="batch.name")
if st.button(
    f"Create {checked.valid_rows:,} jobs",
    type="primary",
    icon=":material/playlist_add:",
    key="batch.create",
    disabled=not skip or checked.valid_rows == 0,
):
    made = guarded(
        lambda: batches.create_batch(
            deps,
            actor,
            rows,
            name=name,
            skip_problems=skip,
            idempotency_key=state.form_token(TOKEN),
            source_filename=filename,
        )
    )
    if made is not None:
        state.rotate_token(TOKEN)
        st.success(f"Batch created: {made.total:,} jobs queued.")
        st.page_link(
            "pages/batches.py",
            label="Follow the batch",
            icon=":material/open_in_new:",
            query_params={"id": str(made.id)},
        )
