"""What the studio promises about a person's data, each promise in the package that keeps it.

intake (decode, strip, screen: a photo becomes a `ScreenedPhoto` or a refusal) · store (the vault, its keys and
the database) · records (audit log, signed receipts, the notice) · marks (C2PA credentials and the invisible
watermark) · teams (a team's look, shares, invites and operator keys) · lifecycle (consent, retention, erasure,
export, residue checks) · log_hygiene (what logs may hold). Layered in that order, each importing only those
before it; never imports the ML (`pipeline`, torch), the service (`studio`), the web or gradio.
"""
