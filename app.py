"""Songsmith's Streamlit entry point: the login gate and the navigation over pages/."""

from __future__ import annotations

import streamlit as st

from ui import auth, state


def main() -> None:
    st.set_page_config(page_title="Songsmith", page_icon=":material/music_note:", layout="wide")
    actor = state.current_actor()
    if actor is None:
        st.navigation([st.Page(auth.login_page, title="Sign in", icon=":material/login:")]).run()
        return
    pages = [
        st.Page("pages/submit.py", title="Submit", icon=":material/edit_note:", default=True),
        st.Page("pages/jobs.py", title="Jobs", icon=":material/queue_music:"),
        st.Page("pages/job.py", title="Job detail", icon=":material/library_music:"),
    ]
    nav = st.navigation(pages)
    with st.sidebar:
        st.caption(f"Signed in as **{actor.username}** ({actor.role})")
        if st.button("Sign out", key="app.logout", icon=":material/logout:"):
            auth.logout()
    nav.run()


main()
