/** The console's stylesheet and enhancement script, served from /console/assets/ (no inline code: the CSP forbids it). */

/** Colours pass WCAG AA on their backgrounds; the layout is one column below 40rem (phones, 375 px). */
export const CONSOLE_CSS = `*{box-sizing:border-box}
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f6f6f4;color:#1d1d1b}
a{color:#0b4f9c}a:focus-visible,button:focus-visible,textarea:focus-visible,input:focus-visible,select:focus-visible{outline:3px solid #0b4f9c;outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:.5rem;top:.5rem;background:#fff;padding:.5rem}
.top{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1.5rem;padding:.75rem 1rem;background:#1d1d1b;color:#fff}
.top a{color:#fff}.brand{font-weight:700}
.top nav ul{display:flex;gap:1rem;list-style:none;margin:0;padding:0}
.top a[aria-current=page]{text-decoration:underline 3px}
.who{margin-left:auto;display:flex;gap:.75rem;align-items:center}
.who button{background:transparent;color:#fff;border-color:#fff}
main{max-width:60rem;margin:0 auto;padding:1rem}
h1{font-size:1.6rem;margin:.5rem 0 1rem}h2{font-size:1.15rem;margin:0}main>h2,main>section>h2{margin:1.5rem 0 .5rem}
.cards{list-style:none;margin:0;padding:0;display:grid;gap:1rem}
.card{background:#fff;border:1px solid #ccc;border-radius:8px;padding:1rem}
.meta{color:#4a4a48;margin:.25rem 0}
.reason{white-space:pre-wrap;overflow-wrap:anywhere}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.4rem 1rem;background:#fff;border:1px solid #ccc;border-radius:8px;padding:1rem}
.facts dt{font-weight:600}.facts dd{margin:0;overflow-wrap:anywhere}
.scope-write{color:#8a1c00;font-weight:700}
.badge{margin-left:.5rem;background:#8a1c00;color:#fff;border-radius:4px;padding:0 .4rem}
.notice{background:#fff8d6;border:1px solid #b59b00;border-radius:6px;padding:.75rem}
form.decide{margin-top:1rem;display:grid;gap:.5rem;max-width:32rem}
textarea,input,select{font:inherit;padding:.5rem;border:1px solid #666;border-radius:6px;width:100%}
.buttons{display:flex;gap:.75rem;flex-wrap:wrap}
button{font:inherit;padding:.55rem 1.2rem;border-radius:6px;border:1px solid #1d1d1b;background:#1d1d1b;color:#fff;cursor:pointer;min-height:44px}
button.approve{background:#0a5c1c;border-color:#0a5c1c}button.deny,button.revoke{background:#a10f0f;border-color:#a10f0f}
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:.45rem;border-bottom:1px solid #ddd;vertical-align:top}
.table-wrap{overflow-x:auto}
.filters{display:grid;grid-template-columns:repeat(auto-fit,minmax(14rem,1fr));gap:0 1rem;background:#fff;border:1px solid #ccc;border-radius:8px;padding:1rem;margin-bottom:1rem}
.filters .buttons{align-items:center}.button-link{display:inline-block;padding:.55rem 1rem}
td.details{overflow-wrap:anywhere}
.code{font-family:ui-monospace,monospace;letter-spacing:.08em}
.proof-failed{display:block;color:#fff;background:#a10f0f;border-radius:4px;padding:.2rem .5rem;font-weight:700}
.proof-summary{background:#fff;border:1px solid #ccc;border-radius:8px;padding:.5rem 1rem;margin-bottom:1rem}
.recent{margin-top:.75rem}.recent h2,.recent h3{font-size:1rem;margin:.5rem 0 .25rem}.recent ul{margin:0;padding-left:1.2rem}.recent li{overflow-wrap:anywhere}
@media (max-width:40rem){.facts{grid-template-columns:1fr}.facts dd{margin-bottom:.4rem}.who{margin-left:0}}
.chart{margin:1.5rem 0;background:#fff;border:1px solid #ccc;border-radius:8px;padding:1rem}.chart svg{display:block;max-width:100%;height:auto;margin:.5rem 0}
@media print{.top,.skip,form,button{display:none}body{background:#fff;font-size:11pt}main{max-width:none;padding:0}.card,.facts,.chart{border-color:#999}
.chart,table,tr{break-inside:avoid}.chart{-webkit-print-color-adjust:exact;print-color-adjust:exact}a{color:#000;text-decoration:none}@page{margin:1.5cm}}
`;

/**
 * Live parts: time left counts down (elements with data-expires), corrected by the broker's event
 * stream for that session (data-live, SSE): approval, end, revoke and expiry show at once.
 * Nothing else needs script.
 */
