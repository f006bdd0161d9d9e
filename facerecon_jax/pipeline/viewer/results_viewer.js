/*
 * facerecon-jax results page: one three.js viewer shared by all faces of the page.
 *
 * Classic script (no ES modules, no fetch), so the page works from file:// in every browser.
 * index.html sets window.FACERECON_PAGE = {faces: [{key, data, title}]}; each face's model is a
 * binary glTF written as base64 in viewer/data/<key>.js, a script that calls
 * FaceReconViewer.register(key, base64) when a face is first shown. The viewer's canvas moves
 * into the box of the face being looked at (the first face at start; "view in 3D" on the others),
 * so a page of many faces holds one WebGL context and loads one model at a time.
 *
 * State for people and tests: document.body.dataset.viewer is "loading", "rendered" (a frame of
 * the current face and shading is on screen) or "error"; data-viewer-face and data-viewer-mode
 * say which face and which shading ("textured" or "shape"); data-viewer-first-render-ms when the
 * first face reached the screen (ms since navigation started).
 */
(function () {
  "use strict";

  var page = window.FACERECON_PAGE || { faces: [] };
  var body = document.body;
  var buffers = {};      // key -> ArrayBuffer of the .glb
  var waiting = {};      // key -> callbacks waiting for the data script
  var models = {};       // key -> {root, mesh, textured, shape}
  var three = null;      // renderer, scene, camera, controls, stage
  var current = null;    // key on screen
  var mode = "textured";

  function setState(state, detail) {
    if (state === "rendered" && !body.dataset.viewerFirstRenderMs) {
      // milliseconds from the start of navigation to the first face on screen
      body.dataset.viewerFirstRenderMs = String(Math.round(performance.now()));
    }
    body.dataset.viewer = state;
    body.dataset.viewerFace = current || "";
    body.dataset.viewerMode = mode;
    body.dataset.viewerDetail = detail || "";
  }

  function fail(message) {
    console.error("facerecon viewer: " + message);
    setState("error", message);
  }

  function faceByKey(key) {
    for (var i = 0; i < page.faces.length; i++) {
      if (page.faces[i].key === key) return page.faces[i];
    }
    return null;
  }

  function base64ToBuffer(text) {
    var bin = atob(text);
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes.buffer;
  }

  function register(key, base64) {
    try {
      buffers[key] = base64ToBuffer(base64);
    } catch (e) {
      fail("the model data of " + key + " is not base64: " + e.message);
      return;
    }
    var callbacks = waiting[key] || [];
    delete waiting[key];
    callbacks.forEach(function (cb) { cb(); });
  }

  function withData(face, done) {
    if (buffers[face.key]) { done(); return; }
    if (waiting[face.key]) { waiting[face.key].push(done); return; }
    waiting[face.key] = [done];
    var script = document.createElement("script");
    script.src = face.data;
    script.onerror = function () { fail("cannot load " + face.data); };
    document.head.appendChild(script);
  }

  function draw() {
    three.renderer.render(three.scene, three.camera);
  }

  // Draw, then say "rendered" once the frame has reached the screen.
  function drawAndReport() {
    draw();
    requestAnimationFrame(function () {
      draw();
      requestAnimationFrame(function () { setState("rendered"); });
    });
  }

  function button(label, value) {
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.dataset.mode = value;
    b.addEventListener("click", function () { setMode(value); });
    return b;
  }

  function init() {
    if (!window.THREE || !THREE.OrbitControls || !THREE.GLTFLoader) {
      throw new Error("three.js, OrbitControls or GLTFLoader did not load");
    }
    var renderer = new THREE.WebGLRenderer({ antialias: true });
    renderer.outputEncoding = THREE.sRGBEncoding;
    renderer.setPixelRatio(window.devicePixelRatio || 1);
    renderer.setClearColor(0x1d2128, 1);
    var scene = new THREE.Scene();
    var camera = new THREE.PerspectiveCamera(25, 1, 0.01, 100);
    scene.add(new THREE.HemisphereLight(0xffffff, 0x45454f, 0.55));
    var light = new THREE.DirectionalLight(0xffffff, 0.8);
    light.position.set(-0.6, 0.7, 1.0);    // a headlight from the upper left, moves with the view
    camera.add(light);
    scene.add(camera);
    var controls = new THREE.OrbitControls(camera, renderer.domElement);
    controls.enablePan = false;
    controls.addEventListener("change", draw);
    var stage = document.createElement("div");
    stage.className = "viewer-stage";
    var bar = document.createElement("div");
    bar.className = "viewer-modes";
    bar.appendChild(button("textured", "textured"));
    bar.appendChild(button("shape only", "shape"));
    stage.appendChild(renderer.domElement);
    stage.appendChild(bar);
    three = { renderer: renderer, scene: scene, camera: camera, controls: controls,
              stage: stage, bar: bar };
  }

  function frame(root) {
    var box = new THREE.Box3().setFromObject(root);
    var centre = box.getCenter(new THREE.Vector3());
    var size = box.getSize(new THREE.Vector3());
    var radius = 0.5 * Math.max(size.x, size.y, size.z);
    var fov = THREE.MathUtils.degToRad(three.camera.fov);
    var dist = 1.25 * radius / Math.tan(fov / 2);
    three.camera.near = dist / 50;
    three.camera.far = dist * 50;
    three.camera.position.set(centre.x, centre.y, centre.z + dist);
    three.camera.updateProjectionMatrix();
    three.controls.target.copy(centre);
    three.controls.minDistance = dist * 0.3;
    three.controls.maxDistance = dist * 4;
    three.controls.update();
  }

  function attach(key, model) {
    if (current && models[current] && current !== key) three.scene.remove(models[current].root);
    current = key;
    three.scene.add(model.root);
    model.mesh.material = mode === "shape" ? model.shape : model.textured;
    frame(model.root);
    drawAndReport();
  }

  function parse(key, done) {
    if (models[key]) { done(models[key]); return; }
    var loader = new THREE.GLTFLoader();
    loader.parse(buffers[key], "", function (gltf) {
      var mesh = null;
      gltf.scene.traverse(function (o) { if (!mesh && o.isMesh) mesh = o; });
      if (!mesh) { fail("the model of " + key + " holds no mesh"); return; }
      var shape = new THREE.MeshStandardMaterial({ color: 0xc8c8c8, roughness: 0.85,
                                                   metalness: 0.0 });
      models[key] = { root: gltf.scene, mesh: mesh, textured: mesh.material, shape: shape };
      done(models[key]);
    }, function (err) {
      fail("cannot read the model of " + key + ": " + (err && err.message ? err.message : err));
    });
  }

  function resize() {
    var box = three.stage.parentNode;
    if (!box) return;
    var w = Math.max(1, box.clientWidth), h = Math.max(1, box.clientHeight);
    three.renderer.setSize(w, h);
    three.camera.aspect = w / h;
    three.camera.updateProjectionMatrix();
  }

  function show(key) {
    var face = faceByKey(key);
    var box = document.getElementById("viewer-" + key);
    if (!face || !box) { fail("no face " + key + " on this page"); return; }
    current = current || key;
    setState("loading");
    try {
      if (!three) init();
    } catch (e) {
      fail(e.message);
      return;
    }
    box.appendChild(three.stage);
    resize();
    withData(face, function () {
      parse(key, function (model) { attach(key, model); });
    });
  }

  function setMode(value) {
    mode = value === "shape" ? "shape" : "textured";
    if (three) {
      three.bar.querySelectorAll("button").forEach(function (b) {
        b.setAttribute("aria-pressed", String(b.dataset.mode === mode));
      });
    }
    if (current && models[current]) {
      var m = models[current];
      m.mesh.material = mode === "shape" ? m.shape : m.textured;
      drawAndReport();
    } else {
      setState(body.dataset.viewer || "loading");
    }
  }

  window.FaceReconViewer = { register: register, show: show, setMode: setMode };

  document.querySelectorAll("[data-show]").forEach(function (el) {
    el.addEventListener("click", function () { show(el.dataset.show); });
  });
  window.addEventListener("resize", function () { if (three) { resize(); draw(); } });
  if (page.faces.length) {
    show(page.faces[0].key);
    setMode(mode);
  } else {
    setState("empty");
  }
})();
