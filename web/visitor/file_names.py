"""The name a person's own file had, said beside its verdict: sanitised, bounded, and kept nowhere.

The name comes from the browser (Gradio's FileData.orig_name), so it is whatever a caller wants it to be: a
path, markup, control or direction-override characters, a megabyte of text. `shown_name` keeps only the last
path part, drops every control and format character, folds runs of white space, and cuts it to
`MAX_NAME_CHARS` (the render escapes what is left). The privacy notice promises a minimum of data: a file
name can say who someone is ("anna-smith-passport.jpg"), so it is never stored, on disk or in the database.
It lives only in this tab's memory (`PhotoNames`, held by the tab's session state, web.events.Owned) and in
the page's answer; a reload or a new tab shows "Photo N" alone.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Iterable

MAX_NAME_CHARS = 40  # a phone's line beside an 80 px thumbnail; longer names keep their start and extension
_SPACE = re.compile(r"\s+")


def shown_name(raw: Any) -> str:
    """A file name as the page may show it (before escaping), or "" when nothing printable is left."""
    if not isinstance(raw, str):
        return ""
    name = re.split(r"[\\/]", raw[:4096])[-1]  # never a path: its last part only
    # Cc (controls), Cf (format: bidi overrides, zero-width), Cs/Co/Cn (surrogates, private, unassigned).
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _SPACE.sub(" ", name).strip()
    if len(name) <= MAX_NAME_CHARS:
        return name
    stem, dot, ext = name.rpartition(".")
    ext = f".{ext}" if dot and stem and 0 < len(ext) <= 5 else ""
    return name[:MAX_NAME_CHARS - 1 - len(ext)].rstrip() + "…" + ext


def names_of(files: Any) -> list[str]:
    """The shown names of the files an event received (web.components.UploadedFiles), in their order."""
    files = [files] if isinstance(files, str) else list(files or [])
    return [shown_name(getattr(f, "orig_name", None)) for f in files]


def names_at(files: Any) -> dict[int, str]:
    """{1-based position: shown name} of the files an event received (Instant's check names photos by position)."""
    return dict(enumerate(names_of(files), start=1))


@dataclass
class PhotoNames:
    """This tab's names of its Studio photos, by photo id: in memory only, gone with the tab's state.

    Every photo id the page has been shown is known here ("" when its name is not: a set reopened with a
    return key), so the ids a change adds are exactly those it does not know yet.
    """

    by_id: dict[str, str] = field(default_factory=dict)

    def learn(self, report: Any, names: Iterable[str] = (), *, appended: bool = False) -> None:
        """Give the photos new to this tab the names of the files just sent, in order (the studio appends new
        photos, or puts one in the place of another: in either case in the order they were sent).

        `appended`: the files were added at the end of the set, so when this tab does not know every older photo
        (a set reopened with a return key) the last ones are still theirs. Otherwise a count that does not match
        (a set changed meanwhile in another tab) names nothing: better no name than a wrong one.
        """
        fresh = [item.photo_id for item in report.items if item.photo_id and item.photo_id not in self.by_id]
        names = list(names)
        if appended and 0 < len(names) <= len(fresh):
            names = [""] * (len(fresh) - len(names)) + names
        if len(names) != len(fresh):
            names = [""] * len(fresh)
        self.by_id.update(zip(fresh, names))
        current = {item.photo_id for item in report.items}
        for gone in set(self.by_id) - current:  # removed photos: their names go at once
            del self.by_id[gone]

    def by_index(self, report: Any) -> dict[int, str]:
        """{position in the set: name} for `web.render.render_screening`."""
        return {item.index: self.by_id[item.photo_id] for item in report.items
                if self.by_id.get(item.photo_id)}


def named_check(mine: Any, report: Any, sent: Any = (), *, appended: bool = False) -> str:
    """The Studio photo check after a change, each photo with the name its file had in this tab: the names of
    `sent` (the files of this change) are learnt into the tab's `PhotoNames` (web.events.Owned.photo_names)."""
    from web.render import render_screening
    names = getattr(mine, "photo_names", None) or PhotoNames()
    names.learn(report, names_of(sent), appended=appended)
    return render_screening(report, names=names.by_index(report))
