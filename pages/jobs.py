"""Jobs: browse every job with filters and paging, search all transcripts, open one job to
listen, read, export, cancel, retry or delete it. `?job=12&t=3400` opens job 12 at 3.4 s."""

import streamlit as st

from engine import export, intake, web_process
from engine.dashboard import formatting, jobs_page, widgets
from engine.errors import JobNotFoundError, SeacoError
from engine.jobs import Job, JobState

settings = web_process.settings()
store = web_process.store()
tz = jobs_page.zone(st.context.timezone)
link = jobs_page.read_link(st.query_params)
REFRESH_S = 2.0  # how often the list is redrawn while jobs are queued or running


def back_to_list() -> None:
    st.query_params.clear()


def download_buttons(job: Job) -> None:
    columns = st.columns(len(export.FORMATS))
    for column, fmt in zip(columns, export.FORMATS, strict=True):
        column.download_button(
            fmt.upper(),
            data=export.export_job(job, fmt),
            file_name=export.export_filename(job, fmt),
            mime=export.FORMATS[fmt][0],
            key=f"dl-{job.id}-{fmt}",
        )


def job_actions(job: Job) -> None:
    """Cancel, retry and delete, always in the same three places; the ones that do not apply
    to the job's state are greyed out and say why."""
    why_not = jobs_page.action_states(job)
    cancel, retry, delete = st.columns(3)
    try:
        if cancel.button("Cancel job", disabled=bool(why_not["cancel"]), help=why_not["cancel"]):
            store.cancel(job.id)
            st.rerun()
        if retry.button("Retry job", disabled=bool(why_not["retry"]), help=why_not["retry"]):
            store.retry(job.id, queue_max=settings.queue_max)
            st.rerun()
        with delete.popover("Delete job", disabled=bool(why_not["delete"]), help=why_not["delete"]):
            st.write("Deletes the transcript and, unless another job uses it, the audio.")
            if st.button("Delete for good", type="primary"):
                intake.delete_job(store, settings, job.id)
                st.query_params.clear()
                st.toast(f"Job {job.id} deleted.")
                st.rerun()
    except SeacoError as exc:
        st.error(str(exc))


def show_hotwords(job: Job) -> None:
    st.markdown("**Hotwords**")
    for warning in job.hotword_warnings or []:
        st.warning(warning)
    view = jobs_page.hotwords_view(job)
    if view.asked:
        st.write("Asked for: " + ", ".join(view.asked))
    if view.summary:
        st.caption(view.summary)
    presence = view.presence
    if presence is None:
        return
    st.write("Used: " + ", ".join(presence.used))
    st.write("In the transcript: " + (", ".join(presence.present) or "none of them"))
    if presence.absent:
        st.caption("Not in the transcript: " + ", ".join(presence.absent))


def compare_without_hotwords(job: Job) -> None:
    st.markdown("**Compare without hotwords**")
    other = store.comparison_for(job.id)
    if other is None:
        st.caption("Run this audio again with no hotwords at all to see what they changed.")
        if st.button("Compare without hotwords"):
            try:
                intake.resubmit_without_hotwords(store, settings, job.id)
            except SeacoError as exc:
                st.error(str(exc))
            else:
                st.rerun()
        return
    if not other.state.is_final:
        follow_unfinished(other.id)
        return
    if other.state is not JobState.DONE:
        st.warning(
            f"The run without hotwords (job {other.id}) " + formatting.job_status_line(other, None)
        )
        return
    result = jobs_page.compare(job, other)
    st.caption(
        f"Job {other.id} ran without hotwords. Struck out: its text; underlined: "
        "what the hotwords made instead."
    )
    st.html(result.diff_html if not result.identical else "<p>The transcripts are identical.</p>")
    st.write("Gained: " + (", ".join(result.gained) or "none"))
    st.write("Lost: " + (", ".join(result.lost) or "none"))


@st.fragment(run_every=1)
def follow_unfinished(job_id: int) -> None:
    """Keeps the status line live; redraws the whole page once the job is final."""
    job = store.get(job_id)
    if job.state.is_final:
        st.rerun()
    st.info(formatting.job_status_line(job, store.queue_position(job_id)))


