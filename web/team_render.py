"""The team pages' HTML fragments (issue 16): plain functions from results to markup, everything escaped.

The member's side: the team notice (who receives what they share, for how long, what the team never
receives, the locked look) and the list of their shares. The admin's side: the team header, the look,
invites (a new link is shown once, built in the browser from the page's own address, as the return
key's is), the shares per member behind `/media/<token>` grants, and the deletion receipt.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from privacy.teams.team_look import OUTFITS
from web.render import _esc, _readable_utc, counted


def _date(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t))


def _days(n: int) -> str:
    return counted(int(n), "day")


def look_in_words(look: Any, style_names: dict[str, str]) -> str:
    outfits = ", ".join(OUTFITS[o] for o in look.outfits)
    return (f"{_esc(style_names.get(look.style_id, look.style_id))}, background <code>{_esc(look.background)}</code>, "
            f"{_esc(outfits)}, {look.size}×{look.size} px")


def render_invite_pending(peek: Any) -> str:
    """Before consent: the team a valid invite would join, what it would receive and for how long, and what it never
    receives. Nothing is joined yet, no use of the link is spent, and nothing was sent to anyone."""
    team = _esc(peek.team_name)
    return (f"<div id='hs-team-notice' role='status' data-invited='{team}'><p><strong>You were invited to join "
            f"{team}.</strong> Once you tick the three statements below, this session joins it (one use of the "
            "invite link). Joining sends the team nothing: you choose later, headshot by headshot, what to share "
            f"with it.</p>{_what_the_team_would_get(team, peek.retention_days)}</div>")


def render_invite_to_join(peek: Any) -> str:
    """A session reopened in a tab that then read an invite: what joining means, asked before anything is joined.

    Its consent was given without this notice in view, so joining is a click of its own ("Join the team")."""
    team = _esc(peek.team_name)
    return (f"<div id='hs-team-notice' role='status' data-invited='{team}' data-ask='true'><p><strong>Join {team} "
            f"with this session?</strong> You opened an invite link in a session that was already yours. Nothing is "
            f"joined until you choose <em>Join {team}</em> below (one use of the invite link). Joining sends the "
            "team nothing, and the headshots you already have stay yours: you choose, headshot by headshot, what "
            f"to share, and the team's look applies to the runs you start after joining.</p>"
            f"{_what_the_team_would_get(team, peek.retention_days)}</div>")


def _what_the_team_would_get(team: str, retention_days: int) -> str:
    """The one recipient, for how long, and what it never receives: said alike before consent and before a join."""
    return (f"<p>{team}'s admin would be the one recipient of each headshot you choose to share, with the name you "
            f"type beside it, kept for {_days(retention_days)} after you share it unless you withdraw it first. {team} "
            "never receives your photos, your trained model, your photo check, or any headshot you do not share.</p>")


def render_team_left(team_name: str) -> str:
    """After a member's own "Delete everything now": out of the team, and the page forgot the invite link."""
    team = _esc(team_name)
    return (f"<div id='hs-team-notice' role='status' data-left='{team}'><p><strong>You are no longer in {team}."
            f"</strong> Your data was erased and everything you shared with {team} withdrawn. This page has forgotten "
            f"the invite link, so a new session here does not join {team}. To rejoin, open the invite link again: "
            "that uses one of its uses.</p></div>")


def render_invite_refused(message: str) -> str:
    return f"<div id='hs-team-notice' role='status'><p class='hs-no'>{_esc(message)}</p></div>"


def render_team_notice(membership: Any, style_names: dict[str, str]) -> str:
    """A member's notice: the team is the one recipient of what they share, for how long, and what it never gets."""
    team, look = _esc(membership.team_name), membership.look
    return ("<div id='hs-team-notice' role='status' data-team='" + team + "'>"
            f"<p><strong>You are making headshots as a member of {team}.</strong> {team}'s admin is the one "
            "recipient of whatever you choose to share, and of nothing else: each headshot you share, with the name "
            f"you type beside it, is kept for {_days(look.retention_days)} after you share it, unless you withdraw "
            "it first (which erases the team's copy at once) or the team is deleted.</p>"
            f"<p>{team} never receives your photos, your trained model, your photo check, or any headshot you do "
            "not share. Deleting your data below also withdraws everything you shared.</p>"
            f"<p>Your headshots use {team}'s look: {look_in_words(look, style_names)}. A change of look by the "
            "admin applies to your next run.</p></div>")


