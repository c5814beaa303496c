// The page's own script, served as a file (/studio.js) so that the Content-Security-Policy needs no
// 'unsafe-inline'. It counts the erasure times down in the browser (no server tick needed), keeps the
// return key in this tab's sessionStorage (so a reload restores the session), builds the private link
// from the page's own address, offers copy / save, and warns before leaving with an unsaved key
// while a job runs or headshots exist.
// A click's request that the studio's request limit refuses (429: the browser or its network asked a lot in a
// short time) is sent again once the server's Retry-After has passed, a few times, instead of being lost:
// Gradio's own client gives up on the first refusal and the click would seem to do nothing. Only a queue join
// (its JSON body can be sent twice; a refused one reached nothing) and the opening of its event stream are.
(() => {
  const send = window.fetch.bind(window), TRIES = 5, MOST_SECONDS = 15;
  const retried = (input, init) => {
    const method = (init?.method || input?.method || 'GET').toUpperCase();
    const url = typeof input === 'string' ? input : input?.url || '';
    return (method === 'POST' && /\/gradio_api\/queue\/join(\?|$)/.test(url)) ||
      (method === 'GET' && /\/gradio_api\/queue\/data(\?|$)/.test(url));
  };
  window.fetch = async (input, init) => {
    if (!retried(input, init)) return send(input, init);
    for (let attempt = 1; ; attempt++) {
      const answer = await send(input, init);
      if (answer.status !== 429 || attempt >= TRIES) return answer;
      const seconds = Math.min(MOST_SECONDS, Number(answer.headers.get('Retry-After')) || 1);
      await new Promise((resume) => setTimeout(resume, seconds * 1000 * (1 + Math.random() / 4)));  // spread out
    }
  };
})();

