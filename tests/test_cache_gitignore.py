"""A cache folder the plugin creates ignores itself in git (issue 26, item 2), as ``.pytest_cache`` does.

The quick start says ``git add bias_tests``; the cache lived inside it with no ``.gitignore`` and 1,020 of
1,029 staged files were cached images.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from pytest_t2ibias._io import CACHE_GITIGNORE
from pytest_t2ibias.annotate.cache import RecordsCache
from pytest_t2ibias.generate.cache import ImageCache


def test_the_image_cache_writes_its_gitignore(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path / "bias_tests" / ".t2ibias_cache")
    cache.store("ab" + "0" * 62, Image.new("RGB", (8, 8)), {})
    assert (cache.root / ".gitignore").read_text() == CACHE_GITIGNORE


def test_the_records_cache_writes_it_too(tmp_path: Path) -> None:
    RecordsCache(tmp_path / "cache").store("cd" + "0" * 62, [])
    assert (tmp_path / "cache" / ".gitignore").read_text() == CACHE_GITIGNORE


def test_a_folder_the_user_made_is_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    root.mkdir()
    (root / ".gitignore").write_text("keep me\n")
    ImageCache(root).store("ab" + "0" * 62, Image.new("RGB", (8, 8)), {})
    assert (root / ".gitignore").read_text() == "keep me\n"
    other = tmp_path / "theirs"
    other.mkdir()
    ImageCache(other).store("ab" + "0" * 62, Image.new("RGB", (8, 8)), {})
    assert not (other / ".gitignore").exists()  # not ours to add to


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_add_of_the_test_folder_stages_no_cached_image(pytester: pytest.Pytester) -> None:
    """The quick start's flow: a bias test in ``bias_tests/``, run once, then ``git add bias_tests``."""
    tests = pytester.path / "bias_tests"
    tests.mkdir()
    (tests / "test_bias.py").write_text(
        "import pytest\n\n@pytest.mark.t2ibias(category='doctor')\ndef test_doctor(t2ibias_result):\n"
        "    assert t2ibias_result.n == 8\n"
    )
    pytester.makeini("[pytest]\nt2ibias_model = synthetic\nt2ibias_images_per_prompt = 8\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--t2i-cache", "bias_tests/.t2ibias_cache", "bias_tests")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert list((tests / ".t2ibias_cache").rglob("*.png"))  # images were cached there
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=pytester.path, check=True)
    subprocess.run([*git, "add", "bias_tests"], cwd=pytester.path, check=True)
    staged = subprocess.run([*git, "diff", "--cached", "--name-only"], cwd=pytester.path, check=True,
                            capture_output=True, text=True).stdout.split()  # fmt: skip
    assert "bias_tests/test_bias.py" in staged
    assert not [name for name in staged if ".t2ibias_cache" in name]
