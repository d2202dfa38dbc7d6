// callfleet supervisor panel: redraws the alerts strip and the four sections from each
// Server-Sent Event.
// No framework, no build step. Every value from the server is set with textContent or an
// attribute, never parsed as HTML.
(function () {
  "use strict";

  var STATE_LABELS = {
    logged_out: "logged out", available: "available", reserved: "ringing",
    ringing: "ringing", in_call: "in call", wrap_up: "wrap-up", paused: "paused"
  };
  var SVG = "http://www.w3.org/2000/svg";
  var lastEventAt = 0;
  var lastSnapshot = null;

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) { return; }
        if (k === "text") { node.textContent = String(v); } else { node.setAttribute(k, v === true ? "" : String(v)); }
      });
    }
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function td(text) { return el("td", { text: text }); }

  function clock(ms) {
    var s = Math.max(0, Math.floor((ms || 0) / 1000));
    var h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, r = s % 60;
    var mm = h > 0 && m < 10 ? "0" + m : String(m);
    return (h > 0 ? h + ":" : "") + mm + ":" + (r < 10 ? "0" + r : r);
  }

  function csrf() {
    var meta = document.querySelector("meta[name=csrf]");
    return meta ? meta.getAttribute("content") : null;
  }

  function say(text, isError) {
    var m = $("message");
    m.textContent = text;
    m.className = isError ? "error" : "";
  }

  function sparkline(values, max) {
    var w = 120, h = 24, n = values.length;
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("width", w);
    svg.setAttribute("height", h);
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    svg.setAttribute("class", "sparkline");
    var top = max;
    values.forEach(function (v) { if (v !== null && v > top) { top = v; } });
    if (!(top > 0)) { top = 1; }
    var d = "", pen = false;
    values.forEach(function (v, i) {
      if (v === null) { pen = false; return; }
      var x = n > 1 ? (i * w) / (n - 1) : 0;
      var y = h - 1 - (v / top) * (h - 2);
      d += (pen ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1) + " ";
      pen = true;
    });
    var path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d.trim() || "M0 " + (h - 1));
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", "currentColor");
    path.setAttribute("stroke-width", "1.5");
    svg.appendChild(path);
    return svg;
  }

  function renderNodes(nodes) {
    var body = $("nodes-body");
    body.replaceChildren.apply(body, nodes.map(function (n) {
      var state = [n.alive ? "alive" : "dead"];
      if (n.draining) { state.push("draining"); }
      if (n.refusing) { state.push("refusing"); }
      var spark = el("td", { "class": "spark", title: "calls over the last 10 minutes" });
      spark.appendChild(sparkline(n.spark_calls || [], 1));
      return el("tr", { "data-testid": "node-" + n.name, "class": n.alive ? "alive" : "dead" }, [
        td(n.name), td(n.role), td(state.join(", ")), td(n.calls + " / " + n.capacity),
        td(n.cpu_pct.toFixed(1) + " %"), td(n.load1.toFixed(2)), td(String(n.shed_level)), spark
      ]);
    }));
  }

  function renderQueues(queues) {
    var body = $("queues-body");
    body.replaceChildren.apply(body, queues.map(function (q) {
      return el("tr", { "data-testid": "queue-" + q.name }, [
        td(q.name), td(String(q.waiting)),
        td(q.longest_wait_ms === null ? "-" : clock(q.longest_wait_ms)),
        td(String(q.available)), td(String(q.busy)), td(String(q.paused)),
        td(String(q.answered_today)), td(String(q.abandoned_today)),
        td(String(q.transferred_today)),
        td(q.service_level === null ? "-" : Math.round(q.service_level * 100) + " %")
      ]);
    }));
  }

  function renderAgents(agents) {
    var grid = $("agents-grid");
    grid.replaceChildren.apply(grid, agents.map(function (a) {
      var holdsCall = a.state === "reserved" || a.state === "ringing" || a.state === "in_call";
      var tile = el("div", { "class": "tile " + a.state, "data-testid": "agent-" + a.extension, "data-state": a.state }, [
        el("div", { "class": "who" }, [el("b", { text: a.extension }), " " + a.name]),
        el("div", { "class": "what", text: (STATE_LABELS[a.state] || a.state) + " " + clock(a.state_for_ms) })
      ]);
      if (a.call) {
        tile.appendChild(el("div", { "class": "call", text: (a.call.caller || "call") + " on " + a.call.node + " " + clock(a.call.duration_ms) }));
      }
      tile.appendChild(el("div", { "class": "actions" }, [
        el("button", { "data-action": "pause", "data-ext": a.extension, "data-paused": String(a.paused),
          "data-testid": "pause-" + a.extension, text: a.paused ? "unpause" : "pause" }),
        el("button", { "data-action": "logout", "data-ext": a.extension, "data-testid": "logout-" + a.extension,
          disabled: holdsCall || a.state === "logged_out",
          title: holdsCall ? "the agent is in a call" : null, text: "log out" })
      ]));
      return tile;
    }));
  }

  var MODE_TITLES = { listen: null, whisper: "the agent hears you, the caller does not",
    barge: "the agent and the caller both hear you" };
  var MODE_DONE = { listen: "listening on ", whisper: "whispering from ", barge: "joined the call from " };

  function renderCalls(calls) {
    var body = $("calls-body");
    body.replaceChildren.apply(body, calls.map(function (c) {
      return el("tr", { "data-testid": "call-" + c.call_id, "data-call": c.call_id }, [
        td(c.node), td(c.caller), td(c.dialled), td(c.state), td(c.queue || ""), td(c.agent || ""),
        td(clock(c.duration_ms)),
        el("td", null, ["listen", "whisper", "barge"].map(function (mode) {
          return el("button", { "data-action": mode, "data-call": c.call_id,
            "data-testid": mode + "-" + c.call_id, disabled: c.state !== "talking",
            title: c.state !== "talking" ? "listen-in starts once an agent answers" : MODE_TITLES[mode],
            text: mode.charAt(0).toUpperCase() + mode.slice(1) });
        }).concat([el("a", { href: "/calls/" + encodeURIComponent(c.call_id) + "/trace",
          "data-testid": "trace-" + c.call_id, title: "the call's SIP messages so far", text: "Trace" })]))
      ]);
    }));
  }

  function renderAlerts(alerts, now) {
    var list = $("alerts-list");
    if (!list) { return; }
    list.replaceChildren.apply(list, (alerts || []).map(function (a) {
      return el("li", { "class": a.severity, "data-testid": "alert-" + a.kind + "-" + a.subject }, [
        el("strong", { text: a.severity }), " " + a.message + " ",
        el("span", { "class": "since", text: "for " + clock(now - a.raised_at_ms) })
      ]);
    }));
    $("alerts").hidden = !(alerts && alerts.length);
  }

  function renderStatus() {
    var status = $("status");
    var s = lastSnapshot;
    var quiet = Date.now() - lastEventAt > 5000;
    if (!s) {
      status.textContent = "waiting for the first snapshot";
    } else if (s.stale) {
      status.textContent = "stale: the database did not answer at " + new Date(s.stale_since_ms).toLocaleTimeString() + " (served by " + s.served_by + ")";
    } else if (quiet) {
      status.textContent = "stale: no update from " + s.served_by + " since " + new Date(lastEventAt).toLocaleTimeString();
    } else {
      status.textContent = "live (served by " + s.served_by + ", " + new Date(s.taken_at_ms).toLocaleTimeString() + ")";
    }
    status.className = "status" + (!s || s.stale || quiet ? " stale" : "");
  }

  function render(s) {
    lastSnapshot = s;
    renderAlerts(s.alerts, s.taken_at_ms);
    renderNodes(s.nodes);
    renderQueues(s.queues);
    renderAgents(s.agents);
    renderCalls(s.calls);
    renderStatus();
  }

  function post(url, body, done) {
    var headers = { "Content-Type": "application/json" };
    var token = csrf();
    if (token) { headers["X-CSRF-Token"] = token; }
    fetch(url, { method: "POST", headers: headers, body: JSON.stringify(body), credentials: "same-origin" })
      .then(function (res) {
        if (res.ok) { say(done, false); return null; }
        return res.text().then(function (text) {
          var msg = text;
          try { msg = JSON.parse(text).error || text; } catch (e) { /* plain text body */ }
          say("refused (" + res.status + "): " + msg, true);
        });
      })
      .catch(function (err) { say("request failed: " + err, true); });
  }

  function onClick(ev) {
    var b = ev.target.closest("button[data-action]");
    if (!b || b.disabled) { return; }
    var ext = b.getAttribute("data-ext");
    var call = b.getAttribute("data-call");
    var action = b.getAttribute("data-action");
    switch (action) {
      case "pause":
        var pause = b.getAttribute("data-paused") !== "true";
        post("/api/v1/agents/" + encodeURIComponent(ext) + "/pause", { paused: pause },
          (pause ? "paused " : "unpaused ") + ext);
        break;
      case "logout":
        post("/api/v1/agents/" + encodeURIComponent(ext) + "/logout", {}, "logged out " + ext);
        break;
      case "listen":
      case "whisper":
      case "barge":
        var device = $("my-device").value.trim();
        if (!device) { say("enter your phone's extension to listen in", true); $("my-device").focus(); return; }
        post("/api/v1/calls/" + encodeURIComponent(call) + "/listen", { device: device, mode: action },
          MODE_DONE[action] + device);
        break;
    }
  }

  function start() {
    var input = $("my-device");
    try {
      if (!input.value && window.localStorage) { input.value = localStorage.getItem("callfleet.device") || ""; }
      input.addEventListener("change", function () { localStorage.setItem("callfleet.device", input.value.trim()); });
    } catch (e) { /* storage disabled: the field still works for this page */ }
    document.addEventListener("click", onClick);
    var source = new EventSource("/api/v1/panel/events");
    source.addEventListener("snapshot", function (ev) {
      lastEventAt = Date.now();
      try { render(JSON.parse(ev.data)); } catch (e) { say("bad snapshot: " + e, true); }
    });
    source.onerror = function () { renderStatus(); };
    setInterval(renderStatus, 1000);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
