// One global checkpoint slider driving every view of a tdw report page.
// Reads #tdw-data ({epochs, views: [{figure, frames, frame_of, indicators}]}) and exposes
// window.tdwReport = {show, jumpToEpoch, update, ready, epochs, views} for scripts, tests and benchmarks.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("tdw-data").textContent);
  var epochs = data.epochs;
  var slider = document.getElementById("tdw-slider");
  var label = document.getElementById("tdw-position");
  var jump = document.getElementById("tdw-epoch");
  var current = epochs.length - 1;
  var views = [];

  // The epoch indicators are drawn over each view as lines of our own, not moved as Plotly
  // shapes: moving a shape makes Plotly recompute and redraw the whole figure (6-35 ms per view
  // measured, bench/bench_views.py --artifacts), moving a line costs nothing. The shapes stay
  // in the figure files (HTML, PNG, SVG); in the report they are hidden and give the lines
  // their axes, extent and style.
  function makeMarks(view, shapes) {
    return view.indicators.map(function (k) {
      var s = shapes[k], line = s.line || {};
      s.visible = false;
      var el = document.createElement("div");
      el.className = "tdw-indicator";
      el.style.borderLeft = (line.width || 1.5) + "px " + (line.dash && line.dash !== "solid" ? "dashed" : "solid") +
        " " + (line.color || "#555");
      view.div.appendChild(el);
      return {el: el, width: line.width || 1.5, xref: s.xref || "x", yref: s.yref || "paper",
              y0: s.y0 === undefined ? 0 : s.y0, y1: s.y1 === undefined ? 1 : s.y1};
    });
  }

  function axisName(ref) { var id = ref.split(" ")[0]; return id.charAt(0) + "axis" + id.slice(1); }

  // Place a view's lines at view.epoch on the axes as Plotly last drew them (so also after a
  // zoom); a line outside the visible epoch range is hidden.
  function placeMarks(view) {
    var full = view.div._fullLayout;
    if (!full) return;
    view.marks.forEach(function (m) {
      var xa = full[axisName(m.xref)];
      var ya = m.yref === "paper" ? null : full[axisName(m.yref.indexOf("domain") > 0 ? m.yref : xa.anchor)];
      var top = ya ? ya._offset : full._size.t, height = ya ? ya._length : full._size.h;
      var x = xa.l2p(xa.d2l(view.epoch));
      m.el.dataset.epoch = view.epoch;
      m.el.style.display = x >= -0.5 && x <= xa._length + 0.5 ? "" : "none";
      m.el.style.left = (xa._offset + x - m.width / 2) + "px";
      m.el.style.top = (top + (1 - m.y1) * height) + "px";
      m.el.style.height = ((m.y1 - m.y0) * height) + "px";
    });
  }

  function update(view, i) {
    view.epoch = epochs[i];
    placeMarks(view);
    // Frames are subsampled: between two shown checkpoints only the indicator moves, so
    // restyle the traces only when the frame changes (the expensive part of a step).
    var frame = view.frames ? view.frame_of[i] : null;
    if (!view.frames || frame === view.shownFrame) return Promise.resolve();
    view.shownFrame = frame;
    return Plotly.restyle(view.div, view.frames.updates[frame], view.frames.traces);
  }

  function show(i) {
    i = Math.max(0, Math.min(epochs.length - 1, Math.round(i)));
    current = i;
    slider.value = i;
    label.textContent = "checkpoint #" + i + " of " + (epochs.length - 1) + " \u00b7 epoch " + epochs[i];
    return Promise.all(views.map(function (v) { return update(v, i); }));
  }

  function nearest(epoch) {
    var best = 0;
    for (var i = 1; i < epochs.length; i++) {
      if (Math.abs(epochs[i] - epoch) < Math.abs(epochs[best] - epoch)) best = i;
    }
    return best;
  }

  function jumpToEpoch(epoch) { return show(nearest(Number(epoch))); }

  // Slider input can arrive faster than Plotly redraws: draw the latest position once per frame.
  var pending = null;
  slider.addEventListener("input", function () {
    var first = pending === null;
    pending = Number(slider.value);
    if (first) requestAnimationFrame(function () { var i = pending; pending = null; show(i); });
  });
  document.getElementById("tdw-jump").addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (jump.value !== "") jumpToEpoch(jump.value);
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.target.tagName === "INPUT" && ev.target !== slider) return;
    if (ev.key === "ArrowRight" && ev.target !== slider) show(current + 1);
    if (ev.key === "ArrowLeft" && ev.target !== slider) show(current - 1);
  });

  var plotted = data.views.map(function (p, n) {
    var div = document.getElementById("tdw-view-" + n);
    var view = {div: div, figure: p.figure_name, frames: p.frames, frame_of: p.frame_of, indicators: p.indicators,
                epoch: epochs[current]};
    view.marks = makeMarks(view, p.figure.layout.shapes || []);
    views.push(view);
    return Plotly.newPlot(div, p.figure.data, p.figure.layout, {displaylogo: false}).then(function () {
      div.on("plotly_afterplot", function () { placeMarks(view); });
      // Clicking a checkpoint marker (customdata = its index) selects that checkpoint.
      div.on("plotly_click", function (ev) {
        var pt = ev.points[0];
        if (pt && pt.data.name === "checkpoints") show(pt.customdata);
      });
    });
  });
  var ready = Promise.all(plotted).then(function () { return show(current); });
  window.tdwReport = {show: show, jumpToEpoch: jumpToEpoch, update: update, ready: ready, epochs: epochs, views: views,
                      current: function () { return current; }};
})();
