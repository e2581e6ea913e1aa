"""Songsmith's Streamlit entry point: the login gate and the navigation over pages/."""

from __future__ import annotations

import streamlit as st

from ui import auth


def main() -> None:
    st.set_page_config(page_title="Songsmith", page_icon=":material/music_note:", layout="wide")
    actor = auth.current_user()
    auth.render_cookie()
    if actor is None:
        st.navigation([st.Page(auth.login_page, title="Sign in", icon=":material/login:")]).run()
        return
    pages = [
        st.Page("pages/submit.py", title="Submit", icon=":material/edit_note:", default=True),
        st.Page("pages/jobs.py", title="Jobs", icon=":material/queue_music:"),
        st.Page("pages/job.py", title="Job detail", icon=":material/library_music:"),
        st.Page("pages/batch.py", title="New batch", icon=":material/playlist_add:"),
        st.Page("pages/batches.py", title="Batches", icon=":material/stacks:"),
        st.Page("pages/metrics.py", title="Metrics", icon=":material/monitoring:"),
        st.Page("pages/settings.py", title="Settings", icon=":material/settings:"),
    ]
    nav = st.navigation(pages)
    with st.sidebar:
        auth.sign_out_control(actor)
    nav.run()


main()
