// The live sales dashboard: listens to /api/events (server-sent events)
// and redraws the figures on each "dashboard" event. Plain JavaScript, no
// libraries; the charts are inline SVG drawn here.
//
// For tests, the main figures carry stable ids and data attributes with
// their raw values (data-cents, data-value), and document.body.dataset.updates
// counts the dashboards received.
'use strict';

(() => {
  const STALE_AFTER_MS = 6000; // no event for this long: the figures are stale
  const MAX_MINUTES = 15; // columns in the per-minute chart
  const PALETTE = ['#3b5bdb', '#12b886', '#f59f00', '#e64980', '#7950f2', '#15aabf', '#fd7e14', '#868e96'];
  const TIERS = ['gold', 'silver', 'bronze'];
  const TIER_COLORS = { gold: '#f2b600', silver: '#a7b1c2', bronze: '#c77b3b' };
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);
  const usd = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
  const usdWhole = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', maximumFractionDigits: 0 });
  const usdCompact = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', notation: 'compact', maximumFractionDigits: 1 });
  const count = new Intl.NumberFormat('en-US');
  const pct = new Intl.NumberFormat('en-US', { style: 'percent', maximumFractionDigits: 0 });
  const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
  const hhmm = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });

  const money = (cents) => usd.format(cents / 100);

  // State kept between updates.
  const state = {
    updates: 0,
    last: null, // the previous dashboard
    lastAt: 0, // when the previous dashboard arrived (ms)
    colors: new Map(), // region -> color, stable once given
    ranks: new Map(), // product -> rank at the previous update
    seenAlerts: null, // keys of the alerts shown already; null before the first update
  };

  // el makes an HTML element with a class and text.
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // svg makes an SVG element with attributes, appended to parent.
  function svg(tag, attrs, parent) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (parent) parent.appendChild(e);
    return e;
  }

  // setFigure shows text in an element, with its raw value in a data
  // attribute, and briefly marks it when it changed.
  function setFigure(node, text, attr, value) {
    if (node.textContent !== text) {
      node.textContent = text;
      node.classList.remove('bump');
      void node.offsetWidth; // restart the animation
      node.classList.add('bump');
    }
    node.dataset[attr] = String(value);
  }

  // colorOf gives each region a color that stays the same while the page
  // is open: new regions get the next color in name order.
  function colorOf(region) {
    if (!state.colors.has(region)) state.colors.set(region, PALETTE[state.colors.size % PALETTE.length]);
    return state.colors.get(region);
  }

  function assignColors(d) {
    const names = new Set();
    for (const r of d.regions || []) names.add(r.region);
    for (const m of d.minutes || []) names.add(m.region);
    [...names].sort().forEach(colorOf);
  }

  // ---- Connection status -------------------------------------------------

  function setStatus(s, text) {
    const node = $('status');
    node.dataset.state = s;
    $('status-text').textContent = text;
  }

  function setBanner(text) {
    const b = $('banner');
    b.hidden = !text;
    b.textContent = text || '';
  }

  // ---- Key figures -------------------------------------------------------

  function renderKPIs(d, now) {
    const t = d.total || {};
    setFigure($('total-revenue'), money(t.revenueCents || 0), 'cents', t.revenueCents || 0);
    setFigure($('total-orders'), count.format(t.orders || 0), 'value', t.orders || 0);
    setFigure($('avg-order'), money(t.avgOrderCents || 0), 'cents', t.avgOrderCents || 0);
    setFigure($('rejected'), count.format(d.rejected || 0), 'value', d.rejected || 0);
    $('rejected-card').dataset.nonzero = String((d.rejected || 0) > 0);
    setFigure($('instances'), count.format(d.instances || 0), 'value', d.instances || 0);

    renderPace(d);

    const at = d.at ? new Date(d.at) : new Date();
    const lu = $('last-update');
    lu.textContent = clock.format(at);
    lu.dateTime = at.toISOString();
    lu.dataset.at = d.at || '';
  }

  // renderPace shows, under revenue and orders, the figures of the last
  // complete minute and how they compare with the minute before.
  function renderPace(d) {
    const at = d.at ? Date.parse(d.at) : Date.now();
    const byStart = new Map(); // ms -> {orders, revenue}
    for (const m of d.minutes || []) {
      const t = Date.parse(m.start);
      const v = byStart.get(t) || { orders: 0, revenue: 0 };
      v.orders += m.orders || 0;
      v.revenue += m.revenueCents || 0;
      byStart.set(t, v);
    }
    const full = [...byStart.keys()].filter((t) => t + 60000 <= at).sort((a, b) => a - b);
    if (full.length === 0) {
      $('revenue-rate').textContent = '\u00a0';
      $('orders-rate').textContent = '\u00a0';
      return;
    }
    const last = byStart.get(full[full.length - 1]);
    const prev = full.length > 1 ? byStart.get(full[full.length - 2]) : null;
    pace($('revenue-rate'), usdCompact.format(last.revenue / 100), prev && prev.revenue, last.revenue);
    pace($('orders-rate'), count.format(last.orders), prev && prev.orders, last.orders);
  }

  function pace(node, text, before, now) {
    const parts = [el('strong', '', text), document.createTextNode(' in the last full minute')];
    if (before) {
      const change = (now - before) / before;
      const arrow = change >= 0 ? '\u25b2' : '\u25bc';
      parts.push(document.createTextNode(' '), el('span', change >= 0 ? 'up' : 'down', `${arrow} ${pct.format(Math.abs(change))}`));
    }
    node.replaceChildren(...parts);
  }

  // regionLabel shows a region id ("north-america") as a name ("North
  // America"); other names are shown as they are.
  function regionLabel(region) {
    if (!/^[a-z0-9]+([-_][a-z0-9]+)*$/.test(region)) return region;
    return region.split(/[-_]/).map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join(' ');
  }

  // ---- Revenue by region ------------------------------------------------

  // renderBars reconciles a list of bar rows keyed by key(item), so rows
  // keep their element (and the width transition) across updates.
  function renderBars(list, items, key, build, update) {
    const old = new Map([...list.children].map((li) => [li.dataset.key, li]));
    const rows = items.map((item, i) => {
      const k = key(item);
      let li = old.get(k);
      if (li) old.delete(k);
      else {
        li = build(item);
        li.dataset.key = k;
      }
      update(li, item, i);
      return li;
    });
    for (const li of old.values()) li.remove();
    rows.forEach((li, i) => {
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
    });
  }

  function barRow(withRank) {
    const li = el('li', 'bar-row');
    if (withRank) li.append(el('span', 'rank'));
    const label = el('span', 'bar-label');
    const value = el('span', 'bar-value');
    const track = el('span', 'bar-track');
    track.append(el('span', 'bar-fill'));
    li.append(label, value, track);
    return li;
  }

  function renderRegions(d) {
    const regions = d.regions || [];
    const total = regions.reduce((s, r) => s + (r.revenueCents || 0), 0);
    const max = Math.max(1, ...regions.map((r) => r.revenueCents || 0));
    $('regions-empty').hidden = regions.length > 0;
    renderBars($('regions'), regions, (r) => r.region,
      (r) => {
        const li = barRow(false);
        const sw = el('span', 'swatch');
        li.querySelector('.bar-label').append(sw, el('span', 'bar-name', regionLabel(r.region)));
        li.append(el('span', 'bar-meta'));
        return li;
      },
      (li, r) => {
        const color = colorOf(r.region);
        li.dataset.region = r.region;
        li.dataset.cents = String(r.revenueCents || 0);
        li.dataset.orders = String(r.orders || 0);
        li.querySelector('.swatch').style.background = color;
        const v = li.querySelector('.bar-value');
        v.replaceChildren(document.createTextNode(money(r.revenueCents || 0)),
          el('span', 'bar-sub', total > 0 ? pct.format((r.revenueCents || 0) / total) : ''));
        li.querySelector('.bar-meta').textContent = `${count.format(r.orders || 0)} orders · average ${money(r.avgOrderCents || 0)}`;
        const fill = li.querySelector('.bar-fill');
        fill.style.width = `${(100 * (r.revenueCents || 0)) / max}%`;
        fill.style.background = color;
      });
  }

  // ---- Revenue per minute (stacked columns) ------------------------------

  // niceStep returns a round step for about n ticks up to max.
  function niceStep(max, n) {
    const raw = max / n;
    const mag = 10 ** Math.floor(Math.log10(raw));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= raw) return m * mag;
    return 10 * mag;
  }

  function renderMinutes(d) {
    const box = $('minutes-chart');
    const width = Math.max(320, box.clientWidth);
    const height = Math.max(200, box.clientHeight);
    const minutes = d.minutes || [];
    const at = d.at ? Date.parse(d.at) : Date.now();

    const byStart = new Map(); // ms -> Map(region -> cents)
    for (const m of minutes) {
      const t = Date.parse(m.start);
      if (!byStart.has(t)) byStart.set(t, new Map());
      const cell = byStart.get(t);
      cell.set(m.region, (cell.get(m.region) || 0) + (m.revenueCents || 0));
    }
    const starts = [...byStart.keys()].sort((a, b) => a - b).slice(-MAX_MINUTES);
    const regions = [...state.colors.keys()].filter((r) => minutes.some((m) => m.region === r));

    const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img' });
    const pad = { left: 56, right: 8, top: 18, bottom: 26 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;

    if (starts.length === 0) {
      svg('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'empty-label' }, root).textContent = 'Waiting for the first orders…';
      box.replaceChildren(root);
      $('minutes-legend').replaceChildren();
      return;
    }

    const totals = starts.map((t) => [...byStart.get(t).values()].reduce((a, b) => a + b, 0));
    const maxTotal = Math.max(100, ...totals);
    const step = niceStep(maxTotal, 4);
    const top = Math.ceil(maxTotal / step) * step;
    const y = (cents) => pad.top + plotH - (plotH * cents) / top;

    for (let v = 0; v <= top + step / 2; v += step) {
      svg('line', { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), class: 'grid-line' }, root);
      svg('text', { x: pad.left - 8, y: y(v) + 4, 'text-anchor': 'end', class: 'axis-label' }, root).textContent = usdCompact.format(v / 100);
    }

    const slot = plotW / MAX_MINUTES;
    const barW = Math.min(46, slot * 0.68);
    const offset = MAX_MINUTES - starts.length; // right-align: the newest minute at the right
    const latest = starts[starts.length - 1];
    const labelEvery = slot < 44 ? 2 : 1;
    starts.forEach((t, i) => {
      const cx = pad.left + slot * (offset + i) + slot / 2;
      let acc = 0;
      const cell = byStart.get(t);
      const partial = t === latest && t + 60000 > at;
      const g = svg('g', { 'data-start': new Date(t).toISOString() }, root);
      for (const r of regions) {
        const cents = cell.get(r) || 0;
        if (cents <= 0) continue;
        const y0 = y(acc);
        acc += cents;
        const y1 = y(acc);
        const rect = svg('rect', {
          x: cx - barW / 2, y: y1, width: barW, height: Math.max(0, y0 - y1 - 1),
          rx: 2, fill: colorOf(r), class: partial ? 'seg partial' : 'seg',
        }, g);
        svg('title', {}, rect).textContent = `${hhmm.format(new Date(t))} · ${regionLabel(r)}: ${money(cents)}`;
      }
      if (acc > 0 && barW >= 26) {
        svg('text', { x: cx, y: y(acc) - 5, 'text-anchor': 'middle', class: 'total-label' }, g).textContent = usdCompact.format(acc / 100);
      }
      const fromEnd = starts.length - 1 - i;
      if (fromEnd % labelEvery === 0) {
        const label = svg('text', { x: cx, y: height - 6, 'text-anchor': 'middle', class: partial ? 'axis-label now-label' : 'axis-label' }, root);
        label.textContent = partial ? 'now' : hhmm.format(new Date(t));
      }
    });
    box.replaceChildren(root);

    const legend = $('minutes-legend');
    legend.replaceChildren(...regions.map((r) => {
      const li = el('li');
      const sw = el('span', 'swatch');
      sw.style.background = colorOf(r);
      li.append(sw, document.createTextNode(regionLabel(r)));
      return li;
    }));
  }

  // ---- Trending products ---------------------------------------------------

  function renderTrending(d) {
    const items = (d.trending || []).slice(0, 10);
    const max = Math.max(1, ...items.map((p) => p.units || 0));
    const first = state.updates === 1;
    $('trending-empty').hidden = items.length > 0;
    const ranks = new Map();
    renderBars($('trending'), items, (p) => p.productId,
      (p) => {
        const li = barRow(true);
        li.querySelector('.bar-label').append(el('span', 'bar-name mono', p.productId), el('span', 'move'));
        return li;
      },
      (li, p, i) => {
        ranks.set(p.productId, i);
        li.dataset.product = p.productId;
        li.dataset.units = String(p.units || 0);
        li.querySelector('.rank').textContent = String(i + 1);
        li.querySelector('.bar-value').textContent = `${count.format(p.units || 0)} units`;
        li.querySelector('.bar-fill').style.width = `${(100 * (p.units || 0)) / max}%`;
        const move = li.querySelector('.move');
        const before = state.ranks.get(p.productId);
        if (first) {
          move.textContent = '';
          move.className = 'move';
        } else if (before === undefined) {
          move.textContent = 'new';
          move.className = 'move new';
        } else if (before > i) {
          move.textContent = `▲${before - i}`;
          move.className = 'move up';
        } else if (before < i) {
          move.textContent = `▼${i - before}`;
          move.className = 'move down';
        } else if (move.classList.contains('new')) {
          // keep "new" until the product moves
        } else {
          move.textContent = '';
          move.className = 'move';
        }
      });
    state.ranks = ranks;
  }

  // ---- Customer segments ---------------------------------------------------

  function renderSegments(d) {
    const cells = new Map(); // "segment/tier" -> segment
    for (const s of d.segments || []) cells.set(`${s.segment}/${s.tier}`, s);
    const get = (seg, tier) => cells.get(`${seg}/${tier}`) || { customers: 0, revenueCents: 0 };
    const tiers = [...TIERS];
    for (const s of d.segments || []) if (!tiers.includes(s.tier)) tiers.push(s.tier);

    const body = $('segments').tBodies[0];
    let totNew = 0, totRet = 0, totRev = 0;
    body.replaceChildren(...tiers.map((tier) => {
      const n = get('new', tier), r = get('returning', tier);
      totNew += n.customers || 0;
      totRet += r.customers || 0;
      const rev = (n.revenueCents || 0) + (r.revenueCents || 0);
      totRev += rev;
      const tr = el('tr');
      tr.dataset.tier = tier;
      const name = el('td');
      const badge = el('span', `tier tier-${tier}`);
      badge.append(el('span', 'tier-dot'), document.createTextNode(tier));
      name.append(badge);
      tr.append(name, segCell('new', tier, n), segCell('returning', tier, r));
      const revCell = el('td', 'num', money(rev));
      revCell.dataset.cents = String(rev);
      tr.append(revCell);
      return tr;
    }));

    const foot = $('segments').tFoot;
    const tr = el('tr');
    tr.append(el('td', '', 'All'), el('td', 'num', count.format(totNew)), el('td', 'num', count.format(totRet)), el('td', 'num', money(totRev)));
    foot.replaceChildren(tr);

    split($('segments-split'), $('segments-split-legend'), [
      { label: 'Returning', value: totRet, color: '#3b5bdb' },
      { label: 'New', value: totNew, color: '#91a7ff' },
    ]);
    split($('tiers-split'), $('tiers-split-legend'), tiers.map((tier) => ({
      label: tier.charAt(0).toUpperCase() + tier.slice(1),
      value: (get('new', tier).revenueCents || 0) + (get('returning', tier).revenueCents || 0),
      color: TIER_COLORS[tier] || '#868e96',
    })));
  }

  // split draws parts as a thin stacked bar with a legend of their shares.
  function split(bar, legend, parts) {
    const all = Math.max(1, parts.reduce((s, p) => s + p.value, 0));
    bar.replaceChildren(...parts.map((p) => {
      const span = el('span');
      span.style.width = `${(100 * p.value) / all}%`;
      span.style.background = p.color;
      span.title = p.label;
      return span;
    }));
    legend.replaceChildren(...parts.map((p) => {
      const span = el('span');
      const sw = el('span', 'swatch');
      sw.style.background = p.color;
      span.append(sw, document.createTextNode(`${p.label} ${pct.format(p.value / all)}`));
      return span;
    }));
  }

  function segCell(segment, tier, s) {
    const td = el('td', 'num');
    td.dataset.segment = segment;
    td.dataset.tier = tier;
    td.dataset.customers = String(s.customers || 0);
    td.dataset.cents = String(s.revenueCents || 0);
    td.append(document.createTextNode(count.format(s.customers || 0)), el('span', 'sub', money(s.revenueCents || 0)));
    td.title = `${segment} ${tier}: ${count.format(s.customers || 0)} customers, ${money(s.revenueCents || 0)}`;
    return td;
  }

  // ---- Low-stock alerts ------------------------------------------------------

  function ago(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s}s ago`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ago`;
    return `${Math.floor(m / 60)}h ago`;
  }

  function renderAlerts(d) {
    const alerts = d.alerts || [];
    const list = $('alerts');
    const seen = new Set();
    const firstTime = state.seenAlerts === null;
    const items = alerts.map((a) => {
      const key = `${a.productId}@${a.at}`;
      seen.add(key);
      const li = el('li', 'alert');
      if (!firstTime && !state.seenAlerts.has(key)) li.classList.add('fresh');
      li.dataset.product = a.productId;
      li.dataset.stock = String(a.stock);
      li.dataset.at = a.at;
      const icon = el('span', a.stock <= 0 ? 'alert-icon out' : 'alert-icon', '!');
      const product = el('span', 'alert-product mono', a.productId);
      const time = el('time', 'alert-time', ago(Date.now() - Date.parse(a.at)));
      time.dateTime = a.at;
      time.title = new Date(a.at).toLocaleString();
      const stock = el('span', 'alert-stock', a.stock <= 0 ? `out of stock (threshold ${a.threshold})` : `${count.format(a.stock)} left · threshold ${a.threshold}`);
      li.append(icon, product, time, stock);
      return li;
    });
    // Keep the highlight of alerts still animating: reuse their element.
    const old = new Map([...list.children].map((li) => [`${li.dataset.product}@${li.dataset.at}`, li]));
    list.replaceChildren(...items.map((li) => {
      const prev = old.get(`${li.dataset.product}@${li.dataset.at}`);
      if (prev) {
        prev.querySelector('.alert-time').textContent = li.querySelector('.alert-time').textContent;
        return prev;
      }
      return li;
    }));
    state.seenAlerts = seen;
    $('alerts-empty').hidden = alerts.length > 0;
    const badge = $('alerts-count');
    badge.textContent = count.format(alerts.length);
    badge.dataset.value = String(alerts.length);
  }

  function tickAlertTimes() {
    for (const t of document.querySelectorAll('#alerts .alert-time')) {
      t.textContent = ago(Date.now() - Date.parse(t.dateTime));
    }
  }

  // ---- Updates -----------------------------------------------------------

  function render(d) {
    const now = Date.now();
    state.updates++;
    state.last = d;
    state.lastAt = now;
    assignColors(d);
    renderKPIs(d, now);
    renderRegions(d);
    renderMinutes(d);
    renderTrending(d);
    renderSegments(d);
    renderAlerts(d);
    document.body.dataset.updates = String(state.updates);
  }

  function onDashboard(ev) {
    let d;
    try {
      d = JSON.parse(ev.data);
    } catch (err) {
      console.warn('dashboard event is not JSON', err);
      return;
    }
    setStatus('live', 'Live');
    setBanner('');
    render(d);
  }

  function onUnavailable(ev) {
    let msg = 'the figures are unavailable';
    try {
      msg = JSON.parse(ev.data).error || msg;
    } catch (err) { /* keep the default */ }
    setStatus('unavailable', 'Unavailable');
    const shown = state.last ? ` The figures shown are from ${clock.format(new Date(state.last.at))}.` : '';
    setBanner(`Figures unavailable, retrying (${msg}). The app may be rebalancing or restoring its state.${shown}`);
  }

  let source = null;
  let retryTimer = 0;

  function connect() {
    clearTimeout(retryTimer);
    if (source) source.close();
    source = new EventSource('api/events');
    source.addEventListener('open', () => {
      if ($('status').dataset.state !== 'live') setStatus('connecting', 'Connected, waiting…');
    });
    source.addEventListener('dashboard', onDashboard);
    source.addEventListener('unavailable', onUnavailable);
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (the server answered with an error): retry
        // ourselves.
        setStatus('offline', 'Offline');
        retryTimer = setTimeout(connect, 3000);
      } else {
        setStatus('reconnecting', 'Reconnecting…');
      }
    });
  }

  function watchdog() {
    const s = $('status').dataset.state;
    if (s === 'live' && Date.now() - state.lastAt > STALE_AFTER_MS) setStatus('stale', 'Stale');
    tickAlertTimes();
  }

  let resizeFrame = 0;
  function onResize() {
    cancelAnimationFrame(resizeFrame);
    resizeFrame = requestAnimationFrame(() => {
      if (state.last) renderMinutes(state.last);
    });
  }

  function start() {
    renderMinutes({ minutes: [] });
    connect();
    setInterval(watchdog, 1000);
    if (typeof ResizeObserver === 'function') new ResizeObserver(onResize).observe($('minutes-chart'));
    else window.addEventListener('resize', onResize);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