(() => {
  const KEY = 'hs-return-key', SAVED = 'hs-return-key-saved';
  const link = (code) => location.origin + location.pathname + '#key=' + code;
  const panel = () => document.querySelector('#hs-returnkey[data-code]');
  const markSaved = (how) => {
    sessionStorage.setItem(SAVED, '1');
    const p = panel(); if (p) p.dataset.saved = 'true';
    const note = document.getElementById('hs-key-saved'); if (note) note.textContent = how;
  };
  const syncPanel = () => {
    const p = panel(); if (!p) return;
    sessionStorage.setItem(KEY, p.dataset.code);
    const input = document.getElementById('hs-key-link');
    if (input && !input.value) input.value = link(p.dataset.code);
    if (sessionStorage.getItem(SAVED)) p.dataset.saved = 'true';
  };
  document.addEventListener('click', (event) => {
    const p = panel(); if (!p) return;
    if (event.target.closest('[data-hs-copy]')) {
      const text = link(p.dataset.code);
      const done = () => markSaved('Link copied. Keep it somewhere safe.');
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, done);
      else { const input = document.getElementById('hs-key-link'); input.select(); document.execCommand('copy'); done(); }
    } else if (event.target.closest('[data-hs-save]')) {
      const text = ['Headshot Studio: your private key', '', 'Link: ' + link(p.dataset.code), 'Code: ' + p.dataset.code, '',
        'Open the link (or enter the code on the studio page) to come back to your headshots.',
        'Nobody, including the studio, can recover this key. Without it your data is erased on schedule.', ''].join(String.fromCharCode(10));
      const a = document.createElement('a');
      a.href = URL.createObjectURL(new Blob([text], {type: 'text/plain'}));
      a.download = 'headshot-studio-private-key.txt';
      document.body.appendChild(a); a.click(); a.remove();
      markSaved('Saved as a file.');
    }
  });
  // Something to lose: a job in line or running (its status shows a place in line or a percentage),
  // or headshots in the gallery. Only then, and only while the key is unsaved, does leaving warn.
  const somethingToLose = () => Boolean(document.querySelector('#hs-gallery .hs-shot')) ||
    /Waiting for the GPU|In line|· \d+%/.test(document.querySelector('#hs-status textarea')?.value || '');
  // Instant headshots that are kept nowhere ("don't keep anything") exist only in this page: leaving loses them,
  // whatever the key, so leaving always warns while they are shown.
  const unstoredShown = () => Boolean(document.querySelector('#hs-unstored .hs-shot'));
  window.addEventListener('beforeunload', (event) => {
    const p = panel();
    if (unstoredShown() || (p && p.dataset.saved !== 'true' && somethingToLose())) {
      event.preventDefault(); event.returnValue = '';
    }
  });
  // After the person adds, removes or replaces a photo, the photo check that answers it takes the focus and
  // comes into view (it replaces the upload's own progress, which would otherwise leave focus at the top).
  let photoActionAt = 0, lastCheck = null;
  ['change', 'drop', 'click'].forEach((type) => document.addEventListener(type, (event) => {
    if (event.target.closest && event.target.closest('#hs-photo-area')) photoActionAt = Date.now();
  }, true));
  new MutationObserver(() => {
    const check = document.querySelector('#hs-screening');
    if (!check || check === lastCheck) return;
    lastCheck = check;
    if (Date.now() - photoActionAt > 120000) return;
    photoActionAt = 0;
    const summary = check.querySelector('[role=status]');
    if (summary) { summary.focus({preventScroll: true}); summary.scrollIntoView({block: 'center'}); }
  }).observe(document.body, {childList: true, subtree: true});
  // The gallery: enlarge in a dialog (Escape or the button closes it, focus returns to the picture), and
  // favourites: the gallery is drawn with the session's stars, a star saves to the session (the block
  // "favourites kept with the session" below), and "Download favourites" asks the studio for just those.
  const syncFavs = () => {
    const shown = [...document.querySelectorAll('#hs-gallery .hs-shot[data-shot]')]
      .filter((fig) => fig.querySelector('[data-hs-star]')?.getAttribute('aria-pressed') === 'true')
      .map((fig) => fig.dataset.shot);
    const zip = document.getElementById('hs-fav-zip');
    if (zip) { zip.hidden = !shown.length; zip.href = zip.dataset.base + shown.join(','); }
  };
  // The enlarged view is where a person chooses: previous / next (buttons or arrow keys), favourite and download
  // inside it, the picture's place in the gallery said in words.
  let dialog = null, opener = null, current = null;
  const figuresBeside = (fig) => [...fig.closest('.hs-grid').querySelectorAll('figure.hs-shot')];
  const show = (fig) => {
    current = fig;
    const img = fig.querySelector('img'), big = dialog.querySelector('img'), all = figuresBeside(fig);
    big.src = img.src; big.alt = img.alt;
    dialog.querySelector('[data-hs-where]').textContent = `${all.indexOf(fig) + 1} of ${all.length}`;
    const star = fig.querySelector('[data-hs-star]'), lbStar = dialog.querySelector('[data-hs-lb-star]');
    lbStar.hidden = !star;
    if (star) { lbStar.setAttribute('aria-pressed', star.getAttribute('aria-pressed')); lbStar.textContent = star.textContent; }
    const links = fig.querySelectorAll('.hs-sizes a, .hs-actions a[download]'), get = dialog.querySelector('[data-hs-lb-download]');
    const best = links[links.length - 1];  // the largest size (the last one named), or the only link
    get.hidden = !best;
    if (best) { get.setAttribute('href', best.getAttribute('href')); get.setAttribute('download', best.getAttribute('download') || ''); }
    dialog.querySelector('.hs-download-note')?.remove();
  };
  const step = (by) => {
    if (!current) return;
    const all = figuresBeside(current), i = all.indexOf(current);
    show(all[(i + by + all.length) % all.length]);
  };
  const enlarge = (img) => {
    if (!dialog) {
      dialog = document.createElement('dialog'); dialog.id = 'hs-lightbox';
      dialog.setAttribute('aria-label', 'Enlarged headshot');
      dialog.innerHTML = '<img alt=""><p class="hs-lightbox-bar">' +
        '<button type="button" class="hs-button" data-hs-prev aria-label="Previous headshot">‹ Previous</button>' +
        '<span data-hs-where role="status"></span>' +
        '<button type="button" class="hs-button" data-hs-next aria-label="Next headshot">Next ›</button>' +
        '<button type="button" class="hs-star" data-hs-lb-star aria-pressed="false">☆ Favourite</button>' +
        '<a class="hs-button" data-hs-lb-download download>Download full size</a>' +
        '<button type="button" class="hs-button" data-hs-close>Close</button></p>';
      dialog.addEventListener('close', () => { if (opener) opener.focus(); });
      dialog.addEventListener('keydown', (event) => {
        if (event.key === 'ArrowLeft') { event.preventDefault(); step(-1); }
        if (event.key === 'ArrowRight') { event.preventDefault(); step(1); }
      });
      document.body.appendChild(dialog);
    }
    opener = img.closest('button');
    show(img.closest('figure.hs-shot'));
    dialog.showModal(); dialog.querySelector('[data-hs-close]').focus();
  };
  document.addEventListener('click', (event) => {
    const open = event.target.closest('[data-hs-enlarge]');
    if (open) { enlarge(open.querySelector('img')); return; }
    if (event.target.closest('[data-hs-close]')) { dialog.close(); return; }
    if (dialog && event.target === dialog) { dialog.close(); return; }  // a click on the backdrop
    if (event.target.closest('[data-hs-prev]')) { step(-1); return; }
    if (event.target.closest('[data-hs-next]')) { step(1); return; }
    if (event.target.closest('[data-hs-lb-star]')) { current?.querySelector('[data-hs-star]')?.click(); show(current); return; }
    const more = event.target.closest('[data-hs-more]');
    if (more) { document.querySelector('#hs-more')?.click(); return; }
    const star = event.target.closest('[data-hs-star]');
    if (star) {
      const on = star.getAttribute('aria-pressed') !== 'true';
      star.setAttribute('aria-pressed', String(on)); star.textContent = (on ? '★' : '☆') + ' Favourite';
      syncFavs();
      document.dispatchEvent(new CustomEvent('hs-favourites-changed'));
    }
  });
  // "Download favourites" follows the gallery's stars as soon as it is drawn (a new run re-renders it).
  new MutationObserver(syncFavs).observe(document.body, {childList: true, subtree: true});
  // Gradio's own markup, made to pass axe-core: a labelled placeholder div needs a role, and the upload
  // area's accessible name must include its visible words ("Drop File Here - or - Click to Upload").
  const fixGradioMarkup = () => {
    document.querySelectorAll('div.empty[aria-label]:not([role])').forEach((el) => el.setAttribute('role', 'img'));
    document.querySelectorAll('.upload-container[aria-label]').forEach((el) => el.removeAttribute('aria-label'));
  };
  new MutationObserver(fixGradioMarkup).observe(document.body, {childList: true, subtree: true});
  fixGradioMarkup();
  // The key is kept the moment its panel appears: a reload (or a link opened in this tab) right after consent
  // must find it, or the session is lost to this tab. The interval also fills the link field once it exists.
  new MutationObserver(syncPanel).observe(document.body, {childList: true, subtree: true});
  setInterval(syncPanel, 500);
  const fmt = (s) => { s = Math.max(0, Math.floor(s)); const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600),
    m = Math.floor(s % 3600 / 60), r = s % 60;
    return d ? `${d} d ${h} h ${m} min` : h ? `${h} h ${m} min` : `${m} min ${String(r).padStart(2, '0')} s`; };
  const tick = () => document.querySelectorAll('[data-seconds-left]').forEach((el) => {
    if (!el.dataset.deadline) el.dataset.deadline = Date.now() / 1000 + Number(el.dataset.secondsLeft);
    const left = Number(el.dataset.deadline) - Date.now() / 1000;
    el.textContent = left > 0 ? fmt(left) : 'now (erasing)';
  });
  setInterval(tick, 1000);
})();

