"`sound-video-gen data`: dataset tooling (Table 1 statistics, Landscape download and cutting)."
from __future__ import annotations
import json

from sound_video_gen.cli.common import FPS, SAMPLE_RATE, SIZE, ArgParser, ranged
from sound_video_gen.core import UserError


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="sound-video-gen data", description="Dataset tooling: Table 1 statistics of dataset folders; "
                  "download the Landscape videos listed in a CSV (needs yt-dlp and the network); cut videos into clips.")
    sub = p.add_subparsers(dest="cmd", metavar="{table,landscape-download,landscape-cut}")
    t = sub.add_parser("table", help="print Table 1 rows (videos, resolution, classes, audio-video pairs, hours) for dataset folders")
    t.add_argument("folders", nargs="+", help="dataset folders (class sub-folders of videos, a metadata.csv, or Sub-URMP's img/ + chunk/)")
    t.add_argument("--paper", action="store_true", help="include the paper's published rows")
    t.add_argument("--json", action="store_true", help="print JSON lines instead of a Markdown table")
    d = sub.add_parser("landscape-download", help="download the videos of a link CSV with yt-dlp into <out>/<class>/")
    d.add_argument("csv", help="the link list (e.g. Landscape's DATASET.csv)")
    d.add_argument("--out", required=True, help="folder for the raw videos")
    d.add_argument("--max-height", type=ranged(int, 16, 4320), default=720, help="best stream up to this height (default 720)")
    c = sub.add_parser("landscape-cut", help="cut <raw>/<class>/<video> into clips with sound and write <out>/metadata.csv")
    c.add_argument("raw", help="folder of raw videos in class sub-folders")
    c.add_argument("--out", required=True, help="clip folder to create")
    c.add_argument("--clip-seconds", type=ranged(float, 0.1, 3600), default=10.0, help="clip length (default 10)")
    c.add_argument("--fps", type=FPS, default=None, help="output frame rate (default: the source's)")
    c.add_argument("--size", type=SIZE, default=None, help="shorter side of the output frames (default: unchanged)")
    c.add_argument("--sr", type=SAMPLE_RATE, default=None, help="output sample rate (default: the source's)")
    c.add_argument("--max-clips-per-video", type=ranged(int, 1, 100_000), default=None)
    c.add_argument("--overwrite", action="store_true")
    a = p.parse_args(argv)
    if a.cmd is None: raise UserError("choose a subcommand: table, landscape-download or landscape-cut (see --help).")
    from sound_video_gen.data import landscape as L
    if a.cmd == "table":
        rows = (L.PAPER_TABLE1 if a.paper else []) + [L.dataset_stats(f) for f in a.folders]
        print("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) if a.json else L.table1(rows))
    elif a.cmd == "landscape-download":
        r = L.download_videos(L.read_links_csv(a.csv), a.out, max_height=a.max_height)
        print(f"{len(r['ok'])} videos in {a.out} ({r['skipped']} already there), {len(r['failed'])} failed")
        for url, why in r["failed"][:20]: print(f"  failed: {url}: {why}")
    else:
        r = L.build_landscape(a.raw, a.out, clip_seconds=a.clip_seconds, fps=a.fps, size=a.size, sr=a.sr,
                              max_clips_per_video=a.max_clips_per_video, overwrite=a.overwrite)
        print(f"wrote {r['clips']} clips from {r['videos']} videos to {a.out}; {len(r['skipped'])} files skipped")
    return 0
