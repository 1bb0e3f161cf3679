"""ingest.schedule: what the library's one writer does next — new sources first, removals as
soon as a pass stops, one source paused while the others carry on."""

from __future__ import annotations

from ingest.schedule import IngestSchedule, Job


def run(s: IngestSchedule, cancelled: bool = False) -> Job:
    """Start the next job and let it end."""
    job = s.next_job()
    assert job is not None
    s.finished(job, cancelled)
    return job


def test_new_files_are_made_searchable_first_then_everything_is_embedded() -> None:
    s = IngestSchedule()
    s.resume_unfinished()
    assert not s.add_files(["/a.zim", "/b.epub", "/a.zim"])
    job = s.next_job()
    assert job == Job("keyword", ("/a.zim", "/b.epub"))
    assert s.next_job() is None  # one writer at a time
    s.finished(job, cancelled=False)
    assert run(s).kind == "embed"
    assert s.next_job() is None and not s.is_busy()


def test_a_new_file_stops_the_embedding_pass_and_it_resumes_after() -> None:
    s = IngestSchedule()
    s.resume_unfinished()
    embedding = s.next_job()
    assert embedding is not None and embedding.kind == "embed"
    assert s.add_files(["/c.epub"])  # stop the embedding pass
    s.finished(embedding, cancelled=True)
    assert run(s) == Job("keyword", ("/c.epub",))
    assert run(s).kind == "embed"


def test_removal_waits_for_the_running_pass_and_keeps_the_other_files() -> None:
    s = IngestSchedule()
    s.add_files(["/a.zim", "/b.epub"])
    reading = s.next_job()
    assert reading is not None
    assert s.remove("/a.zim", "src-a")  # stop the pass
    s.finished(reading, cancelled=True)
    assert run(s) == Job("remove", ("/a.zim",), "src-a")
    assert run(s) == Job("keyword", ("/b.epub",))  # the pass resumes without the removed one
    assert run(s).kind == "embed"


def test_pausing_everything_stops_passes_but_not_removals() -> None:
    s = IngestSchedule()
    s.add_files(["/a.zim"])
    reading = s.next_job()
    assert reading is not None
    assert s.pause()
    s.finished(reading, cancelled=True)
    assert s.next_job() is None and s.pending == ["/a.zim"]
    s.remove("/old.epub", "src-old")
    assert run(s).kind == "remove"
    s.resume()
    assert run(s) == Job("keyword", ("/a.zim",))
    assert run(s).kind == "embed"


def test_one_paused_source_is_left_out_while_the_others_carry_on() -> None:
    s = IngestSchedule()
    s.add_files(["/a.zim", "/b.epub"])
    reading = s.next_job()
    assert reading is not None
    assert s.pause_source("/a.zim")  # stop the pass; it restarts without /a.zim
    s.finished(reading, cancelled=True)
    job = run(s)
    assert job == Job("keyword", ("/b.epub",), skip=frozenset({"/a.zim"}))
    embedding = run(s)
    assert embedding.kind == "embed" and embedding.skip == {"/a.zim"}
    assert s.next_job() is None and not s.is_busy()  # only the paused one is left
    s.resume_source("/a.zim")
    assert run(s) == Job("keyword", ("/a.zim",))
    assert run(s) == Job("embed")


def test_resuming_a_source_restarts_an_embedding_pass_that_leaves_it_out() -> None:
    s = IngestSchedule()
    s.pause_source("/a.zim")
    s.resume_unfinished()
    embedding = s.next_job()
    assert embedding is not None and embedding.skip == {"/a.zim"}
    assert s.resume_source("/a.zim")  # stop it: the next one includes /a.zim
    s.finished(embedding, cancelled=True)
    assert run(s) == Job("embed")


def test_compaction_runs_between_passes_and_nothing_runs_after_stop() -> None:
    s = IngestSchedule()
    s.resume_unfinished()
    embedding = s.next_job()
    assert embedding is not None
    assert s.compact()
    s.finished(embedding, cancelled=True)
    assert run(s).kind == "compact"
    assert run(s).kind == "embed"
    s.add_files(["/x.zim"])
    s.stop()
    assert s.next_job() is None


def test_a_vector_pack_is_attached_after_its_source_is_read_and_before_embedding() -> None:
    s = IngestSchedule()
    s.add_files(["/wiki.zim"])
    assert not s.add_packs(["/wiki.vectors", "/wiki.vectors"])
    assert s.is_busy()
    assert run(s) == Job("keyword", ("/wiki.zim",))
    assert run(s) == Job("import", ("/wiki.vectors",))
    assert run(s).kind == "embed"  # what the pack did not hold
    assert s.next_job() is None and not s.is_busy()


def test_a_vector_pack_stops_the_embedding_pass_which_resumes_after() -> None:
    s = IngestSchedule()
    s.resume_unfinished()
    embedding = s.next_job()
    assert embedding is not None and embedding.kind == "embed"
    assert s.add_packs(["/wiki.vectors"])  # stop: it would embed what the pack holds
    s.finished(embedding, cancelled=True)
    assert run(s) == Job("import", ("/wiki.vectors",))
    assert run(s).kind == "embed"


def test_a_new_embedder_stops_the_embedding_pass_resets_and_embeds_again() -> None:
    s = IngestSchedule()
    s.resume_unfinished()
    embedding = s.next_job()
    assert embedding is not None and embedding.kind == "embed"
    assert s.reembed()  # its vectors would be the old embedder's: stop it
    s.finished(embedding, cancelled=True)
    assert run(s).kind == "reembed"
    assert run(s).kind == "embed"
    assert s.next_job() is None


def test_a_new_embedder_waits_for_the_keyword_pass() -> None:
    s = IngestSchedule()
    s.add_files(["/wiki.zim"])
    keyword = s.next_job()
    assert keyword is not None and not s.reembed()
    s.finished(keyword, cancelled=False)
    assert run(s).kind == "reembed"
    assert run(s).kind == "embed"
