"""The privacy notice, generated from the running settings, and its version.

The same text is shown in the app before upload, written to PRIVACY.md, and hashed into
the policy version stored with every consent record (promise 18): if an operator changes
a retention period, the version changes, and records show which notice a person agreed to.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from privacy.intake.photo_set import DRAFT_TTL_SECONDS
from privacy.store.vault import ALL_CATEGORIES, CATEGORY_NAMES, KEY_HOLDERS
from settings import Settings


def _hours(h: float) -> str:
    if h < 1:
        return f"{round(h * 60)} minutes"
    return "1 hour" if h == 1 else f"{h:g} hours"


def _days(d: float) -> str:
    if d < 1:
        return _hours(d * 24)
    return "1 day" if d == 1 else f"{d:g} days"


@dataclass(frozen=True)
class RetentionFigures:
    """The numbers a person is promised, in words, from the settings the code runs on."""

    uploads: str
    hard_cap: str
    headshots: str
    audit: str

    @classmethod
    def from_settings(cls, s: Settings) -> "RetentionFigures":
        return cls(uploads=_hours(s.upload_retention_hours), hard_cap=_hours(s.session_hard_cap_hours),
                   headshots=_days(s.headshot_retention_days), audit=_days(s.audit_retention_days))


def third_parties(s: Settings) -> str:
    if s.host_name:
        return (f"No one but the host of this service, {s.host_name}, whose servers run it; "
                "we send your photos to no other company, API or model.")
    return "None. This studio is self-hosted: your photos never leave this server."


def mode_sentences(s: Settings) -> dict[str, str]:
    """Each way of making headshots in one sentence, with its time and what is kept: the page's choice, the
    notice and the policy all say it with these words."""
    r = RetentionFigures.from_settings(s)
    return {
        "instant": ("Instant — about 20 s on a GPU; your photos are used in memory for this one request and never "
                    "stored; no model of your face is made."),
        "studio": (f"Studio — trains your own model for best likeness, minutes; your photos and model are erased "
                   f"{r.uploads} after your headshots are made."),
    }


def short_notice(s: Settings) -> str:
    """The plain-language notice shown before anything is uploaded (Markdown)."""
    r = RetentionFigures.from_settings(s)
    modes = mode_sentences(s)
    return f"""### Before you upload: what happens to your photos
- **Two ways to make them, your choice before you upload:** {modes["instant"]} {modes["studio"]}
- **What we collect:** the photos you upload (we strip all metadata such as location first), a face measurement computed from them, and, in Studio mode only, the small model trained on them. In Instant mode none of these is ever stored: only the headshots, if you choose to keep them.
- **What for:** only to make *your* headshots in this session. Never to train anything else, never shared, never sold.
- **How long:** your photos, face measurements and your trained model are erased **{r.uploads}** after your headshots are made, and at the latest **{r.hard_cap}** after you agree below. Your headshots are kept for **{r.headshots}**, then erased; come back with your private link. You can delete everything at any moment, and you get a signed receipt.
- **Your private key:** when you agree below you get a private link and code. Keep it to come back from any browser; nobody, including us, can recover it. Once your headshots are made they are locked with it: without it nobody, not even this studio's operator, can open them, and they are simply erased on schedule.
- **Protection:** everything is encrypted with a key only your session has (AES-256-GCM); erasing destroys that key.
- **Who else sees them:** {third_parties(s)}
- **Every headshot is marked as AI-generated** (content credentials and an invisible watermark).
- **Please upload only photos of yourself, alone** — no other people, no children, no documents.
- **Questions or requests:** {s.contact_email}

