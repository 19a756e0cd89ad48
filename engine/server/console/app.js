// certmill web console: a client of the server's own /auth and /api/v1 endpoints.
// No framework, no build step, no other host: every element is made with textContent (never
// innerHTML), so text from the API cannot become markup, and the Content-Security-Policy
// allows no inline script.
'use strict';

(() => {
  const S = {
    access: sessionStorage.getItem('certmill.access'),
    refresh: sessionStorage.getItem('certmill.refresh'),
    user: null,
    timers: [],
    refreshing: null,
    pendingFlash: '',
    view: null,
  };

  const STATUSES = ['Pending Creation', 'Pending Issue', 'Batch Issued Partly', 'Ready For Download',
    'Zip removed after expiration', 'Processing Reject', 'Processing Revoke', 'Rejected', 'Revoked', 'Broken'];
  const PENDING = new Set(['Pending Creation', 'Pending Issue', 'Processing Reject', 'Processing Revoke']);
  // RFC 5280 CRLReason codes the API takes (7 is unused).
  const REASONS = [[0, 'unspecified'], [1, 'keyCompromise'], [2, 'cACompromise'], [3, 'affiliationChanged'],
    [4, 'superseded'], [5, 'cessationOfOperation'], [6, 'certificateHold'], [8, 'removeFromCRL (release a hold)'],
    [9, 'privilegeWithdrawn'], [10, 'aACompromise']];
  const ROLES = ['USER', 'ORG_ADMIN', 'ECO_ADMIN', 'ADMIN'];
  const PHONE_HINT = 'Digits in groups, such as +38 050 492 4110';

  // ---- elements -------------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
      else if (key === 'dataset') Object.assign(el.dataset, value);
      else if (key === 'class') el.className = value;
      else if (key === 'value') el.value = value;
      else if (value === true) el.setAttribute(key, '');
      else el.setAttribute(key, String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : String(child));
    }
    return el;
  }

  const $ = (selector, root = document) => root.querySelector(selector);

  // A button for an action that cannot be undone: the first click only arms it (its text asks
  // for confirmation, announced), the second runs `action`. No native dialog.
  function confirmButton(attrs, label, confirmLabel, action) {
    let armed = false;
    const button = h('button', { type: 'button', ...attrs, 'aria-live': 'polite' }, label);
    button.addEventListener('click', () => {
      if (!armed) {
        armed = true;
        button.textContent = confirmLabel;
        if (attrs['aria-label']) button.setAttribute('aria-label', `${confirmLabel}: ${attrs['aria-label']}`);
        return;
      }
      action();
    });
    return button;
  }

  // A labelled form field: <div class=field><label for=id>…</label><input id=id …><hint></div>.
  function field(label, input, hint) {
    const hintEl = hint ? h('span', { class: 'hint', id: input.id + '-hint' }, hint) : null;
    if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
    return h('div', { class: 'field' }, h('label', { for: input.id }, label), input, hintEl);
  }

  function select(id, options, selected) {
    return h('select', { id, name: id },
      options.map(([value, text]) => h('option', { value: String(value), selected: String(value) === String(selected) }, text)));
  }

  // A table: columns are [heading, cell(row) → node or text, class?]; rows get data attributes.
  function table(id, caption, columns, rows, rowAttrs) {
    return h('table', { id },
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, columns.map(([heading, , cls]) => h('th', { scope: 'col', class: cls === 'num' ? cls : null }, heading)))),
      h('tbody', {}, rows.map((row) => h('tr', rowAttrs ? rowAttrs(row) : {},
        columns.map(([, cell, cls]) => h('td', { class: cls }, cell(row)))))));
  }

  function when(text) {
    if (!text) return '';
    const date = new Date(text);
    return Number.isNaN(date.getTime()) ? String(text) : date.toLocaleString();
  }

  function plural(n, one, many) { return `${n} ${n === 1 ? one : (many || one + 's')}`; }

  function flash(text) { $('#flash').textContent = text; }
  function showError(error) {
    $('#error').textContent = error ? (error.message || String(error)) : '';
  }

  // Runs `fn` every `ms` while the page that started it is on screen.
  function every(ms, fn) {
    const view = S.view;
    const id = setInterval(() => {
      if (view && view.isConnected) fn();
      else clearInterval(id);
    }, ms);
    S.timers.push(id);
  }

  // ---- the API --------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  function setTokens(access, refresh) {
    S.access = access; S.refresh = refresh;
    if (access) sessionStorage.setItem('certmill.access', access); else sessionStorage.removeItem('certmill.access');
    if (refresh) sessionStorage.setItem('certmill.refresh', refresh); else sessionStorage.removeItem('certmill.refresh');
  }

  // One refresh at a time: the server rotates refresh tokens and treats a second use of one
  // as theft (it ends the whole login), so parallel requests share one exchange.
  function refreshTokens() {
    if (!S.refreshing) {
      S.refreshing = (async () => {
        if (!S.refresh) return false;
        const response = await fetch('/auth/refresh', {
          method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: S.refresh, cache: 'no-store',
        });
        if (!response.ok) return false;
        const tokens = await response.json();
        setTokens(tokens.accessToken, tokens.refreshToken);
        return true;
      })().catch(() => false).finally(() => { S.refreshing = null; });
    }
    return S.refreshing;
  }

  async function api(method, path, body, options = {}) {
    const headers = {};
    if (S.access && !path.startsWith('/auth/')) headers.Authorization = 'Bearer ' + S.access;
    let payload = body;
    if (body !== undefined && !(body instanceof FormData) && typeof body !== 'string') {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    } else if (typeof body === 'string') {
      headers['Content-Type'] = 'text/plain';
    }
    const response = await fetch(path, { method, headers, body: payload, cache: 'no-store', credentials: 'omit' });
    if (response.status === 401 && !path.startsWith('/auth/') && options.retry !== false) {
      if (await refreshTokens()) return api(method, path, body, { ...options, retry: false });
      signOut('Your session has ended: log in again.');
    }
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try {
        const error = await response.json();
        message = error.error_description || error.error || message;
      } catch (_) { /* not JSON */ }
      const retry = response.headers.get('Retry-After');
      if (response.status === 429 && retry) message += ` (try again in ${retry} s)`;
      throw new ApiError(response.status, message);
    }
    if (options.raw) return response;
    if (response.status === 204) return null;
    const type = response.headers.get('Content-Type') || '';
    if (type.startsWith('application/json')) return response.json();
    return response.text();
  }

  function signOut(message) {
    setTokens(null, null);
    S.user = null;
    S.pendingFlash = message || '';
    render();
  }

  function roles() {
    const set = new Set((S.user && S.user.userPrivileges || []).map((p) => p.userRole));
    if (S.user && S.user.isAdmin) set.add('ADMIN');
    return set;
  }
  const can = {
    issue: () => roles().has('USER') || roles().has('ADMIN'),
    administer: () => ['ADMIN', 'ECO_ADMIN', 'ORG_ADMIN'].some((r) => roles().has(r)),
    install: () => roles().has('ADMIN'),
  };

  // ---- routing --------------------------------------------------------------------------

  const PAGES = [
    [/^\/batches$/, pageBatches, 'Batches'],
    [/^\/batches\/(\d+)$/, pageBatch, 'Batch'],
    [/^\/new$/, pageNew, 'New batch'],
    [/^\/devices$/, pageDevices, 'Devices'],
    [/^\/authorities$/, pageAuthorities, 'Authorities'],
    [/^\/organizations$/, pageOrganizations, 'Organizations'],
    [/^\/users$/, pageUsers, 'Users'],
    [/^\/clients$/, pageClients, 'API clients'],
    [/^\/signers$/, pageSigners, 'Signers'],
    [/^\/account$/, pageAccount, 'Account'],
  ];

  function navLinks() {
    const links = [];
    if (can.issue()) {
      links.push(['#/batches', 'Batches'], ['#/new', 'New batch'], ['#/devices', 'Devices'], ['#/authorities', 'Authorities']);
    }
    if (can.install()) links.push(['#/organizations', 'Organizations']);
    if (can.administer()) links.push(['#/users', 'Users'], ['#/clients', 'API clients']);
    if (can.install()) links.push(['#/signers', 'Signers']);
    links.push(['#/account', 'Account']);
    return links;
  }

  // A new view in <main> for one page. A page still loading when the user moves on keeps
  // adding to its own detached view, never to the next page's.
  function fresh(title) {
    const view = h('div', { class: 'view' });
    $('#main').replaceChildren(view);
    document.title = `${title} · certmill`;
    S.view = view;
    return view;
  }

  let rendering = 0;
  async function render() {
    const turn = ++rendering;
    S.timers.forEach(clearInterval);
    S.timers = [];
    showError(null);
    flash(S.pendingFlash);
    S.pendingFlash = '';
    if (location.pathname === '/reset-password') return pageReset(fresh('Reset password'));
    if (!S.access) return pageLogin(fresh('Log in'));
    if (!S.user) {
      try {
        S.user = await api('GET', '/api/v1/users');
      } catch (error) {
        if (turn !== rendering) return undefined;
        if (!S.access) return undefined; // signOut rendered the login page
        setTokens(null, null);
        return pageLogin(fresh('Log in'), error.message);
      }
      if (turn !== rendering) return undefined;
    }
    const links = navLinks();
    const [path, query] = (location.hash.replace(/^#/, '') || '').split('?');
    if (!path) {
      location.replace('#' + links[0][0].slice(1));
      return undefined;
    }
    $('#top').hidden = false;
    $('#whoami').textContent = `${S.user.credentials.login} (${S.user.organizationName})`;
    $('#nav').replaceChildren(...links.map(([href, text]) =>
      h('a', { href, 'aria-current': path === href.slice(1) || path.startsWith(href.slice(1) + '/') ? 'page' : null }, text)));
    for (const [pattern, page, title] of PAGES) {
      const match = path.match(pattern);
      if (!match) continue;
      const main = fresh(title);
      try {
        await page(main, new URLSearchParams(query || ''), ...match.slice(1));
      } catch (error) {
        if (turn === rendering) showError(error);
      }
      return undefined;
    }
    fresh('Not found').append(h('h1', {}, 'Not found'), h('p', {}, 'No such page. ', h('a', { href: '#/batches' }, 'Batches')));
    return undefined;
  }

  // ---- log in, reset ----------------------------------------------------------------------

  function pageLogin(main, message) {
    $('#top').hidden = true;
    const username = h('input', { id: 'login-username', name: 'username', autocomplete: 'username', required: true });
    const password = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
    const error = h('div', { id: 'login-error', class: 'alert', role: 'alert' }, message || '');
    const submit = h('button', { id: 'login-submit', type: 'submit' }, 'Log in');
    const form = h('form', { id: 'login-form', class: 'card', novalidate: true },
      field('User name', username), field('Password', password), submit, error);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      error.textContent = '';
      if (!username.value || !password.value) {
        error.textContent = 'Enter your user name and password.';
        return;
      }
      submit.disabled = true;
      try {
        const tokens = await api('POST', '/auth/pwd', { username: username.value, password: password.value });
        setTokens(tokens.accessToken, tokens.refreshToken);
        S.user = null;
        await render();
      } catch (e) {
        error.textContent = e.message;
        password.value = '';
        password.focus();
      } finally {
        submit.disabled = false;
      }
    });
    const login = h('input', { id: 'reset-login', name: 'login', autocomplete: 'username' });
    const resetNote = h('div', { id: 'reset-note', role: 'status' });
    const resetForm = h('form', { id: 'reset-form', novalidate: true },
      field('User name or e-mail address', login), h('button', { type: 'submit', class: 'secondary' }, 'Mail me a reset code'), resetNote);
    resetForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      try {
        const sent = await api('POST', '/auth/reset?login=' + encodeURIComponent(login.value));
        resetNote.textContent = String(sent) === 'false'
          ? 'A code was requested for this login less than 15 minutes ago: use that one.'
          : 'If the account exists and has an e-mail address, a reset code is on its way.';
      } catch (e) {
        resetNote.textContent = e.message;
      }
    });
    main.append(h('div', { class: 'login' },
      h('h1', {}, 'Log in to certmill'), form,
      h('details', {}, h('summary', {}, 'Forgot your password?'), resetForm)));
    username.focus();
  }

  function pageReset(main) {
    $('#top').hidden = true;
    const params = new URLSearchParams(location.search);
    const code = h('input', { id: 'reset-code', value: params.get('code') || '', autocomplete: 'one-time-code' });
    const first = h('input', { id: 'reset-password', type: 'password', autocomplete: 'new-password' });
    const second = h('input', { id: 'reset-repeat', type: 'password', autocomplete: 'new-password' });
    const note = h('div', { class: 'alert', role: 'alert' });
    const form = h('form', { class: 'card', novalidate: true },
      field('Reset code (from the mail)', code), field('New password', first, 'At least 8 characters.'),
      field('Repeat the new password', second), h('button', { type: 'submit' }, 'Set the new password'), note);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      note.textContent = '';
      try {
        await api('POST', '/auth/update', {
          updatedPassword: { newPassword: first.value, repeatedNewPassword: second.value }, code: code.value.trim(),
        });
        form.replaceWith(h('p', { role: 'status' }, 'Your password is changed. ', h('a', { href: '/console/' }, 'Log in')));
      } catch (e) {
        note.textContent = e.message;
      }
    });
    main.append(h('div', { class: 'login' }, h('h1', {}, 'Choose a new password'), form));
  }

  // ---- batches ---------------------------------------------------------------------------

  async function pageBatches(main, query) {
    const name = h('input', { id: 'batch-search', type: 'search', value: query.get('name') || '' });
    const status = select('batch-status-filter', [['', 'Any status'], ...STATUSES.map((s) => [s, s])], query.get('status') || '');
    const form = h('form', { class: 'card row', role: 'search', novalidate: true },
      field('Batch name contains', name), field('Status', status),
      h('button', { id: 'batch-search-submit', type: 'submit' }, 'Search'));
    const results = h('div', { id: 'batch-results' });
    main.append(h('h1', {}, 'Batches'), form, results);
    let page = 0;
    const load = async () => {
      const body = { filter: { batchName: name.value, status: status.value || null, pagingSettings: { pageIndex: page, pageSize: 25 } } };
      const answer = await api('POST', '/api/v1/batches', body);
      const pages = Math.max(1, Math.ceil(answer.totalCount / 25));
      results.replaceChildren(
        table('batch-list', `${plural(answer.totalCount, 'batch', 'batches')}, newest first`, [
          ['Batch', (b) => h('a', { href: `#/batches/${b.batchId}` }, `#${b.batchId}`)],
          ['Name', (b) => b.batchName],
          ['Profile', (b) => b.profile],
          ['Devices', (b) => b.size, 'num'],
          ['Status', (b) => h('span', { class: 'status-' + b.status.split(' ')[0] }, b.status)],
          ['Created', (b) => when(b.creationDate)],
        ], answer.batches, (b) => ({ dataset: { batchId: b.batchId } })),
        h('div', { class: 'pager' },
          h('button', { type: 'button', class: 'secondary', disabled: page === 0, onclick: () => { page -= 1; load().catch(showError); } }, 'Previous'),
          h('span', {}, `Page ${page + 1} of ${pages}`),
          h('button', { type: 'button', class: 'secondary', disabled: page + 1 >= pages, onclick: () => { page += 1; load().catch(showError); } }, 'Next')));
      return answer.batches.some((b) => PENDING.has(b.status));
    };
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      page = 0;
      load().catch(showError);
    });
    // Pending batches move on their own: refresh the list while any is on screen.
    if (await load()) every(3000, () => load().catch(showError));
  }

  // The values of a closed-list rule such as `^(Aircraft|Surface Vehicle){1}$`, or null.
  function choicesOf(pattern) {
    const match = /^\^\(([\w ,.:/-]+(?:\|[\w ,.:/-]+)+)\)(?:\{1\})?\$$/.exec(pattern || '');
    return match ? match[1].split('|') : null;
  }

  async function pageNew(main, query) {
    const profiles = await api('GET', '/api/v1/profiles');
    main.append(h('h1', {}, 'New batch'));
    if (!profiles.length) {
      main.append(h('p', {}, 'You may not use any profile: ask an administrator for access.'));
      return;
    }
    const chosen = query.get('profile') || String(profiles[0].profileId);
    const picker = select('profile-select', profiles.map((p) => [p.profileId, `${p.ca} (${p.algorithms.join(', ')})`]), chosen);
    const info = h('p', { id: 'profile-info', class: 'muted' });
    const parameters = h('div', { id: 'profile-parameters' });
    const kind = select('upload-kind', [['csv', 'CSV file: one device per row, keys made here (PKCS#12)'],
      ['csr', 'CSR bundle: PEM file or ZIP of CSRs, the devices keep their keys']], 'csv');
    const file = h('input', { id: 'upload-file', name: 'files', type: 'file', required: true, accept: '.csv,.txt,text/csv' });
    const batchName = h('input', { id: 'batch-name', name: 'batchName', maxlength: 255 });
    const batchFields = h('div', { id: 'batch-parameters' });
    const error = h('div', { id: 'upload-error', class: 'alert', role: 'alert' });
    const submit = h('button', { id: 'upload-submit', type: 'submit' }, 'Order the batch');
    const form = h('form', { id: 'upload-form', class: 'card', novalidate: true },
      h('h2', {}, 'Upload devices'), field('Input', kind), field('File', file), field('Batch name (optional)', batchName),
      batchFields, submit, error);
    main.append(h('div', { class: 'row' }, field('Profile', picker)), info, parameters, form);

    // A CSR batch makes no PKCS#12: its password field is hidden and not sent.
    const passwordOnlyForKeys = () => {
      for (const input of batchFields.querySelectorAll('[data-secret]')) {
        input.closest('.field').hidden = kind.value !== 'csv';
      }
    };
    kind.addEventListener('change', () => {
      file.accept = kind.value === 'csv' ? '.csv,.txt,text/csv' : '.pem,.csr,.zip,.txt';
      passwordOnlyForKeys();
    });

    const showProfile = async () => {
      const id = picker.value;
      const [params, balance] = await Promise.all([
        api('GET', `/api/v1/profiles/${id}/parameters`),
        api('GET', `/api/v1/profiles/${id}/balance`).catch(() => null),
      ]);
      const profile = profiles.find((p) => String(p.profileId) === id);
      info.textContent = `Issuer: ${profile.issuer}. Key: ${profile.algorithms.join(', ')}. ` +
        (balance === null ? '' : `Your organization may issue ${Number(balance).toLocaleString()} more certificates with it.`);
      const columns = params.filter((p) => p.scopes.includes('REQUEST')).map((p) => p.name);
      parameters.replaceChildren(
        table('profile-params', 'Parameters of the profile', [
          ['Name', (p) => h('code', {}, p.name)],
          ['Meaning', (p) => p.title || ''],
          ['Comes from', (p) => p.scopes.map((s) => ({ REQUEST: 'CSV column', CSR: 'CSR', BATCH: 'batch form' }[s] || s)).join(', ')],
          ['Required', (p) => (p.required ? 'yes' : 'no')],
          ['Rule', (p) => p.message || p.validationPattern || ''],
          ['Default', (p) => (p.value === null ? '' : String(p.value))],
        ], params, (p) => ({ dataset: { name: p.name } })),
        h('p', { class: 'muted' }, 'CSV header names the profile takes: ', h('code', {}, columns.join(',') || '(none)'),
          '. A value given in the batch form applies to every row that does not have its own.'));
      batchFields.replaceChildren(...params.filter((p) => p.scopes.includes('BATCH')).map((p) => {
        const secret = p.inputType === 'pkcs12Password' || /password/i.test(p.name);
        const value = p.value === null ? '' : String(p.value);
        const choices = choicesOf(p.validationPattern);
        const input = choices
          ? h('select', { id: 'param-' + p.name, name: p.name, dataset: { param: p.name }, required: p.required },
            h('option', { value: '' }, p.required ? 'Choose…' : '(none)'),
            choices.map((choice) => h('option', { value: choice, selected: choice === value }, choice)))
          : h('input', {
            id: 'param-' + p.name, name: p.name, type: secret ? 'password' : 'text',
            autocomplete: secret ? 'new-password' : 'off', value, required: p.required,
            dataset: secret ? { param: p.name, secret: 'yes' } : { param: p.name },
          });
        const label = (p.title || p.name) + (p.required ? ' (required)' : '');
        const hint = secret ? 'Protects every PKCS#12 of the batch; never stored.' : (choices ? '' : (p.message || ''));
        return field(label, input, hint);
      }));
      passwordOnlyForKeys();
    };
    picker.addEventListener('change', () => showProfile().catch(showError));
    await showProfile();

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      error.textContent = '';
      const upload = file.files[0];
      if (!upload) {
        error.textContent = 'Choose a file to upload.';
        file.focus();
        return;
      }
      const profileParams = {};
      for (const input of batchFields.querySelectorAll('[data-param]')) {
        if (input.dataset.secret && kind.value !== 'csv') continue;
        if (input.value !== '') profileParams[input.dataset.param] = input.value;
      }
      const request = { profileParams };
      if (batchName.value.trim()) request.batchName = batchName.value.trim();
      const body = new FormData();
      body.append('csrBatchRequest', new Blob([JSON.stringify(request)], { type: 'application/json' }));
      body.append('files', upload.type ? upload : new Blob([upload], { type: 'application/octet-stream' }), upload.name);
      const path = kind.value === 'csv' ? '/api/v1/batches/upload-csv' : '/api/v1/batches/upload';
      submit.disabled = true;
      try {
        const batch = await api('POST', `${path}?profileId=${encodeURIComponent(picker.value)}`, body);
        S.pendingFlash = `Batch #${batch.batchId} ordered: ${plural(batch.size, 'device')}.`;
        location.hash = `#/batches/${batch.batchId}`;
      } catch (e) {
        error.textContent = e.message;
        error.focus();
      } finally {
        submit.disabled = false;
      }
    });
  }

  async function pageBatch(main, _query, id) {
    const batch = await api('GET', `/api/v1/batches/${id}`);
    const seedStatus = h('dd', { id: 'batch-seed-status' }, batch.status);
    const state = h('dd', { id: 'batch-status' });
    const progress = h('progress', { id: 'batch-progress', max: Math.max(batch.size, 1), value: 0, 'aria-label': 'Devices done' });
    const done = h('dd', { id: 'batch-done' });
    const failed = h('dd', { id: 'batch-failed' });
    const rate = h('dd', { id: 'batch-rate' }, '—');
    const eta = h('dd', { id: 'batch-eta' }, '—');
    const download = h('button', { id: 'batch-download', type: 'button', disabled: !batch.downloadable }, 'Download ZIP');
    const audit = h('div', { id: 'batch-audit-box' });
    const devices = h('div', { id: 'batch-devices-box' });
    const revokeReason = select('batch-revoke-reason', REASONS.filter(([code]) => code !== 6 && code !== 8), 5);
    const revoke = h('button', { id: 'batch-revoke', type: 'button', class: 'danger' }, 'Revoke every certificate');
    const rejectReason = h('input', { id: 'batch-reject-reason', maxlength: 255 });
    const reject = h('button', { id: 'batch-reject', type: 'button', class: 'danger' }, 'Reject the batch');
    const rejectBox = h('section', { class: 'card', hidden: !batch.rejectable },
      h('h2', {}, 'Reject'), h('p', { class: 'muted' }, 'Before anyone downloads it, a batch may be rejected: its balance is given back.'),
      h('div', { class: 'row' }, field('Reason', rejectReason), reject));
    main.append(
      h('h1', {}, `Batch #${batch.batchId}`, batch.batchName ? `: ${batch.batchName}` : ''),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Profile'), h('dd', {}, batch.profile),
        h('dt', {}, 'Ordered'), h('dd', {}, when(batch.creationDate)),
        h('dt', {}, 'Status'), seedStatus,
        h('dt', {}, 'State'), state,
        h('dt', {}, 'Devices done'), done,
        h('dt', {}, 'Failed'), failed,
        h('dt', {}, 'Rate'), rate,
        h('dt', {}, 'Time left'), eta,
        batch.rejectReason ? [h('dt', {}, 'Reason'), h('dd', {}, batch.rejectReason)] : null),
      progress,
      h('p', {}, download),
      rejectBox,
      h('section', { class: 'card' }, h('h2', {}, 'Revoke'),
        h('p', { class: 'muted' }, 'After the download, every certificate of the batch can be revoked at once; the balance is not given back.'),
        h('div', { class: 'row' }, field('Reason', revokeReason), revoke)),
      h('h2', {}, 'Audit log'), audit,
      h('h2', {}, 'Devices\' log'), devices);

    const samples = [];
    let current = batch;
    const update = async () => {
      const [text, info, fresh] = await Promise.all([
        api('GET', `/api/v1/batches/${id}/status`),
        api('GET', `/api/v1/batches/${id}/processing_info`),
        api('GET', `/api/v1/batches/${id}`),
      ]);
      current = fresh;
      const finished = info.success + info.failed;
      state.textContent = String(text).trim();
      seedStatus.textContent = fresh.status;
      progress.value = finished;
      done.textContent = `${finished.toLocaleString()} of ${fresh.size.toLocaleString()}`;
      failed.textContent = info.failed.toLocaleString();
      download.disabled = !fresh.downloadable;
      rejectBox.hidden = !fresh.rejectable;
      const now = performance.now();
      samples.push([now, finished]);
      while (samples.length > 1 && now - samples[0][0] > 10000) samples.shift();
      const [t0, n0] = samples[0];
      if (PENDING.has(fresh.status) && now > t0 && finished > n0) {
        const perSecond = (finished - n0) / ((now - t0) / 1000);
        rate.textContent = `${Math.round(perSecond).toLocaleString()} devices/s`;
        eta.textContent = `${Math.ceil((fresh.size - finished) / perSecond)} s`;
      } else if (!PENDING.has(fresh.status)) {
        eta.textContent = 'done';
      }
      return PENDING.has(fresh.status);
    };
    const logs = async () => {
      const [entries, deviceLog] = await Promise.all([
        api('GET', `/api/v1/batches/${id}/auditLog`),
        api('GET', `/api/v1/batches/${id}/devices/auditLog?position=1`),
      ]);
      audit.replaceChildren(table('batch-audit', plural(entries.length, 'entry', 'entries'), [
        ['Time', (e) => when(e.dateTime)], ['Type', (e) => e.logType], ['By', (e) => e.userName || ''], ['Message', (e) => e.message],
      ], entries));
      devices.replaceChildren(table('batch-devices', deviceLog.length >= 1000
        ? 'The first 1,000 entries; search for a device on the Devices page' : plural(deviceLog.length, 'entry', 'entries'), [
        ['Device', (d) => d.deviceId, 'mono'],
        ['Common name', (d) => h('a', { href: '#/devices?cn=' + encodeURIComponent(d.cn) }, d.cn)],
        ['Time', (d) => when(d.dateTime)], ['Message', (d) => d.message],
      ], deviceLog));
    };

    download.addEventListener('click', async () => {
      download.disabled = true;
      try {
        // A link with a 60-second download ticket: the browser streams the ZIP to disk
        // itself (a batch of 100,000 devices is hundreds of MB) instead of the page
        // holding it in memory.
        const link = await api('POST', `/api/v1/batches/${id}/download-link`);
        const anchor = h('a', { href: link.url, download: '', hidden: true });
        document.body.append(anchor);
        anchor.click();
        anchor.remove();
        flash(`Download of batch #${id} started: your browser saves the ZIP.`);
        // The server marks the batch downloaded once it sends the file.
        await new Promise((resolve) => { setTimeout(resolve, 1500); });
        await update();
        await logs();
      } catch (e) {
        showError(e);
      } finally {
        download.disabled = !current.downloadable;
      }
    });
    revoke.addEventListener('click', async () => {
      revoke.disabled = true;
      try {
        await api('POST', `/api/v1/batches/${id}/revoke`, { reasonCode: Number(revokeReason.value) });
        flash(`Batch #${id} revoked (${revokeReason.selectedOptions[0].textContent}).`);
        follow(await update());
        await logs();
      } catch (e) {
        showError(e);
      } finally {
        revoke.disabled = false;
      }
    });
    reject.addEventListener('click', async () => {
      try {
        await api('DELETE', `/api/v1/batches/${id}`, rejectReason.value || 'rejected in the console');
        flash(`Batch #${id} rejected; its balance is given back.`);
        follow(await update());
        await logs();
      } catch (e) {
        showError(e);
      }
    });

    // Poll once a second while the batch is running (issuing, rejecting or revoking).
    let polling = false;
    const follow = (pending) => {
      if (!pending || polling) return;
      polling = true;
      let busy = false;
      every(1000, async () => {
        if (busy || !polling) return;
        busy = true;
        try {
          if (!(await update())) {
            polling = false;
            S.timers.forEach(clearInterval);
            S.timers = [];
            await logs();
          }
        } catch (e) {
          showError(e);
        } finally {
          busy = false;
        }
      });
    };
    follow(await update());
    await logs();
  }

  // ---- devices -----------------------------------------------------------------------------

  async function pageDevices(main, query) {
    const counts = await api('GET', '/api/v1/devices');
    const cn = h('input', { id: 'device-cn', type: 'search', value: query.get('cn') || '' });
    const serial = h('input', { id: 'device-serial', type: 'search', value: query.get('serial') || '', class: 'mono' });
    const form = h('form', { id: 'device-search', class: 'card row', role: 'search', novalidate: true },
      field('Common name', cn), field('Serial number (hex)', serial),
      h('button', { id: 'device-search-submit', type: 'submit' }, 'Search'));
    const results = h('div', { id: 'device-box' });
    const reason = select('revoke-reason', REASONS, 0);
    const revoke = h('button', { id: 'revoke-submit', type: 'button', class: 'danger' }, 'Revoke the selected devices');
    main.append(h('h1', {}, 'Devices and certificates'),
      h('p', { class: 'muted' }, `${counts.ordered.toLocaleString()} devices ordered, ${counts.issued.toLocaleString()} issued in active batches.`),
      form, results,
      h('section', { class: 'card' }, h('h2', {}, 'Revoke'), h('div', { class: 'row' }, field('Reason', reason), revoke)));

    const search = async () => {
      const body = {};
      if (cn.value.trim()) body.commonName = cn.value.trim();
      if (serial.value.trim()) body.serialNumber = serial.value.trim();
      if (!body.commonName && !body.serialNumber) {
        results.replaceChildren(h('p', { class: 'muted' }, 'Search by common name, serial number or both.'));
        return;
      }
      const answer = await api('POST', '/api/v1/certificates/find', body);
      results.replaceChildren(table('device-results', plural(answer.totalCount, 'certificate'), [
        ['Select', (d) => h('input', { type: 'checkbox', class: 'device-pick', value: d.deviceId, 'aria-label': `Select ${d.commonName}` })],
        ['Device', (d) => d.deviceId, 'mono'],
        ['Common name', (d) => d.commonName],
        ['Serial', (d) => d.serialNumber, 'mono'],
        ['Issued', (d) => when(d.creationDate)],
        ['Status', (d) => d.status, 'status'],
      ], answer.items, (d) => ({ dataset: { deviceId: d.deviceId } })));
    };
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      search().catch(showError);
    });
    revoke.addEventListener('click', async () => {
      showError(null);
      const ids = [...results.querySelectorAll('input.device-pick:checked')].map((box) => box.value);
      if (!ids.length) {
        showError(new Error('Select the devices to revoke first.'));
        return;
      }
      revoke.disabled = true;
      try {
        await api('POST', '/api/v1/certificates/revoke', { reasonCode: Number(reason.value), deviceIds: ids });
        await search();
        flash(`${plural(ids.length, 'device')} revoked: ${reason.selectedOptions[0].textContent}.`);
      } catch (e) {
        showError(e);
      } finally {
        revoke.disabled = false;
      }
    });
    await search();
  }

  async function pageAuthorities(main) {
    const list = await api('GET', '/api/v1/authorities/allowed');
    main.append(h('h1', {}, 'Authorities and balances'),
      table('authority-list', `The authorities of ${S.user.organizationName}`, [
        ['Authority', (a) => a.id, 'num'],
        ['Profile', (a) => h('a', { href: `#/new?profile=${a.profileId}` }, a.profileName)],
        ['Ecosystem', (a) => a.ecosystemName],
        ['Available', (a) => Number(a.balance).toLocaleString(), 'num'],
        ['Enabled', (a) => (a.enabled ? 'yes' : 'no')],
      ], list));
  }

  // ---- administration ------------------------------------------------------------------------

  async function pageOrganizations(main) {
    const box = h('div');
    const inputs = {
      organizationName: h('input', { id: 'org-name', required: true, maxlength: 255 }),
      address: h('input', { id: 'org-address', maxlength: 255, required: true }),
      primaryContactName: h('input', { id: 'org-contact', maxlength: 255, required: true }),
      primaryContactEmail: h('input', { id: 'org-email', type: 'email', required: true }),
      primaryContactPhone: h('input', { id: 'org-phone', type: 'tel', required: true }),
      manufactureId: h('input', { id: 'org-manufacturer' }),
    };
    const form = h('form', { class: 'card', novalidate: true }, h('h2', {}, 'New organization'),
      h('p', { class: 'muted' }, 'Every field but the manufacturer id is required.'),
      h('div', { class: 'row' },
        field('Name', inputs.organizationName), field('Address', inputs.address), field('Contact name', inputs.primaryContactName),
        field('Contact e-mail', inputs.primaryContactEmail), field('Contact phone', inputs.primaryContactPhone, PHONE_HINT),
        field('Manufacturer id', inputs.manufactureId)),
      h('button', { type: 'submit', id: 'org-create' }, 'Create'));
    main.append(h('h1', {}, 'Organizations'), box, form);
    const load = async () => {
      const list = await api('GET', '/api/v1/organizations?page=0&size=50');
      box.replaceChildren(table('org-list', plural(list.length, 'organization'), [
        ['Id', (o) => o.organizationId, 'num'],
        ['Name', (o) => o.organizationName],
        ['Status', (o) => o.orgStatus],
        ['Contact', (o) => [o.primaryContactName, o.primaryContactEmail].filter(Boolean).join(', ')],
        ['Authorities', (o) => (o.authorities || []).map((a) => `${a.profileName}: ${Number(a.balance).toLocaleString()}`).join('; ')],
      ], list, (o) => ({ dataset: { organizationId: o.organizationId } })));
    };
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      showError(null);
      const body = { orgStatus: 'ACTIVE' };
      for (const [name, input] of Object.entries(inputs)) body[name] = input.value.trim();
      try {
        await api('POST', '/api/v1/organizations', body);
        flash(`Organization ${body.organizationName} created.`);
        form.reset();
        await load();
      } catch (e) {
        showError(e);
      }
    });
    await load();
  }

  async function organizationChoices() {
    if (can.install()) return (await api('GET', '/api/v1/organizations/select/items')).map((o) => [o.id, o.name]);
    return [[S.user.organizationId, S.user.organizationName]];
  }

  async function pageUsers(main) {
    const organizations = await organizationChoices();
    const organization = select('user-org', organizations, S.user.organizationId);
    const search = h('input', { id: 'user-search', type: 'search' });
    const filter = h('form', { class: 'card row', role: 'search', novalidate: true },
      field('Organization', organization), field('Login, name or e-mail contains', search),
      h('button', { type: 'submit' }, 'Search'));
    const box = h('div');
    const granted = ROLES.filter((role) => roles().has('ADMIN') || ROLES.indexOf(role) <= Math.max(...[...roles()].map((r) => ROLES.indexOf(r))));
    const inputs = {
      login: h('input', { id: 'user-login', autocomplete: 'off' }),
      firstName: h('input', { id: 'user-first' }),
      lastName: h('input', { id: 'user-last' }),
      email: h('input', { id: 'user-email', type: 'email' }),
      phone: h('input', { id: 'user-phone', type: 'tel', required: true }),
      password: h('input', { id: 'user-password', type: 'password', autocomplete: 'new-password' }),
    };
    const role = select('user-role', granted.map((r) => [r, r]), 'USER');
    const form = h('form', { class: 'card', novalidate: true }, h('h2', {}, 'New user in the chosen organization'),
      h('p', { class: 'muted' }, 'Every field is required.'),
      h('div', { class: 'row' }, field('Login', inputs.login, '5 to 30 letters, digits or _'), field('First name', inputs.firstName),
        field('Last name', inputs.lastName), field('E-mail', inputs.email), field('Phone', inputs.phone, PHONE_HINT),
        field('Password', inputs.password, 'At least 8 characters'), field('Role', role)),
      h('button', { type: 'submit', id: 'user-create' }, 'Create'));
    main.append(h('h1', {}, 'Users'), filter, box, form);
    const load = async () => {
      const list = await api('POST', `/api/v1/users/organizations/${organization.value}`, { searchLine: search.value });
      box.replaceChildren(table('user-list', plural(list.length, 'user'), [
        ['Id', (u) => u.userId, 'num'],
        ['Login', (u) => u.credentials.login],
        ['Name', (u) => [u.firstName, u.lastName].filter(Boolean).join(' ')],
        ['E-mail', (u) => u.email || ''],
        ['Roles', (u) => (u.userPrivileges || []).map((p) => p.userRole).join(', ')],
        ['Active', (u) => (u.active ? 'yes' : 'no')],
        ['', (u) => (u.userId === S.user.userId ? '' : confirmButton(
          { class: 'secondary', 'aria-label': `Remove ${u.credentials.login}` }, 'Remove', 'Confirm remove',
          async () => {
            try {
              await api('GET', `/api/v1/users/remove_user?userId=${u.userId}`);
              flash(`User ${u.credentials.login} removed.`);
              await load();
            } catch (e) { showError(e); }
          }))],
      ], list, (u) => ({ dataset: { userId: u.userId } })));
    };
    filter.addEventListener('submit', (event) => { event.preventDefault(); load().catch(showError); });
    organization.addEventListener('change', () => load().catch(showError));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      showError(null);
      const body = {
        firstName: inputs.firstName.value.trim(), lastName: inputs.lastName.value.trim(),
        email: inputs.email.value.trim(), organizationId: Number(organization.value),
        credentials: { login: inputs.login.value.trim(), password: inputs.password.value },
        userPrivileges: [{ userRole: role.value }], isAdmin: role.value === 'ADMIN',
      };
      if (inputs.phone.value.trim()) body.phone = inputs.phone.value.trim();
      try {
        await api('PUT', '/api/v1/users', body);
        flash(`User ${body.credentials.login} created.`);
        form.reset();
        await load();
      } catch (e) {
        showError(e);
      }
    });
    await load();
  }

  async function pageClients(main) {
    const organizations = await organizationChoices();
    const profiles = await api('GET', '/api/v1/profiles').catch(() => []);
    const box = h('div');
    const secretBox = h('div', { id: 'client-secret-box', role: 'status' });
    const name = h('input', { id: 'client-name', maxlength: 255 });
    const organization = select('client-org', organizations, S.user.organizationId);
    const profile = select('client-profile', [['', 'every profile'], ...profiles.map((p) => [p.profileId, p.ca])], '');
    const form = h('form', { class: 'card', novalidate: true }, h('h2', {}, 'New API client for a factory station'),
      h('div', { class: 'row' }, field('Name', name), field('Organization', organization), field('Profiles', profile)),
      h('button', { type: 'submit', id: 'client-create' }, 'Create'));
    main.append(h('h1', {}, 'API clients'), secretBox, box, form);
    const showSecret = (credential) => secretBox.replaceChildren(h('div', { class: 'secret' },
      h('p', {}, `Client ${credential.credentialName}: copy the secret now, it is shown only this once.`),
      h('p', {}, 'Client id: ', h('code', { id: 'client-id' }, credential.clientId)),
      h('p', {}, 'Secret: ', h('code', { id: 'client-secret' }, credential.clientSecret))));
    const act = async (what, done) => {
      try {
        const answer = await what();
        if (answer && answer.clientSecret) showSecret(answer); else secretBox.replaceChildren();
        flash(done);
        await load();
        return true;
      } catch (e) {
        showError(e);
        return false;
      }
    };
    const load = async () => {
      const list = await api('GET', '/api/v1/credentials');
      box.replaceChildren(table('client-list', plural(list.count, 'client'), [
        ['Name', (c) => c.credentialName],
        ['Client id', (c) => c.clientId, 'mono'],
        ['Organization', (c) => (c.associatedTenant && c.associatedTenant.tenantName) || c.organizationId],
        ['Profiles', (c) => (c.accessibleProfiles ? c.accessibleProfiles.join(', ') : 'all')],
        ['Locked', (c) => (c.locked ? 'yes' : 'no')],
        ['Secret generation', (c) => c.generation, 'num'],
        ['Actions', (c) => [
          h('button', { type: 'button', class: 'secondary', 'aria-label': `${c.locked ? 'Unlock' : 'Lock'} ${c.credentialName}`,
            onclick: () => act(() => api('PUT', `/api/v1/credentials/${c.id}`, { locked: !c.locked }), `${c.credentialName} ${c.locked ? 'unlocked' : 'locked'}.`) },
          c.locked ? 'Unlock' : 'Lock'), ' ',
          h('button', { type: 'button', class: 'secondary', 'aria-label': `New secret for ${c.credentialName}`,
            onclick: () => act(() => api('POST', `/api/v1/credentials/${c.id}/reset`), `${c.credentialName} has a new secret; the old one no longer works.`) },
          'New secret'), ' ',
          confirmButton({ class: 'danger', 'aria-label': `Delete ${c.credentialName}` }, 'Delete', 'Confirm delete',
            () => act(() => api('DELETE', `/api/v1/credentials/${c.id}`), `${c.credentialName} deleted.`))]],
      ], list.items, (c) => ({ dataset: { clientId: c.clientId } })));
    };
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      showError(null);
      const body = { credentialName: name.value.trim(), organizationId: Number(organization.value) };
      if (profile.value) body.accessibleProfiles = [Number(profile.value)];
      act(() => api('POST', '/api/v1/credentials', body), `API client ${body.credentialName} created.`).then((ok) => { if (ok) form.reset(); });
    });
    await load();
  }

  async function pageSigners(main) {
    const issuers = await api('GET', '/api/v1/issuers');
    const lists = await Promise.all(issuers.map((i) =>
      api('GET', `/api/v1/issuers/${encodeURIComponent(i.name)}/signers?page_size=100`)));
    const rows = lists.flat();
    const rotations = h('div', { class: 'row' }, issuers.map((issuer) => {
      return confirmButton({ class: 'secondary', id: `rotate-${issuer.name}` }, `Rotate ${issuer.name}'s signer`,
        `Confirm: a new signer for ${issuer.name}, the current one retires`, async () => {
          try {
            const signer = await api('POST', `/api/v1/issuers/${encodeURIComponent(issuer.name)}/signers`, {});
            S.pendingFlash = `Issuer ${issuer.name} now signs with ${signer.name} (${signer.state}).`;
            render();
          } catch (e) {
            showError(e);
          }
        });
    }));
    main.append(h('h1', {}, 'Issuers and signers'),
      table('signer-list', `${plural(issuers.length, 'issuer')}, ${plural(rows.length, 'signer')}`, [
        ['Issuer', (s) => s.tenant],
        ['Signer', (s) => s.name],
        ['State', (s) => s.state],
        ['Certificate', (s) => s.certificateStatus],
        ['Generation', (s) => s.generation, 'num'],
        ['Key', (s) => s.keyAlgorithm],
        ['Valid until', (s) => when(s.notAfter)],
        ['Id', (s) => s.id, 'mono'],
      ], rows, (s) => ({ dataset: { signerId: s.id } })),
      h('h2', {}, 'Rotate'), h('p', { class: 'muted' }, 'A rotation makes a new signer ACTIVE and retires the current one; certificates it issued stay valid and are still answered by OCSP.'),
      rotations);
  }

  async function pageAccount(main) {
    const current = h('input', { id: 'account-current', type: 'password', autocomplete: 'current-password' });
    const first = h('input', { id: 'account-new', type: 'password', autocomplete: 'new-password' });
    const second = h('input', { id: 'account-repeat', type: 'password', autocomplete: 'new-password' });
    const form = h('form', { class: 'card', novalidate: true }, h('h2', {}, 'Change your password'),
      field('Current password', current), field('New password', first, 'At least 8 characters.'), field('Repeat the new password', second),
      h('button', { type: 'submit' }, 'Change'));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      showError(null);
      try {
        const password = first.value;
        const changed = await api('PUT', '/api/v1/users/credentials', {
          currentPassword: current.value, newPassword: password, repeatedNewPassword: second.value,
        });
        if (changed === true || changed === 'true') {
          form.reset();
          // The change ended every session of the user, this one's refresh token included:
          // a new login keeps this tab signed in.
          const tokens = await api('POST', '/auth/pwd', { username: S.user.credentials.login, password });
          setTokens(tokens.accessToken, tokens.refreshToken);
          flash('Password changed. Your other sessions have ended.');
        } else {
          current.value = '';
          current.focus();
          showError(new Error('The current password is wrong.'));
        }
      } catch (e) {
        showError(e);
      }
    });
    const u = S.user;
    main.append(h('h1', {}, 'Account'),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Login'), h('dd', {}, u.credentials.login),
        h('dt', {}, 'Organization'), h('dd', {}, u.organizationName),
        h('dt', {}, 'Roles'), h('dd', {}, [...roles()].join(', ')),
        h('dt', {}, 'E-mail'), h('dd', {}, u.email || '—')),
      form);
  }

  // ---- start ---------------------------------------------------------------------------------

  window.addEventListener('hashchange', () => { render(); });
  document.addEventListener('DOMContentLoaded', () => {
    $('#logout').addEventListener('click', () => {
      // The next person to log in starts on their own first page, not this one's.
      history.replaceState(null, '', location.pathname);
      signOut('You are logged out.');
    });
    // The skip link moves the focus; it must not change the hash the pages are routed by.
    $('.skip').addEventListener('click', (event) => {
      event.preventDefault();
      $('#main').focus();
    });
    render();
  });
})();
