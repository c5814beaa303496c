"""Decide which uploaded photos may be used: one face, large enough, whole, the same person in all.

    screen_uploads(files, limits, rules)  bytes -> ingest -> screen_photo each -> screen_set -> ScreeningReport

`ScreenedPhoto` is the only type the trainer accepts, so an unscreened file cannot reach
it. Per-photo reason codes (besides ingest's, see privacy.intake.ingest):

    no_face           no face found
    several_faces     more than one face, however small: another person is in the frame (promise 14)
    face_cut_off      the face runs over the edge of the photo
    face_too_small    face width below rules.min_face_fraction of the photo's short side
    face_near_edge    the headshot square around the face does not fit in the photo even
                      shrunk to MIN_FIT of its side (faces/headshot_crop.py): no room
                      for hair and shoulders, and we never invent a border
    low_resolution    training would upscale the face crop more than rules.max_crop_upscale
    different_person  (set check) not the person in the other photos (promise 13)
    near_duplicate    (set check) almost the same as an earlier photo; left out of the set

Set-level codes: different_person, too_few_photos, too_many_photos. A set with another
person in it is not acceptable until that photo is removed: the person must act on it.
Near-duplicates are simply left out. Reports never carry pixels, embeddings or file
names: photos are named by their 1-based position in the upload.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import cv2
import numpy as np

from errors import PhotoRejected, PhotoSetRejected
from faces.face_model import Face, detect_faces, embedding_distance, face_embedding
from faces.headshot_crop import MIN_FIT, fitted_crop
from privacy.intake.ingest import CleanPhoto, IngestLimits, ingest

if TYPE_CHECKING:
    from settings import Settings

NO_FACE = "no_face"
SEVERAL_FACES = "several_faces"
FACE_CUT_OFF = "face_cut_off"
FACE_TOO_SMALL = "face_too_small"
FACE_NEAR_EDGE = "face_near_edge"
LOW_RESOLUTION = "low_resolution"
DIFFERENT_PERSON = "different_person"
NEAR_DUPLICATE = "near_duplicate"
TOO_FEW_PHOTOS = "too_few_photos"
TOO_MANY_PHOTOS = "too_many_photos"

# A face box may stick out of the frame by this fraction of its width before it counts
# as cut off: scaling boxes back from the detection copy rounds by a pixel or two.
CUT_OFF_TOLERANCE = 0.02
# Near-duplicates need both a tiny embedding distance and nearly the same face pixels:
# two photos of one person can be close in embedding (same event, same light) yet
# different pictures. Hamming distance between 64-bit difference hashes of the face.
DUPLICATE_HASH_BITS = 10

# One line of practical advice per code, beyond what the message already says (the page shows
# both; `tests/app/test_screening_messages.py` checks that no advice repeats its message).
ADVICE = {
    "empty_file": "Some phones send only a placeholder for photos kept in online storage.",
    "file_too_large": "Sharing it by e-mail or a messenger usually makes a smaller copy.",
    "unsupported_type": "Documents, drawings, animations and screenshots of web pages are not photos we can use.",
    "extra_data": "Phones add such clips to live or motion photos.",
    "corrupt_file": "The original, straight from your camera or phone, works best.",
    "too_many_pixels": "Your photo app can export or share it at a smaller size.",
    "too_small": "Chat apps and social networks shrink photos they pass on.",
    "animated": "GIFs and live photos hold several pictures; we need exactly one.",
    NO_FACE: "Sunglasses, a mask or strong shadow can hide a face from the check.",
    SEVERAL_FACES: "Faces far in the background, on posters or screens count too.",
    FACE_CUT_OFF: "Hold the camera a little further away.",
    FACE_TOO_SMALL: "A selfie at arm's length usually works.",
    FACE_NEAR_EDGE: "Hold the camera a little further away.",
    LOW_RESOLUTION: "Zooming in on a group photo loses sharpness.",
    DIFFERENT_PERSON: "Every photo must show you, and only you.",
    NEAR_DUPLICATE: "Vary clothing and background too.",
    TOO_FEW_PHOTOS: "Different days, light and angles make the best likeness.",
    TOO_MANY_PHOTOS: "Keep your best, most varied photos.",
}


@dataclass(frozen=True)
class ScreeningRules:
    """Screening thresholds; the defaults live once, in settings.py."""

    face_detection_threshold: float  # dlib HOG score a detection needs to count as a face
    min_face_fraction: float  # smallest face width / photo short side
    same_person_distance: float  # largest embedding distance still the same person
    duplicate_distance: float  # embedding distance below which two photos may be near-duplicates
    min_photos: int
    max_photos: int
    max_crop_upscale: float  # largest enlargement of the face crop training may need
    # The size the crop is enlarged to: SDXL's 1024 px, the largest native size of the
    # supported families, so a photo accepted here is good enough for every base model.
    crop_resolution: int = 1024
    threads: int = 1  # photos of one upload screened at the same time

    @classmethod
    def from_settings(cls, settings: "Settings") -> "ScreeningRules":
        return cls(face_detection_threshold=settings.face_detection_threshold,
                   min_face_fraction=settings.min_face_fraction,
                   max_crop_upscale=settings.max_crop_upscale,
                   same_person_distance=settings.same_person_distance,
                   duplicate_distance=settings.duplicate_distance,
                   min_photos=settings.min_photos, max_photos=settings.max_photos,
                   threads=settings.screening_threads or min(MAX_AUTO_THREADS, _usable_cores()))


# Beyond 4 threads an upload gains little (4 photos is the minimum set) and holds more
# decoded photos in memory at once (~15 MB each while decoding).
MAX_AUTO_THREADS = 4


def _usable_cores() -> int:
    """Cores this process may run on (a container's CPU set, not the host's core count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


@dataclass(frozen=True, eq=False)
class ScreenedPhoto:
    """A clean photo that passed screening, with its one face and that face's embedding."""

    photo: CleanPhoto
    face: Face
    embedding: np.ndarray = field(repr=False)  # (128,) float64: biometric data, never logged


def screen_photo(photo: CleanPhoto, rules: ScreeningRules) -> ScreenedPhoto:
    """Exactly one face, whole and large enough; else PhotoRejected with a stable code."""
    faces = detect_faces(photo.pixels, threshold=rules.face_detection_threshold)
    if not faces:
        raise PhotoRejected("We couldn't find a face in this photo. Please choose one where your face is clearly "
                            "visible and facing the camera.", code=NO_FACE)
    if len(faces) > 1:
        raise PhotoRejected("Another person is in this photo. Crop them out or choose a photo of you alone.",
                            code=SEVERAL_FACES)
    face = faces[0]
    if _cut_off(face, photo.width, photo.height):
        raise PhotoRejected("Your face is cut off at the edge of this photo. Choose one where your whole face, "
                            "chin and forehead included, is inside the frame.", code=FACE_CUT_OFF)
    fraction = (face.box[2] - face.box[0]) / min(photo.width, photo.height)
    if fraction < rules.min_face_fraction:
        raise PhotoRejected("Your face is too small in this photo. Choose one taken closer, where your head and "
                            "shoulders fill more of the frame.", code=FACE_TOO_SMALL)
    square = fitted_crop(face.landmarks, face.box, photo.width, photo.height)
    if square.fit < MIN_FIT:
        raise PhotoRejected("Your face is too close to the edge of this photo for a headshot: there is no room "
                            "around your head. Choose one with some space above and beside your head.",
                            code=FACE_NEAR_EDGE)
    upscale = square.upscale_to(rules.crop_resolution)
    if upscale > rules.max_crop_upscale:
        raise PhotoRejected(f"This photo has too few pixels on your face: it would have to be enlarged "
                            f"{upscale:.1f} times (at most {rules.max_crop_upscale:g} times gives a sharp result). "
                            "Choose a higher-resolution photo or one taken closer.", code=LOW_RESOLUTION)
    return ScreenedPhoto(photo=photo, face=face, embedding=face_embedding(photo.pixels, face))


def _cut_off(face: Face, width: int, height: int) -> bool:
    left, top, right, bottom = face.box
    slack = CUT_OFF_TOLERANCE * (right - left)
    box_out = left < -slack or top < -slack or right > width + slack or bottom > height + slack
    marks = np.asarray(face.landmarks)
    marks_out = bool((marks < 0).any() or (marks[:, 0] >= width).any() or (marks[:, 1] >= height).any())
    return box_out or marks_out


# --- the set ----------------------------------------------------------------------------

@dataclass(frozen=True)
class SetProblem:
    code: str
    message: str
    photos: tuple[int, ...] = ()  # 1-based upload positions concerned

    @property
    def advice(self) -> str:
        return ADVICE.get(self.code, "")


@dataclass(frozen=True)
class SetVerdict:
    """The set checks' outcome. `rejected` maps a 1-based position to the PhotoRejected for it."""

    problems: tuple[SetProblem, ...]
    rejected: dict[int, PhotoRejected]
    usable: tuple[int, ...]  # positions that go on to training

    @property
    def acceptable(self) -> bool:
        return not self.problems

    def raise_if_unacceptable(self) -> None:
        if self.problems:
            raise PhotoSetRejected(self.problems[0].message, code=self.problems[0].code)


def screen_set(photos: list[ScreenedPhoto], rules: ScreeningRules,
               positions: list[int] | None = None) -> SetVerdict:
    """Same person in every photo, no near-duplicates, and between min and max photos.

    `positions` are the photos' 1-based places in the upload (default 1..n), used in messages.
    """
    positions = list(positions) if positions is not None else list(range(1, len(photos) + 1))
    if len(positions) != len(photos):
        raise ValueError("one position per photo")
    rejected: dict[int, PhotoRejected] = {}
    problems: list[SetProblem] = []
    n = len(photos)
    distances = np.array([[embedding_distance(a.embedding, b.embedding) for b in photos] for a in photos]) \
        if n else np.zeros((0, 0))

    # Same person: the photo with the most same-person neighbours (ties: smallest total
    # distance) is the reference; whoever is too far from it is someone else. With a
    # majority of the person's own photos this names exactly the odd ones out.
    if n >= 2:
        neighbours = (distances <= rules.same_person_distance).sum(axis=1)
        centre = min(range(n), key=lambda i: (-neighbours[i], distances[i].sum()))
        strangers = [i for i in range(n) if distances[centre, i] > rules.same_person_distance]
        for i in strangers:
            rejected[positions[i]] = PhotoRejected(
                f"Photo {positions[i]} looks like a different person from the others. Remove it, or replace it "
                "with a photo of you.", code=DIFFERENT_PERSON)
        if strangers:
            named = [positions[i] for i in strangers]
            problems.append(SetProblem(DIFFERENT_PERSON, _different_person_message(named), tuple(named)))

    # Near-duplicates: the later photo of each pair is left out (it adds nothing to training).
    hashes = [_face_hash(p) for p in photos]
    for j in range(n):
        if positions[j] in rejected:
            continue
        for i in range(j):
            if positions[i] in rejected:
                continue
            if distances[i, j] < rules.duplicate_distance and \
                    bin(hashes[i] ^ hashes[j]).count("1") <= DUPLICATE_HASH_BITS:
                rejected[positions[j]] = PhotoRejected(
                    f"Photo {positions[j]} is almost the same as photo {positions[i]}; a different angle or "
                    "expression helps more.", code=NEAR_DUPLICATE)
                break

    usable = tuple(p for p in positions if p not in rejected)
    if len(usable) < rules.min_photos:
        problems.append(SetProblem(TOO_FEW_PHOTOS, (
            f"{_count(len(usable), 'usable photo')} so far; at least {rules.min_photos} are needed. "
            f"Add {_count(rules.min_photos - len(usable), 'more photo')} of you alone.")))
    elif len(usable) > rules.max_photos:
        problems.append(SetProblem(TOO_MANY_PHOTOS, (
            f"{_count(len(usable), 'usable photo')}; at most {rules.max_photos} can be used. "
            f"Remove {len(usable) - rules.max_photos} of them.")))
    return SetVerdict(problems=tuple(problems), rejected=rejected, usable=usable)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _different_person_message(named: list[int]) -> str:
    if len(named) == 1:
        return f"Photo {named[0]} looks like a different person from the others. Remove it to continue."
    listed = ", ".join(str(p) for p in named[:-1]) + f" and {named[-1]}"
    return f"Photos {listed} look like a different person from the others. Remove them to continue."


def _face_hash(screened: ScreenedPhoto) -> int:
    """64-bit difference hash of the face region: survives re-encoding and resizing, not a new photo."""
    pixels = screened.photo.pixels
    left, top, right, bottom = screened.face.box
    height, width = pixels.shape[:2]
    region = pixels[max(0, top):min(height, bottom), max(0, left):min(width, right)]
    grey = cv2.cvtColor(np.ascontiguousarray(region), cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


# --- one call for the app and the CLI ------------------------------------------------------

@dataclass(frozen=True)
class ReportItem:
    index: int  # 1-based position in the set
    accepted: bool
    code: str  # "accepted" or a reason code
    message: str
    advice: str
    screened: ScreenedPhoto | None = field(default=None, repr=False)
    photo_id: str = ""  # the photo's id in an editable set (privacy.intake.photo_set); "" for a one-off check
    preview: bytes | None = field(default=None, repr=False)  # a small JPEG of the cleaned picture, for its owner

    def to_dict(self) -> dict:
        return {"index": self.index, "accepted": self.accepted, "code": self.code,
                "message": self.message, "advice": self.advice}


@dataclass(frozen=True)
class ScreeningReport:
    items: tuple[ReportItem, ...]
    set_problems: tuple[SetProblem, ...]

    @property
    def acceptable(self) -> bool:
        """True when the accepted photos form a usable set."""
        return not self.set_problems

    def accepted(self) -> list[ScreenedPhoto]:
        return [item.screened for item in self.items if item.accepted and item.screened is not None]

    def raise_if_unacceptable(self) -> None:
        if self.set_problems:
            raise PhotoSetRejected(self.set_problems[0].message, code=self.set_problems[0].code)

    def to_json(self) -> str:
        """The report for people and tools: no pixels, no embeddings, no file names."""
        return json.dumps({
            "acceptable": self.acceptable,
            "accepted": len(self.accepted()),
            "photos": [item.to_dict() for item in self.items],
            "set_problems": [{"code": p.code, "message": p.message, "advice": p.advice, "photos": list(p.photos)}
                             for p in self.set_problems],
        }, indent=2, sort_keys=True)


@dataclass(frozen=True, eq=False)
class FileVerdict:
    """One file's own verdict, before the set checks: screened, or refused with the reason."""

    screened: ScreenedPhoto | None
    rejection: PhotoRejected | None
    preview: bytes | None = field(default=None, repr=False)
    photo_id: str = ""


def screen_files(files: list[bytes], limits: IngestLimits, rules: ScreeningRules, *,
                 preview: Callable[[CleanPhoto], bytes | None] | None = None) -> list[FileVerdict]:
    """Ingest and screen each file on its own (in parallel where cores allow). `preview` makes the owner's
    thumbnail from the cleaned picture (never from the file: no metadata, no bomb to decode twice)."""
    def check(data: bytes) -> FileVerdict:
        try:
            photo = ingest(data, limits)
        except PhotoRejected as exc:
            return FileVerdict(None, exc)
        thumb = preview(photo) if preview is not None else None
        try:
            return FileVerdict(screen_photo(photo, rules), None, thumb)
        except PhotoRejected as exc:
            return FileVerdict(None, exc, thumb)

    # Photos are independent until the set check: decoding, detection and the descriptor
    # spend most of their time outside the GIL, so they run side by side (issue 13).
    threads = max(1, min(rules.threads, len(files)))
    if threads > 1:
        with ThreadPoolExecutor(threads, thread_name_prefix="screen") as pool:
            return list(pool.map(check, files))
    return [check(data) for data in files]


def report_for(verdicts: list[FileVerdict], rules: ScreeningRules) -> ScreeningReport:
    """The set checks over files already screened one by one, in their order: the report for that set."""
    screened = {i: v.screened for i, v in enumerate(verdicts, start=1) if v.screened is not None}
    refused = {i: v.rejection for i, v in enumerate(verdicts, start=1) if v.rejection is not None}
    verdict = screen_set(list(screened.values()), rules, positions=list(screened))
    refused.update(verdict.rejected)
    items = []
    for index, file in enumerate(verdicts, start=1):
        if index in refused:
            exc = refused[index]
            items.append(ReportItem(index, False, exc.code, exc.message, ADVICE.get(exc.code, ""),
                                    photo_id=file.photo_id, preview=file.preview))
        else:
            items.append(ReportItem(index, True, "accepted", "Accepted.", "", screened[index],
                                    photo_id=file.photo_id, preview=file.preview))
    return ScreeningReport(items=tuple(items), set_problems=verdict.problems)


def check_batch_size(count: int, rules: ScreeningRules) -> None:
    """Decoding and screening cost ~0.25 s of CPU a photo: refuse an oversized batch before any of it.
    Twice the maximum leaves room for the photos screening will turn down."""
    if count > 2 * rules.max_photos:
        raise PhotoSetRejected(f"That is {count} files at once; please choose at most {rules.max_photos} "
                               "photos of yourself and upload them together. Nothing was stored.",
                               code="too_many_files")


def screen_uploads(files: list[bytes], limits: IngestLimits, rules: ScreeningRules) -> ScreeningReport:
    """Ingest and screen each file, then check the set; what `cli.py check` calls."""
    check_batch_size(len(files), rules)
    return report_for(screen_files(files, limits, rules), rules)