export const CONSOLE_JS = `'use strict';
(function () {
  function left(ms) {
    if (ms <= 0) return 'ended';
    var s = Math.floor(ms / 1000), m = Math.floor(s / 60), h = Math.floor(m / 60);
    return h > 0 ? h + ' h ' + (m % 60) + ' min' : m > 0 ? m + ' min ' + (s % 60) + ' s' : s + ' s';
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll('[data-expires]').forEach(function (el) {
      el.textContent = left(Date.parse(el.getAttribute('data-expires')) - now);
    });
  }
  document.querySelectorAll('[data-live]').forEach(function (el) {
    if (!window.EventSource) return;
    var source = new EventSource(el.getAttribute('data-live'));
    source.addEventListener('state', function (event) {
      var value = JSON.parse(event.data);
      if (value.state === 'active' && value.expires_at) {
        el.setAttribute('data-expires', value.expires_at);
      } else {
        el.removeAttribute('data-expires');
        el.textContent = value.state;
        el.setAttribute('data-state', value.state);
        source.close();
      }
      tick();
    });
  });
  // A recorded session's replay (asciinema-player, loaded only on pages that show one).
  document.querySelectorAll('[data-cast]').forEach(function (el) {
    if (!window.AsciinemaPlayer) return;
    // Pauses longer than 2 s are shortened to 2 s (imp replay --idle-limit 2): nobody waits through a coffee break.
    window.AsciinemaPlayer.create(el.getAttribute('data-cast'), el, { fit: 'width', idleTimeLimit: 2 });
  });
  // Watching a live session: one event stream (the API's watch, joined as this person) feeds the
  // player's terminal through a driver of our own and the action table. Text goes in as textContent.
  document.querySelectorAll('[data-watch]').forEach(function (el) {
    if (!window.EventSource) return;
    var status = document.getElementById('watch-status');
    var actions = document.getElementById('watch-actions');
    var say = function (text) { if (status) status.textContent = text; };
    var sink = null, backlog = [];
    var feed = function (kind, data) { if (sink) sink(kind, data); else backlog.push([kind, data]); };
    var source = new EventSource(el.getAttribute('data-watch'));
    say('Connecting…');
    var timeLeft = document.getElementById('watch-left');
    source.addEventListener('hello', function (event) {
      var value = JSON.parse(event.data);
      // Joining may have started a supervised session's time: the stream's view is the current one.
      if (timeLeft && value.session.expires_at) timeLeft.setAttribute('data-expires', value.session.expires_at);
      say('Watching live. Supervisors now: ' + value.supervisors.join(', ') + '.');
    });
    source.addEventListener('output', function (event) {
      var value = JSON.parse(event.data);
      if (value.header) feed('reset', { size: { cols: value.header.width, rows: value.header.height } });
      value.events.forEach(function (e) {
        if (e[1] === 'o') feed('output', e[2]);
        else if (e[1] === 'r') {
          var size = /^(d+)x(d+)$/.exec(e[2]);
          if (size) feed('resize', { cols: Number(size[1]), rows: Number(size[2]) });
        }
      });
    });
    source.addEventListener('action', function (event) {
      var a = JSON.parse(event.data);
      // Written before the call is forwarded; its outcome follows as its own event.
      if (a.type === 'action.requested' || !actions) return;
      var outcome = a.type.replace('action.', '') + (a.rule ? ' (rule ' + a.rule + ')' : '');
      var row = document.createElement('tr');
      [a.ts.replace('T', ' ').slice(0, 19) + ' UTC', (a.method || '?') + ' ' + (a.path || '?'),
        a.status === null ? '—' : String(a.status), outcome].forEach(function (text, i) {
        var cell = document.createElement('td');
        if (i === 1) cell.className = 'code';
        cell.textContent = text;
        row.appendChild(cell);
      });
      actions.appendChild(row);
    });
    source.addEventListener('supervision', function (event) {
      var value = JSON.parse(event.data);
      say('Watching live. ' + value.who + ' ' + value.type + '. Supervisors now: ' + value.supervisors.join(', ') + '.');
    });
    source.addEventListener('end', function (event) {
      var value = JSON.parse(event.data);
      // Closed here, or EventSource would reconnect, which is a new join.
      source.close();
      if (timeLeft) {
        timeLeft.removeAttribute('data-expires');
        timeLeft.textContent = value.state;
      }
      say('The session is ' + value.state + (value.by ? ' by ' + value.by : '') + (value.comment ? ' (“' + value.comment + '”)' : '') + '. Watching stopped.');
    });
    source.addEventListener('error', function () {
      if (source.readyState === 2) say('Not watching: the broker refused or the connection closed. Reload the page to see why.');
    });
    if (!window.AsciinemaPlayer) return;
    // A live driver: no timeline, no seeking; output is fed as it arrives (what came before it at once).
    window.AsciinemaPlayer.create(function (callbacks) {
      var started = null;
      return {
        play: function () {
          if (started !== null) return true;
          started = performance.now();
          callbacks.dispatch('play');
          callbacks.dispatch('playing');
          sink = function (kind, data) { callbacks.dispatch(kind, data); };
          backlog.splice(0).forEach(function (item) { sink(item[0], item[1]); });
          return true;
        },
        getTiming: function () {
          return { time: started === null ? null : (performance.now() - started) / 1000, rate: started === null ? 0 : 1, sampledAt: performance.timeOrigin + performance.now() };
        }
      };
    }, el, { fit: 'width', autoPlay: true, controls: false });
  });
  tick();
  setInterval(tick, 1000);
})();
`;