// Downloads (a headshot in a size, a ZIP, the data export) go through fetch, not a plain <a download>: a size
// the studio is busy making answers 429 with Retry-After, and a plain link would save that text as the
// headshot. Here a 429 is asked again after its Retry-After (a few times), and only a successful answer of a
// file type is saved; anything else leaves a sentence beside the link and saves nothing.
(() => {
  const TRIES = 5, MOST_SECONDS = 15;
  const FILE_TYPES = /^(image\/|text\/csv|application\/(zip|octet-stream|json))/;
  const say = (link, text) => {
    let note = link.parentElement.querySelector('.hs-download-note');
    if (!note) {
      note = document.createElement('span'); note.className = 'hs-download-note'; note.setAttribute('role', 'status');
      link.after(note);
    }
    note.textContent = text;
  };
  const nameOf = (link, answer) => {
    const given = link.getAttribute('download');
    if (given) return given;
    const header = answer.headers.get('Content-Disposition') || '';
    const found = header.match(/filename="([^"]+)"/);
    return found ? found[1] : 'headshot';
  };
  const fetchFile = async (href) => {
    for (let attempt = 1; ; attempt++) {
      const answer = await fetch(href, {credentials: 'same-origin'});
      if (answer.status !== 429 || attempt >= TRIES) return answer;
      const seconds = Math.min(MOST_SECONDS, Number(answer.headers.get('Retry-After')) || 1);
      await new Promise((resume) => setTimeout(resume, seconds * 1000 * (1 + Math.random() / 4)));
    }
  };
  document.addEventListener('click', async (event) => {
    const link = event.target.closest && event.target.closest('a[download][href^="media/"]');
    if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    if (link.getAttribute('aria-busy') === 'true') return;  // one download per link at a time
    link.setAttribute('aria-busy', 'true');
    say(link, 'Preparing your download…');
    try {
      const answer = await fetchFile(link.href);
      const type = answer.headers.get('Content-Type') || '';
      if (!answer.ok || !FILE_TYPES.test(type)) {
        say(link, answer.status === 429 ? 'The studio is busy making other downloads. Please try again in a minute.'
          : answer.status === 404 || answer.status === 403 ? 'This download has expired. Please reload the page.'
            : 'This download did not work. Please try again.');
        return;
      }
      const url = URL.createObjectURL(await answer.blob());
      const a = document.createElement('a');
      a.href = url; a.download = nameOf(link, answer);
      document.body.appendChild(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      say(link, 'Downloaded.');
    } catch (error) {
      say(link, 'This download did not work (the connection dropped). Please try again.');
    } finally {
      link.removeAttribute('aria-busy');
    }
  });
})();

