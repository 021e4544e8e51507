"Test tiers: tests marked slow, cuda or weights run only when named in --flags (like nbdev's tst_flags)."
import os
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
import pytest

TIERS = ("slow", "cuda", "weights", "browser")

def pytest_addoption(parser):
    parser.addoption("--flags", default="", help="space- or comma-separated tiers to run: slow cuda weights browser")

def pytest_collection_modifyitems(config, items):
    flags = set(config.getoption("--flags").replace(",", " ").split())
    for item in items:
        for tier in TIERS:
            if tier in item.keywords and tier not in flags:
                item.add_marker(pytest.mark.skip(reason=f"'{tier}' tier; run with --flags {tier}"))
