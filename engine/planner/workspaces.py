"""A seeded generator of realistic workspaces: what a planner case runs against.

A workspace is a handful of themed folders drawn from a pool: documents and notes in Markdown (some
tagged in their front matter), invoices and statements, photos and screenshots, logs, a small code
project, downloads, videos and music, and backups that are real archives. Every workspace also
holds a few names that are hard to handle: spaces, accents, CJK, a leading dash, markup, a newline,
an escape character, and a byte that is not UTF-8.

A wide workspace also names folders in several words, as people do ("Meeting Notes", "Tax stuff",
"phone camera/Kyoto trip"), and may keep a few themes in the folders of the clients or projects
they are for ("clients/Harbor View Hotel/invoices"), each file there with a name no other such file
has.

Sizes and ages come from separated bands, so that a request that says "the big videos" or "the
old logs" has one right answer: a file is either clearly big (over 20 MB) or clearly small (under
2 MB), and its age is in one of four bands (days, weeks, months, years) with gaps around the
thresholds the requests use (7 days, 30 days, a year). Calendar dates keep clear of the first and
last days of a month, so "from 2025" does not depend on a time zone.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

from engine.planner.fixtures import FileSpec

KB = 1024
MB = 1024 * 1024

#: Age bands in days: recent, weeks, months, years. The gaps hold the thresholds 7, 30 and 365 days.
AGE_BANDS = {"days": (0.2, 5.0), "weeks": (10.0, 20.0), "months": (45.0, 300.0), "years": (400.0, 1100.0)}

# fmt: off
TOPICS = ["architecture", "api", "onboarding", "roadmap", "security", "budget", "hiring", "travel", "release",
          "testing", "database", "pricing"]
TAGS = ["draft", "review", "urgent", "todo", "done", "work", "personal", "important"]
WORDS = ["summary", "notes", "plan", "ideas", "overview", "checklist", "minutes", "proposal", "draft", "review"]
PEOPLE = ["alice", "bob", "carol", "dave", "erin", "frank"]
PLACES = ["beach", "paris", "mountains", "garden", "birthday", "wedding", "office", "lisbon"]
#: Places and events that photos are kept under, named in several words as people name folders.
SPOKEN_PLACES = ["summer holiday", "Lake Tahoe", "new year", "school play", "Rome 2024", "cabin weekend",
                 "team offsite", "Kyoto trip"]
#: Who a folder of several themes is for: clients, projects, a team ("clients/Harbor View Hotel/invoices").
OWNERS = ["Acme Corp", "Harbor View Hotel", "Smith Brothers", "Café Olé", "Nordlicht GmbH", "Project Falcon",
          "Green Valley School", "Oak Street Clinic", "Riverside FC", "Björk Design", "Tanaka Ramen",
          "Blue Ridge Farm", "Casa Álvarez", "North Wing"]
OWNER_FOLDERS = ["clients", "Clients", "projects", "Projects", "customers", "Work"]
#: Papers people keep under the names they were given: spaces, capitals, words.
PAPERS = ["rental contract.pdf", "Car loan statement.pdf", "passport scan.pdf", "Home Insurance 2025.pdf",
          "offer letter.pdf", "CV 2024.docx", "electricity bill march.pdf", "Doctor note.pdf", "pay stub dec.pdf",
          "mortgage-offer.pdf", "Gym membership.pdf", "warranty - fridge.pdf"]
HOSTILE = ["Résumé final.docx", "naïve notes.md", "日本語のメモ.txt", "file with spaces.pdf", "-rf.txt",
           "[red]markup[/red].txt", "line\nbreak.txt", "esc\x1b[31mred.log", "caf\udce9.txt", "über-plan.md",
           "déjà vu.jpg", "emoji 🎉 party.png"]
# fmt: on


def when(today: dt.date, age_days: float) -> dt.date:
    """The calendar day ``age_days`` before ``today`` (noon)."""
    return (dt.datetime.combine(today, dt.time(12)) - dt.timedelta(days=age_days)).date()


class Builder:
    """Collects the files of one workspace, keeping paths unique."""

    def __init__(self, rng: random.Random, today: dt.date) -> None:
        self.rng = rng
        self.today = today
        self.files: list[FileSpec] = []
        self.taken: set[str] = set()
        #: Whether a file's name must be one no other file has: in the folders of several owners,
        #: so that files gathered from all of them into one folder never collide.
        self.unique_names = False
        #: Whether folders may be named in several words, and themes kept in owners' folders.
        self.wide = False

    def age(self, band: str | None = None) -> float:
        band = band or self.rng.choice(list(AGE_BANDS))
        low, high = AGE_BANDS[band]
        for _ in range(50):
            age = round(self.rng.uniform(low, high), 2)
            day = when(self.today, age).day
            if 3 <= day <= 26:
                return age
        return age

    def age_in_year(self, year: int) -> float:
        """An age whose calendar day is in ``year`` (and not near a month's edge), before today."""
        for _ in range(100):
            day = dt.date(year, self.rng.randint(1, 12), self.rng.randint(3, 26))
            age = (self.today - day).days
            if age > 1:
                return float(age)
        return self.age("years")

    def add(self, path: str, **fields: object) -> FileSpec | None:
        if path in self.taken or any(path.startswith(f"{other}/") for other in self.taken):
            return None
        parts = path.split("/")
        if any("/".join(parts[:i]) in self.taken for i in range(1, len(parts))):
            return None
        if self.unique_names and any(other.rsplit("/", 1)[-1] == parts[-1] for other in self.taken):
            return None
        spec = FileSpec(path, **fields)  # type: ignore[arg-type]
        self.taken.add(path)
        self.files.append(spec)
        return spec

    def text(self, path: str, text: str, band: str | None = None, tags: tuple[str, ...] = ()) -> None:
        if tags and path.endswith(".md"):
            text = "---\ntags: [" + ", ".join(tags) + "]\n---\n" + text
        self.add(path, text=text, size=len(text.encode()), age_days=self.age(band), tags=tags)

    def binary(self, path: str, size: int, band: str | None = None, age: float | None = None) -> None:
        self.add(path, size=size, age_days=self.age(band) if age is None else age)


def _note_text(rng: random.Random, topic: str) -> str:
    other = rng.choice(TOPICS)
    return (
        f"# {topic.title()} {rng.choice(WORDS)}\n\n"
        f"Notes on the {topic} work, with {rng.choice(PEOPLE)}.\n"
        f"- next: review the {other} part\n- owner: {rng.choice(PEOPLE)}\n"
    )


def _docs(b: Builder, top: str) -> None:
    rng = b.rng
    for topic in rng.sample(TOPICS, rng.randint(3, 6)):
        name = rng.choice([f"{topic}-{rng.choice(WORDS)}.md", f"{topic}.md", f"{rng.choice(WORDS)}-{topic}.md"])
        tags = tuple(rng.sample(TAGS, rng.randint(1, 2))) if rng.random() < 0.4 else ()
        b.text(f"{top}/{name}", _note_text(rng, topic), tags=tags)
    if rng.random() < 0.6:
        topic = rng.choice(TOPICS)
        b.text(f"{top}/draft-{topic}.md", _note_text(rng, topic), tags=("draft",) if rng.random() < 0.5 else ())
    if rng.random() < 0.5:
        b.binary(f"{top}/{rng.choice(TOPICS)}-spec.pdf", rng.randint(40 * KB, 900 * KB))


def _notes(b: Builder, top: str) -> None:
    rng = b.rng
    for _ in range(rng.randint(2, 5)):
        day = when(b.today, age := b.age())
        name = rng.choice([f"meeting-{day.isoformat()}.md", f"{rng.choice(PEOPLE)}-1on1.md", "ideas.md", "todo.txt"])
        text = _note_text(rng, rng.choice(TOPICS))
        if b.add(f"{top}/{name}", text=text, size=len(text), age_days=age) is None:
            continue


def _finance(b: Builder, top: str) -> None:
    rng = b.rng
    years = sorted({b.today.year - 1, b.today.year, b.today.year - rng.randint(1, 2)})
    for _ in range(rng.randint(4, 9)):
        year = rng.choice(years)
        age = b.age_in_year(year)
        day = when(b.today, age)
        kind = rng.choice(["invoice", "receipt", "bank-statement", "invoice", "payslip"])
        name = rng.choice(
            [f"{kind}-{day:%Y-%m}.pdf", f"{kind}_{day:%Y%m%d}.pdf", f"{kind}-{rng.randint(100, 999)}.pdf"]
        )
        b.binary(f"{top}/{name}", rng.randint(30 * KB, 600 * KB), age=age)
    if rng.random() < 0.5:
        year = rng.choice(years)
        b.binary(f"{top}/tax-return-{year}.pdf", rng.randint(200 * KB, 900 * KB), age=b.age_in_year(year))
    for name in rng.sample(PAPERS, rng.randint(0, 3)):
        b.binary(f"{top}/{name}", rng.randint(40 * KB, 900 * KB))
    if rng.random() < 0.5:
        text = "date,amount,what\n" + "".join(f"2025-0{i}-1{i},{10 * i},item {i}\n" for i in range(1, 6))
        b.text(f"{top}/expenses.csv", text)


def _photos(b: Builder, top: str) -> None:
    rng = b.rng
    year = rng.choice([b.today.year - 1, b.today.year - 2, b.today.year])
    dated = rng.random() < 0.4
    if dated:
        folder = f"{top}/{year}"
    else:
        place = rng.choice(SPOKEN_PLACES) if b.wide and rng.random() < 0.4 else rng.choice(PLACES)
        folder = rng.choice([top, f"{top}/{place}"])
    for _ in range(rng.randint(3, 8)):
        ext = rng.choice([".jpg", ".jpg", ".JPG", ".png", ".heic"])
        name = rng.choice([f"IMG_{rng.randint(1000, 9999)}{ext}", f"{rng.choice(PLACES)}-{rng.randint(1, 40)}{ext}"])
        b.binary(f"{folder}/{name}", rng.randint(300 * KB, 1800 * KB), age=b.age_in_year(year) if dated else None)


def _screenshots(b: Builder, top: str) -> None:
    rng = b.rng
    for _ in range(rng.randint(2, 5)):
        age = b.age()
        day = when(b.today, age)
        b.binary(f"{top}/Screenshot {day.isoformat()} at {rng.randint(10, 23)}.{rng.randint(10, 59)}.png",
                 rng.randint(60 * KB, 900 * KB), age=age)  # fmt: skip


def _logs(b: Builder, top: str) -> None:
    rng = b.rng
    app = rng.choice(["app", "server", "worker", "sync", "backup"])
    for band in [*rng.sample(list(AGE_BANDS), rng.randint(2, 4)), rng.choice(list(AGE_BANDS))]:
        age = b.age(band)
        day = when(b.today, age)
        level = rng.choice(["INFO", "INFO", "ERROR", "WARN"])
        text = f"{day.isoformat()} 10:00:01 {level} {app} started\n{day.isoformat()} 10:00:02 INFO ready\n"
        b.add(f"{top}/{app}-{day.isoformat()}.log", text=text, size=len(text), age_days=age)
    if rng.random() < 0.5:
        b.binary(f"{top}/{app}.log.tmp", rng.randint(10, 900), band="days")


def _code(b: Builder, top: str) -> None:
    rng = b.rng
    for module in rng.sample(["main", "utils", "parser", "models", "cli", "storage"], rng.randint(2, 4)):
        text = f'"""The {module} module."""\n\n\ndef {module}_entry():\n    return "{module}"\n'
        b.text(f"{top}/src/{module}.py", text, band=rng.choice(["days", "weeks"]))
    b.text(f"{top}/README.md", f"# {top}\n\nA small project.\n", band="weeks")
    if rng.random() < 0.6:
        b.text(f"{top}/tests/test_main.py", "def test_main():\n    assert True\n")
    if rng.random() < 0.5:
        b.binary(f"{top}/build/output.bin", rng.randint(50 * KB, 400 * KB), band="days")


def _downloads(b: Builder, top: str) -> None:
    rng = b.rng
    for _ in range(rng.randint(4, 8)):
        stem = rng.choice(["setup", "manual", "report", "slides", "data", "song", "poster", "statement", "ticket"])
        ext = rng.choice([".pdf", ".zip", ".jpg", ".png", ".csv", ".docx", ".mp3", ".tmp", ".txt", ".xlsx"])
        name = f"{stem}{rng.choice(['', '-1', '-final', '(1)', ' copy', '_v2'])}{ext}"
        if ext == ".zip":
            members = {f"{stem}/readme.txt": f"{stem} readme\n", f"{stem}/data.csv": "a,b\n1,2\n"}
            b.add(f"{top}/{name}", members=members, age_days=b.age())
        elif ext in (".csv", ".txt"):
            b.text(f"{top}/{name}", f"{stem} {rng.choice(WORDS)}\n")
        else:
            b.binary(f"{top}/{name}", rng.randint(2 * KB, 1500 * KB) if ext != ".tmp" else rng.randint(1, 900))


def _media(b: Builder, top: str) -> None:
    rng = b.rng
    for _ in range(rng.randint(3, 6)):
        big = rng.random() < 0.5
        ext = rng.choice([".mp4", ".mov", ".mkv"])
        name = f"{rng.choice(PLACES)}-{rng.choice(['clip', 'video', 'trip', 'edit'])}-{rng.randint(1, 30)}{ext}"
        b.binary(f"{top}/videos/{name}", rng.randint(25 * MB, 80 * MB) if big else rng.randint(200 * KB, 1800 * KB))
    for _ in range(rng.randint(0, 3)):
        b.binary(f"{top}/music/{rng.choice(PEOPLE)}-track-{rng.randint(1, 12):02d}.mp3", rng.randint(2 * MB, 6 * MB))


def _backups(b: Builder, top: str) -> None:
    rng = b.rng
    for _ in range(rng.randint(1, 3)):
        what = rng.choice(["site", "photos", "notes", "config", "project", "db"])
        ext = rng.choice([".zip", ".tar.gz"])
        members = {f"{what}/index.txt": f"{what} index\n", f"{what}/{rng.choice(WORDS)}.md": f"# {what}\n"}
        b.add(f"{top}/{what}-backup-{when(b.today, age := b.age()):%Y%m%d}{ext}", members=members, age_days=age)
    if rng.random() < 0.5:
        b.binary(f"{top}/old.bak", rng.randint(1 * KB, 90 * KB), band="years")


#: Themes: a maker, the top-level names it may use, and names of several words for it, as people
#: name folders (used in a wide workspace).
THEMES: list[tuple[Callable[[Builder, str], None], list[str], list[str]]] = [
    (_docs, ["docs", "documents", "wiki", "Documents", "Documents/work"],
     ["Work Docs", "Shared Documents", "docs/team wiki"]),
    (_notes, ["notes", "meeting-notes", "journal", "Notes", "Documents/notes"], ["Meeting Notes", "Personal Notes"]),
    (_finance, ["finance", "invoices", "paperwork", "Documents/taxes", "Paperwork"],
     ["Tax stuff", "Bills 2025", "Finance/Tax Returns"]),
    (_photos, ["photos", "pictures", "camera", "Pictures", "Camera", "Pictures/trips"],
     ["Holiday Photos", "phone camera", "Pictures/Family Trips"]),
    (_screenshots, ["screenshots", "Desktop", "Pictures/Screenshots"], ["Screen Shots", "Desktop/screen grabs"]),
    (_logs, ["logs", "var/log", "server-logs"], ["Server Logs", "logs/nightly jobs"]),
    (_code, ["project", "myapp", "tools", "code/app"], ["side project", "Code/Web App"]),
    (_downloads, ["downloads", "Downloads", "inbox"], ["My Downloads", "Downloads/email attachments"]),
    (_media, ["media", "videos-and-music", "Media"], ["Home Videos", "Media Library"]),
    (_backups, ["backups", "archive", "old", "Backups"], ["Old Backups", "Backups/laptop backups"]),
]  # fmt: skip
#: Themes that may sit in an owner's folder ("clients/Acme Corp/invoices"), and the names they then take.
OWNED = {_docs: ["docs", "Documents", "briefs"], _notes: ["notes", "meeting notes"],
         _finance: ["invoices", "Invoices", "billing"], _photos: ["photos", "site photos"],
         _logs: ["logs"], _backups: ["backups", "old versions"]}  # fmt: skip


def _hostile(b: Builder) -> None:
    rng = b.rng
    for name in rng.sample(HOSTILE, rng.randint(1, 3)):
        folder = rng.choice(["", "misc/", "inbox/", "stuff/"])
        b.add(f"{folder}{name}", text=f"contents of {name}\n", size=len(name) + 13, age_days=b.age())


def random_today(rng: random.Random) -> dt.date:
    """A date between 2025-09 and 2027-03, away from the first and last days of a month."""
    start = dt.date(2025, 9, 1)
    for _ in range(100):
        day = start + dt.timedelta(days=rng.randrange(540))
        if 5 <= day.day <= 24:
            return day
    return day


def generate_workspace(rng: random.Random, today: dt.date, *, themes: int | None = None,
                       wide: bool = False) -> list[FileSpec]:  # fmt: skip
    """Return the files of one workspace: ``themes`` themed folders (3 to 6 when not given) plus hard
    names; with ``wide``, folders named in several words too, and some themes in owners' folders."""
    b = Builder(rng, today)
    b.wide = wide
    chosen = rng.sample(THEMES, themes or rng.randint(3, 6))
    # Some wide workspaces keep a few themes in the folders of the people or projects they are for.
    owners = rng.sample(OWNERS, rng.randint(1, 3)) if wide and rng.random() < 0.4 else []
    group = rng.choice(OWNER_FOLDERS) if owners else ""
    for make, tops, spoken in chosen:
        if owners and make in OWNED and rng.random() < 0.7:
            b.unique_names = True
            for owner in owners:
                make(b, f"{group}/{owner}/{rng.choice(OWNED[make])}")
            b.unique_names = False
        else:
            make(b, rng.choice([*tops, *spoken] if wide else tops))
    _hostile(b)
    if rng.random() < 0.3:
        b.add(rng.choice(["empty", "new-folder", "to-sort"]), kind="dir", age_days=b.age())
    b.files.sort(key=lambda spec: spec.path)
    return b.files
