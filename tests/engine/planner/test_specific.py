"""A match takes files from the place a request names most closely: the inner folder whose words the
request says over the folder it is in, unless the request says files are in the outer one, or the
inner ones are several, or the words say an op, a time or a kind."""

from __future__ import annotations

from engine.planner.narrow import narrowed_schema
from engine.planner.prompt import ViewEntry
from engine.planner.specific import specific_globs
from engine.planner.words import Request
from tests.engine.planner.test_narrow import TODAY, _allows

GLOBS = ["logs/**", "logs/*", "logs/phd2 guide logs/**", "logs/phd2 guide logs/*", "notes/**", "**"]


def _kept(request: str, globs: list[str] = GLOBS) -> list[str]:
    return specific_globs(globs, Request(request))


def test_a_folder_named_more_closely_than_the_one_it_is_in_is_the_one_offered() -> None:
    kept = _kept("clear out the phd2 guide logs that are more than a month old")
    assert kept == ["logs/phd2 guide logs/**", "logs/phd2 guide logs/*", "notes/**", "**"]
    # (a typo and a plural are forgiven as words are)
    assert "logs/**" not in _kept("clear out the phd guide logs")
    years = ["invoices/**", "invoices/2025/**", "invoices/2026/**"]
    # (a folder beside it, named no closer than the outer one, is left to the rest of the narrowing)
    kept = _kept("zip up the 2025 invoices into invoices/invoices-2025.zip", years)
    assert kept == ["invoices/2025/**", "invoices/2026/**"]


def test_the_outer_folder_stays_where_the_request_puts_files_in_it_or_names_nothing_closer() -> None:
    # Files said to be in it: the outer folder is the place, whatever is inside it.
    assert "logs/**" in _kept("delete the phd2 guide stuff in logs older than a month")
    assert "logs/**" in _kept("tag the phd2 guide files of logs/ as astro")
    # Nothing inside it said more closely; the whole workspace always stays.
    assert _kept("delete the logs older than a month") == GLOBS
    assert "**" in _kept("tag every phd2 guide log anywhere")


def test_several_inner_folders_named_alike_keep_the_folder_that_holds_them_all() -> None:
    teams = ["teams/**", "teams/U10 Lions/match reports/**", "teams/U12 Falcons/match reports/**"]
    assert _kept("tag the match reports where someone got a red card as discipline", teams) == teams
    # One named more closely than the rest: the outer folder goes.
    assert "teams/**" not in _kept("tag the U10 Lions match reports as discipline", teams)


def test_words_of_an_op_a_time_or_a_kind_name_no_inner_folder() -> None:
    for request, inner in (
        ("Archive the logs older than 30 days into logs-old.tar.gz", "logs/archive/**"),
        ("zip up the flash designs that are over a year old as flash/old-flash.zip", "flash/old/**"),
        ("nuke the .tmp junk under build please", "build/tmp/**"),
    ):
        outer = inner.split("/")[0] + "/**"
        assert _kept(request, [outer, inner]) == [outer, inner], request


def test_the_narrowed_schema_offers_only_the_closer_place() -> None:
    entries = [ViewEntry(path, False, 10, TODAY) for path in
               ("logs/observing log 2026.md", "logs/phd2 guide logs/PHD2_GuideLog_1.txt",
                "logs/phd2 guide logs/PHD2_GuideLog_2.txt")]  # fmt: skip
    schema = narrowed_schema("clear out the phd2 guide logs that are more than a month old", entries, TODAY)
    closer = {"glob": "logs/phd2 guide logs/**", "modified_before": "30d"}
    assert _allows(schema, {"op": "delete", "match": closer})
    assert not _allows(schema, {"op": "delete", "match": {**closer, "glob": "logs/**"}})
    # The same request, saying where the files are, keeps the outer folder.
    outer = narrowed_schema("clear out the phd2 guide logs in logs that are more than a month old", entries, TODAY)
    assert _allows(outer, {"op": "delete", "match": {**closer, "glob": "logs/**"}})
