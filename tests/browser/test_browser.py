"""The widget tutorial in a real browser: JupyterLab on localhost, headless Chromium driven by selenium.

Runs all cells of nbs/tutorials/widgets.ipynb, moves the β slider and clicks Generate (the <video> element's src
must change and the filmstrip must load), then moves α in the edit app (the after image must change). Screenshots
go to browser_artifacts/. Only with `--flags browser` (make test-browser); then a missing Chromium, chromedriver or
JupyterLab is a failure, not a skip.
"""
import json, os, secrets, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ART = ROOT / "browser_artifacts"
TUTORIAL = ROOT / "nbs" / "tutorials" / "widgets.ipynb"


def _which(*names):
    for n in names:
        p = shutil.which(n)
        if p: return p
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    "JupyterLab serving a copy of the tutorial, with a token; yields (url, token, folder)."
    try: import jupyterlab  # noqa: F401
    except ImportError: pytest.fail("jupyterlab is not installed (pip install -e .[dev])")
    d = tmp_path_factory.mktemp("lab")
    shutil.copy(TUTORIAL, d / "widgets.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "", "MPLBACKEND": "Agg",
           "JUPYTER_CONFIG_DIR": str(d / "config"), "JUPYTER_RUNTIME_DIR": str(d / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(d / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(d / "workspaces")}
    log = open(d / "lab.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={d}", "--ServerApp.open_browser=False",
                             "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=", "--allow-root"],
                            cwd=d, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{(d / 'lab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield url, token, d
    finally:
        proc.terminate()
        try: proc.wait(15)
        except subprocess.TimeoutExpired: proc.kill()
        log.close()
        ART.mkdir(exist_ok=True)
        shutil.copy(d / "lab.log", ART / "jupyterlab.log")


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError: pytest.fail("selenium is not installed (pip install -e .[dev])")
    chrome, driver = _which("chromium", "chromium-browser", "google-chrome"), _which("chromedriver")
    if not chrome or not driver:
        pytest.fail("Chromium and chromedriver are needed: apt-get install -y chromium chromium-driver")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1800",
              "--autoplay-policy=no-user-gesture-required"):
        opts.add_argument(a)
    b = webdriver.Chrome(service=Service(executable_path=driver), options=opts)   # no selenium-manager download
    b.set_script_timeout(30)
    yield b
    b.quit()


def _wait(fn, timeout, what):
    deadline, last = time.time() + timeout, None
    while time.time() < deadline:
        try:
            v = fn()
            if v: return v
        except Exception as e: last = e   # element not there yet
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}" + (f" ({type(last).__name__}: {last})" if last else ""))


def _shot(b, name, el=None):
    ART.mkdir(exist_ok=True)
    if el is not None: b.execute_script("arguments[0].scrollIntoView({block: 'center'});", el)
    time.sleep(0.3)
    b.save_screenshot(str(ART / name))


def _errors(b) -> list[str]:
    return b.execute_script("""return [...document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
        .map(e => e.innerText).filter(t => /Traceback|Error/.test(t));""")


def _drag(b, slider_class, dx):
    "Drag the handle of the slider inside `.{slider_class}` by dx pixels; return its readout before and after."
    from selenium.webdriver import ActionChains
    from selenium.webdriver.common.by import By
    box = b.find_element(By.CSS_SELECTOR, f".{slider_class}")
    handle = box.find_element(By.CSS_SELECTOR, ".noUi-handle")
    readout = box.find_element(By.CSS_SELECTOR, ".widget-readout")
    b.execute_script("arguments[0].scrollIntoView({block: 'center'});", handle)
    before = readout.text
    ActionChains(b).click_and_hold(handle).move_by_offset(dx, 0).pause(0.2).release().perform()
    _wait(lambda: readout.text != before, 10, f"the {slider_class} readout to change")
    return before, readout.text


def test_tutorial_apps_in_jupyterlab(lab, browser):
    from selenium.webdriver.common.by import By
    url, token, d = lab
    b = browser
    t0 = time.time()
    b.get(f"{url}/lab/tree/widgets.ipynb?token={token}")
    _wait(lambda: b.execute_script("return !!(window.jupyterapp && document.querySelector('.jp-Notebook'))"), 90, "JupyterLab and the notebook")
    _wait(lambda: b.execute_script("""const w = window.jupyterapp.shell.currentWidget;
        return !!(w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel
                  && w.sessionContext.session.kernel.connectionStatus === 'connected');"""), 90, "the kernel")
    b.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")
    # the last cell prints the example sounds once every cell before it ran
    _wait(lambda: "birdsong" in b.execute_script("""const c = document.querySelectorAll('.jp-Notebook .jp-Cell');
        return c[c.length - 1].innerText;"""), 150, "all cells to run")
    assert not _errors(b), _errors(b)
    gen_video = _wait(lambda: b.find_element(By.CSS_SELECTOR, ".svg-generate video.svg-video"), 30, "the generate app's <video>")
    src0 = _wait(lambda: gen_video.get_attribute("src"), 30, "the first video's src")
    preview = b.find_element(By.CSS_SELECTOR, ".svg-generate img.svg-preview")
    _wait(lambda: b.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", preview), 30, "the filmstrip")
    pre0 = preview.get_attribute("src")
    _shot(b, "01_after_run_all.png", gen_video)

    # move β, click Generate: the <video> gets new mp4 bytes (a new blob URL) and the filmstrip a new image
    beta = _drag(b, "svg-beta", 40)
    button = b.find_element(By.CSS_SELECTOR, ".svg-generate .svg-button")
    b.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    button.click()
    src1 = _wait(lambda: (s := gen_video.get_attribute("src")) != src0 and s, 90, "the <video> src to change after Generate")
    _wait(lambda: preview.get_attribute("src") != pre0, 30, "a new filmstrip")
    _wait(lambda: b.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", preview), 30, "the new filmstrip to load")
    _wait(lambda: b.execute_script("return arguments[0].readyState >= 1 && arguments[0].duration > 0", gen_video), 30,
          "the new video to load (metadata)")
    duration = b.execute_script("return arguments[0].duration", gen_video)
    _shot(b, "02_after_generate.png", gen_video)

    # the edit app: move α; after the debounce the after image changes (frame first), then the video
    after = b.find_element(By.CSS_SELECTOR, ".svg-edit img.svg-after")
    edit_video = b.find_element(By.CSS_SELECTOR, ".svg-edit video.svg-video")
    a0, v0 = after.get_attribute("src"), edit_video.get_attribute("src")
    alpha = _drag(b, "svg-alpha", 60)
    _wait(lambda: after.get_attribute("src") != a0, 60, "the after image to change when α moves")
    _wait(lambda: edit_video.get_attribute("src") != v0, 90, "the edit video to change")
    _shot(b, "03_after_alpha.png", after)
    assert not _errors(b), _errors(b)
    (ART / "browser_test.json").write_text(json.dumps({
        "beta_readout": beta, "alpha_readout": alpha, "video_src": [src0, src1], "video_duration_s": duration,
        "wall_s": round(time.time() - t0, 1)}, indent=2) + "\n")
