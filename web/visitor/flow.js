
// The guided flow (web.visitor.flow): which step is open is the body's data-hs-step; on a phone the CSS shows that
// step and one line for each other. The step moves by itself only when the person acts (consent given, Make
// pressed, headshots arrived); a tap on a line opens that step. Nothing here sends or stores anything.
(() => {
  const PHONE = window.matchMedia('(max-width: 640px)');
  const $ = (selector) => document.querySelector(selector);
  const HEADS = {photos: '#hs-step-mode-head', style: '#hs-step-style-head', make: '#hs-step-make-head',
                 pick: '#hs-step-pick-head'};
  const statusText = () => $('#hs-status textarea')?.value || '';
  const running = () => /Waiting for the GPU|In line|· \d+%/.test(statusText());
  const shots = () => document.querySelectorAll('#hs-gallery .hs-shot, #hs-unstored .hs-shot').length;
  const ticked = () => ['own', 'adult', 'purpose'].every((box) => $(`#hs-consent-${box} input`)?.checked);
  // A session opened again by its key has given consent before: its photos, headshots or key panel say so.
  const consented = () => ticked() || Boolean($('#hs-returnkey[data-code], #hs-screening li.hs-photo')) || shots() > 0;
  const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const lineText = {
    photos: () => {
      if ($('#hs-mode input[value=instant]')?.checked) return 'Photos · Instant: checked when you press Make';
      const ok = document.querySelectorAll('#hs-screening li.hs-photo[data-accepted=true]').length;
      const not = document.querySelectorAll('#hs-screening li.hs-photo[data-accepted=false]').length;
      if (!ok && !not) return consented() ? 'Photos · none yet' : 'Photos · after your consent';
      return `Photos · ${ok} accepted${not ? `, ${not} not used` : ''}${ok && !not ? ' ✓' : ''}`;
    },
    style: () => {
      if (!$('#hs-styles')) return "Style · your team's look";
      const chosen = [...document.querySelectorAll('#hs-styles input[type=checkbox]')].filter((b) => b.checked);
      const each = Number($('#hs-count input[type=number]')?.value || 1);
      if (!chosen.length) return 'Style · none picked yet';
      const what = chosen.length === 1 ? (chosen[0].closest('label')?.innerText || '').trim() || '1 style'
        : plural(chosen.length, 'style');
      return `Style · ${what}, ${plural(chosen.length * each, 'headshot')}`;
    },
    make: () => {
      if (running()) return `Make · ${statusText().split('\n')[0].slice(0, 48)}`;
      return shots() ? 'Make · done ✓' : 'Make · not started';
    },
    pick: () => (shots() ? `Pick · ${plural(shots(), 'headshot')} to choose from` : 'Pick · after Make'),
  };
  // Which headshots are shown: their count and the newest one's address (a kept run can replace as many unkept).
  const shown = () => `${shots()} ${($('#hs-unstored .hs-shot img') || $('#hs-gallery .hs-shot img'))?.getAttribute('src')?.slice(0, 80) || ''}`;
  let step = null, lastRunning = false, lastShown = '0 ';
  const go = (next, bringIntoView) => {
    if (step === next) return;
    step = next;
    document.body.dataset.hsStep = next;
    document.querySelectorAll('[data-hs-goto]').forEach((line) => line.setAttribute('aria-expanded', String(line.dataset.hsGoto === next)));
    if (!bringIntoView || !PHONE.matches || !HEADS[next]) return;
    // The opened step's heading takes the focus (its line is gone) and comes to the top of the screen.
    const head = $(`${HEADS[next]} h3`) || $(HEADS[next]);
    if (!head) return;
    head.setAttribute('tabindex', '-1');
    head.focus({preventScroll: true});
    head.scrollIntoView({block: 'start'});
  };
  const tick = () => {
    if (!$('#hs-action-bar')) return;
    const r = running(), n = shots(), now = shown();
    if (step === null) go(n ? 'pick' : consented() ? 'photos' : 'consent', false);
    else if (step === 'consent' && consented()) go('photos', false);  // in place: the private link above stays in view
    if (r && !lastRunning) go('make', false);  // a run began (Make, More like this, Resume)
    if (!r && n && now !== lastShown) go('pick', true);  // new headshots to choose from
    lastRunning = r; lastShown = now;
    document.querySelectorAll('[data-hs-goto]').forEach((line) => {
      const text = lineText[line.dataset.hsGoto]?.(), span = line.querySelector('[data-hs-line-text]');
      if (text && span && span.textContent !== text) span.textContent = text;
    });
  };
  document.addEventListener('click', (event) => {
    const line = event.target.closest && event.target.closest('[data-hs-goto]');
    if (line) { go(line.dataset.hsGoto, true); tick(); return; }
    if (event.target.closest && event.target.closest('#hs-make, #hs-make-instant, #hs-more, #hs-resume')) go('make', false);
  });
  // The photo step's main action on a phone: the upload sits below the private link just shown, so while no photo
  // is in and Make cannot be used yet, "Add photos" stays at the bottom of the screen and opens the same chooser.
  const add = document.createElement('div');
  add.id = 'hs-flow-add-bar';
  add.hidden = true;
  add.innerHTML = "<button type='button' id='hs-flow-add'>Add your photos</button>";
  document.body.appendChild(add);
  const upload = () => $(document.querySelector('#hs-mode input[value=instant]')?.checked
    ? '#hs-instant-upload input[type=file]' : '#hs-upload input[type=file]');
  add.addEventListener('click', () => upload()?.click());
  setInterval(() => {
    const makes = [...document.querySelectorAll('#hs-make, #hs-make-instant')].some((b) => b.offsetParent && !b.disabled);
    const want = PHONE.matches && step === 'photos' && Boolean(upload()) && !makes &&
      !document.querySelector('#hs-screening li.hs-photo');
    if (add.hidden === want) add.hidden = !want;
    document.body.classList.toggle('hs-flow-adding', want);
  }, 300);
  const phone = () => { if (PHONE.matches) document.body.dataset.hsFlow = 'phone'; else delete document.body.dataset.hsFlow; };
  PHONE.addEventListener('change', phone);
  phone();
  setInterval(tick, 300);
})();