def show_job(job_id: int, t_ms: int) -> None:
    st.button("← All jobs", on_click=back_to_list)
    try:
        job = store.get(job_id)
    except JobNotFoundError as exc:
        st.error(f"{exc} It may have been deleted.")
        return
    # page_link navigation leaves the browser's address bare; write the link back into it
    # so the address can be bookmarked or sent to a colleague
    st.query_params.from_dict(jobs_page.link_params(job.id, t_ms or None))
    st.title(f"Job {job.id}: {job.original_name}")
    st.caption(jobs_page.audio_facts(job) + (f" · batch {job.batch_id}" if job.batch_id else ""))

    if not job.state.is_final:
        follow_unfinished(job.id)
    elif job.state is JobState.FAILED:
        st.error(formatting.job_status_line(job, None))
    elif job.state is JobState.CANCELLED:
        st.warning(formatting.job_status_line(job, None))
    job_actions(job)

    player = jobs_page.playable_audio(settings, job)
    if player.data is None:
        st.caption(player.reason)
    else:
        st.audio(player.data, format=player.mime, start_time=t_ms / 1000)

    if job.state is JobState.DONE:
        columns = st.columns(5)
        for column, (label, value) in zip(
            columns, formatting.job_metrics(job).items(), strict=True
        ):
            column.metric(label, value)
        st.markdown("**Transcript**")
        st.text_area("Transcript", job.text or "(no speech found)", label_visibility="collapsed")
        if job.sentences:
            current = jobs_page.current_sentence(job, t_ms) if t_ms else None
            if current is not None:
                sentence = job.sentences[current]
                st.info(f"At {formatting.timestamp(sentence.start_ms)}: {sentence.text}")
            st.dataframe(jobs_page.sentence_table(job), hide_index=True, width="stretch")
        st.markdown("**Download**")
        download_buttons(job)

    show_hotwords(job)
    if job.state is JobState.DONE and job.effective_hotwords:
        compare_without_hotwords(job)

    if callback := jobs_page.callback_line(store, job, tz):
        st.caption(callback)
    with st.expander("Timings"):
        st.dataframe(jobs_page.timing_rows(job, tz), hide_index=True, width="stretch")


def browse() -> None:
    with st.container(border=True):
        c1, c2, c3, c4 = st.columns([1, 2, 2, 2])
        state = c1.selectbox("State", jobs_page.STATE_CHOICES)
        days = c2.date_input("Submitted between", value=(), format="YYYY-MM-DD")
        name = c3.text_input("File name contains")
        batch_id = c4.text_input("Batch id")
    where = jobs_page.job_filter(state=state, days=days, batch_id=batch_id, name=name, tz=tz)
    active = jobs_page.has_unfinished(store)
    widgets.live_fragment(active, job_list, every_s=REFRESH_S)(where, active)


def job_list(where: jobs_page.JobFilter, was_active: bool) -> None:
    """The table of jobs: redrawn every REFRESH_S while any job is queued or running."""
    if was_active and not jobs_page.has_unfinished(store):
        st.rerun()  # the last one finished: draw once more, without the timer
    total = store.count_jobs(where=where)
    c1, c2, c3 = st.columns([1, 1, 4])
    per_page = c1.selectbox("Per page", jobs_page.PAGE_SIZES)
    pages = jobs_page.page_count(total, per_page)
    page = c2.number_input("Page", min_value=1, max_value=pages, value=1, step=1)
    c3.caption(f"{total} jobs match · page {page} of {pages}")

    jobs = store.list_jobs(where=where, limit=per_page, offset=(page - 1) * per_page)
    if not jobs:
        st.info("No jobs match these filters." if total else "No jobs yet: transcribe a file.")
        return
    st.caption("Click a job to open it; tick rows to download them together.")
    table = st.dataframe(
        jobs_page.job_rows(jobs, tz),
        hide_index=True,
        width="stretch",
        height="content",  # every row of the page, no scroll box inside the page
        placeholder=jobs_page.MISSING,
        on_select="rerun",
        selection_mode=["multi-row", "single-cell"],
        key="job-table",
        column_config={"confidence": st.column_config.NumberColumn(format="%.2f")},
    )
    opened = jobs_page.clicked_job(jobs, table.selection.cells)
    if opened is not None:
        st.query_params.from_dict(jobs_page.link_params(opened))
        st.rerun()
    chosen = [jobs[i].id for i in table.selection.rows]
    if not chosen:
        return
    c1, c2 = st.columns([1, 3])
    fmt = c1.selectbox("Export format", list(export.FORMATS))
    c2.download_button(
        f"Download {len(chosen)} selected (.zip)",
        data=export.export_many(jobs_page.jobs_with_sentences(store, chosen), fmt),
        file_name=f"jobs-{fmt}.zip",
        mime="application/zip",
    )


def search() -> None:
    query = st.text_input(
        "Search all transcripts", placeholder="会议 预算", help="Every word must appear."
    )
    outcome = jobs_page.search(store, query)
    if outcome.message:
        st.caption(outcome.message)
    for hit in outcome.hits:
        with st.container(border=True):
            st.markdown(jobs_page.snippet_markdown(hit.snippet))
            st.page_link(
                "pages/jobs.py",
                label=(
                    f"{hit.original_name} · job {hit.job_id} · {formatting.timestamp(hit.start_ms)}"
                ),
                icon="▶️",
                query_params=jobs_page.link_params(hit.job_id, hit.start_ms),
            )


if link.problem:
    st.warning(link.problem)
if link.job_id is not None:
    show_job(link.job_id, link.t_ms)
else:
    st.title("Jobs")
    browse_tab, search_tab = st.tabs(["Browse", "Search transcripts"])
    with browse_tab:
        browse()
    with search_tab:
        search()
