"""Widget responsiveness with the shipped demo bundle: seconds from a slider change to what the user sees.

Edit app: from moving α to the new after image (one frame; target <= 0.5 s) and to the new 4-s video (target
<= 5 s), through the real debounce (a timer thread; its wait is part of the time). Generate app: from clicking
Generate to a 4-s video with its filmstrip on screen (the widgets' values set). Prints one JSON line per figure
with the median and max over `--repeats` changes.

    python benchmarks/bench_widgets.py                     # 5 repeats, debounce wait 0.2 s, 1 torch thread
    python benchmarks/bench_widgets.py --repeats 10 --wait 0.25 --threads 2
"""
from __future__ import annotations
import argparse, json, os, platform, statistics, time


def _until(fn, timeout=120.0):
    t = time.perf_counter()
    while not fn():
        if time.perf_counter() - t > timeout: raise TimeoutError("the app did not update")
        time.sleep(0.002)
    return time.perf_counter()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--wait", type=float, default=0.2, help="the edit app's debounce wait (s)")
    p.add_argument("--seconds", type=float, default=4.0, help="video length (s)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    a = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    torch.set_num_threads(a.threads)
    from sound_video_gen.apps.pipeline import SoundToVideo
    from sound_video_gen.apps.widgets import EditApp, GenerateApp
    machine = {"cpus": os.cpu_count(), "threads": a.threads, "machine": platform.machine(),
               "load_1min": round(os.getloadavg()[0], 2)}
    pipe = SoundToVideo.from_pretrained("demo")

    ed = EditApp(pipe, wait=a.wait, video_seconds=a.seconds)
    ed.update()                                                     # warm up: first edit, caches the scene and sound
    frame, video = [], []
    for i in range(a.repeats):
        f0, v0 = ed.frames_made, ed.videos_made
        t = time.perf_counter()
        ed.alpha.value = round(0.5 + 0.4 * (i + 1), 2)              # what a slider release sends
        frame.append(_until(lambda: ed.frames_made > f0) - t)
        video.append(_until(lambda: ed.videos_made > v0) - t)
        _until(lambda: not ed._busy.locked())
    stats = lambda xs: {"median_s": round(statistics.median(xs), 3), "max_s": round(max(xs), 3)}
    print(json.dumps({"bench": "widgets.edit_slider_to_frame", **stats(frame), "target_s": 0.5, "debounce_s": a.wait,
                      "repeats": a.repeats, **machine}))
    print(json.dumps({"bench": "widgets.edit_slider_to_video", **stats(video), "target_s": 5.0, "video_s": a.seconds,
                      "debounce_s": a.wait, "repeats": a.repeats, **machine}))

    gen = GenerateApp(pipe)
    gen.seconds.value = a.seconds
    gen.generate()                                                  # warm up
    times = []
    for i in range(a.repeats):
        gen.beta.value = round(0.6 + 0.1 * i, 2)
        t = time.perf_counter()
        gen.button.click()
        times.append(time.perf_counter() - t)
    print(json.dumps({"bench": "widgets.generate_click_to_video", **stats(times), "target_s": 5.0, "video_s": a.seconds,
                      "frames": gen.progress.value, "repeats": a.repeats, **machine}))


if __name__ == "__main__":
    main()
