"""The reply schema narrowed to a request: every gold plan fits it, and it stays small and writable."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
from jsonschema import Draft202012Validator
from transformers import PreTrainedTokenizerFast

from engine.planner.cases import generate_cases
from engine.planner.effect import reply_problems
from engine.planner.evaluate import case_schema
from engine.planner.fixtures import FileSpec, Fixture
from engine.planner.narrow import narrowed_schema
from engine.planner.prompt import ViewEntry, answer_text, entries_from_fixture
from engine.planner.said_names import request_words
from engine.serve.grammar import compile_schema
from engine.serve.schema_rewrite import decoding_schema
from tests.engine.planner.test_handwritten import CASES as HANDWRITTEN

TODAY = dt.date(2026, 6, 15)
TOKENIZER = PreTrainedTokenizerFast.from_pretrained(str(Path(__file__).parents[3] / "engine" / "models" / "base"))
#: Tokens with a double quote in them: what closes a free string.
QUOTES = ['"' in TOKENIZER.decode([token]) for token in range(len(TOKENIZER))]


def test_every_gold_answer_fits_its_narrowed_schema() -> None:
    cases = [*generate_cases(150, seed=31), *HANDWRITTEN]
    for case in cases:
        errors = list(Draft202012Validator(case_schema(case)).iter_errors(json.loads(answer_text(case.plan))))
        assert errors == [], (case.id, case.request, errors[0].message)


def test_names_come_from_the_request_and_the_workspace_only() -> None:
    entries = [ViewEntry("docs/a.pdf", False, 10, TODAY), ViewEntry("photos/x.jpg", False, 10, TODAY, ("trip",))]
    schema = narrowed_schema("move the pdfs in docs into archive/2025", entries, TODAY)
    defs = schema["$defs"]
    names = defs["path"]["enum"]
    assert {"docs/a.pdf", "photos/x.jpg", "docs", "archive/2025", "archive"} <= set(names)
    assert "finance" not in names
    # The request refers to docs, and not to photos (test_refer.py).
    assert "photos" not in names
    assert defs["glob"]["enum"] == ["docs/**", "docs/*"]  # it takes files from docs, not from everywhere
    assert "archive/2025/**" not in defs["glob"]["enum"]  # a glob selects what exists
    match = defs["match"]["properties"]
    # A year in a path the request spells is a folder's name, not a time ("into archive/2025").
    assert "modified_after" not in match
    assert "modified_before" not in match
    dated = narrowed_schema("move the 2025 pdfs in docs into archive/2025", entries, TODAY, per_place=False)["$defs"]
    assert _values(dated, dated["match"]["properties"]["modified_after"]) == ["2025-01-01"]
    assert _values(dated, dated["match"]["properties"]["modified_before"]) == ["2026-01-01"]
    # A match selects by a tag files have and the request says; a step adds or takes off the tags
    # the request says.
    assert "tag" not in match
    assert "trip" not in defs["tag_name"]["enum"]
    assert "pdfs" in defs["tag_name"]["enum"]
    defs = narrowed_schema("copy the trip photos to shared", entries, TODAY)["$defs"]
    assert _values(defs, defs["match"]["properties"]["tag"]) == ["trip"]


def test_hostile_names_are_left_out_and_a_huge_workspace_stays_small() -> None:
    files = [FileSpec(f"big/{index:05d}-{'x' * 60}.txt", text="t") for index in range(5000)]
    files += [FileSpec("esc\x1b[31m.log", text="e"), FileSpec("caf\udce9.txt", text="c"), FileSpec("a\nb.md", text="n")]
    entries = entries_from_fixture(Fixture(tuple(files)), TODAY)
    schema = narrowed_schema("delete esc\x1b[31m.log and caf\udce9.txt " + "word " * 5000, entries, TODAY)
    text = json.dumps(schema)
    assert len(text) < 60_000
    names = schema["$defs"]["path"]["enum"]
    assert all(name.isprintable() for name in names)
    assert "caf\udce9.txt" not in names


def test_request_words_drop_punctuation_and_keep_names() -> None:
    words = request_words("Move 'docs/a b.pdf', notes/x.md and logs/ into (archive)! thanks.")
    assert words[:2] == ["docs/a", "b.pdf"]
    assert "Move" not in words
    assert "into" not in words
    assert "notes/x.md" in words
    assert "logs" in words
    assert "archive" in words
    assert "thanks" not in words


def test_counts_and_places_come_from_the_request() -> None:
    entries = [ViewEntry("logs/a.log", False, 10, TODAY), ViewEntry("keep/old.txt", False, 10, TODAY)]
    defs = narrowed_schema("move the first 3 log files in logs into archive/2026 and keep", entries, TODAY,
                           per_place=False)["$defs"]  # fmt: skip
    # (A number inside a path, a name, a date or a version is no count: "archive/2026", "1.2.0".)
    assert defs["match"]["properties"]["limit"] == {"enum": [3]}
    targets = defs["target"]["enum"]
    assert targets == ["archive/2026"]  # where the request says they go (refer.py), not "logs" or "keep"
    assert "archive" not in targets  # only the folder of a name the request gives, and not there yet
    # A request that says no place puts files into a folder it mentions, never one it does not:
    # "tidy the first 3" moves nothing anywhere.
    targets = narrowed_schema("tidy the first 3 of logs and keep", entries, TODAY)["$defs"]["target"]["enum"]
    assert {"keep", "logs"} <= set(targets)
    tidied = narrowed_schema("tidy the first 3", entries, TODAY)
    assert tidied["properties"]["steps"]["maxItems"] == 0
    assert "archive" in defs["dest"]["enum"]  # a folder to make first
    assert all(way["properties"]["to"] == {"$ref": "#/$defs/target"} for way in defs["move"]["anyOf"])
    made = _values(defs, defs["mkdir"]["properties"]["path"])  # a folder made is one not there yet
    assert {"archive", "archive/2026"} <= set(made)
    assert not {"logs", "keep"} & set(made)
    # A request of one clause that takes the first N files takes them with a count.
    first = narrowed_schema("grab the first 3 logs in logs and copy them into keep", entries, TODAY,
                            per_place=False)["$defs"]  # fmt: skip
    assert "limit" in first["match"]["required"]
    later = narrowed_schema("grab the first 3 logs in logs. Then zip keep as k.zip", entries, TODAY,
                            per_place=False)["$defs"]  # fmt: skip
    assert "limit" not in later["match"]["required"]  # the zip's match takes no count
    words = narrowed_schema("take three of the logs", entries, TODAY, per_place=False)["$defs"]["match"]["properties"][
        "limit"
    ]
    assert words == {"enum": [3]}
    assert narrowed_schema("the first few logs", entries, TODAY, per_place=False)["$defs"]["match"]["properties"][
        "limit"
    ] == {"enum": list(range(1, 11))}


def test_dates_are_the_years_and_ages_the_request_names_each_on_its_side() -> None:
    entries = [ViewEntry("invoices/a.pdf", False, 10, TODAY)]

    def sides(request: str) -> tuple[set[str] | None, set[str] | None]:
        """What modified_after and modified_before may be (None: the match has no such key), as the
        request offers them (the one invoice, of today, is of none of those years)."""
        defs = narrowed_schema(request, entries, TODAY, per_place=False)["$defs"]
        match = defs["match"]["properties"]
        after, before = (match.get(key) for key in ("modified_after", "modified_before"))
        return (set(_values(defs, after)) if after else None, set(_values(defs, before)) if before else None)

    this = TODAY.year
    # A year is a range: its first day after, the next year's first day before; no age, no other year.
    assert sides("move the 2023 invoices into old") == ({"2023-01-01"}, {"2024-01-01"})
    # ("this year's" and "last year's" are years of the calendar; "the past year" is an age, 365d)
    assert sides("move this year's invoices into 2023-papers") == (
        {f"{this}-01-01", "2023-01-01"}, {f"{this + 1}-01-01", "2024-01-01"})  # fmt: skip
    assert sides("move last year's invoices into old")[0] == {f"{this - 1}-01-01"}
    assert "365d" in (sides("move the invoices from the past year into old")[0] or set())
    # An age the request says, on the side it says: older files before it, recent ones after it.
    assert sides("move the invoices older than a week into old") == (None, {"7d"})
    assert sides("copy last month's invoices to shared") == ({"30d"}, None)
    assert sides("copy the invoices from the last 45 days to shared") == ({"45d"}, None)
    assert sides("move the invoices nobody touched in a yeaar into keep") == ({"365d"}, {"365d"})  # a typo
    # No word of time: no date at all, and no size without a word of size.
    assert sides("move the invoices into keep") == (None, None)
    match = narrowed_schema("move the invoices into keep", entries, TODAY)["$defs"]["match"]["properties"]
    assert "larger_than" not in match
    assert "smaller_than" not in match
    match = narrowed_schema("move the huge invoices into old", entries, TODAY)["$defs"]["match"]["properties"]
    assert "larger_than" in match


def _values(defs: dict[str, Any], schema: dict[str, Any]) -> list[Any]:
    """The enum ``schema`` lists, through a reference into ``defs``."""
    while "$ref" in schema:
        schema = defs[schema["$ref"].removeprefix("#/$defs/")]
    return list(schema["enum"])


def test_names_typed_fast_or_full_of_markup_are_still_names() -> None:
    entries = [ViewEntry("inbox/a.txt", False, 10, TODAY), ViewEntry("inbox/Screenshot 1.png", False, 10, TODAY)]
    defs = narrowed_schema("everything named Screenshotsomethnig goes in done", entries, TODAY)["$defs"]
    assert "^Screenshot " in _values(defs, defs["match"]["properties"]["name_regex"])
    defs = narrowed_schema("CREATE inbox/[red]markup[/notes.txt WITH THE TEXT 'x'", entries, TODAY)["$defs"]
    assert "inbox/[red]markup[/notes.txt" in defs["path"]["enum"]
    defs = narrowed_schema("write 'x' into a new file [red]markup[/reminder.txt asap", entries, TODAY)["$defs"]
    assert "[red]markup[/reminder.txt" in defs["path"]["enum"]


def test_a_workspace_of_thousands_of_folders_stays_under_the_servers_schema_limit() -> None:
    from engine.planner.narrow import MAX_SCHEMA_CHARS
    from engine.serve.grammar import MAX_SCHEMA_BYTES

    entries = [ViewEntry(f"d{i:04d}-{'y' * 30}/f{i}-{'z' * 30}.txt", False, 10, TODAY) for i in range(3000)]
    wanted = entries[2999].path
    request = f"move {wanted} into archive " + " ".join(f"w{i}/x{i}.md" for i in range(90))
    schema = narrowed_schema(request, entries, TODAY)
    assert len(json.dumps(schema).encode()) <= MAX_SCHEMA_CHARS < MAX_SCHEMA_BYTES
    assert wanted in schema["$defs"]["source"]["enum"]  # what the request names comes first


def test_a_files_content_is_a_line_of_the_requests_words() -> None:
    entries = [ViewEntry("notes/todo.md", False, 10, TODAY)]
    content = narrowed_schema("I'd like you to append 'review the budget' to notes/todo.md", entries, TODAY)["$defs"][
        "content"
    ]
    assert content["enum"] == ["review the budget\n"]  # what it quotes, and nothing else
    lines = narrowed_schema("at the end of notes/todo.md write: buy milk.", entries, TODAY)["$defs"]["content"]
    assert lines["enum"] == ["buy milk\n", "buy milk.\n"]  # what a colon introduces, to its end
    assert "book the dentist\n" not in lines["enum"]
    says = narrowed_schema("make notes/a.md that says 'x: y' and notes/b.md saying call bob", entries, TODAY)
    assert says["$defs"]["content"]["enum"] == ["x: y\n", "call\n", "call bob\n"]
    # A line ends where the request goes on to something else, never inside a list.
    packing = narrowed_schema("new note notes/p.md: passport, charger, sunscreen, adapter", entries, TODAY)
    assert packing["$defs"]["content"]["enum"] == ["passport, charger, sunscreen, adapter\n"]
    said = narrowed_schema("new file notes/r.txt saying renew the passport thanks. Then zip notes", entries, TODAY)
    assert "renew the passport\n" in said["$defs"]["content"]["enum"]
    assert "renew the\n" not in said["$defs"]["content"]["enum"]
    # Neither quoted nor introduced: runs of the request's words, never across a path or a file's name.
    plain = narrowed_schema("put buy milk into notes/todo.md today", entries, TODAY)["$defs"]["content"]["enum"]
    assert {"put buy milk\n", "buy milk\n", "today\n"} <= set(plain)
    assert not [line for line in plain if "todo" in line or "into today" in line]
    long = narrowed_schema(" ".join(f"word{i}" for i in range(200)), entries, TODAY)["$defs"]["content"]
    assert "enum" not in long  # more lines than the bounds hold: free, not cut short


def test_only_the_request_the_model_reads_is_narrowed_to() -> None:
    entries = [ViewEntry("notes/todo.md", False, 10, TODAY)]
    pasted = "move notes/todo.md into done " + "lorem ipsum " * 50_000 + "and into late/9999"
    schema = narrowed_schema(pasted, entries, TODAY)
    assert "done" in schema["$defs"]["target"]["enum"]
    assert "late/9999" not in schema["$defs"]["target"]["enum"]
    assert len(json.dumps(schema)) < 60_000


def _walks(schema: dict[str, object], count: int, rng: random.Random) -> list[str]:
    """``count`` answers decoded under ``schema`` by llguidance with the shipped tokenizer, each
    next token drawn at random from those the grammar allows (a free string soon closed)."""
    grammar = compile_schema(schema, TOKENIZER, eos_ids=[TOKENIZER.eos_token_id])
    mask = grammar.allocate_bitmask(1)
    answers = []
    while len(answers) < count:
        state, tokens = grammar.new(), []
        while not state.done() and len(tokens) < 1500:
            state.fill_mask(mask, 0)
            allowed = np.flatnonzero(np.unpackbits(mask[0].view(np.uint8), bitorder="little")[: grammar.vocab_size])
            assert state.error is None, state.error
            assert len(allowed)
            if state.accepting() and rng.random() < 0.5:
                break
            closing = [token for token in allowed if QUOTES[token]] if len(allowed) > 100 else []
            token = int(rng.choice(closing or allowed))
            if token == TOKENIZER.eos_token_id:
                break
            state.consume(token)
            tokens.append(token)
        if state.accepting():
            answers.append(TOKENIZER.decode(tokens))
    return answers


def test_every_answer_the_narrowed_schema_allows_is_a_valid_plan() -> None:
    """Not only the gold plans: any answer decoded under the schema passes the plan's own checks.
    A request with no name in it, a workspace without tags or archives, a name in .git and a
    bracket that is no regular expression each left room for an invalid plan once."""
    rng = random.Random(7)
    bare = [ViewEntry("notes/a.md", False, 10, TODAY), ViewEntry("logs/x.log", False, 10, TODAY)]
    requests = [
        ("hello", bare),
        ("move .git/config and ../up.txt into [red and (1 please", bare),
        ("zip it all", []),
        ("rename the files in logs, remove ' copy' from the names", bare),
        ("zip logs as logs.zip, copy notes/a.md into keep and add '- done' to notes/a.md", bare),
        ("sort notes: markdown into notes/md, logs into notes/logs and everything else into notes/misc", bare),
        ("nuke anything big in logs", bare),
        *((case.request, entries_from_fixture(case.fixture, case.today)) for case in generate_cases(6, seed=3)),
    ]
    for request, entries in requests:
        for answer in _walks(narrowed_schema(request, entries, TODAY), 25, rng):
            problems = reply_problems(json.loads(answer))
            assert problems == [], (request, answer, problems[0])


def test_plans_the_plan_checks_refuse_are_not_in_the_schema() -> None:
    entries = [ViewEntry("photos/a.jpg", False, 10, TODAY), ViewEntry("logs/x.log", False, 10, TODAY)]
    schema = narrowed_schema("archive logs into var/log, then extract photos/a.jpg into out", entries, TODAY)
    check = Draft202012Validator(schema)
    match = {"glob": "logs/**"}

    def allowed(*steps: dict[str, object]) -> bool:
        return check.is_valid({"version": 1, "steps": list(steps)})

    assert allowed({"op": "move", "match": match, "to": "var/log"})
    assert not allowed({"op": "move", "match": match, "paths": ["logs/x.log"], "to": "var/log"})
    assert not allowed({"op": "move", "from": "logs/x.log", "to": "var/log", "keep_tree": True})
    assert not allowed({"op": "delete", "match": {"ext": [".log"]}})  # no glob
    assert not allowed({"op": "archive", "match": match, "to": "var/log"})
    assert allowed({"op": "archive", "match": match, "to": "var/log.zip"})  # no archive named: a plain one
    assert not allowed({"op": "extract", "from": "photos/a.jpg", "to": "out"})
    assert not allowed({"op": "rename", "match": match, "template": "{stem}{ext}", "find": "x", "replace": ""})
    assert not allowed({"op": "classify", "match": match, "rules": [{"to": "var/log"}]})
    assert allowed({"op": "classify", "match": match, "rules": [{"default": True, "to": "var/log"}]})
    assert not allowed(
        {"op": "classify", "match": match, "rules": [{"ext": [".log"], "default": True, "to": "var/log"}]}
    )
    # No tag anywhere, and no word to make one of: the tag is free, not an empty list.
    assert "enum" not in narrowed_schema("???", entries, TODAY)["$defs"]["tag_name"]


def test_names_numbered_as_the_request_shows_are_the_only_templates() -> None:
    entries = [ViewEntry("invoices/a.pdf", False, 10, TODAY)]
    defs = narrowed_schema("number the pdfs in invoices as file_001, file_002 and so on", entries, TODAY)["$defs"]
    assert defs["template-0"]["enum"] == ["file_{n:03}{ext}"]
    defs = narrowed_schema("put the folder name in front of the invoices", entries, TODAY)["$defs"]
    assert "{parent}-{name}" in defs["template-0"]["enum"]


def test_what_files_are_about_and_the_tags_are_words_said_so() -> None:
    entries = [ViewEntry("Notes/a.md", False, 10, TODAY, ("draft",)), ViewEntry("Notes/b.md", False, 10, TODAY)]
    defs = narrowed_schema("tag the security notes in Notes as urgent and put them in shared", entries, TODAY)["$defs"]
    match = defs["match"]["properties"]
    assert _values(defs, match["contains"]) == ["security"]  # not "urgent", "shared" or "Notes"
    assert defs["tag_name"]["enum"] == ["urgent"]  # not the topic
    defs = narrowed_schema("copy whatever mentions the vpn into it-handover", entries, TODAY)["$defs"]
    assert _values(defs, defs["match"]["properties"]["contains"]) == ["vpn"]
    # A request that says nothing of what files are about selects by no content at all.
    defs = narrowed_schema("move the notes in Notes into send", entries, TODAY)["$defs"]
    assert "contains" not in defs["match"]["properties"]
    # Tags said before "tag", after "untag", or at the end of a clause that tags.
    defs = narrowed_schema("strip the draft tag off whatever in Notes has it", entries, TODAY)["$defs"]
    assert defs["tag_name"]["enum"] == ["draft"]
    defs = narrowed_schema("tag all my Notes exam-prep and copy them to exam-prep/", entries, TODAY)["$defs"]
    assert "exam-prep" in defs["tag_name"]["enum"]
    assert "Notes" not in defs["tag_name"]["enum"]
    # A rule sorts by content only when the request says what files are about, as a match does.
    defs = narrowed_schema("sort Notes: pdfs to archive, the rest to misc", entries, TODAY)["$defs"]
    assert "contains" not in str(defs["classify"])
    # A tag that is also a folder's name the request says is the folder, unless said as a tag.
    tagged = [ViewEntry("onboarding/vpn.md", False, 10, TODAY, ("onboarding",))]
    defs = narrowed_schema("copy whatever in onboarding mentions the vpn into it", tagged, TODAY)["$defs"]
    assert "tag" not in defs["match"]["properties"]
    defs = narrowed_schema("copy the onboarding-tagged files into it", tagged, TODAY)["$defs"]
    assert _values(defs, defs["match"]["properties"]["tag"]) == ["onboarding"]
    # "folder" is no typo of "older": a request that says no time has no dates.
    defs = narrowed_schema("make a Notes/car folder and put a.md in it", entries, TODAY)["$defs"]
    assert "modified_before" not in defs["match"]["properties"]
    # A clause also ends where the next sentence starts without a stop.
    defs = narrowed_schema("could you mark Notes/a.md q3 Don't touch anything else.", entries, TODAY)["$defs"]
    assert defs["tag_name"]["enum"] == ["q3"]
    # A request that names no tag that way offers its words, as before.
    assert narrowed_schema("tag ok", entries, TODAY)["$defs"]["tag_name"]["enum"] == ["ok"]


def test_a_short_list_of_files_names_each_once_as_the_local_server_decodes_it() -> None:
    entries = [ViewEntry(f"Edits/{name}", False, 10, TODAY) for name in ("cover-v1.png", "cover-v2.png", "c.psd")]
    entries += [ViewEntry(f"logs/{n:02}.log", False, 10, TODAY) for n in range(12)]

    def deleting(paths: list[str]) -> dict[str, Any]:
        return {"version": 1, "goal": "Delete", "steps": [{"op": "delete", "paths": paths}]}

    schema = narrowed_schema("delete cover-v1.png and cover-v2.png in Edits", entries, TODAY)
    assert schema["$defs"]["paths"]["uniqueItems"] is True
    check = Draft202012Validator(schema)
    assert check.is_valid(deleting(["Edits/cover-v1.png", "Edits/cover-v2.png"]))
    assert not check.is_valid(deleting(["Edits/cover-v2.png", "Edits/cover-v2.png"]))
    # The server decodes it as the lists that validate, so a repeated name cannot be decoded.
    _, notes = decoding_schema(schema)
    assert any(note.startswith("uniqueItems at /$defs/paths: decoded as the") for note in notes)
    # Too many files to list every list: a name may repeat (the dry run and the agent's retry see it).
    many = narrowed_schema("delete the logs in logs", entries, TODAY)["$defs"]["paths"]
    assert "uniqueItems" not in many


def test_a_rename_puts_in_the_separator_the_request_says() -> None:
    entries = [ViewEntry("shots/a b.png", False, 10, TODAY)]

    def replaces(request: str) -> list[Any]:
        defs = narrowed_schema(request, entries, TODAY)["$defs"]
        [replace] = {
            json.dumps(w["properties"]["replace"]) for w in defs["rename"]["anyOf"] if "replace" in w["properties"]
        }
        return _values(defs, json.loads(replace))

    assert replaces("IN shots, REPLACE SPACES WITH UNDERSCORES") == ["_"]
    assert replaces("in shots, use dashes instead of spaces") == ["-"]
    assert replaces("replace spaces with hyphens in shots") == ["-"]
    assert "" in replaces("remove the _v2 suffix in shots")


def test_a_step_never_selects_from_a_folder_the_request_leaves_alone() -> None:
    entries = [ViewEntry(f"media/{name}", False, 10, TODAY) for name in ("a.mp3", "videos/b.mp4", "music/c.mp3")]
    defs = narrowed_schema("empty the media folder, leave media/videos alone", entries, TODAY)["$defs"]
    globs = _values(defs, defs["glob"])
    assert "media/**" in globs
    assert "media/videos/**" not in globs
    assert _values(defs, defs["match"]["properties"]["exclude"]["items"]) == ["media/videos/**"]
    check = Draft202012Validator({**defs["match"], "$defs": defs})
    assert check.is_valid({"glob": "media/**", "exclude": ["media/videos/**"]})
    assert not check.is_valid({"glob": "media/**", "exclude": ["media/**"]})


def test_files_spelled_whole_for_one_thing_asked_are_the_list_and_all_of_it() -> None:
    entries = [ViewEntry(path, False, 10, TODAY) for path in ("a/x.txt", "b/y 2.txt", "c/z.txt", "c/x.txt")]
    defs = narrowed_schema("move a/x.txt and b/y 2.txt into keep", entries, TODAY)["$defs"]
    assert defs["listed"]["enum"] == ["a/x.txt", "b/y 2.txt"]
    assert defs["paths"]["minItems"] == defs["paths"]["maxItems"] == 2
    # Two things asked: each may take some of them.
    defs = narrowed_schema("move a/x.txt and b/y 2.txt into keep and tag c/z.txt done", entries, TODAY)["$defs"]
    assert defs["paths"]["minItems"] == 1


def test_a_word_for_a_group_of_kinds_takes_every_kind_the_folder_has() -> None:
    entries = [ViewEntry(path, False, 10, TODAY) for path in ("Camera/a.jpg", "Camera/b.heic", "docs/c.png")]
    ext = narrowed_schema("pics from Camera folder go to sorted", entries, TODAY)["$defs"]["match"]["properties"]["ext"]
    assert ext["items"] == {"enum": [".jpg", ".png", ".heic"]}
    assert ext["minItems"] == 2
    assert ext["uniqueItems"] is True
    # An extension of its own ("JPEG photos") asks for that kind alone.
    ext = narrowed_schema("JPEG photos from Camera to sorted", entries, TODAY)["$defs"]["match"]["properties"]["ext"]
    assert ext["minItems"] == 1


def _allows(schema: dict[str, Any], *steps: dict[str, Any]) -> bool:
    return Draft202012Validator(schema).is_valid({"version": 1, "goal": "g", "steps": list(steps)})


def test_files_said_to_be_big_or_small_are_selected_by_a_size() -> None:
    entries = [ViewEntry(path, False, 20_000_000, TODAY) for path in ("Downloads/a.mp4", "Downloads/b.zip")]
    schema = narrowed_schema("Downloads is eating my disk. nuke anything big in there", entries, TODAY)
    big = {"glob": "Downloads/**", "larger_than": "10MB"}
    assert _allows(schema, {"op": "delete", "match": big})
    assert not _allows(schema, {"op": "delete", "match": {"glob": "Downloads/**"}})
    assert not _allows(schema, {"op": "delete", "match": {**big, "larger_than": "1KB"}})
    assert not _allows(schema, {"op": "delete", "path": "Downloads/a.mp4"})
    # "tiny" is under the usual small size; a size the request names is that size.
    tiny = narrowed_schema("remove the tiny files in Downloads", entries, TODAY)
    assert _allows(tiny, {"op": "delete", "match": {"glob": "Downloads/**", "smaller_than": "1KB"}})
    assert not _allows(tiny, {"op": "delete", "match": {"glob": "Downloads/**", "larger_than": "10MB"}})
    named = narrowed_schema("delete the big files over 20MB in Downloads", entries, TODAY)
    assert _allows(named, {"op": "delete", "match": {"glob": "Downloads/**", "larger_than": "20MB"}})
    assert not _allows(named, {"op": "delete", "match": {"glob": "Downloads/**", "larger_than": "10MB"}})
    # A size said with its side is a size files are over or under, whatever the word for them.
    said_sizes = (
        ("the videos over 10mb are hogging the laptop, move them to old", "larger_than", "10MB"),
        ("move anything > 2GB in Downloads to old", "larger_than", "2GB"),
        ("move whatever is less than 1 KB in Downloads to old", "smaller_than", "1KB"),
    )
    for request, side, size in said_sizes:
        said = narrowed_schema(request, entries, TODAY)
        assert _allows(said, {"op": "move", "match": {"glob": "Downloads/**", side: size}, "to": "old"}), request
        assert not _allows(said, {"op": "move", "match": {"glob": "Downloads/**"}, "to": "old"}), request
    # "the biggest two" ranks files, and a file the request names is that file.
    assert _allows(narrowed_schema("move the biggest two files in Downloads to old", entries, TODAY),
                   {"op": "move", "paths": ["Downloads/a.mp4"], "to": "old"})  # fmt: skip


def test_a_match_leaves_files_out_only_when_the_request_says_so() -> None:
    entries = [ViewEntry(path, False, 10, TODAY) for path in ("logs/a.log", "logs/archive/b.log")]
    assert "exclude" not in narrowed_schema("delete the logs in logs", entries, TODAY)["$defs"]["match"]["properties"]
    for request in ("clean out logs/ but dont touch logs/archive", "purge logs, keeenping logs/archive"):
        schema = narrowed_schema(request, entries, TODAY)
        assert _allows(schema, {"op": "delete", "match": {"glob": "logs/**", "exclude": ["logs/archive/**"]}}), request


def test_a_folder_spared_inside_the_one_files_are_taken_from_is_left_out() -> None:
    entries = [
        ViewEntry(path, False, 10, TODAY - dt.timedelta(days=90)) for path in ("logs/a.log", "logs/archive/b.log")
    ]
    schema = narrowed_schema("delete the logs older than a month, but keep logs/archive", entries, TODAY)
    old = {"glob": "logs/**", "modified_before": "30d"}
    assert _allows(schema, {"op": "delete", "match": {**old, "exclude": ["logs/archive/**"]}})
    assert not _allows(schema, {"op": "delete", "match": old})
    # A sentence that ends spares nothing in the next one.
    schema = narrowed_schema("Don't touch anything else. compress logs/archive as a.tar.xz", entries, TODAY)
    assert _allows(schema, {"op": "archive", "match": {"glob": "logs/archive/**"}, "to": "a.tar.xz"})


def test_a_file_described_is_what_a_step_reads_not_a_folder_nor_a_file_of_another_path() -> None:
    entries = [ViewEntry(path, False, 10, TODAY) for path in
               ("Downloads/IMG_20260110_whiteboard.jpg", "code/hw3/main.py", "exports/crm-export.tar.gz",
                "exports/analytics.zip", "meetings/budget-review.md", "reports/q2-draft.docx")]  # fmt: skip
    schema = narrowed_schema("delete the whiteboard photo", entries, TODAY)
    assert _allows(schema, {"op": "delete", "path": "Downloads/IMG_20260110_whiteboard.jpg"})
    assert not _allows(schema, {"op": "delete", "path": "code/hw3"})
    # The words of a path it spells ("exports/analytics") describe no other file.
    defs = narrowed_schema("unpack the analytics zip into exports/analytics", entries, TODAY)["$defs"]
    assert _values(defs, defs["extract"]["properties"]["from"]) == ["exports/analytics.zip"]
    # Nor do the tags it names ("the draft tag").
    defs = narrowed_schema("take the draft tag off the budget review notes", entries, TODAY)["$defs"]
    assert defs["listed"]["enum"] == ["meetings/budget-review.md"]


def test_files_taken_from_a_folder_named_by_a_word_are_listed_from_it() -> None:
    paths = ("Pictures/porto-2025/IMG_1.jpg", "Pictures/porto-2025/IMG_2.jpg", "Downloads/report.docx.tmp")
    entries = [ViewEntry(path, False, 10, TODAY) for path in paths]
    # "porto" is a folder's word as it is spelled, though one letter from "photo".
    defs = narrowed_schema("copy the porto pics to Desktop/porto", entries, TODAY)["$defs"]
    assert _values(defs, defs["glob"]) == ["Pictures/porto-2025/**", "Pictures/porto-2025/*"]
    assert defs["listed"]["enum"] == ["Pictures/porto-2025/IMG_1.jpg", "Pictures/porto-2025/IMG_2.jpg"]
    # and, asked one thing of, they are what the folder has, selected so.
    schema = narrowed_schema("copy the porto pics to Desktop/porto", entries, TODAY)
    assert _allows(schema, {"op": "copy", "match": {"glob": "Pictures/porto-2025/**"}, "to": "Desktop/porto"})
    assert not _allows(schema, {"op": "copy", "paths": ["Pictures/porto-2025/IMG_1.jpg"], "to": "Desktop/porto"})


def test_files_taken_from_a_folder_inside_another_it_refers_to_are_the_inner_ones() -> None:
    paths = ("clients/Brennan Plumbing/quote.pdf", "clients/Brennan Plumbing/photos/site.jpg", "clients/Ota/x.pdf")
    entries = [ViewEntry(path, False, 10, TODAY) for path in paths]
    asked = "zip up Brennan Plumbing's whole client folder as archive/brennan.zip"
    defs = narrowed_schema(asked, entries, TODAY)["$defs"]
    assert _values(defs, defs["glob"]) == ["clients/Brennan Plumbing/**", "clients/Brennan Plumbing/*"]
    # unless it spells the outer one alone
    defs = narrowed_schema("zip clients and the Brennan Plumbing folder as archive/all.zip", entries, TODAY)["$defs"]
    assert "clients/**" in _values(defs, defs["glob"])


def test_files_described_by_their_names_are_listed_all_of_those_joined() -> None:
    paths = ("Documents/lease-agreement.pdf", "Documents/car insurance policy.pdf", "Documents/taxes/W-2.pdf",
             "Documents/taxes/1099-INT.pdf", "Documents/notes.md")  # fmt: skip
    entries = [ViewEntry(path, False, 10, TODAY) for path in paths]
    schema = narrowed_schema("tag the lease and the car insurance policy as important", entries, TODAY)
    both = {"op": "tag", "paths": list(paths[:2]), "tags": ["important"]}
    assert _allows(schema, both)
    assert not _allows(schema, {**both, "paths": [paths[1]]})
    assert not _allows(schema, {"op": "tag", "path": paths[1], "tags": ["important"]})
    assert not _allows(schema, {"op": "tag", "match": {"glob": "**", "name_regex": "^car "}, "tags": ["important"]})
    # One described alone is named alone; "every file named ..." is a match.
    assert _allows(narrowed_schema("delete the lease", entries, TODAY), {"op": "delete", "path": paths[0]})
    named = narrowed_schema("delete every file named lease", entries, TODAY)
    assert _allows(named, {"op": "delete", "match": {"glob": "**", "name_regex": "^lease"}})


def test_a_tag_taken_off_is_the_one_said_and_files_called_by_a_tag_are_selected_by_it() -> None:
    entries = [
        ViewEntry("meetings/budget-review.md", False, 10, TODAY, ("draft", "budget")),
        ViewEntry("Camera/IMG_1.JPG", False, 10, TODAY, ("favorite",)),
        ViewEntry("Camera/IMG_2.JPG", False, 10, TODAY),
    ]
    schema = narrowed_schema("take the draft tag off the budget review notes", entries, TODAY)
    untag = {"op": "untag", "path": "meetings/budget-review.md", "tags": ["draft"]}
    assert _allows(schema, untag)
    assert not _allows(schema, {**untag, "tags": ["budget"]})
    schema = narrowed_schema("the favorites in Camera go to Pictures/best", entries, TODAY)
    assert _allows(schema, {"op": "move", "match": {"glob": "Camera/**", "tag": "favorite"}, "to": "Pictures/best"})
    assert not _allows(schema, {"op": "move", "paths": ["Camera/IMG_1.JPG"], "to": "Pictures/best"})
    assert not _allows(schema, {"op": "move", "match": {"glob": "Camera/**"}, "to": "Pictures/best"})


def test_files_said_to_mention_a_word_are_selected_by_it() -> None:
    entries = [ViewEntry(path, False, 10, TODAY) for path in ("Documents/a.md", "Documents/work/b.md")]
    schema = narrowed_schema(
        "Please add the tag release to every note in Documents mentioning release.", entries, TODAY
    )
    notes = {"glob": "Documents/**", "ext": [".md"]}
    assert _allows(schema, {"op": "tag", "match": {**notes, "contains": "release"}, "tags": ["release"]})
    assert not _allows(schema, {"op": "tag", "match": notes, "tags": ["release"]})


def test_a_word_for_a_group_of_kinds_from_everywhere_takes_the_kinds_there_are() -> None:
    entries = [ViewEntry(path, False, 20_000_000, TODAY) for path in ("media/x.mp4", "media/y.mov", "c/z.txt")]
    schema = narrowed_schema("move all the big videos onto external/videos", entries, TODAY)
    step = {
        "op": "move",
        "match": {"glob": "**", "ext": [".mp4", ".mov"], "larger_than": "10MB"},
        "to": "external/videos",
    }
    assert _allows(schema, step)
    assert not _allows(schema, {**step, "match": {**step["match"], "ext": [".mp4"]}})
    # A word of a folder's name is no word for a kind ("the videos and music" is videos-and-music).
    music = [ViewEntry(path, False, 10, TODAY) for path in ("videos-and-music/a.mp3", "videos-and-music/b.mp4")]
    schema = narrowed_schema("archive the mp3 files from the videos and music as old.zip", music, TODAY)
    assert _allows(
        schema, {"op": "archive", "match": {"glob": "videos-and-music/**", "ext": [".mp3"]}, "to": "old.zip"}
    )


def test_many_files_go_into_a_folder_never_into_a_name_like_a_files() -> None:
    entries = [ViewEntry(path, False, 10, TODAY) for path in ("Edits/cover-final.png", "Edits/cover-v1.png")]
    schema = narrowed_schema("rename cover-final.png to cover.png", entries, TODAY)
    assert _allows(schema, {"op": "move", "from": "Edits/cover-final.png", "to": "Edits/cover.png"})
    assert not _allows(
        schema, {"op": "move", "paths": ["Edits/cover-final.png", "Edits/cover-v1.png"], "to": "cover.png"}
    )
    # ... and the file renamed is tagged where it is, not as a new file at the top.
    schema = narrowed_schema("rename cover-final.png to cover.png and tag it approved", entries, TODAY)
    rename = {"op": "move", "from": "Edits/cover-final.png", "to": "Edits/cover.png"}
    assert _allows(schema, rename, {"op": "tag", "path": "Edits/cover.png", "tags": ["approved"]})
    assert not _allows(schema, rename, {"op": "tag", "path": "cover.png", "tags": ["approved"]})


def test_a_request_with_an_absolute_path_is_narrowed_in_time() -> None:
    # "/" is its own parent: a path's folders end at the root.
    entries = [ViewEntry("keep.txt", False, 10, TODAY), ViewEntry("docs/a.md", False, 10, TODAY)]
    for request in ("delete /tmp/x/keep.txt", "move / to docs", "copy //a//b/ into docs"):
        schema = narrowed_schema(request, entries, TODAY)
        assert "/" not in schema["$defs"]["dest"].get("enum", [])
