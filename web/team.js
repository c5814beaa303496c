// The team parts of the page (web/team_page.py), served after studio.js in the same file: a new invite link
// is built from the page's own address (the server never composes it, so no Host header can point it
// elsewhere, and the key stays in the fragment) and copied; the admin's favourite shares are starred in
// this browser only (localStorage): the studio stores nothing about them. A member's ticked thumbnails are
// copied into the share field the Share button sends.
(() => {
  const inviteLink = (code) => location.origin + location.pathname + '#team_invite=' + code;
  const syncInvite = () => {
    const box = document.querySelector('#hs-team-invite-new[data-invite]');
    const input = document.getElementById('hs-team-invite-link');
    if (box && input && input.dataset.code !== box.dataset.invite) {
      input.value = inviteLink(box.dataset.invite); input.dataset.code = box.dataset.invite;
    }
  };
  const TEAM_FAVS = 'hs-team-favourites';
  const favs = () => { try { return new Set(JSON.parse(localStorage.getItem(TEAM_FAVS) || '[]')); } catch (e) { return new Set(); } };
  const syncFavs = () => {
    const chosen = favs(), shown = [];
    document.querySelectorAll('.hs-team-share[data-share]').forEach((fig) => {
      const on = chosen.has(fig.dataset.share), star = fig.querySelector('[data-hs-team-star]');
      if (on) shown.push(fig.dataset.share);
      if (star && star.getAttribute('aria-pressed') !== String(on)) {
        star.setAttribute('aria-pressed', String(on)); star.textContent = (on ? '★' : '☆') + ' Favourite';
      }
    });
    // "Download favourites": the starred shares shown now (a withdrawn one is no longer among them).
    const zip = document.getElementById('hs-team-fav-zip'), href = zip && zip.dataset.base + shown.join(',');
    if (zip && (zip.hidden !== !shown.length || zip.getAttribute('href') !== href)) {
      zip.hidden = !shown.length; zip.setAttribute('href', href);
    }
  };
  document.addEventListener('click', (event) => {
    if (event.target.closest('[data-hs-copy-invite]')) {
      const input = document.getElementById('hs-team-invite-link');
      const done = () => { const note = document.getElementById('hs-team-invite-copied'); if (note) note.textContent = 'Link copied.'; };
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(input.value).then(done, done);
      else { input.select(); document.execCommand('copy'); done(); }
      return;
    }
    const star = event.target.closest('[data-hs-team-star]');
    if (star) {
      const id = star.closest('[data-share]').dataset.share, chosen = favs();
      if (chosen.has(id)) chosen.delete(id); else chosen.add(id);
      localStorage.setItem(TEAM_FAVS, JSON.stringify([...chosen]));
      syncFavs();
    }
  });
  // The member's share picker: the ticked thumbnails' ids, comma-separated, into the (hidden) share field.
  document.addEventListener('change', (event) => {
    if (!event.target.matches || !event.target.matches('[data-hs-share-pick]')) return;
    const field = document.querySelector('#hs-team-share-pick textarea, #hs-team-share-pick input');
    if (!field) return;
    field.value = [...document.querySelectorAll('[data-hs-share-pick]:checked')].map((box) => box.value).join(',');
    field.dispatchEvent(new Event('input', {bubbles: true}));
  });
  // A deleted team's admin key opens nothing any more: this tab forgets it. So does a member's invite after their
  // own deletion (web.team_handlers.on_session): consenting again must not silently rejoin, spending a use.
  const forgetDeleted = () => {
    if (document.getElementById('hs-team-receipt')) sessionStorage.removeItem('hs-team-admin');
    if (document.querySelector('#hs-team-notice[data-left]')) sessionStorage.removeItem('hs-team-invite');
  };
  // A link opened in a tab already showing the studio changes only the fragment, which reloads nothing: reload,
  // so that the page reads the link's key as on a first visit (to rejoin a team after leaving it, say).
  window.addEventListener('hashchange', () => {
    if (/(?:^#|&)(team_invite|team_admin|operator|key)=/.test(location.hash)) location.reload();
  });
  new MutationObserver(() => { syncInvite(); syncFavs(); forgetDeleted(); }).observe(document.body, {childList: true, subtree: true});
})();
