"""The studio's exceptions, in two families.

    StudioError
    ├── UserError                 shown to the person, with what to do next (app.py turns these into gr.Error)
    │   ├── PhotoRejected         ingest or screening refused a photo; `.code` is a stable reason code
    │   ├── PhotoSetRejected      the set as a whole is not usable (too few, too many, different people)
    │   ├── ConsentRequired       no consent record for the session: nothing may be stored
    │   ├── SessionGone           the session was erased or has expired
    │   ├── OwnerKeyRequired      the data is sealed for its owner: their return key is needed to open it
    │   ├── Busy                  the GPU queue is full or the client is rate limited
    │   ├── Cancelled             the person cancelled training or generation
    │   ├── OutOfMemory           the GPU ran out of memory; everything was freed
    │   ├── AdapterGone           "more like this" asked for, but no trained model is kept (erased, or never made)
    │   ├── ModelMismatch         the trained model was made on another base model than the studio would use
    │   ├── UnknownDownloadSize   a headshot download asked for a size the studio does not make
    │   ├── TeamKeyRefused        a team admin link that opens no team (mistyped, or the team was deleted)
    │   ├── OperatorKeyRefused    an operator link that opens nothing (mistyped, replaced, revoked, or none minted)
    │   ├── TeamSettingRejected   a team name, look or invite setting outside what is allowed; `.code` names it
    │   ├── InviteRefused         an invite link that cannot be used; a subclass says why:
    │   │   └── InviteUnknown, InviteExpired, InviteUsedUp, InviteRevoked
    │   ├── NotInTeam             sharing asked for by a session that joined no team
    │   ├── ShareRejected         a share without a usable display name or style
    │   └── ShareGone             a share that was withdrawn, erased on schedule, or never existed
    └── OperatorError             for maintainers: precise, loud, early
        ├── ModelUnavailable      a base model cannot be loaded (no weights, no hub)
        └── VaultIntegrityError   a blob or key failed authentication: tampering or corruption

Neither family ever carries image bytes, file names, paths with session ids, or keys:
messages are written for people and logs, and both must stay free of personal data.
(settings.SettingsError is the operator error for bad configuration; it lives beside
the settings so that module has no dependencies.)
"""

from __future__ import annotations


class StudioError(Exception):
    """Base of every error the studio raises on purpose."""


class UserError(StudioError):
    """An error a person can act on. `code` is stable (tests, JSON, UI); `message` is for humans."""

    code = "error"
    default_message = ""  # a subclass's usual words, so that raising it needs no arguments

    def __init__(self, message: str | None = None, *, code: str | None = None):
        message = message or self.default_message
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class PhotoRejected(UserError):
    """One photo cannot be used. Codes are listed in the docstrings of privacy/intake/ingest.py and
    privacy/intake/screening.py."""


class PhotoSetRejected(UserError):
    """The set of photos cannot be used as a whole."""


class ConsentRequired(UserError):
    code = "consent_required"

    def __init__(self, message: str = ("Please confirm the three consent statements before uploading photos. "
                                       "Nothing has been stored.")):
        super().__init__(message)


class SessionGone(UserError):
    code = "session_gone"

    def __init__(self, message: str = "This session's data has been erased. Start a new session to continue."):
        super().__init__(message)


class OwnerKeyRequired(UserError):
    code = "owner_key_required"

    def __init__(self, message: str = ("Your headshots are locked with your private key. Open your private link "
                                       "(or enter your code) on this page to see them.")):
        super().__init__(message)


class Busy(UserError):
    code = "busy"


class Cancelled(UserError):
    code = "cancelled"

    def __init__(self, message: str = "Cancelled. Nothing more was generated."):
        super().__init__(message)


class OutOfMemory(UserError):
    code = "out_of_memory"

    def __init__(self, message: str = ("The GPU ran out of memory for this job; "
                                       "it has been stopped and its memory freed. "
                                       "Try fewer photos or headshots, or try again when the studio is less busy.")):
        super().__init__(message)


class AdapterGone(UserError):
    code = "adapter_gone"

    def __init__(self, message: str = ("Your trained model was erased on schedule, as promised, so more headshots "
                                       "need a new upload of your photos.")):
        super().__init__(message)


class ModelMismatch(UserError):
    code = "model_mismatch"

    def __init__(self, message: str = ("Your trained model was made on a different base model than the one the "
                                       "studio runs now, so it cannot make more headshots. Upload your photos again "
                                       "to train a new one.")):
        super().__init__(message)


class UnknownDownloadSize(UserError):
    code = "unknown_size"


class TeamKeyRefused(UserError):
    code = "team_key_refused"
    default_message = ("This team admin link opens no team: check that it was copied whole. "
                       "If the team was deleted, its data is gone and a new team must be created.")


class OperatorKeyRefused(UserError):
    # One answer whether the key is wrong, replaced, revoked, or none was ever minted: a guesser learns nothing.
    code = "operator_key_refused"
    default_message = ("This operator link opens nothing here: check that it was copied whole. If it was replaced "
                       "or revoked, mint a new one on the server with `python cli.py operator-link`.")


class TeamSettingRejected(UserError):
    code = "team_setting_rejected"


class InviteRefused(UserError):
    """An invite link that cannot be used; each subclass says why in words, and what to do next."""

    code = "invite_refused"


class InviteUnknown(InviteRefused):
    code = "invite_unknown"
    default_message = ("This invite link is not valid: check that it was copied whole, "
                       "or ask your team's admin for a new one.")


class InviteExpired(InviteRefused):
    code = "invite_expired"
    default_message = "This invite link has expired. Ask your team's admin for a new one."


class InviteUsedUp(InviteRefused):
    code = "invite_used_up"
    default_message = ("This invite link has been used as many times as it allows. "
                       "Ask your team's admin for a new one.")


class InviteRevoked(InviteRefused):
    code = "invite_revoked"
    default_message = ("This invite link was withdrawn by your team's admin. "
                       "Ask them for a new one if you should still join.")


class NotInTeam(UserError):
    code = "not_in_team"
    default_message = ("This session has not joined a team, so there is no one to share with. "
                       "Open your team's invite link first.")


class ShareRejected(UserError):
    code = "share_rejected"


class ShareGone(UserError):
    code = "share_gone"
    default_message = ("That shared headshot is no longer with the team: it was withdrawn "
                       "or erased at the end of the team's retention period.")


class OperatorError(StudioError):
    """A problem only the operator can fix (configuration, models, storage)."""


class ModelUnavailable(OperatorError):
    """A base model could not be loaded; the message says what to set."""


class FaceAdapterUnavailable(ModelUnavailable):
    """Instant mode's face adapter could not be loaded (the base model may be fine); the message says what to set."""


class VaultIntegrityError(OperatorError):
    """Ciphertext or a wrapped key failed authentication (tampering, corruption, or a wrong master key)."""