// A wait a person can leave: when a run they followed ends with headshots, the tab's title says so and, if they
// allowed it when pressing Make, the browser shows a notification. Both come from this page alone: nothing is
// sent anywhere (no push service; the Notification is local to the browser).
(() => {
  // The page's own title is read when it is replaced, not when this script runs: Gradio may set it later, and a
  // title read too early ('') would be "restored" over the real one on the next focus.
  const READY = '✓ Your headshots are ready — Headshot Studio';
  let running = false, ownTitle = null;
  const statusText = () => document.querySelector('#hs-status textarea')?.value || '';
  const shots = () => document.querySelectorAll('#hs-gallery .hs-shot, #hs-unstored .hs-shot').length;
  document.addEventListener('click', (event) => {
    if (!event.target.closest || !event.target.closest('#hs-make, #hs-make-instant, #hs-more')) return;
    // Pressed in the phone's sticky bar, Make would leave the person where they were: the run's status (and the
    // gallery right under it) comes into view instead.
    setTimeout(() => document.querySelector('#hs-status')?.scrollIntoView({block: 'center'}), 0);
    if ('Notification' in window && Notification.permission === 'default') Notification.requestPermission();
  }, true);
  const check = () => {
    const now = /Waiting for the GPU|In line|· \d+%/.test(statusText());
    if (running && !now && shots()) {
      if (document.hidden || !document.hasFocus()) {
        if (document.title !== READY) ownTitle = document.title;
        document.title = READY;
        if ('Notification' in window && Notification.permission === 'granted') {
          new Notification('Your headshots are ready', {body: 'Come back to the studio to pick your favourites.'});
        }
      }
      document.body.dataset.hsReady = 'true';
    }
    running = now;
  };
  setInterval(check, 1000);
  const back = () => {
    if (!document.hidden && ownTitle !== null && document.title === READY) { document.title = ownTitle; ownTitle = null; }
  };
  document.addEventListener('visibilitychange', back);
  window.addEventListener('focus', back);
})();

