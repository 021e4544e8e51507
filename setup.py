"Packaging for sound_video_gen. All settings live in settings.ini; edit there, not here."
import shlex
from configparser import ConfigParser
from pathlib import Path
from setuptools import find_packages, setup

cfg = ConfigParser(delimiters=["="])
cfg.read("settings.ini", encoding="utf-8")
cfg = cfg["DEFAULT"]
lib = cfg["lib_path"]
readme = Path("README.md")

setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=readme.read_text(encoding="utf-8") if readme.exists() else "",
    long_description_content_type="text/markdown",
    author=cfg["author"],
    author_email=cfg["author_email"],
    license="Apache-2.0",
    url=cfg["git_url"],
    project_urls={"Source": cfg["git_url"], "Documentation": cfg["doc_host"] + cfg["doc_baseurl"]},
    keywords=cfg.get("keywords", "").split(),
    classifiers=["Programming Language :: Python :: 3", "Topic :: Scientific/Engineering :: Artificial Intelligence",
                 "Topic :: Multimedia :: Video", "Topic :: Multimedia :: Sound/Audio :: Analysis"],
    python_requires=">=" + cfg["min_python"],
    packages=find_packages(include=[lib, lib + ".*"]),
    package_data={lib: ["configs/*.json", "assets/*", "pretrained/**/*"]},   # pretrained/: shipped bundles, example sounds
    include_package_data=True,
    install_requires=shlex.split(cfg.get("requirements", "")),
    extras_require={"dev": shlex.split(cfg.get("dev_requirements", ""))},
    entry_points={
        "console_scripts": cfg.get("console_scripts", "").split(),
        "nbdev": [f"{lib}={lib}._modidx:d"],
    },
    zip_safe=False,
)
