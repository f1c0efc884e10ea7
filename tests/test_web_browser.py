"""The dashboard in a real browser: Debian's chromium, headless, driven by Playwright
(scripts/test installs chromium when it is missing; a missing one fails this test).

It opens every page, checks the DAG's nodes and their states, sees a new workflow appear
without a reload, cancels a running workflow through the confirmation and the token
prompt, resumes a paused queue and a failed workflow, finds no action on a read-only
dashboard, and opens a dead letter, requeues it and purges the dead letters, each
through the confirmation (and each checked in Redis). Each page's screenshot goes to a
temporary folder, or to ``STREAMFLOW_WEB_SCREENSHOTS`` (``scripts/screenshots`` sets it
to docs/).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from streamflow import App
from streamflow.web import create_app
from tests.waiting import wait_until
from tests.web_helpers import Scene, scene, serving

try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError as exc:
    # The legs of scripts/test whose venvs lack Playwright still collect this module
    # (and deselect the test, which is not an integration test); run, it fails.
    PLAYWRIGHT_MISSING: ImportError | None = exc
else:
    PLAYWRIGHT_MISSING = None

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "s3cret"


@pytest.fixture
def page() -> Iterator[Page]:
    """A 1200x800 page of a headless chromium (the system's: never downloaded)."""
    if PLAYWRIGHT_MISSING is not None:
        raise PLAYWRIGHT_MISSING
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing: scripts/test installs it"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser.new_page(viewport={"width": 1200, "height": 800})
        finally:
            browser.close()


def test_the_dashboard_in_a_browser(app: App, r: redis.Redis, page: Page, tmp_path: Path) -> None:
    shots = Path(os.environ.get("STREAMFLOW_WEB_SCREENSHOTS") or tmp_path)
    with scene(app, r) as seen, serving(create_app(app, token=TOKEN, refresh_s=0.5)) as base:
        _workflows(app, page, base, seen, shots)
        _workflow(page, base, seen, shots)
        page.goto(f"{base}/#/dead-letters")
        expect(page.locator(f'tr[data-dead-letter="{seen.dead_id}"]')).to_contain_text("default")
        page.screenshot(path=shots / "dashboard-dead-letters.png")
        page.goto(f"{base}/#/workers")
        expect(page.locator("tr[data-worker] [data-state]")).to_have_attribute("data-state", "live")
        page.screenshot(path=shots / "dashboard-workers.png")
        page.goto(f"{base}/#/queues")
        expect(page.locator('tr[data-queue="default"]')).to_be_visible()
        expect(page.locator('tr[data-paused="queue:slow"]')).to_be_visible()
        page.screenshot(path=shots / "dashboard-queues.png")
        _cancel(app, page, base, seen)
        _resume(app, page)
        _resume_workflow(app, page, base, seen)
        with serving(create_app(app, read_only=True)) as read_only:
            _no_actions(page, read_only, seen)
        _dead_letters(app, page, base, seen)


def _workflows(app: App, page: Page, base: str, seen: Scene, shots: Path) -> None:
    """The list shows both workflows with their status, a new one by itself, and only
    those the filters keep."""
    page.goto(f"{base}/#/workflows")
    for handle, status in ((seen.running, "running"), (seen.failed, "failed")):
        row = page.locator(f'tr[data-workflow="{handle.id}"] [data-state]')
        expect(row).to_have_attribute("data-state", status)
    later = app.submit(app.actors["step"].message(4))
    expect(page.locator(f'tr[data-workflow="{later.id}"]')).to_be_visible()
    page.screenshot(path=shots / "dashboard-workflows.png")
    page.fill("input[name=actor]", "boom")
    page.click("form.filters button[type=submit]")
    expect(page.locator("tr[data-workflow]")).to_have_count(1)
    expect(page.locator(f'tr[data-workflow="{seen.failed.id}"]')).to_be_visible()
    assert page.url.endswith("#/workflows?actor=boom&limit=50")
    page.fill("input[name=actor]", "")
    page.select_option("select[name=status]", "running")
    page.click("form.filters button[type=submit]")
    expect(page.locator("tr[data-workflow]")).to_have_count(1)
    expect(page.locator(f'tr[data-workflow="{seen.running.id}"]')).to_be_visible()


def _workflow(page: Page, base: str, seen: Scene, shots: Path) -> None:
    """Each workflow's DAG: its task nodes coloured by state; the failure shown."""
    page.goto(f"{base}/#/workflows/{seen.failed.id}")
    _expect_nodes(page, {0: "succeeded", 2: "failed", 4: "pending"})
    expect(page.locator('tr[data-task="2"] div.error')).to_have_text("ValueError: no luck with x")
    page.goto(f"{base}/#/workflows/{seen.running.id}")
    _expect_nodes(page, {0: "succeeded", 2: "running", 3: "succeeded", 5: "pending"})
    page.screenshot(path=shots / "dashboard-workflow.png")


def _expect_nodes(page: Page, states: dict[int, str]) -> None:
    expect(page.locator("svg.dag g[data-node]")).to_have_count(len(states))
    for node, state in states.items():
        expect(page.locator(f'svg.dag [data-node="{node}"]')).to_have_attribute("data-state", state)


def _cancel(app: App, page: Page, base: str, seen: Scene) -> None:
    """Cancel asks first, and for the token (again, when a guess is refused); the
    workflow is cancelled in Redis."""
    page.goto(f"{base}/#/workflows/{seen.running.id}")
    page.click('button[data-action="cancel"]')
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_contain_text(f"Cancel workflow {seen.running.id}?")
    token = dialog.locator("input[name=token]")
    token.fill("a guess")
    token.press("Enter")  # confirms, as the button would
    expect(dialog).to_contain_text("That token was refused.")
    assert app.handle(seen.running.id).status().status == "running"
    token.fill(TOKEN)
    dialog.locator("#confirm-yes").click()
    expect(page.locator("#workflow-status [data-state]")).to_have_attribute(
        "data-state", "cancelled"
    )
    expect(page.locator("#notice")).to_have_text(f"Cancelled {seen.running.id}.")
    expect(page.locator('svg.dag [data-node="5"]')).to_have_attribute("data-state", "cancelled")
    assert app.handle(seen.running.id).status().status == "cancelled"


def _resume(app: App, page: Page) -> None:
    """Resume asks first, and not for the token again (the session keeps it)."""
    page.click('nav a[data-page="queues"]')
    page.click('tr[data-paused="queue:slow"] button[data-action="resume"]')
    expect(page.locator("dialog#confirm .token")).to_be_hidden()
    page.locator("#confirm-yes").click()
    expect(page.locator("tr[data-paused]")).to_have_count(0)
    wait_until(lambda: not app.paused(), 5, message="the queue resumed")


def _resume_workflow(app: App, page: Page, base: str, seen: Scene) -> None:
    """A failed workflow offers Resume, which asks first; its failed task runs again
    (and fails again: boom always does), both runs in its history."""
    page.goto(f"{base}/#/workflows/{seen.failed.id}")
    page.click('button[data-action="resume"]')
    expect(page.locator("dialog#confirm")).to_contain_text(f"Resume workflow {seen.failed.id}?")
    page.locator("#confirm-yes").click()
    expect(page.locator("#notice")).to_have_text(f"Resumed {seen.failed.id}: nodes 2 run again.")

    def ends() -> list[str]:
        return [
            type(e.event).__name__
            for e in app.history(seen.failed.id)
            if type(e.event).__name__ in ("WorkflowFailed", "WorkflowResumed")
        ]

    wait_until(lambda: ends() == ["WorkflowFailed", "WorkflowResumed", "WorkflowFailed"], 10)


def _no_actions(page: Page, base: str, seen: Scene) -> None:
    """A read-only dashboard says so and offers no action."""
    page.goto(f"{base}/#/dead-letters")
    expect(page.locator("tr[data-dead-letter]")).to_have_count(1)
    expect(page.locator("#mode")).to_have_text("read-only")
    expect(page.locator("button[data-action]")).to_have_count(0)
    page.goto(f"{base}/#/workflows/{seen.failed.id}")
    expect(page.locator('svg.dag [data-node="2"]')).to_have_attribute("data-state", "failed")
    expect(page.locator("button[data-action]")).to_have_count(0)


def _dead_letters(app: App, page: Page, base: str, seen: Scene) -> None:
    """A dead letter's page says what it holds; Requeue asks first and puts it back on its
    queue (where the worker, finding no task message, dead-letters it again); Purge asks
    first and deletes every dead letter."""
    page.goto(f"{base}/#/dead-letters")
    page.click(f'tr[data-dead-letter="{seen.dead_id}"] a')
    expect(page.locator("h1")).to_have_text(f"Dead letter {seen.dead_id}")
    expect(page.locator("pre.value").last).to_have_text(b"not a message".hex())
    page.click('button[data-action="requeue"]')
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_contain_text(f"Put dead letter {seen.dead_id} back on its queue?")
    expect(dialog.locator(".token")).to_be_hidden()  # the session kept the token
    dialog.locator("#confirm-yes").click()
    expect(page.locator("#notice")).to_contain_text("Requeued as ")
    (again,) = wait_until(
        lambda: [d for d in app.dead_letters.list(10) if d.id != seen.dead_id],
        10,
        message="the requeued message dead-lettered again",
    )
    assert [d.id for d in app.dead_letters.list(10)] == [again.id]  # the old one is gone
    assert again.data == b"not a message"

    page.goto(f"{base}/#/dead-letters")
    expect(page.locator(f'tr[data-dead-letter="{again.id}"]')).to_be_visible()
    page.click('button[data-action="purge"]')
    expect(dialog).to_contain_text("Delete all 1 dead letters? Their bytes are lost.")
    dialog.locator("#confirm-yes").click()
    expect(page.locator("#notice")).to_have_text("Purged 1 dead letters.")
    expect(page.locator("tr[data-dead-letter]")).to_have_count(0)
    assert app.dead_letters.list(10) == []