// Styles are chosen on their cards (web.style_cards): each card checkbox sets the form's own, hidden, checkbox of
// the same style reference (Gradio's `name`), and follows it when the studio sets it (Resume). A tap on the
// drawing picks the style's standard look. The line under the slider counts what Make will give.
(() => {
  const formBox = (ref) => [...document.querySelectorAll('#hs-styles input[type=checkbox]')].find((b) => b.name === ref);
  const count = () => {
    const line = document.getElementById('hs-will-get'); if (!line) return;
    const chosen = [...document.querySelectorAll('#hs-styles input[type=checkbox]')].filter((b) => b.checked).length;
    const each = Number(document.querySelector('#hs-count input[type=number]')?.value || 1);
    const text = chosen ? `You will get ${chosen * each} headshot${chosen * each === 1 ? '' : 's'}: ` +
      `${chosen} style${chosen === 1 ? '' : 's'} × ${each} each.` : 'Pick at least one style.';
    if (line.textContent !== text) line.textContent = text;
  };
  // --- outfits (web.style_cards `_outfit_pick`): one per card; a pick sends "<ref>@<outfit>" when one is chosen.
  const outfitOf = (pick) => pick.closest('.hs-card')?.querySelector('.hs-outfit-pick')?.value || '';
  const wanted = (pick) => pick.dataset.hsChoice + (outfitOf(pick) ? '@' + outfitOf(pick) : '');
  // The form's boxes of one pick, in any outfit: "<ref>" and every "<ref>@<outfit>".
  const boxesOf = (pick) => [...document.querySelectorAll('#hs-styles input[type=checkbox]')]
    .filter((b) => b.name === pick.dataset.hsChoice || b.name.startsWith(pick.dataset.hsChoice + '@'));
  const follow = () => {
    document.querySelectorAll('[data-hs-choice]').forEach((pick) => {
      const on = boxesOf(pick).find((b) => b.checked);
      if (pick.checked !== Boolean(on)) pick.checked = Boolean(on);
      const select = pick.closest('.hs-card')?.querySelector('.hs-outfit-pick');
      const outfit = on && on.name.includes('@') ? on.name.split('@')[1] : '';
      if (on && select && select.value !== outfit) select.value = outfit;  // set by the studio (Resume)
    });
    count();
  };
  const send = (pick) => {  // the form holds this pick in the card's outfit, and in no other
    boxesOf(pick).forEach((b) => { if (b.checked && (!pick.checked || b.name !== wanted(pick))) b.click(); });
    const box = formBox(wanted(pick));
    if (box && pick.checked && !box.checked) box.click();
  };
  document.addEventListener('change', (event) => {
    const select = event.target.closest && event.target.closest('#hs-style-cards .hs-outfit-pick');
    if (select) select.closest('.hs-card').querySelectorAll('[data-hs-choice]').forEach(send);
    const pick = event.target.closest && event.target.closest('[data-hs-choice]');
    if (pick) send(pick);
    if (select || pick) count();
  });
  // --- end of outfits
  document.addEventListener('click', (event) => {
    const art = event.target.closest && event.target.closest('#hs-style-cards .hs-card-figure');
    if (art) art.closest('.hs-card').querySelector('[data-hs-choice]')?.click();
  });
  document.addEventListener('input', (event) => { if (event.target.closest && event.target.closest('#hs-count')) count(); });
  setInterval(follow, 400);
})();

// The photo set edited in place: × on a thumbnail removes that photo, "Remove all unused" each refused one, in
// turn. Both go through the page's own "Change one photo" and "Remove this photo" (the same guarded event), so
// the studio checks each request as it checks a click there.
(() => {
  const until = (found, ms = 30000) => new Promise((resolve, reject) => {
    const started = Date.now();
    const look = () => { const got = found(); if (got) resolve(got); else if (Date.now() - started > ms) reject(new Error('timeout')); else setTimeout(look, 100); };
    look();
  });
  const press = (el) => ['mousedown', 'mouseup', 'click'].forEach((type) => el.dispatchEvent(new MouseEvent(type, {bubbles: true})));
  const removeAt = async (index, unusedOnly = false) => {
    const photos = () => document.querySelectorAll('#hs-screening li.hs-photo').length, before = photos();
    const input = document.querySelector('#hs-photo-pick input');
    input.blur();  // a dropdown still focused from the last removal opens only on a fresh focus
    await new Promise((resume) => setTimeout(resume, 100));
    input.focus(); press(input);
    const option = await until(() => [...document.querySelectorAll('[role=option]')]
      .find((o) => new RegExp(`(^|\\s)Photo ${index} ·`).test(o.textContent)));  // after Gradio's ✓ mark
    // The dropdown names each photo with its verdict: "Remove all unused" never takes an accepted one.
    if (unusedOnly && !/not used/.test(option.textContent)) throw new Error('not an unused photo');
    press(option);
    const button = await until(() => { const b = document.querySelector('#hs-photo-remove'); return b && !b.disabled && b; });
    button.click();
    // Done when the answer is in: one photo fewer, and nothing of the page still pending.
    await until(() => photos() === before - 1 && !document.querySelector('.pending'), 60000);
    await new Promise((resume) => setTimeout(resume, 300));
  };
  // Clicks wait their turn rather than being dropped: a × pressed while "Remove all unused" finishes still counts.
  let queue = Promise.resolve();
  document.addEventListener('click', (event) => {
    const one = event.target.closest && event.target.closest('[data-hs-remove-photo]');
    const unused = event.target.closest && event.target.closest('[data-hs-remove-unused]');
    if (!one && !unused) return;
    const photoId = one ? one.closest('li.hs-photo')?.dataset.photoId : null;
    queue = queue.then(async () => {
      if (one) {
        // The set may have been numbered again since the click: the same photo (its id), by its number now;
        // a photo already gone is not looked for again, and no other photo is taken in its place.
        const same = [...document.querySelectorAll('#hs-screening li.hs-photo')]
          .find((li) => photoId && li.dataset.photoId === photoId);
        if (same) await removeAt(same.querySelector('[data-hs-remove-photo]').dataset.hsRemovePhoto);
      } else {
        for (let left = 50; left > 0; left--) {  // one at a time: each answer numbers the set again
          const refused = document.querySelector('#hs-screening li.hs-photo[data-accepted=false] [data-hs-remove-photo]');
          if (!refused) break;
          await removeAt(refused.dataset.hsRemovePhoto, true);
        }
      }
    }).catch(() => { /* the page's own controls stay there to use */ });
  });
})();