def render_my_shares(shares: list, team_name: str, style_names: dict[str, str]) -> str:
    if not shares:
        return f"<p id='hs-my-shares' role='status'>You have shared nothing with {_esc(team_name)}.</p>"
    items = "".join(f"<li data-share='{_esc(s.share_id)}'>Share {i}: {_esc(style_names.get(s.style_id, s.style_id))}, "
                    f"shared {_date(s.shared_at)}; the team's copy is erased on {_date(s.expires_at)}</li>"
                    for i, s in enumerate(shares, start=1))
    return (f"<div id='hs-my-shares'><p role='status'>{counted(len(shares), 'headshot')} shared with "
            f"{_esc(team_name)}:</p><ul>{items}</ul></div>")


def share_choices(shots: list, style_names: dict[str, str]) -> list[tuple[str, str]]:
    """The gallery's headshots as choices to share, numbered as the gallery numbers them."""
    return [(f"Headshot {i}, {style_names.get(shot.style_id, shot.style_id)}", shot.blob_id)
            for i, shot in enumerate(shots, start=1)]


def render_share_picker(shots: list, tokens: list[str], style_names: dict[str, str]) -> str:
    """The gallery's headshots as thumbnails to tick for sharing, numbered and named as the gallery names them.

    Each is a native checkbox in its label (the whole thumbnail is the target, keyboard included); team.js copies
    the ticked ids into the share field the Share button sends, and the studio checks each id as before.
    """
    if not shots:
        return ("<p id='hs-team-share-thumbs' data-count='0'>Your headshots appear here to pick from once they "
                "are made.</p>")
    items = "".join(
        f"<li><label class='hs-share-thumb'><input type='checkbox' data-hs-share-pick value='{_esc(blob_id)}'>"
        f"<img src='media/{_esc(token)}' alt='' loading='lazy'><span>{_esc(label)}</span></label></li>"
        for (label, blob_id), token in zip(share_choices(shots, style_names), tokens))
    return (f"<fieldset id='hs-team-share-thumbs' data-count='{len(shots)}'><legend>Headshots to share</legend>"
            f"<ul>{items}</ul></fieldset>")


def withdraw_choices(shares: list, style_names: dict[str, str]) -> list[tuple[str, str]]:
    return [(f"Share {i}: {style_names.get(s.style_id, s.style_id)}, shared {_date(s.shared_at)}", s.share_id)
            for i, s in enumerate(shares, start=1)]


# --- the admin ---------------------------------------------------------------------------------------------
def render_admin_header(name: str, members: int, look: Any, style_names: dict[str, str]) -> str:
    return (f"<div id='hs-team-admin' data-team='{_esc(name)}'><h2>{_esc(name)}: team admin</h2>"
            f"<p>{counted(members, 'member')}. The current look (version {look.version}): "
            f"{look_in_words(look, style_names)}; shared headshots are kept {_days(look.retention_days)}.</p>"
            "<p>You see only the headshots members chose to share, with the name they typed. Never their photos, "
            "their photo checks, their models or any other headshot: the studio holds none of those for a team.</p>"
            "</div>")


def render_admin_refused(message: str) -> str:
    return f"<div id='hs-team-admin'><p class='hs-no' role='status'>{_esc(message)}</p></div>"


def render_new_invite(code: str, label: str, expires_at: float, max_uses: int) -> str:
    """A new invite link, shown this once: the page builds it from its own address (team.js), as the return key's."""
    return (f"<div id='hs-team-invite-new' data-invite='{_esc(code)}'><p role='status'><strong>Invite “{_esc(label)}” "
            f"made:</strong> up to {counted(max_uses, 'use')}, until {_date(expires_at)}. Copy the link now: the "
            "studio keeps no copy of it, so it is shown only this once.</p>"
            "<p><input id='hs-team-invite-link' readonly aria-label='The new invite link' value=''> "
            "<button type='button' class='hs-button' data-hs-copy-invite>Copy link</button> "
            "<span id='hs-team-invite-copied' role='status'></span></p></div>")


