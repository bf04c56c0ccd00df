"""A seeded generator of file-management and code-change requests, each with the decision it needs.

Every request is drawn from a *kind* (move files, fix a failing test, split a module...) whose
decision follows from what the work is, not from the words used to ask for it:

- one file-management action (move, copy, rename, archive, classify, tag, clean up, delete):
  ``single``, the builder alone; three or more actions in one request: a planner first
  (``pipeline: planner, builder``);
- a small function or script: ``single``; a feature with several parts: ``pipeline: planner, builder``;
- work whose end is decided by tests (fix a failing test or a bug, add tests): a ``loop`` of
  builder and tester, 2 rounds for new tests, 3 for a fix, 5 for a flaky or intermittent failure;
- behaviour-preserving restructuring (rename a symbol, extract a function, remove duplication):
  ``pipeline: builder, refactor``; splitting a module: with a planner; either with the tests kept
  green: a ``loop`` with tester and refactor.

The words vary on purpose: synonyms, polite and terse forms, typos, extra sentences, lists and
casing, so that no single keyword gives the kind away. Request ``i`` of seed ``s`` is the same on
every run (its own random stream), whatever ``count`` is; its id is ``files_s<s>_<i>``.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from engine.router.candidates import Candidate, candidate_by_key
from engine.router.tasks import RouterTask

# fmt: off
DIRS = ["downloads", "docs", "notes", "photos/2024", "logs", "reports", "inbox", "archive", "scans", "Desktop",
        "projects/old", "music", "invoices", "tmp", "exports", "data/raw", "backups", "screenshots", "papers",
        "meeting-notes", "clients/acme", "finance/2025", "assets/img", "build/output"]
EXTS = [".pdf", ".log", ".jpg", ".png", ".md", ".csv", ".txt", ".docx", ".zip", ".mp4", ".json", ".tmp", ".bak",
        ".heic", ".xlsx", ".mp3"]
THINGS = ["invoices", "receipts", "screenshots", "log files", "photos", "scanned letters", "meeting notes",
          "bank statements", "draft chapters", "old backups", "CSV exports", "tax documents", "videos", "PDFs",
          "holiday pictures", "temp files", "contracts", "design mockups"]
TOPICS = ["architecture", "api", "budget", "travel", "hiring", "security", "roadmap", "onboarding", "q3", "taxes"]
MODULES = ["utils.py", "parser.py", "models/user.py", "api/handlers.py", "cli.py", "storage.py", "report.py",
           "core/engine.py", "auth.py", "billing/invoice.py", "scheduler.py", "config.py", "db/queries.py"]
SYMBOLS = ["parse_date", "UserStore", "load_config", "fetch_rows", "render_page", "InvoiceLine", "retry_call",
           "normalise_path", "Session", "compute_total", "send_email", "TokenBucket", "merge_ranges"]
TESTS = ["test_parse_dates", "test_login_flow", "tests/test_storage.py", "test_invoice_totals",
         "the scheduler tests", "test_cli_help", "tests/api/test_handlers.py", "test_retry_backoff"]
FEATURES = ["CSV export", "a --dry-run flag", "pagination", "a settings page", "rate limiting", "a search box",
            "dark mode", "an undo command", "email digests", "a health endpoint", "JSON logging", "a progress bar"]
FUNCTIONS = ["reverses the words in a sentence", "checks whether a string is a palindrome",
             "returns the n-th Fibonacci number", "counts the vowels in a text", "flattens a nested list",
             "converts Celsius to Fahrenheit", "finds the largest gap in a sorted list", "dedupes a list keeping order",
             "parses 'HH:MM' into minutes", "chunks a list into pieces of size n", "title-cases a string",
             "sums the digits of an integer"]
# fmt: on

PREFIXES = ["", "", "", "please ", "could you ", "can you ", "I need you to ", "hey, ", "pls ", "would you ",
            "go ahead and ", "quick one: ", "task: ", "I'd like you to ", "help me "]  # fmt: skip
SUFFIXES = ["", "", "", " please", " thanks!", ", thx", " asap", " when you get a chance", ".", "!", " :)",
            " - thank you"]  # fmt: skip

Maker = Callable[[random.Random], tuple[str, str]]


def _pick(rng: random.Random, items: list[str]) -> str:
    return items[rng.randrange(len(items))]


def _older(rng: random.Random) -> str:
    return _pick(rng, ["older than 30 days", "from last year", "from 2023", "not touched in six months",
                       "older than a week", "from before March", "bigger than 100MB"])  # fmt: skip


# Each maker returns (request, gold key). The request is lower-case prose; decoration comes later.


def _move(rng: random.Random) -> tuple[str, str]:
    ext, src, dst, thing = _pick(rng, EXTS), _pick(rng, DIRS), _pick(rng, DIRS), _pick(rng, THINGS)
    text = _pick(rng, [
        f"move every {ext} file from {src} into {dst}", f"put all the {thing} in {dst}",
        f"shift the {thing} out of {src} and into {dst}", f"{dst} should hold the {ext} files that are in {src}",
        f"relocate {src}/*{ext} to {dst}", f"gather up the {thing} scattered around {src} into {dst}",
        f"copy the {thing} from {src} to {dst} and keep the originals", f"mv all {ext} under {src} -> {dst}",
        f"the {thing} belong in {dst}, not in {src}", f"drag the {ext} files {_older(rng)} from {src} to {dst}",
    ])  # fmt: skip
    return text, "single:builder"


def _rename(rng: random.Random) -> tuple[str, str]:
    src, thing = _pick(rng, DIRS), _pick(rng, THINGS)
    text = _pick(rng, [
        f"rename the {thing} in {src} to photo_001, photo_002 and so on",
        f"give every file in {src} a name that starts with its date",
        f"replace the spaces in the file names under {src} with dashes",
        f"lowercase all the file names in {src}", f"the {thing} in {src} have ugly names, number them",
        f"add the prefix 2025- to the {thing} in {src}", f"strip 'copy of' from the names in {src}",
        f"call the {thing} in {src} <year>-<month>-<name> instead",
    ])  # fmt: skip
    return text, "single:builder"


def _archive(rng: random.Random) -> tuple[str, str]:
    src, thing = _pick(rng, DIRS), _pick(rng, THINGS)
    text = _pick(rng, [
        f"archive the {thing} {_older(rng)} into old.tar.gz", f"zip up {src}", f"compress everything in {src}",
        f"bundle the {thing} from {src} into one archive and remove the originals",
        f"pack {src} into a .tar.xz for the backup drive", f"extract the zip in {src} into {src}/unpacked",
        f"unpack {src}/export.zip", f"make a tarball of {src}",
    ])  # fmt: skip
    return text, "single:builder"


def _classify(rng: random.Random) -> tuple[str, str]:
    src, topic = _pick(rng, DIRS), _pick(rng, TOPICS)
    text = _pick(rng, [
        f"sort the notes in {src} into folders by topic", f"classify the documents in {src} by subject",
        f"file the {_pick(rng, THINGS)} in {src} by year", f"organise {src} by file type",
        f"group the files under {src} by month", f"anything mentioning {topic} in {src} goes to {topic}/",
        f"split {src} into images, documents and other", f"bucket the {_pick(rng, THINGS)} by client name",
    ])  # fmt: skip
    return text, "single:builder"


def _tag(rng: random.Random) -> tuple[str, str]:
    src, topic = _pick(rng, DIRS), _pick(rng, TOPICS)
    text = _pick(rng, [
        f"tag the {topic} notes", f"label every file in {src} that talks about {topic} with '{topic}'",
        f"mark the drafts in {src} as draft", f"add the tag {topic} to the markdown files in {src}",
        f"remove the 'todo' tag from everything in {src}", f"tag the {_pick(rng, THINGS)} with the year",
    ])  # fmt: skip
    return text, "single:builder"


def _cleanup(rng: random.Random) -> tuple[str, str]:
    src = _pick(rng, DIRS)
    text = _pick(rng, [
        f"clean up {src}: delete the .tmp files", f"tidy up the {src} folder", f"get rid of the empty files in {src}",
        f"delete the duplicate {_pick(rng, THINGS)} in {src}", f"clear out {src}, it is full of junk",
        f"remove every {_pick(rng, EXTS)} file {_older(rng)} from {src}", f"declutter {src}",
        f"clean-up time for {src}: drop the .bak and .tmp leftovers", f"purge the old logs in {src}",
    ])  # fmt: skip
    return text, "single:builder"


_STEPS: list[Maker] = [_move, _rename, _archive, _classify, _tag, _cleanup]


def _multi_file(rng: random.Random) -> tuple[str, str]:
    steps = [maker(rng)[0] for maker in rng.sample(_STEPS, rng.choice([3, 3, 4]))]
    style = rng.randrange(3)
    if style == 0:
        text = "first " + ", then ".join(steps[:-1]) + ", and finally " + steps[-1]
    elif style == 1:
        text = "a few things:\n" + "\n".join(f"- {step}" for step in steps)
    else:
        text = "; ".join(steps) + "; after that send me a summary of what moved"
    return text, "pipeline:planner+builder"


def _function(rng: random.Random) -> tuple[str, str]:
    what, module = _pick(rng, FUNCTIONS), _pick(rng, MODULES)
    text = _pick(rng, [
        f"write a function that {what}", f"add a helper to {module} that {what}",
        f"i need a python function that {what}", f"implement a small utility which {what}",
        f"make a script that {what}", f"code up something that {what}",
    ])  # fmt: skip
    return text, "single:builder"


def _feature(rng: random.Random) -> tuple[str, str]:
    feature, other, module = _pick(rng, FEATURES), _pick(rng, FEATURES), _pick(rng, MODULES)
    text = _pick(rng, [
        f"add {feature} to the app: a config option, the code in {module}, and docs in the README",
        f"build {feature} end to end, including the storage changes, the command and the help text",
        f"we need {feature} and {other}; design how they fit together before writing them",
        f"implement {feature}. it touches {module}, the CLI and the settings file",
        f"design and build {feature} across the backend and the command line",
    ])  # fmt: skip
    return text, "pipeline:planner+builder"


def _fix(rng: random.Random) -> tuple[str, str]:
    test, module, symbol = _pick(rng, TESTS), _pick(rng, MODULES), _pick(rng, SYMBOLS)
    text = _pick(rng, [
        f"{test} is failing, fix it", f"fix the failing {test}", f"{test} has been red since yesterday, sort it out",
        f"{symbol} returns the wrong total for empty input; make the tests pass",
        f"there's a bug in {module}: {symbol} crashes on unicode. fix it and prove it with a test",
        f"CI is broken on {test}, please repair", f"{symbol} raises KeyError sometimes, track it down and fix it",
        f"make {test} green again", f"the suite fails in {module} after the last merge, fix",
    ])  # fmt: skip
    return text, "loop:builder+tester:3"


def _flaky(rng: random.Random) -> tuple[str, str]:
    test = _pick(rng, TESTS)
    text = _pick(rng, [
        f"{test} is flaky, it fails one run in five; find out why and fix it",
        f"intermittent failure in {test} on CI only, investigate and make it reliable",
        f"{test} passes locally but randomly fails on the build server, fix the race",
    ])  # fmt: skip
    return text, "loop:builder+tester:5"


def _add_tests(rng: random.Random) -> tuple[str, str]:
    module, symbol = _pick(rng, MODULES), _pick(rng, SYMBOLS)
    text = _pick(rng, [
        f"add tests for {symbol}", f"write unit tests covering {module}", f"{symbol} has no tests, add some",
        f"cover the edge cases of {symbol} with pytest", f"increase test coverage of {module}",
        f"write a regression test for the {symbol} bug we fixed last week",
    ])  # fmt: skip
    return text, "loop:builder+tester:2"


def _rename_symbol(rng: random.Random) -> tuple[str, str]:
    symbol, other, module = _pick(rng, SYMBOLS), _pick(rng, SYMBOLS), _pick(rng, MODULES)
    text = _pick(rng, [
        f"rename {symbol} to {other}_v2 everywhere", f"rename the function {symbol} across the codebase",
        f"extract the parsing part of {symbol} into its own function", f"{symbol} and {other} duplicate code, dedupe",
        f"simplify {symbol} without changing what it does", f"pull the constants out of {module} into config",
        f"inline the helper that {symbol} calls only once", f"restructure {module} so {symbol} is easier to read",
    ])  # fmt: skip
    return text, "pipeline:builder+refactor"


def _split_module(rng: random.Random) -> tuple[str, str]:
    module = _pick(rng, MODULES)
    text = _pick(rng, [
        f"split {module} into smaller modules", f"{module} is 2000 lines, break it up by responsibility",
        f"carve {module} into a package with one file per concern", f"break {module} apart, it does too much",
    ])  # fmt: skip
    return text, "pipeline:planner+builder+refactor"


def _refactor_with_tests(rng: random.Random) -> tuple[str, str]:
    module, symbol = _pick(rng, MODULES), _pick(rng, SYMBOLS)
    if rng.random() < 0.5:
        text = _pick(rng, [
            f"split {module} into a package and keep the whole test suite passing",
            f"break up {module} by responsibility; the tests must stay green at every step",
        ])  # fmt: skip
        return text, "loop:planner+builder+tester+refactor:3"
    text = _pick(rng, [
        f"rename {symbol} everywhere and make sure the tests still pass",
        f"simplify {symbol} and run the tests to prove nothing changed", f"dedupe {module}, tests must stay green",
    ])  # fmt: skip
    return text, "loop:builder+tester+refactor:3"


#: The kinds and how often each is drawn: file management is what most requests are.
KINDS: list[tuple[str, Maker, int]] = [
    ("move", _move, 10), ("rename_files", _rename, 6), ("archive", _archive, 6), ("classify", _classify, 6),
    ("tag", _tag, 5), ("cleanup", _cleanup, 7), ("multi_file", _multi_file, 8), ("function", _function, 8),
    ("feature", _feature, 7), ("fix", _fix, 9), ("flaky", _flaky, 3), ("add_tests", _add_tests, 7),
    ("rename_symbol", _rename_symbol, 7), ("split_module", _split_module, 5),
    ("refactor_with_tests", _refactor_with_tests, 6),
]  # fmt: skip

REASONS = {
    "single:builder": "one piece of work with nothing to test: the builder alone",
    "pipeline:planner+builder": "several distinct steps: a planner orders them, then the builder",
    "loop:builder+tester:2": "new tests: build them, run them, fix what they find",
    "loop:builder+tester:3": "tests decide when it is fixed: build and test in rounds",
    "loop:builder+tester:5": "a flaky failure takes more rounds of build and test",
    "pipeline:builder+refactor": "a behaviour-preserving change: the builder, then a refactor pass",
    "pipeline:planner+builder+refactor": "a module split: plan the new layout, move the code, refactor",
    "loop:planner+builder+tester+refactor:3": "a planned split that the tests must keep green",
    "loop:builder+tester+refactor:3": "a refactor that the tests must keep green",
}

_FILLERS = ["It's getting messy.", "No rush.", "This is for tomorrow's review.", "Thanks in advance.",
            "Be careful, this is my only copy.", "I tried myself and gave up.", "Same as last time.",
            "Don't touch anything else."]  # fmt: skip


def _typo(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    for _ in range(rng.choice([1, 1, 2, 3])):
        long = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
        if not long:
            break
        i = rng.choice(long)
        word = words[i]
        at = rng.randrange(1, len(word) - 1)
        edit = rng.randrange(3)
        if edit == 0:
            word = word[:at] + word[at + 1] + word[at] + word[at + 2 :]
        elif edit == 1:
            word = word[:at] + word[at + 1 :]
        else:
            word = word[:at] + word[at] + word[at:]
        words[i] = word
    return " ".join(words)


def _decorate(rng: random.Random, text: str) -> str:
    if rng.random() < 0.25:
        text = _typo(rng, text)
    text = _pick(rng, PREFIXES) + text + _pick(rng, SUFFIXES)
    if rng.random() < 0.2:
        text = f"{text} {_pick(rng, _FILLERS)}" if rng.random() < 0.5 else f"{_pick(rng, _FILLERS)} {text}"
    casing = rng.random()
    if casing < 0.6:
        text = text[:1].upper() + text[1:]
    elif casing < 0.65:
        text = text.upper()
    return text


def generate_request(index: int, *, seed: int = 0) -> RouterTask:
    """Return request ``index`` of ``seed``: a :class:`RouterTask` of source ``files`` with its gold decision."""
    rng = random.Random(f"routeshell-files:{seed}:{index}")
    names, makers, weights = zip(*KINDS, strict=True)
    position = rng.choices(range(len(makers)), weights=weights)[0]
    text, key = makers[position](rng)
    gold: Candidate = candidate_by_key(key)
    return RouterTask(f"files_s{seed}_{index:05d}", "files", _decorate(rng, text), gold=gold,
                      gold_reason=f"{names[position]}: {REASONS[key]}")  # fmt: skip


def generate_requests(count: int, *, seed: int = 0) -> list[RouterTask]:
    """Return requests ``0 .. count-1`` of ``seed``."""
    return [generate_request(index, seed=seed) for index in range(count)]
