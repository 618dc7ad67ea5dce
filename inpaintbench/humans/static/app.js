// inpaintbench rating page: fetches pairs from /api/next, posts choices to /api/judgment.
// No external scripts; every choice is committed by the server before the next pair is shown.
(function () {
  "use strict";
  var params = new URLSearchParams(window.location.search);
  var token = params.get("token");
  var state = { rater: null, pair: null, shownAt: 0, pausedMs: 0, pausedAt: 0, busy: false, gtShown: false,
                paused: false, done: false };
  var $ = function (id) { return document.getElementById(id); };

  function headers(extra) {
    var h = extra || {};
    if (token) { h["X-Inpaintbench-Token"] = token; }
    return h;
  }
  function withToken(url) { return token ? url + (url.indexOf("?") < 0 ? "?" : "&") + "token=" + encodeURIComponent(token) : url; }
  function setState(name) { document.body.setAttribute("data-state", name); }
  function message(text) { $("message").textContent = text || ""; }
  function show(id, on) { $(id).hidden = !on; }

  function progress(p) {
    if (p && typeof p.judged === "number") { $("progress").textContent = p.judged + " / " + p.total; }
  }

  function api(method, url, body) {
    var opts = { method: method, headers: headers(body ? { "Content-Type": "application/json" } : {}),
                 credentials: "same-origin" };
    if (body) { opts.body = JSON.stringify(body); }
    return fetch(url, opts).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) { throw new Error(data.error || ("HTTP " + r.status)); }
        return data;
      });
    });
  }

  function loadImage(img, url) {
    return new Promise(function (resolve, reject) {
      img.onload = function () { resolve(); };
      img.onerror = function () { reject(new Error("could not load " + url)); };
      img.src = withToken(url);
    });
  }

  function next() {
    state.busy = true;
    return api("GET", "/api/next?rater=" + encodeURIComponent(state.rater)).then(function (data) {
      progress(data.progress);
      if (data.done) {
        state.done = true; state.pair = null;
        show("rating", false); show("paused", false); show("done", true); setState("done");
        return;
      }
      state.pair = data; state.gtShown = false;
      show("gt-figure", false);
      $("img-gt").removeAttribute("src");
      $("show-gt").disabled = !data.gt_available;
      $("gt-note").textContent = data.gt_available ? "" : "The ground truth is not available for these runs.";
      document.querySelectorAll(".choice").forEach(function (b) { b.classList.remove("picked"); });
      return Promise.all([loadImage($("img-input"), data.images.input), loadImage($("img-left"), data.images.left),
                          loadImage($("img-right"), data.images.right)]).then(function () {
        document.querySelector("main").setAttribute("data-pair-id", data.pair_id);
        state.shownAt = performance.now(); state.pausedMs = 0;
        setState(state.paused ? "paused" : "rating");
      });
    }).then(function () { state.busy = false; }, function (err) { state.busy = false; message(err.message); });
  }

  function choose(choice) {
    if (state.busy || state.paused || state.done || !state.pair) { return; }
    state.busy = true; message("");
    var ms = Math.max(0, Math.round(performance.now() - state.shownAt - state.pausedMs));
    var picked = choice === "left" ? "choose-left" : choice === "right" ? "choose-right" : null;
    if (picked) { $(picked).classList.add("picked"); }
    setState("saving");
    api("POST", "/api/judgment", { pair_id: state.pair.pair_id, rater: state.rater, choice: choice, ms: ms,
                                   gt_shown: state.gtShown })
      .then(function (data) { progress(data.progress); state.busy = false; return next(); },
            function (err) { state.busy = false; setState("rating"); message("Not saved: " + err.message); });
  }

  function showGt() {
    if (!state.pair || !state.pair.gt_available || state.paused) { return; }
    state.gtShown = true;
    loadImage($("img-gt"), state.pair.images.gt).then(function () { show("gt-figure", true); },
                                                      function (err) { message(err.message); });
  }

  function togglePause() {
    if (!state.rater || state.done) { return; }
    state.paused = !state.paused;
    if (state.paused) {
      state.pausedAt = performance.now();
      show("rating", false); show("paused", true); setState("paused"); $("pause").textContent = "Resume";
    } else {
      state.pausedMs += performance.now() - state.pausedAt;
      show("paused", false); show("rating", true); setState("rating"); $("pause").textContent = "Pause";
    }
  }

  function start(name) {
    state.rater = name;
    $("rater").blur();
    try { window.localStorage.setItem("inpaintbench-rater", name); } catch (e) { /* private mode */ }
    $("rater-label").textContent = "Rater: " + name;
    show("start", false); show("rating", true);
    next();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var saved = params.get("rater");
    try { saved = saved || window.localStorage.getItem("inpaintbench-rater"); } catch (e) { /* ignore */ }
    if (saved) { $("rater").value = saved; }
    $("start-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var name = $("rater").value.trim();
      if (name) { start(name); }
    });
    $("choose-left").addEventListener("click", function () { choose("left"); });
    $("choose-right").addEventListener("click", function () { choose("right"); });
    $("choose-tie").addEventListener("click", function () { choose("tie"); });
    $("show-gt").addEventListener("click", showGt);
    $("pause").addEventListener("click", togglePause);
    $("resume").addEventListener("click", togglePause);
    document.addEventListener("keydown", function (ev) {
      if (!state.rater || ev.target === $("rater")) { return; }
      if (ev.key === "ArrowLeft") { ev.preventDefault(); choose("left"); }
      else if (ev.key === "ArrowRight") { ev.preventDefault(); choose("right"); }
      else if (ev.key === "ArrowDown") { ev.preventDefault(); choose("tie"); }
      else if (ev.key === "g" || ev.key === "G") { showGt(); }
      else if (ev.key === "p" || ev.key === "P") { togglePause(); }
    });
  });
})();