[Read the full privacy policy](/privacy)
"""


def full_policy(s: Settings) -> str:
    """The complete policy: the short notice's promises, each answered in full (Markdown)."""
    r = RetentionFigures.from_settings(s)
    modes = mode_sentences(s)
    return f"""# Privacy policy — Headshot Studio

This policy is generated from the configuration this deployment runs on; the numbers below are the ones the code enforces.
Policy version: `{policy_version(s)}`.

## What is my photo used for?
Only to make your own headshots in this session: in Studio mode we train a small identity model (a LoRA adapter) on your photos and generate headshots from it; in Instant mode a face adapter reads your photos in memory for one request and nothing is trained. Nothing you upload is used for any other purpose.

## What is the difference between Instant and Studio mode?
{modes["instant"]} {modes["studio"]}

In Instant mode your photos are screened in the studio's memory exactly as in Studio mode (one face, the same person, metadata stripped), as you add them (so you see each photo's verdict before you press Make) and again when you press Make, then a tuning-free face adapter (IP-Adapter "plus-face") conditions the image model on the faces in them for this one request. No photo, face measurement, embedding or model of your face is written anywhere; until Make, each uploaded file waits encrypted under a key held only in the studio's memory, and it is deleted when Make reads it or when you take it out of your photos (one left unread is deleted after a short grace period). Your file names never reach the studio: the page shows them beside each verdict from your own browser. The finished headshots are scored for likeness against your photos (in memory), screened for unsafe content and marked as AI-generated, like every headshot. You choose whether they are kept: kept, they are locked with your private key and erased after {r.headshots} like Studio headshots; not kept, they are shown on your page for you to download and stored nowhere, and they are gone when you leave the page. Your deletion receipt then says that no identity data was ever stored.

## Is it used to train other models?
Never. Your photos and your adapter are never used to train or improve any other model. The studio sends no telemetry and uploads nothing anywhere.

## What do you collect?
The photos you upload, after we have removed all metadata (EXIF, GPS location, XMP, IPTC, colour profiles, comments); a face measurement (a 128-number embedding) used to check that every photo shows the same single person and to score likeness; the adapter trained on your photos; the headshots generated for you and which of them you starred as favourites; your consent (which statements you ticked, when, and this policy's version); and an audit log of events that contains no personal data (counts and times, under a pseudonymous id). IP addresses are {"recorded in the audit log" if s.log_client_ip else "not recorded"}.

## How long are uploads kept?
Your photos, face measurements and adapter are erased {r.uploads} after your headshots are generated, and in any case no later than {r.hard_cap} after you gave consent, even if you never generate anything.

## What happens while I put my set of photos together?
Photos are stored only as a complete set that passes every check (enough photos, one face each, all of the same person). Until then, the photos you add wait in the studio's memory, never on disk, so that you can add, remove or replace one without sending the others again; they leave memory {DRAFT_TTL_SECONDS // 60} minutes after your last change, or at once when you delete. Removing a photo from a stored set stores the rest again under a new key and destroys the old key, so the removed photo cannot be recovered, and the model trained on the old set is erased with it.

## Is the trained model (my face) deleted too?
Yes, at the same time as your photos. While it exists, "More like this" makes more headshots from it without training again; after that, more headshots need your photos again.

## Which headshots did I mark as favourites?
The studio keeps your stars with your session, so they come back when you open your private link in another browser: only which of your headshots you starred, sealed under the same key as the headshots themselves (from the moment they are made, your private key). They are erased with your headshots, on schedule or when you delete everything, and your data export lists them. Your browser keeps no copy of them. "Download favourites" asks for just those headshots.

## How long are headshots kept?
{r.headshots} after they were generated; then they are erased. You come back to them with the private link or code you received when you agreed: closing or reloading the page erases nothing by itself.

## Who can open my stored headshots?
Only someone holding your private key. At consent the studio draws a random 128-bit key and gives it to you; it keeps only a fingerprint of it (an HKDF locator). While your headshots are made, the photos, face measurements and trained model are sealed under a key the studio holds (so the job can finish while your page is closed). {handover_sentence(s)} While a page of yours is open, the unlocked key is held in memory only, to show and download them.

{key_table()}{queue_note(s)}

## Can I delete early?
Yes. "Delete everything now" erases your photos, adapter and headshots at once and gives you a deletion receipt signed by this deployment, which you can check with `python cli.py verify-receipt`.

## Does deletion reach copies and backups?
Everything of yours is encrypted with keys that belong to your session alone. Erasure destroys those keys first, then removes the encrypted files, so any copy left anywhere (a backup, a disk block) can no longer be decrypted.

## What remains after cleanup?
After {r.uploads}: only your headshots. After {r.headshots}: nothing but a minimal erasure record (a pseudonymous id, when, and by whom: you or the schedule) and the audit events, which hold no personal data and are kept {r.audit}.

## Are results public?
No. Your headshots are private to your session; no other visitor can fetch them.

## Which third parties touch my photos?
{third_parties(s)}

## Is it encrypted?
In transit by the host's HTTPS, and at rest with AES-256-GCM under per-session keys, one for your identity data and one for your headshots, each itself encrypted by the key the table above names.

## Is my location leaked?
No. All metadata, GPS included, is removed before anything is stored, and delivered headshots carry none of it.

## Could someone upload photos of another person?
You must confirm that the photos are of you and that you are 18 or older. Every photo must show exactly one face, the same person in all of them.

## What about other people in the frame, children, documents?
A photo with a second face is refused. Please do not upload photos of children or of documents.

## Will it still look like me?
Every headshot is scored for likeness against your photos; weak ones are held back and not shown.

## Can it be used for deepfakes?
There is no free-text prompt: only professional styles. Every headshot carries C2PA content credentials and an invisible watermark declaring it AI-generated.

## Who owns the result?
You do. Download everything as a ZIP, or export all your data.

## Is there a written retention policy before collection?
Yes: this policy. It is generated from the configuration the code runs on, shown (in short) before you give consent and before anything is uploaded, and its version (`{policy_version(s)}` for this configuration) is stored in your consent record, so it is clear which notice you agreed to. The copy published as PRIVACY.md shows the default configuration; a running deployment shows its own numbers at /privacy.

## Is there an audit trail?
Yes, without personal data: no names, file names, images or face measurements.

## What if the service crashes?
Erasures that came due while it was down run as soon as it starts again.

## Who can I contact?
Write to {s.contact_email} with any question or request about your data. To report a security problem, follow SECURITY.md in the source repository.
"""


