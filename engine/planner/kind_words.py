"""The kinds of file a request names: by an extension ("pdfs", ".log", "MP3s"), by a word for the
kind ("songs", "photos", "notes", "the raws") or by a word for a group of kinds ("pics"), and what
is no kind though it looks like one: a file's name, a path it spells, a verb that archives."""

from __future__ import annotations

import re
from collections.abc import Iterable

from engine.planner.described import NOUNS
from engine.planner.places import FILE_NAME
from engine.planner.requests import EXT_WORDS, GROUPS
from engine.planner.words import WORD, Request, alike, index_words, stem, word_keys

#: Words of a kind phrase that say nothing of the kind ("pdf files": only "pdf" does).
_GENERIC = frozenset(("files", "file", "in", "the", "a"))

#: What people call files of other common kinds (the planner's own words are in requests.py and
#: described.py).
COMMON_KINDS: dict[str, tuple[str, ...]] = {
    ".psd": ("photoshop",), ".svg": ("vector", "svg"), ".gif": ("gif", "animation"),
    ".webp": ("photo", "picture", "image", "pic"), ".jpeg": ("photo", "picture", "image", "pic"),
    ".tiff": ("tiff",), ".tif": ("tiff",), ".xmp": ("sidecar",),
    # camera raw files ("the raws from the wedding")
    ".nef": ("raw",), ".cr2": ("raw",), ".cr3": ("raw",), ".arw": ("raw",), ".dng": ("raw",), ".raf": ("raw",),
    ".orf": ("raw",), ".rw2": ("raw",),
    ".wav": ("audio", "recording", "sound"), ".flac": ("audio", "song", "track"),
    ".m4a": ("audio", "song", "recording"),
    ".aac": ("audio",), ".ogg": ("audio",), ".m3u": ("playlist",), ".m3u8": ("playlist",),
    ".avi": ("video",), ".webm": ("video",),
    ".xls": ("spreadsheet", "excel", "sheet"), ".xlsx": ("excel",), ".ods": ("spreadsheet",), ".tsv": ("tsv",),
    ".pptx": ("slides", "presentation", "deck", "powerpoint"), ".ppt": ("slides", "presentation", "powerpoint"),
    ".odp": ("slides", "presentation"),
    ".doc": ("document", "word"), ".odt": ("document",), ".rtf": ("document",),
    ".epub": ("epub",), ".mobi": ("mobi",), ".bib": ("bibliography",),
    ".sql": ("dump", "database"), ".db": ("database",), ".sqlite": ("database",), ".bak": ("bak",),
    ".json": ("json",), ".yaml": ("config", "yaml"), ".yml": ("config", "yaml"), ".toml": ("config",),
    ".ini": ("config",), ".xml": ("xml",), ".html": ("html", "webpage"), ".css": ("stylesheet",),
    ".js": ("script", "javascript"), ".sh": ("script", "shell"), ".ipynb": ("notebook",),
    ".pkg": ("installer", "package"), ".dmg": ("installer", "dmg"), ".exe": ("installer", "program"),
    ".msi": ("installer",), ".apk": ("apk",), ".iso": ("iso",),
    ".7z": ("archive",), ".rar": ("archive",), ".tar": ("archive", "tarball"), ".tgz": ("archive", "tarball"),
    ".ics": ("calendar", "invite", "invitation"), ".vcf": ("contact", "vcard"), ".srt": ("subtitle", "subtitles"),
    ".ttf": ("ttf",), ".otf": ("otf",), ".torrent": ("torrent",), ".eml": ("email",),
    # more common kinds, so that a kind the request names leaves them out ("the photos": no .xcf);
    # (each extension's own name is a word for it too, so none here is an English word: no .go, .key)
    ".bmp": ("bitmap",), ".ico": ("icon",), ".xcf": ("gimp",), ".avif": ("avif",), ".jxl": ("jxl",),
    ".m4v": ("video",), ".mpg": ("video",), ".mpeg": ("video",), ".wmv": ("video",), ".flv": ("video",),
    ".mts": ("video", "footage"), ".opus": ("audio",), ".wma": ("audio",), ".aiff": ("audio",),
    ".woff": ("font",), ".woff2": ("font",), ".azw3": ("kindle", "ebook"), ".djvu": ("djvu",), ".cbz": ("comic",),
    ".tsx": ("typescript",), ".jsx": ("javascript",), ".java": ("java",), ".cpp": ("cpp",), ".rs": ("rust",),
    ".rb": ("ruby",), ".php": ("php",), ".kt": ("kotlin",), ".lua": ("lua",), ".ps1": ("powershell",),
    ".jar": ("jar",), ".whl": ("wheel",), ".deb": ("deb",), ".rpm": ("rpm",), ".appimage": ("appimage",),
    ".xz": ("xz",), ".bz2": ("bz2",), ".zst": ("zst",), ".tar.xz": ("tarball",),
    ".stl": ("stl",), ".blend": ("blender",), ".gcode": ("gcode",), ".gpx": ("gpx",), ".kml": ("kml",),
    ".dwg": ("dwg", "autocad"), ".dxf": ("dxf",), ".vtt": ("subtitle", "subtitles"),
    ".pem": ("pem",), ".crt": ("certificate",), ".kdbx": ("keepass",), ".ova": ("ova",), ".vmdk": ("vmdk",),
    ".qcow2": ("qcow2",), ".parquet": ("parquet",), ".pkl": ("pickle",), ".npz": ("npz",), ".npy": ("npy",),
}  # fmt: skip