def render_invites(invites: list, now: float) -> str:
    if not invites:
        return "<p id='hs-team-invites' role='status'>No invite links yet.</p>"
    rows = "".join(f"<tr data-invite-id='{_esc(i.invite_id)}'><td>{_esc(i.label)}</td><td>{_esc(i.status(now))}</td>"
                   f"<td>{i.uses} of {i.max_uses}</td><td>{_date(i.expires_at)}</td></tr>" for i in invites)
    return ("<table id='hs-team-invites'><caption>Invite links</caption><thead><tr><th scope='col'>Label</th>"
            "<th scope='col'>State</th><th scope='col'>Used</th><th scope='col'>Expires</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def invite_choices(invites: list, now: float) -> list[tuple[str, str]]:
    return [(f"{i.label} ({i.status(now)})", i.invite_id) for i in invites if i.status(now) == "open"]


def render_admin_shares(grouped: dict[str, list], tokens: dict[str, str], zip_token: str | None,
                        csv_token: str | None, style_names: dict[str, str]) -> str:
    """The shares per member (name, style, date), each image behind a media grant; stars kept in this browser."""
    total = sum(len(shares) for shares in grouped.values())
    links = ""
    if zip_token and csv_token:
        links = (f"<p class='hs-downloads'><a id='hs-team-zip' class='hs-button' href='media/{zip_token}' "
                 "download='team-headshots.zip'>Download all (ZIP)</a> "
                 # Shown by team.js once a share is starred, with the starred ids in its query.
                 f"<a id='hs-team-fav-zip' class='hs-button' hidden data-base='media/{zip_token}?ids=' "
                 f"href='media/{zip_token}?ids=' download='team-favourites.zip'>Download favourites (ZIP)</a> "
                 f"<a id='hs-team-csv' class='hs-button' href='media/{csv_token}' download='team-headshots.csv'>"
                 "Download the list (CSV)</a></p>")
    if not total:
        return (f"<div id='hs-team-shares' data-count='0'><p role='status'>No member has shared a headshot yet."
                f"</p>{links}</div>")
    members = []
    for shares in grouped.values():
        name = _esc(shares[0].name)
        figures = "".join(
            f"<figure class='hs-shot hs-team-share' data-share='{_esc(s.share_id)}'>"
            f"<img src='media/{tokens[s.share_id]}' alt='{name}, {_esc(style_names.get(s.style_id, s.style_id))}' "
            "loading='lazy' width='160' height='160'>"
            f"<figcaption><span class='hs-meta'>{_esc(style_names.get(s.style_id, s.style_id))} · shared "
            f"{_date(s.shared_at)}</span><button type='button' class='hs-star' data-hs-team-star aria-pressed='false' "
            f"aria-label='Favourite: {name}, shared {_date(s.shared_at)}'>☆ Favourite</button></figcaption></figure>"
            for s in shares)
        members.append(f"<section class='hs-team-member'><h3>{name}</h3><div class='hs-grid'>{figures}</div></section>")
    return (f"<div id='hs-team-shares' data-count='{total}'><p role='status'>{counted(total, 'shared headshot')} from "
            f"{counted(len(grouped), 'member')}. Favourites are remembered in this browser only.</p>{links}"
            f"{''.join(members)}</div>")


def render_team_receipt(receipt: Any) -> str:
    """The team's erasure in one sentence, and the signed receipt to download and check."""
    data = receipt.to_json()
    payload = receipt.payload
    team = payload.get("categories", {}).get("team", {})
    count = lambda kind: team.get(kind, {}).get("count", 0)  # noqa: E731
    href = "data:application/json;base64," + base64.b64encode(data).decode()
    return ("<div id='hs-team-receipt'><p role='status'><strong>The team is deleted.</strong> Erased at "
            f"{_esc(_readable_utc(str(payload.get('erased_at', ''))))}: "
            f"{counted(count('shared_headshot'), 'shared headshot')}, "
            f"{counted(count('invites'), 'invite link')} and {counted(count('memberships'), 'membership')}; the team's "
            "key is destroyed, so no copy of a share can be opened again.</p>"
            f"<p><a id='hs-team-receipt-download' class='hs-button' href='{href}' "
            "download='team-deletion-receipt.json'>"
            "Download the receipt</a></p><details id='hs-team-receipt-details'><summary>Receipt details</summary>"
            "<p>Check it with the studio's public key (<a href='receipt-key.pem' download='receipt-key.pem'>"
            "receipt-key.pem</a>): <code>python cli.py verify-receipt team-deletion-receipt.json --public-key "
            f"receipt-key.pem</code>.</p><pre tabindex='0'>{_esc(data.decode())}</pre></details></div>")
