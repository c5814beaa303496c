
// --- Favourites kept with the session (web/visitor/favourites.py) -----------------------------------------------
// A star changes the gallery at once (studio.js, which then says 'hs-favourites-changed'); this sends the whole
// starred set to the studio through the page's own hidden field and button, a guarded event like every other
// (the studio keeps only ids of this session's headshots, sealed with them). The gallery is drawn with the
// session's stars, so this browser keeps no copy: what an earlier version of the page kept here is forgotten.
(() => {
  try { localStorage.removeItem('hs-favourites'); } catch (e) { /* storage refused: nothing is kept there either */ }
  document.addEventListener('hs-favourites-changed', () => {
    const ids = [...document.querySelectorAll('#hs-gallery .hs-shot[data-shot]')]
      .filter((fig) => fig.querySelector('[data-hs-star]')?.getAttribute('aria-pressed') === 'true')
      .map((fig) => fig.dataset.shot);
    const field = document.querySelector('#hs-fav-ids textarea, #hs-fav-ids input');
    const save = document.getElementById('hs-fav-save');
    if (!field || !save) return;
    field.value = ids.join(',');
    field.dispatchEvent(new Event('input', {bubbles: true}));
    save.click();
  });
})();
// --- end of favourites kept with the session ----------------------------------------------------------------------