def _kind_phrases() -> list[tuple[str, str]]:
    """Each extension with each word or phrase that names its kind."""
    phrases = [(ext, phrase) for ext, said in EXT_WORDS.items() for phrase in said]
    phrases += [(ext, phrase) for ext, said in COMMON_KINDS.items() for phrase in said]
    phrases += [(ext, noun) for ext, nouns in NOUNS.items() for noun in nouns]
    phrases += [(ext, group) for group, exts in GROUPS.items() for ext in exts]
    phrases += [(ext, ext.lstrip(".").split(".")[-1]) for ext, _ in phrases]  # "pdf", "mp3", "gz"
    return phrases


def _kind_words() -> dict[str, set[str]]:
    """Each word that names a kind of file, and the extensions it names."""
    words: dict[str, set[str]] = {}
    for ext, phrase in _kind_phrases():
        for word in WORD.findall(phrase.lower()):
            if word not in _GENERIC:
                words.setdefault(word, set()).add(ext)
    return words


KIND_WORDS = _kind_words()
_KIND_KEYS = index_words(KIND_WORDS)


def kind_exts(word: str) -> set[str]:
    """The extensions ``word`` names as a kind of file ("photos": .jpg, .png, ...), forgiving a
    plural and a typo (:func:`alike`)."""
    return {ext for key in word_keys(word) for kind in _KIND_KEYS.get(key, ()) if alike(word, kind)
            for ext in KIND_WORDS[kind]}  # fmt: skip


#: The words that name a kind of file, as spelled (less a plural).
KIND_STEMS = frozenset(
    stem(word) for _, phrase in _kind_phrases() for word in WORD.findall(phrase.lower()) if word not in _GENERIC
)


def names_a_kind(word: str) -> bool:
    """Whether ``word`` names a kind of file ("photos", "screenshots", "pdfs"), forgiving a plural and a typo."""
    return bool(kind_exts(word))


#: A path spelled with a slash ("media/videos", "to-print/2026", "photos/").
SPELLED_PATH = re.compile(r"[^\s\"'`]*/[^\s\"'`]*")


def group_exts(request: str, *, wide: bool = False) -> list[str]:
    """The extensions of a group of kinds the request names by its word ("photos", "pics", "videos"),
    when it names one group and no extension of its own: every kind the word stands for."""
    said = Request(_narrowed_kinds(ARCHIVING_VERB.sub(" ", SPELLED_PATH.sub(" ", FILE_NAME.sub(" ", request)))))
    # (``wide``: every kind the word names, "pics" are .webp and .jpeg pictures too)
    named = [list(dict.fromkeys([*exts, *(sorted(kind_exts(word) - set(exts)) if wide else [])]))
             for word, exts in GROUPS.items() if " " not in word and said.uses([word])]  # fmt: skip
    if len(named) != 1:
        return []
    group = set(named[0])
    # "JPEG photos", "the png pictures": a word that names some of the group's kinds, not all.
    own = any(0 < len(kind_exts(word) & group) < len(group) for word in WORD.findall(said.lowered))
    return [] if own else list(named[0])


