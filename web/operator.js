// The operator tab (web/operator_page.py), served after studio.js and team.js: a new team's admin link is built
// from the page's own address (the server never composes it, so no Host header can point it elsewhere, and the
// key stays in the fragment) and copied.
(() => {
  const adminLink = (code) => location.origin + location.pathname + '#team_admin=' + code;
  const syncAdmin = () => {
    const box = document.querySelector('#hs-operator-team-new[data-admin]');
    const input = document.getElementById('hs-operator-admin-link');
    if (box && input && input.dataset.code !== box.dataset.admin) {
      input.value = adminLink(box.dataset.admin); input.dataset.code = box.dataset.admin;
    }
  };
  document.addEventListener('click', (event) => {
    if (!event.target.closest('[data-hs-copy-admin]')) return;
    const input = document.getElementById('hs-operator-admin-link');
    const done = () => {
      const note = document.getElementById('hs-operator-copied'); if (note) note.textContent = 'Link copied.';
    };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(input.value).then(done, done);
    else { input.select(); document.execCommand('copy'); done(); }
  });
  // A refused operator key (wrong, replaced or revoked) is forgotten by this tab.
  const forgetRefused = () => {
    if (document.querySelector('#hs-operator .hs-no')) sessionStorage.removeItem('hs-operator');
  };
  new MutationObserver(() => { syncAdmin(); forgetRefused(); })
    .observe(document.body, {childList: true, subtree: true});
})();
