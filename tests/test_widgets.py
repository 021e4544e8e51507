"The generate and edit apps without a browser: what Generate shows, what α changes, debouncing, stale renders."
import threading
from datetime import datetime, timezone

import numpy as np
import pytest
import soundfile as sf
import torch

from sound_video_gen.core import get_config
from sound_video_gen.generators.factory import create_generator
from sound_video_gen.model.ssvg import SSVG
from sound_video_gen.apps.pipeline import SoundToVideo
from sound_video_gen.model.generation import GenerateOptions
from sound_video_gen.model.bundle import make_bundle
from sound_video_gen.apps import widgets
from sound_video_gen.apps.widgets import Debouncer, EditApp, GenerateApp, _Cancelled, _RENDER

torch.set_num_threads(1)


def _sound(path, seconds=2.0, sr=22050, f0=200.0):
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, 0.3 * np.sin(2 * np.pi * (f0 + 300 * t) * t) + 0.2 * (np.sin(2 * np.pi * 3 * t) > 0.9), sr)
    return path


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    d = tmp_path_factory.mktemp("b")
    G = create_generator("stylegan2-tiny", seed=0).eval()
    torch.manual_seed(0)
    model = SSVG(get_config("ssvg-tiny").for_generator(G)).eval()
    with torch.no_grad():   # a visible edit: E_a's offsets of a random init are tiny
        for p in model.encoder.parameters(): p.mul_(4)
    return SoundToVideo.from_pretrained(make_bundle(d / "tiny", G, model))


@pytest.fixture(scope="module")
def sounds(tmp_path_factory):
    d = tmp_path_factory.mktemp("s")
    return {"chirp": _sound(d / "chirp.wav"), "low": _sound(d / "low.wav", 2.5, 16000, f0=80.0)}


# ---------------------------------------------------------------- generate

def test_generate_fills_video_preview_and_progress(pipe, sounds):
    app = GenerateApp(pipe, sounds)
    app.seconds.value, app.fps.value = 1.5, 16
    seen = []
    app.progress.observe(lambda c: seen.append(c["new"]), "value")
    assert app.video.value == b"" and app.preview.value == b""
    out = app.generate()
    assert out is not None and app.runs == 1
    assert app.video.value == out.read_bytes() and app.video.value[4:8] == b"ftyp"
    assert app.preview.value[:4] == b"\x89PNG"
    assert (app.progress.value, app.progress.max) == (24, 24)
    assert seen == [16, 24]      # after each 16-frame chunk
    first, strip = app.video.value, app.preview.value
    app.seed.value = 7
    app.generate()
    assert app.video.value != first and app.preview.value != strip and app.runs == 2
    assert not app.button.disabled


def test_generate_passes_the_controls_to_save(pipe, sounds, monkeypatch):
    app = GenerateApp(pipe, sounds)
    got = {}
    real = SoundToVideo.save
    def spy(self, path, sound, options, **kw):
        got.update(kw, sound=sound, options=options)
        return real(self, path, sound, options, **kw)
    monkeypatch.setattr(SoundToVideo, "save", spy)
    app.sound.dropdown.value = "low"
    app.seed.value, app.psi.value, app.beta.value, app.w0.value = 5, 0.5, 0.3, "w_avg"
    app.fps.value, app.seconds.value = 4, 1.0
    app.groups["mid"].value = False
    app.generate()
    assert got["sound"] == sounds["low"] and got["preview"] is not None
    assert got["options"] == GenerateOptions(seed=5, w0="w_avg", psi=0.5, beta=0.3, groups=("coarse", "fine"))
    assert (got["fps"], got["seconds"]) == (4.0, 1.0)
    assert app.progress.value == 4


def test_generate_reports_mistakes_in_the_status_line(pipe, sounds, tmp_path):
    app = GenerateApp(pipe, {**sounds, "silent": tmp_path / "silent.wav"})
    sf.write(tmp_path / "silent.wav", np.zeros(16000), 16000)
    for t in app.groups.values(): t.value = False
    assert app.generate() is None and "at least one layer group" in app.status.value
    for t in app.groups.values(): t.value = True
    app.sound.dropdown.value = "silent"
    assert app.generate() is None and "silent" in app.status.value
    assert app.video.value == b"" and not app.button.disabled


def test_an_uploaded_sound_is_added_and_chosen(pipe, sounds):
    app = GenerateApp(pipe, sounds)
    data = sounds["chirp"].read_bytes()
    app.sound.upload.value = ({"name": "mine.wav", "type": "audio/wav", "size": len(data), "content": memoryview(data),
                               "last_modified": datetime.now(timezone.utc)},)
    assert app.sound.dropdown.value == "upload: mine.wav"
    assert app.sound.path.read_bytes() == data and app.sound.path.parent == app.folder
    app.seconds.value = 1.0
    assert app.generate() is not None


def _held_by_another_thread() -> bool:
    "Whether a render holds `_RENDER` (a second thread cannot take it)."
    got = []
    t = threading.Thread(target=lambda: got.append(_RENDER.acquire(blocking=False) and (_RENDER.release() or True)))
    t.start(); t.join()
    return not got[0]