#: An extension said before a word for its kind: "png images", ".pdf documents", "MP3 songs".
_EXT_KIND = re.compile(r"(?<![\w.])\.?([a-z0-9]{2,5})(?=\s+([a-z]+)\b)", re.IGNORECASE)


def _narrowed_kinds(request: str) -> str:
    """``request`` less each word for a kind right after one of its extensions: "png images" asks for
    PNGs, not for every kind of image."""
    blanked = []
    for found in _EXT_KIND.finditer(request):
        ext = stem(found[1])
        kinds = kind_exts(found[2])
        if len(kinds) > 1 and any(kind.rsplit(".", 1)[-1] == ext for kind in kinds):
            blanked.append(found.start(2))
    for start in reversed(blanked):
        end = start + len(re.match(r"[a-z]+", request[start:], re.IGNORECASE)[0])  # type: ignore[index]
        request = f"{request[:start]}{' ' * (end - start)}{request[end:]}"
    return request


#: A word for an archive said as the verb that makes one: "zip up the designs", "tar them".
ARCHIVING_VERB = re.compile(
    r"\b(?:zip|tar|gzip|rar|7z)(?=\s+(?:up|it|them|the|all|everything|these|those|my|our|his|her|their|this)\b)",
    re.IGNORECASE,
)
#: Kinds said with a slash between them ("the gpx/fit files", "jpg/png"), or what may be a path.
_SLASHED_KINDS = re.compile(r"(?<![\w/.])\.?([A-Za-z0-9]{2,5})/\.?([A-Za-z0-9]{2,5})(?![\w/.])")


def _unslashed(found: re.Match[str], exts: list[str]) -> str:
    """The two words of ``found`` apart where both are extensions of ``exts`` ("gpx fit"), else it."""
    lowered = {ext.lower() for ext in exts}
    if f".{found[1].lower()}" in lowered and f".{found[2].lower()}" in lowered:
        return f"{found[1]} {found[2]}"
    return found[0]


#: An extension spelled with its dot: ".bak", ".orig".
_DOTTED_EXT = re.compile(r"(?<![\w/.])\.[A-Za-z][A-Za-z0-9]{0,7}\b")


def referred_exts(request: str, exts: Iterable[str], *, strict: bool = False) -> list[str] | None:
    """The extensions of ``exts`` the request names: by themselves ("pdfs", ".log", "MP3s") or by a
    word for their kind ("songs", "photos", "notes"). An extension no word here names (``.m3u``)
    stays among them, unless ``strict``: the request may name it in words this module does not know."""
    # A file the request names is not a kind it asks for: "zip it as thesis-backup.zip" asks for no
    # zips and no backups.
    # Nor is a folder it spells with a slash: "from photos/" asks for no photos.
    # Nor is a verb of archiving: "zip up the flash designs", "tar them" ask for no zips.
    # (Kinds said with a slash between them are kinds, not a path: "the gpx/fit files".)
    exts = list(dict.fromkeys(exts))
    request = _SLASHED_KINDS.sub(lambda found: _unslashed(found, exts), request)
    said = Request(_narrowed_kinds(ARCHIVING_VERB.sub(" ", SPELLED_PATH.sub(" ", FILE_NAME.sub(" ", request)))))
    # Extensions spelled with their dot are all it names: "the .bak and .orig leftovers" are no .pyc.
    dotted = list(dict.fromkeys(ext.lower() for ext in _DOTTED_EXT.findall(said.text)))
    strict = strict or bool(dotted)
    said_words = WORD.findall(said.lowered)
    keys = {key for word in said_words for key in word_keys(word)}
    named = {ext for word in said_words for ext in kind_exts(word)}
    named |= {ext for ext in exts if stem(ext.rsplit(".", 1)[-1]) in keys}  # ".sql dumps", "the ISOs"
    if not named:
        return None
    # A word for a kind no file here has is a word of names ("the lecture slides" are
    # lecture-07-slides.pdf where there are no .pptx), not a kind that some unknown extension may be.
    if not strict and named.isdisjoint(exts):
        return None
    known = {ext for named_exts in KIND_WORDS.values() for ext in named_exts}
    found = [ext for ext in exts if ext in named or (ext not in known and not strict)]
    # (Spelled with their dot, kinds no file here has are still all it names: "delete the .bak
    # files" selects no file where there is none, never every file.)
    return found or dotted or None
