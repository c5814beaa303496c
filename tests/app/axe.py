"""axe-core (Deque's accessibility engine, from the npm registry) run inside the studio page by Playwright.

The package is installed once into `.cache/axe-core` with the machine's npm (pinned version, no
lock-file download addresses), so the README's test command alone is enough on a fresh machine.
The script is evaluated through the DevTools protocol, which the page's Content-Security-Policy
does not govern, so the page under test keeps its real policy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

AXE_VERSION = "4.14.1"
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "axe-core"
SCRIPT = CACHE / "node_modules" / "axe-core" / "axe.min.js"
# What "0 serious or critical violations" counts; moderate and minor ones are reported, not failed on.
BLOCKING = ("serious", "critical")


def axe_source() -> str:
    if not SCRIPT.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("The accessibility checks need npm (Debian: `apt-get install -y npm`).")
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(CACHE),
                        f"axe-core@{AXE_VERSION}"], check=True, capture_output=True, timeout=600)
    return SCRIPT.read_text(encoding="utf-8")


def serious_violations(page, source: str, *, step: str, report_dir: Path | None = None) -> list[str]:
    """Run axe on the page as it is now; the serious and critical violations, one line each (WCAG 2.x A/AA)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(source + "\n;0")
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
                                           resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       targets: v.nodes.slice(0, 5).map(n => n.target.join(' ')),
                                       why: v.nodes.slice(0, 2).map(n => n.failureSummary)}));
    }""")
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
        (report_dir / f"axe-{step}.json").write_text(json.dumps(result, indent=1))
    return [f"{step}: {v['impact']} {v['id']} ({v['help']}) at {', '.join(v['targets'])}"
            for v in result if v["impact"] in BLOCKING]
