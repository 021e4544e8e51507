"""The command line: one sentence and exit code 2 for bad input, never a traceback."""
import os, subprocess, sys

import numpy as np
import pytest
import soundfile as sf

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "sound_video_gen.cli", *map(str, args)], capture_output=True,
                          text=True, env=ENV, cwd=cwd, timeout=120)


def _assert_one_sentence_error(res):
    assert res.returncode == 2, res
    assert "Traceback" not in res.stderr
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr


def test_help_lists_commands():
    res = cli("--help")
    assert res.returncode == 0 and "mel" in res.stdout


def test_unknown_command():
    _assert_one_sentence_error(cli("frobnicate"))


def test_mel_writes_image_and_refuses_overwrite(tmp_path):
    wav = tmp_path / "tone.wav"
    sf.write(wav, 0.3 * np.sin(np.linspace(0, 2000, 22050)), 22050)
    out = tmp_path / "tone.png"
    res = cli("mel", wav, "-o", out, "--fps", 8)
    assert res.returncode == 0, res.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = cli("mel", wav, "-o", out)
    _assert_one_sentence_error(res)
    assert "already exists" in res.stderr
    assert cli("mel", wav, "-o", out, "--overwrite").returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tone.png", "tone.wav"]  # no temp files left


@pytest.mark.parametrize("make,args,match", [
    (lambda d: None, ["missing.wav"], "does not exist"),
    (lambda d: (d / "text.wav").write_text("hello"), ["text.wav"], "not a readable audio"),
    (lambda d: (d / "empty.wav").write_bytes(b""), ["empty.wav"], "is empty"),
    (lambda d: sf.write(d / "ok.wav", np.zeros(100), 8000), ["ok.wav", "--fps", "-3"], "--fps"),
    (lambda d: sf.write(d / "ok.wav", np.zeros(100), 8000), ["ok.wav", "--config", "nope"], "no config named"),
    (lambda d: sf.write(d / "ok.wav", np.zeros(100), 8000), ["ok.wav", "-o", "x.txt"], "output must end"),
    (lambda d: sf.write(d / "ok.wav", np.zeros(100), 8000), ["ok.wav", "--bogus"], "unrecognized arguments"),
    (lambda d: sf.write(d / "ok.wav", np.zeros(100), 8000), ["ok.wav", "-o", "no/such/dir/x.png"], "does not exist"),
])
def test_mel_bad_input(tmp_path, make, args, match):
    make(tmp_path)
    res = cli("mel", *args, cwd=tmp_path)
    _assert_one_sentence_error(res)
    assert match in res.stderr