// --- photowords: each photo's verdict names its own file -----------------------------------------------------
// The studio never learns a file's name (its boundary drops it before Gradio): the page fills each verdict's
// empty slot (web.render._photo_name) from what this browser chose, as text, never markup, cut to one short line.
// Studio photos by their id: the files chosen for the set (or a replacement) name the ids the answer adds, in
// order; Instant photos by position, from Instant's own file list. The names live in this page's memory only.
(() => {
  const MAX = 40;  // as a phone's line beside an 80 px thumbnail allows
  const shownName = (raw) => {
    let name = String(raw || '').slice(0, 4096).split(/[\\/]/).pop();
    name = name.replace(/[\p{C}]/gu, '').replace(/\s+/g, ' ').trim();  // controls, bidi overrides, zero-width
    if (name.length <= MAX) return name;
    const dot = name.lastIndexOf('.'), ext = dot > 0 && name.length - dot <= 6 ? name.slice(dot) : '';
    return name.slice(0, MAX - 1 - ext.length).trimEnd() + '…' + ext;
  };
  window.hsShownName = shownName;  // for the page's tests
  const studioNames = new Map();  // photo id -> name
  let chosen = null;  // {names, appended}: the files just chosen for the Studio set, until its answer adds them
  let instantNames = [];
  const pick = (files) => [...(files || [])].map((f) => shownName(f.name));
  document.addEventListener('change', (event) => {
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || input.type !== 'file') return;
    if (input.closest('#hs-upload')) chosen = {names: pick(input.files), appended: true};
    else if (input.closest('#hs-photo-tools')) chosen = {names: pick(input.files), appended: false};  // Replace
  }, true);
  document.addEventListener('drop', (event) => {
    if (event.target.closest && event.target.closest('#hs-upload')) {
      chosen = {names: pick(event.dataTransfer && event.dataTransfer.files), appended: true};
    }
  }, true);
  const learn = () => {
    const ids = [...document.querySelectorAll('#hs-screening li.hs-photo')].map((li) => li.dataset.photoId)
      .filter(Boolean);
    const fresh = ids.filter((id) => !studioNames.has(id));
    if (fresh.length) {
      let names = chosen ? chosen.names : [];
      // Added at the end of a set this page does not wholly know (reopened with the key): the last are theirs.
      if (chosen && chosen.appended && names.length && names.length < fresh.length) {
        names = Array(fresh.length - names.length).fill('').concat(names);
      }
      if (names.length !== fresh.length) names = fresh.map(() => '');  // better no name than a wrong one
      fresh.forEach((id, i) => studioNames.set(id, names[i]));
      chosen = null;
    }
    for (const id of [...studioNames.keys()]) if (!ids.includes(id)) studioNames.delete(id);
    const listed = [...document.querySelectorAll('#hs-instant-upload td.filename')]
      .map((cell) => shownName(cell.getAttribute('aria-label') || cell.textContent));
    if (listed.length) instantNames = listed;  // Make empties the list; its answer still names the photos
  };
  const fill = () => {
    learn();
    for (const slot of document.querySelectorAll('[data-hs-name-of]')) {
      const ref = slot.dataset.hsNameOf;
      const name = ref.startsWith('#') ? instantNames[Number(ref.slice(1)) - 1] : studioNames.get(ref);
      const text = name ? ` · ${name}` : '';
      if (slot.textContent !== text) slot.textContent = text;
      slot.hidden = !name;
    }
  };
  new MutationObserver(fill).observe(document.body, {childList: true, subtree: true});
})();
// --- end photowords ---
