"""Fail if `nbdev_clean` or `nbdev_export` would change any file.

Hashes the notebooks and the package before and after running both tools, so it works in a
clean clone and in a working tree with uncommitted edits alike. Files the tools changed are
left changed (that is the fix): commit them.
"""
import hashlib, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

def snapshot():
    files = [*ROOT.glob("nbs/**/*.ipynb"), *ROOT.glob("sound_video_gen/**/*.py"), ROOT / "pyproject.toml"]
    return {str(f.relative_to(ROOT)): hashlib.sha1(f.read_bytes()).hexdigest()
            for f in files if f.exists() and "__pycache__" not in f.parts and ".ipynb_checkpoints" not in f.parts}

def main():
    before = snapshot()
    for tool in ("nbdev_clean", "nbdev_export"):
        res = subprocess.run([str(BIN / tool)], cwd=ROOT, capture_output=True, text=True)
        if res.returncode != 0:
            print(f"{tool} failed:\n{res.stdout}{res.stderr}")
            return 1
    after = snapshot()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if changed:
        print("notebooks were not clean or the library was out of sync; nbdev_clean/nbdev_export changed:")
        for k in changed: print("  " + k)
        print("commit these changes.")
        return 1
    print(f"sync: {len(after)} notebooks/modules clean and in sync")
    return 0

if __name__ == "__main__":
    sys.exit(main())