def handover_sentence(s: Settings) -> str:
    """When the headshots' key goes to its owner: at the end of the job, or, with separate GPU workers (queue mode,
    studio.workers), once a page of the owner is open: a worker never receives the owner's key."""
    locked = ("their key is re-locked with a key derived from your private key, and the studio's own copy is "
              "deleted: from then on the operator, a thief with the disk and the master key, or a backup cannot open "
              "them.")
    if not s.queue_url:
        return "As soon as the headshots are made, " + locked
    return ("On this deployment headshots are made on separate GPU workers, which never receive your private key: "
            "they seal the new headshots under a key the studio holds, and as soon as they are made and a page of "
            "yours is open (the page that watches them, or your private link when you come back), " + locked +
            " Until then the studio could open them. When you make more headshots, your page lends the key of your "
            "earlier ones back to the studio, so that the new ones are sealed beside them; they are all yours again "
            "as soon as the new ones are handed to you.")


def queue_note(s: Settings) -> str:
    if not s.queue_url:
        return ""
    return ("\n\nOn this deployment, “once they are made” means: once they are made and a page of yours has been open "
            "since.\n")


def key_table() -> str:
    """Which key locks which data at each stage, from the vault's own table (privacy.store.vault.KEY_HOLDERS)."""
    header = "| stage | " + " | ".join(CATEGORY_NAMES[c] for c in ALL_CATEGORIES) + " |"
    rows = [f"| {stage} | " + " | ".join(holders[c] for c in ALL_CATEGORIES) + " |" for stage, holders in KEY_HOLDERS]
    return "\n".join([header, "| --- |" + " --- |" * len(ALL_CATEGORIES), *rows])


def policy_version(s: Settings) -> str:
    """A short hash of the notice text: changes whenever what we promise changes."""
    return hashlib.sha256(short_notice(s).encode()).hexdigest()[:16]
