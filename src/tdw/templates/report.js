// One global checkpoint slider driving every view of a tdw report page.
// Reads #tdw-data ({epochs, views: [{figure, frames, frame_of, indicators}]}) and exposes
// window.tdwReport = {show, jumpToEpoch, ready, epochs, views} for scripts and tests.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("tdw-data").textContent);
  var epochs = data.epochs;
  var slider = document.getElementById("tdw-slider");
  var label = document.getElementById("tdw-position");
  var jump = document.getElementById("tdw-epoch");
  var current = epochs.length - 1;
  var views = [];

  function update(view, i) {
    var traceUpdate = {}, traces;
    // Frames are subsampled: between two shown checkpoints only the indicator moves, so
    // restyle the traces only when the frame changes (the expensive part of a step).
    var frame = view.frames ? view.frame_of[i] : null;
    if (view.frames && frame !== view.shownFrame) {
      traceUpdate = view.frames.updates[frame];
      traces = view.frames.traces;
    }
    var layoutUpdate = {};
    view.indicators.forEach(function (k) {
      layoutUpdate["shapes[" + k + "].x0"] = epochs[i];
      layoutUpdate["shapes[" + k + "].x1"] = epochs[i];
    });
    if (traces === undefined && view.indicators.length === 0) return Promise.resolve();
    view.shownFrame = frame;
    return Plotly.update(view.div, traceUpdate, layoutUpdate, traces);
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
    var view = {div: div, figure: p.figure_name, frames: p.frames, frame_of: p.frame_of, indicators: p.indicators};
    views.push(view);
    return Plotly.newPlot(div, p.figure.data, p.figure.layout, {displaylogo: false}).then(function () {
      // Clicking a checkpoint marker (customdata = its index) selects that checkpoint.
      div.on("plotly_click", function (ev) {
        var pt = ev.points[0];
        if (pt && pt.data.name === "checkpoints") show(pt.customdata);
      });
    });
  });
  var ready = Promise.all(plotted).then(function () { return show(current); });
  window.tdwReport = {show: show, jumpToEpoch: jumpToEpoch, ready: ready, epochs: epochs, views: views,
                      current: function () { return current; }};
})();