def test_generate_counts_frames_through_on_frames_without_patching(pipe, sounds, monkeypatch):
    app = GenerateApp(pipe, sounds)
    app.seconds.value, app.fps.value = 1.0, 8
    seen, shown = [], app._on_frames
    monkeypatch.setattr(app, "_on_frames", lambda d, n: (seen.append((d, n, _held_by_another_thread())), shown(d, n)))
    assert app.generate() is not None
    assert seen == [(0, 8, True), (8, 8, True)]          # through save's callback, one render at a time
    assert (app.progress.value, app.progress.max) == (8, 8)
    assert "iter_frames" not in vars(pipe) and not _held_by_another_thread()


# ---------------------------------------------------------------- edit

@pytest.fixture
def edit(pipe, sounds):
    app = EditApp(pipe, sounds, wait=0.3, video_seconds=1.0, steps=2)
    app.update()
    return app


def test_alpha_changes_the_after_image_and_not_the_before(edit):
    assert (edit.frames_made, edit.videos_made) == (1, 1) and edit.video.value[4:8] == b"ftyp"
    before, after = edit.before.value, edit.after.value
    edit.alpha.value = 3.0
    edit.debounce.flush()
    assert edit.after.value != after and edit.before.value == before
    edit.alpha.value = 0.0
    edit.debounce.flush()
    assert np.array_equal(edit.edit.before, edit.edit.after) and edit.after.value == edit.before.value


def test_groups_limit_the_edit_to_their_layers(edit, pipe):
    edit.groups["coarse"].value = False
    edit.groups["mid"].value = False
    edit.debounce.flush()
    a, b = pipe.groups["fine"]
    dw = (edit.edit.w_hat - edit.edit.w)[0]
    assert dw[:a].abs().max() == 0 and dw[a:b].abs().max() > 0


def test_debouncing_coalesces_a_burst_of_changes(edit):
    made = (edit.frames_made, edit.videos_made)
    after = edit.after.value
    edit.debounce.wait = 3600            # no timer fires during the test: the burst's outcome does not depend on delays
    for a in np.linspace(0.2, 2.6, 8):
        edit.alpha.value = float(a)
    assert edit.debounce.pending and edit.frames_made == made[0]     # nothing rendered during the burst
    edit.debounce.flush()                # what the timer does once the burst is over
    assert (edit.frames_made, edit.videos_made) == (made[0] + 1, made[1] + 1) and not edit.debounce.pending
    assert edit.after.value != after and edit.alpha.value == pytest.approx(2.6)


def test_a_stale_video_stops_and_leaves_the_last_one(edit):
    video = edit.video.value
    with pytest.raises(_Cancelled):
        edit.make_video(version=edit._version - 1)
    assert edit.video.value == video and "iter_frames" not in vars(edit.pipe)


def test_edit_mistakes_go_to_the_status_line(edit):
    for t in edit.groups.values(): t.value = False
    edit.debounce.flush()
    assert "at least one layer group" in edit.status.value
    for t in edit.groups.values(): t.value = True
    edit.source.value = "upload"
    edit.debounce.flush()
    assert "upload an image" in edit.status.value


def test_an_uploaded_image_is_inverted_and_edited(edit, tmp_path):
    from PIL import Image
    img = np.zeros((40, 48, 3), np.uint8); img[:, :24] = (200, 40, 40)
    Image.fromarray(img).save(tmp_path / "scene.png")
    data = (tmp_path / "scene.png").read_bytes()
    seeded = edit.edit.w
    edit.image.value = ({"name": "scene.png", "type": "image/png", "size": len(data), "content": memoryview(data),
                         "last_modified": datetime.now(timezone.utc)},)
    assert edit.source.value == "upload" and edit.debounce.pending
    edit.debounce.flush()
    assert edit.status.value.startswith("frame and video"), edit.status.value
    assert edit.edit.image.shape == (32, 32, 3) and edit.edit.image[:, :8].mean() > edit.edit.image[:, -8:].mean()
    assert not torch.equal(edit.edit.w, seeded)
    editor = edit.editor
    edit.alpha.value = 2.0
    edit.debounce.flush()
    assert edit.editor is editor          # a new α re-renders one frame; the image is not inverted again


class HandTimer:
    "A stand-in for threading.Timer that the test fires by hand."
    made = []
    def __init__(self, interval, function):
        self.interval, self.function, self.started, self.cancelled = interval, function, False, False
        HandTimer.made.append(self)
    def start(self): self.started = True
    def cancel(self): self.cancelled = True
    def fire(self):
        if not self.cancelled: self.function()


def test_debouncer_runs_once_after_the_last_call():
    HandTimer.made.clear()
    calls = []
    d = Debouncer(lambda: calls.append(1), wait=0.15, timer=HandTimer)
    for _ in range(4): d()
    timers = HandTimer.made
    assert len(timers) == 4 and all(t.started and t.interval == 0.15 for t in timers)
    assert [t.cancelled for t in timers] == [True, True, True, False]   # each call restarts the wait
    timers[0].function()            # a replaced timer that fires anyway (the race threading.Timer.cancel leaves) does nothing
    assert calls == [] and d.pending
    timers[-1].fire()
    assert calls == [1] and not d.pending and d.fired == 1
    timers[-1].function()           # firing twice runs nothing more
    d(); d.flush(); HandTimer.made[-1].fire()
    assert calls == [1, 1] and d.fired == 2