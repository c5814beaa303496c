"""The installed environment is whole: every installed distribution's requirements are installed too.

`pip check` over the environment the tests run in (made from requirements*.txt as the README says): a
dependency that pulls in a second copy of a library under another name (opencv-python beside
opencv-python-headless), or a pin that contradicts another package's range, fails here, not at an
operator's first import.
"""

import subprocess
import sys


def test_pip_check_finds_no_broken_or_missing_requirement():
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
